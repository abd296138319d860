"""The three trainings (seed classifier, saliency, segmenter) on one Caffe-solver loop."""
import signal
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import datasets as D
from .io import InputError, load_checkpoint, load_label_png, save_checkpoint, save_json
from .networks import build_seed_net, build_seg_net, freeze_trunk, init_from_scratch, param_groups
from .solver import CaffeSGD, step_lr
from .weights import load_init

SEED_MULTS = {"score": (10, 1, 0, 0)}       # score: weights only, lr_mult 10
SEG_MULTS = {"fc8": (10, 1, 20, 0)}         # fc8: lr_mult 10 / 20, bias decay 0


class Solver:
    """One training's solver settings; momentum, weight decay and gamma are the paper's unless given."""

    def __init__(self, base_lr, max_iter, stepsize, batch_size, seed, snapshot, clip_gradients=-1,
                 momentum=0.9, weight_decay=0.0005, gamma=0.1):
        self.base_lr, self.max_iter, self.stepsize, self.batch_size = base_lr, max_iter, stepsize, batch_size
        self.seed, self.snapshot, self.clip_gradients = seed, snapshot, clip_gradients
        self.momentum, self.weight_decay, self.gamma = momentum, weight_decay, gamma

    @classmethod
    def from_section(cls, c, prefix, snapshot):
        return cls(c[prefix + "base_lr"], c[prefix + "max_iter"], c[prefix + "stepsize"],
                   c[prefix + "batch_size"], c[prefix + "seed"], snapshot, c[prefix + "clip_gradients"])


def initialise(model, init, log, freeze=False):
    if init == "imagenet":
        if not getattr(model, "pretrained", False):
            raise InputError(f"--init imagenet: {type(model).__name__} has no built-in ImageNet weights; "
                             "pass a weights file or none")
        log.info("init: the network's built-in ImageNet weights")
    elif init in (None, "", "none"):
        init_from_scratch(model)
        log.info("init: from scratch (msra filler for the trunk)")
    else:
        for line in load_init(model, init):
            log.info("init: %s", line)
    if freeze:
        freeze_trunk(model)
        log.info("trunk frozen: training %s only", ", ".join(model.new_layers))


def train_loop(model, stream, loss_fn, solver, mults, out, log, device, workers=0, meta=None):
    """Caffe-style SGD over a deterministic sample stream; snapshots every `snapshot` iterations
    (snapshot_iter_N.pth, as Caffe names them; --test_iter tests one), resumes from the latest,
    and saves a snapshot on Ctrl-C before stopping."""
    model.to(device).train()
    sgd = CaffeSGD(param_groups(model, mults), lr=solver.base_lr, momentum=solver.momentum,
                   weight_decay=solver.weight_decay, clip_gradients=solver.clip_gradients)
    start, losses = 0, []
    snaps = sorted(out.glob("snapshot_iter_*.pth"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    if snaps:
        snap = snaps[-1]
        state = load_checkpoint(snap, model)
        sgd.load_state_dict(state["optimizer"])
        start, losses = state["iteration"], [list(x) for x in state["meta"]["losses"]]
        torch.set_rng_state(state["meta"]["rng"])
        log.info("resuming at iteration %d from %s", start, snap)
    else:
        torch.manual_seed(solver.seed)
    bs = solver.batch_size
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(stream, range(start * bs, solver.max_iter * bs)),
                                         batch_size=bs, num_workers=workers, pin_memory=device.type == "cuda")

    def snapshot(iteration):
        save_checkpoint(out / f"snapshot_iter_{iteration}.pth", model, (meta or {}) | {"losses": losses,
                        "rng": torch.get_rng_state()}, sgd, iteration)

    stop = {"now": False}
    previous = signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    try:
        for it, batch in enumerate(loader, start):
            sgd.set_lr(step_lr(solver.base_lr, it, solver.stepsize, solver.gamma))
            loss = loss_fn(model, [b.to(device, non_blocking=True) for b in batch])
            sgd.zero_grad(set_to_none=True)
            loss.backward()
            sgd.step()
            losses.append([it + 1, loss.item()])
            if (it + 1) % max(1, solver.max_iter // 20) == 0 or it == start:
                log.info("iter %d/%d  loss %.4f  lr %.2e", it + 1, solver.max_iter, losses[-1][1],
                         step_lr(solver.base_lr, it, solver.stepsize, solver.gamma))
            if (it + 1) % solver.snapshot == 0 or stop["now"]:
                snapshot(it + 1)
            if stop["now"]:
                log.info("interrupted: saved a snapshot at iteration %d; rerun the same command to resume", it + 1)
                raise SystemExit(130)
    finally:
        signal.signal(signal.SIGINT, previous)
    save_checkpoint(out / "model.pth", model, meta or {})
    save_json(out / "loss.json", {"loss": losses})
    return losses


def classification_loss(model, batch):
    """Caffe SigmoidCrossEntropyLoss: summed over classes, divided by the batch size."""
    x, y = batch
    scores, _ = model(x)
    return F.binary_cross_entropy_with_logits(scores, y, reduction="sum") / x.shape[0]


def segmentation_loss(model, batch):
    """Caffe SoftmaxWithLoss, ignore 255, averaged over the counted pixels."""
    x, y = batch
    return F.cross_entropy(model(x), y, ignore_index=D.IGNORE)


def train_seed(stage):
    c = stage.cfg["seed_train"]
    data = stage.dataset(stage.cfg["data"]["dataset"])
    model = build_seed_net(c["net"], data.num_classes - 1, c["width"])
    initialise(model, c["init"], stage.log, c["freeze_trunk"])
    solver = Solver(c["base_lr"], c["max_iter"], c["stepsize"], c["batch_size"], c["seed"],
                    stage.cfg["run"]["snapshot"], c["clip_gradients"], c["momentum"], c["weight_decay"], c["gamma"])
    rng = np.random.default_rng(solver.seed)
    length = solver.max_iter * solver.batch_size
    order = (D.clsbal_order([data.image_classes(i) for i in range(len(data))], data.num_classes - 1, length, rng)
             if c["balbatch"] == "clsbal" else D.shuffled_order(len(data), length, rng))
    meta = {"kind": "seed", "net": c["net"], "width": c["width"], "classes": data.classes}
    run_training(stage, model, D.TrainStream(order, SeedSample(data, c["input_size"]), solver.seed),
                 classification_loss, solver, SEED_MULTS, meta)


def run_training(stage, model, stream, loss_fn, solver, mults, meta):
    losses = train_loop(model, stream, loss_fn, solver, mults, stage.out, stage.log, stage.device,
                        stage.cfg["run"]["workers"], meta)
    stage.finish({"final_loss": losses[-1][1] if losses else None, "images": len(stream.make_sample.data),
                  "iterations": solver.max_iter})


class SeedSample:
    def __init__(self, data, size):
        self.data, self.size = data, size

    def __call__(self, i, rng):
        return D.seed_train_sample(self.data.image(i), rng, self.size), self.data.class_vector(i)


class SegSample:
    """Image + label: the dataset's own, or a PNG of `label_dir` (guide labels)."""

    def __init__(self, data, size, out_size, resize, label_dir=None):
        self.data, self.size, self.out_size, self.resize, self.label_dir = data, size, out_size, resize, label_dir

    def label(self, i):
        if self.label_dir is None:
            return self.data.label(i)
        path = Path(self.label_dir) / f"{self.data.items[i].id}.png"
        if not path.exists():
            raise InputError(f"{path}: guide label missing; rerun ./src/guide_generation/generate.py")
        return load_label_png(path)

    def __call__(self, i, rng):
        return D.seg_train_sample(self.data.image(i), self.label(i), rng, self.size, self.out_size, self.resize)


def segmentation_stream(data, model, size, resize, solver, label_dir=None):
    order = D.shuffled_order(len(data), solver.max_iter * solver.batch_size, np.random.default_rng(solver.seed))
    return D.TrainStream(order, SegSample(data, size, model.output_size(size), resize, label_dir), solver.seed)


def train_seg(stage, guide_dir=None):
    c = stage.cfg["seg_train"]
    if c["labels"] not in ("gt", "guide"):
        raise InputError(f"--labels {c['labels']}: choose guide or gt")
    data = stage.dataset(stage.cfg["data"]["dataset"])
    label_dir = None if c["labels"] == "gt" else stage.input_dir("guide", guide_dir)
    model = build_seg_net(c["seg_net"], data.num_classes, c["seg_width"])
    initialise(model, c["seg_init"], stage.log, c["seg_freeze_trunk"])
    solver = Solver.from_section(c, "seg_", stage.cfg["run"]["snapshot"])
    stream = segmentation_stream(data, model, c["seg_input_size"], c["seg_resize"], solver, label_dir)
    meta = {"kind": "segmentation", "net": c["seg_net"], "width": c["seg_width"], "classes": data.classes}
    run_training(stage, model, stream, segmentation_loss, solver, SEG_MULTS, meta)


def train_saliency(stage):
    c = stage.cfg["saliency_train"]
    data = D.MaskFolder(stage.cfg["data"]["saliency_data"], c["sal_holdout"], "train")
    model = build_seg_net(c["sal_net"], 2, c["sal_width"])
    initialise(model, c["sal_init"], stage.log, c["sal_freeze_trunk"])
    solver = Solver.from_section(c, "sal_", stage.cfg["run"]["snapshot"])
    stream = segmentation_stream(data, model, c["sal_input_size"], "tight", solver)
    meta = {"kind": "saliency", "net": c["sal_net"], "width": c["sal_width"], "classes": ["bg", "fg"]}
    run_training(stage, model, stream, segmentation_loss, solver, SEG_MULTS, meta)
