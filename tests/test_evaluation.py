"""Seed precision/recall curves, classifier AP and the paper-tables command, against answers worked out by hand."""
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from guidedlabelling.datasets import VOCDataset
from guidedlabelling.fingerprint import file_digest
from guidedlabelling.inference import evaluate_folder
from guidedlabelling.io import InputError, save_label_png
from guidedlabelling.metrics import (average_precision, classifier_report, confusion, confusions_over_thresholds,
                                     seed_curve, seed_histogram)
from guidedlabelling.seeds import SeedRule, heatmap2segconf
from guidedlabelling.stages.saliency import split_pairs
from guidedlabelling.stages.seed_eval import plot_seed_curve, scores as seed_eval_scores
from guidedlabelling.tables import Context, Run, main as tables_main

ROOT = Path(__file__).resolve().parents[1]

# ---- seeds: a 2x3 image with classes 1 and 2 ----
# Class maps divided by their maxima (8 and 4):   class 1 [[1, .5, 0], [.25, .125, 0]]
#                                                 class 2 [[0, .25, 1], [0, 0, .125]]
# so label [[1, 1, 2], [1, 1, 2]] with confidence [[1, .5, 1], [.25, .125, .125]]; GT pixel (1, 1) is void.
HEAT = np.array([[[8, 4, 0], [2, 1, 0]], [[0, 1, 4], [0, 0, 0.5]]], np.float32)
GT = np.array([[1, 2, 2], [0, 255, 0]], np.uint8)
CLASSES = [1, 2]
NAMES = ["background", "a", "b"]
# threshold -> per class (background, 1, 2): precision, recall, and mIoU, all worked out by hand
EXPECTED = {
    0: {"prec": [None, 1 / 3, 1 / 2], "rec": [0, 1, 1 / 2], "mIoU": (0 + 1 / 3 + 1 / 3) / 3},
    25: {"prec": [1, 1 / 3, 1], "rec": [1 / 2, 1, 1 / 2], "mIoU": (1 / 2 + 1 / 3 + 1 / 2) / 3},   # .125 dropped
    50: {"prec": [1, 1 / 2, 1], "rec": [1, 1, 1 / 2], "mIoU": (1 + 1 / 2 + 1 / 2) / 3},           # .25 dropped
    100: {"prec": [2 / 3, 1, 1], "rec": [1, 1, 1 / 2], "mIoU": (2 / 3 + 1 + 1 / 2) / 3},          # only the maxima
}


def test_heatmap_to_label_and_confidence():
    label, conf = heatmap2segconf(HEAT, CLASSES)
    np.testing.assert_array_equal(label, [[1, 1, 2], [1, 1, 2]])
    np.testing.assert_array_equal(conf, [[1, .5, 1], [.25, .125, .125]])


def test_seed_precision_recall_at_thresholds_by_hand():
    label, conf = heatmap2segconf(HEAT, CLASSES)
    thresholds = sorted(EXPECTED)
    curve = seed_curve(seed_histogram(GT, label, conf * 100, thresholds, 3), thresholds, NAMES)
    for point in curve:
        want = EXPECTED[point["threshold"]]
        for c, name in enumerate(NAMES):
            got = point["per_class"][name]
            assert got["precision"] == (None if want["prec"][c] is None else pytest.approx(100 * want["prec"][c]))
            assert got["recall"] == pytest.approx(100 * want["rec"][c])
        assert point["fg_precision"] == pytest.approx(100 * np.mean(want["prec"][1:]))
        assert point["fg_recall"] == pytest.approx(100 * np.mean(want["rec"][1:]))
        assert point["bg_precision"] == (None if want["prec"][0] is None else pytest.approx(100 * want["prec"][0]))
        assert point["mIoU"] == pytest.approx(100 * want["mIoU"])


def margin_scores(heatmap, classes):
    """Another seed rule, for the test: the best normalised map's lead over the second best, in percent."""
    label, _ = heatmap2segconf(heatmap, classes)
    normed = np.sort(heatmap / heatmap.reshape(len(classes), -1).max(1)[:, None, None], 0)
    return label, 100 * (normed[-1] - normed[-2])


@pytest.mark.parametrize("rule", ["paper", "margin"])
def test_curve_confusions_equal_the_seeds_of_the_guide_stage(rule, monkeypatch):
    """At every threshold, seed_eval's histogram gives the confusion of the seeds SeedRule makes (what the guides,
    pictures, report and diagnostics use), for the paper's rule and for another one put in its place: a change
    to the rule reaches seed_eval's threshold grid too (it re-implemented the rule before)."""
    rng = np.random.default_rng(0)
    heat = rng.normal(size=(3, 17, 13)).astype(np.float32) + 1
    gt = rng.choice([0, 1, 3, 4, 255], size=(17, 13)).astype(np.uint8)
    classes, thresholds = [1, 3, 4], np.arange(0, 101, 5)
    paper = [SeedRule(t).labels(heat, classes) for t in thresholds]
    if rule == "margin":
        monkeypatch.setattr(SeedRule, "scores", staticmethod(margin_scores))
    confs = confusions_over_thresholds(seed_histogram(gt, *seed_eval_scores(heat, classes, 1, thresholds),
                                                      thresholds, 5))
    seeds = [SeedRule(t).labels(heat, classes) for t in thresholds]
    for t, got, seed in zip(thresholds, confs, seeds):
        np.testing.assert_array_equal(got, confusion(gt, seed, 5))
    assert any(not np.array_equal(a, b) for a, b in zip(seeds, paper)) == (rule == "margin")


# ---- classifier AP ----

def brute_force_ap(scores, positive, variant):
    """Mean over the positive images of the precision at their score (VOC: the best precision at any score
    not above it); precision at score s counts every image scoring >= s."""
    def precision_at(s):
        return np.sum(positive & (scores >= s)) / np.sum(scores >= s)
    per_positive = []
    for s in scores[positive]:
        if variant == "plain":
            per_positive.append(precision_at(s))
        else:
            per_positive.append(max(precision_at(t) for t in scores if t <= s))
    return np.mean(per_positive)


def test_average_precision_by_hand():
    scores = np.array([.9, .8, .7, .6, .5])
    positive = np.array([0, 1, 1, 0, 1], bool)
    # ranks 2, 3, 5 are positive: precisions 1/2, 2/3, 3/5, each a recall step of 1/3
    assert average_precision(scores, positive, "plain") == pytest.approx((1 / 2 + 2 / 3 + 3 / 5) / 3)
    # VOC: precision at recall 1/3 is raised to the 2/3 reached later
    assert average_precision(scores, positive, "voc") == pytest.approx((2 / 3 + 2 / 3 + 3 / 5) / 3)


def test_tied_scores_enter_together_whatever_their_order():
    scores, positive = np.array([.9, .5, .5, .1]), np.array([1, 1, 0, 0], bool)
    # recall 1/2 at precision 1, then the tie: recall 1 at precision 2/3
    for perm in itertools.permutations(range(4)):
        perm = list(perm)
        assert average_precision(scores[perm], positive[perm], "plain") == pytest.approx(1 / 2 + 1 / 2 * 2 / 3)


def test_average_precision_matches_a_brute_force_definition():
    rng = np.random.default_rng(1)
    for _ in range(50):
        n = rng.integers(2, 15)
        scores = np.round(rng.random(n), 1)          # one decimal: many ties
        positive = rng.random(n) < 0.4
        if not positive.any():
            positive[0] = True
        for variant in ("plain", "voc"):
            assert average_precision(scores, positive, variant) == pytest.approx(
                brute_force_ap(scores, positive, variant))


def test_map_skips_classes_without_positive_images():
    scores = np.array([[.9, .2, .3], [.1, .8, .4], [.5, .7, .6]])
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]])
    rep = classifier_report(scores, labels, ["x", "y", "z"], "plain")
    # x: positives ranked 1st and 2nd -> 1; y: its positive ranked 1st -> 1; z has no positive
    assert rep["per_class_AP"] == {"x": 100.0, "y": 100.0, "z": None}
    assert rep["mAP"] == 100.0 and rep["images"] == 3


# ---- the commands on a tiny run ----

def run(script, *args, out_root):
    return subprocess.run([sys.executable, str(ROOT / script), "--config", "smoke", "--out_root", str(out_root),
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """Seed training and heatmaps of the smoke preset (seconds), then both evaluations."""
    out = tmp_path_factory.mktemp("runs")
    procs = [run(s, out_root=out) for s in ("src/seed/train.py", "src/seed/test.py", "src/seed/eval.py",
                                             "src/seed/eval_cls.py")]
    procs.append(run("src/seed/eval.py", "--eval_thresholds", "percent", out_root=out))
    for proc in procs:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out / "smoke", procs


def smoke_train_set():
    return VOCDataset(ROOT / "data/builtin_64px_20_10/builtin", "train")


@pytest.mark.parametrize("thresholds,folder", [("percent", "eval_thresholds-percent"), ("release", "default")])
def test_seed_eval_command(seeds, thresholds, folder):
    root, procs = seeds
    folder = root / "seed_eval" / folder
    results = json.loads((folder / "results.json").read_text())
    done = json.loads((folder / "done.json").read_text())
    # the mIoU at the paper's threshold is that of the seeds the guide stage makes (SeedRule + confusion)
    expected = evaluate_folder(smoke_train_set(), root / "seed_heatmaps" / "default", SeedRule(20))["mIoU"]
    assert done["threshold"] == 20 and done["mIoU"] == pytest.approx(expected)
    grid = [p["threshold"] for p in results["curve"]]
    if thresholds == "percent":
        assert grid == list(range(101)) and "release_table" not in done
    else:  # the release's: -10..-2 by 1, -1..0.99 by 0.01 (percent here), and 1 above every clipped confidence
        assert len(grid) == 210 and grid[:3] == [-1000, -900, -800] and grid[9:11] == [-100, -99] and grid[-2:] == [99, 100]
        assert done["release_table"]["max_mIoU"] == pytest.approx(done["best_mIoU"])
        assert done["release_table"]["fg_recall"] == pytest.approx(results["curve"][2]["fg_recall"])
    assert done["best_mIoU"] == pytest.approx(max(p["mIoU"] for p in results["curve"]))
    recalls = [p["fg_recall"] for p in results["curve"]]
    assert all(a >= b - 1e-9 for a, b in zip(recalls, recalls[1:]))     # a higher threshold keeps fewer seeds
    with Image.open(folder / "pr_curve.png") as img:
        assert img.format == "PNG" and img.size[0] > 300
    assert (folder / "config.yaml").exists() and (folder / "log.txt").exists()
    assert "fg prec" in procs[2].stdout and "20*" in procs[2].stdout


def test_cls_eval_command(seeds):
    root, procs = seeds
    res = scipy.io.loadmat(root / "seed_heatmaps" / "default" / "cls_res.mat")
    data = smoke_train_set()
    labels = np.stack([data.class_vector(i) for i in range(len(data))]) > 0
    expected = [brute_force_ap(res["scores"][:, c], labels[:, c], "voc") for c in range(5) if labels[:, c].any()]
    done = json.loads((root / "cls_eval" / "default" / "done.json").read_text())
    assert done["mAP"] == pytest.approx(100 * np.mean(expected)) and done["images"] == 20
    assert "mAP" in procs[3].stdout


def test_eval_rerun_is_up_to_date_and_missing_input_is_one_line(seeds, tmp_path):
    root, _ = seeds
    assert "up to date" in run("src/seed/eval.py", out_root=root.parent).stdout
    proc = run("src/seed/eval_cls.py", out_root=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"run ./src/seed/test.py --set out_root={tmp_path} with the same --config first" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---- the tables command on fake finished runs ----

def write_done(path, data, inputs=()):
    """A finished stage folder: its done.json and its record of the input files it was made from (their digests
    now)."""
    path.mkdir(parents=True)
    (path / "inputs.json").write_text(json.dumps({"fingerprint": "f", "upstream": {},
                                                  "inputs": {str(p): file_digest(p) for p in inputs}}))
    (path / "done.json").write_text(json.dumps(data | {"fingerprint": "f"}))


def test_paper_tables_on_fake_runs(tmp_path, capsys):
    root = tmp_path / "smoke"
    write_done(root / "segmentations" / "test_pcrf-deeplab", {"mIoU": 40.0})          # guided, CRF
    write_done(root / "segmentations" / "default", {"mIoU": 30.0})                     # guided, no CRF
    write_done(root / "segmentations" / "labels-gt_test_pcrf-deeplab", {"mIoU": 50.0})
    write_done(root / "segmentations" / "labels-gt", {"mIoU": 60.0})
    write_done(root / "seed_eval" / "seed_split-test", {"fg_precision": 61.0, "fg_recall": 42.0, "mIoU": 33.0,
                                                        "best_mIoU": 35.5, "best_threshold": 30.0})
    write_done(root / "cls_eval" / "seed_split-test", {"mAP": 77.0})
    write_done(root / "guide_labels" / "guiderule-seed", {"guide": {"mIoU": 21.0}, "seeds": {"mIoU": 20.0}})
    tables_main(["--config", "smoke", "--out_root", str(tmp_path)])
    printed = capsys.readouterr().out
    text = (root / "paper_tables.md").read_text()
    assert text in printed
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| ")}
    assert rows["Guided labelling (seeds + saliency, G2), test-time CRF"][1:5] == ["55.7", "56.7", "56.2", "40.0"]
    assert rows["guided / fully supervised, CRF"][1:5] == ["82.4%", "80.7%", "—", "80.0%"]     # 55.7/67.6, 40/50
    assert rows["guided / fully supervised, no CRF"][4] == "50.0%"                               # 30/60
    assert rows["GAP-HighRes"][:6] == ["77.0", "61.0", "42.0", "33.0", "35.5 at 30%", "`seed_eval/seed_split-test`, "
                                       "`cls_eval/seed_split-test`"]
    assert rows["GAP-LowRes"][:5] == ["—"] * 5
    assert rows["GAP-LowRes"][5] == (f"missing; make it with `./script.py --config smoke --set out_root={tmp_path} "
                                     "--set seed_train.net=GAP-LowRes --steps seed_train,seed_eval_heatmaps,seed_eval,cls_eval`")
    assert rows["seed"][:2] == ["21.0", "—"]                   # the guide labels are there, the segmenter is not
    assert "--set guiderule=seed --steps seed_train,seed_heatmaps,saliency_train,saliency,guide_labels,seg_train," \
           "segmentations`" in rows["seed"][2]


def test_paper_tables_give_no_ratio_over_a_reference_that_learned_little(tmp_path):
    """A fully supervised mIoU under 20: no ratio, as ./script.py's summary gives none (paper_tables gave 7.8%)."""
    root = tmp_path / "smoke"
    write_done(root / "segmentations" / "test_pcrf-deeplab", {"mIoU": 0.2})
    write_done(root / "segmentations" / "labels-gt_test_pcrf-deeplab", {"mIoU": 2.5})
    write_done(root / "segmentations" / "default", {"mIoU": 20.0})
    write_done(root / "segmentations" / "labels-gt", {"mIoU": 25.0})
    tables_main(["--config", "smoke", "--out_root", str(tmp_path)])
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in (root / "paper_tables.md").read_text().splitlines() if line.startswith("| ")}
    assert rows["guided / fully supervised, CRF"][1:6] == ["82.4%", "80.7%", "—", "—", "the two rows above; no ratio: "
                                                           "the fully supervised mIoU is under 20 (it learned little)"]
    assert rows["guided / fully supervised, no CRF"][4:6] == ["80.0%", "the two rows above"]


def test_paper_tables_make_again_a_run_whose_inputs_changed_since(tmp_path):
    """A row's figures come from a folder still what its inputs make; one whose input was edited since is a run to
    make (it showed the former figures)."""
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"one")
    write_done(tmp_path / "smoke" / "segmentations" / "default", {"mIoU": 30.0}, [photo])
    run, ctx = Run("segmentations", ("guiderule=G2", "test_pcrf=none")), Context("smoke", [f"out_root={tmp_path}"])
    assert run.done(ctx)["mIoU"] == 30.0
    photo.write_bytes(b"two")
    assert run.done(Context("smoke", [f"out_root={tmp_path}"])) is None


def test_paper_tables_of_a_preset_whose_guides_keep_g2s_unused_seeds_absent(tmp_path, capsys):
    """msrc sets guide_labels.unused absent, which only rules G2 and salor have unused seeds for: the seed and sal
    rows are made with unused keep (their commands say so), the others with the preset's setting."""
    (tmp_path / "msrc").mkdir()   # no run finished yet
    tables_main(["--config", "msrc", "--out_root", str(tmp_path)])
    text = (tmp_path / "msrc" / "paper_tables.md").read_text()
    assert "| method (segmenter: published DeepLab-LargeFOV, ours DeepLab-EffNet-Lite2) |" in text   # the run's net
    commands = {line.split("|")[1].strip(): line.split("|")[4] for line in text.splitlines()
                if line.startswith("| ") and line.split("|")[1].strip() in ("G2", "seed", "sal", "salor")}
    assert sorted(commands) == ["G2", "sal", "salor", "seed"]
    for rule, command in commands.items():
        assert f"--set guiderule={rule} " in command or rule == "G2"
        assert ("--set guide_labels.unused=keep" in command) == (rule in ("seed", "sal")), command


def test_paper_tables_commands_of_vgg_seed_networks_name_their_init_where_the_preset_uses_imagenet(tmp_path):
    """demo's seed init is imagenet, which the VGG seed networks have none of: their rows' commands name the release's
    VGG-16 file (they stopped at once with 'no built-in ImageNet weights'); the preset's own network's row does not."""
    (tmp_path / "demo").mkdir()   # no run finished yet
    tables_main(["--config", "demo", "--out_root", str(tmp_path)])
    rows = {line.split("|")[1].strip(): line.split("|")[-2] for line in
            (tmp_path / "demo" / "paper_tables.md").read_text().splitlines() if "--set seed_train.net=" in line
            or line.startswith("| GAP-EffNet-HighRes ")}
    assert sorted(rows) == ["GAP-DeepLab", "GAP-EffNet-HighRes", "GAP-HighRes", "GAP-LowRes"]
    for net, command in rows.items():
        init = "--set seed_train.init=models/VGG_ILSVRC_16_layers.caffemodel "
        assert (init in command) == (net != "GAP-EffNet-HighRes"), command


def test_paper_tables_of_a_mistyped_out_root_or_onto_a_picture_are_errors(tmp_path):
    """A mistyped --out_root wrote a table of dashes; --out onto a .jpg replaced the picture with markdown."""
    with pytest.raises(InputError, match=f"{tmp_path / 'typo' / 'smoke'}: no runs of preset smoke there; pass the "
                                         "--out_root of your runs"):
        tables_main(["--config", "smoke", "--out_root", str(tmp_path / "typo")])
    (tmp_path / "smoke").mkdir()
    (tmp_path / "photo.jpg").write_bytes(b"a picture")
    with pytest.raises(InputError, match="photo.jpg: a file that is not markdown"):
        tables_main(["--config", "smoke", "--out_root", str(tmp_path), "--out", str(tmp_path / "photo.jpg")])
    assert (tmp_path / "photo.jpg").read_bytes() == b"a picture"


@pytest.mark.parametrize("command", ["src/seed/eval.py", "src/seed/eval_cls.py", "src/paper_tables.py"])
def test_new_commands_have_help(command):
    proc = subprocess.run([sys.executable, str(ROOT / command), "-h"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and "usage" in proc.stdout


def test_classifier_labels_come_from_voc_main_lists_with_difficult_entries(tmp_path):
    from guidedlabelling.stages.cls_eval import image_labels
    root = tmp_path / "voc"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "classes.txt").write_text("background\ncat\ndog\n")
    for k, i in enumerate(("a", "b", "c")):
        Image.fromarray(np.full((6, 8, 3), 100, np.uint8)).save(root / "JPEGImages" / f"{i}.jpg")
        label = np.zeros((6, 8), np.uint8)
        label[1:3, 1:3] = 1 + k % 2
        Image.fromarray(label).save(root / "JPEGImages" / ".." / f"{i}.png")
        (root / "SegmentationClass").mkdir(exist_ok=True)
        Image.fromarray(label).save(root / "SegmentationClass" / f"{i}.png")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("a\nb\nc\n")
    data = VOCDataset(root, "val")
    path = root / "cls_res.mat"
    assert image_labels(data, ["c", "a"], path).tolist() == [[1, -1], [1, -1]]          # from the label PNGs
    (root / "ImageSets" / "Main" / "cat_val.txt").write_text("a  1\nb -1\nc  0\n")
    (root / "ImageSets" / "Main" / "dog_val.txt").write_text("a -1\nb  1\nc -1\n")
    assert image_labels(data, ["c", "a"], path).tolist() == [[0, -1], [1, -1]]          # Main: c is difficult
    (root / "ImageSets" / "Main" / "dog_val.txt").write_text("a -1\nb  1\n")
    with pytest.raises(Exception, match="dog_val.txt: no entry for image c"):
        image_labels(data, ["c", "a"], path)
    (root / "ImageSets" / "Main" / "dog_val.txt").unlink()   # a partly unpacked ImageSets/Main: not the PNGs' labels
    with pytest.raises(InputError, match=r"Main/dog_val.txt: missing, while Main/cat_val.txt is there; restore it "
                                         r"\(the VOC tar has every class's list\) or remove ImageSets/Main"):
        image_labels(data, ["c", "a"], path)


def test_the_evaluation_commands_take_the_seed_heatmaps_split():
    """--seed_split is seed_heatmaps' setting; the two commands that read its output take it too."""
    from guidedlabelling import config as C
    from guidedlabelling.runner import parse
    for stage in ("seed_eval", "cls_eval"):
        args = parse(stage, ["--seed_split", "test", "--config", "smoke"])
        assert "seed_heatmaps.seed_split=test" in C.flag_overrides(args)
        assert C.resolve("smoke", C.flag_overrides(args))[0]["seed_heatmaps"]["seed_split"] == "test"


def test_the_saliency_logs_score_table_has_a_row_per_entry_in_aligned_columns():
    from guidedlabelling.stages.saliency import score_table
    scores = {"val": {"max_F": 0.5, "MAE": 0.25, "S_measure": None, "max_E": 0.75, "images": 3},
              "holdout/weizmann_horses": {"max_F": 0.8125, "MAE": 0.125, "S_measure": 0.5, "max_E": 1.0, "images": 50}}
    lines = score_table(scores, "maps of").splitlines()
    assert [line.split() for line in lines] == [["maps", "of", "images", "max", "F", "MAE", "S", "max", "E"],
                                                ["val", "3", "0.500", "0.250", "-", "0.750"],
                                                ["holdout/weizmann_horses", "50", "0.812", "0.125", "0.500", "1.000"]]
    assert len({len(line) for line in lines}) == 1   # the columns line up


def test_the_seed_plot_is_drawn_where_recall_has_nothing_to_measure(tmp_path):
    """Images of background only: no foreground pixel, so foreground recall is None where the seeds' precision is
    not (the plot raised ValueError)."""
    point = {"threshold": 20, "fg_precision": 0.0, "fg_recall": None, "bg_precision": 95.0, "bg_recall": 80.0}
    plot_seed_curve(tmp_path / "pr.png", [point], point)
    with Image.open(tmp_path / "pr.png") as png:
        assert png.size == (1000, 460)


def test_paper_tables_of_own_data_without_masks_say_what_they_need(tmp_path):
    """Every table is of mIoU: own data without masks was a KeyError traceback."""
    with pytest.raises(InputError, match=r"the paper's tables compare mIoU, which needs ground-truth masks: pass "
                                         r"--set masks=DIR \(this command takes your data's settings by --set\)$"):
        tables_main(["--config", "smoke", "--out_root", str(tmp_path), "--set", "images=photos", "--set",
                     "tags=photos/tags.csv"])


def test_paper_tables_without_the_runs_settings_say_which_were_left_out(tmp_path, capsys):
    """A run made with --set pascalroot=X, then ./src/paper_tables.py --config P as the README shows it: every row
    read 'missing' without a word that the runs there were made with settings this command was not given."""
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / "summary.json").write_text(json.dumps(
        {"overrides": ["builtin_size=48", "device=cpu", "test_pcrf=none", "seed_train.net=GAP-LowRes",
                       f"out_root={tmp_path}"]}))   # the rows' own settings are not to be given
    tables_main(["--config", "smoke", "--out_root", str(tmp_path)])
    err = capsys.readouterr().err
    assert err == (f"note: no finished run under {tmp_path / 'smoke'} has these settings; its last ./script.py run "
                   "had --set builtin_size=48 --set device=cpu: give this command the same --set\n")
    tables_main(["--config", "smoke", "--out_root", str(tmp_path), "--set", "builtin_size=48", "--set", "device=cpu"])
    assert capsys.readouterr().err == ""


class PartlyAnnotated:
    """Own data's split where only some images have a mask: the others' labels are all void."""
    classes, num_classes = ["background", "cat"], 2

    def __init__(self, annotated):
        self.items = [type("Item", (), {"id": f"im{k}"}) for k in range(len(annotated))]
        self.annotated = annotated

    def annotated_at(self, i):
        return self.annotated[i]

    def label(self, i):
        return np.array([[0, 1], [1, 1]], np.uint8) if self.annotated[i] else np.full((2, 2), 255, np.uint8)


def test_images_without_a_mask_are_scored_without_reading_their_outputs(tmp_path):
    """evaluate_folder and the saliency maps' pairs leave out the images without a mask (all void: nothing to score)
    without reading their files: own data with masks of val alone read thousands of training heatmaps, ran the seed
    rule on them and read as many maps, for nothing. Here their files are absent."""
    data = PartlyAnnotated([True, False, True])
    save_label_png(tmp_path / "im0.png", np.array([[0, 1], [1, 1]], np.uint8))
    save_label_png(tmp_path / "im2.png", np.array([[0, 1], [0, 1]], np.uint8))
    scored = evaluate_folder(data, tmp_path)
    assert scored["void"] == 0 and scored["confusion"] == [[2, 0], [1, 5]]   # im2's pixel (1, 0): cat as background
    assert scored["per_class_IoU"] == pytest.approx({"background": 100 * 2 / 3, "cat": 100 * 5 / 6})
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).save(tmp_path / "im0.png")
    Image.fromarray(np.array([[0, 255], [255, 255]], np.uint8)).save(tmp_path / "im2.png")
    pairs = list(split_pairs(data, tmp_path))
    assert [sal.tolist() for sal, _ in pairs] == [[0, 255, 255, 0], [0, 255, 255, 255]]
