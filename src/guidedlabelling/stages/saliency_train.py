"""Saliency network training: class-agnostic foreground/background DeepLab (docs/method.md section 3), on one
or several folders of object masks, with the augmentation of saliency_samples.py when set."""
import datetime
import errno
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import distributed, store
from ..checks import NON_NEGATIVE, above, all_of, between, one_of
from ..fingerprint import DONE
from ..io import IGNORE, snapshots
from ..networks import imagenet_weights, names
from ..reads import NO_INIT, Reads
from ..saliency_samples import PASTE_BACKGROUNDS, SaliencySample
from ..model_setup import DEEPLAB_CHECKS, DEEPLAB_OPTIONS, build_deeplab, deeplab_conflicts, deeplab_meta, \
    deeplab_network, label_size
from ..sampling import shuffled_stream
from ..solver import solver_checks, training_options
from ..training import prepare, run_training, scores_at, segmentation_loss

OPTIONS = {"saliency_data": ("data/builtin_saliency", "class-agnostic saliency training set: a folder of images/ + "
                                                      "masks/, or several, comma-separated; data/builtin_saliency "
                                                      "stands for the built-in set's, generated under "
                                                      "data/builtin_<size>px_<train>_<val>/")} \
    | training_options("DeepLab-LargeFOV", "none", names("segmentation")) | DEEPLAB_OPTIONS | {
        "holdout": (0, "images held out to measure MAE, max F and foreground IoU: the last N of each folder "
                       "that has none of holdout_scenes"),
        "holdout_scenes": ("", "scenes held out whole, comma-separated (a scene: the image ids' part before their "
                               "last '_', e.g. a DAVIS sequence)"),
        "balance": ("none", "loss weights: none, or batch (each class's pixels weighted by 0.5 / its share of "
                            "the batch, the share at least 2%: objects count as much as background)"),
        "min_area": (1.0, "scale augmentation: random crops of U(min_area, 1) of the image's area and of random "
                          "aspect (with paste 0 and colour 0, 1 means the segmenter's 90-100% crops)"),
        "zoom": (0.0, "zoom crops: the probability that a sample's crop is chosen around its object so that the "
                      "object covers a share of it drawn from U(zoom_min_share, 1), up to filling the frame "
                      "(cut at the borders), instead of min_area's crop"),
        "zoom_min_share": (0.3, "the smallest share of a zoom crop that its object covers"),
        "colour": (0.0, "colour augmentation strength (brightness, contrast, hue, saturation, grey, blur; 0: none)"),
        "paste": (0.0, "copy-paste compositing: the probability that a sample gets another image's object"),
        "paste_bg": ("keep", "what objects are pasted onto: keep (the image, its object kept), inpaint (the image, "
                             "its object removed), texture (a synthetic texture), mix (each a third of the time)"),
    }
CHECKS = solver_checks(names("segmentation")) | DEEPLAB_CHECKS | {
    "holdout": NON_NEGATIVE, "balance": one_of("none", "batch"), "min_area": all_of(above(0), between(0, 1)),
    "colour": NON_NEGATIVE, "paste": between(0, 1), "paste_bg": one_of(*PASTE_BACKGROUNDS), "zoom": between(0, 1),
    "zoom_min_share": all_of(above(0), between(0, 1))}
CONFLICTS = deeplab_conflicts


def reads(cfg, given):
    c = cfg["saliency_train"]
    return Reads(saliency_set=(c["saliency_data"], c["holdout"], "train", c["holdout_scenes"]), init=c["init"],
                 network=deeplab_network(c), init_partial=c["init_partial"])


def run(stage):
    """Copy the network of the same key from the store (store.py), or train it and put it there. A training begun
    in this folder (its snapshots; one stopped under --overridecache, say) resumes: the store's copy would end it
    unasked."""
    device = distributed.process_device(stage.device)
    entry = store_entry(stage)
    begun = bool(snapshots(stage.out)) and not (stage.out / DONE).exists()
    with distributed.process_group(device), store.claim(entry, stage.log, device) as usable:
        if usable and not stage.cfg["run"]["overridecache"] and not begun:
            record = reuse(stage, entry) if distributed.is_main() else None
            if record is None and entry.waited is not None and distributed.is_main():
                stage.log.info("store: the run it waited for stored no network (it stopped or failed); training it")
            if distributed.main_decides(record is not None, device):
                if distributed.is_main():
                    stage.log.info("saliency network: reused from the store, %s (trained in %s on %s); "
                                   "--overridecache retrains it", entry, record["trained_in"], record["date"])
                    stored = {"entry": str(entry), "trained_in": record["trained_in"]}
                    stage.finish(record["summary"] | {"made_with": record.get("made_with"),  # None: not recorded
                                                      "store": stored, "iterations_per_s": None})  # none trained
                return
        train(stage, (lambda summary: publish(stage, entry, summary)) if usable else None)


def reuse(stage, entry):
    """The stored network copied into the stage folder (its record), or None: no entry, or one that cannot be
    read (reported; the network is then trained). A disk too full for the copy is an error: a training would fail
    on it too, later."""
    try:
        return entry.copy_to(stage.out, stage.log.warning)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise
        stage.log.warning("store: could not copy the network from %s (%s); training it", entry, e.strerror or e)
        return None


def train(stage, publish_fn):
    solver = prepare(stage)
    c = stage.cfg["saliency_train"]
    data = stage.saliency_set
    model, mults = build_deeplab(c, 2, stage.log)
    run_training(stage, model, shuffled_stream(training_sample(c, data, model), solver), SaliencyLoss(c["balance"]),
                 solver, mults, deeplab_meta(c, "saliency", ["bg", "fg"]), publish_fn)


def training_sample(c, data, model):
    """The sample maker of a saliency training (settings c) on the mask set data, for its network model."""
    return SaliencySample(data, c["input_size"], label_size(model, c), c["paste"], c["paste_bg"], c["min_area"],
                          c["colour"], c["zoom"], c["zoom_min_share"])


def store_entry(stage):
    """The store's place for the network these settings train on this saliency set, or None (run.store none)."""
    root = store.store_root(stage.cfg["run"]["store"])
    if root is None:
        return None
    c, data = stage.cfg["saliency_train"], stage.saliency_set
    init = None if c["init"] in NO_INIT else imagenet_weights(c["net"]) if c["init"] == "imagenet" else Path(c["init"])
    digests = stage.checked.digests.manifest([p for it in data.items for p in (it.image, it.label)] +
                                             ([init] if init else []))  # hashed once, with the preflight's
    items = [(it.image.name, digests[str(it.image)], digests[str(it.label)]) for it in data.items]
    init = digests[str(init)] if init else "none"
    return store.Entry(root, store.saliency_key(c, stage.cfg["run"]["amp"], init, items))


def publish(stage, entry, summary):
    """Put the trained network into the store; a store that refuses it is reported, the run goes on."""
    trained_in = str(stage.out.absolute())  # read by runs in other folders
    record = {"summary": summary, "settings": stage.cfg["saliency_train"], "trained_in": trained_in,
              "made_with": stage.made_with,
              "date": datetime.datetime.now().isoformat(sep=" ", timespec="seconds")}
    try:
        entry.publish(stage.out, record)
    except OSError as e:
        stage.log.warning("store: could not keep the network in %s (%s); later runs will train it again",
                          entry, e.strerror or e)
        return summary
    stage.log.info("store: kept the network in %s for later runs", entry)
    return summary | {"store": {"entry": str(entry), "trained_in": trained_in}}


class SaliencyLoss:
    """The segmenter's loss (training.segmentation_loss), or, with balance 'batch', each class's pixels weighted by
    0.5 / its share of the batch's labelled pixels (the share at least 2%), normalised by the summed weights.
    Under torchrun the shares are each process's own."""

    def __init__(self, balance="none"):
        self.balance = balance

    def __call__(self, model, batch):
        if self.balance == "none":
            return segmentation_loss(model, batch)
        x, y = batch
        scores = scores_at(model(x), y)
        valid = y != IGNORE
        share = torch.stack([(y == k).sum() for k in range(scores.shape[1])]) / valid.sum().clamp(min=1)
        weight = (0.5 / share.clamp(min=0.02)).float()  # float32: the summed weights overflow float16 under AMP
        per_pixel = F.cross_entropy(scores.float(), y, ignore_index=IGNORE, reduction="none")
        w = weight[y.clamp(max=scores.shape[1] - 1)] * valid
        return (w * per_pixel).sum(), w.sum().detach()
