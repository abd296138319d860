"""Two processes writing one folder take turns (io.writing): a second run waits, then reuses what the first made;
a step holds the folders it reads (io.reading), so that no process rewrites them meanwhile."""
import fcntl
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from conftest import make_own, own_args
from guidedlabelling import runner
from guidedlabelling.io import InputError, flocked, lock_of, writing
from guidedlabelling.pipeline import STEPS
from guidedlabelling.store import ENV as STORE_ENV

ROOT = Path(__file__).resolve().parents[1]
WAITING = "waiting for it to finish"


def test_shared_holders_coexist_and_a_lone_holder_waits_for_them(tmp_path):
    lock, waits, order = tmp_path / ".x.lock", [], []
    with flocked(lock, lambda: waits.append("first"), shared=True):
        with flocked(lock, lambda: waits.append("second"), shared=True) as waited:
            assert waited is None    # shared holders coexist

        def alone():
            with flocked(lock, lambda: waits.append("alone")) as waited:
                order.append(("alone", waited))
        thread = threading.Thread(target=alone)
        thread.start()
        thread.join(timeout=1)
        assert thread.is_alive() and waits == ["alone"] and order == []   # waits while a shared holder holds it
        order.append(("released", None))
    thread.join(timeout=10)
    assert [what for what, _ in order] == ["released", "alone"] and order[1][1] > 0


def env_with_store(store):
    return dict(os.environ, **{STORE_ENV: str(store)})


def written(stdout):
    """The folders a run's stages wrote (each stage's log line `wrote <folder>` when it finishes)."""
    return re.findall(r"^\d\d:\d\d:\d\d wrote (\S+)$", stdout, re.M)


def test_two_runs_at_once_into_one_out_root_compute_each_stage_once(tmp_path):
    own = make_own(tmp_path)
    cmd = [sys.executable, str(ROOT / "script.py"), *own_args(own)]
    env = env_with_store(tmp_path / "store")
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    folders = Counter(f for out, _ in outs for f in written(out))
    assert len(folders) == len(STEPS) and set(folders.values()) == {1}, folders   # every step's folder, once
    tables = [out[out.index("\nstage"):out.index("\nmodel:")] for out, _ in outs]
    assert tables[0] == tables[1]


def started_waiting(cmd, env):
    """Start cmd; returns the process and what it printed, once it prints that it waits (or ends)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    printed = ""
    for line in proc.stdout:
        printed += line
        if WAITING in line:
            break
    return proc, printed


def test_a_stage_command_waits_while_another_process_writes_its_folder(tmp_path):
    own = make_own(tmp_path)
    target = tmp_path / "waits"
    with flocked(tmp_path / ".waits.lock", lambda: None):   # another process writing the folder
        proc, printed = started_waiting([sys.executable, str(ROOT / "src/seed/train.py"), *own_args(own),
                                         "--out_dir", str(target)], env_with_store(tmp_path / "store"))
        assert f"seed_train: another process is writing or reading {target}; {WAITING}" in printed
        assert not (target / "done.json").exists()   # nothing written while it waits
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0 and (target / "done.json").exists(), out


def test_predict_waits_while_another_predict_writes_its_out_dir(tmp_path):
    own = make_own(tmp_path)
    env = env_with_store(tmp_path / "store")
    train = subprocess.run([sys.executable, str(ROOT / "src/segmentation/train.py"), *own_args(own), "--labels", "gt",
                            "--out_dir", str(tmp_path / "seg")], cwd=ROOT, env=env, capture_output=True, text=True)
    assert train.returncode == 0, train.stderr
    out_dir = tmp_path / "predicted"
    out_dir.mkdir()
    with flocked(out_dir / ".predict.lock", lambda: None):
        proc, printed = started_waiting([sys.executable, str(ROOT / "src/predict.py"), "--model", str(tmp_path / "seg"),
                                         "--out_dir", str(out_dir), str(own["images"])], env)
        assert f"predict: another process is writing {out_dir}; {WAITING}" in printed
        assert not list(out_dir.glob("*.png")) and not (out_dir / "predict.json").exists()
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert sorted(p.stem for p in out_dir.glob("*.png")) == sorted(Path(n).stem for n in os.listdir(own["images"]))


def trained_seed_network(own):
    """The tiny preset's seed_train folder, made by ./script.py --steps seed_train."""
    made = subprocess.run([sys.executable, str(ROOT / "script.py"), *own_args(own), "--steps", "seed_train"], cwd=ROOT,
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    folder, = (own["out_root"] / "tiny" / "seed_train").glob("*/done.json")
    return folder.parent


@pytest.mark.parametrize("meanwhile", ["nothing", "cleared", "made again"])
def test_a_step_waits_while_another_process_writes_a_folder_it_reads(tmp_path, meanwhile):
    own = make_own(tmp_path)
    seeds = trained_seed_network(own)
    aside = seeds.with_name("aside")
    with flocked(lock_of(seeds), lambda: None):   # another process writing it: --overridecache, say
        if meanwhile == "made again":   # cleared before the step starts: not finished when it looks
            seeds.rename(aside)
        proc, printed = started_waiting([sys.executable, str(ROOT / "src/seed/test.py"), *own_args(own)],
                                        env_with_store(tmp_path / "store"))
        assert f"seed_heatmaps: another process is writing {seeds}, which it reads; {WAITING}" in printed
        assert not list((own["out_root"] / "tiny").glob("seed_heatmaps/*/*.mat"))   # nothing made meanwhile
        if meanwhile == "cleared":   # as --overridecache does before it trains again
            seeds.rename(aside)
        elif meanwhile == "made again":
            aside.rename(seeds)
    out, _ = proc.communicate(timeout=300)
    if meanwhile == "cleared":   # checked again after the wait: the folder it read before is gone
        assert proc.returncode == 2, out
        error, = [line for line in out.splitlines() if line.startswith("error:")]
        assert "seed_train" in error and "Traceback" not in out
    else:
        assert proc.returncode == 0, out
        assert list((own["out_root"] / "tiny").glob("seed_heatmaps/*/done.json"))


def test_a_step_whose_output_folder_is_one_it_reads_is_refused(tmp_path):
    """It would wait for its own lock for ever."""
    own = make_own(tmp_path)
    seeds = trained_seed_network(own)
    with pytest.raises(InputError, match=f"{re.escape(str(seeds))}: the output folder is the folder of seed_train "
                                         "that seed_heatmaps reads; choose another --out_dir"):
        runner.main("seed_heatmaps", own_args(own) + ["--out_dir", str(seeds)])


def test_a_step_holds_the_folders_it_reads_shared_while_it_runs(tmp_path, monkeypatch):
    own = make_own(tmp_path)
    seeds = trained_seed_network(own)
    held = []

    def probe(stage):   # in place of the heatmaps: how another process finds seed_train's lock
        with open(lock_of(seeds), "a") as f:
            for mode in (fcntl.LOCK_SH, fcntl.LOCK_EX):
                try:
                    fcntl.flock(f, mode | fcntl.LOCK_NB)
                    held.append((mode, "free"))
                    fcntl.flock(f, fcntl.LOCK_UN)
                except BlockingIOError:
                    held.append((mode, "held"))
    monkeypatch.setattr(runner.stage_module("seed_heatmaps"), "run", probe)
    runner.main("seed_heatmaps", own_args(own))
    assert held == [(fcntl.LOCK_SH, "free"), (fcntl.LOCK_EX, "held")]   # readers share it; a writer waits
    with open(lock_of(seeds), "a") as f:   # and the step lets go of it when it ends
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_folder_that_cannot_be_made_is_the_error_of_its_making(tmp_path):
    """Its lock went unmade without a word, and the first write failed with 'No such file or directory' where the
    folder's parent refused it (a probe: a read-only parent; here, where root writes anything, a file in the way).
    The error of making it is raised; a folder that is there but cannot be locked is still written unlocked."""
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError):   # mkdir of its parent, a file
        with writing(tmp_path / "file" / "out", "predict"):
            pass
    (tmp_path / "lock").mkdir()   # a lock that cannot be opened, in a folder that is there
    with writing(tmp_path / "out", "predict", lock=tmp_path / "lock"):
        pass


@pytest.mark.parametrize("training", ["stopped", "running"])
def test_predict_on_a_training_folder_without_its_model_names_a_fix_predict_takes(tmp_path, training):
    """predict.py --model <folder> before the training's model.pth exists said 'a training that stopped midway'
    while it still ran, and offered --test_iter, a flag of test.py that predict.py refuses."""
    from guidedlabelling.io import snapshot_path
    from guidedlabelling.prediction import model_file
    folder = tmp_path / "seg_train" / "default"
    folder.mkdir(parents=True)
    for iteration in (2, 4, 6):
        snapshot_path(folder, iteration).write_bytes(b"")
    with flocked(lock_of(folder), lambda: None) if training == "running" else open(os.devnull):
        with pytest.raises(InputError) as raised:
            model_file(folder)
    message = str(raised.value)
    with flocked(lock_of(folder), lambda: None) if training == "running" else open(os.devnull):
        with pytest.raises(InputError) as raised_file:   # its model.pth named, as README's examples do
            model_file(folder / "model.pth")
    assert str(raised_file.value) == message
    assert "--test_iter" not in message and f"--model {snapshot_path(folder, 6)}" in message, message
    assert ("another process is training it now" in message) == (training == "running"), message
    assert ("stopped midway" in message) == (training == "stopped"), message
    if training == "running":   # a training that has no snapshot yet (--overridecache cleared the folder): the same
        for snapshot in folder.glob("snapshot_iter_*.pth"):
            snapshot.unlink()
        with flocked(lock_of(folder), lambda: None), pytest.raises(InputError, match="training it now; run this "
                                                                     "again once it has finished$"):
            model_file(folder)


def test_a_step_waits_while_another_process_rewrites_a_folder_upstream_of_those_it_reads(tmp_path):
    """A step checks the whole chain above it, but held only the folders it reads directly: while another run's
    --overridecache remade a folder further up (here seed_train, above seed_eval's seed_heatmaps), the step found
    it 'changed since it was made' and failed, naming two steps to rerun that were up to date once it was done."""
    own = make_own(tmp_path)
    made = subprocess.run([sys.executable, str(ROOT / "script.py"), *own_args(own), "--steps",
                           "seed_train,seed_eval_heatmaps"], cwd=ROOT, capture_output=True, text=True,
                          env=env_with_store(tmp_path / "store"))
    assert made.returncode == 0, made.stderr
    seeds, = [p.parent for p in (own["out_root"] / "tiny" / "seed_train").glob("*/done.json")]
    aside = seeds.with_name("aside")
    with flocked(lock_of(seeds), lambda: None):   # another run clearing it to make it again
        seeds.rename(aside)
        proc, printed = started_waiting([sys.executable, str(ROOT / "src/seed/eval.py"), *own_args(own),
                                         "--set", "seed_split=test"],
                                        env_with_store(tmp_path / "store"))
        assert f"another process is writing {seeds}, which it reads; {WAITING}" in printed, printed
        aside.rename(seeds)   # made again, the same
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, printed + out
    with pytest.raises(InputError, match=f"{re.escape(str(seeds))}: the output folder is one that the folders "
                                         "seed_eval reads were made from; choose another --out_dir"):
        runner.main("seed_eval", own_args(own) + ["--set", "seed_split=test", "--out_dir", str(seeds)])   # not a hang


def waits_for_a_lock(pid):
    """Whether the process `pid` waits for a lock (/proc/locks marks a waiter '->')."""
    return any("->" in line and f" {pid} " in line for line in Path("/proc/locks").read_text().splitlines())


def test_fragments_check_a_stale_folder_in_turn(tmp_path, monkeypatch, command):
    """Fragments started at once (torchrun's processes are) on a folder with an image edited since: one checked the
    folder while the other removed that image's outputs, found it half cleared, and stopped with 'run one process
    (no --n/--N, no torchrun) to recompute it' (a probe: 1 of 2 such torchrun launches). Here fragment 2 starts as
    fragment 1 has removed them, before it records the folder's new inputs."""
    own = make_own(tmp_path)
    trained_seed_network(own)
    heatmaps = [*own_args(own), "--set", "seed_split=test"]   # of the val images, which seed_train does not read
    assert command("seed_heatmaps", *heatmaps)[0] == 0
    edited = own["images"] / "f.png"
    Image.open(edited).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(edited)
    removed, other = runner.remove_outputs_of, []

    def removed_then_the_other_starts(*args):
        removed(*args)
        other.append(subprocess.Popen([sys.executable, str(ROOT / "src/seed/test.py"), *heatmaps, "--n", "1",
                                       "--N", "2"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
        deadline = time.monotonic() + 120
        while other[0].poll() is None and not waits_for_a_lock(other[0].pid):   # its check, or its turn to check
            assert time.monotonic() < deadline
            time.sleep(0.1)
    monkeypatch.setattr(runner, "remove_outputs_of", removed_then_the_other_starts)
    code, out, err = command("seed_heatmaps", *heatmaps, "--n", "0", "--N", "2")
    assert code == 0 and "keeping the outputs of the images it had unchanged" in out, err
    printed, _ = other[0].communicate(timeout=300)
    assert other[0].returncode == 0, printed
    folder, = (own["out_root"] / "tiny" / "seed_heatmaps").glob("*/done.json")
    assert sorted(p.stem for p in folder.parent.glob("?.mat")) == ["e", "f"]


def test_fragments_of_the_current_folder_keep_their_checking_lock_beside_it(tmp_path, monkeypatch, command):
    """`--out_dir .` of a fragment: the lock it checks the folder under went inside the folder ('..checking.lock'),
    a file that no stage wrote, so the fragment refused its own empty folder."""
    own = make_own(tmp_path)
    model = trained_seed_network(own)
    here = tmp_path / "heatmaps"
    here.mkdir()
    monkeypatch.chdir(here)
    code, _, err = command("seed_heatmaps", *own_args(own), "--model_dir", model, "--out_dir", ".", "--n", "0",
                           "--N", "2")
    assert code == 0, err
    assert (tmp_path / ".heatmaps.checking.lock").exists() and not list(here.glob("*.lock"))


def test_the_current_folder_as_out_dir_can_be_cleared(tmp_path, monkeypatch, command):
    """`--out_dir .` with --overridecache: clearing renamed '.', 'Device or resource busy'."""
    own = make_own(tmp_path)
    model = trained_seed_network(own)
    here = tmp_path / "heatmaps"
    here.mkdir()
    monkeypatch.chdir(here)
    for extra in ([], ["--overridecache"]):
        code, out, err = command("seed_heatmaps", *own_args(own), "--model_dir", model, "--out_dir", ".", *extra)
        assert code == 0 and f"wrote {here}" in out + err, out + err
    assert (here / "done.json").exists()
