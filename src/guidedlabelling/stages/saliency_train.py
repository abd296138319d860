"""Saliency network training: class-agnostic foreground/background DeepLab (docs/method.md section 3), on one
or several folders of object masks, with the augmentation of saliency_samples.py when set."""
import torch
import torch.nn.functional as F

from ..checks import NON_NEGATIVE, POSITIVE, above, all_of, at_least, between, one_of
from ..io import IGNORE, InputError
from ..networks import SEG_NETS, build_seg_net
from ..reads import Reads
from ..saliency_samples import PASTE_BACKGROUNDS, SaliencySample
from ..training import FC6_DILATION, SEG_MULTS, initialise, prepare, run_training, shuffled_stream, \
    solver_checks, train_last_blocks, training_options, trunk_mults

OPTIONS = {"saliency_data": ("data/builtin_saliency", "class-agnostic saliency training set: a folder of images/ + "
                                                      "masks/, or several, comma-separated")} \
    | training_options("DeepLab-LargeFOV", "none", SEG_NETS) | FC6_DILATION | {
        "output_stride": (8, "DeepLab-EffNet's output stride: 8, or 16 (a third of the computation; halve "
                             "fc6_dilation with it)"),
        "train_blocks": (-1, "DeepLab-EffNet, trunk not frozen: fine-tune only the last N of its 16 blocks (the "
                             "stem and earlier blocks frozen); -1: every layer"),
        "trunk_lr_mult": (1.0, "learning-rate multiplier of the pretrained trunk's layers (Caffe lr_mult)"),
        "holdout": (0, "images held out to measure MAE, max F and foreground IoU: the last N of each folder "
                       "that has none of holdout_scenes"),
        "holdout_scenes": ("", "scenes held out whole, comma-separated (a scene: the image ids' part before their "
                               "last '_', e.g. a DAVIS sequence)"),
        "loss_res": ("output", "where the loss is taken: output (labels shrunk to the network's output, as the "
                               "segmenter) or input (scores upsampled bilinearly to the crop)"),
        "balance": ("none", "loss weights: none, or batch (each class's pixels weighted by 0.5 / its share of "
                            "the batch, the share at least 2%: objects count as much as background)"),
        "min_area": (1.0, "scale augmentation: random crops of U(min_area, 1) of the image's area and of random "
                          "aspect (with paste 0 and colour 0, 1 means the segmenter's 90-100% crops)"),
        "colour": (0.0, "colour augmentation strength (brightness, contrast, hue, saturation, grey, blur; 0: none)"),
        "paste": (0.0, "copy-paste compositing: the probability that a sample gets another image's object"),
        "paste_bg": ("keep", "what objects are pasted onto: keep (the image, its object kept), inpaint (the image, "
                             "its object removed), texture (a synthetic texture), mix (each a third of the time)"),
    }
CHECKS = solver_checks(SEG_NETS) | {
    "fc6_dilation": POSITIVE, "output_stride": one_of(8, 16), "train_blocks": at_least(-1),
    "trunk_lr_mult": above(0), "holdout": NON_NEGATIVE, "loss_res": one_of("output", "input"),
    "balance": one_of("none", "batch"), "min_area": all_of(above(0), between(0, 1)), "colour": NON_NEGATIVE,
    "paste": between(0, 1), "paste_bg": one_of(*PASTE_BACKGROUNDS)}


def reads(cfg, given):
    c = cfg["saliency_train"]
    return Reads(saliency_set=(c["saliency_data"], c["holdout"], "train", c["holdout_scenes"]), init=c["init"],
                 net=c["net"])


def run(stage):
    solver = prepare(stage)
    c = stage.cfg["saliency_train"]
    data = stage.saliency_set
    if c["output_stride"] != 8 and c["net"] != "DeepLab-EffNet":
        raise InputError(f"--output_stride {c['output_stride']}: {c['net']} has output stride 8 only")
    model = build_seg_net(c["net"], 2, c["width"], c["fc6_dilation"], c["output_stride"])
    initialise(model, c["init"], stage.log, c["freeze_trunk"], c["init_partial"])
    if c["train_blocks"] >= 0 and not c["freeze_trunk"]:
        train_last_blocks(model, c["train_blocks"], stage.log)
    size = c["input_size"]
    sample = SaliencySample(data, size, model.output_size(size) if c["loss_res"] == "output" else size,
                            c["paste"], c["paste_bg"], c["min_area"], c["colour"])
    meta = {"kind": "saliency", "net": c["net"], "width": c["width"], "fc6_dilation": c["fc6_dilation"],
            "output_stride": c["output_stride"], "classes": ["bg", "fg"]}
    run_training(stage, model, shuffled_stream(sample, solver), SaliencyLoss(c["balance"]), solver,
                 SEG_MULTS | trunk_mults(model, c["trunk_lr_mult"]), meta)


class SaliencyLoss:
    """The segmenter's loss (Caffe SoftmaxWithLoss, ignore 255) with the scores upsampled bilinearly to the
    labels' size when that differs (loss_res input), and, with balance 'batch', each class's pixels weighted by
    0.5 / its share of the batch's labelled pixels (the share at least 2%), normalised by the summed weights.
    Under torchrun the shares are each process's own."""

    def __init__(self, balance="none"):
        self.balance = balance

    def __call__(self, model, batch):
        x, y = batch
        scores = model(x)
        if scores.shape[-2:] != y.shape[-2:]:
            scores = F.interpolate(scores, size=y.shape[-2:], mode="bilinear", align_corners=False)
        valid = y != IGNORE
        if self.balance == "none":
            return F.cross_entropy(scores, y, ignore_index=IGNORE, reduction="sum"), valid.sum()
        share = torch.stack([(y == k).sum() for k in range(scores.shape[1])]) / valid.sum().clamp(min=1)
        weight = (0.5 / share.clamp(min=0.02)).float()  # float32: the summed weights overflow float16 under AMP
        per_pixel = F.cross_entropy(scores.float(), y, ignore_index=IGNORE, reduction="none")
        w = weight[y.clamp(max=scores.shape[1] - 1)] * valid
        return (w * per_pixel).sum(), w.sum().detach()
