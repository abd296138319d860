#!/usr/bin/env python
"""How well the seed class maps of two classes tagged together tell their pixels apart (docs/results.md, "What
failed the issue's per-class line"). Over the training images tagged with both, on the pixels whose ground truth is
one of the two, the AUC for "a pixel of the first class" of each map (divided by its maximum, as the seeds are), of
their difference and of the raw maps' share, per image (mean) and over all pixels at once. 0.5: no information.

    python benchmarks/pair_maps.py face body --config msrc --out_root data/runs     (after ./script.py --config msrc)
"""
import argparse
import shlex

import numpy as np
from scipy.stats import rankdata

from guidedlabelling import config as C
from guidedlabelling import naming
from guidedlabelling.cli import run
from guidedlabelling.datasets import open_dataset
from guidedlabelling.errors import Parser
from guidedlabelling.io import load_heatmap_mat

from script_errors import made   # benchmarks/, this script's folder


def auc(positive, score):
    """Area under the ROC curve of `score` for the boolean `positive` (Mann-Whitney U over n1 * n0, ties halved);
    scipy has the ranks but no AUC."""
    ranks, n1 = rankdata(score), positive.sum()
    return (ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(score) - n1))


def scores(a, b):
    """{name: per-pixel evidence for the first class} from the two classes' raw class maps."""
    an, bn = a / a.max(), b / b.max()
    pa, pb = np.maximum(a, 0), np.maximum(b, 0)
    return {"first map / its max": an, "minus second map / its max": -bn, "difference of the two": an - bn,
            "first's share of the raw maps": pa / np.maximum(pa + pb, 1e-12)}


def main(argv=None):
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--config", default="msrc")
    parser.add_argument("--out_root", help="the run's --out_root (default: the preset's)")
    args = parser.parse_args(argv)
    settings = [f"out_root={args.out_root}"] if args.out_root else []
    cfg, preset = C.resolve(args.config, settings)
    flags = shlex.join(["--config", args.config] + [a for s in settings for a in ("--set", s)])  # of what makes it
    data = open_dataset(cfg["data"], cfg["data"]["dataset"])
    heat_dir = naming.stage_dir(cfg, preset, "seed_heatmaps")
    for name in (args.first, args.second):
        if name not in data.classes[1:]:
            parser.error(f"{name}: not a class of {data.root} ({', '.join(data.classes[1:])})")
    first, second = (data.classes.index(name) for name in (args.first, args.second))
    per_image, pooled, truth = {}, {}, []
    for i, item in enumerate(data.items):
        classes = list(data.image_classes(i))
        if first not in classes or second not in classes:
            continue
        heat, _ = load_heatmap_mat(made(heat_dir / f"{item.id}.mat", "seed_heatmaps", flags))
        label = data.label(i)
        where = (label == first) | (label == second)
        positive = label[where] == first
        if positive.all() or not positive.any():
            continue
        truth.append(positive)
        for name, score in scores(heat[classes.index(first)], heat[classes.index(second)]).items():
            per_image.setdefault(name, []).append(auc(positive, score[where]))
            pooled.setdefault(name, []).append(score[where])
    if not truth:
        parser.error(f"no image of {data.root} tagged with both {args.first} and {args.second} has pixels of both")
    positive = np.concatenate(truth)
    print(f"{len(truth)} images with pixels of both {args.first} and {args.second} ({heat_dir}); "
          f"{len(positive)} pixels, {100 * positive.mean():.1f}% {args.first}")
    print(f"{'AUC for ' + args.first:34s} per image (mean)  all pixels")
    for name, values in per_image.items():
        print(f"{name:34s} {np.mean(values):17.3f} {auc(positive, np.concatenate(pooled[name])):11.3f}")


if __name__ == "__main__":
    run("__main__")  # bad input, Ctrl-C: one line
