"""--amp and --channels_last: optional speed settings, off by default (the paper's numbers are fp32)."""
import contextlib

import torch

from .errors import listed
from .io import InputError

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def amp_dtype(amp):
    if amp not in AMP_DTYPES:
        raise InputError(f"--amp {amp}: choose {listed(AMP_DTYPES, 'or')}")
    return AMP_DTYPES[amp]


def autocast(device, amp):
    """torch.autocast to the --amp dtype (convolutions and matrix products run in it), or no change."""
    dtype = amp_dtype(amp)
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()


def grad_scaler(device, amp):
    """Loss scaling for fp16, whose small gradients underflow; bf16 has fp32's range and needs none."""
    return torch.amp.GradScaler(device.type, enabled=amp_dtype(amp) is torch.float16)


def memory_format(channels_last):
    return torch.channels_last if channels_last else torch.contiguous_format


def options(run):
    """The precision settings of a config's run section, as keyword arguments."""
    return {"amp": run["amp"], "channels_last": run["channels_last"]}
