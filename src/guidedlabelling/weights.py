"""Initial weights for --init: our checkpoints (and, through caffe/, Caffe and torchvision files)."""
from pathlib import Path

import torch

from .io import InputError


def read_state(path):
    """A name -> tensor dict from a checkpoint of ours or a plain state dict (.pth/.pt)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: initial weights not found; run ./downloads.sh --models, "
                         "or pass --init none to train from scratch")
    if path.suffix == ".caffemodel":
        from .caffemodel import caffe_state_dict  # imported lazily: only Caffe users need protobuf
        return caffe_state_dict(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files
        raise InputError(f"{path}: unreadable weights ({type(e).__name__}); re-download or retrain") from None
    state = state.get("model", state)
    if "features.0.weight" in state:  # torchvision VGG-16: RGB, 0..1 inputs normalised by mean/std
        from .caffemodel import torchvision_vgg16_to_caffe
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
