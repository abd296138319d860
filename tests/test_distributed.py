"""Training on W processes (torchrun, DDP on gloo) gives the parameters of the one-process run."""
import contextlib
import gc
import json
import logging
import os
import weakref
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from guidedlabelling import datasets as D
from guidedlabelling import distributed
from guidedlabelling.cli import errors_end_in_one_line
from guidedlabelling.datasets.builtin import ensure_builtin
from guidedlabelling.io import IGNORE, InputError, flocked, lock_of
from guidedlabelling.networks import build_seg_net
from guidedlabelling.runner import fragment_of
from guidedlabelling.sampling import segmentation_stream
from guidedlabelling.solver import Solver
from guidedlabelling.model_setup import fc8_mults
from guidedlabelling.training import SampleDropout, global_loss, segmentation_loss, train_loop

ROOT = Path(__file__).resolve().parents[1]
wrap = distributed.wrap
SMOKE_DATA = ROOT / "data" / "builtin_64px_20_10"                 # configs/smoke.yaml's built-in data
STAGES = {  # stage command, its settings: a global batch of 4 for 3 iterations (a snapshot at 2)
    "classification": ("src/seed/train.py", ["--set", "seed_train.batch_size=4", "--set", "seed_train.max_iter=3"]),
    "segmentation": ("src/segmentation/train.py", ["--labels", "gt", "--set", "seg_train.batch_size=4",
                                                   "--set", "seg_train.max_iter=3"]),
}


def train(stage, out, processes):
    script, settings = STAGES[stage]
    launcher = [sys.executable] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    proc = subprocess.run(launcher + [str(ROOT / script), "--config", "smoke", "--out_root", str(out.parent),
                                      "--out_dir", str(out)] + settings,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-6000:]  # a rank's own lines come before torchrun's
    return torch.load(out / "model.pth", weights_only=True)["model"]


@pytest.mark.parametrize("stage", STAGES)
def test_two_processes_train_as_one(stage, tmp_path):
    one = train(stage, tmp_path / "one", 1)      # first: it generates the smoke data when absent
    two = train(stage, tmp_path / "two", 2)
    assert one.keys() == two.keys()
    assert max((one[k] - two[k]).abs().max().item() for k in one) <= 1e-5
    assert any((v != 0).any() for v in one.values())
    losses_one = json.loads((tmp_path / "one" / "loss.json").read_text())["loss"]
    losses_two = json.loads((tmp_path / "two" / "loss.json").read_text())["loss"]
    np.testing.assert_allclose(losses_two, losses_one, rtol=1e-5)
    # only the first process writes and logs: one progress line per logged iteration
    log = (tmp_path / "two" / "log.txt").read_text()
    assert log.count("iter 1/3") == 1 and log.count("iter 3/3") == 1
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == \
        ["config.yaml", "done.json", "inputs.json", "log.txt", "loss.json", "model.pth", "snapshot_iter_2.pth",
         "snapshot_iter_3.pth"]  # every 2 iterations and after the last
    assert json.loads((tmp_path / "two" / "done.json").read_text())["iterations_per_s"] > 0  # 2 timed iterations


def test_two_processes_train_a_channels_last_depthwise_network_without_stride_warnings(tmp_path):
    """EfficientNet's depthwise weights ([C, 1, 3, 3]) in channels_last get gradients whose strides differ from
    theirs only on the size-1 dimension: DDP warned 'Grad strides do not match bucket view strides' in each
    process."""
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(ROOT / "src/segmentation/train.py"), "--config", "smoke", "--out_root", str(tmp_path),
                           "--labels", "gt", "--set", "seg_train.net=DeepLab-EffNet", "--set", "seg_train.width=0.25",
                           "--set", "seg_train.max_iter=2", "--set", "seg_train.batch_size=2", "--set",
                           "channels_last=true"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "iter 2/2" in proc.stdout and "Grad strides" not in proc.stderr, proc.stderr[-2000:]


def test_the_ddp_model_is_freed_before_the_process_group_goes(tmp_path, monkeypatch):
    """A process's first DDP sits in a reference cycle (torch 2.13: its __init__ imports torch._dynamo, whose import
    leaves garbage that holds the __init__ frame): dropping the name leaves it, its reducer and the gloo work it
    holds to a later collection, which may come during the interpreter's exit, where gloo's threads abort the
    process (rank 1 ended by SIGABRT once, after its training). The training loop collects it before it returns.
    (Here torch._dynamo is already imported, so the test puts the DDP in a cycle itself.)"""
    voc, _ = ensure_builtin(SMOKE_DATA, n_train=20, n_val=10, size=64, seed=0)
    model = build_seg_net("DeepLab-LargeFOV", D.VOCDataset(voc, "train").num_classes, 0.0625)
    stream = segmentation_stream(D.VOCDataset(voc, "train"), 64, model.output_size(64), "none",
                                 Solver(0.001, 2, 2, 2, 0, 2))
    wrapped = []

    def wrap_and_watch(*args, **kwargs):
        net = wrap(*args, **kwargs)
        net.__dict__["cycle"] = [net]
        wrapped.append(weakref.ref(net))
        return net
    monkeypatch.setattr(distributed, "wrap", wrap_and_watch)
    run = {"workers": 0, "amp": "none", "channels_last": False, "cudnn_benchmark": False}
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'group'}", rank=0, world_size=1)
    gc.disable()  # the automatic collection would hide a missing one
    try:
        train_loop(model, stream, segmentation_loss, Solver(0.001, 2, 2, 2, 0, 2), fc8_mults(10), tmp_path,
                   logging.getLogger("test_distributed"), torch.device("cpu"), run)
        assert len(wrapped) == 1 and wrapped[0]() is None
    finally:
        gc.enable()
        dist.destroy_process_group()


def test_segmentation_halves_count_different_pixels():
    """The segmentation comparison above is sensitive to the normalisation: the two processes' halves
    of a global batch count different numbers of (non-255) pixels, so averaging per-process means
    would not give the global mean."""
    voc, _ = ensure_builtin(SMOKE_DATA, n_train=20, n_val=10, size=64, seed=0)
    data = D.VOCDataset(voc, "train")
    model = build_seg_net("DeepLab-LargeFOV", data.num_classes, 0.0625)
    stream = segmentation_stream(data, 64, model.output_size(64), "none", Solver(0.001, 3, 2, 4, 0, 2))
    counted = [int((stream[k][1] != IGNORE).sum()) for k in range(12)]
    halves = [(sum(counted[i:i + 2]), sum(counted[i + 2:i + 4])) for i in range(0, 12, 4)]
    assert any(a != b for a, b in halves), halves


def test_loss_shares_add_up_to_the_mean_over_counted_pixels():
    """Gradients of two processes' shares (local sum / global count) add up to those of torch's mean
    cross-entropy over the non-255 pixels of the whole batch."""
    torch.manual_seed(0)
    logits = torch.randn(4, 3, 5, 5, requires_grad=True)
    labels = torch.randint(0, 3, (4, 5, 5))
    labels[0, :3] = IGNORE                    # the first half counts fewer pixels
    F.cross_entropy(logits, labels, ignore_index=IGNORE).backward()
    expected, logits.grad = logits.grad, None
    total_count = (labels != IGNORE).sum()
    for half in (slice(0, 2), slice(2, 4)):
        total = F.cross_entropy(logits[half], labels[half], ignore_index=IGNORE, reduction="sum")
        share = total / total_count             # what global_loss gives once the counts are summed
        share.backward()
    torch.testing.assert_close(logits.grad, expected)
    share, value, stop = global_loss(torch.tensor(6.0), torch.tensor(3), False)  # one process: sum / count
    assert share.item() == 2.0 and value == 2.0 and not stop


def test_dropout_masks_follow_the_sample_not_the_batch():
    x = torch.ones(4, 3, 8, 8)
    with SampleDropout(7, range(4)):
        whole = F.dropout(x, 0.5, True)
    with SampleDropout(7, range(2)):
        first = F.dropout(x[:2], 0.5, True)
    with SampleDropout(7, range(2, 4)):
        second = F.dropout(x[2:], 0.5, True)
    torch.testing.assert_close(torch.cat([first, second]), whole, rtol=0, atol=0)
    assert set(whole.unique().tolist()) == {0.0, 2.0}                 # kept units scaled by 1 / (1 - p)
    assert 0.4 < (whole > 0).float().mean().item() < 0.6
    assert not torch.equal(whole[0], whole[1])                        # every sample its own mask
    with SampleDropout(7, range(4)):
        assert torch.equal(F.dropout(x, 0.5, False), x)               # eval mode: no dropout


def test_batch_not_divisible_by_processes_is_one_line(tmp_path):
    env = dict(os.environ, WORLD_SIZE="3", RANK="0", LOCAL_RANK="0")
    proc = subprocess.run([sys.executable, str(ROOT / "src/seed/train.py"), "--config", "smoke", "--out_dir",
                           str(tmp_path / "x"), "--set", "seed_train.batch_size=4"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: --batch_size 4: not divisible by the 3 torchrun processes; "
                                   "choose a multiple of 3 or another --nproc_per_node")


@pytest.mark.parametrize("launch", [["--n", "1", "--N", "2"], "torchrun"])
def test_several_processes_refuse_overridecache_and_the_driver(launch, tmp_path):
    """Each fragment or torchrun process cleared the folder with --overridecache, deleting what the others wrote
    (a review); ./script.py as a fragment trained every network in each process and stopped late."""
    env = dict(os.environ, WORLD_SIZE="2", RANK="1", LOCAL_RANK="1") if launch == "torchrun" else dict(os.environ)
    flags = [] if launch == "torchrun" else launch
    out = tmp_path / "heatmaps"
    proc = subprocess.run([sys.executable, str(ROOT / "src/seed/test.py"), "--config", "smoke", "--out_dir", str(out),
                           "--overridecache", *flags], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and not out.exists()
    assert proc.stderr.strip() == (f"error: --overridecache with 2 processes (--n/--N or torchrun): each would clear "
                                   f"what the others write; remove {out} first, then run them without it")
    driver_flags = ["--set", "n=1", "--set", "N=2"] if launch != "torchrun" else []
    proc = subprocess.run([sys.executable, str(ROOT / "script.py"), "--config", "smoke", "--out_root", str(tmp_path),
                           *driver_flags], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    how = "under torchrun" if launch == "torchrun" else "as fragment 2 of 2 (n=1)"
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"error: ./script.py {how}: only per-image steps split into fragments, not seed_train, seed_eval, cls_eval, "
        "saliency_train, seg_train, reference_train; run those in one process first (a training may run "
        "data-parallel under torchrun as its stage command), then the fragments with --steps and the per-image steps "
        "(docs/reference.md, 'Several processes or GPUs')")
    assert not (tmp_path / "smoke").exists()
    # the per-image steps of a run split as their commands split: the same images
    driver = [sys.executable, str(ROOT / "script.py"), "--config", "smoke", "--out_root", str(tmp_path), "--steps"]
    proc = subprocess.run(driver + ["seed_train"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    part = subprocess.run(driver + ["seed_eval_heatmaps", *driver_flags], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert part.returncode == 0, part.stderr
    name = "fragment 2 of 2 (n=1)" if launch != "torchrun" else "torchrun process 2 of 2 (RANK 1)"
    assert f"{name} done; the last fragment to finish a step completes it" in part.stdout
    if launch != "torchrun":  # (under torchrun, a process other than the first logs no info lines)
        assert f" {name} finished, writing into " in part.stdout   # blocks of 8: 2 of its 10
        assert "; 8 images left to other fragments" in part.stdout
    assert "summary" not in part.stdout and not (tmp_path / "smoke" / "summary.json").exists()
    alone = tmp_path / "alone"
    proc = subprocess.run([sys.executable, str(ROOT / "src/seed/test.py"), "--config", "smoke", "--out_root",
                           str(tmp_path), "--set", "seed_split=test", "--out_dir", str(alone), *flags], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    fragment = sorted(p.name for p in (tmp_path / "smoke" / "seed_heatmaps").glob("*split-test/*.mat"))
    assert fragment == sorted(p.name for p in alone.glob("*.mat")) and 0 < len(fragment) < 10
    # a per-image step that reads another of the same fragment run would find it unfinished: refused first
    proc = subprocess.run(driver + ["seed_heatmaps,guide_labels,saliency", *driver_flags], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"error: ./script.py {how}: guide_labels needs saliency, seed_heatmaps finished, whose images the other "
        "fragments write too; run the fragments of saliency, seed_heatmaps first, then those of guide_labels (one "
        "--steps each)")
    # with seed_heatmaps and saliency finished (one process), a fragment of guide_labels may list them
    proc = subprocess.run(driver + ["seed_heatmaps,saliency_train,saliency"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(driver + ["seed_heatmaps,saliency,guide_labels", *driver_flags], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("command, launch, whole", [
    ("src/segmentation/train.py", "--n/--N", "seg_train: fragments split the images of per-image stages; a training "
     "runs in one process, or data-parallel under torchrun"),
    ("src/seed/eval.py", "--n/--N", "seed_eval: fragments split the images of per-image stages; seed_eval runs in one "
     "process"),
    ("src/seed/eval.py", "torchrun", "seed_eval: fragments split the images of per-image stages; seed_eval runs in "
     "one process")])
def test_fragments_of_a_stage_that_is_not_per_image_are_refused(command, launch, whole, tmp_path):
    """--n/--N on a training or an evaluation, or torchrun on an evaluation, was silently ignored: each fragment or
    process did the whole stage."""
    env = dict(os.environ, WORLD_SIZE="2", RANK="0", LOCAL_RANK="0") if launch == "torchrun" else dict(os.environ)
    flags = ["--n", "0", "--N", "2"] if launch == "--n/--N" else []
    proc = subprocess.run([sys.executable, str(ROOT / command), "--config", "smoke", "--out_root", str(tmp_path),
                           *flags], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and not (tmp_path / "smoke").exists()
    assert proc.stderr.strip() == f"error: {launch} on {whole} (docs/reference.md, 'Several processes or GPUs')"


def test_fragments_come_from_torchrun_or_from_n_and_N_not_both(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert fragment_of({"n": 1, "N": 2}) == (1, 2)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(InputError, match=r"WORLD_SIZE=2 is set without RANK; start the processes with torchrun"):
        fragment_of({"n": 0, "N": 1})   # each such process would have been fragment 0
    monkeypatch.setenv("RANK", "1")
    assert fragment_of({"n": 0, "N": 1}) == (1, 2)
    assert fragment_of({"n": 0, "N": 2}) == (0, 2)   # WORLD_SIZE set by something else than torchrun: --n/--N
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "launch")
    with pytest.raises(InputError, match=r"--n 0 --N 2 under torchrun, whose processes already split the images"):
        fragment_of({"n": 0, "N": 2})   # both processes were fragment 0 of 2: half the images were never made


def test_a_torchrun_training_refuses_a_folder_another_process_writes_and_takes_it_once_free(tmp_path):
    """Every process of a launch took the folder's lock shared, so a second launch trained into a folder a first
    was still training (both wrote snapshots and model.pth); now the first process holds it alone for its launch."""
    out = tmp_path / "seed"
    out.mkdir()
    with flocked(lock_of(out), lambda: None):   # another launch, or a command, writing the folder
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                               str(ROOT / STAGES["classification"][0]), "--config", "smoke", "--out_root",
                               str(tmp_path), "--out_dir", str(out)] + STAGES["classification"][1],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and not (out / "model.pth").exists() and not list(out.glob("snapshot_*"))
    line = (f"error: {out}: another process is writing or reading it, and a training under torchrun does not wait "
            "for it; run it again once that is done")
    assert proc.stderr.splitlines().count(line) == 1 and "Traceback" not in proc.stderr.split(line)[0]  # the first's
    assert "RANK 1" not in proc.stderr
    killed = out / ".snapshot_iter_2.pth.abcdefgh.tmp.pth"   # a snapshot's write that a kill cut short
    killed.write_bytes(b"part")
    train("classification", out, 2)   # free: it trains, and its first process, the folder's one writer, sweeps
    assert not killed.exists()        # what killed writes left, as a command does (fragments: once an hour old)


def test_torchrun_says_what_every_process_meets_once_and_what_one_meets_with_its_rank(tmp_path):
    """Every process of a launch printed each note and settings error: 8 times on 8 GPUs. The first alone says them
    now, the others ending with the same exit code; an error one process meets alone is still said, with its RANK
    (here RANK 1 alone may write no file above 1 KiB, as a quota of its own: its output folder's inputs.json)."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    script, settings = STAGES["classification"]
    proc = subprocess.run(torchrun + [str(ROOT / script), "--config", "smoke", "--out_dir", str(tmp_path / "x"),
                                      "--set", "seed_train.base_lr=-1", "--set", "seed_train.max_itr=5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    ours = [line for line in proc.stderr.splitlines() if line.startswith(("error:", "RANK"))]
    assert ours == ["error: command line: unknown setting 'seed_train.max_itr'; section seed_train has no 'max_itr'; "
                    "did you mean seed_train.max_iter? ./src/seed/train.py -h lists its settings",
                    "error: setting seed_train.base_lr = -1.0 (command line): must be above 0"], proc.stderr
    assert proc.stderr.count("exitcode  : 2 ") == 2 and not (tmp_path / "x").exists(), proc.stderr  # each process's
    train("classification", tmp_path / "seed", 1)
    quota = 'if [ "$RANK" = 1 ]; then ulimit -f 1; fi; exec "$@"'
    out = tmp_path / "heatmaps"
    proc = subprocess.run(torchrun + ["--no-python", "bash", "-c", quota, "quota", sys.executable,
                                      str(ROOT / "src/seed/test.py"), "--config", "smoke", "--out_root", str(tmp_path),
                                      "--model_dir", str(tmp_path / "seed"), "--out_dir", str(out),
                                      "--set", "seg_train.base_lr=0.1"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.count("note: --set seg_train.base_lr: a setting of seg_train, which seed_heatmaps does not "
                             "read") == 1, proc.stdout
    assert proc.stderr.count(f"RANK 1: error: {out / 'inputs.json'}: File too large; the file system, or the "
                             "shell's file size limit (ulimit -f), refuses files this large") == 1, proc.stderr
    assert "RANK 0:" not in proc.stderr + proc.stdout and "exitcode  : 2 " in proc.stderr


def test_a_process_that_is_not_the_first_holds_what_all_say_until_torchrun_ends_it(monkeypatch, capsys):
    """Ended at once, the silent process got torchrun to end the first before it said the error (torchrun ends every
    process once one fails); where nothing ends it (the first met no such error), it says its own, with its RANK."""
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "launch")
    monkeypatch.setenv("RANK", "1")
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()   # torchrun, once the first has ended
    with pytest.raises(SystemExit) as ended, errors_end_in_one_line(), distributed.said_once():
        print("note: a setting")
        raise InputError("a setting is bad")
    assert ended.value.code == 2 and capsys.readouterr() == ("", "")
    monkeypatch.setattr(distributed, "after_the_first", lambda: None)   # nothing ended it
    with pytest.raises(SystemExit) as ended, errors_end_in_one_line(), distributed.said_once():
        print("note: a setting")
        raise InputError("a setting is bad")
    assert ended.value.code == 2 and capsys.readouterr() == ("", "note: a setting\nRANK 1: error: a setting is bad\n")


def test_torchrun_workers_end_with_a_snapshot_when_torchrun_is_killed(tmp_path):
    """kill -9 of torchrun left its workers training on to the end, writing model.pth (a review); each worker now
    watches torchrun and ends as on SIGTERM: a snapshot, and no model."""
    out = tmp_path / "seed"
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(ROOT / STAGES["classification"][0]), "--config", "smoke", "--out_root", str(tmp_path),
                             "--out_dir", str(out), "--set", "seed_train.batch_size=4", "--set",
                             "seed_train.max_iter=100000", "--set", "snapshot=100000"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=(tmp_path / "err.txt").open("w"))
    deadline = time.monotonic() + 120
    while "iter 1/" not in ((out / "log.txt").read_text() if (out / "log.txt").exists() else ""):
        assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "err.txt").read_text()
        time.sleep(0.2)
    workers = [int(p) for p in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                              text=True).stdout.split()]
    assert len(workers) == 2
    proc.kill()
    proc.wait()
    while any(Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
              for pid in workers):
        assert time.monotonic() < deadline + 60, "the workers trained on after torchrun was killed"
        time.sleep(0.2)
    assert len(list(out.glob("snapshot_iter_*.pth"))) == 1 and not (out / "model.pth").exists()


def test_workers_of_a_torchrun_killed_while_they_start_end_too(tmp_path):
    """kill -9 of torchrun while its workers imported torch: each followed the parent it found after the import,
    init by then, and waited 30 minutes for torchrun's store (a review); now each follows the parent that started
    it, and ends as on a SIGTERM."""
    err = tmp_path / "err.txt"
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(ROOT / STAGES["classification"][0]), "--config", "smoke", "--out_root", str(tmp_path),
                             "--out_dir", str(tmp_path / "seed")], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=err.open("w"))
    deadline = time.monotonic() + 60

    def importing_torch(pid):
        with contextlib.suppress(OSError):
            return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    workers = []
    while len(workers) < 2 or not all(map(importing_torch, workers)):
        assert time.monotonic() < deadline and proc.poll() is None, err.read_text()
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    while any(Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
              for pid in workers):
        if time.monotonic() > deadline:
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            raise AssertionError(f"the workers ran on after torchrun was killed: {err.read_text()[-2000:]}")
        time.sleep(0.2)
    assert "terminated; rerun the same command to resume" in err.read_text()


def test_a_worker_that_dies_stops_the_other_with_one_line_and_a_snapshot_to_resume_from(tmp_path):
    """kill -9 of one worker (the kernel's OOM killer, say) left the other a gloo traceback and no snapshot (a
    review). torchrun may end the survivor first (SIGTERM: 'terminated', a snapshot too); either way the work is
    kept and a rerun resumes from it."""
    out, err = tmp_path / "seed", tmp_path / "err.txt"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(ROOT / STAGES["classification"][0]), "--config", "smoke", "--out_root", str(tmp_path),
               "--out_dir", str(out), "--set", "seed_train.batch_size=4", "--set", "seed_train.max_iter=1000",
               "--set", "snapshot=100000"]   # about 10 s of training here; the worker is killed after 1
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err.open("w"))
    deadline = time.monotonic() + 120
    while "iter 1/" not in ((out / "log.txt").read_text() if (out / "log.txt").exists() else ""):
        assert time.monotonic() < deadline and proc.poll() is None, err.read_text()
        time.sleep(0.2)
    time.sleep(1)
    rank1 = next(int(pid) for pid in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                                    text=True).stdout.split()
                 if "RANK=1\0" in Path(f"/proc/{pid}/environ").read_text())
    os.kill(rank1, signal.SIGKILL)
    proc.wait(120)
    text = err.read_text()
    assert not [line for line in text.splitlines() if line.startswith("[rank")] and "Exception ignored" not in text
    lost = [line for line in text.splitlines() if line.startswith("error: another torchrun process")]
    assert (lost == []) if "terminated; rerun" in text else (len(lost) == 1), text
    (snap,) = out.glob("snapshot_iter_*.pth")
    done = int(snap.stem.rsplit("_", 1)[1])
    assert done > 1 and not (out / "model.pth").exists()
    if lost:
        assert lost[0].startswith(f"error: another torchrun process of this training ended at iteration {done + 1} (")
        assert "peer" in lost[0] and ".cc:" not in lost[0]   # gloo's first sentence, less its source file
        assert lost[0].endswith(f"saved a snapshot at iteration {done}; rerun the same command to resume")
    resumed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming at iteration {done}" in (out / "log.txt").read_text()


def test_a_terminated_torchrun_training_says_so_once_in_its_log(tmp_path):
    """Each process of a launch ended by SIGTERM wrote 'terminated; ...' into the training's log.txt, where only the
    first process writes (the others log warnings only): log.txt said it twice, beside one snapshot line."""
    out, err = tmp_path / "seed", tmp_path / "err.txt"
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(ROOT / STAGES["classification"][0]), "--config", "smoke", "--out_root", str(tmp_path),
                             "--out_dir", str(out), "--set", "seed_train.batch_size=4", "--set",
                             "seed_train.max_iter=100000", "--set", "snapshot=100000"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err.open("w"))
    deadline = time.monotonic() + 120
    while "iter 1/" not in ((out / "log.txt").read_text() if (out / "log.txt").exists() else ""):
        assert time.monotonic() < deadline and proc.poll() is None, err.read_text()
        time.sleep(0.2)
    proc.terminate()   # torchrun passes SIGTERM on to its workers
    proc.wait(120)
    lines = (out / "log.txt").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in lines if "terminated" in line] == \
        ["terminated; rerun the same command to resume"], lines
    assert sum("saved a snapshot at iteration" in line for line in lines) == 1, lines
    said = sorted(line for line in err.read_text().splitlines() if "terminated; rerun" in line)
    assert said == ["RANK 1: terminated; rerun the same command to resume",   # which process said it
                    "terminated; rerun the same command to resume"], said


def test_ctrl_c_of_a_torchrun_training_is_said_by_every_process(tmp_path):
    """Ctrl-C (SIGINT to the launch's process group) reaches every process; only process 0 said so (its log line),
    process 1 ended silently with exit code 130, where SIGTERM had each say its own line."""
    out, err = tmp_path / "seed", tmp_path / "said.txt"   # the log's lines (stdout) and the others' (stderr)
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(ROOT / STAGES["classification"][0]), "--config", "smoke", "--out_root", str(tmp_path),
                             "--out_dir", str(out), "--set", "seed_train.batch_size=4", "--set",
                             "seed_train.max_iter=100000", "--set", "snapshot=100000"],
                            cwd=ROOT, stdout=err.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while "iter 1/" not in ((out / "log.txt").read_text() if (out / "log.txt").exists() else ""):
        assert time.monotonic() < deadline and proc.poll() is None, err.read_text()
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)   # what a terminal's Ctrl-C does
    proc.wait(120)
    said = sorted(line.split(" ", 1)[1] if line[:2].isdigit() else line for line in err.read_text().splitlines()
                  if "interrupted" in line)
    (snap,) = out.glob("snapshot_iter_*.pth")
    assert said == ["RANK 1: interrupted; rerun the same command to resume",
                    f"interrupted: saved a snapshot at iteration {snap.stem.rsplit('_', 1)[1]}; rerun the same "
                    "command to resume"], err.read_text()[-3000:]


def test_a_training_with_world_size_but_no_rendezvous_is_one_error_line(tmp_path):
    """WORLD_SIZE and RANK set without torchrun (a scheduler's, or exported for the per-image stages' fragments) made
    a training end in torch's traceback of the missing MASTER_ADDR; now one line, before its folder is made."""
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")}
    script, settings = STAGES["classification"]
    proc = subprocess.run([sys.executable, str(ROOT / script), "--config", "smoke", "--out_root", str(tmp_path),
                           *settings], cwd=ROOT, env=env | {"WORLD_SIZE": "2", "RANK": "0"}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and not list((tmp_path / "smoke").glob("seed_train/*/config.yaml")), proc.stderr
    assert proc.stderr.strip() == "error: WORLD_SIZE=2 is set without MASTER_ADDR and MASTER_PORT, where a " \
        "training's processes meet; start them with torchrun, or unset WORLD_SIZE and RANK to train in one process"


def test_a_torchrun_launch_says_once_what_it_finds_of_its_folder(tmp_path):
    """Every process of a launch found the folder up to date and said so: twice with 2 processes, for a training and
    for a per-image stage; and the processes of a per-image stage each said its folder's error ('RANK 1: error: ...'
    after process 0's line)."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    out = tmp_path / "seed"
    train("classification", out, 1)   # the number of processes does not name the folder
    script, settings = STAGES["classification"]
    proc = subprocess.run(torchrun + [str(ROOT / script), "--config", "smoke", "--out_root", str(tmp_path),
                                      "--out_dir", str(out)] + settings, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.count(f"seed_train: up to date in {out} ") == 1, proc.stdout
    heatmaps = tmp_path / "heatmaps"
    command = [str(ROOT / "src/seed/test.py"), "--config", "smoke", "--out_root", str(tmp_path), "--model_dir",
               str(out), "--out_dir", str(heatmaps)]
    assert subprocess.run([sys.executable] + command, cwd=ROOT, capture_output=True, timeout=120).returncode == 0
    proc = subprocess.run(torchrun + command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.count(f"seed_heatmaps: up to date in {heatmaps} ") == 1, proc.stdout
    proc = subprocess.run(torchrun + command + ["--set", "seed_heatmaps.test_size=48"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    ours = [line for line in proc.stderr.splitlines() if line.startswith(("error:", "RANK"))]
    assert ours == [f"error: {heatmaps / 'config.yaml'}: this folder was made with other settings (seed_heatmaps."
                    "test_size 0 there, 48 here); remove it to replace it, or choose another --out_dir"], proc.stderr
    assert proc.stderr.count("exitcode  : 2 ") == 2, proc.stderr


def test_script_under_torchrun_says_once_what_every_process_meets(tmp_path):
    """./script.py under torchrun (a fragment per process) printed its settings errors and each step's header once per
    process, process 1's errors with its RANK, as the stage commands did before they said them once."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                str(ROOT / "script.py"), "--config", "smoke", "--out_root", str(tmp_path)]
    proc = subprocess.run(torchrun + ["--set", "seed_train.max_itr=5"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert [line for line in proc.stderr.splitlines() if line.startswith(("error:", "RANK"))] == [
        "error: command line: unknown setting 'seed_train.max_itr'; section seed_train has no 'max_itr'; did you mean "
        "seed_train.max_iter? ./src/seed/train.py -h lists its settings"], proc.stderr
    made = subprocess.run([sys.executable, str(ROOT / "script.py"), "--config", "smoke", "--out_root", str(tmp_path),
                           "--steps", "seed_train"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    proc = subprocess.run(torchrun + ["--steps", "seed_heatmaps"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.count("==> seed_heatmaps: ./src/seed/test.py") == 1, proc.stdout
    assert proc.stdout.count("the last fragment to finish a step completes it") == 2, proc.stdout   # each its own
    made, = (tmp_path / "smoke" / "seed_heatmaps").glob("*/config.yaml")   # as if other settings made it
    made.write_text(made.read_text().replace("test_size: 0", "test_size: 48"))
    proc = subprocess.run(torchrun + ["--steps", "seed_heatmaps"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    said = [line for line in proc.stderr.splitlines() if line.startswith(("error:", "RANK", "step "))]
    assert said == [f"error: {made}: this folder was made with other settings (seed_heatmaps.test_size 48 there, 0 "
                    "here); remove it to replace it, or choose another --out_root",   # process 1, ended by torchrun
                    f"step seed_heatmaps failed: ./src/seed/test.py --config smoke --set out_root={tmp_path}"], \
        proc.stderr   # as its own step failed, it said 'step seed_heatmaps failed' again


def test_a_fragment_run_alone_says_where_its_outputs_went(tmp_path, caplog):
    """./src/seed/test.py --n 0 --N 2 ended with 'fragment 1 of 2 (n=0) finished; 8 images left to other
    fragments', naming no folder (the whole stage's last line, 'wrote <folder>', does)."""
    from types import SimpleNamespace
    from guidedlabelling.inference import all_done
    (tmp_path / "a.mat").write_bytes(b"x")
    stage = SimpleNamespace(out=tmp_path, fragment_name="fragment 1 of 2 (n=0)", log=logging.getLogger("frag"))
    data = SimpleNamespace(items=[SimpleNamespace(id=i) for i in ("a", "b", "c")])
    with caplog.at_level(logging.INFO, logger="frag"):
        assert all_done(stage, data, ".mat") is False
    assert caplog.messages == [f"fragment 1 of 2 (n=0) finished, writing into {tmp_path}; 2 images left to other "
                               "fragments"]
