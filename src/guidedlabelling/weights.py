"""Weights into networks: --init files (our checkpoints, Caffe models, torchvision VGG-16) matched by layer name."""
from pathlib import Path

import torch

from .caffemodel import caffe_state_dict, torchvision_vgg16_to_caffe
from .errors import some
from .io import ROOT, InputError


def read_state(path):
    """A name -> tensor dict from a checkpoint of ours or a plain state dict (.pth/.pt)."""
    path = Path(path)
    if not path.exists():
        raise InputError(missing_weights(path))
    if path.suffix == ".caffemodel":
        return caffe_state_dict(path)
    if path.suffix == ".prototxt":  # torch read it as a pickle: "unreadable weights; re-download"
        raise InputError(f"{path}: a Caffe net definition, which holds no weights; pass the .caffemodel of its weights")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files
        raise InputError(f"{path}: unreadable weights ({type(e).__name__}); re-download or retrain") from None
    state = state.get("model", state) if isinstance(state, dict) else state
    if not (isinstance(state, dict) and state and all(torch.is_tensor(v) for v in state.values())):
        raise InputError(f"{path}: holds a {type(state).__name__}, not named weights; pass a model.pth of a "
                         "training command or a state dict (layer name -> tensor)")
    if "features.0.weight" in state:  # torchvision VGG-16: RGB, 0..1 inputs normalised by mean/std
        state = torchvision_vgg16_to_caffe(state, path)
    return state


RELEASE_INITS = ("VGG_ILSVRC_16_layers", "VGG_ILSVRC_16_layers-deeplab")   # the Caffe models ./downloads.sh
# --models puts in models/


def missing_weights(path):
    """The problem of an init file not found. The release's --init named a Caffe model without folder and suffix
    (VGG_ILSVRC_16_layers, its default), which models/ holds here, or the folder given; another name without a
    suffix is a file of yours (weights_final for weights_final.pth), not one of models/. A missing
    X-deeplab.caffemodel beside an X.caffemodel is made from it (GAP-DeepLab reads it in place of the X given)."""
    if path.name in RELEASE_INITS:
        beside = path.with_name(f"{path.name}.caffemodel")
        return (f"{path}: initial weights not found; the release's --init named them without folder and suffix: "
                f"pass --init {beside if beside.exists() else ROOT / 'models' / beside.name}")
    base = path.with_name(path.name.replace("-deeplab.caffemodel", ".caffemodel"))
    if base != path and base.exists():  # GAP-DeepLab's init_file or the segmenter's default: say how to make it
        return (f"{path}: initial weights not found; the DeepLab nets start from a '-deeplab' file (GAP-DeepLab reads "
                f"it beside the --init given, as the release did): make it from {base.name} with ./caffe/convert.py "
                f"deeplab-init {base} {path} (a VGG-16), or name a GAP-DeepLab model's file *-deeplab.caffemodel")
    return f"{path}: initial weights not found; run ./downloads.sh --models, or pass --init none to train from scratch"


def suffix_index(state):
    """Index a state dict by layer name + parameter kind (e.g. 'conv1_1.weight') to match across wrappers;
    full keys too, and suffixes that occur once only (EfficientNet repeats '_bn1.weight' in every block)."""
    shorts = [".".join(k.split(".")[-2:]) for k in state]
    index = {s: v for s, v in zip(shorts, state.values()) if shorts.count(s) == 1}
    return index | dict(state)


def load_init(model, path, partial=False):
    """Copy every tensor whose layer name and shape match; report each layer loaded or left out."""
    loaded, left_out, trunk = fitting(model, read_state(path), path, partial)
    model.load_state_dict(loaded, strict=False)
    return [f"loaded {len(loaded)} of {len(model.state_dict())} tensors from {path}"] + \
        [f"left out {key}: {why}" + ("" if key in trunk else " (a new layer)") for key, why in left_out.items()]


def fitting(model, state, path, partial=False):
    """({key: tensor} of `model` that `state` fills, {key: why} of those it does not, the trunk's among them). Every
    layer of the pretrained trunk (all but model.new_layers) must be filled, unless `partial`: a trunk layer left
    at its random start would silently change the method. A model on the meta device checks a file's fit for free
    (the preflight)."""
    source = suffix_index(state)
    own = model.state_dict()
    loaded, left_out = {}, {}
    for key, tensor in own.items():
        short = key if key in source else ".".join(key.split(".")[-2:])
        if short in source and source[short].shape == tensor.shape:
            loaded[key] = source[short].to(tensor.dtype)
        elif short in source:
            left_out[key] = f"shape {tuple(source[short].shape)} != {tuple(tensor.shape)}"
        else:
            left_out[key] = f"not in {Path(path).name}"
    if not loaded:
        raise InputError(f"{path}: no layer of these weights fits this network; check --net/--width or --init")
    trunk = {key: why for key, why in left_out.items() if key.split(".")[-2] not in model.new_layers}
    if trunk and not partial:
        names = some([f"{key} ({why})" for key, why in trunk.items()], 4)
        raise InputError(f"{path}: leaves {len(trunk)} tensors of the pretrained trunk unloaded: {names}; pass the "
                         "init file of this network (DeepLab nets: the -deeplab one, ./downloads.sh --models), or "
                         "--init_partial to keep them random")
    return loaded, left_out, trunk


def load_caffe_state(model, state, path):
    """Copy every tensor of `model` from a Caffe state dict, matched by layer name; all must fit."""
    source, own = suffix_index(state), model.state_dict()
    short = {key: ".".join(key.split(".")[-2:]) for key in own}
    bad = [f"{s} {tuple(source[s].shape) if s in source else 'missing'} (want {tuple(own[k].shape)})"
           for k, s in short.items() if s not in source or source[s].shape != own[k].shape]
    if bad:
        raise InputError(f"{path}: does not fit this network: {some(bad)}; check --kind, --net and --width")
    model.load_state_dict({k: source[s].to(own[k].dtype) for k, s in short.items()})
    return model
