"""Training on several processes under torchrun (DDP): each computes its slice of the same global batch.

Without torchrun (no WORLD_SIZE) every helper is the one-process case, so one code path serves both.
NCCL joins CUDA processes, gloo CPU ones; torchrun's environment (MASTER_ADDR, RANK, ...) says where.
"""
import contextlib
import io
import os
import signal
import sys
import time
import warnings

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .cli import handling
from .io import InputError


def world_size():
    return int(os.environ.get("WORLD_SIZE", 1))


def under_torchrun():
    """Whether torchrun itself started this process (WORLD_SIZE alone may come from elsewhere)."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def rank():
    return int(os.environ.get("RANK", 0))


def is_main():
    """The process that writes files and logs progress."""
    return rank() == 0


def says_for_all():
    """Whether this process says what every process of its launch would say alike: the first (RANK 0) of a torchrun
    launch, or a process that torchrun did not start."""
    return not under_torchrun() or is_main()


def says_for_its_machine():
    """Whether this process says what every process of its machine would say alike: the first of each machine
    (LOCAL_RANK 0) of a torchrun launch, or a process that torchrun did not start."""
    return not under_torchrun() or int(os.environ.get("LOCAL_RANK", 0)) == 0


@contextlib.contextmanager
def said_once(speaker=says_for_all):
    """A block whose lines and errors every process of a torchrun launch meets alike (its settings, read from the
    command line and the config before any process works; speaker=says_for_its_machine: its checks of the files a
    machine reads): only the `speaker` says them (8 GPUs printed every note and error 8 times). Another process holds
    what it would say, and on an error ends with the same exit code once the speaker has said it (after_the_first);
    where the speaker ran on instead (it met no such error), it says its own, with its RANK (cli.say)."""
    if speaker():
        yield
        return
    held = io.StringIO()
    try:
        with contextlib.redirect_stdout(held), contextlib.redirect_stderr(held):
            yield
    except (InputError, SystemExit) as e:   # (SystemExit: argparse's error, or -h's exit 0)
        if isinstance(e, InputError) or e.code:
            after_the_first()
            sys.stderr.write(held.getvalue())
        raise


def after_the_first(at_most_s=60):
    """Wait for torchrun to end this process (SystemExit 2), which it does to every process once one ends with an
    error: a process that ended at once, silent, got the first ended before it said why. Returns after `at_most_s`
    if nothing came (the first ran on)."""
    with handling((signal.SIGINT, signal.SIGTERM, signal.SIGHUP), ended_silently):
        time.sleep(at_most_s)


class EndedSilently(SystemExit):
    """The exit (2) of a process that torchrun ended after another process's error, which that one says."""


def end_silently():
    """End this process without a word once torchrun ends it (after_the_first), another process saying why."""
    after_the_first()
    raise EndedSilently(2)


def ended_silently(signum, frame):
    raise EndedSilently(2)


def local_batch(batch_size):
    """This process's share of the global batch, which must split evenly so the solver stays the paper's."""
    w = world_size()
    if batch_size % w:
        raise InputError(f"--batch_size {batch_size}: not divisible by the {w} torchrun processes; "
                         f"choose a multiple of {w} or another --nproc_per_node")
    return batch_size // w


def process_device(device):
    """torchrun's LOCAL_RANK picks this process's GPU when the device names none; one GPU named for
    several processes of a machine is an error (NCCL needs a GPU per process)."""
    if device.type != "cuda":
        return device
    if device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    local = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    if local > 1:
        raise InputError(f"--device {device}: torchrun runs {local} processes on this machine, one GPU each; "
                         "use --device cuda (process k takes GPU k)")
    return device


@contextlib.contextmanager
def process_group(device):
    """Join torchrun's process group for the duration of the block (nothing to join for one process).

    The block must drop its DDP model before it ends, and a finished block waits for every process before
    the group is torn down: a gloo group destroyed while the last backward's all-reduce is still being
    released can deadlock (torch 2.13: the release needs the GIL that the teardown holds)."""
    if world_size() == 1 or dist.is_initialized():
        yield
        return
    check_rendezvous()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None)
    try:
        yield
        dist.barrier()
    finally:
        dist.destroy_process_group()


def check_rendezvous():
    """The processes of a training find each other at MASTER_ADDR:MASTER_PORT, which torchrun sets; WORLD_SIZE and
    RANK set by something else (a scheduler, a shell's export) without them made torch raise its traceback."""
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise InputError(f"WORLD_SIZE={world_size()} is set without {' and '.join(missing)}, where a training's "
                         "processes meet; start them with torchrun, or unset WORLD_SIZE and RANK to train in one "
                         "process")


def wrap(model, device, channels_last=False):
    """DDP when several processes train: it averages the gradients over the processes in backward. With
    channels_last, its warning that a gradient's strides differ from its bucket's is not shown: a depthwise
    convolution's [C, 1, k, k] weight gets gradients whose strides differ on the size-1 dimension alone, the same
    layout, which DDP compares literally (either way round, by convolution backend); at worst it costs a copy."""
    if not dist.is_initialized():
        return model
    if channels_last:  # (raised in the first backward, so the filter stays for the process)
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides",
                                category=UserWarning)
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def all_sum(tensor):
    """The element-wise sum of `tensor` over the processes (in place)."""
    if dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def main_decides(flag, device):
    """The first process's `flag`, for every process (what it found in a file that only it reads)."""
    if not dist.is_initialized():
        return flag
    value = torch.tensor([int(flag)], device=device)
    dist.broadcast(value, 0)
    return bool(value.item())


@contextlib.contextmanager
def first_then_others(device):
    """The block runs on the first process, then on the others, which wait for it: what it checks and writes in the
    output folder, the others find done (run together, one saw the folder half made). An error of the first stops
    the others too, silently (exit code 2): the first's line says why."""
    if not dist.is_initialized():
        yield
        return
    if not is_main():
        if main_decides(False, device):
            end_silently()
        yield
        return
    try:
        yield
    except BaseException:
        main_decides(True, device)
        raise
    main_decides(False, device)


PEER_GONE = ("Connection closed by peer", "Connection reset by peer")  # gloo's words, in a plain RuntimeError


def peer_lost(error):
    """Whether a collective failed because another process of the launch is gone (gloo: its connection closed).
    NCCL does not say so: its collective waits until its watchdog ends the process."""
    return dist.is_initialized() and any(words in str(error) for words in PEER_GONE)


def barrier():
    """Wait for every process (nothing to wait for with one)."""
    if dist.is_initialized():
        dist.barrier()


def check_same_everywhere(value, device, what):
    """Every process must see the same `value` (e.g. the snapshot it resumes from)."""
    if not dist.is_initialized():
        return
    spread = torch.tensor([value, -value], dtype=torch.float64, device=device)
    dist.all_reduce(spread, op=dist.ReduceOp.MAX)
    if spread[0] != -spread[1]:
        raise InputError(f"{what} differs between the torchrun processes; put --out_dir on a file system "
                         "that every machine shares")
