#!/usr/bin/env python
"""Where the seed classifier's class maps fall on the built-in val images: on the class's head disc (the
discriminative part), the rest of its objects, other objects or the background, measured with the generator's own
head masks (docs/results.md, "Seeds on the discriminative part").

    python benchmarks/seed_maps.py measure data/runs/demo/seed_heatmaps/seed_split-test
    python benchmarks/seed_maps.py probe P4 --blocks 5 --cam_layers 1      # a variant, trained and measured

`probe` registers a variant of GAP-EffNet in networks.NETWORKS (the trunk's first --blocks blocks, with or without
a trous, under --cam_layers new 3x3 layers) as NAME-blocksB-cam_layersL[-no_atrous], the name its run's folders
carry, and runs the seed stages of the demo preset with it into --out_root.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from guidedlabelling import cli
from guidedlabelling import networks as N
from guidedlabelling.checks import NON_NEGATIVE, argument, between
from guidedlabelling.datasets.builtin import _VAL, NUM_CLASSES, image_rng, render_scene
from guidedlabelling.errors import InputError, Parser
from guidedlabelling.io import load_heatmap_mat
from guidedlabelling.networks import efficientnet as E
from guidedlabelling.seeds import SeedRule

REGIONS = ("head", "rest of object", "other objects", "background")


def regions(scene, cls):
    """Masks of REGIONS for one tagged class of a built-in scene."""
    head, body, other = (np.zeros(scene.label.shape, bool) for _ in range(3))
    for obj in scene.objects:
        if obj.cls == cls:
            head |= obj.part
            body |= obj.mask & ~obj.part
        else:
            other |= obj.mask
    return head, body, other, ~(head | body | other)


def measure(folder):
    """Per region, averaged over val images and their classes: its area, the map's (positive) mass in it (over the
    pairs whose map has any), how often the map's maximum lies in it, and the share of the seed pixels (the paper's
    rule) in it."""
    area, mass, peak, seeds, pairs, massed = np.zeros(4), np.zeros(4), np.zeros(4), np.zeros(4), 0, 0
    count = len(list(Path(folder).glob("val_*.mat")))
    if not count:
        raise InputError(f"{folder}: no val_*.mat heatmaps; give the seed heatmaps of a built-in preset's val images, "
                         "as data/runs/demo/seed_heatmaps/seed_split-test")
    for i in range(count):
        heat, hw = load_heatmap_mat(Path(folder) / f"val_{i:04d}.mat")
        scene = render_scene(image_rng(0, _VAL, i), hw[0], first_class=1 + i % NUM_CLASSES)  # the data's size
        classes = sorted({obj.cls for obj in scene.objects})
        if scene.label.shape != hw or heat.shape[0] != len(classes):
            raise InputError(f"{folder}/val_{i:04d}.mat: not the heatmaps of the built-in val image val_{i:04d}; give "
                             "those of a built-in preset (seed_split test)")
        labels = SeedRule().labels(heat, classes)
        for k, cls in enumerate(classes):
            masks = regions(scene, cls)
            positive = np.maximum(heat[k], 0)
            y, x = np.unravel_index(heat[k].argmax(), heat[k].shape)
            area += [m.mean() for m in masks]
            if positive.any():
                mass += [positive[m].sum() / positive.sum() for m in masks]
                massed += 1
            peak += [m[y, x] for m in masks]
            seeds += [(labels == cls)[m].sum() for m in masks]
            pairs += 1
    print(f"{'region':<16}{'area %':>8}{'map mass %':>12}{'maximum %':>11}{'seed pixels %':>15}")
    for name, a, m, p, s in zip(REGIONS, area / pairs, mass / max(massed, 1), peak / pairs,
                                seeds / max(seeds.sum(), 1)):
        print(f"{name:<16}{100 * a:>8.1f}{100 * m:>12.1f}{100 * p:>11.1f}{100 * s:>15.1f}")
    print(f"{pairs} image/class pairs; map mass over the {massed} whose map is positive somewhere")


class Variant(E.EffNetBase):
    """GAP-EffNet with the trunk cut after `blocks` blocks (a trous or not past stride 8) and `cam_layers` new
    3x3 layers (fc6_gap, fc7_gap, ...) before GAP and score; blocks 16 and no new layer is GAP-EffNet."""

    def __init__(self, num_classes, width=1.0, blocks=16, atrous=True, cam_layers=0):
        super().__init__(pretrained=True)
        if not atrous:  # stride 8 kept by stride-1 blocks without dilation, as GAP-HighRes drops VGG's pools
            for conv in (block._depthwise_conv for block in self.backbone._blocks):
                if conv.dilation != (1, 1):
                    conv.dilation, conv.padding = (1, 1), ((conv.kernel_size[0] - 1) // 2,) * 2
        self.blocks, channels = blocks, E.HEAD_CHANNELS
        if blocks < 16:
            channels = self.backbone._blocks[blocks - 1]._project_conv.out_channels
        self.new_layers = []
        for k in range(cam_layers):
            layer = nn.Conv2d(channels, E.scaled(1024, width), 3, padding=1)
            nn.init.normal_(layer.weight, std=0.005)
            nn.init.zeros_(layer.bias)
            setattr(self, f"fc{6 + k}_gap", layer)
            self.new_layers.append(f"fc{6 + k}_gap")
            channels = layer.out_channels
        self.score = nn.Linear(channels, num_classes, bias=False)
        nn.init.normal_(self.score.weight, std=0.005)
        self.new_layers.append("score")

    def forward(self, x):
        trunk = self.backbone
        x = trunk.stem(self.adapter(x))
        for block in trunk._blocks[:self.blocks]:
            x = block(x)
        if self.blocks == 16:
            x = trunk.head(x)
        for name in self.new_layers[:-1]:
            x = F.dropout(F.relu(getattr(self, name)(x)), 0.5, self.training)
        return self.score(F.dropout(x.mean((2, 3)), 0.2, self.training)), x

    def cams(self, feat, classes=None):
        weight = self.score.weight if classes is None else self.score.weight[classes]
        return torch.einsum("ck,bkhw->bchw", weight, feat)


def variant_name(args):
    """NAME with the variant's shape: the settings name the run's folders, and under NAME alone a second probe with
    other --blocks, --no_atrous or --cam_layers found the first one's network up to date and measured it again."""
    return f"{args.name}-blocks{args.blocks}-cam_layers{args.cam_layers}" + "-no_atrous" * args.no_atrous


def probe(args):
    net = variant_name(args)
    N.NETWORKS[net] = N.Network("seed", lambda num_classes, width: Variant(
        num_classes, width, args.blocks, not args.no_atrous, args.cam_layers), imagenet=True)
    common = ["--config", "demo", "--out_root", args.out_root, "--set", f"seed_train.net={net}"]
    common += [a for s in args.set for a in ("--set", s)]
    for stage, extra in (("seed_train", []), ("seed_heatmaps", ["--seed_split", "test"]),
                         ("seed_eval", ["--seed_split", "test"])):
        sys.argv = [stage, *common, *extra]
        try:
            cli.run_stage(stage)
        except SystemExit as e:
            if e.code:
                raise
    folder = next(Path(args.out_root, "demo", "seed_heatmaps").glob(f"*.net-{net}_*seed_split-test"))
    measure(folder)


def main(argv=None):
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("folder", type=Path)
    p = sub.add_parser("probe")
    p.add_argument("name")
    p.add_argument("--blocks", type=argument(int, between(1, 16)), default=16)
    p.add_argument("--no_atrous", action="store_true")
    p.add_argument("--cam_layers", type=argument(int, NON_NEGATIVE), default=0)
    p.add_argument("--out_root", default="data/runs/seed_probes")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    measure(args.folder) if args.command == "measure" else probe(args)


if __name__ == "__main__":
    cli.run("__main__")  # bad input, Ctrl-C: one line
