"""The store of trained saliency networks (store.py): a run into another --out_root, another preset or another
copy of the same saliency set reuses the network; other masks or other saliency settings train a new one; two
runs at once leave one intact network; --overridecache retrains; a damaged entry is retrained."""
import errno
import fcntl
import json
import logging
import shutil
import subprocess
import sys
import threading

import numpy as np
import torch
from PIL import Image

from conftest import ROOT, own_args, stage_folders
from guidedlabelling import distributed
from guidedlabelling.store import Entry, claim, held_out_key, saliency_key


def train_saliency(command, own, out_root, *extra):
    """The saliency training stage into out_root; returns (its done.json, its stdout)."""
    code, out, err = command("saliency_train", *own_args(own), "--set", f"out_root={out_root}", *extra)
    assert code == 0, out + err
    (folder,) = stage_folders(out_root / "tiny" / "saliency_train")
    return json.loads((folder / "done.json").read_text()), folder


def reused(done, folder):
    """Whether a saliency training folder took its network from the store (trained in another folder)."""
    return done["store"]["trained_in"] != str(folder)


def entries(store):
    return sorted(p.name for p in store.iterdir() if p.is_dir())


def test_a_second_out_root_reuses_the_network(own, command, tmp_path, private_store):
    first, folder_a = train_saliency(command, own, tmp_path / "a")
    second, folder_b = train_saliency(command, own, tmp_path / "b")
    assert first["store"]["trained_in"] == second["store"]["trained_in"] == str(folder_a)
    assert first["store"]["entry"] == second["store"]["entry"] and len(entries(private_store)) == 1
    assert (folder_a / "model.pth").read_bytes() == (folder_b / "model.pth").read_bytes()
    assert not list(folder_b.glob("snapshot_iter_*.pth"))  # nothing was trained there
    assert list(folder_a.glob("snapshot_iter_*.pth"))
    assert first["iterations_per_s"] > 0 and second["iterations_per_s"] is None  # no speed of another run's


def test_a_reused_network_records_the_device_that_trained_it(own, command, tmp_path, private_store):
    """The store's entry says where its network was trained; a copy records that, not the device of the run that
    copies it (an entry from before the store recorded it: nothing), and the rerun's up-to-date line names it."""
    first, _ = train_saliency(command, own, tmp_path / "a")
    assert first["made_with"] == {"device": "cpu", "amp": "none"}
    (entry,) = [p for p in private_store.iterdir() if p.is_dir()]
    record = json.loads((entry / "entry.json").read_text())
    assert record["made_with"] == first["made_with"]
    (entry / "entry.json").write_text(json.dumps(record | {"made_with": {"device": "cuda", "amp": "none"}}))
    second, _ = train_saliency(command, own, tmp_path / "b")
    assert second["made_with"] == {"device": "cuda", "amp": "none"}
    code, out, err = command("saliency_train", *own_args(own), "--set", f"out_root={tmp_path / 'b'}")
    assert code == 0 and "made on cuda with amp none (this run: cpu, amp none)" in out, out + err
    del record["made_with"]
    (entry / "entry.json").write_text(json.dumps(record))
    third, _ = train_saliency(command, own, tmp_path / "c")
    assert third["made_with"] is None


def test_test_iter_of_a_reused_network_says_it_has_no_snapshots(own, command, tmp_path, private_store):
    train_saliency(command, own, tmp_path / "a")
    done, folder = train_saliency(command, own, tmp_path / "b")
    assert reused(done, folder)
    code, out, err = command("saliency", *own_args(own), "--set", f"out_root={tmp_path / 'b'}",
                             "--set", "saliency.test_iter=1")
    assert code == 2 and len(err.strip().splitlines()) == 1, out + err
    assert "snapshot_iter_1.pth: no snapshot of iteration 1 (this folder holds none)" in err
    assert "--set store=none" in err


def test_a_copy_of_the_set_elsewhere_and_other_stages_settings_reuse_it(own, command, tmp_path, private_store):
    train_saliency(command, own, tmp_path / "a")
    moved = tmp_path / "elsewhere" / "salset"
    shutil.copytree(own["saliency_data"], moved)
    done, folder = train_saliency(command, own, tmp_path / "b", "--set", f"saliency_data={moved}",
                                  "--set", "seg_train.max_iter=7", "--set", "seedthres=30")
    assert reused(done, folder) and len(entries(private_store)) == 1


def test_another_mask_or_setting_trains_a_new_network(own, command, tmp_path, private_store):
    train_saliency(command, own, tmp_path / "a")
    done, folder = train_saliency(command, own, tmp_path / "b", "--set", "saliency_train.base_lr=0.002")
    assert not reused(done, folder) and len(entries(private_store)) == 2
    mask = own["saliency_data"] / "masks" / "s0.png"
    values = np.array(Image.open(mask))
    values[0, 0] = 255 - values[0, 0]
    Image.fromarray(values).save(mask)
    done, folder = train_saliency(command, own, tmp_path / "c")
    assert not reused(done, folder) and len(entries(private_store)) == 3


def test_overridecache_retrains_and_replaces_the_entry(own, command, tmp_path, private_store):
    train_saliency(command, own, tmp_path / "a")
    (key,) = entries(private_store)
    before = json.loads((private_store / key / "entry.json").read_text())
    done, folder = train_saliency(command, own, tmp_path / "b", "--set", "overridecache=true")
    after = json.loads((private_store / key / "entry.json").read_text())
    assert not reused(done, folder) and entries(private_store) == [key]
    assert after["trained_in"] != before["trained_in"] and after["trained_in"].startswith(str(tmp_path / "b"))


def test_a_damaged_entry_is_retrained(own, command, tmp_path, private_store):
    train_saliency(command, own, tmp_path / "a")
    (key,) = entries(private_store)
    model = private_store / key / "model.pth"
    model.write_bytes(model.read_bytes()[:100])
    done, folder = train_saliency(command, own, tmp_path / "b")
    assert not reused(done, folder)
    assert Entry(private_store, key).record() is not None  # the new network replaced it
    assert f"store: {private_store / key} was damaged since it was stored (a file gone or changed); removed it" in \
        (folder / "log.txt").read_text()   # it was retrained without a word


def test_a_disk_too_full_for_the_stored_copy_is_an_error_not_a_training(own, command, tmp_path, private_store,
                                                                         monkeypatch):
    """The copy failed for want of space, and the network was trained instead: a training that could only fail on
    the same disk, later."""
    train_saliency(command, own, tmp_path / "a")
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "b"))
    monkeypatch.setattr(Entry, "copy_to", lambda self, out, say: (_ for _ in ()).throw(full))
    code, out, err = command("saliency_train", *own_args(own), "--set", f"out_root={tmp_path / 'b'}")
    assert code == 2 and err.startswith(f"error: {tmp_path / 'b'}: No space left on device; free space"), out + err
    assert "training it" not in out + err


def test_store_none_and_an_unusable_store(own, command, tmp_path, private_store):
    done, _ = train_saliency(command, own, tmp_path / "a", "--set", "store=none")
    assert "store" not in done and not private_store.exists()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, out, err = command("saliency_train", *own_args(own), "--set", f"out_root={tmp_path / 'b'}",
                             "--set", f"store={blocker}")
    assert code == 0 and "unusable" in out and "training without it (--set store=DIR names" in out, out + err


def test_two_runs_at_once_leave_one_intact_network(own, tmp_path, private_store):
    """Both start together; the first takes the key's lock and trains, the second waits and reuses."""
    def start(name):
        argv = own_args(own) + ["--set", f"out_root={tmp_path / name}", "--set", "saliency_train.max_iter=40"]
        return subprocess.Popen([sys.executable, "-m", "guidedlabelling", "saliency_train", *map(str, argv)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    runs = [start("a"), start("b")]
    logs = [r.communicate(timeout=300)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0], logs
    folders = [stage_folders(tmp_path / n / "tiny" / "saliency_train")[0] for n in ("a", "b")]
    done = [json.loads((f / "done.json").read_text()) for f in folders]
    assert sorted(reused(d, f) for d, f in zip(done, folders)) == [False, True], logs
    (key,) = entries(private_store)
    assert Entry(private_store, key).record() is not None
    assert sorted(p.name for p in private_store.iterdir()) == [key, f"{key}.lock"]  # no temporary leftovers


def test_the_key_follows_content_settings_and_order_not_paths():
    items = [("a.jpg", "d1", "m1"), ("b.jpg", "d2", "m2")]
    settings = {"base_lr": 0.01, "saliency_data": "/x", "holdout": 3, "holdout_scenes": "s", "init": "imagenet"}
    key = saliency_key(settings, "none", "w", items)
    assert saliency_key(settings | {"saliency_data": "/y", "holdout": 5, "holdout_scenes": ""}, "none", "w",
                        items) == key  # the items they select are hashed instead
    assert saliency_key(settings | {"init": "/other/path"}, "none", "w", items) == key  # init by its digest
    others = [saliency_key(settings | {"base_lr": 0.02}, "none", "w", items),
              saliency_key(settings, "bf16", "w", items), saliency_key(settings, "none", "w2", items),
              saliency_key(settings, "none", "w", items[::-1]),
              saliency_key(settings, "none", "w", [items[0], ("b.jpg", "d2", "m3")])]
    assert len(set(others) | {key}) == 6


def test_the_held_out_key_follows_the_model_the_images_and_the_settings():
    items = [("a.jpg", "d1", "m1"), ("b.jpg", "d2", "m2")]
    settings = {"test_size": 321, "device": "cpu", "amp": "none"}
    key = held_out_key("w", items, settings)
    assert held_out_key("w", [list(i) for i in items], dict(reversed(settings.items()))) == key
    others = [held_out_key("w2", items, settings), held_out_key("w", items[::-1], settings),
              held_out_key("w", items[:1], settings), held_out_key("w", [items[0], ("b.jpg", "d2", "m3")], settings),
              held_out_key("w", items, settings | {"test_size": 241}),
              held_out_key("w", items, settings | {"device": "cuda"})]
    assert len(set(others) | {key}) == 7


def waiting_while_held(own, lock_path, out_root, then):
    """A saliency training into out_root started while this process holds the key's lock, seen waiting; then() runs
    before the lock is let go. Returns the output of the run, which must succeed."""
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        argv = own_args(own) + ["--set", f"out_root={out_root}"]
        run = subprocess.Popen([sys.executable, "-m", "guidedlabelling", "saliency_train", *map(str, argv)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        waiting = run.stdout.readline()
        while "waiting" not in waiting and waiting:
            waiting = run.stdout.readline()
        assert "another run is training this saliency network" in waiting and run.poll() is None
        then()
    log = waiting + run.communicate(timeout=120)[0]
    assert run.returncode == 0, log
    return log


def test_a_run_waits_for_the_run_that_holds_the_key(own, command, tmp_path, private_store):
    """While another run holds the key's lock (it trains that network), a run waits, then reuses what it put
    into the store instead of training the same network a second time."""
    train_saliency(command, own, tmp_path / "a")
    (key,) = entries(private_store)
    kept = tmp_path / "kept"
    shutil.move(private_store / key, kept)
    log = waiting_while_held(own, private_store / f"{key}.lock", tmp_path / "b",
                             lambda: shutil.move(kept, private_store / key))   # what the other run publishes
    folder = stage_folders(tmp_path / "b" / "tiny" / "saliency_train")[0]
    assert reused(json.loads((folder / "done.json").read_text()), folder), log


def test_a_run_that_waited_for_one_that_stored_nothing_says_so_and_trains(own, command, tmp_path, private_store):
    """The run that held the key was killed: the waiting run said 'store: waited 4 s', then trained, without a word
    on why it did not reuse a network (a probe)."""
    train_saliency(command, own, tmp_path / "a")
    (key,) = entries(private_store)
    shutil.rmtree(private_store / key)
    log = waiting_while_held(own, private_store / f"{key}.lock", tmp_path / "b", lambda: None)   # nothing stored
    assert "store: the run it waited for stored no network (it stopped or failed); training it" in log, log
    folder = stage_folders(tmp_path / "b" / "tiny" / "saliency_train")[0]
    assert not reused(json.loads((folder / "done.json").read_text()), folder) and entries(private_store) == [key]


def saliency_maps(command, own, out_root, *extra):
    """The saliency training and maps stages into out_root, two of the six saliency images held out; returns
    (the maps' done.json, their folder, stdout)."""
    for stage in ("saliency_train", "saliency"):
        code, out, err = command(stage, *own_args(own), "--set", f"out_root={out_root}", "--set", "holdout=2", *extra)
        assert code == 0, out + err
    (folder,) = stage_folders(out_root / "tiny" / "saliency")
    return json.loads((folder / "done.json").read_text()), folder, out


def log_of_training(out_root):
    """The log of the saliency training stage of a run into out_root."""
    (folder,) = stage_folders(out_root / "tiny" / "saliency_train")
    return (folder / "log.txt").read_text()


def held_out_files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for name in ("holdout", "holdout_zoom")
            for p in sorted((folder / name).glob("*.png"))}


REUSED = "held-out saliency maps: reused from the store"


def test_held_out_maps_come_from_the_store(own, command, tmp_path, private_store, monkeypatch):
    """A second out_root copies the held-out maps of the same network instead of computing them: the same files,
    the same scores, which are computed in every run (today's scoring code). A damaged stored map or record,
    --overridecache, an edited held-out mask or another test size or precision computes them again."""
    first, folder_a, log_a = saliency_maps(command, own, tmp_path / "a")
    second, folder_b, log_b = saliency_maps(command, own, tmp_path / "b")
    assert REUSED not in log_a and REUSED in log_b
    assert len(held_out_files(folder_a)) == 4 and held_out_files(folder_a) == held_out_files(folder_b)
    for name in ("holdout", "holdout_zoom"):
        assert first[name]["images"] == 2 and first[name] == second[name]
    (key,) = (p.name for p in (private_store / "held_out").iterdir())
    stored = private_store / "held_out" / key
    assert sorted(json.loads((stored / "record.json").read_text())["files"]) == sorted(held_out_files(folder_a))
    with monkeypatch.context() as patch:
        patch.setattr("guidedlabelling.stages.saliency.AREA_EDGES", (0, 50, 100))
        third, _, log = saliency_maps(command, own, tmp_path / "c")
    assert REUSED in log and sorted(third["holdout"]["by_area"]) == ["00-50%", "50-100%"]
    damaged = next((stored / "holdout").iterdir())
    damaged.write_bytes(damaged.read_bytes()[:20])
    _, folder, log = saliency_maps(command, own, tmp_path / "d")
    assert REUSED not in log and held_out_files(folder) == held_out_files(folder_a) == held_out_files(stored)
    (stored / "record.json").write_text("{not json")
    _, folder, log = saliency_maps(command, own, tmp_path / "e")
    assert REUSED not in log and held_out_files(folder) == held_out_files(stored)
    record = json.loads((stored / "record.json").read_text())
    del record["files"]["holdout/s5.png"]
    (stored / "record.json").write_text(json.dumps(record))
    (stored / "holdout" / "s5.png").unlink()
    _, folder, log = saliency_maps(command, own, tmp_path / "e2")  # incomplete: computed, not a failed run
    assert REUSED not in log and held_out_files(folder) == held_out_files(stored) == held_out_files(folder_a)
    before = (stored / "record.json").stat().st_mtime_ns
    _, folder, log = saliency_maps(command, own, tmp_path / "f", "--set", "overridecache=true")
    assert REUSED not in log and (stored / "record.json").stat().st_mtime_ns != before  # computed and replaced
    for n, setting in enumerate(["saliency.test_size=40", "channels_last=true", "saliency_train.max_iter=3"]):
        _, _, log = saliency_maps(command, own, tmp_path / f"g{n}", "--set", setting)  # the last: another network
        assert REUSED not in log
    for n, kind in enumerate(("masks", "images")):  # held out: the last two of the folder, which train nothing
        path = own["saliency_data"] / kind / "s5.png"
        Image.fromarray(np.roll(np.array(Image.open(path)), 3, axis=1)).save(path)
        _, _, log = saliency_maps(command, own, tmp_path / f"h{n}")
        assert REUSED not in log and "saliency network: reused from the store" in log_of_training(tmp_path / f"h{n}")
    assert len(list((private_store / "held_out").iterdir())) == 6  # a (and f), g0, g1, g2, h0, h1


def test_held_out_maps_that_cannot_be_read_are_computed(own, command, tmp_path, private_store, monkeypatch):
    first, _, _ = saliency_maps(command, own, tmp_path / "a")

    def unreadable(self, out, names):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr("guidedlabelling.store.HeldOut.copy_to", unreadable)
    second, _, log = saliency_maps(command, own, tmp_path / "b")
    assert "could not copy the held-out maps" in log and "computing them" in log and REUSED not in log
    assert second["holdout"] == first["holdout"]


def test_held_out_results_are_not_stored_with_store_none(own, command, tmp_path, private_store):
    done, folder, log = saliency_maps(command, own, tmp_path / "a", "--set", "store=none")
    assert done["holdout"]["images"] == 2 and len(held_out_files(folder)) == 4 and not private_store.exists()


def test_a_training_begun_in_the_folder_resumes_rather_than_taking_the_stored_network(own, command, tmp_path):
    """A retraining stopped midway (here: its snapshot of iteration 1 of 2 left, as after a Ctrl-C under
    --overridecache): the rerun without --overridecache goes on with it, where it took the store's copy, ending
    the retraining unasked and leaving its snapshot beside."""
    first, folder = train_saliency(command, own, tmp_path / "a")
    assert not reused(first, folder)
    for name in ("done.json", "model.pth", "loss.json", "snapshot_iter_2.pth"):
        (folder / name).unlink()
    code, out, err = command("saliency_train", *own_args(own), "--set", f"out_root={tmp_path / 'a'}")
    assert code == 0, out + err
    assert "resuming at iteration 1" in out and "reused from the store" not in out


def test_a_torchrun_launch_trains_without_the_store_rather_than_wait_for_the_run_that_holds_the_key(
        tmp_path, monkeypatch, caplog):
    """The first process would wait for the lock while the others wait for its word in a broadcast, which the
    process group ends after its timeout with a traceback. One process alone waits (the test above)."""
    entry = Entry(tmp_path, "k" * 32)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)   # the first of two processes (no group to join)
    log = logging.getLogger("test_store")
    said = []

    def claim_it():
        with claim(entry, log, torch.device("cpu")) as usable:
            said.append(usable)
    with open(tmp_path / f"{entry.key}.lock", "a") as lock, caplog.at_level(logging.WARNING):
        fcntl.flock(lock, fcntl.LOCK_EX)
        thread = threading.Thread(target=claim_it, daemon=True)   # (a wait fails the test, not hangs it)
        thread.start()
        thread.join(timeout=30)
        assert said == [False]
    assert f"store: another run is training this saliency network ({entry}.lock), and the processes of a " \
           "torchrun launch cannot wait for it; training without the store" in caplog.text
    with claim(entry, log, torch.device("cpu")) as usable:   # free: taken at once
        assert usable


def test_a_store_whose_lock_cannot_be_opened_still_gives_its_networks(own, command, tmp_path, private_store):
    """A store this user cannot write (read-only, or another user's shared through $GUIDEDLABELLING_STORE) was
    'unusable; training without it' although the network was there to read: every run trained it again. Here, where
    root writes anything, a folder in the place of the key's lock file stands for a lock that cannot be opened."""
    first, folder = train_saliency(command, own, tmp_path / "a")
    (key,) = entries(private_store)
    (private_store / f"{key}.lock").unlink()
    (private_store / f"{key}.lock").mkdir()
    done, again = train_saliency(command, own, tmp_path / "b")
    assert reused(done, again) and done["store"]["trained_in"] == str(folder)
    assert "reading the store without it" in (again / "log.txt").read_text()


def test_no_home_folder_and_no_store_setting_is_no_store(monkeypatch):
    """A user id of no account with HOME unset (some containers; Path.home() raises): saliency_train ended the run
    in a RuntimeError traceback; it trains without a store, as the image checks keep none there."""
    from guidedlabelling import store
    for name in (store.ENV, "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)

    def no_home():
        raise RuntimeError("Could not determine home directory.")
    monkeypatch.setattr(store.Path, "home", no_home)
    assert store.store_root("") is None
