"""End to end: ./script.py --config smoke runs every stage and writes the documented formats."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from guidedlabelling.store import ENV as STORE_ENV

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One run that trains every network itself: its own empty store, so no other module's run lends it the saliency
    network (the snapshot tests need the snapshots of a training)."""
    out = tmp_path_factory.mktemp("runs")
    env = dict(os.environ, **{STORE_ENV: str(out / "store")})
    proc = subprocess.run([sys.executable, str(ROOT / "script.py"), "--config", "smoke", "--out_root", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / "smoke", proc.stdout


def test_summary_table_and_json(smoke):
    root, stdout = smoke
    summary = json.loads((root / "summary.json").read_text())
    for key in ("seeds_mIoU_train", "guide_labels_mIoU_train", "segmenter_mIoU_val", "fully_supervised_mIoU_val"):
        assert 0 <= summary[key] <= 100
    assert Path(summary["guide_labels"]).is_dir() and Path(summary["predictions"]).is_dir()
    assert Path(summary["model"]).parent.parent.name == "seg_train" and Path(summary["model"]).is_file()
    assert "ratio guided / fully supervised" in stdout and str(root / "summary.json") in stdout


def test_heatmap_files(smoke):
    root, _ = smoke
    folder = root / "seed_heatmaps" / "default"
    mats = sorted(p for p in folder.glob("*.mat") if p.name != "cls_res.mat")
    assert len(mats) == 20
    for path in mats[:5]:
        m = scipy.io.loadmat(path)
        h, w = m["imshape_original"].ravel()
        label = np.asarray(Image.open(ROOT / "data/builtin_64px_20_10/builtin/SegmentationClass" / f"{path.stem}.png"))
        present = [v for v in np.unique(label) if 0 < v < 255]
        assert m["heatmap"].dtype == np.float32
        assert m["heatmap"].reshape(-1, h, w).shape == (len(present), h, w) == (len(present),) + label.shape
    cls = scipy.io.loadmat(folder / "cls_res.mat")
    assert cls["scores"].shape == (20, 5) and cls["gt"].shape == (20, 5)


def test_saliency_guide_prediction_files(smoke):
    root, _ = smoke
    sal = [np.asarray(Image.open(p)) for p in (root / "saliency" / "default").glob("*.png")]
    assert len(sal) == 30 and all(s.dtype == np.uint8 and s.ndim == 2 and s.max() == 255 for s in sal)
    guides = list((root / "guide_labels" / "default").glob("*.png"))
    assert len(guides) == 20 and all(Image.open(p).mode == "P" for p in guides)
    preds = list((root / "segmentations" / "default").glob("*.png"))
    assert len(preds) == 10
    results = json.loads((root / "segmentations" / "default" / "results.json").read_text())
    assert np.asarray(results["confusion"]).shape == (6, 6) and "mIoU" in results and "per_class_IoU" in results


def test_checkpoints_load_weights_only_and_configs_are_stored(smoke):
    root, _ = smoke
    for folder in ("seed_train/default", "saliency_train/default", "seg_train/default", "seg_train/labels-gt"):
        state = torch.load(root / folder / "model.pth", weights_only=True)
        assert state["model"] and state["meta"]["kind"] in ("seed", "saliency", "segmentation")
        assert (root / folder / "config.yaml").exists() and (root / folder / "log.txt").exists()


def test_rerun_is_up_to_date(smoke):
    root, _ = smoke
    proc = subprocess.run([sys.executable, str(ROOT / "src/seed/train.py"), "--config", "smoke",
                           "--out_root", str(root.parent)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and "up to date" in proc.stdout


def test_changed_setting_gets_its_own_folder_name(smoke):
    root, _ = smoke
    proc = subprocess.run([sys.executable, str(ROOT / "src/guide_generation/generate.py"), "--config", "smoke",
                           "--out_root", str(root.parent), "--seedthres", "30", "--guiderule", "seed"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert len(list((root / "guide_labels" / "guiderule-seed_seedthres-30").glob("*.png"))) == 20


def test_missing_upstream_names_the_command(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "src/segmentation/test.py"), "--config", "smoke",
                           "--out_root", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"run ./src/segmentation/train.py --set out_root={tmp_path} with the same --config first" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("script", ["src/seed/train.py", "src/seed/test.py", "src/saliency/train.py",
                                    "src/saliency/test.py", "src/guide_generation/generate.py",
                                    "src/segmentation/train.py", "src/segmentation/test.py", "script.py"])
def test_every_command_has_help(script):
    proc = subprocess.run([str(ROOT / script), "-h"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and "usage" in proc.stdout


@pytest.mark.parametrize("script, args, line", [
    ("script.py", ["--nosuch"], "error: unrecognized arguments: --nosuch; see ./script.py -h"),
    ("src/seed/train.py", ["--max_iter"], "error: argument --max_iter: expected one argument; see "
                                          "./src/seed/train.py -h"),
    ("script.py", ["--out_root", "-x"], "error: argument --out_root: expected one argument (a value that begins "
                                        "with '-' is written --out_root=VALUE); see ./script.py -h"),
    ("src/predict.py", [], "error: the following arguments are required: --model, --out_dir; see "
                           "./src/predict.py -h")])   # (images: named, or --list: main says so)
def test_a_flag_argparse_refuses_is_one_error_line(script, args, line):
    """argparse printed its usage (a screen of it for a stage command) before the error; now one line, exit 2."""
    proc = subprocess.run([str(ROOT / script), *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr == line + "\n" and not proc.stdout, proc.stderr


def test_two_fragments_give_the_same_files_as_one_run(smoke, tmp_path):
    """Fragments --n 0 and 1 of --N 2 write the files of one run; a fragment removes the temp files that killed
    runs left, where they are an hour old."""
    root, _ = smoke
    whole = root / "guide_labels" / "default"
    common = [sys.executable, str(ROOT / "src/guide_generation/generate.py"), "--config", "smoke",
              "--out_root", str(root.parent), "--out_dir", str(tmp_path / "frag")]
    old, young = tmp_path / "frag" / ".a.png.x1.tmp.png", tmp_path / "frag" / ".b.png.x2.tmp.png"
    for n in (0, 1):
        proc = subprocess.run(common + ["--n", str(n), "--N", "2"], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / "frag" / "done.json").exists() == (n == 1)
        if n == 0:   # what a fragment killed while writing leaves, two hours ago, and one being written now
            old.write_bytes(b"x"), young.write_bytes(b"x")
            os.utime(old, (time.time() - 7200,) * 2)
    assert not old.exists() and young.exists()   # a fragment removes only the old one: the other may be written
    young.unlink()
    pngs = sorted(p.name for p in whole.glob("*.png"))
    assert pngs == sorted(p.name for p in (tmp_path / "frag").glob("*.png"))
    assert all((whole / p).read_bytes() == (tmp_path / "frag" / p).read_bytes() for p in pngs)


def run_on_snapshot(root, training, command):
    """Runs a test command on the snapshot of iteration 2 of a training of the smoke run."""
    assert (root / training / "default" / "snapshot_iter_2.pth").exists()
    proc = subprocess.run([sys.executable, str(ROOT / command), "--config", "smoke", "--out_root", str(root.parent),
                           "--test_iter", "2"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_test_iter_tests_a_snapshot(smoke):
    root, _ = smoke
    run_on_snapshot(root, "seg_train", "src/segmentation/test.py")
    assert len(list((root / "segmentations" / "segmentations.test_iter-2").glob("*.png"))) == 10


def test_seed_heatmaps_at_another_test_size(smoke):
    """seed_heatmaps.test_size 0 is the training input size (the release's): the same heatmaps as that size written
    out; a larger size gives other heatmaps, still at the image's size."""
    root, _ = smoke
    folders = {}
    for size in (64, 128):
        proc = subprocess.run([sys.executable, str(ROOT / "src/seed/test.py"), "--config", "smoke", "--out_root",
                               str(root.parent), "--test_size", str(size)], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        folders[size] = root / "seed_heatmaps" / f"seed_heatmaps.test_size-{size}"
    default = root / "seed_heatmaps" / "default"
    names = sorted(p.name for p in default.glob("*.mat") if p.name != "cls_res.mat")
    heat = {size: [scipy.io.loadmat(f / n)["heatmap"] for n in names] for size, f in [(0, default), *folders.items()]}
    assert all(np.array_equal(a, b) for a, b in zip(heat[0], heat[64]))
    assert all(a.shape == b.shape for a, b in zip(heat[0], heat[128]))
    assert not all(np.allclose(a, b) for a, b in zip(heat[0], heat[128]))


def test_seed_heatmaps_at_two_sizes_are_the_mean_of_each_size(smoke):
    """seed_heatmaps.extra_sizes 128: each map is the mean of the maps that test_size 0 and test_size 128 write on
    their own, the class scores the training size's."""
    root, _ = smoke
    for args in (["--test_size", "128"], ["--set", "seed_heatmaps.extra_sizes=128"]):
        proc = subprocess.run([sys.executable, str(ROOT / "src/seed/test.py"), "--config", "smoke", "--out_root",
                               str(root.parent), *args], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    default, large = root / "seed_heatmaps" / "default", root / "seed_heatmaps" / "seed_heatmaps.test_size-128"
    both = root / "seed_heatmaps" / "extra_sizes-128"
    names = sorted(p.name for p in default.glob("*.mat") if p.name != "cls_res.mat")
    assert names and names == sorted(p.name for p in both.glob("*.mat") if p.name != "cls_res.mat")
    for n in names:
        a, b, mean = (scipy.io.loadmat(f / n) for f in (default, large, both))
        assert np.allclose(mean["heatmap"], (a["heatmap"] + b["heatmap"]) / 2, rtol=1e-6, atol=1e-6)
        assert np.array_equal(mean["scores"], a["scores"])
        assert not np.array_equal(a["scores"], b["scores"])


def test_saliency_maps_of_a_snapshot(smoke):
    """saliency --test_iter: the maps of the snapshot's network (benchmarks/curve.py evaluates each), not
    the final network's."""
    root, _ = smoke
    run_on_snapshot(root, "saliency_train", "src/saliency/test.py")
    snapshot, final = root / "saliency" / "saliency.test_iter-2", root / "saliency" / "default"
    names = sorted(p.name for p in final.glob("*.png"))
    assert sorted(p.name for p in snapshot.glob("*.png")) == names and len(names) == 30
    assert any((snapshot / n).read_bytes() != (final / n).read_bytes() for n in names)


def test_saliency_holdout_is_measured(smoke):
    root, _ = smoke
    for script in ("src/saliency/train.py", "src/saliency/test.py"):
        proc = subprocess.run([sys.executable, str(ROOT / script), "--config", "smoke", "--out_root",
                               str(root.parent), "--set", "holdout=5"], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    folder = root / "saliency" / "holdout-5"
    summary = json.loads((folder / "done.json").read_text())
    held, zoomed = summary["holdout"], summary["holdout_zoom"]
    assert held["images"] == 5 and 0 <= held["MAE"] <= 1 and 0 <= held["max_F"] <= 1 and 0 <= held["S_measure"] <= 1
    assert sum(q["images"] for q in held["by_area"].values()) == zoomed["images"] == 5
    assert len(list((folder / "holdout").glob("*.png"))) == len(list((folder / "holdout_zoom").glob("*.png"))) == 5


def kill_repeatedly(cmd, rng, reached, targets, done, jitter=0.05):
    """For each target: start `cmd`, wait until reached(target), then a random 0..jitter s more, and SIGKILL it.
    `done` (the stage's done.json) must not exist after a kill: each kill cut the stage short."""
    for target in targets:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not reached(target) and proc.poll() is None:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, jitter))
        proc.kill()
        proc.wait()
        assert not done.exists(), f"the stage finished before the kill at {target}"


def test_killed_stage_reruns_to_identical_outputs(smoke, tmp_path):
    """SIGKILL the guide stage and a training stage several times at random (seeded) points, rerun each to
    the end, and compare with uninterrupted runs: the same label PNGs, the same final weights and losses."""
    import random
    root, _ = smoke
    rng = random.Random(0)
    common = ["--config", "smoke", "--out_root", str(root.parent)]

    guide = [sys.executable, str(ROOT / "src/guide_generation/generate.py"), *common, "--out_dir", str(tmp_path / "g")]
    # the guide stage writes one of its 20 smoke labels every ~2 ms: killed at once, with 10 or more still to go
    kill_repeatedly(guide, rng, lambda n: len(list((tmp_path / "g").glob("*.png"))) >= n,
                    sorted(rng.sample(range(1, 11), 3)), tmp_path / "g" / "done.json", jitter=0)
    assert subprocess.run(guide, cwd=ROOT, capture_output=True).returncode == 0
    assert not list((tmp_path / "g").rglob(".*.tmp*"))   # a killed write leaves a temp file; the rerun removes it
    whole = root / "guide_labels" / "default"
    names = sorted(p.name for p in whole.glob("*.png"))
    assert names == sorted(p.name for p in (tmp_path / "g").glob("*.png"))
    assert all((whole / n).read_bytes() == (tmp_path / "g" / n).read_bytes() for n in names)

    # the segmenter on the guide labels, 30 iterations with a snapshot every 3: killed after random snapshots
    train = [sys.executable, str(ROOT / "src/segmentation/train.py"), *common, "--max_iter", "30",
             "--snapshot", "3"]
    killed, uninterrupted = tmp_path / "killed", tmp_path / "uninterrupted"
    assert subprocess.run(train + ["--out_dir", str(uninterrupted)], cwd=ROOT, capture_output=True).returncode == 0
    kill_repeatedly(train + ["--out_dir", str(killed)], rng,
                    lambda k: (killed / f"snapshot_iter_{3 * k}.pth").exists(), sorted(rng.sample(range(1, 9), 3)),
                    killed / "done.json")
    rerun = subprocess.run(train + ["--out_dir", str(killed)], cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0 and "resuming at iteration" in rerun.stdout
    ours, theirs = (torch.load(d / "model.pth", weights_only=True)["model"] for d in (killed, uninterrupted))
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert (killed / "loss.json").read_text() == (uninterrupted / "loss.json").read_text()
