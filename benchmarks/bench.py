#!/usr/bin/env python3
"""Per-stage speed on this machine: images/s, FLOPs per image (counted from the network definition),
fraction of the measured matrix-multiply peak, dense-CRF seconds per image, G2 fusion images/s, peak memory."""
import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # bootstrap: the library lives in src/
from guidedlabelling.crf import crf_from_probs  # noqa: E402
from guidedlabelling.guide import g2  # noqa: E402
from guidedlabelling.networks import DeepLabLargeFOV, GAPNet  # noqa: E402


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


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--width", type=float, default=1.0, help="network width (1 = the paper's VGG-16)")
    p.add_argument("--size", type=int, default=321, help="input side")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
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
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
