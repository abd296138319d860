"""Saliency maps: 8-bit foreground maps (maximum 255) for the training and test images (docs/method.md
section 3)."""
import numpy as np
import torch

from .. import precision as P
from .. import transforms as T
from ..checks import NON_NEGATIVE, POSITIVE, one_of
from ..inference import all_done, forward_all, load_model, measurable, todo, trained
from ..io import IGNORE, load_gray_png, save_gray_png
from ..metrics import saliency_scores
from ..networks import ImageNetObjectness
from ..progress import progress
from ..reads import Reads

IOU_THRESHOLDS = tuple(range(10, 100, 10))  # percent of 255
OPTIONS = {
    "test_iter": (0, "use the snapshot of this iteration (0: the final model)"),
    "test_size": (321, "images are fit (downscaled only) into this square"),
    "source": ("model", "model: the saliency network of src/saliency/train.py; imagenet-cam: the ImageNet "
                        "EfficientNet-Lite0 classifier's class activation maps of its top-5 classes "
                        "(class-agnostic, no saliency training)"),
}
CHECKS = {"test_iter": NON_NEGATIVE, "test_size": POSITIVE, "source": one_of("model", "imagenet-cam")}


def add_arguments(parser):
    parser.add_argument("--model_dir", help="saliency training folder holding model.pth")


def reads(cfg, given):
    """Both splits; the saliency model unless the maps come from ImageNet CAMs; the held-out saliency images."""
    d, c = cfg["data"], cfg["saliency_train"]
    model = cfg["saliency_test"]["source"] == "model"
    held = c["holdout"] or c["holdout_scenes"].strip()
    return Reads(splits=tuple(dict.fromkeys([d["dataset"], d["test_dataset"]])), evaluates=True,
                 upstream={"saliency_train": given.get("model_dir")} if model else {},
                 saliency_set=(c["saliency_data"], c["holdout"], "holdout", c["holdout_scenes"]) if held else ())


def run(stage):
    """Maps for the training images (guides) and the test images (pictures, saliency quality)."""
    cfg, out = stage.cfg, stage.out
    model = saliency_model(stage)
    splits = [stage.dataset(s) for s in dict.fromkeys([cfg["data"]["dataset"], cfg["data"]["test_dataset"]])]
    for data in splits:
        indices = todo(stage, data, ".png")
        stage.log.info("saliency %s: %d of %d images to do", data.split, len(indices), len(data))
        write_saliency(stage, model, data, indices, out)
    held = stage.saliency_set if stage.checked.reads.saliency_set else None
    if held:
        write_saliency(stage, model, held, range(len(held)), out / "holdout")
    if not all([all_done(stage, data, ".png") for data in splits]):
        return
    summary = {data.split: saliency_quality(list(split_pairs(data, out))) for data in splits
               if measurable(stage, data, "saliency quality")}
    if held:
        summary |= holdout_quality(held, out / "holdout")
    stage.log.info("saliency quality: %s", summary)
    stage.finish(summary)


def saliency_model(stage):
    source = stage.cfg["saliency_test"]["source"]
    if source == "imagenet-cam":
        stage.log.info("saliency: ImageNet class activation maps (no saliency training)")
        return ImageNetObjectness()
    return load_model(trained(stage.input_dir("saliency_train"), stage.cfg["saliency_test"]["test_iter"]),
                      "saliency")[0]


def foreground(scores):
    """Foreground map of a saliency output: softmax channel 1 of a 2-class net, a 1-channel map as it is."""
    return torch.softmax(scores, 0)[1:2] if scores.shape[0] == 2 else scores


def write_saliency(stage, model, data, indices, folder):
    """Foreground probability back in the image frame (as the release), stored as 8-bit with its maximum
    scaled to 255."""
    size = stage.cfg["saliency_test"]["test_size"]
    for i, scores, (offset, inner, hw) in progress(forward_all(
            model, data, indices, size, "shrink", stage.device, 8, stage.cfg["run"]["workers"],
            **P.options(stage.cfg["run"])), "saliency maps", len(indices)):
        fg = T.unfit_saliency(foreground(scores)[0].cpu().numpy(), size, offset, inner, hw)
        save_gray_png(folder / f"{data.items[i].id}.png", np.round(255 * fg / max(fg.max(), 1e-12)))


def saliency_quality(pairs):
    """Of (8-bit map, boolean object mask) pairs: foreground IoU of the maps thresholded at 10..90% of 255 (the
    guide stage's salthres picks one), and pysodmetrics' MAE, max F, S and max E (metrics.saliency_scores)."""
    inter, union = np.zeros(len(IOU_THRESHOLDS)), np.zeros(len(IOU_THRESHOLDS))
    for sal, fg in pairs:
        masks = sal.ravel()[None] >= np.array(IOU_THRESHOLDS)[:, None] / 100 * 255
        inter += (masks & fg.ravel()).sum(1)
        union += (masks | fg.ravel()).sum(1)
    return {"foreground_IoU": {str(t): float(100 * a / max(b, 1)) for t, a, b in zip(IOU_THRESHOLDS, inter, union)},
            **saliency_scores(pairs)}


def holdout_quality(held, folder):
    """Saliency quality on the held-out saliency images: all together ('holdout') and, when there are several
    saliency folders, each folder's ('holdout/<folder name>')."""
    pairs = {}
    for i, it in enumerate(held.items):
        pairs.setdefault(it.image.parent.parent.name, []).append((load_gray_png(folder / f"{it.id}.png"),
                                                                   held.label(i) > 0))
    summary = {"holdout": saliency_quality([p for group in pairs.values() for p in group])}
    if len(held.roots) > 1:
        summary |= {f"holdout/{name}": saliency_quality(group) for name, group in pairs.items()}
    return summary


def split_pairs(data, out):
    """(map, object mask) of every image of a labelled split, void pixels left out."""
    for i, it in enumerate(data.items):
        gt = data.label(i)
        valid = gt != IGNORE
        yield load_gray_png(out / f"{it.id}.png")[valid], gt[valid] > 0
