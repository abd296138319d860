"""Classifier evaluation: per-class average precision and mAP of the seed network's class scores
(docs/method.md section 2). Reads seed_heatmaps' cls_res.mat of the split --seed_split names."""
import numpy as np
import scipy.io

from ..checks import one_of
from ..io import CLASS_SCORES, InputError, save_json
from ..metrics import cell, classifier_report
from ..pipeline import command
from ..reads import Reads
from .seed_heatmaps import add_split_flag, heatmap_split

AP_VARIANTS = ("voc", "plain")
OPTIONS = {
    "ap_variant": ("voc", "average precision: voc (the release's, area under the precision envelope) or "
                          "plain (non-interpolated, as sklearn's average_precision_score)"),
}
CHECKS = {"ap_variant": one_of(*AP_VARIANTS)}


def add_arguments(parser):
    parser.add_argument("--seed_dir", help="seed heatmaps folder holding cls_res.mat (default: seed_heatmaps' output)")
    add_split_flag(parser)


def reads(cfg, given):
    return Reads(splits=(heatmap_split(cfg),), upstream={"seed_heatmaps": given.get("seed_dir")})


def load_class_scores(path):
    """cls_res.mat of seed_heatmaps: `scores` [N, C-1] and `ids` [N]."""
    if not path.exists():
        raise InputError(f"{path}: missing; run {command('seed_heatmaps')} first (it writes cls_res.mat last)")
    try:
        m = scipy.io.loadmat(path)
        scores, ids = np.atleast_2d(m["scores"]).astype(np.float64), [str(np.ravel(v)[0]) for v in m["ids"].ravel()]
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise InputError(f"{path}: unreadable class scores ({e}); rerun {command('seed_heatmaps')}") from None
    if scores.shape[0] != len(ids):
        raise InputError(f"{path}: {scores.shape[0]} score rows for {len(ids)} ids; rerun {command('seed_heatmaps')}")
    return scores, ids


def image_labels(data, ids, path):
    """[N, C-1] image-level labels in the order of `ids`: 1 present, -1 absent, 0 difficult. From the dataset's
    classification labels where it has them (VOC's ImageSets/Main lists, as the release's eval_cls), else from its
    image classes."""
    index = {image_id: i for i, image_id in enumerate(data.ids)}
    missing = [image_id for image_id in ids if image_id not in index]
    if missing:
        raise InputError(f"{path}: image {missing[0]} is not in split {data.split} of {data.root}; evaluate with "
                         "the split the scores were made for (--seed_split)")
    main = data.classification_labels()
    if main is not None:
        return np.stack([[main[c][image_id] for c in range(len(main))] for image_id in ids])
    return np.stack([2 * data.class_vector(index[image_id]) - 1 for image_id in ids])


def run(stage):
    """results.json (per-class AP, mAP) and the table in the log."""
    cfg, out = stage.cfg, stage.out
    variant = cfg["cls_eval"]["ap_variant"]
    path = stage.input_dir("seed_heatmaps") / CLASS_SCORES
    data = stage.dataset(heatmap_split(cfg))
    scores, ids = load_class_scores(path)
    if scores.shape[1] != data.num_classes - 1:
        raise InputError(f"{path}: scores for {scores.shape[1]} classes, split {data.split} has "
                         f"{data.num_classes - 1}; evaluate with the dataset the scores were made for")
    rep = dict(classifier_report(scores, image_labels(data, ids, path), data.classes[1:], variant), split=data.split)
    save_json(out / "results.json", rep)
    stage.log.info("classifier on %s (%s AP):\n%s", data.split, variant, format_ap(rep))
    stage.finish({k: rep[k] for k in ("mAP", "images", "ap_variant", "split")} | {"results": str(out / "results.json")})


def format_ap(rep):
    lines = [f"{'class':<16}{'AP':>8}"]
    lines += [f"{name:<16}{cell(ap, 8)}" for name, ap in rep["per_class_AP"].items()]
    return "\n".join(lines + [f"{'mAP':<16}{cell(rep['mAP'], 8)}"])
