"""Seed heatmaps: CAMs of the present classes, mapped back to each image, plus all class scores
(docs/method.md section 2)."""
import numpy as np
import torch

from .. import precision as P
from .. import transforms as T
from ..checks import NON_NEGATIVE, POSITIVE, one_of
from ..inference import all_done, check_classes, forward_all, load_model, todo, trained
from ..io import load_heatmap_scores, save_heatmap_mat, save_mat
from ..progress import progress
from ..reads import Reads

OPTIONS = {
    "test_iter": (0, "test the snapshot of this iteration (0: the final model)"),
    "test_size": (0, "side the images are fitted into for the heatmaps (0: seed_train.input_size, the release's; "
                     "the GAP network takes any size, and a larger one keeps small objects)"),
    "test_interpord": (1, "interpolation order of the heatmap back-mapping (0 or 1)"),
    "test_batch": (8, "images per forward pass"),
    "seed_split": ("train", "heatmaps and class scores for: train (--dataset, the guides' input) or test "
                            "(--test_dataset, where the paper evaluates seeds and the classifier)"),
}
CHECKS = {"test_iter": NON_NEGATIVE, "test_size": lambda v: None if v == 0 or v >= 16 else "must be 0 or at least 16",
          "test_interpord": one_of(0, 1), "test_batch": POSITIVE, "seed_split": one_of("train", "test")}


def add_arguments(parser):
    parser.add_argument("--model_dir", help="seed training folder holding model.pth")


def reads(cfg, given):
    return Reads(splits=(split_of(cfg),), upstream={"seed_train": given.get("model_dir")})


def add_split_flag(parser):
    """--seed_split for the commands that evaluate seed_heatmaps' output (it is seed_heatmaps' setting)."""
    parser.add_argument("--seed_split", dest="seed_heatmaps.seed_split", metavar="SEED_SPLIT",
                        help=f"the split of seed_heatmaps' output to evaluate: {OPTIONS['seed_split'][1]}")


def split_of(cfg):
    """The dataset split the seed heatmaps and class scores are made for (--seed_split)."""
    return cfg["data"]["dataset" if cfg["seed_heatmaps"]["seed_split"] == "train" else "test_dataset"]


def run(stage):
    cfg, out = stage.cfg, stage.out
    data = stage.dataset(split_of(cfg))
    model, meta = load_model(trained(stage.input_dir("seed_train"), cfg["seed_heatmaps"]["test_iter"]), "seed")
    check_classes(meta, data)
    size = cfg["seed_heatmaps"]["test_size"] or cfg["seed_train"]["input_size"]
    order = cfg["seed_heatmaps"]["test_interpord"]
    indices = todo(stage, data, ".mat", block=cfg["seed_heatmaps"]["test_batch"])
    stage.log.info("seed heatmaps: %d of %d images to do", len(indices), len(data))
    for i, (scores, feat), (offset, inner, hw) in progress(forward_all(
            model, data, indices, size, "fit", stage.device, cfg["seed_heatmaps"]["test_batch"], cfg["run"]["workers"],
            **P.options(cfg["run"])), "seed heatmaps", len(indices)):
        classes = data.image_classes(i)
        cams = model.cams(feat[None], torch.as_tensor(classes, dtype=torch.long) - 1)[0]
        heat = T.unfit(cams.float(), size, offset, inner, hw, order).cpu().numpy()
        save_heatmap_mat(out / f"{data.items[i].id}.mat", heat, hw, scores.float().cpu().numpy())
    if not all_done(stage, data, ".mat"):
        return
    collect_scores(data, out)
    stage.finish({"images": len(data)})


def collect_scores(data, out):
    """cls_res.mat: every image's class scores [N, C-1] (from its heatmap file), ids, and ground-truth labels."""
    scores = np.stack([load_heatmap_scores(out / f"{it.id}.mat") for it in data.items])
    gt = np.stack([data.class_vector(i) for i in range(len(data))])
    save_mat(out / "cls_res.mat", {"scores": scores.astype(np.float32), "ids": np.array(data.ids, dtype=object),
                                   "gt": gt, "classes": np.array(data.classes[1:], dtype=object)})
