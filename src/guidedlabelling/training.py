"""What the three trainings (seed classifier, saliency, segmenter) share: their solver settings, the
initialisation, one Caffe-solver loop (one process or DDP under torchrun), losses and segmentation samples."""
import inspect
import logging
import math
import signal
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.overrides import TorchFunctionMode

from . import distributed
from . import precision as P
from . import sampling
from . import transforms as T
from .checks import NON_NEGATIVE, POSITIVE, above, all_of, at_least, below, one_of
from .cli import Terminated, quiet_loader_worker
from .io import IGNORE, InputError, load_checkpoint, load_label_png, save_checkpoint, save_json
from .networks import NETWORKS, build_seg_net, has_blocks, init_from_scratch, names
from .pipeline import command
from .progress import progress
from .solver import SOLVERS, param_groups, step_lr
from .weights import load_init


def fc8_mults(m):
    """Caffe multipliers of a DeepLab fc8 whose weights take lr_mult m: its bias 2m, no bias decay (the
    release's segmenter and saliency net: m = 10)."""
    return {"fc8": (m, 1, 2 * m, 0)}


def training_options(net, init, nets):
    """The settings of a training (the paper's solver: docs/method.md section 1) with its network's defaults."""
    return {
        "net": (net, f"network: {', '.join(nets)}"),
        "init": (init, "initial weights (.caffemodel, .pth, imagenet for a network's built-in weights, or none)"),
        "init_partial": (False, "allow an init file that leaves layers of the pretrained trunk unloaded or "
                                "misshapen (they keep their random start)"),
        "width": (1.0, "channel width multiplier (1 = the paper's network)"),
        "input_size": (321, "training crop side"),
        "base_lr": (0.001, "Caffe base_lr"),
        "momentum": (0.9, "Caffe momentum"),
        "weight_decay": (0.0005, "Caffe weight_decay"),
        "stepsize": (2000, "lr x gamma every stepsize iterations"),
        "gamma": (0.1, "lr step factor"),
        "max_iter": (8000, "training iterations"),
        "batch_size": (15, "images per iteration"),
        "clip_gradients": (-1.0, "Caffe clip_gradients: cap on the global gradient L2 norm (-1: off)"),
        "solver_type": ("sgd", "Caffe solver type: sgd (the paper's) or adam (momentum2 0.999, delta 1e-8)"),
        "freeze_trunk": (False, "train only the new layers (Caffe lr_mult 0 for the pretrained trunk)"),
        "seed": (0, "random seed"),
    }


FC6_DILATION = {"fc6_dilation": (12, "dilation of fc6, the 3x3 layer on the trunk (LargeFOV's 12 suits a 41x41 output; "
                                     "smaller outputs want proportionally less)")}
DEEPLAB_OPTIONS = FC6_DILATION | {  # the segmenter's and the saliency net's network settings
    "output_stride": (8, "DeepLab-EffNet's output stride: 8, or 16 (a third of the computation; halve "
                         "fc6_dilation with it)"),
    "train_blocks": (-1, "a trunk of blocks (DeepLab-EffNet: 16), not frozen: fine-tune only the last N of them "
                         "(the stem and earlier blocks frozen); -1: every layer"),
    "trunk_lr_mult": (1.0, "learning-rate multiplier of the pretrained trunk's layers (Caffe lr_mult)"),
    "fc8_lr_mult": (10.0, "learning-rate multiplier of fc8, the classifier (Caffe lr_mult; its bias twice, no decay; "
                          "10 suits SGD, 1 Adam, whose steps the multiplier scales directly)"),
    "loss_res": ("output", "where the loss is taken: output (labels shrunk to the network's output, as the "
                           "release) or input (scores upsampled bilinearly to the crop)"),
}
DEEPLAB_CHECKS = {"fc6_dilation": POSITIVE, "output_stride": one_of(8, 16), "train_blocks": at_least(-1),
                  "trunk_lr_mult": above(0), "fc8_lr_mult": above(0), "loss_res": one_of("output", "input")}


def solver_checks(nets):
    """The ranges of a training's settings (solver_options)."""
    return {"net": one_of(*nets), "width": above(0), "input_size": POSITIVE, "base_lr": above(0),
            "momentum": all_of(NON_NEGATIVE, below(1)), "weight_decay": NON_NEGATIVE, "stepsize": POSITIVE,
            "gamma": above(0), "max_iter": POSITIVE, "batch_size": POSITIVE, "seed": NON_NEGATIVE,
            "solver_type": one_of(*SOLVERS)}


@dataclass
class Solver:
    """One training's solver (docs/method.md section 1) and the run's snapshot interval."""
    base_lr: float
    max_iter: int
    stepsize: int
    batch_size: int
    seed: int
    snapshot: int
    clip_gradients: float = -1
    momentum: float = 0.9
    weight_decay: float = 0.0005
    gamma: float = 0.1
    solver_type: str = "sgd"

    @classmethod
    def of(cls, section, snapshot):
        """The solver of a training section of the config."""
        return cls(snapshot=snapshot, **{f.name: section[f.name] for f in fields(cls) if f.name != "snapshot"})


def freeze_trunk(model):
    """Caffe lr_mult 0 for every layer but the new ones; frozen parameters need no gradient at all."""
    for name, p in model.named_parameters():
        if name.split(".")[-2] not in model.new_layers:
            p.requires_grad_(False)


def initialise(model, init, log, freeze=False, partial=False):
    if init == "imagenet":
        if not NETWORKS[model.net].imagenet:
            raise InputError(f"--init imagenet: {model.net} has no built-in ImageNet weights; "
                             "pass a weights file or none")
        log.info("init: the network's built-in ImageNet weights")
    elif init in (None, "", "none"):
        init_from_scratch(model)
        log.info("init: from scratch (msra filler for the trunk)")
    else:
        for line in load_init(model, init, partial):
            log.info("init: %s", line)
    if freeze:
        freeze_trunk(model)
        log.info("trunk frozen: training %s only", ", ".join(model.new_layers))


def train_last_blocks(model, blocks, log):
    """Fine-tune only the last `blocks` of the trunk's blocks (networks: trunk_blocks()): the rest of the trunk
    frozen, the new layers trained."""
    trunk = model.trunk_blocks()
    first = max(len(trunk) - blocks, 0)
    trained = {id(p) for block in list(trunk)[first:] for p in block.parameters()}
    for name, p in model.named_parameters():
        if name.split(".")[-2] not in model.new_layers and id(p) not in trained:
            p.requires_grad_(False)
    log.info("trunk: fine-tuning blocks %d..%d of %d", first, len(trunk) - 1, len(trunk))


def build_deeplab(c, num_classes, log):
    """A segmenter or saliency net from its training section c (DEEPLAB_OPTIONS), initialised, with the
    layers it trains chosen; returns it and its Caffe multipliers."""
    problems = deeplab_conflicts(c)
    if problems:
        raise InputError(*problems)
    model = build_seg_net(c["net"], num_classes, c["width"], c["fc6_dilation"], c["output_stride"])
    initialise(model, c["init"], log, c["freeze_trunk"], c["init_partial"])
    if c["train_blocks"] >= 0:
        train_last_blocks(model, c["train_blocks"], log)
    return model, fc8_mults(c["fc8_lr_mult"]) | trunk_mults(model, c["trunk_lr_mult"])


def deeplab_conflicts(c):
    """Settings of a segmenter's or saliency net's training section c that contradict each other."""
    problems, net = [], NETWORKS[c["net"]]
    if c["output_stride"] not in net.output_strides:
        strides = " or ".join(map(str, net.output_strides))
        problems.append(f"output_stride {c['output_stride']}: {c['net']} has output stride {strides} only; use "
                        f"{strides} or {' or '.join(names('segmentation', c['output_stride']))}")
    if c["train_blocks"] >= 0 and not has_blocks(c["net"]):
        problems.append(f"train_blocks {c['train_blocks']}: {c['net']} does not split its trunk into blocks; use -1 "
                        f"or {' or '.join(names('segmentation', blocks=True))}")
    if c["freeze_trunk"] and (c["train_blocks"] >= 0 or c["trunk_lr_mult"] != 1):
        problems.append("freeze_trunk trains no trunk layer, so train_blocks and trunk_lr_mult would do nothing; "
                        "drop freeze_trunk or leave them at -1 and 1")
    return problems


def deeplab_meta(c, kind, classes):
    """What a segmenter's or saliency net's checkpoint records to be rebuilt (inference.load_model)."""
    return {"kind": kind, "net": c["net"], "width": c["width"], "fc6_dilation": c["fc6_dilation"],
            "output_stride": c["output_stride"], "classes": classes}


def label_size(model, c):
    """The side of the training labels: the network's output (the release) or the crop (loss_res input)."""
    return model.output_size(c["input_size"]) if c["loss_res"] == "output" else c["input_size"]


def trunk_mults(model, mult):
    """Caffe multipliers (weight lr, weight decay, bias lr, bias decay) of the pretrained trunk's layers, by
    layer name as solver.param_groups matches them: the lr times `mult`."""
    if mult == 1:
        return {}
    pretrained = {name.split(".")[-2] for name, _ in model.named_parameters()} - set(model.new_layers)
    return {layer: (mult, 1, 2 * mult, 0) for layer in pretrained}


def train_loop(model, stream, loss_fn, solver, mults, out, log, device, run, meta=None):
    """Caffe-style SGD over a deterministic sample stream, on one process or on W under torchrun (DDP):
    each process computes batch_size/W samples of the same global batch, so the result does not depend
    on W. Snapshots every `snapshot` iterations (snapshot_iter_N.pth, as Caffe names them; --test_iter
    tests one), resumes from the latest, and saves a snapshot on Ctrl-C before stopping. Only the first
    process writes files."""
    local = distributed.local_batch(solver.batch_size)
    device = distributed.process_device(device)
    fmt = P.memory_format(run["channels_last"])
    model.to(device, memory_format=fmt).train()
    sgd = SOLVERS[solver.solver_type](param_groups(model, mults), lr=solver.base_lr, momentum=solver.momentum,
                                      weight_decay=solver.weight_decay, clip_gradients=solver.clip_gradients)
    scaler = P.grad_scaler(device, run["amp"])
    with distributed.process_group(device):
        start, losses = resume(out, model, sgd, log)
        distributed.check_same_everywhere(start, device, f"the snapshot to resume from in {out}")
        net = distributed.wrap(model, device)
        samples = [k for it in range(start, solver.max_iter) for k in sample_keys(it, solver.batch_size, local)]
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(stream, samples), batch_size=local,
                                             num_workers=run["workers"], pin_memory=device.type == "cuda",
                                             worker_init_fn=quiet_loader_worker)

        def snapshot(iteration):
            if distributed.is_main():
                save_checkpoint(out / f"snapshot_iter_{iteration}.pth", model, (meta or {}) | {"losses": losses},
                                sgd, iteration)

        interrupted = {"now": False, "by": None}  # Ctrl-C or SIGTERM: snapshot, then stop on every process

        def interrupt(signum, frame):
            interrupted.update(now=True, by=signum)
        previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for it, (x, y) in enumerate(progress(loader, out.parent.name, solver.max_iter, start), start):
                sgd.set_lr(step_lr(solver.base_lr, it, solver.stepsize, solver.gamma))
                batch = [x.to(device, memory_format=fmt, non_blocking=True), y.to(device, non_blocking=True)]
                loss, stop = sgd_step(net, batch, loss_fn, sgd, scaler, run["amp"],
                                      SampleDropout(solver.seed, sample_keys(it, solver.batch_size, local)),
                                      interrupted["now"])
                if not math.isfinite(loss):  # the same global loss on every process: all stop
                    raise InputError(f"{out}: loss {loss} at iteration {it + 1}, the training diverged; lower base_lr "
                                     f"(now {solver.base_lr:g}) or fix the labels it trains on")
                losses.append([it + 1, loss])
                if (it + 1) % max(1, solver.max_iter // 20) == 0 or it == start:
                    log.info("iter %d/%d  loss %.4f  lr %.2e", it + 1, solver.max_iter, losses[-1][1],
                             step_lr(solver.base_lr, it, solver.stepsize, solver.gamma))
                if (it + 1) % solver.snapshot == 0 or stop:
                    snapshot(it + 1)
                if stop:
                    log.info("interrupted: saved a snapshot at iteration %d; rerun the same command to resume",
                             it + 1)
                    if interrupted["by"] == signal.SIGTERM:
                        raise Terminated
                    raise SystemExit(130)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            del net  # before the process group goes (see distributed.process_group)
    if distributed.is_main():
        save_checkpoint(out / "model.pth", model, meta or {})
        save_json(out / "loss.json", {"loss": losses})
    return losses


def sgd_step(net, batch, loss_fn, sgd, scaler, amp, dropout, interrupted):
    """One update from this process's slice of the global batch: (the global batch's loss, whether any
    process was interrupted)."""
    with dropout, P.autocast(batch[0].device, amp):
        total, count = loss_fn(net, batch)
    share, loss, stop = global_loss(total, count, interrupted)
    sgd.zero_grad(set_to_none=True)
    scaler.scale(share * distributed.world_size()).backward()  # DDP averages the gradients: undo its 1/W
    scaler.step(sgd)
    scaler.update()
    return loss, stop


def resume(out, model, sgd, log):
    """(first iteration, losses so far) from the latest snapshot in `out`, loaded into model and solver."""
    snaps = sorted(out.glob("snapshot_iter_*.pth"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    if not snaps:
        return 0, []
    state = load_checkpoint(snaps[-1], model)
    try:
        wanted = {key for group in sgd.param_groups for key in group}
        sgd.load_state_dict(state["optimizer"])
        missing = {key for group in sgd.param_groups for key in wanted if key not in group}
        if missing:  # another solver_type's state: it would fail at the first step
            raise KeyError(", ".join(sorted(missing)))
    except (KeyError, ValueError) as e:
        raise InputError(f"{snaps[-1]}: its solver state does not fit this training's solver_type or trainable "
                         f"layers ({e}); delete the snapshots in {out} or train with the settings that made them")
    log.info("resuming at iteration %d from %s", state["iteration"], snaps[-1])
    return state["iteration"], [list(x) for x in state["meta"]["losses"]]


def sample_keys(iteration, batch_size, local):
    """Stream indices of this process's slice of the global batch of `iteration`."""
    first = iteration * batch_size + distributed.rank() * local
    return range(first, first + local)


def global_loss(total, count, interrupted):
    """(this process's share of the global batch's loss, the global loss's value, whether any process was
    interrupted, so that all stop together). The normaliser (Caffe's: batch size or counted pixels) is
    summed over the processes; the share is this process's loss sum over it, so the shares' gradients add
    up to the global loss's (DDP averages them: the caller multiplies by W)."""
    sums = distributed.all_sum(torch.stack([total.detach().double(), count.double(),
                                     count.new_tensor(float(interrupted), dtype=torch.float64)]))
    normaliser = sums[1].clamp(min=1)
    return total / normaliser.to(total.dtype), (sums[0] / normaliser).item(), bool(sums[2])


class SampleDropout(TorchFunctionMode):
    """F.dropout with each sample's mask drawn from a generator seeded by (seed, the sample's stream index,
    the dropout call's order in the forward pass): the masks, like the samples, do not depend on which
    process or batch computes a sample, so W processes train exactly as one."""

    def __init__(self, seed, keys):
        super().__init__()
        self.seed, self.keys, self.calls = seed, keys, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is not F.dropout:
            return func(*args, **(kwargs or {}))
        call = inspect.signature(F.dropout).bind(*args, **(kwargs or {}))
        call.apply_defaults()
        x, p, training = call.arguments["input"], call.arguments["p"], call.arguments["training"]
        if not training or p == 0:
            return x
        self.calls += 1
        return x * torch.stack([self.mask(x, p, k) for k in self.keys])

    def mask(self, x, p, key):
        """Kept units of one sample, scaled by 1 / (1 - p) as in F.dropout."""
        seed = int(np.random.SeedSequence([self.seed, key, self.calls]).generate_state(1, np.uint64)[0])
        generator = torch.Generator(x.device).manual_seed(seed)
        keep = torch.empty(x.shape[1:], dtype=x.dtype, device=x.device).bernoulli_(1 - p, generator=generator)
        return keep / (1 - p)


def classification_loss(model, batch):
    """Caffe SigmoidCrossEntropyLoss, summed over classes and images; normalised by the batch size."""
    x, y = batch
    scores, _ = model(x)
    return F.binary_cross_entropy_with_logits(scores, y, reduction="sum"), y.new_tensor(x.shape[0])


def segmentation_loss(model, batch):
    """Caffe SoftmaxWithLoss, ignore 255, summed; normalised by the counted pixels. Scores are upsampled
    bilinearly to the labels' size where that differs (loss_res input)."""
    x, y = batch
    return F.cross_entropy(scores_at(model(x), y), y, ignore_index=IGNORE, reduction="sum"), (y != IGNORE).sum()


def scores_at(scores, labels):
    """scores [B, C, h, w] at the labels' [B, H, W] size (bilinear), unchanged when the sizes agree."""
    if scores.shape[-2:] == labels.shape[-2:]:
        return scores
    return F.interpolate(scores, size=labels.shape[-2:], mode="bilinear", align_corners=False)


def prepare(stage):
    """The solver of a training stage. Seeds torch's generator with its seed, so the initial weights are
    reproducible; under torchrun only the first process logs progress, the others warnings and errors."""
    if not distributed.is_main():
        stage.log.setLevel(logging.WARNING)
    solver = Solver.of(stage.cfg[stage.name], stage.cfg["run"]["snapshot"])
    torch.manual_seed(solver.seed)
    return solver


def run_training(stage, model, stream, loss_fn, solver, mults, meta, publish=None):
    """Train, then finish the stage folder; publish(summary) -> summary, if given, runs in between (the first
    process only), once model.pth is written."""
    losses = train_loop(model, stream, loss_fn, solver, mults, stage.out, stage.log, stage.device,
                        stage.cfg["run"], meta)
    if distributed.is_main():
        summary = {"final_loss": losses[-1][1] if losses else None, "images": len(stream.make_sample.data),
                   "iterations": solver.max_iter}
        stage.finish(publish(summary) if publish else summary)


class SegSample:
    """Image + label: the dataset's own, or a PNG of `label_dir` (guide labels); with max_side, both shrunk to that
    longer side first (the label by nearest neighbour), the scale a test at test_size max_side sees."""

    def __init__(self, data, size, out_size, resize, label_dir=None, max_side=0):
        self.data, self.size, self.out_size, self.resize, self.label_dir = data, size, out_size, resize, label_dir
        self.max_side = max_side

    def label(self, i):
        if self.label_dir is None:
            return self.data.label(i)
        path = Path(self.label_dir) / f"{self.data.items[i].id}.png"
        if not path.exists():
            raise InputError(f"{path}: guide label missing; rerun {command('guide')}")
        return load_label_png(path)

    def __call__(self, i, rng):
        img, label = self.data.image(i), self.label(i)
        if self.max_side and max(label.shape) > self.max_side:
            img, label = T.resize_longer(img, self.max_side), T.resize_longer(label, self.max_side, Image.NEAREST)
        return T.seg_train_sample(img, label, rng, self.size, self.out_size, self.resize)


def segmentation_stream(data, size, out_size, resize, solver, label_dir=None, max_side=0):
    return shuffled_stream(SegSample(data, size, out_size, resize, label_dir, max_side), solver)


def shuffled_stream(make_sample, solver):
    """The samples of a training over make_sample.data in the release's plain shuffled order."""
    n = len(make_sample.data)
    order = sampling.shuffled_order(n, solver.max_iter * solver.batch_size, np.random.default_rng(solver.seed))
    return sampling.TrainStream(order, make_sample, solver.seed)
