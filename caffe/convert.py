#!/usr/bin/env python3
"""Convert weights between our checkpoints, Caffe and torchvision.

  to-caffe CKPT.pth OUT.caffemodel      our trained seed, saliency or segmentation checkpoint ->
                                        .caffemodel + deploy .prototxt (Caffe, OpenCV dnn)
  from-caffe IN.caffemodel OUT.pth --kind K
                                        a Caffe model of one of our networks -> our checkpoint
                                        (usable wherever a trained model.pth is)
  from-torchvision vgg16.pth OUT.pth    torchvision's VGG-16 weights -> a Caffe-convention
                                        (BGR, 0..255 minus mean) init for --init
  deeplab-init VGG_ILSVRC_16_layers.caffemodel OUT.caffemodel
                                        DeepLab-LargeFOV's init (VGG_ILSVRC_16_layers-deeplab): VGG-16 with
                                        fc6/fc7 decimated to 3x3x1024 / 1024, as the DeepLab paper describes
"""
import argparse
from pathlib import Path

import torch

from guidedlabelling.caffemodel import (CAFFE_NETS, caffe_state_dict, deeplab_init_from_vgg16, net_layers,
                                        read_caffemodel, torchvision_vgg16_to_caffe, vgg16_problems, write_caffe,
                                        write_deeplab_init)
from guidedlabelling.checks import SIDE, argument
from guidedlabelling.cli import errors_end_in_one_line, run
from guidedlabelling.datasets import VOC_CLASSES
from guidedlabelling.errors import listed, some
from guidedlabelling.io import InputError, atomic_path, load_checkpoint, save_checkpoint
from guidedlabelling.networks import build_seed_net, build_seg_net, names
from guidedlabelling.weights import load_caffe_state

KINDS = ("seed", "saliency", "segmentation")
OUTPUT_LAYER = {"seed": "score", "saliency": "fc8", "segmentation": "fc8"}


def build(kind, net, classes, width, fc6_dilation=12):
    """Our network for a checkpoint's meta fields (classes include background, as datasets list them)."""
    if kind == "seed":
        return build_seed_net(net, len(classes) - 1, width)
    return build_seg_net(net, len(classes), width, fc6_dilation)


def to_caffe(args):
    meta = load_checkpoint(args.checkpoint).get("meta", {})
    if meta.get("kind") not in KINDS or meta.get("net") not in CAFFE_NETS:
        raise InputError(f"{args.checkpoint}: a {meta.get('kind')} network {meta.get('net')}; only a model.pth of "
                         f"a training stage with one of {', '.join(CAFFE_NETS)} converts")
    model = build(meta["kind"], meta["net"], meta["classes"], meta["width"], meta.get("fc6_dilation", 12))
    load_checkpoint(args.checkpoint, model)
    prototxt = args.prototxt or Path(args.caffemodel).with_suffix(".prototxt")
    if Path(prototxt).resolve() == Path(args.caffemodel).resolve():  # the net was written over the weights
        raise InputError(f"{args.caffemodel}: both the weights and the deploy net would be written to this one file; "
                         "name the weights *.caffemodel, or --prototxt another file")
    write_caffe(model, args.caffemodel, prototxt, args.input_size)
    print(f"wrote {args.caffemodel} and {prototxt}")


def class_names(args, count):
    """--classes (one name a line, background first), else VOC's or bg/fg; `count` must match."""
    if args.classes:
        try:
            names = Path(args.classes).read_text().split()
        except OSError as e:
            raise InputError(f"{args.classes}: cannot read the class list ({e.strerror}); check the path") from None
    else:
        names = ["bg", "fg"] if args.kind == "saliency" else list(VOC_CLASSES)
    if len(names) != count:
        raise InputError(f"{args.caffemodel}: its output layer makes {count} classes (background included), "
                         f"not {len(names)}; pass --classes with {count} names, background first")
    return names


def renamed(state, renames):
    """Caffe layer names mapped by --rename (e.g. fc8_voc12 -> fc8)."""
    out = {}
    for key, value in state.items():
        layer, kind = key.rsplit(".", 1)
        out[f"{renames.get(layer, layer)}.{kind}"] = value
    return out


def caffe_net(args):
    """--net, or the kind's default; one of the kind's networks (saliency networks are segmenters)."""
    nets = [n for n in CAFFE_NETS if n in names("seed" if args.kind == "seed" else "segmentation")]
    net = args.net or nets[0]
    if net not in nets:
        raise InputError(f"{args.caffemodel}: --net {net} is not a {args.kind} network; "
                         f"pass --net {listed(nets, 'or')}")
    return net


def fc6_dilation(net_param, renames):
    """fc6's dilation as the Caffe file gives it: a segmenter of another one came back as one of 12. LargeFOV's 12
    where it gives none (a file of weights only; deeplab-public's files name it `hole`, a field of their own)."""
    fc6 = [layer.convolution_param for layer in net_layers(net_param) if renames.get(layer.name, layer.name) == "fc6"]
    return fc6[0].dilation[0] if fc6 and len(fc6[0].dilation) else 12


def from_caffe(args):
    net = caffe_net(args)
    net_param, renames = read_caffemodel(args.caffemodel), dict(args.rename)
    state = renamed(caffe_state_dict(args.caffemodel, net_param), renames)
    out_layer = OUTPUT_LAYER[args.kind]
    if f"{out_layer}.weight" not in state or "conv1_1.weight" not in state:
        raise InputError(f"{args.caffemodel}: no conv1_1 or {out_layer} layer for a {args.kind} network; "
                         "check --kind, or map layer names with --rename CAFFE=OURS")
    classes = class_names(args, state[f"{out_layer}.weight"].shape[0] + (args.kind == "seed"))
    width = args.width or state["conv1_1.weight"].shape[0] / 64
    meta = {"kind": args.kind, "net": net, "width": width, "classes": classes}
    if args.kind != "seed":
        meta["fc6_dilation"] = fc6_dilation(net_param, renames)
    model = build(args.kind, net, classes, width, meta.get("fc6_dilation", 12))
    load_caffe_state(model, state, args.caffemodel)
    save_checkpoint(args.out, model, meta)
    print(f"wrote {args.out} ({args.kind}, {net}, width {width:g}, {len(classes)} classes)")


def from_torchvision(args):
    try:
        state = torch.load(args.torchvision, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files
        raise InputError(f"{args.torchvision}: unreadable weights ({type(e).__name__}); re-download them") from None
    converted = torchvision_vgg16_to_caffe(state if isinstance(state, dict) else {}, args.torchvision)
    with atomic_path(args.out) as tmp:
        torch.save(converted, tmp)
    print(f"wrote {args.out} ({len(converted)} tensors, conv1_1..conv5_3)")


def deeplab_init(args):
    vgg16 = caffe_state_dict(args.vgg16)
    problems = vgg16_problems(vgg16)
    if problems:
        raise InputError(f"{args.vgg16}: not VGG-16's layers ({some(problems)}); pass VGG_ILSVRC_16_layers.caffemodel")
    state = deeplab_init_from_vgg16(vgg16, args.vgg16)
    write_deeplab_init(state, args.out)
    print(f"wrote {args.out} (conv1_1..conv5_3, fc6 {tuple(state['fc6.weight'].shape)}, "
          f"fc7 {tuple(state['fc7.weight'].shape)})")


def rename_pair(text):
    if text.count("=") != 1:
        raise argparse.ArgumentTypeError(f"{text!r}: write CAFFE_NAME=OUR_NAME")
    return tuple(text.split("="))


def parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("to-caffe", help="our checkpoint -> .caffemodel + deploy .prototxt")
    p.add_argument("checkpoint")
    p.add_argument("caffemodel")
    p.add_argument("--prototxt", help="deploy net path (default: beside the .caffemodel)")
    p.add_argument("--input-size", type=argument(int, SIDE), default=321, help="side of the Input layer's square image")
    p.set_defaults(run=to_caffe)
    p = sub.add_parser("from-caffe", help=".caffemodel -> our checkpoint")
    p.add_argument("caffemodel")
    p.add_argument("out")
    p.add_argument("--kind", choices=KINDS, required=True)
    p.add_argument("--net", choices=CAFFE_NETS,
                   help="default GAP-HighRes (seed) or DeepLab-LargeFOV")
    p.add_argument("--width", type=float, help="channel multiplier (default: conv1_1's outputs / 64)")
    p.add_argument("--classes", help="classes.txt, background first (default: VOC, or bg/fg for saliency)")
    p.add_argument("--rename", nargs="*", default=[], type=rename_pair, metavar="CAFFE=OURS",
                   help="layer names to map, e.g. fc8_voc12=fc8")
    p.set_defaults(run=from_caffe)
    p = sub.add_parser("from-torchvision", help="torchvision vgg16 .pth -> our init .pth")
    p.add_argument("torchvision")
    p.add_argument("out")
    p.set_defaults(run=from_torchvision)
    p = sub.add_parser("deeplab-init", help="VGG-16 .caffemodel -> DeepLab-LargeFOV's init .caffemodel")
    p.add_argument("vgg16", help="VGG_ILSVRC_16_layers.caffemodel")
    p.add_argument("out", help="e.g. models/VGG_ILSVRC_16_layers-deeplab.caffemodel")
    p.set_defaults(run=deeplab_init)
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    with errors_end_in_one_line():  # bad input and a file it cannot read or write: one line
        args.run(args)


if __name__ == "__main__":
    run("__main__")  # Ctrl-C too
