"""Weights into networks: --init files (our checkpoints, Caffe models, torchvision VGG-16) matched by layer name."""
from pathlib import Path

import torch

from .caffemodel import caffe_state_dict, torchvision_vgg16_to_caffe
from .io import InputError


def read_state(path):
    """A name -> tensor dict from a checkpoint of ours or a plain state dict (.pth/.pt)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: initial weights not found; run ./downloads.sh --models, "
                         "or pass --init none to train from scratch")
    if path.suffix == ".caffemodel":
        return caffe_state_dict(path)
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


def suffix_index(state):
    """Index a state dict by layer name + parameter kind (e.g. 'conv1_1.weight') to match across wrappers;
    full keys too, and suffixes that occur once only (EfficientNet repeats '_bn1.weight' in every block)."""
    shorts = [".".join(k.split(".")[-2:]) for k in state]
    index = {s: v for s, v in zip(shorts, state.values()) if shorts.count(s) == 1}
    return index | dict(state)


def load_init(model, path):
    """Copy every tensor whose layer name and shape match; report each layer loaded or left out."""
    source = suffix_index(read_state(path))
    own = model.state_dict()
    loaded, report = {}, []
    for key, tensor in own.items():
        short = key if key in source else ".".join(key.split(".")[-2:])
        if short in source and source[short].shape == tensor.shape:
            loaded[key] = source[short].to(tensor.dtype)
        elif short in source:
            report.append(f"left out {key}: shape {tuple(source[short].shape)} != {tuple(tensor.shape)}")
        else:
            report.append(f"left out {key}: not in {Path(path).name}")
    if not loaded:
        raise InputError(f"{path}: no layer of these weights fits this network; check --net/--width or --init")
    model.load_state_dict(loaded, strict=False)
    return [f"loaded {len(loaded)} of {len(own)} tensors from {path}"] + report


def load_caffe_state(model, state, path):
    """Copy every tensor of `model` from a Caffe state dict, matched by layer name; all must fit."""
    source, own = suffix_index(state), model.state_dict()
    short = {key: ".".join(key.split(".")[-2:]) for key in own}
    bad = [f"{s} {tuple(source[s].shape) if s in source else 'missing'} (want {tuple(own[k].shape)})"
           for k, s in short.items() if s not in source or source[s].shape != own[k].shape]
    if bad:
        raise InputError(f"{path}: does not fit this network: {', '.join(bad[:3])}"
                         f"{' ...' if len(bad) > 3 else ''}; check --kind, --net and --width")
    model.load_state_dict({k: source[s].to(own[k].dtype) for k, s in short.items()})
    return model
