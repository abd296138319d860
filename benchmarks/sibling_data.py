#!/usr/bin/env python
"""A sibling of the built-in data, for checking that the demo preset is not fitted to it: eight classes of
objects that share one body and are told apart only by a small coloured emblem (four colours x two shapes) placed
anywhere on the body, other body shapes (rounded boxes, lozenges, ellipses, L-shapes), other textures (stripes,
checks, dots, smooth noise) that co-occur with classes, and a saliency set of its own (other shapes, some with an
emblem of a random colour).

    python benchmarks/sibling_data.py DIR        # DIR/voc (VOC layout), DIR/saliency (images/, masks/)
    ./script.py --dataset_dir DIR/voc --set saliency_data=DIR/saliency --out_root DIR/runs

Written from scratch rather than from datasets/builtin.py's drawing code, so that it shares no shape with it.
Written into a temporary folder beside DIR that becomes DIR once whole: an interrupted run leaves no DIR that
looks like a set.
"""
import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from guidedlabelling.checks import POSITIVE, argument
from guidedlabelling.cli import run
from guidedlabelling.errors import Parser
from guidedlabelling.io import save_label_png

from script_errors import output_folder, whole_folder   # benchmarks/, this script's folder

SIZE = 128
EMBLEM_COLOURS = ((220, 30, 30), (30, 60, 230), (240, 210, 20), (20, 200, 200))
EMBLEM_SHAPES = ("square", "triangle")
CLASSES = ["background"] + [f"{c}{s}" for s in EMBLEM_SHAPES for c in ("red", "blue", "yellow", "cyan")]
TEXTURES = ("stripes", "checks", "dots", "noise")
P_PREFERRED_TEXTURE = 0.3  # a class's texture co-occurs with it this much more often than chance


def polygon_mask(points, size=SIZE):
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return mask.astype(bool)


def body_outline(rng, centre, half):
    """Points of a rounded box, lozenge, ellipse or L-shape of half-size `half`, rotated at random."""
    kind = rng.integers(4)
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    if kind == 0:  # rounded box: a superellipse
        c, s = np.cos(t), np.sin(t)
        unit = np.stack([np.sign(c) * np.abs(c) ** 0.4, np.sign(s) * np.abs(s) ** 0.4], 1)
    elif kind == 1:  # lozenge
        unit = np.array([(1, 0), (0, 0.7), (-1, 0), (0, -0.7)], float)
    elif kind == 2:  # ellipse
        unit = np.stack([np.cos(t), 0.6 * np.sin(t)], 1)
    else:  # L-shape
        unit = np.array([(-1, -1), (0.1, -1), (0.1, 0.2), (1, 0.2), (1, 1), (-1, 1)], float)
    angle = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return unit * half @ rotation.T + centre


def emblem_mask(rng, body, shape):
    """A small square or triangle inside the body (about a tenth of its area), or None where none fits."""
    ys, xs = np.nonzero(cv2.erode(body.astype(np.uint8), np.ones((9, 9), np.uint8)))
    if not len(ys):
        return None
    k = rng.integers(len(ys))
    r = max(3.0, 0.16 * np.sqrt(body.sum()))
    if shape == "square":
        unit = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], float) * 0.8
    else:
        unit = np.array([(0, -1), (0.95, 0.7), (-0.95, 0.7)], float)
    return polygon_mask(unit * r + (xs[k], ys[k])) & body


def texture(rng, kind):
    """A greyish background texture (float RGB)."""
    base = rng.uniform(90, 170) + rng.normal(0, 8, 3)
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(float)
    if kind == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(8, 20)
        pattern = np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period)
    elif kind == "checks":
        period = rng.uniform(10, 24)
        pattern = np.where((xx // period + yy // period) % 2, 1.0, -1.0)
    elif kind == "dots":
        period = rng.uniform(9, 16)
        pattern = np.where(np.hypot(xx % period - period / 2, yy % period - period / 2) < period / 4, 1.0, -1.0)
    else:
        pattern = cv2.resize(rng.normal(size=(6, 6)).astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    return base + rng.uniform(8, 16) * pattern[..., None]


def body_colour(rng):
    """Muted olive to brown, the same family for every class."""
    return np.array([rng.uniform(110, 170), rng.uniform(90, 140), rng.uniform(40, 80)])


def scene(rng, first_class):
    """(image, label) with one or two objects, the second of the first's class three times in four."""
    classes = [first_class] + ([first_class if rng.random() < 0.75 else int(rng.integers(1, len(CLASSES)))]
                               if rng.random() < 0.4 else [])
    preferred = TEXTURES[(first_class - 1) % len(TEXTURES)]
    image = texture(rng, preferred if rng.random() < P_PREFERRED_TEXTURE else TEXTURES[rng.integers(len(TEXTURES))])
    label = np.zeros((SIZE, SIZE), np.uint8)
    for cls in classes:
        half = rng.uniform(0.16, 0.3) * SIZE
        body = polygon_mask(body_outline(rng, rng.uniform(half, SIZE - half, 2), half)) & (label == 0)
        emblem = emblem_mask(rng, body, EMBLEM_SHAPES[(cls - 1) // 4])
        if emblem is None or emblem.sum() < 6:
            continue
        image[body] = body_colour(rng)
        image[emblem] = EMBLEM_COLOURS[(cls - 1) % 4]
        label[body] = cls
    if not label.any():
        return scene(rng, first_class)
    return finish(image, rng), label


def saliency_sample(rng):
    """(image, 0/255 mask) of one or two objects of the sibling's shapes in random colours, some with an emblem."""
    image = texture(rng, TEXTURES[rng.integers(len(TEXTURES))])
    mask = np.zeros((SIZE, SIZE), bool)
    for _ in range(1 + int(rng.random() < 0.4)):
        half = rng.uniform(0.16, 0.3) * SIZE
        body = polygon_mask(body_outline(rng, rng.uniform(half, SIZE - half, 2), half))
        image[body] = rng.uniform(30, 255, 3)
        emblem = emblem_mask(rng, body, EMBLEM_SHAPES[rng.integers(2)]) if rng.random() < 0.5 else None
        if emblem is not None:
            image[emblem] = rng.uniform(0, 255, 3)
        mask |= body
    return finish(image, rng), np.where(mask, 255, 0).astype(np.uint8)


def finish(image, rng):
    return np.clip(np.round(image + rng.normal(0, 2.0, image.shape)), 0, 255).astype(np.uint8)


def write(out, n_train, n_val, n_saliency, seed):
    voc, sal = out / "voc", out / "saliency"
    for folder in (voc / "JPEGImages", voc / "SegmentationClass", voc / "ImageSets" / "Segmentation",
                   sal / "images", sal / "masks"):
        folder.mkdir(parents=True, exist_ok=True)
    (voc / "classes.txt").write_text("".join(f"{name}\n" for name in CLASSES))
    for stream, split, n in ((0, "train", n_train), (1, "val", n_val)):
        ids = [f"{split}_{i:04d}" for i in range(n)]
        for i, image_id in enumerate(ids):
            image, label = scene(np.random.default_rng([seed, stream, i]), 1 + i % (len(CLASSES) - 1))
            Image.fromarray(image).save(voc / "JPEGImages" / f"{image_id}.jpg", quality=95)
            save_label_png(voc / "SegmentationClass" / f"{image_id}.png", label)
        (voc / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("".join(f"{x}\n" for x in ids))
    for i in range(n_saliency):
        image, mask = saliency_sample(np.random.default_rng([seed, 2, i]))
        Image.fromarray(image).save(sal / "images" / f"sal_{i:04d}.jpg", quality=95)
        Image.fromarray(mask).save(sal / "masks" / f"sal_{i:04d}.png")


def main(argv=None):
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--train", type=argument(int, POSITIVE), default=400)
    parser.add_argument("--val", type=argument(int, POSITIVE), default=100)
    parser.add_argument("--saliency", type=argument(int, POSITIVE), default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with output_folder("DIR"), whole_folder(args.out) as tmp:
        write(tmp, args.train, args.val, args.saliency, args.seed)


if __name__ == "__main__":
    run("__main__")  # bad input, Ctrl-C: one line
