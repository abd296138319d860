"""Seed heatmaps: CAMs of the present classes, mapped back to each image, plus all class scores
(docs/method.md section 2)."""
import numpy as np
import torch

from .. import precision as P
from .. import transforms as T
from ..checks import MAX_SIDE, MIN_SIDE, NON_NEGATIVE, POSITIVE, one_of, side_or_zero
from ..datasets import names
from ..inference import all_done, check_classes, forward_sizes, load_model, todo, trained
from ..io import CLASS_SCORES, load_heatmap_scores, save_heatmap_mat, save_mat
from ..progress import progress
from ..reads import Reads

OPTIONS = {
    "test_iter": (0, "test the snapshot of this iteration (0: the final model)"),
    "test_size": (0, "side the images are fitted into for the heatmaps (0: seed_train.input_size, the release's; "
                     "the GAP network takes any size, and a larger one keeps small objects)"),
    "extra_sizes": ("", "further sides, comma-separated, the images are also fitted into: their CAMs, mapped back to "
                        "the image, are averaged with test_size's (multi-scale heatmaps, not the release's; the class "
                        "scores stay test_size's). A larger side keeps objects a few percent of the frame"),
    "test_interpord": (1, "interpolation order of the heatmap back-mapping (0 or 1)"),
    "test_batch": (8, "images per forward pass"),
    "seed_split": ("train", "heatmaps and class scores for: train (--dataset, the guides' input) or test "
                            "(--test_dataset, where the paper evaluates seeds and the classifier)"),
}


def sides(text):
    """extra_sizes' sides as ints ('' none)."""
    return [int(side) for side in names(text)]


def sizes_problem(text):
    """extra_sizes' check: sides of MIN_SIDE..MAX_SIDE px, like test_size's."""
    try:
        bad = [side for side in sides(text) if not MIN_SIDE <= side <= MAX_SIDE]
    except ValueError:
        return "write sides in pixels, comma-separated, such as 321 or 241,321"
    return f"{', '.join(map(str, bad))}: a side must be within {MIN_SIDE}..{MAX_SIDE}" if bad else None


CHECKS = {"test_iter": NON_NEGATIVE,
          "test_size": side_or_zero,
          "extra_sizes": sizes_problem,
          "test_interpord": one_of(0, 1), "test_batch": POSITIVE, "seed_split": one_of("train", "test")}


def add_arguments(parser):
    parser.add_argument("--model_dir", help="seed training folder holding model.pth")


def reads(cfg, given):
    return Reads(splits=(heatmap_split(cfg),), upstream={"seed_train": given.get("model_dir")})


def add_split_flag(parser):
    """--seed_split for the commands that evaluate seed_heatmaps' output (it is seed_heatmaps' setting)."""
    parser.add_argument("--seed_split", dest="seed_heatmaps.seed_split", metavar="SEED_SPLIT",
                        help=f"the split of seed_heatmaps' output to evaluate: {OPTIONS['seed_split'][1]} (default: "
                             f"{OPTIONS['seed_split'][0]})")


def heatmap_split(cfg):
    """The dataset split the seed heatmaps and class scores are made for (--seed_split)."""
    return cfg["data"]["dataset" if cfg["seed_heatmaps"]["seed_split"] == "train" else "test_dataset"]


def run(stage):
    cfg, out = stage.cfg, stage.out
    data = stage.dataset(heatmap_split(cfg))
    model, meta = load_model(trained(stage.input_dir("seed_train"), cfg["seed_heatmaps"]["test_iter"]), "seed")
    check_classes(meta, data)
    sizes = list(dict.fromkeys([cfg["seed_heatmaps"]["test_size"] or cfg["seed_train"]["input_size"],
                                *sides(cfg["seed_heatmaps"]["extra_sizes"])]))  # a size given twice: once
    order = cfg["seed_heatmaps"]["test_interpord"]
    batch = cfg["seed_heatmaps"]["test_batch"]
    indices = todo(stage, data, ".mat", block=batch)
    stage.log.info("seed heatmaps at %s px: %d of %d images to do", ", ".join(map(str, sizes)), len(indices),
                   len(data))
    passes = forward_sizes(model, data, indices, sizes, "fit", stage.device, batch, cfg["run"]["workers"],
                           **P.options(cfg["run"]))
    for outputs in progress(passes, "seed heatmaps", len(indices)):
        i, (scores, _), frame = outputs[0]
        heat = class_heatmaps(model, outputs, data.image_classes(i), order)
        save_heatmap_mat(out / f"{data.items[i].id}.mat", heat.cpu().numpy(), frame.hw, scores.float().cpu().numpy())
    if not all_done(stage, data, ".mat"):
        return
    collect_scores(data, out)
    stage.finish({"images": len(data)})


def class_heatmaps(model, outputs, tagged, order):
    """The class activation maps of an image's tagged classes (1-based) in its frame, zoomed back with
    scipy.ndimage.zoom's `order`, averaged over the sizes of `outputs` (forward_sizes' per image)."""
    classes = torch.as_tensor(tagged, dtype=torch.long) - 1
    maps = [T.unfit(model.cams(feat[None], classes)[0].float(), f.canvas, f.offset, f.inner, f.hw, order)
            for _, (_, feat), f in outputs]
    return torch.stack(maps).mean(0)


def collect_scores(data, out):
    """cls_res.mat: every image's class scores [N, C-1] (from its heatmap file), ids, and ground-truth labels."""
    scores = np.stack([load_heatmap_scores(out / f"{it.id}.mat") for it in data.items])
    gt = np.stack([data.class_vector(i) for i in range(len(data))])
    save_mat(out / CLASS_SCORES, {"scores": scores.astype(np.float32), "ids": np.array(data.ids, dtype=object),
                                   "gt": gt, "classes": np.array(data.classes[1:], dtype=object)})
