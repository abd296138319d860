#!/usr/bin/env python
"""A VOC-layout folder of random VOC-size photos (500 x 375 or 375 x 500, 1-3 objects of VOC's 20 classes as
filled ellipses, a void band on their edges), for timing the voc12_paper trainings where VOC is not at hand
(benchmarks/gpu_run.py). The images carry no meaning: the figures it serves are speeds, never accuracies.

    python benchmarks/random_voc.py OUT [--n 200]   # JPEGImages, SegmentationClassAug, split train_aug
"""
import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from guidedlabelling.checks import POSITIVE, argument
from guidedlabelling.cli import run
from guidedlabelling.errors import Parser
from guidedlabelling.io import IGNORE, save_label_png

from script_errors import output_folder   # benchmarks/, this script's folder


def texture(rng, shape):
    """Noise at three scales stretched to the full grey range: JPEGs of about the size and decoding cost of VOC's
    photos (smooth noise alone compresses to a fraction of them, and would flatter the loader)."""
    layers = [ndimage.gaussian_filter(rng.random(shape), (sigma, sigma, 0)) for sigma in (12, 3, 0.7)]
    mixed = sum(layer / layer.std() for layer in layers)
    return (mixed - mixed.min()) / np.ptp(mixed) * 255


def random_photo(rng):
    """(RGB image, label) of one random photo: a textured background, 1-3 class-coloured ellipses."""
    h, w = (375, 500) if rng.random() < 0.7 else (500, 375)
    image = texture(rng, (h, w, 3))
    label = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for cls in rng.choice(np.arange(1, 21), size=rng.integers(1, 4), replace=False):
        cy, cx, ry, rx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w, *rng.uniform(0.1, 0.3, 2) * min(h, w)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        image[inside] = image[inside] * 0.3 + np.array([cls * 12, 255 - cls * 12, (cls * 57) % 255]) * 0.7
        label[inside] = cls
    edges = ndimage.morphological_gradient(label, size=5) > 0
    label[edges] = IGNORE
    return image.clip(0, 255).astype(np.uint8), label


def write_random_voc(root, n, seed=0):
    rng = np.random.default_rng(seed)
    root = Path(root)
    for sub in ("JPEGImages", "SegmentationClassAug", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    ids = [f"r{i:05d}" for i in range(n)]
    for i in ids:
        image, label = random_photo(rng)
        Image.fromarray(image).save(root / "JPEGImages" / f"{i}.jpg", quality=90)
        save_label_png(root / "SegmentationClassAug" / f"{i}.png", label)
    (root / "ImageSets" / "Segmentation" / "train_aug.txt").write_text("\n".join(ids) + "\n")
    return ids


def main(argv=None):
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--n", type=argument(int, POSITIVE), default=200, help="photos")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with output_folder("OUT"):
        write_random_voc(args.out, args.n, args.seed)


if __name__ == "__main__":
    run("__main__")  # bad input, Ctrl-C: one line
