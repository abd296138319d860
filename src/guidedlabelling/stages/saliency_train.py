"""Saliency network training: class-agnostic foreground/background DeepLab (docs/method.md section 3), on one
or several folders of object masks, with the augmentation of saliency_samples.py when set."""
import torch
import torch.nn.functional as F

from ..checks import NON_NEGATIVE, above, all_of, between, one_of
from ..io import IGNORE
from ..networks import SEG_NETS
from ..reads import Reads
from ..saliency_samples import PASTE_BACKGROUNDS, SaliencySample
from ..training import DEEPLAB_CHECKS, DEEPLAB_OPTIONS, build_deeplab, deeplab_conflicts, deeplab_meta, label_size, \
    prepare, run_training, scores_at, segmentation_loss, shuffled_stream, solver_checks, training_options

OPTIONS = {"saliency_data": ("data/builtin_saliency", "class-agnostic saliency training set: a folder of images/ + "
                                                      "masks/, or several, comma-separated")} \
    | training_options("DeepLab-LargeFOV", "none", SEG_NETS) | DEEPLAB_OPTIONS | {
        "holdout": (0, "images held out to measure MAE, max F and foreground IoU: the last N of each folder "
                       "that has none of holdout_scenes"),
        "holdout_scenes": ("", "scenes held out whole, comma-separated (a scene: the image ids' part before their "
                               "last '_', e.g. a DAVIS sequence)"),
        "balance": ("none", "loss weights: none, or batch (each class's pixels weighted by 0.5 / its share of "
                            "the batch, the share at least 2%: objects count as much as background)"),
        "min_area": (1.0, "scale augmentation: random crops of U(min_area, 1) of the image's area and of random "
                          "aspect (with paste 0 and colour 0, 1 means the segmenter's 90-100% crops)"),
        "colour": (0.0, "colour augmentation strength (brightness, contrast, hue, saturation, grey, blur; 0: none)"),
        "paste": (0.0, "copy-paste compositing: the probability that a sample gets another image's object"),
        "paste_bg": ("keep", "what objects are pasted onto: keep (the image, its object kept), inpaint (the image, "
                             "its object removed), texture (a synthetic texture), mix (each a third of the time)"),
    }
CHECKS = solver_checks(SEG_NETS) | DEEPLAB_CHECKS | {
    "holdout": NON_NEGATIVE, "balance": one_of("none", "batch"), "min_area": all_of(above(0), between(0, 1)),
    "colour": NON_NEGATIVE, "paste": between(0, 1), "paste_bg": one_of(*PASTE_BACKGROUNDS)}
CONFLICTS = deeplab_conflicts


def reads(cfg, given):
    c = cfg["saliency_train"]
    return Reads(saliency_set=(c["saliency_data"], c["holdout"], "train", c["holdout_scenes"]), init=c["init"],
                 net=c["net"])


def run(stage):
    solver = prepare(stage)
    c = stage.cfg["saliency_train"]
    data = stage.saliency_set
    model, mults = build_deeplab(c, 2, stage.log)
    size = c["input_size"]
    sample = SaliencySample(data, size, label_size(model, c), c["paste"], c["paste_bg"], c["min_area"],
                            c["colour"])
    run_training(stage, model, shuffled_stream(sample, solver), SaliencyLoss(c["balance"]), solver, mults,
                 deeplab_meta(c, "saliency", ["bg", "fg"]))


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
