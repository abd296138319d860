#!/usr/bin/env python3
"""Speed on this machine.

Training (--training): for every network the presets train (seed classifier, saliency net, segmenter), built
as its stage builds it (frozen and trainable parts, solver, loss) at the preset's batch and crop: iterations/s
of a whole step (forward, loss, backward, Caffe solver update) and the share of the measured matrix-multiply
peak that its nominal FLOPs reach, with each speed option: threads, memory layout (channels_last),
torch.compile, bf16 autocast (not float32: results change slightly); and the preset's sample making
(decode, crop, augmentation) in ms per batch.
Inference and fusion: images/s of the paper's VGG networks, FLOPs per image (counted from the network
definition), dense-CRF seconds per image, G2 fusion, guide generation with 1 and 2 worker processes, peak
memory."""
import logging
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from guidedlabelling import model_setup as MS
from guidedlabelling import training as TR
from guidedlabelling.checks import POSITIVE, SIDE, above, argument
from guidedlabelling.cli import run
from guidedlabelling.config import resolve
from guidedlabelling.crf import crf_from_probs
from guidedlabelling.datasets import VOCDataset, open_dataset
from guidedlabelling.errors import Parser, listed
from guidedlabelling.guide_rules import g2
from guidedlabelling.io import save_gray_png, save_heatmap_mat, save_label_png
from guidedlabelling.networks import DeepLabLargeFOV, GAPNet, build_seed_net
from guidedlabelling.runner import ensure_data
from guidedlabelling.sampling import SegSample
from guidedlabelling.seeds import SeedRule
from guidedlabelling.solver import SOLVERS, param_groups
from guidedlabelling.stages import saliency_train, seed_train
from guidedlabelling.stages.guide_labels import GuideJob, run_jobs
from guidedlabelling.stages.saliency_train import SaliencyLoss


def matmul_peak(n=4096, tries=5):
    """Best of several float32 n x n matrix products: the machine's measured peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def conv_flops(model, size):
    """Multiply-adds x 2 of every conv and linear layer for one size x size image."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += 2 * k * output.numel()
        elif isinstance(module, torch.nn.Linear):
            total += 2 * module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.inference_mode():
        model(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return total


def images_per_second(model, size, batch, repeat):
    x = torch.randn(batch, 3, size, size) * 60
    with torch.inference_mode():
        model(x)
        start = time.perf_counter()
        for _ in range(repeat):
            model(x)
    return batch * repeat / (time.perf_counter() - start)


def step_flops(model, x):
    """Nominal FLOPs of one training step on batch x: every conv and linear layer's forward, plus in backward
    its weight gradient where the weight is trained and its input gradient where a layer before it is."""
    layers = []

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            layers.append((2 * k * output.numel(), module.weight.requires_grad))
        elif isinstance(module, torch.nn.Linear):
            layers.append((2 * module.in_features * output.numel(), module.weight.requires_grad))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    total, trained_below = 0, False
    for flops, trained in layers:  # execution order
        total += flops + flops * trained + flops * trained_below
        trained_below |= trained
    return total


def preset_training(preset, stage):
    """(model, Caffe multipliers, loss function, one batch, solver settings) of a preset's training stage,
    built as the stage builds them; the batch is random, of the preset's batch size and crop."""
    cfg, _ = resolve(preset)
    ensure_data(cfg)
    c = cfg[stage]
    classes = open_dataset(cfg["data"], cfg["data"]["dataset"]).num_classes
    log = logging.getLogger("bench")
    torch.manual_seed(0)
    x = torch.randn(c["batch_size"], 3, c["input_size"], c["input_size"]) * 60
    if stage == "seed_train":
        model = build_seed_net(c["net"], classes - 1, c["width"])
        MS.initialise(model, c["init"], log, c["freeze_trunk"], c["init_partial"])
        y = (torch.rand(c["batch_size"], classes - 1) < 0.3).float()
        return model, seed_train.mults(c), TR.classification_loss, (x, y), c
    model, mults = MS.build_deeplab(c, 2 if stage == "saliency_train" else classes, log)
    side = MS.label_size(model, c)
    y = torch.randint(0, 2 if stage == "saliency_train" else classes, (c["batch_size"], side, side))
    loss = SaliencyLoss(c["balance"]) if stage == "saliency_train" else TR.segmentation_loss
    return model, mults, loss, (x, y), c


TRAINING_OPTIONS = {  # name: (threads, channels_last, torch.compile, amp, backward through the frozen layers);
    "base": (2, False, False, "none", False),  # float32 with 2 threads unless named
    "1-thread": (1, False, False, "none", False),
    "channels_last": (2, True, False, "none", False),
    "compile": (2, False, True, "none", False),
    "channels_last+compile": (2, True, True, "none", False),
    "frozen-backward": (2, False, False, "none", True),  # what the trainings skip: gradients of frozen layers
    "bf16": (2, False, False, "bf16", False),
    "bf16+channels_last": (2, True, False, "bf16", False),
}


def training_speed(preset, stage, option, steps):
    """(iterations/s, nominal GFLOP per step, seconds of the first two steps) of a preset's training with a
    speed option; the steps are those of training.train_loop (solver, sample dropout, loss normalisation)."""
    threads, channels_last, compiled, amp, frozen_backward = TRAINING_OPTIONS[option]
    model, mults, loss_fn, (x, y), c = preset_training(preset, stage)
    flops = step_flops(model, x)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt).train()
    x = x.contiguous(memory_format=fmt)
    solver = SOLVERS[c["solver_type"]](param_groups(model, mults), lr=c["base_lr"], momentum=c["momentum"],
                                       weight_decay=c["weight_decay"])
    if frozen_backward:  # after the solver took the trained ones: the frozen get gradients, never steps
        model.requires_grad_(True)
    net = torch.compile(model) if compiled else model
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        def step(k):
            TR.sgd_step(net, (x, y), loss_fn, solver, scaler, amp,
                        TR.SampleDropout(0, TR.sample_keys(k, c["batch_size"], c["batch_size"])), False)
        start = time.perf_counter()
        step(0), step(1)
        warmup = time.perf_counter() - start
        start = time.perf_counter()
        for k in range(steps):
            step(k + 2)
        rate = steps / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return rate, flops / 1e9, warmup


def sample_ms(preset, stage, batches=4):
    """Milliseconds to make one batch of the preset's training samples from its real data (one process)."""
    from guidedlabelling.datasets import MaskFolder
    cfg, _ = resolve(preset)
    ensure_data(cfg)
    c = cfg[stage]
    if stage == "saliency_train":
        data = MaskFolder(c["saliency_data"], c["holdout"], "train", c["holdout_scenes"])
        make = saliency_train.training_sample(c, data, MS.build_deeplab(c, 2, logging.getLogger("bench"))[0])
    else:
        data = open_dataset(cfg["data"], cfg["data"]["dataset"])
        if stage == "seed_train":
            make = seed_train.SeedSample(data, c["input_size"])
        else:
            model_side = MS.label_size(MS.build_deeplab(c, data.num_classes, logging.getLogger("bench"))[0], c)
            make = SegSample(data, c["input_size"], model_side, c["resize"], None,  # the true masks stand in
                                c.get("max_side", 0))                             # for the guide labels
    n = batches * c["batch_size"]
    start = time.perf_counter()
    for k in range(n):
        make(k % len(data), np.random.default_rng(k))
    return 1000 * (time.perf_counter() - start) / batches


def print_training_speed(presets, options, steps):
    configs = {preset: resolve(preset)[0] for preset in presets}  # a misspelt preset ends it before any timing
    peak = matmul_peak()
    print(f"float32 matmul peak {peak / 1e9:.1f} GFLOP/s ({torch.get_num_threads()} threads)")
    for preset in presets:
        for stage in ("seed_train", "saliency_train", "seg_train"):
            c = configs[preset][stage]
            trained = "trunk frozen" if c["freeze_trunk"] else \
                f"last {c['train_blocks']} blocks trained" if c.get("train_blocks", -1) >= 0 else "all trained"
            print(f"{preset} {stage}: {c['net']} width {c.get('width', 1)}, {trained}, "
                  f"output stride {c.get('output_stride', 8)}, batch {c['batch_size']} x {c['input_size']} px, "
                  f"{c['solver_type']}; samples {sample_ms(preset, stage):.0f} ms/batch")
            for option in options:
                rate, gflop, warmup = training_speed(preset, stage, option, steps)
                print(f"  {option:22s} {rate:6.2f} it/s  {gflop:6.1f} GFLOP/step  "
                      f"{100 * gflop * 1e9 * rate / peak:5.1f}% of peak  (first 2 steps {warmup:.1f} s)", flush=True)


def synthetic_guide_inputs(rng, h=375, w=500):
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    seed = np.zeros((h, w), np.uint8)
    salient = np.zeros((h, w), bool)
    for c in (1, 2, 3):
        y, x = rng.integers(40, h - 120), rng.integers(40, w - 120)
        salient[y:y + 100, x:x + 100] = True
        seed[y + 30:y + 60, x + 30:x + 60] = c
    return image, seed, salient


def guide_scene(rng, h=375, w=500):
    """One photo-like scene: a noisy colour gradient, two overlapping objects of two classes (one salient
    region, which G2 splits with the dense CRF) and a third object apart. Returns the image, the label
    map, the saliency map and one heatmap per present class (a bump on each object)."""
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    corners = rng.uniform(40, 215, (2, 3))
    image = corners[0] + (corners[1] - corners[0]) * (xx / w)[..., None] + rng.normal(0, 12, (h, w, 3))
    label, heat = np.zeros((h, w), np.uint8), {}
    cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.25, 0.45) * w
    centres = [(cy, cx), (cy + rng.uniform(-30, 30), cx + 90), (rng.uniform(0.2, 0.8) * h, 0.85 * w)]
    for cls, (y, x) in zip(rng.choice(np.arange(1, 21), 3, replace=False), centres):
        r = rng.uniform(45, 60)
        inside = (yy - y) ** 2 + (xx - x) ** 2 < r ** 2
        image[inside] = rng.uniform(0, 255, 3) + rng.normal(0, 12, (inside.sum(), 3))
        label[inside] = cls
        heat[int(cls)] = np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * (0.6 * r) ** 2))
    saliency = np.where(label > 0, 230, 20) + rng.normal(0, 10, (h, w))
    present = sorted(int(c) for c in np.unique(label) if c > 0)
    return (np.clip(image, 0, 255).astype(np.uint8), label, np.clip(saliency, 0, 255),
            np.stack([heat[c] for c in present]).astype(np.float32))


def guide_folders(root, n, rng):
    """A VOC-layout dataset of n scenes with their seed heatmaps and saliency maps: the guide stage's inputs."""
    from PIL import Image
    ids = [f"scene_{i:03d}" for i in range(n)]
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation", "heatmaps", "saliency"):
        (root / sub).mkdir(parents=True)
    for image_id in ids:
        image, label, saliency, heat = guide_scene(rng)
        Image.fromarray(image).save(root / "JPEGImages" / f"{image_id}.jpg", quality=95)
        save_label_png(root / "SegmentationClass" / f"{image_id}.png", label)
        save_gray_png(root / "saliency" / f"{image_id}.png", saliency)
        save_heatmap_mat(root / "heatmaps" / f"{image_id}.mat", heat, label.shape)
    (root / "ImageSets/Segmentation/train.txt").write_text("".join(f"{x}\n" for x in ids))
    return VOCDataset(root, "train")


def guide_job(root, data, out):
    """The guide stage's job (rule G2, dense CRF) on guide_folders' scenes under root, writing into out."""
    return GuideJob(data, root / "data" / "heatmaps", root / "data" / "saliency", out,
                    {"guiderule": "G2", "seedthres": 20, "salthres": 50}, SeedRule(20))


def guide_generation_speed(n_images):
    """The guide stage's own job and pool on n 500x375 scenes with 1 and 2 workers: images/s of each, the
    speedup, and whether both wrote the same label files. One untimed image first pays the one-time costs (the
    CRF's first call), which would otherwise slow whichever run went first and skew the speedup."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = guide_folders(root / "data", n_images, np.random.default_rng(0))
        guide_job(root, data, root / "warm_up")(0)
        rates = {}
        for workers in (1, 2):
            start = time.perf_counter()
            run_jobs(guide_job(root, data, root / f"workers{workers}"), range(n_images), workers)
            rates[workers] = n_images / (time.perf_counter() - start)
        names = sorted(p.name for p in (root / "workers1").glob("*.png"))
        same = len(names) == n_images and all(
            (root / "workers1" / f).read_bytes() == (root / "workers2" / f).read_bytes() for f in names)
    return rates, same


def comma_list(text):
    return text.split(",")


def known_options(names):
    unknown = [name for name in names if name not in TRAINING_OPTIONS]
    return f"{listed(unknown)}: no such option; choose among {', '.join(TRAINING_OPTIONS)}" if unknown else None


def main(argv=None):
    p = Parser(description=__doc__)
    p.add_argument("--width", type=argument(float, above(0)), default=1.0,
                   help="network width (1 = the paper's VGG-16)")
    p.add_argument("--size", type=argument(int, SIDE), default=321, help="input side")
    p.add_argument("--batch", type=argument(int, POSITIVE), default=1)
    p.add_argument("--repeat", type=argument(int, POSITIVE), default=3)
    p.add_argument("--guide_images", type=argument(int, POSITIVE), default=32,
                   help="500x375 scenes of the guide-generation figure")
    p.add_argument("--guide_only", action="store_true", help="only the guide-generation figure")
    p.add_argument("--training", action="store_true", help="only the presets' trainings")
    p.add_argument("--presets", type=comma_list, default="demo,msrc",
                   help="presets of --training (msrc needs ../shared/data)")
    p.add_argument("--options", type=argument(comma_list, known_options), default=",".join(TRAINING_OPTIONS),
                   help="speed options of --training, comma-separated: " + ", ".join(TRAINING_OPTIONS))
    p.add_argument("--steps", type=argument(int, POSITIVE), default=8, help="timed training steps per figure")
    args = p.parse_args(argv)
    if args.guide_only:
        return print_guide_speed(args.guide_images)
    if args.training:
        return print_training_speed(args.presets, args.options, args.steps)
    torch.set_num_threads(torch.get_num_threads())
    peak = matmul_peak()
    print(f"threads {torch.get_num_threads()}; float32 matmul peak {peak / 1e9:.1f} GFLOP/s")
    nets = {"seed GAP-HighRes": GAPNet("GAP-HighRes", 20, args.width),
            "segmenter DeepLab-LargeFOV": DeepLabLargeFOV(21, args.width)}
    for name, model in nets.items():
        model.eval()
        flops = conv_flops(model, args.size)
        ips = images_per_second(model, args.size, args.batch, args.repeat)
        print(f"{name:28s} {args.size}px width {args.width}: {flops / 1e9:7.1f} GFLOP/image  {ips:6.2f} images/s  "
              f"{100 * flops * ips / peak:5.1f}% of peak (nominal FLOPs; Winograd convs can exceed 100%)")
    rng = np.random.default_rng(0)
    image, seed, salient = synthetic_guide_inputs(rng)
    start = time.perf_counter()
    n = 20
    for _ in range(n):
        g2(image, np.zeros_like(seed), salient)  # no foreground seed: fusion only, no CRF
    fusion = (time.perf_counter() - start) / n
    single = seed.copy()
    single[single > 0] = 1
    start = time.perf_counter()
    for _ in range(n):
        g2(image, single, salient)
    print(f"G2 fusion without CRF, 500x375: {1000 * fusion:.1f} ms (no seed in saliency), "
          f"{1000 * (time.perf_counter() - start) / n:.1f} ms (3 single-class components)")
    print(f"dense CRF (deeplab parameters, 21 labels, 10 iterations), 500x375 random-noise image (a worst case: "
          f"benchmarks/bench_crf.py times photos): {crf_seconds(image, rng):.2f} s/image")
    print_guide_speed(args.guide_images)
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def crf_seconds(image, rng):
    """Seconds of the dense CRF on `image` with random unaries, after an untimed call on a corner of it (the first
    call's one-time costs). Random noise spreads the colours over the most lattice points: a worst case."""
    probs = rng.dirichlet(np.ones(21), size=image.shape[:2]).transpose(2, 0, 1).astype(np.float32)
    crf_from_probs(image[:100, :100].copy(), probs[:, :100, :100].copy())
    start = time.perf_counter()
    crf_from_probs(image, probs)
    return time.perf_counter() - start


def print_guide_speed(n_images):
    rates, same = guide_generation_speed(n_images)
    print(f"guide generation (G2 + dense CRF), {n_images} images 500x375: {rates[1]:.2f} images/s with 1 worker, "
          f"{rates[2]:.2f} with 2 (speedup {rates[2] / rates[1]:.2f}x); outputs identical: {same}")


if __name__ == "__main__":
    run("__main__")  # bad input, Ctrl-C: one line
