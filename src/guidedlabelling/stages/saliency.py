"""Saliency maps: 8-bit foreground maps (maximum 255) for the training and test images (docs/method.md
section 3)."""
import zlib

import numpy as np
import torch
from PIL import Image

from .. import precision as P
from .. import store
from .. import transforms as T
from ..checks import NON_NEGATIVE, SIDE, one_of
from ..fingerprint import file_digest
from ..guide_rules import grey_level
from ..inference import all_done, forward_all, load_model, measurable, todo, trained
from ..io import IGNORE, load_gray_png, save_gray_png
from ..metrics import image_scores, mean_scores, saliency_scores
from ..networks import ImageNetObjectness
from ..progress import progress
from ..reads import Reads
from ..saliency_samples import interior_point, zoom_box

BATCH = 8  # images per forward pass (inference.forward_all)
IOU_THRESHOLDS = tuple(range(10, 100, 10))  # percent of 255
AREA_EDGES = (0, 5, 15, 35, 60, 100)  # percent of the frame the object covers: held-out quality per range
ZOOM_SHARES = (0.5, 0.9)  # the object's share of each held-out image's zoom crop ('holdout_zoom')
HELD_OUT_FOLDERS = ("holdout", "holdout_zoom")  # the held-out images' folders of maps, their names in done.json
OPTIONS = {
    "test_iter": (0, "use the snapshot of this iteration (0: the final model)"),
    "test_size": (321, "images are fit (downscaled only) into this square"),
    "source": ("model", "model: the saliency network of src/saliency/train.py; imagenet-cam: the ImageNet "
                        "EfficientNet-Lite0 classifier's class activation maps of its top-5 classes "
                        "(class-agnostic, no saliency training)"),
}
CHECKS = {"test_iter": NON_NEGATIVE, "test_size": SIDE, "source": one_of("model", "imagenet-cam")}


def add_arguments(parser):
    parser.add_argument("--model_dir", help="saliency training folder holding model.pth")


def reads(cfg, given):
    """Both splits; the saliency model unless the maps come from ImageNet CAMs; the held-out saliency images."""
    d, c = cfg["data"], cfg["saliency_train"]
    model = cfg["saliency"]["source"] == "model"
    held = c["holdout"] or c["holdout_scenes"].strip()
    return Reads(splits=tuple(dict.fromkeys([d["dataset"], d["test_dataset"]])), evaluates=True, tags=False,
                 upstream={"saliency_train": given.get("model_dir")} if model else {},
                 saliency_set=(c["saliency_data"], c["holdout"], "holdout", c["holdout_scenes"]) if held else ())


def run(stage):
    """Maps for the training images (guides) and the test images (pictures, saliency quality), and the held-out
    saliency images' maps and quality."""
    cfg, out = stage.cfg, stage.out
    model, model_file = saliency_model(stage)
    splits = [stage.dataset(s) for s in dict.fromkeys([cfg["data"]["dataset"], cfg["data"]["test_dataset"]])]
    for data in splits:
        indices = todo(stage, data, ".png", block=BATCH)
        stage.log.info("saliency %s: %d of %d images to do", data.split, len(indices), len(data))
        write_saliency(stage, model, data, indices, out)
    if not all([all_done(stage, data, ".png") for data in splits]):
        return
    summary = {data.split: saliency_quality(list(split_pairs(data, out))) for data in splits
               if measurable(stage, data, "saliency quality")}
    if stage.checked.reads.saliency_set:
        summary |= held_out_quality(stage, model, model_file)
        for name in HELD_OUT_FOLDERS:
            stage.log.info("%s quality per object area:\n%s", name, score_table(summary[name]["by_area"]))
    if summary:  # the foreground IoU at each threshold is in done.json
        stage.log.info("saliency quality:\n%s", score_table(summary, "maps of"))
    stage.finish(summary)


def held_out_quality(stage, model, model_file):
    """The maps of the held-out saliency images, whole (holdout/) and zoomed (holdout_zoom/), and their quality
    (holdout_quality). The maps do not depend on the dataset a run labels: they come from the store when it holds
    those of this network, held-out set and settings (store.py), else they are computed and put there."""
    held, out = stage.saliency_set, stage.out
    sets = dict(zip(HELD_OUT_FOLDERS, (held, ZoomedMasks(held, stage.cfg["saliency"]["test_size"]))))
    stored = stored_held_out(stage, held, model_file)
    if not (stored and copied(stage, stored, [f"{f}/{it.id}.png" for f in sets for it in held.items])):
        for folder, data in sets.items():
            write_saliency(stage, model, data, range(len(data)), out / folder)
        if stored:
            try:
                stored.publish(out, HELD_OUT_FOLDERS, replace=stage.cfg["run"]["overridecache"])
            except OSError as e:
                stage.log.warning("store: could not keep the held-out maps in %s (%s)", stored, e.strerror or e)
    summary = {}
    for folder, data in sets.items():
        summary |= holdout_quality(data, out / folder, folder)
    return summary


def copied(stage, stored, names):
    """Whether the stored held-out maps (names: their paths in the stage folder) were copied into the stage
    folder: not with --overridecache, nor when they cannot be read (reported)."""
    if stage.cfg["run"]["overridecache"]:
        return False
    try:
        done = stored.copy_to(stage.out, names)
    except OSError as e:
        stage.log.warning("store: could not copy the held-out maps from %s (%s); computing them", stored,
                          e.strerror or e)
        return False
    if done:
        stage.log.info("held-out saliency maps: reused from the store, %s", stored)
    return done


def stored_held_out(stage, held, model_file):
    """The store's place for the held-out maps of this model file, or None (run.store none, or maps not from a
    saliency network)."""
    root = store.store_root(stage.cfg["run"]["store"])
    if root is None or model_file is None:
        return None
    digests = stage.checked.digests.manifest([p for it in held.items for p in (it.image, it.label)])
    items = [(it.image.name, digests[str(it.image)], digests[str(it.label)]) for it in held.items]
    settings = {"test_size": stage.cfg["saliency"]["test_size"], "device": torch.device(stage.device).type,
                "batch": BATCH, "zoom_shares": ZOOM_SHARES} | P.options(stage.cfg["run"])
    return store.HeldOut(root, store.held_out_key(file_digest(model_file), items, settings))


def saliency_model(stage):
    """(the network, its model file), the file None for ImageNet CAMs."""
    source = stage.cfg["saliency"]["source"]
    if source == "imagenet-cam":
        stage.log.info("saliency: ImageNet class activation maps (no saliency training)")
        return ImageNetObjectness(), None
    path = trained(stage.input_dir("saliency_train"), stage.cfg["saliency"]["test_iter"])
    return load_model(path, "saliency")[0], path


def foreground(scores):
    """Foreground map of a saliency output: softmax channel 1 of a 2-class net, a 1-channel map as it is."""
    return torch.softmax(scores, 0)[1:2] if scores.shape[0] == 2 else scores


def saliency_map(scores, size, frame):
    """A saliency output's map of the image as the release makes it: the foreground probability back in the image
    frame, its maximum scaled to 255; rounded to 8 bits to be stored."""
    fg = T.unfit_saliency(foreground(scores)[0].cpu().numpy(), size, frame.offset, frame.inner, frame.hw)
    return np.round(255 * fg / max(fg.max(), 1e-12))


def write_saliency(stage, model, data, indices, folder):
    size = stage.cfg["saliency"]["test_size"]
    for i, scores, frame in progress(forward_all(
            model, data, indices, size, "shrink", stage.device, BATCH, stage.cfg["run"]["workers"],
            **P.options(stage.cfg["run"])), "saliency maps", len(indices)):
        save_gray_png(folder / f"{data.items[i].id}.png", saliency_map(scores, size, frame))


def saliency_quality(pairs, scores=None):
    """Of (8-bit map, boolean object mask) pairs: foreground IoU of the maps thresholded at 10..90% of 255 (the
    guide stage's salthres picks one), and pysodmetrics' MAE, max F, S and max E (metrics.saliency_scores; the
    mean of `scores`, the pairs' metrics.image_scores, when given)."""
    inter, union = np.zeros(len(IOU_THRESHOLDS)), np.zeros(len(IOU_THRESHOLDS))
    for sal, fg in pairs:
        masks = sal.ravel()[None] >= grey_level(np.array(IOU_THRESHOLDS))[:, None]
        inter += (masks & fg.ravel()).sum(1)
        union += (masks | fg.ravel()).sum(1)
    return {"foreground_IoU": {str(t): float(100 * a / max(b, 1)) for t, a, b in zip(IOU_THRESHOLDS, inter, union)},
            **(saliency_scores(pairs) if scores is None else mean_scores(scores))}


def holdout_quality(held, folder, name="holdout"):
    """Saliency quality on the held-out saliency images: all together (`name`, with its quality per range of
    object area) and, when there are several saliency folders, each folder's ('<name>/<folder name>'). Each
    image is scored once (metrics.image_scores), and its scores averaged into every group it is in."""
    pairs = [(load_gray_png(folder / f"{it.id}.png"), held.label(i) > 0) for i, it in enumerate(held.items)]
    scores = [image_scores(sal, fg) for sal, fg in pairs]
    summary = {name: saliency_quality(pairs, scores) | {"by_area": area_quality(pairs, scores)}}
    if len(held.roots) > 1:
        groups = {}
        for i, it in enumerate(held.items):
            groups.setdefault(it.image.parent.parent.name, []).append(i)
        summary |= {f"{name}/{root}": saliency_quality([pairs[i] for i in group], [scores[i] for i in group])
                    for root, group in groups.items()}
    return summary


def area_quality(pairs, scores):
    """saliency_scores (with the image count) per range of the object's share of the frame (AREA_EDGES), named
    '00-05%' etc. so that they sort in order; scores: the pairs' metrics.image_scores."""
    bucket = np.digitize([100 * fg.mean() for _, fg in pairs], AREA_EDGES[1:-1])
    return {f"{lo:02d}-{hi:02d}%": mean_scores([s for s, b in zip(scores, bucket) if b == k])
            for k, (lo, hi) in enumerate(zip(AREA_EDGES, AREA_EDGES[1:]))}


def score_table(named, title="object area"):
    """{name: saliency_scores} as lines of text for the log (area_quality's, or the maps of each split)."""
    width = max(12, *(len(name) + 1 for name in named))
    rows = [f"{title:>{width}}{'images':>7}{'max F':>7}{'MAE':>7}{'S':>7}{'max E':>7}"]
    for name, q in named.items():
        scores = [q[k] for k in ("max_F", "MAE", "S_measure", "max_E")]
        cells = "".join("      -" if v is None else f"{v:7.3f}" for v in scores)
        rows.append(f"{name:>{width}}{q['images']:>7}{cells}")
    return "\n".join(rows)


class ZoomedMasks:
    """A mask set's images cropped around their objects so that each covers a share of ZOOM_SHARES drawn once
    per image (seeded by the CRC-32 of its id), the crop of the image's aspect, centred deep inside the object
    (saliency_samples.zoom_box), resized to a longer side of `side` (the network then sees the object fill its
    frame, as MSRC's books do; held-out scenes seldom have such objects). An image without object stays whole."""

    def __init__(self, data, side):
        self.data, self.side, self.items, self.roots = data, side, data.items, data.roots
        self.boxes = [zoom_frame(data.label(i), it.id) for i, it in enumerate(data.items)]

    def __len__(self):
        return len(self.items)

    def image(self, i):
        top, left, h, w = self.boxes[i]
        return T.resize_longer(self.data.image(i)[top:top + h, left:left + w], self.side)

    def label(self, i):
        top, left, h, w = self.boxes[i]
        return T.resize_longer(self.data.label(i)[top:top + h, left:left + w], self.side, Image.NEAREST)


def zoom_frame(mask, image_id):
    """The zoom crop (top, left, height, width) of one held-out image (ZoomedMasks)."""
    if not mask.any():
        return (0, 0) + mask.shape
    share = np.random.default_rng(zlib.crc32(image_id.encode())).uniform(*ZOOM_SHARES)
    return zoom_box(mask, share, mask.shape[1] / mask.shape[0], interior_point(mask))


def split_pairs(data, out):
    """(map, object mask) of every annotated image of a labelled split, void pixels left out (an image without a
    mask has none: its map is not read)."""
    for i, it in enumerate(data.items):
        if not data.annotated_at(i):
            continue
        gt = data.label(i)
        valid = gt != IGNORE
        yield load_gray_png(out / f"{it.id}.png")[valid], gt[valid] > 0
