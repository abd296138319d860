#!/usr/bin/env python3
"""Per-stage speed on this machine: images/s, FLOPs per image (counted from the network definition),
fraction of the measured matrix-multiply peak, dense-CRF seconds per image, G2 fusion images/s, guide
generation images/s with 1 and 2 worker processes, peak memory."""
import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from guidedlabelling.crf import crf_from_probs
from guidedlabelling.datasets import VOCDataset
from guidedlabelling.guide_rules import g2
from guidedlabelling.io import save_gray_png, save_heatmap_mat, save_label_png
from guidedlabelling.networks import DeepLabLargeFOV, GAPNet
from guidedlabelling.stages.guide import GuideJob, run_jobs


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


def guide_generation_speed(n_images):
    """The guide stage's own job and pool (rule G2, dense CRF) on n 500x375 scenes with 1 and 2 workers:
    images/s of each, the speedup, and whether both wrote the same label files."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = guide_folders(root / "data", n_images, np.random.default_rng(0))
        rates = {}
        for workers in (1, 2):
            out = root / f"workers{workers}"
            job = GuideJob(data, root / "data" / "heatmaps", root / "data" / "saliency", out,
                           {"guiderule": "G2", "seedthres": 20, "salthres": 50})
            start = time.perf_counter()
            run_jobs(job, range(n_images), workers)
            rates[workers] = n_images / (time.perf_counter() - start)
        names = sorted(p.name for p in (root / "workers1").glob("*.png"))
        same = len(names) == n_images and all(
            (root / "workers1" / f).read_bytes() == (root / "workers2" / f).read_bytes() for f in names)
    return rates, same


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--width", type=float, default=1.0, help="network width (1 = the paper's VGG-16)")
    p.add_argument("--size", type=int, default=321, help="input side")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--guide_images", type=int, default=32, help="500x375 scenes of the guide-generation figure")
    p.add_argument("--guide_only", action="store_true", help="only the guide-generation figure")
    args = p.parse_args()
    if args.guide_only:
        return print_guide_speed(args.guide_images)
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
    probs = rng.dirichlet(np.ones(21), size=(375, 500)).transpose(2, 0, 1).astype(np.float32)
    start = time.perf_counter()
    crf_from_probs(image, probs)
    print(f"dense CRF (deeplab parameters, 21 labels, 10 iterations), 500x375: "
          f"{time.perf_counter() - start:.2f} s/image")
    print_guide_speed(args.guide_images)
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def print_guide_speed(n_images):
    rates, same = guide_generation_speed(n_images)
    print(f"guide generation (G2 + dense CRF), {n_images} images 500x375: {rates[1]:.2f} images/s with 1 worker, "
          f"{rates[2]:.2f} with 2 (speedup {rates[2] / rates[1]:.2f}x); outputs identical: {same}")


if __name__ == "__main__":
    main()
