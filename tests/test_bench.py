"""The benchmark scripts: bench.py --training gives a figure for every network a preset trains and every option
asked for; bad input to any script ends in one line `error: ...` and exit code 2, before any slow setup."""
import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import exit_code
from guidedlabelling.config import resolve
from guidedlabelling.runner import ensure_data

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def script(capsys):
    """script(name, *argv) -> (exit code, stderr) of benchmarks/<name>.py run in this process as its `__main__`
    block runs it."""
    def run(name, *argv):
        code = exit_code(name, list(map(str, argv)), lambda: runpy.run_path(str(ROOT / "benchmarks" / f"{name}.py"),
                                                                            run_name="__main__"))
        return code, capsys.readouterr().err
    return run


@pytest.mark.parametrize("argv, error", [
    (["--training", "--presets", "nope"], "nope: config not found; use a file in configs/ (demo, demo_vgg, msrc, "
                                          "smoke, voc12_paper)"),
    (["--training", "--presets", "smoke", "--options", "base,nope"], "argument --options: base,nope: nope: no such "
     "option; choose among base, 1-thread, channels_last, compile, channels_last+compile, frozen-backward, bf16, "
     "bf16+channels_last; see bench.py -h"),
    (["--width", "0"], "argument --width: 0: must be above 0; see bench.py -h"),
    (["--batch", "0"], "argument --batch: 0: must be at least 1; see bench.py -h"),
    (["--size", "0"], "argument --size: 0: must be at least 16; see bench.py -h"),
])
def test_bench_refuses_bad_input_in_one_line(script, argv, error):
    assert script("bench", *argv) == (2, f"error: {error}\n")


def test_training_figures_of_every_network_and_option():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/bench.py"), "--training", "--presets", "smoke",
                           "--options", "base,channels_last,frozen-backward", "--steps", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    networks = re.findall(r"^smoke (\w+): .*samples (\d+) ms/batch$", proc.stdout, re.M)
    assert [n for n, _ in networks] == ["seed_train", "saliency_train", "seg_train"]
    rows = re.findall(r"^  (\S+) +([\d.]+) it/s +([\d.]+) GFLOP/step +([\d.]+)% of peak", proc.stdout, re.M)
    assert [r[0] for r in rows] == ["base", "channels_last", "frozen-backward"] * 3
    assert all(float(rate) > 0 and float(gflop) > 0 for _, rate, gflop, _ in rows)


@pytest.mark.parametrize("flag", ["--repeats", "--rounds", "--batch"])
def test_bench_crf_refuses_an_impossible_count(script, flag):
    error = f"error: argument {flag}: 0: must be at least 1; see bench_crf.py -h\n"
    assert script("bench_crf", flag, "0") == (2, error)


def test_bench_crf_help_shows_its_whole_description(capsys):
    """-h showed the docstring's first line, cut after '10': what it times and its ratios were left out."""
    path = str(ROOT / "benchmarks" / "bench_crf.py")
    assert exit_code("bench_crf", ["-h"], lambda: runpy.run_path(path, run_name="__main__")) == 0
    assert "mean-field iterations, 21 and 3 labels" in capsys.readouterr().out


def test_bench_crf_without_the_msrc_photos_is_one_line(script, tmp_path, monkeypatch):
    """A clone without ../shared/data beside it ended in an IndexError traceback."""
    import crf_cases
    monkeypatch.setattr(crf_cases.load_msrc, "__defaults__", (tmp_path,))
    assert script("bench_crf", "--rounds", "1") == (
        2, f"error: {tmp_path / 'JPEGImages'}: no MSRC photo (*.jpg); put ../shared/data beside the project\n")


@pytest.fixture
def smoke_data():
    """The smoke preset's built-in data, made where missing (the scripts read a run's data, never make it)."""
    ensure_data(resolve("smoke")[0])


def test_pair_maps_says_which_heatmaps_are_missing_and_what_makes_them(script, smoke_data, tmp_path):
    """The heatmap reader called a file that is not there 'unreadable'."""
    heatmap = tmp_path / "smoke/seed_heatmaps/default/train_0012.mat"   # the first image tagged with both
    flags = f"--config smoke --set out_root={tmp_path}"
    assert script("pair_maps", "bluehead", "greenhead", "--config", "smoke", "--out_root", tmp_path) == (
        2, f"error: {heatmap}: missing; run ./src/seed/test.py {flags} first, or ./script.py {flags} for the whole "
           "run\n")


@pytest.mark.parametrize("argv, error", [
    (["--set", "bogus=1"], "command line: unknown setting 'bogus'; each stage command's -h lists its settings "
                           "(./src/seed/train.py -h, ...), and configs/*.yaml name them"),
    (["--images", "0"], "argument --images: 0: must be at least 1; see crf_agreement.py -h"),
    (["--config", "smoke", "--set", "out_root={tmp}"], "{tmp}/smoke/seg_train/default/model.pth: checkpoint not "
                                                       "found; run the training stage that makes it first"),
])
def test_crf_agreement_refuses_bad_input_and_a_missing_run_in_one_line(script, smoke_data, tmp_path, argv, error):
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert script("crf_agreement", *argv) == (2, f"error: {error.format(tmp=tmp_path)}\n")


@pytest.mark.parametrize("argv, error", [
    (["--device", "nonsense"], "argument --device: nonsense: write cpu, cuda or cuda:N (a GPU index); see "
                               "gpu_check.py -h"),
    (["--device", "cuda:99"], "--device cuda:99: {here}; pass --device cpu (with --quick: every path, small) or "
                              "run on a GPU machine"),
])
def test_gpu_check_refuses_a_device_that_is_not_there_in_one_line(script, argv, error):
    count = torch.cuda.device_count()
    here = f"this machine has {count} CUDA device{'s' * (count != 1)}" if count else "no CUDA device here"
    assert script("gpu_check", *argv) == (2, f"error: {error.format(here=here)}\n")


@pytest.mark.parametrize("name, argv, error", [
    ("random_voc", ["/dev/null/x"], "/dev/null: Not a directory; a file stands where a folder is needed; move it "
                                    "away or choose another output folder (OUT)"),
    ("gpu_run", ["/dev/null/x", "--quick"], "/dev/null: Not a directory; a file stands where a folder is needed; "
                                            "move it away or choose another output folder (OUT)"),
    ("random_voc", ["{tmp}", "--n", "0"], "argument --n: 0: must be at least 1; see random_voc.py -h"),
    ("random_voc", ["{tmp}", "--n", "-2"], "argument --n: -2: must be at least 1; see random_voc.py -h"),
])
def test_random_voc_and_gpu_run_refuse_bad_input_in_one_line(script, tmp_path, name, argv, error):
    assert script(name, *[a.format(tmp=tmp_path) for a in argv]) == (2, f"error: {error}\n")


SHARED = ROOT.parent / "shared" / "data"


@pytest.mark.parametrize("argv, error", [
    (["--share", "0.5"], "argument --share: 0.5: write two shares lo,hi with 0 < lo <= hi <= 1, as 0.01,0.08; see "
                         "small_objects.py -h"),
    (["--share", "0.5,0.2"], "argument --share: 0.5,0.2: write two shares lo,hi with 0 < lo <= hi <= 1, as "
                             "0.01,0.08; see small_objects.py -h"),
    (["--train", "0"], "argument --train: 0: must be at least 1; see small_objects.py -h"),
    (["--msrc", "/nonexistent"], "/nonexistent: no MSRC train split (ImageSets/Segmentation/train.txt); point --msrc "
                                 "at the msrc_things folder of ../shared/data"),
])
def test_small_objects_refuses_bad_input_in_one_line(script, tmp_path, argv, error):
    assert script("small_objects", tmp_path, *argv) == (2, f"error: {error}\n")


@pytest.mark.skipif(not (SHARED / "msrc_things").is_dir(), reason="../shared/data is absent")
@pytest.mark.parametrize("argv, error", [
    (["--classes", "cow,unicorn"], "--classes unicorn: not a class of {msrc}; choose among cow, sheep, aeroplane, "
                                   "face, car, bicycle, flower, sign, bird, book, chair, cat, dog, body, boat"),
    (["--davis", "/nonexistent"], "/nonexistent/images: no frame of the scenes blackswan, car-roundabout, "
                                  "dance-twirl, soapbox; point --davis at the davis_saliency folder of ../shared/data"),
])
def test_small_objects_refuses_classes_or_frames_it_has_not_in_one_line(script, tmp_path, argv, error):
    msrc = SHARED / "msrc_things"
    assert script("small_objects", tmp_path, "--msrc", msrc, *argv) == (2, f"error: {error.format(msrc=msrc)}\n")


@pytest.mark.skipif(not (SHARED / "msrc_things").is_dir(), reason="../shared/data is absent")
def test_small_objects_leaves_no_part_of_a_set(script, tmp_path):
    """A refused run (a class in no training image) left its images and masks in DIR, over those of an earlier set
    whose tags.csv then named other classes than the masks held; a DIR that holds files is now refused."""
    shared = ["--msrc", SHARED / "msrc_things", "--davis", SHARED / "davis_saliency"]
    code, error = script("small_objects", tmp_path / "set", *shared, "--train", "1", "--val", "1")
    assert (code, error.startswith("error: no training image shows ")) == (2, True)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "tags.csv").write_text("mine")
    assert script("small_objects", tmp_path / "set", *shared) == (
        2, f"error: {tmp_path / 'set'}: not empty; choose a new DIR or remove this one\n")


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_seed_maps_measure_of_no_heatmaps_is_one_line(script, tmp_path, folder):
    (tmp_path / "empty").mkdir()
    assert script("seed_maps", "measure", tmp_path / folder) == (
        2, f"error: {tmp_path / folder}: no val_*.mat heatmaps; give the seed heatmaps of a built-in preset's val "
           "images, as data/runs/demo/seed_heatmaps/seed_split-test\n")


def test_seed_maps_measure_takes_the_size_from_the_heatmaps_and_leaves_maps_without_mass_out(tmp_path, capsys):
    """Heatmaps of the smoke preset's 64-px val images (the size was fixed at the demo's 128 px: an IndexError);
    one map is negative everywhere: counted as no mass in any region, the 'map mass %' column summed to less
    than 100."""
    import seed_maps
    from guidedlabelling.datasets.builtin import _VAL, NUM_CLASSES, image_rng, render_scene
    from guidedlabelling.io import save_heatmap_mat
    rng, classes = np.random.default_rng(0), []
    for i in range(3):
        scene = render_scene(image_rng(0, _VAL, i), 64, first_class=1 + i % NUM_CLASSES)
        classes.append(len({obj.cls for obj in scene.objects}))
        heat = rng.random((classes[-1], 64, 64)) - (i == 0)  # image 0: no mass
        save_heatmap_mat(tmp_path / f"val_{i:04d}.mat", heat, (64, 64))
    seed_maps.main(["measure", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert sum(float(line[24:36]) for line in lines[1:5]) == pytest.approx(100, abs=0.2)
    assert lines[5] == f"{sum(classes)} image/class pairs; map mass over the {sum(classes[1:])} whose map is " \
                       "positive somewhere"


def test_seed_maps_probes_of_one_name_and_other_shapes_are_other_runs(tmp_path, monkeypatch):
    """A second probe of a NAME with other --blocks found the first one's network up to date and measured it again:
    the settings, which name the run's folders, held NAME alone."""
    import seed_maps
    nets, measured = [], []

    def run_stage(stage):  # makes the heatmaps' folder as the stage names it
        net = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("seed_train.net="))
        nets.append(net)
        (tmp_path / "demo/seed_heatmaps" / f"seed_train.net-{net}_seed_split-test").mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(sys, "argv", sys.argv[:])
    monkeypatch.setattr(seed_maps.cli, "run_stage", run_stage)
    monkeypatch.setattr(seed_maps, "measure", measured.append)
    for blocks in ("15", "5"):
        seed_maps.main(["probe", "P4", "--blocks", blocks, "--out_root", str(tmp_path)])
    assert nets == ["P4-blocks15-cam_layers0"] * 3 + ["P4-blocks5-cam_layers0"] * 3
    assert [f.name for f in measured] == [f"seed_train.net-{net}_seed_split-test" for net in nets[::3]]


@pytest.mark.parametrize("stage", ["seed_train", "saliency_train", "seg_train"])
def test_every_figure_of_a_curve_row_says_its_unit(monkeypatch, stage):
    """The saliency rows held foreground IoU in percent beside max-F from 0 to 1, neither marked."""
    import curve
    salthres = str(resolve("demo")[0]["guide_labels"]["salthres"])
    saliency = {"foreground_IoU": {salthres: 50.0}, "max_F": 0.7}
    outputs = {"mIoU": 40.0, "fg_precision": 60.0, "mAP": 70.0, "guide": {"mIoU": 45.0},
               "train": saliency, "val": saliency, "holdout": saliency}
    monkeypatch.setattr(curve, "done", lambda config, settings, stage: outputs)
    row = curve.figures(stage, "demo", [], reference=True)
    assert row and all(name.split(" (")[0].endswith(" %") or name.endswith("max-F (0-1)") for name in row), row


def test_sibling_data_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    """It wrote train.txt before the val images and the saliency set: a run cut short looked like a set."""
    import sibling_data
    sibling_data.main([str(tmp_path / "whole"), "--train", "2", "--val", "1", "--saliency", "1"])
    assert sorted(p.name for p in (tmp_path / "whole/voc/ImageSets/Segmentation").iterdir()) == ["train.txt",
                                                                                               "val.txt"]
    assert [p.name for p in (tmp_path / "whole/saliency/masks").iterdir()] == ["sal_0000.png"]

    def cut_short(rng):
        raise KeyboardInterrupt
    monkeypatch.setattr(sibling_data, "saliency_sample", cut_short)
    with pytest.raises(KeyboardInterrupt):
        sibling_data.main([str(tmp_path / "cut"), "--train", "2", "--val", "1", "--saliency", "1"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whole"]


def test_sibling_data_refuses_a_folder_that_holds_files_in_one_line(script, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert script("sibling_data", tmp_path) == (2, f"error: {tmp_path}: not empty; choose a new DIR or remove this "
                                                   "one\n")
