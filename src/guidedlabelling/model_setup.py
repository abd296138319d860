"""A network set up for training from a training's settings: built, initialised (ImageNet, a weights file, or
from scratch), with the layers it trains chosen and their Caffe learning-rate multipliers; the network settings
the segmenter and the saliency net share."""
import warnings

import torch

from .checks import POSITIVE, above, at_least, one_of
from .io import InputError
from .reads import NO_INIT
from .networks import NETWORKS, build_seed_net, build_seg_net, has_blocks, init_from_scratch, names
from .weights import load_init


def fc8_mults(m):
    """Caffe multipliers of a DeepLab fc8 whose weights take lr_mult m: its bias 2m, no bias decay (the
    release's segmenter and saliency net: m = 10)."""
    return {"fc8": (m, 1, 2 * m, 0)}


FC6_DILATION = {"fc6_dilation": (12, "dilation of fc6, the 3x3 layer on the trunk (LargeFOV's 12 suits a 41x41 output; "
                                     "smaller outputs want proportionally less)")}
DEEPLAB_OPTIONS = FC6_DILATION | {  # the segmenter's and the saliency net's network settings
    "output_stride": (8, "DeepLab-EffNet's output stride: 8, or 16 (a third of the computation; halve "
                         "fc6_dilation with it)"),
    "train_blocks": (-1, "a trunk of blocks (DeepLab-EffNet: 16), not frozen: fine-tune only the last N of them "
                         "(the stem and earlier blocks frozen); -1: every layer"),
    "trunk_lr_mult": (1.0, "learning-rate multiplier of the pretrained trunk's layers (Caffe lr_mult)"),
    "fc8_lr_mult": (10.0, "learning-rate multiplier of fc8, the classifier (Caffe lr_mult; its bias twice, no decay; "
                          "10 suits SGD, 1 Adam, whose steps the multiplier scales directly)"),
    "loss_res": ("output", "where the loss is taken: output (labels shrunk to the network's output, as the "
                           "release) or input (scores upsampled bilinearly to the crop)"),
}
DEEPLAB_CHECKS = {"fc6_dilation": POSITIVE, "output_stride": one_of(8, 16), "train_blocks": at_least(-1),
                  "trunk_lr_mult": above(0), "fc8_lr_mult": above(0), "loss_res": one_of("output", "input")}


def freeze_trunk(model):
    """Caffe lr_mult 0 for every layer but the new ones; frozen parameters need no gradient at all."""
    for name, p in model.named_parameters():
        if name.split(".")[-2] not in model.new_layers:
            p.requires_grad_(False)


def initialise(model, init, log, freeze=False, partial=False):
    if init == "imagenet":
        if not NETWORKS[model.net].imagenet:
            raise InputError(f"--init imagenet: {model.net} has no built-in ImageNet weights; "
                             "pass a weights file or none")
        log.info("init: the network's built-in ImageNet weights")
    elif init in NO_INIT:
        init_from_scratch(model)
        log.info("init: from scratch (msra filler for the trunk)")
    else:
        for line in load_init(model, init, partial):
            log.info("init: %s", line)
    if freeze:
        freeze_trunk(model)
        log.info("trunk frozen: training %s only", ", ".join(model.new_layers))


def train_last_blocks(model, blocks, log):
    """Fine-tune only the last `blocks` of the trunk's blocks (networks: trunk_blocks()): the rest of the trunk
    frozen, the new layers trained."""
    trunk = model.trunk_blocks()
    first = max(len(trunk) - blocks, 0)
    trained = {id(p) for block in list(trunk)[first:] for p in block.parameters()}
    for name, p in model.named_parameters():
        if name.split(".")[-2] not in model.new_layers and id(p) not in trained:
            p.requires_grad_(False)
    log.info("trunk: fine-tuning blocks %d..%d of %d", first, len(trunk) - 1, len(trunk))


def build_deeplab(c, num_classes, log):
    """A segmenter or saliency net from its training section c (DEEPLAB_OPTIONS), initialised, with the
    layers it trains chosen; returns it and its Caffe multipliers."""
    problems = deeplab_conflicts(c)
    if problems:
        raise InputError(*problems)
    model = build_seg_net(c["net"], num_classes, c["width"], c["fc6_dilation"], c["output_stride"])
    initialise(model, c["init"], log, c["freeze_trunk"], c["init_partial"])
    if c["train_blocks"] >= 0:
        train_last_blocks(model, c["train_blocks"], log)
    return model, fc8_mults(c["fc8_lr_mult"]) | trunk_mults(model, c["trunk_lr_mult"])


def deeplab_network(c):
    """Reads.network of a segmenter's or saliency net's training section c."""
    return "deeplab", c["net"], c["width"], c["fc6_dilation"], c["output_stride"]


def untrained(network):
    """The network of a Reads.network, on the meta device (shapes without memory): what initial weights must fit.
    Its score layer has two classes, one for a seed net: a new layer, which the weights need not fill."""
    kind, name, width, *deeplab = network
    with torch.device("meta"), warnings.catch_warnings():  # EfficientNet's builder loads its ImageNet weights:
        warnings.simplefilter("ignore")                    # into meta tensors, a no-op that torch warns of
        return build_seed_net(name, 1, width) if kind == "seed" else build_seg_net(name, 2, width, *deeplab)


def deeplab_conflicts(c):
    """Settings of a segmenter's or saliency net's training section c that contradict each other."""
    if c["net"] not in names("segmentation"):
        return []  # the setting's own check names the choices
    problems, net = [], NETWORKS[c["net"]]
    if c["output_stride"] not in net.output_strides:
        strides = " or ".join(map(str, net.output_strides))
        problems.append(f"output_stride {c['output_stride']}: {c['net']} has output stride {strides} only; use "
                        f"{strides} or {' or '.join(names('segmentation', c['output_stride']))}")
    if c["train_blocks"] >= 0 and not has_blocks(c["net"]):
        problems.append(f"train_blocks {c['train_blocks']}: {c['net']} does not split its trunk into blocks; use -1 "
                        f"or {' or '.join(names('segmentation', blocks=True))}")
    if c["freeze_trunk"] and (c["train_blocks"] >= 0 or c["trunk_lr_mult"] != 1):
        problems.append("freeze_trunk trains no trunk layer, so train_blocks and trunk_lr_mult would do nothing; "
                        "drop freeze_trunk or leave them at -1 and 1")
    return problems


def deeplab_meta(c, kind, classes):
    """What a segmenter's or saliency net's checkpoint records to be rebuilt (inference.load_model)."""
    return {"kind": kind, "net": c["net"], "width": c["width"], "fc6_dilation": c["fc6_dilation"],
            "output_stride": c["output_stride"], "classes": classes}


def label_size(model, c):
    """The side of the training labels: the network's output (the release) or the crop (loss_res input)."""
    return model.output_size(c["input_size"]) if c["loss_res"] == "output" else c["input_size"]


def trunk_mults(model, mult):
    """Caffe multipliers (weight lr, weight decay, bias lr, bias decay) of the pretrained trunk's layers, by
    layer name as solver.param_groups matches them: the lr times `mult`."""
    if mult == 1:
        return {}
    pretrained = {name.split(".")[-2] for name, _ in model.named_parameters()} - set(model.new_layers)
    return {layer: (mult, 1, 2 * mult, 0) for layer in pretrained}
