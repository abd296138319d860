#!/usr/bin/env python3
"""The two CRF backends (torch, pydensecrf2) on real unaries of a finished run: the segmenter's test-time
softmax on val images, and G2's split unaries (blurred seed masks) on the training images where several classes
touch one saliency component. Prints label agreement and marginal differences at both parameter sets, and the
mIoU (%) of the CRF'd predictions on those val images (the first --images, not the whole val unless it has no
more) with each backend. Needs pydensecrf2.

    python benchmarks/crf_agreement.py --config msrc [--set KEY=VALUE ...] [--images 100]
"""
import argparse
import json
import shlex

import numpy as np
import torch

from guidedlabelling import config as C
from guidedlabelling import naming
from guidedlabelling import crf
from guidedlabelling import transforms as T
from guidedlabelling.checks import POSITIVE, argument
from guidedlabelling.cli import run
from guidedlabelling.datasets import open_dataset
from guidedlabelling.errors import Parser
from guidedlabelling.guide_rules import SALIENCY_MIN_FRACTION, components, grey_level, seed_components, split_energy
from guidedlabelling.inference import forward_all, geometry, load_model, trained
from guidedlabelling.io import load_gray_png, load_heatmap_mat
from guidedlabelling.metrics import confusion, report
from guidedlabelling.seeds import SeedRule

from crf_cases import agreement   # benchmarks/, this script's folder
from script_errors import made


def softmax_cases(cfg, preset, n):
    """(image, -log p, ground truth) of the first n val images, p the segmenter's softmax in the image frame."""
    data = open_dataset(cfg["data"], cfg["data"]["test_dataset"])
    model, _ = load_model(trained(naming.stage_dir(cfg, preset, "seg_train")), "segmentation")
    t = cfg["segmentations"]
    cases = []
    for i, scores, frame in forward_all(model, data, range(min(n, len(data))), t["test_size"],
                                        geometry(t["test_resize"]), torch.device("cpu"),
                                        net_size=cfg["seg_train"]["input_size"]):
        probs = torch.softmax(T.unfit(scores, frame.canvas, frame.offset, frame.inner, frame.hw), 0).numpy()
        cases.append((data.image(i), -np.log(np.clip(probs, 1e-8, 1)), data.label(i)))
    return cases, data.classes


def split_cases(cfg, preset, n, flags):
    """(image, G2's split unary) wherever several classes' seeds touch one saliency component (training split)."""
    data = open_dataset(cfg["data"], cfg["data"]["dataset"])
    heat_dir, sal_dir = naming.stage_dir(cfg, preset, "seed_heatmaps"), naming.stage_dir(cfg, preset, "saliency")
    cases = []
    for i, it in enumerate(data.items):
        heat, hw = load_heatmap_mat(made(heat_dir / f"{it.id}.mat", "seed_heatmaps", flags))
        seed = SeedRule.of(cfg).labels(heat, data.image_classes(i))
        salient = load_gray_png(made(sal_dir / f"{it.id}.png", "saliency", flags)) >= \
            grey_level(cfg["guide_labels"]["salthres"])
        sal, n_sal = components(salient, SALIENCY_MIN_FRACTION * seed.size)
        comp, comp_class = seed_components(seed)
        for s in range(1, n_sal + 1):
            classes = sorted({int(c) for c in comp_class[np.unique(comp[sal == s])] if c})
            if len(classes) > 1:
                cases.append((data.image(i), split_energy(seed, classes)))
                break
        if len(cases) == n:
            break
    return cases


def test_miou(cases, classes, backend):
    conf = sum(confusion(gt, crf.dense_crf(image, unary, "deeplab", backend=backend).argmax(0).astype(np.uint8),
                         len(classes)) for image, unary, gt in cases)
    return report(conf, classes)["mIoU"]


def main(argv=None):
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="msrc")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--images", type=argument(int, POSITIVE), default=100)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg, preset = C.resolve(args.config, args.set)
    softmax, classes = softmax_cases(cfg, preset, args.images)
    flags = shlex.join(["--config", args.config] + [a for s in args.set for a in ("--set", s)])  # of the run
    splits = split_cases(cfg, preset, args.images, flags)
    kinds = {"softmax": softmax, "g2_split": splits}
    result = {f"{kind}_{params}": agreement([c[0] for c in cases], [c[1] for c in cases], params)
              for kind, cases in kinds.items() for params in ("deeplab", "seed")}
    result["test_mIoU_percent_torch"] = test_miou(softmax, classes, "torch")
    result["test_mIoU_percent_pydensecrf"] = test_miou(softmax, classes, "pydensecrf")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    run("__main__")  # bad input, Ctrl-C: one line
