"""The loop that the three trainings (seed classifier, saliency, segmenter) share: Caffe's solver over a
deterministic sample stream, on one process or under torchrun (DDP), with snapshots and resumption; their losses;
and the stage's start and finish. Their settings are solver.py's, their networks' setup model_setup.py's."""
import contextlib
import gc
import inspect
import logging
import math
import re
import signal
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from . import distributed
from . import precision as P
from .cli import ENDING, Terminated, handling, quiet_loader_worker, share_temp_folder
from .errors import resume_hint
from .io import IGNORE, InputError, load_checkpoint, save_checkpoint, save_json, snapshot_path, snapshots
from .progress import progress
from .solver import SOLVERS, Solver, param_groups, step_lr


def train_loop(model, stream, loss_fn, solver, mults, out, log, device, run, meta=None, label=None):
    """Caffe's solver (SGD or Adam) over a deterministic sample stream, on one process or on W under torchrun (DDP):
    each process computes batch_size/W samples of the same global batch, so the result does not depend
    on W. Snapshots every `snapshot` iterations (snapshot_iter_N.pth, as Caffe names them; --test_iter
    tests one) and after the last iteration (Caffe's snapshot_after_train: a run killed before done.json resumes
    with nothing to train), resumes from the latest, and saves a snapshot on Ctrl-C before stopping. Only the
    first process writes files; `label` names its progress line (the stage's name; it was the folder's parent's,
    another folder's under --out_dir). Returns (losses, this process's iterations per second after its first
    iteration, or None when it ran fewer than two)."""
    local = distributed.local_batch(solver.batch_size)
    device = distributed.process_device(device)
    fmt = P.memory_format(run["channels_last"])
    model.to(device, memory_format=fmt).train()
    sgd = SOLVERS[solver.solver_type](param_groups(model, mults), lr=solver.base_lr, momentum=solver.momentum,
                                      weight_decay=solver.weight_decay, clip_gradients=solver.clip_gradients)
    scaler = P.grad_scaler(device, run["amp"])
    clock, name = Rate(), label or out.name
    with distributed.process_group(device), autotuned(device, run["cudnn_benchmark"]):
        start, losses = resume(out, model, sgd, scaler, log)
        distributed.check_same_everywhere(start, device, f"the snapshot to resume from in {out}")
        net = distributed.wrap(model, device, run["channels_last"])
        share_temp_folder()
        loader = torch.utils.data.DataLoader(stream, batch_size=local,
                                             sampler=SampleKeys(start, solver.max_iter, solver.batch_size, local),
                                             num_workers=run["workers"], pin_memory=device.type == "cuda",
                                             worker_init_fn=quiet_loader_worker)

        def snapshot(iteration):
            if distributed.is_main():
                state = {"losses": losses, "amp": run["amp"], "grad_scaler": scaler.state_dict()}
                save_checkpoint(snapshot_path(out, iteration), model, (meta or {}) | state, sgd, iteration)

        interrupted = {"now": False, "by": None}  # Ctrl-C or SIGTERM: snapshot, then stop on every process

        def interrupt(signum, frame):
            interrupted.update(now=True, by=signum)
        try:
            with handling((signal.SIGINT, *ENDING), interrupt):  # also while a lost process's snapshot is saved
                try:
                    for it, (x, y) in enumerate(progress(loader, name, solver.max_iter, start), start):
                        lr = step_lr(solver.base_lr, it, solver.stepsize, solver.gamma)
                        sgd.set_lr(lr)
                        batch = [x.to(device, memory_format=fmt, non_blocking=True), y.to(device, non_blocking=True)]
                        loss, stop = sgd_step(net, batch, loss_fn, sgd, scaler, run["amp"],
                                              SampleDropout(solver.seed, sample_keys(it, solver.batch_size, local)),
                                              interrupted["now"])
                        check_finite(loss, it, out, solver)
                        losses.append([it + 1, loss])
                        clock.tick()
                        log_progress(log, name, it, start, solver, loss, lr, clock, device)
                        if (it + 1) % solver.snapshot == 0 or it + 1 == solver.max_iter or stop:
                            snapshot(it + 1)
                        if stop:
                            stop_after_snapshot(log, it, interrupted["by"])
                except (RuntimeError, OSError, EOFError) as e:
                    lost = lost_error(e, run["workers"], losses, start, snapshot)
                    if lost is None:
                        raise
                    raise lost from None   # (frames hold net)
        finally:
            del net  # before the process group goes (see distributed.process_group); DDP sits in a reference cycle,
            gc.collect()  # so only a collection frees it: left to the interpreter's exit, gloo's threads may abort
    if distributed.is_main():
        save_checkpoint(out / "model.pth", model, meta or {})
        save_json(out / "loss.json", {"loss": losses})
    return losses, clock.per_second()


def log_progress(log, name, it, start, solver, loss, lr, clock, device):
    """The iteration's line in the log (every twentieth of the training, and the first run), and once, early on, the
    warning for a training that takes long."""
    if clock.count == LONG_RUN_AFTER and distributed.is_main():
        line = long_run_line(name, clock.per_second(), solver.max_iter - it - 1, device)
        if line:
            log.warning("%s", line)
    if (it + 1) % max(1, solver.max_iter // 20) == 0 or it == start:
        log.info("iter %d/%d  loss %.4f  lr %.2e", it + 1, solver.max_iter, loss, lr)


def stop_after_snapshot(log, it, signum):
    """Stop a training interrupted by `signum` once its snapshot is saved: Terminated on SIGTERM and the like (the
    command then prints its one line 'terminated'), exit 130 on Ctrl-C. Under torchrun only the first process logs:
    the others say their own line on Ctrl-C too (cli.run's 'RANK k: interrupted; ...'), as on SIGTERM."""
    if signum in ENDING:
        log.info("saved a snapshot at iteration %d", it + 1)
        raise Terminated
    if not distributed.is_main():
        raise KeyboardInterrupt
    log.info("interrupted: saved a snapshot at iteration %d; %s", it + 1, resume_hint())
    raise SystemExit(130)


def lost_error(e, workers, losses, start, snapshot):
    """lost_process's error where `e` says that another process of the training is gone (a torchrun peer or a
    data-loading worker), else None."""
    with handling((signal.SIGCHLD,), signal.SIG_DFL):  # torch's handler raises a worker's end again
        gone = loader_worker_gone(e, wait=1.0 if workers else 0)
        who = LOST["peer"] if isinstance(e, RuntimeError) and distributed.peer_lost(e) else \
            LOST["loader"] if gone else None
        return None if who is None else lost_process(gone or e.with_traceback(None), losses, start, snapshot, who)


def check_finite(loss, it, out, solver):
    """A loss that is no number stops the training (the same global loss on every process: all stop)."""
    if not math.isfinite(loss):
        raise InputError(f"{out}: loss {loss} at iteration {it + 1}, the training diverged; lower base_lr (now "
                         f"{solver.base_lr:g}), weight_decay (now {solver.weight_decay:g}) or a lr_mult setting "
                         "raised, or fix the labels it trains on")


LONG_RUN_AFTER = 2       # iterations timed after the first before a training's whole length is projected, once
LONG_RUN_S = 6 * 3600    # ... and said when it exceeds this (the paper's preset on a CPU: days, else only in the ETA)


def long_run_line(name, per_second, remaining, device):
    """The warning for a training whose remaining iterations take over LONG_RUN_S at this rate, else None."""
    if not per_second or remaining / per_second < LONG_RUN_S:
        return None
    hours = remaining / per_second / 3600
    length = f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.0f} hours"
    faster = "a GPU (--device cuda)" if device.type == "cpu" else "more GPUs (torchrun)"
    return (f"{name}: {per_second:.3g} iterations/s on {device.type}, so its {remaining} remaining iterations take "
            f"about {length}; {faster} or a lighter preset (README, Results) is faster, and Ctrl-C stops it with a "
            f"snapshot to resume from")


LOADER_WORKER = "DataLoader worker (pid"   # how torch's error on a data-loading worker gone begins
LOST = {"peer": "another torchrun process of this training", "loader": "a data-loading worker process of this training"}


def loader_worker_gone(error, wait=1.0):
    """torch's error on a data-loading worker gone (killed, out of memory) when `error` is, or follows from, one;
    else None. A worker killed while it hands a batch over breaks the connection first (ConnectionResetError,
    EOFError); torch's own check (private, torch._C's) sees the worker's exit only a moment later: poll it."""
    if isinstance(error, RuntimeError):
        return error if str(error).startswith(LOADER_WORKER) else None
    deadline = time.monotonic() + wait
    while True:
        try:
            torch.utils.data._utils.signal_handling._error_if_any_worker_fails()
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
        except RuntimeError as e:   # from the check, or from torch's SIGCHLD handler during the sleep
            if not str(e).startswith(LOADER_WORKER):
                raise
            return e.with_traceback(None)


def lost_process(error, losses, start, snapshot, who=LOST["peer"]):
    """The one-line error of a training whose collective failed because another of its torchrun processes is gone,
    or whose data-loading worker is (killed, out of memory), after a snapshot of the iterations done since it started
    or resumed (the failed iteration changed nothing yet: its update comes after its collectives, and its batch had
    not come)."""
    done = losses[-1][0] if losses else start
    if done > start:
        snapshot(done)
    saved = f"saved a snapshot at iteration {done}; " if done > start and distributed.is_main() else ""
    first = re.sub(r"^\[[^\]]*\.(cc|cpp):\d+\] ", "", (str(error).splitlines() or [""])[0])  # less gloo's source
    why = first.split(". ")[0][:120]
    return InputError(f"{who} ended at iteration {done + 1} ({why}); {saved}{resume_hint()}")


@contextlib.contextmanager
def autotuned(device, benchmark):
    """cuDNN picks each convolution's fastest algorithm at its first call (torch.backends.cudnn.benchmark),
    for this training only: its crops have one size, while the stages after it see every image's size, each of
    which would be tuned again. Set alone, not through cudnn.flags(), whose other arguments reset the rest."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = benchmark and device.type == "cuda"
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


class Rate:
    """Iterations per second after the first (which holds the start-up: loader workers, cuDNN's tuning). Each tick
    comes once the iteration's loss has reached the CPU, with its backward pass and update queued behind it, so the
    span between the first tick and the last holds the device's work of the iterations between."""

    def __init__(self):
        self.first, self.last, self.count = None, None, 0

    def tick(self):
        self.last = time.perf_counter()
        if self.first is None:
            self.first = self.last
        else:
            self.count += 1

    def per_second(self):
        return self.count / (self.last - self.first) if self.count and self.last > self.first else None


def sgd_step(net, batch, loss_fn, sgd, scaler, amp, dropout, interrupted):
    """One update from this process's slice of the global batch: (the global batch's loss, whether any
    process was interrupted)."""
    with dropout, P.autocast(batch[0].device, amp):
        total, count = loss_fn(net, batch)
    share, loss, stop = global_loss(total, count, interrupted)
    sgd.zero_grad(set_to_none=True)
    scaler.scale(share * distributed.world_size()).backward()  # DDP averages the gradients: undo its 1/W
    scaler.step(sgd)
    scaler.update()
    return loss, stop


def resume(out, model, sgd, scaler, log):
    """(first iteration, losses so far) from the latest snapshot in `out`, loaded into model, solver and fp16's loss
    scaler (without its scale, a resumed fp16 training would not continue as one that was not stopped)."""
    snaps = snapshots(out)
    if not snaps:
        return 0, []
    fix = f"delete it to resume from {snaps[-2].name}" if len(snaps) > 1 else "delete it to train from the start"
    state = load_checkpoint(snaps[-1], model, unreadable_fix=fix)
    try:
        wanted = {key for group in sgd.param_groups for key in group}
        sgd.load_state_dict(state["optimizer"])
        missing = {key for group in sgd.param_groups for key in wanted if key not in group}
        if missing:  # another solver_type's state: it would fail at the first step
            raise KeyError(", ".join(sorted(missing)))
    except (KeyError, ValueError) as e:
        raise InputError(f"{snaps[-1]}: its solver state does not fit this training's solver_type or trainable "
                         f"layers ({e}); delete the snapshots in {out} or train with the settings that made them")
    if state["meta"].get("grad_scaler") and scaler.is_enabled():
        scaler.load_state_dict(state["meta"]["grad_scaler"])
    log.info("resuming at iteration %d from %s", state["iteration"], snaps[-1])
    return state["iteration"], [list(x) for x in state["meta"]["losses"]]


class SampleKeys(torch.utils.data.Sampler):
    """The stream indices of iterations start..max_iter-1 in order, made as the loader asks for them (a list of
    them all took memory in proportion to max_iter)."""

    def __init__(self, start, max_iter, batch_size, local):
        super().__init__()
        self.start, self.max_iter, self.batch_size, self.local = start, max_iter, batch_size, local

    def __len__(self):
        return (self.max_iter - self.start) * self.local

    def __iter__(self):
        for it in range(self.start, self.max_iter):
            yield from sample_keys(it, self.batch_size, self.local)


def sample_keys(iteration, batch_size, local):
    """Stream indices of this process's slice of the global batch of `iteration`."""
    first = iteration * batch_size + distributed.rank() * local
    return range(first, first + local)


def global_loss(total, count, interrupted):
    """(this process's share of the global batch's loss, the global loss's value, whether any process was
    interrupted, so that all stop together). The normaliser (Caffe's: batch size or counted pixels) is
    summed over the processes; the share is this process's loss sum over it, so the shares' gradients add
    up to the global loss's (DDP averages them: the caller multiplies by W)."""
    sums = distributed.all_sum(torch.stack([total.detach().double(), count.double(),
                                     count.new_tensor(float(interrupted), dtype=torch.float64)]))
    normaliser = sums[1].clamp(min=1)
    return total / normaliser.to(total.dtype), (sums[0] / normaliser).item(), bool(sums[2])


class SampleDropout(TorchFunctionMode):
    """F.dropout with each sample's mask drawn from a generator seeded by (seed, the sample's stream index,
    the dropout call's order in the forward pass): the masks, like the samples, do not depend on which
    process or batch computes a sample, so W processes train exactly as one."""

    def __init__(self, seed, keys):
        super().__init__()
        self.seed, self.keys, self.calls = seed, keys, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is not F.dropout:
            return func(*args, **(kwargs or {}))
        call = inspect.signature(F.dropout).bind(*args, **(kwargs or {}))
        call.apply_defaults()
        x, p, training = call.arguments["input"], call.arguments["p"], call.arguments["training"]
        if not training or p == 0:
            return x
        self.calls += 1
        return x * torch.stack([self.mask(x, p, k) for k in self.keys])

    def mask(self, x, p, key):
        """Kept units of one sample, scaled by 1 / (1 - p) as in F.dropout."""
        seed = int(np.random.SeedSequence([self.seed, key, self.calls]).generate_state(1, np.uint64)[0])
        generator = torch.Generator(x.device).manual_seed(seed)
        keep = torch.empty(x.shape[1:], dtype=x.dtype, device=x.device).bernoulli_(1 - p, generator=generator)
        return keep / (1 - p)


def classification_loss(model, batch):
    """Caffe SigmoidCrossEntropyLoss, summed over classes and images; normalised by the batch size."""
    x, y = batch
    scores, _ = model(x)
    return F.binary_cross_entropy_with_logits(scores, y, reduction="sum"), y.new_tensor(x.shape[0])


def segmentation_loss(model, batch):
    """Caffe SoftmaxWithLoss, ignore 255, summed; normalised by the counted pixels. Scores are upsampled
    bilinearly to the labels' size where that differs (loss_res input)."""
    x, y = batch
    return F.cross_entropy(scores_at(model(x), y), y, ignore_index=IGNORE, reduction="sum"), (y != IGNORE).sum()


def scores_at(scores, labels):
    """scores [B, C, h, w] at the labels' [B, H, W] size (bilinear), unchanged when the sizes agree."""
    if scores.shape[-2:] == labels.shape[-2:]:
        return scores
    return F.interpolate(scores, size=labels.shape[-2:], mode="bilinear", align_corners=False)


def prepare(stage):
    """The solver of a training stage. Seeds torch's generator with its seed, so the initial weights are
    reproducible; under torchrun only the first process logs progress, the others warnings and errors."""
    if not distributed.is_main():
        stage.log.setLevel(logging.WARNING)
    solver = Solver.of(stage.cfg[stage.name], stage.cfg["run"]["snapshot"])
    torch.manual_seed(solver.seed)
    return solver


def run_training(stage, model, stream, loss_fn, solver, mults, meta, publish=None):
    """Train, then finish the stage folder; publish(summary) -> summary, if given, runs in between (the first
    process only), once model.pth is written."""
    losses, rate = train_loop(model, stream, loss_fn, solver, mults, stage.out, stage.log, stage.device,
                              stage.cfg["run"], meta, stage.name)
    if distributed.is_main():
        summary = {"final_loss": losses[-1][1] if losses else None, "images": len(stream.make_sample.data),
                   "iterations": solver.max_iter, "iterations_per_s": rate}
        stage.finish(publish(summary) if publish else summary)
