"""SIGKILL at the write boundaries of every stage, then a rerun: it must finish with the outputs of an
uninterrupted run. A killed process is this stage's command with os.replace wrapped, so that it dies just
before or just after committing the k-th file whose name matches a pattern: between the two files of an image
(a --vis panel and its label), between images, after the last image, before done.json."""
import errno
import json
import os
import stat
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, make_own, own_args
from guidedlabelling import config as C
from guidedlabelling import naming
from guidedlabelling.io import UMASK, atomic_path

KILLER = r"""
import fnmatch, os, signal, sys
pattern, when, k, stage = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
seen, replace = [0], os.replace

def replace_then_die(src, dst):
    hit = fnmatch.fnmatch(os.path.basename(dst), pattern)
    seen[0] += hit
    if hit and seen[0] == k and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    replace(src, dst)
    if hit and seen[0] == k and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)

os.replace = replace_then_die
sys.argv = [stage] + sys.argv[5:]
from guidedlabelling.cli import run_stage
run_stage(stage)
"""
TEST_SPLIT = ("seed_split=test",)
TRAINING = [("snapshot_iter_*.pth", "after", 1), ("snapshot_iter_*.pth", "before", 1), ("model.pth", "after", 1),
            ("done.json", "before", 1)]
# stage, the settings of its step, and its kills in order (each in a new process, resuming the previous)
KILLS = {
    "seed_train": ((), TRAINING),
    "seed_heatmaps": ((), [("*.mat", "after", 1), ("*.mat", "before", 2), ("*.mat", "after", 2),
                       ("cls_res.mat", "after", 1)]),
    "cls_eval": (TEST_SPLIT, [("results.json", "after", 1)]),
    "seed_eval": (TEST_SPLIT, [("results.json", "after", 1), ("pr_curve.png", "after", 1)]),
    "saliency_train": ((), TRAINING),
    "saliency": ((), [("*.png", "after", 1), ("*.png", "before", 2), ("*.png", "after", 4)]),
    "guide_labels": ((), [("*.png", "after", 1), ("*.png", "after", 2), ("*.png", "before", 3),
                          ("done.json", "before", 1)]),
    "seg_train": ((), TRAINING),
    "segmentations": ((), [("*.png", "after", 1), ("*.png", "after", 2), ("results.json", "after", 1)]),
}
REFERENCE = [(s, ()) for s in ("seed_train", "seed_heatmaps", "saliency_train", "saliency", "guide_labels", "seg_train",
                               "segmentations")] + [(s, TEST_SPLIT) for s in ("seed_heatmaps", "seed_eval", "cls_eval")]


def settings(extra):
    return [a for s in ("vis=true",) + extra for a in ("--set", s)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Every stage uninterrupted (seed heatmaps and their evaluation on the test split too), on the tiny own
    dataset."""
    own = make_own(tmp_path_factory.mktemp("ref"))
    store = ("--set", f"store={own['base'] / 'store'}")  # the saliency network's store (store.py)
    for stage, extra in REFERENCE:
        proc = subprocess.run([sys.executable, "-m", "guidedlabelling", stage, *own_args(own), *settings(extra),
                               *store], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return own


def reference_folder(own, stage, extra):
    cfg, preset = C.resolve(str(own["preset"]), own_args(own)[3::2] + ["vis=true", *extra])
    return naming.stage_dir(cfg, preset, stage)


@pytest.mark.parametrize("stage", list(KILLS))
def test_killed_at_every_write_boundary_reruns_to_the_same_outputs(stage, reference, tmp_path, private_store):
    extra, kills = KILLS[stage]
    out = tmp_path / "killed"
    cmd = [*own_args(reference), *settings(extra), "--out_dir", str(out)]
    for pattern, when, k in kills:
        proc = subprocess.run([sys.executable, "-c", KILLER, pattern, when, str(k), stage, *cmd], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == -9, f"{pattern} {when} {k}: not killed\n{proc.stdout}{proc.stderr}"
        assert not (out / "done.json").exists()
    proc = subprocess.run([sys.executable, "-m", "guidedlabelling", stage, *cmd], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_same_outputs(out, reference_folder(reference, stage, extra), {private_store: reference["base"] / "store"})


def assert_same_outputs(ours, theirs, paths=None):
    """The same files (the log aside) with the same content, up to the folder's own path in done.json (and the
    `paths` {ours: theirs} given) and the upstream paths of the manifest."""
    names = sorted(str(p.relative_to(theirs)) for p in theirs.rglob("*") if p.is_file() and p.name != "log.txt")
    assert sorted(str(p.relative_to(ours)) for p in ours.rglob("*") if p.is_file() and p.name != "log.txt") == names
    for name in names:
        a, b = ours / name, theirs / name
        if a.suffix == ".pth":
            sa, sb = (torch.load(p, weights_only=True)["model"] for p in (a, b))
            assert all(torch.equal(sa[k], sb[k]) for k in sb), name
        elif a.name == "inputs.json":
            ja, jb = (json.loads(p.read_text()) for p in (a, b))
            assert (ja["fingerprint"], ja["inputs"]) == (jb["fingerprint"], jb["inputs"])
        elif a.suffix == ".json":
            text = a.read_text()
            for mine, other in ({ours: theirs} | (paths or {})).items():
                text = text.replace(str(mine), str(other))
            ja, jb = json.loads(text), json.loads(b.read_text())
            # done.json's digest of the outputs covers JSON files holding the folder's path; the files are compared
            ja.pop("outputs_digest", None), jb.pop("outputs_digest", None)     # here one by one instead
            made_a, made_b = ja.pop("output_digests", {}), jb.pop("output_digests", {})   # (and each output's)
            assert {k: v for k, v in made_a.items() if not k.endswith(".json")} == \
                {k: v for k, v in made_b.items() if not k.endswith(".json")}, name
            ja.pop("iterations_per_s", None), jb.pop("iterations_per_s", None)  # a training's speed: a timing
            sizes_a, sizes_b = ja.pop("outputs", {}), jb.pop("outputs", {})   # done.json: the outputs' sizes,
            assert sizes_a.keys() == sizes_b.keys(), name                     # those of JSON files holding the
            assert {k: v for k, v in sizes_a.items() if not k.endswith(".json")} == \
                {k: v for k, v in sizes_b.items() if not k.endswith(".json")}, name   # folder's path aside
            assert ja == jb, name
        else:
            assert a.read_bytes() == b.read_bytes(), name


def test_training_killed_after_its_weights_resumes_with_nothing_to_train(tmp_path, private_store):
    """3 iterations, a snapshot every 2: the last iteration's snapshot (Caffe's snapshot_after_train) lets a run
    killed between model.pth and done.json finish without training iterations 3 again."""
    own = make_own(tmp_path)
    out = tmp_path / "killed"
    cmd = [*own_args(own), "--max_iter", "3", "--snapshot", "2", "--out_dir", str(out)]
    proc = subprocess.run([sys.executable, "-c", KILLER, "model.pth", "after", "1", "seed_train", *cmd], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stdout + proc.stderr
    assert sorted(p.name for p in out.glob("snapshot_iter_*.pth")) == ["snapshot_iter_2.pth", "snapshot_iter_3.pth"]
    weights = torch.load(out / "model.pth", weights_only=True)["model"]
    proc = subprocess.run([sys.executable, "-m", "guidedlabelling", "seed_train", *cmd], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "resuming at iteration 3 " in proc.stdout and "iter 3/3" not in proc.stdout
    again = torch.load(out / "model.pth", weights_only=True)["model"]
    assert all(torch.equal(weights[k], again[k]) for k in weights) and (out / "done.json").exists()


@pytest.mark.parametrize("failure", [ValueError("the writer failed"), KeyboardInterrupt(),
                                     OSError(errno.ENOSPC, "No space left on device")])
def test_a_write_that_fails_keeps_the_former_file_and_no_temporary_one(tmp_path, failure):
    """Every output goes through io.atomic_path: a write that raises (a bug, Ctrl-C, a full disk) leaves the file
    as it was and no temp file; a file-system error names the output, not its temp file."""
    target = tmp_path / "a.png"
    target.write_bytes(b"former")
    with pytest.raises(type(failure)) as raised:
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise failure
    assert target.read_bytes() == b"former" and [p.name for p in tmp_path.iterdir()] == ["a.png"]
    if isinstance(failure, OSError):
        assert (raised.value.errno, raised.value.filename) == (errno.ENOSPC, str(target))
    with atomic_path(tmp_path / "new" / "b.png") as tmp:   # its folder made; the mode open() gives, not 0600
        tmp.write_bytes(b"whole")
    written = tmp_path / "new" / "b.png"
    assert written.read_bytes() == b"whole" and stat.S_IMODE(written.stat().st_mode) == 0o666 & ~UMASK
    assert [p.name for p in written.parent.iterdir()] == ["b.png"]


def test_an_output_keeps_the_umask_as_any_new_file_does(tmp_path):
    """Under umask 077 (private photos on a shared machine) an output is private as the run's log.txt is, not
    made readable by all."""
    write = f"from guidedlabelling.io import atomic_path\nwith atomic_path({str(tmp_path / 'a.png')!r}) as tmp: " \
            "tmp.write_bytes(b'whole')"
    subprocess.run([sys.executable, "-c", write], check=True, timeout=600, preexec_fn=lambda: os.umask(0o077))
    assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == 0o600
