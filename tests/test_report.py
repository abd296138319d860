"""report.html and --vis panels of a smoke run: the numbers of the stages' JSON files, embedded images,
and the page opened in a real headless Chromium (screenshot kept in tests/artifacts/report.png)."""
import base64
import html
import io
import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import own_args
from guidedlabelling.io import load_heatmap_mat, save_heatmap_mat, save_label_png
from guidedlabelling import config as C
from guidedlabelling import report as report_module
from guidedlabelling.report import coverage, ranked_examples, unmeasured_summary
from guidedlabelling.seeds import SeedRule
from guidedlabelling import visualize
from guidedlabelling.visualize import panel_tiles

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data/builtin_64px_20_10/builtin"
ARTIFACTS = ROOT / "tests/artifacts"
SCALE, CAPTION, GAP = 3, 22, 4  # smoke images are 64 px: tiles enlarged 3x to 192 px, 22-px captions, 4-px gaps
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """./script.py --config smoke with --vis (vis=true): every stage, panels, the report."""
    out = tmp_path_factory.mktemp("report_run")
    proc = subprocess.run([sys.executable, str(ROOT / "script.py"), "--config", "smoke", "--out_root", str(out),
                           "--set", "vis=true"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / "smoke", proc


class Page(HTMLParser):
    """The <table>s of a page as rows of cell texts, keyed by the <h2> before each; the <img> sources."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.images, self.heading, self.in_heading, self.cell = {}, [], None, False, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "h2":
            self.heading, self.in_heading = "", True
        elif tag == "table":
            self.tables[self.heading] = []
        elif tag == "tr":
            self.tables[self.heading].append([])
        elif tag in ("td", "th"):
            self.cell = ""
        elif tag == "img":
            self.images.append(dict(attrs))

    def handle_endtag(self, tag):
        if tag == "h2":
            self.in_heading = False
        elif tag in ("td", "th"):
            self.tables[self.heading][-1].append(" ".join(self.cell.split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data
        elif self.in_heading:
            self.heading += data


def read(path):
    return json.loads(path.read_text())


def one_decimal(v):
    return "n/a" if v is None else f"{v:.1f}"


def figure(v):
    return "n/a" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def three(v):
    return "n/a" if v is None else f"{v:.3f}"


def decode_png(src):
    assert src.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))


def tiles(panel, height=64 * SCALE):
    """A panel's tiles (below their captions) as arrays, from left to right."""
    a = np.asarray(panel.convert("RGB"))
    assert a.shape[0] == CAPTION + height and (a.shape[1] + GAP) % (height + GAP) == 0
    return [a[CAPTION:, x:x + height] for x in range(0, a.shape[1], height + GAP)]


def enlarged(path):
    """A PNG as the panel shows it: RGB (label PNGs through their own VOC palette), 3x nearest neighbour."""
    return np.asarray(Image.open(path).convert("RGB")).repeat(SCALE, 0).repeat(SCALE, 1)


def test_script_prints_the_report_path_and_leaves_no_temporary_file(run):
    root, proc = run
    assert f"report: {root / 'report.html'}" in proc.stdout
    assert (root / "report.html").is_file() and not list(root.glob(".report.html*"))
    assert f"Settings given: <code>vis=true</code> <code>out_root={root.parent}</code></p>" in \
        (root / "report.html").read_text()   # two reports of a preset differ by them


def test_summary_keeps_what_each_step_cost_when_its_folder_was_made(run):
    """step_seconds is this run's profile (a step reused takes little); made_seconds is each finished folder's own,
    from its config.yaml to its done.json, which a rerun that reuses everything keeps."""
    root, _ = run
    folder = root / "seg_train" / "default"
    cost = round((folder / "done.json").stat().st_mtime - (folder / "config.yaml").stat().st_mtime, 1)
    assert read(root / "summary.json")["made_seconds"]["seg_train"] == cost
    proc = subprocess.run([sys.executable, str(ROOT / "script.py"), "--config", "smoke", "--out_root", str(root.parent),
                           "--set", "vis=true"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = read(root / "summary.json")
    assert summary["made_seconds"]["seg_train"] == cost and set(summary["made_seconds"]) == set(summary["step_seconds"])
    head = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h"], capture_output=True, text=True)
    assert summary["made"]["commit"] == (head.stdout.strip() or None) and summary["made"]["torch"] == torch.__version__


def test_summary_and_class_tables_hold_the_numbers_of_the_stages(run):
    root, _ = run
    page = Page((root / "report.html").read_text())
    guide = read(root / "guide_labels/default/done.json")
    seg, ref = read(root / "segmentations/default/results.json"), read(root / "segmentations/labels-gt/results.json")
    assert read(root / "segmentations/default/done.json")["mIoU"] == seg["mIoU"]
    summary = dict(page.tables["Summary"][1:])
    assert summary == {"seeds (train)": one_decimal(guide["seeds"]["mIoU"]),
                       "guide labels (train)": one_decimal(guide["guide"]["mIoU"]),
                       "segmenter on guide labels (val)": one_decimal(seg["mIoU"]),
                       "fully supervised reference (val)": one_decimal(ref["mIoU"]),
                       "ratio guided / fully supervised": f"{100 * seg['mIoU'] / ref['mIoU']:.1f}%" if ref["mIoU"] >= 20
                       else "n/a"}   # (no ratio over a reference that learned nothing)
    classes = page.tables["IoU per class (%)"]
    assert classes[0] == ["class", "seeds (train)", "guide labels (train)", "segmenter (val)", "fully supervised (val)"]
    reports = [guide["seeds"], guide["guide"], seg, ref]
    names = (DATA / "classes.txt").read_text().split()
    assert [row[0] for row in classes[1:]] == names + ["mIoU"]
    for row in classes[1:-1]:
        assert row[1:] == [one_decimal(r["per_class_IoU"][row[0]]) for r in reports]
    assert classes[-1][1:] == [one_decimal(r["mIoU"]) for r in reports]


def test_guide_class_table_and_warnings_hold_the_guide_done_json(run):
    root, _ = run
    page = Page((root / "report.html").read_text())
    guide = read(root / "guide_labels/default/done.json")
    table = page.tables["What the rule's guide labels keep of each class (train; no ground truth needed)"]
    assert [row[0] for row in table[1:]] == [c for c in guide["seeds"]["classes"] if c in guide["classes"]]   # as
    # the IoU tables order them, not as done.json sorts them
    for row in table[1:]:
        r = guide["classes"][row[0]]
        assert row[1:] == [str(r["images"]), f"{100 * r['seed_kept']:.1f}", f"{100 * r['guide_area']:.1f}",
                           f"{100 * r['dropped']:.1f}", f"{100 * r['core_salient']:.1f}"]
    assert all(line in html.unescape((root / "report.html").read_text()) for line in guide["warnings"])


def test_the_guide_class_table_shows_the_final_labels_columns_where_options_made_them(monkeypatch):
    """With options after the rule (msrc's), the final labels' area and void cores follow the rule's columns."""
    row = {"images": 4, "seed_kept": 0.2, "guide_area": 0.05, "dropped": 0.5, "core_salient": 0.3}
    done = {"classes": {"cat": row | {"final_area": 0.25, "cores_void": 0.125}}, "warnings": ["cat: a warning"]}
    monkeypatch.setattr(report_module, "stage_result", lambda cfg, preset, stage: done)
    cfg, preset = C.resolve("msrc")[:2]
    page = Page(report_module.guide_class_section(cfg, preset))
    (title, table), = page.tables.items()
    assert title.endswith("needed; before guide_labels.dropped, unsure and unused, which the final columns follow)")
    assert table[0][-2:] == ["final mean guide area %", "final seed cores void %"]
    assert table[1] == ["cat", "4", "20.0", "5.0", "50.0", "30.0", "25.0", "12.5"]


def test_images_read_with_pillows_warnings_are_listed_up_to_a_count(monkeypatch):
    """Both steps' unreadable images in one table; of the images read with warnings (maybe thousands) the first
    `shown`, then how many more summary.json holds."""
    guide = {"skipped_images": {"/p/x<1>.jpg": "truncated"}, "warned_images": {f"/p/{k}.png": "odd EXIF" for k in "ab"}}
    seg = {"skipped_images": {"/p/y.jpg": "not an image"}, "warned_images": {"/p/c.png": "palette & bytes"}}
    monkeypatch.setattr(report_module, "stage_result", lambda cfg, preset, stage: {"guide_labels": guide,
                                                                                  "segmentations": seg}[stage])
    cfg, preset = C.resolve("smoke")[:2]
    section = report_module.skipped_section(cfg, preset, shown=2)
    assert Page(section).tables == {
        "2 unreadable images left out": [["image", "why"], ["/p/x<1>.jpg", "truncated"], ["/p/y.jpg", "not an image"]],
        "3 images decoded with warnings from Pillow and used as decoded (re-save a file to silence it)":
            [["image", "Pillow's warnings"], ["/p/a.png", "odd EXIF"], ["/p/b.png", "odd EXIF"]]}
    assert section.endswith("<p class=note>and 1 more (summary.json)</p>") and "x&lt;1&gt;" in section
    assert report_module.skipped_section(cfg, preset).count("<tr>") == 2 + 2 + 3   # headers; the default shows all


def test_without_masks_the_summary_counts_what_the_segmenter_marks_of_each_class():
    """Own data without masks: no table of n/a, but per class the val images tagged with it and those whose
    prediction marks it, and the warning of a class marked in few."""
    cfg, _ = C.resolve("smoke", ["images=/photos", "tags=/photos/tags.csv"])
    seg = {"split": "val", "tags_marked": {"cat": {"tagged": 4, "marked": 0}, "dog": {"tagged": 2, "marked": 2},
                                           "car": {"tagged": 0, "marked": 0}}}
    section = unmeasured_summary(cfg, seg, None)
    assert Page(section).tables["Summary"] == [["class", "images tagged", "images whose prediction marks it"],
                                               ["cat", "4", "0"], ["dog", "2", "2"], ["car", "0", "0"]]
    assert "No ground-truth masks, so no mIoU (pass --masks DIR for it)" in section
    assert "the guided segmenter marks few of the val images tagged with cat (0 of 4)" in section


def test_with_no_val_mask_the_summary_also_counts_what_the_segmenter_marks(monkeypatch):
    """Masks of training images alone: the seeds and guide labels are scored, the segmenter is not, so the table of
    what it marks of each class follows the mIoU table, as ./script.py prints it."""
    done = {"guide_labels": {"seeds": {"mIoU": 30.0}, "guide": {"mIoU": 40.0}},
            "segmentations": {"mIoU": None, "split": "val", "tags_marked": {"cat": {"tagged": 3, "marked": 1}}}}
    monkeypatch.setattr(report_module, "stage_result", lambda cfg, preset, stage: done[stage])
    cfg, preset = C.resolve("smoke")[:2]
    section = report_module.summary_section(cfg, preset, None, "no val image has a mask")
    assert "<tr><td>seeds (train)</td><td class='num'>30.0</td></tr>" in section
    assert section.endswith("<p class=note>No val image has a mask; what the guided segmenter marks of each class in "
                            "them, from their tags:</p>\n<table class=''><tr><th>class</th><th>images tagged</th>"
                            "<th>images whose prediction marks it</th></tr>\n<tr><td>cat</td><td class='num'>3</td>"
                            "<td class='num'>1</td></tr></table>")
    done["segmentations"]["mIoU"] = 50.0
    assert "marks of each class" not in report_module.summary_section(cfg, preset, None)


def test_the_hint_of_how_to_give_masks_is_escaped(monkeypatch):
    """A dataset layout's ground_truth_hint is its author's text (datasets/__init__.py): '--labels <DIR>' would open
    a tag that swallows the rest of the page."""
    cfg, _ = C.resolve("smoke", ["images=/photos", "tags=/photos/tags.csv"])
    monkeypatch.setattr(report_module, "ground_truth_hint", lambda d: "pass --labels <DIR> & co")
    section = unmeasured_summary(cfg, {"split": "val", "tags_marked": {}}, None)
    assert "No ground-truth masks, so no mIoU (pass --labels &lt;DIR&gt; &amp; co for it)" in section


def test_saliency_by_area_table_holds_the_held_out_buckets(monkeypatch):
    """The by-area table from a hand-written done.json (the smoke run holds out nothing): a row per bucket that
    has images, in the done.json's order; none without them; no table where no split has buckets."""
    import guidedlabelling.report as R
    holdout = {"images": 5, "MAE": 0.25, "max_F": 0.5, "S_measure": 0.625, "max_E": 0.75,
               "foreground_IoU": {"50": 40.0},
               "by_area": {"0-10%": {"images": 2, "MAE": 0.125, "max_F": 0.375, "S_measure": 0.5, "max_E": 0.5},
                           "10-30%": {"images": 0},
                           "30-100%": {"images": 3, "MAE": 0.3125, "max_F": 0.5625, "S_measure": None,
                                       "max_E": 0.875}}}
    cfg = {"guide_labels": {"salthres": 50, "saliency_maps": None}}
    monkeypatch.setattr(R, "stage_result", lambda *_: {"holdout": holdout, "outputs": {"x": 1}})
    page = Page(R.saliency_section(cfg, None))
    assert page.tables["Saliency"][1:] == [["holdout", "40.0", "0.250", "0.500", "0.625", "0.750"]]
    assert page.tables["Saliency by the object's share of the frame (held-out images)"][1:] == [
        ["holdout 0-10%", "2", "0.125", "0.375", "0.500", "0.500"],
        ["holdout 30-100%", "3", "0.312", "0.562", "n/a", "0.875"]]   # 0.3125 and 0.5625 rounded half to even
    assert "holdout_zoom: the same" in R.saliency_section(cfg, None)
    monkeypatch.setattr(R, "stage_result", lambda *_: {"val": {"foreground_IoU": {"50": 40.0}}})
    assert "object's share" not in R.saliency_section(cfg, None)
    assert "holdout" not in R.saliency_section(cfg, None)   # no such rows to explain
    cfg["guide_labels"]["saliency_maps"] = "maps"   # your own maps: the folder's scores are another run's maps'
    assert R.saliency_section(cfg, None) == ""


def test_saliency_and_stage_tables_hold_every_done_json(run):
    root, _ = run
    page = Page((root / "report.html").read_text())
    saliency = read(root / "saliency/default/done.json")
    table = page.tables["Saliency"]
    measures = ("MAE", "max_F", "S_measure", "max_E")
    assert table[0] == ["split", "foreground IoU at salthres 50%", "MAE", "max F", "S-measure", "max E"]
    for row in table[1:]:
        values = saliency[row[0]]
        assert row[1:] == [f"{values['foreground_IoU']['50']:.1f}"] + [three(values.get(m)) for m in measures]
    areas = page.tables.get("Saliency by the object's share of the frame (held-out images)", [])
    expected = [[f"{split} {bucket}", str(q["images"])] + [three(q.get(m)) for m in measures]
                for split, values in saliency.items() if isinstance(values, dict)
                for bucket, q in values.get("by_area", {}).items() if q["images"]]
    assert areas[1:] == expected
    records = ("outputs", "output_digests", "made_with")
    assert {row[0] for row in table[1:]} == {split for split, scores in saliency.items()
                                            if isinstance(scores, dict) and split not in records}
    rows = {(r[0], r[1]): r[2:] for r in page.tables["Every stage"][1:]}
    folders = [p.parent for p in root.glob("*/*/done.json")]
    assert set(rows) == {(f.parent.name, f.name) for f in folders}
    for folder in folders:
        wall, figures = rows[folder.parent.name, folder.name]
        seconds = (folder / "done.json").stat().st_mtime - (folder / "config.yaml").stat().st_mtime
        assert wall == f"{seconds:.1f} s"
        for key, value in read(folder / "done.json").items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert f"{key} {figure(value)}" in figures
    assert f"guide.mIoU {figure(read(root / 'guide_labels/default/done.json')['guide']['mIoU'])}" in \
        rows["guide_labels", "default"][1]


def test_images_are_embedded_pngs_and_panels_show_the_stage_files(run):
    root, _ = run
    text = (root / "report.html").read_text()
    page = Page(text)
    assert "http://" not in text and "https://" not in text and "<link" not in text and "<script" not in text
    plots = [decode_png(i["src"]) for i in page.images if i["class"] == "plot"]
    panels = {i["alt"]: decode_png(i["src"]) for i in page.images if i["class"] == "panel"}
    assert len(plots) == len(list(root.glob("*/*/loss.json"))) + len(list(root.glob("*_eval/*/*.png")))
    train_ids = most_improved(root, "train", "seed_heatmaps/default", "guide_labels/default")
    val_ids = most_improved(root, "val", "seed_heatmaps/seed_split-test", "segmentations/default")
    assert sorted(panels) == [f"train image {k}" for k in train_ids] + [f"val image {k}" for k in val_ids]
    first = train_ids[0]
    train = tiles(panels[f"train image {first}"])
    assert np.array_equal(train[0], enlarged(DATA / f"JPEGImages/{first}.jpg"))
    assert any(np.array_equal(t, enlarged(root / f"guide_labels/default/{first}.png")) for t in train)
    assert np.array_equal(train[-1], enlarged(DATA / f"SegmentationClass/{first}.png"))
    last = val_ids[-1]
    val = tiles(panels[f"val image {last}"])
    assert np.array_equal(val[-3], enlarged(root / f"segmentations/default/{last}.png"))
    assert np.array_equal(val[-2], enlarged(root / f"segmentations/labels-gt/{last}.png"))
    assert np.array_equal(val[-1], enlarged(DATA / f"SegmentationClass/{last}.png"))


def most_improved(root, split, seed_folder, later_folder, k=4, seedthres=20):
    """The k ids, in split order, whose seeds give at least 10% of the true objects' pixels their class and
    whose labels in later_folder give the most more of them their class than the seeds (heatmaps at seedthres)
    do; then images whose seeds cover less; ties go to the earlier image."""
    keys = []
    for image_id in (DATA / f"ImageSets/Segmentation/{split}.txt").read_text().split():
        truth = np.asarray(Image.open(DATA / f"SegmentationClass/{image_id}.png"))
        objects = (truth > 0) & (truth < 255)
        heat, _ = load_heatmap_mat(root / seed_folder / f"{image_id}.mat")
        seeds = SeedRule(seedthres).labels(heat, sorted(set(truth[objects].tolist())))
        later = np.asarray(Image.open(root / later_folder / f"{image_id}.png"))
        seeded = (seeds[objects] == truth[objects]).mean()
        keys.append((seeded < 0.1, seeded - (later[objects] == truth[objects]).mean(), image_id))
    return sorted(image_id for *_, image_id in sorted(keys)[:k])


class Squares:
    """Ten 10x10 images, each with one class-1 object in rows 0..4 (50 pixels); those not in `annotated` have no
    mask (own data: a label all void)."""
    has_labels = True

    def __init__(self, annotated=range(10)):
        self.annotated = set(annotated)

    def __len__(self):
        return 10

    def annotated_at(self, i):
        return i in self.annotated

    def image(self, i):
        return np.zeros((10, 10, 3), np.uint8)

    def label(self, i):
        truth = np.full((10, 10), 255, np.uint8)
        if self.annotated_at(i):
            truth[:] = 0
            truth[:5] = 1
        return truth

    def image_classes(self, i):
        return [1]


def test_examples_are_picked_among_images_spread_over_a_large_split(monkeypatch):
    """Every annotated image's mask, heatmap and labels were read on every report written (3000 phone photos:
    seconds of a no-op rerun, a probe): at most CANDIDATES of them, spread evenly over the split, the first and the
    last included; the best of those are shown."""
    class Many(Squares):
        def __len__(self):
            return 1000
    read = []

    def gain(data, i, files, rule):   # the later an image, the more its labels gain
        read.append(i)
        return True, i
    monkeypatch.setattr(report_module, "part_to_whole", gain)
    picked = ranked_examples(Many(annotated=range(1, 1000, 2)), 3, [[]] * 1000, SeedRule(20))
    assert len(read) == len(set(read)) == report_module.CANDIDATES and read[0] == 1 and read[-1] == 999
    assert set(read) <= set(range(1, 1000, 2)) and max(np.diff(read)) <= 2 * (500 // report_module.CANDIDATES + 1)
    assert picked == sorted(read)[-3:]
    read.clear()
    assert ranked_examples(Squares(), 2, [[]] * 10, SeedRule(20)) == [8, 9] and read == list(range(10))


def test_the_reports_panels_show_large_photos_shrunk_and_small_ones_enlarged():
    """A 1024 x 768 photo's tiles were put in the report at full size (six panels: 12 MB, a probe): shrunk to
    REPORT_TILE_HEIGHT high, the photo smoothed (its box mean), the labels by nearest neighbour; tiny ones are
    enlarged to at least MIN_TILE_HEIGHT as before."""
    photo = np.zeros((768, 1024, 3), np.uint8)
    photo[:, 1::2] = 200                              # stripes one pixel wide: their mean is 100
    labels = np.zeros((768, 1024, 3), np.uint8)
    labels[:, 512:] = (128, 0, 0)
    most = report_module.REPORT_TILE_HEIGHT
    panel = np.array(visualize.panel_image([("image", photo), ("guide labels", labels)], most))
    tw = round(1024 * most / 768)
    assert panel.shape == (visualize.CAPTION_HEIGHT + most, 2 * tw + visualize.GAP, 3)
    tile = panel[visualize.CAPTION_HEIGHT:, :tw].astype(int)   # (nearest neighbour: stripes of 0 and 200)
    assert abs(tile.mean() - 100) < 2 and 40 < tile.min() <= tile.max() < 160
    assert set(np.unique(panel[visualize.CAPTION_HEIGHT:, tw + visualize.GAP:, 0])) == {0, 128}
    small = np.array(visualize.panel_image([("image", photo[:10, :10])], most))
    assert small.shape[0] - visualize.CAPTION_HEIGHT == 16 * 10 == visualize.MIN_TILE_HEIGHT


def test_panels_of_a_thin_strip_are_enlarged_no_wider_than_max_tile_width():
    """An 800x3 strip was enlarged 54 times to 160 px high: panels 129608 px wide (a probe). Enlarged by the largest
    whole factor that keeps it within MAX_TILE_WIDTH (1024 // 800 = 1); a 300x3 one 3 times; 1x1 160 times."""
    for (h, w), times in (((3, 800), 1), ((3, 300), 3), ((1, 1), 160), ((3, 2000), 1)):
        strip = np.full((h, w, 3), 7, np.uint8)
        panel = np.array(visualize.panel_image([("image", strip), ("guide labels", strip)]))
        assert panel.shape == (visualize.CAPTION_HEIGHT + h * times, 2 * w * times + visualize.GAP, 3)


def test_panels_are_images_whose_seeds_mark_a_part_then_those_whose_seeds_miss(tmp_path):
    """(object rows the seeds cover, object rows the guide labels cover) per image: a seed row is 20% of the
    object. Images whose seeds cover at least 10% come first, by the guides' gain over the seeds."""
    rows = [(0, 5), (1, 3), (1, 5), (2, 3), (0, 4), (1, 2), (0, 0), (2, 5), (1, 4), (0, 1)]
    files = []
    for i, (seeded, guided) in enumerate(rows):
        heat = np.zeros((1, 10, 10), np.float32)
        heat[0, :seeded] = 1.0
        heat[0, 9, 9] = 0.5 if seeded == 0 else 0.0  # some seed somewhere, none on the object
        save_heatmap_mat(tmp_path / f"{i}.mat", heat, (10, 10))
        guide = np.zeros((10, 10), np.uint8)
        guide[:guided] = 1
        save_label_png(tmp_path / f"{i}.png", guide)
        files.append([("seeds", tmp_path / f"{i}.mat"), ("guide labels", tmp_path / f"{i}.png")])
    # gains in object rows: seeds marking a part: 2 -> 4, 8 -> 3, 7 -> 3, 1 -> 2, 3 -> 1, 5 -> 1;
    # seeds missing: 0 -> 5, 4 -> 4, 9 -> 1, 6 -> 0
    assert ranked_examples(Squares(), 4, files, SeedRule(20)) == [1, 2, 7, 8]
    assert ranked_examples(Squares(), 8, files, SeedRule(20)) == [0, 1, 2, 3, 4, 5, 7, 8]
    partly = Squares(annotated=[0, 3, 4, 5, 6, 7, 8, 9])   # 1 and 2 have no mask: never shown for their gain
    assert ranked_examples(partly, 4, files, SeedRule(20)) == [3, 5, 7, 8]
    assert ranked_examples(partly, 8, files, SeedRule(20)) == [0, 3, 4, 5, 6, 7, 8, 9]
    assert [caption for caption, _ in panel_tiles(partly, 0, [])] == ["image", "ground truth"]
    assert [caption for caption, _ in panel_tiles(partly, 1, [])] == ["image"]   # no all-void tile


def test_coverage_counts_the_object_pixels_given_their_class():
    truth = np.array([[0, 1, 1, 255], [2, 2, 2, 0]], np.uint8)  # 5 object pixels, one void, two background
    assert coverage(np.array([[1, 1, 0, 1], [2, 0, 0, 0]]), truth) == 2 / 5
    assert coverage(truth, truth) == 1.0
    assert coverage(np.zeros_like(truth), np.zeros_like(truth)) == 0.0


def test_vis_panels_of_the_guide_and_test_stages(run):
    root, _ = run
    guide_vis, test_vis = root / "guide_labels/default/vis", root / "segmentations/default/vis"
    assert sorted(p.stem for p in guide_vis.glob("*.png")) == [f"train_{k:04d}" for k in range(20)]
    assert sorted(p.stem for p in test_vis.glob("*.png")) == [f"val_{k:04d}" for k in range(10)]
    image, seeds, saliency, guide, truth = tiles(Image.open(guide_vis / "train_0003.png"))
    assert np.array_equal(image, enlarged(DATA / "JPEGImages/train_0003.jpg"))
    assert np.array_equal(saliency, enlarged(root / "saliency/default/train_0003.png"))
    assert np.array_equal(guide, enlarged(root / "guide_labels/default/train_0003.png"))
    assert np.array_equal(truth, enlarged(DATA / "SegmentationClass/train_0003.png"))
    image, *upstream, prediction, truth = tiles(Image.open(test_vis / "val_0002.png"))
    assert any(np.array_equal(t, enlarged(root / "saliency/default/val_0002.png")) for t in upstream)
    assert np.array_equal(prediction, enlarged(root / "segmentations/default/val_0002.png"))
    assert np.array_equal(truth, enlarged(DATA / "SegmentationClass/val_0002.png"))


def test_vis_on_finished_stages_draws_only_the_missing_panels(run):
    """--vis on a run whose stages are up to date draws the panels they lack from their files, the same bytes as
    the panels drawn while computing, and computes nothing again."""
    root, _ = run
    panels = [root / "guide_labels/default/vis/train_0003.png", root / "guide_labels/default/vis/train_0011.png",
              root / "segmentations/default/vis/val_0002.png"]
    drawn = {p: p.read_bytes() for p in panels}
    outputs = {p: p.stat().st_mtime_ns for p in (root / "guide_labels/default").glob("*.png")} | \
        {p: p.stat().st_mtime_ns for p in (root / "segmentations/default").glob("*.png")}
    for p in panels:
        p.unlink()
    proc = subprocess.run([sys.executable, str(ROOT / "script.py"), "--config", "smoke", "--out_root", str(root.parent),
                           "--set", "vis=true"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"guide_labels: missing panels drawn into {root / 'guide_labels/default/vis'}: 2" in proc.stdout
    assert f"segmentations: missing panels drawn into {root / 'segmentations/default/vis'}: 1" in proc.stdout
    assert proc.stdout.count("missing panels drawn") == 2
    assert {p: p.read_bytes() for p in panels} == drawn
    assert {p: p.stat().st_mtime_ns for p in outputs} == outputs


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("Chromium not found: this test opens report.html in a real browser. Install it with "
                "`sudo DEBIAN_FRONTEND=noninteractive apt-get install -y chromium` (Debian/Ubuntu; .ci/run does "
                "this when /usr/bin/chromium is missing)")


def browse(tmp_path, *args):
    """Headless Chromium with a fresh profile; its log (console messages included) is on stderr."""
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    proc = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ":CONSOLE" not in proc.stderr, [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc


def test_report_loads_in_chromium_and_its_screenshot_is_kept(run, tmp_path):
    root, _ = run
    report = root / "report.html"
    seeds = read(root / "guide_labels/default/done.json")["seeds"]["mIoU"]
    # every image decoded: a copy of the page with a probe that counts the images shown after loading
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", "<script>addEventListener('load', () => {"
                     "const all = [...document.images], shown = all.filter(i => i.complete && i.naturalWidth > 0);"
                     "document.body.dataset.images = shown.length + '/' + all.length;});</script></body>"))
    dom = browse(tmp_path, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()).stdout
    count = len(Page(report.read_text()).images)
    assert f'data-images="{count}/{count}"' in dom and count >= 8
    assert "IoU per class (%)" in dom and f"<td class=\"num\">{seeds:.1f}</td>" in dom
    shot = tmp_path / "report.png"
    browse(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri())
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "report.png")
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape == (2000, 1280, 3)
    assert tuple(pixels[5, 5]) == (0xf4, 0xf5, 0xf7) and tuple(pixels[5, 640]) == (255, 255, 255)  # inline CSS
    assert (pixels == (0xee, 0xf0, 0xf5)).all(axis=2).sum() > 1000  # table headers


def test_a_run_without_every_result_leaves_the_report_and_summary_as_they_were(run):
    """A variant whose steps do not all have results (here only its guide labels) writes neither report.html nor
    summary.json: the pair the full run wrote stays, both describing that run. (Last in the module: it adds a
    variant's folder to the run.)"""
    root, _ = run
    before = {name: (root / name).read_bytes() for name in ("report.html", "summary.json")}
    proc = subprocess.run([sys.executable, str(ROOT / "script.py"), "--config", "smoke", "--out_root",
                           str(root.parent), "--set", "vis=true", "--set", "seedthres=30", "--steps", "guide_labels"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (root / "guide_labels" / "seedthres-30" / "done.json").is_file()
    assert "report: not written until every step has results (an earlier run's report.html and summary.json stay)" \
        in proc.stdout
    assert {name: (root / name).read_bytes() for name in ("report.html", "summary.json")} == before


def test_a_first_run_without_every_result_does_not_speak_of_an_earlier_report(own, command):
    code, out, err = command("script", *own_args(own), "--steps", "seed_train")
    assert code == 0, out + err
    assert "report: not written until every step has results\n" in out and "earlier" not in out


def test_examples_find_each_stage_folder_once_however_many_images(monkeypatch, tmp_path):
    """The report's examples name every image's stage files; a folder's name is derived from all the settings and
    looked up on disk, so it is found once per split, not once per image (3000 photos took the report 20 s)."""
    calls = []

    class Many(Squares):
        classes, split = ["background", "thing"], "train"

        def __init__(self, n):
            super().__init__(annotated=[])
            self.items = [type("Item", (), {"id": f"im{k}"})() for k in range(n)]

        def __len__(self):
            return len(self.items)

    def stage_dir(cfg, preset, stage):
        calls.append(stage)
        return tmp_path / stage

    cfg = {"data": {"dataset": "train", "test_dataset": "train"}, "run": {"follow_symlinks": False},
           "guide_labels": {"seedthres": 20, "saliency_maps": None}}
    counts = []
    for n in (10, 100):
        calls.clear()
        monkeypatch.setattr(report_module, "reopened", lambda opened, d, split, follow, n=n: Many(n))
        monkeypatch.setattr(report_module.naming, "stage_dir", stage_dir)
        report_module.examples_section(cfg, cfg, cfg, cfg, 0)
        counts.append(len(calls))
    assert counts[0] == counts[1] <= 10


def test_examples_of_a_split_without_masks_are_said_to_be_spread_not_ranked(monkeypatch, tmp_path):
    """A run on own data without masks shows images spread evenly over each split (nothing to rank them by), and
    its caption said they were those whose guide labels add most to their seeds among the annotated images (a
    probe); with val masks alone, the val images are ranked and the train images spread."""
    class Split(Squares):
        classes = ["background", "thing"]

        def __init__(self, split, annotated):
            super().__init__(annotated)
            self.split = split
            self.items = [type("Item", (), {"id": f"{split}{k}"})() for k in range(10)]

        def image_classes(self, i):
            return [1]
    masks = {}
    monkeypatch.setattr(report_module, "reopened", lambda opened, d, split, follow: Split(split, masks[split]))
    monkeypatch.setattr(report_module.naming, "stage_dir", lambda cfg, preset, stage: tmp_path / stage)
    monkeypatch.setattr(report_module, "part_to_whole", lambda data, i, files, rule: (True, i))
    monkeypatch.setattr(report_module, "example_panel", lambda data, i, files, rule: b"")
    cfg = {"data": {"dataset": "train", "test_dataset": "val"}, "run": {"follow_symlinks": False},
           "guide_labels": {"seedthres": 20, "saliency_maps": None}}
    masks.update(train=[], val=[])
    html = report_module.examples_section(cfg, cfg, None, cfg, 2)
    assert "The train and val images are spread evenly over the split: none has ground truth" in html
    assert "add the most" not in html
    assert [c for c in ("train0", "train9", "val0", "val9") if f"image {c}<" in html] == ["train0", "train9",
                                                                                          "val0", "val9"]
    masks.update(val=range(10))
    html = report_module.examples_section(cfg, cfg, None, cfg, 2)
    assert "The val images are those whose seeds mark a part" in html and "image val8<" in html
    assert "The train images are spread evenly" in html


def test_the_examples_show_the_saliency_maps_of_your_own_that_the_guide_labels_read(monkeypatch, tmp_path):
    """With --saliency the guide labels read your maps and no saliency folder is made: the report's panels had no
    saliency tile (a probe), while the guide panels (--vis) and the report's caption showed saliency."""
    monkeypatch.setattr(report_module.naming, "stage_dir", lambda cfg, preset, stage: tmp_path / "runs" / stage)
    cfg = {"guide_labels": {"saliency_maps": str(tmp_path / "maps")}}
    folders = report_module.example_folders(cfg, cfg, None, cfg)
    files = dict(report_module.example_files(folders, "a"))
    assert files["saliency"] == tmp_path / "maps" / "a.png" and files["seeds"] == tmp_path / "runs" / "seed_heatmaps" \
        / "a.mat"
    cfg["guide_labels"]["saliency_maps"] = None
    files = dict(report_module.example_files(report_module.example_folders(cfg, cfg, None, cfg), "a"))
    assert files["saliency"] == tmp_path / "runs" / "saliency" / "a.png"


def test_the_report_takes_the_datasets_the_run_opened(monkeypatch):
    """The report opened both splits again after the run's preflight had (3.4 s each for 3000 photos: it checks every
    image); given the run's Opened it reuses them, and without one (./src/report.py alone) it opens them."""
    from guidedlabelling import preflight
    opens = []
    monkeypatch.setattr(preflight, "open_dataset", lambda d, split, follow: opens.append(split) or f"new {split}")
    d = {"dataset": "train", "test_dataset": "val"}
    opened = preflight.Opened()
    assert opened.get(preflight.data_key(d, "train", False), lambda: preflight.open_dataset(d, "train", False)) == \
        "new train" and opens == ["train"]
    assert preflight.reopened(opened, d, "train", False) == "new train" and opens == ["train"]
    assert preflight.reopened(opened, d, "val", False) == "new val" and opens == ["train", "val"]
    assert preflight.reopened(None, d, "train", False) == "new train" and opens == ["train", "val", "train"]


def test_the_report_shows_the_stage_folders_of_its_run_alone(tmp_path):
    """The run folder (<out_root>/<preset>) also holds other runs' folders: a --set variant's, another tags.csv's, a
    reference or seed_eval scored with masks since removed. The report's stage table, loss curves and plots show the
    folders of its own steps alone, in step order, and none of a step it skipped (a review found a run without masks
    showing another dataset's fully supervised reference and seed scores)."""
    overrides, root = [f"out_root={tmp_path}"], tmp_path / "smoke"

    def made(name, figures, loss=None, plot=False):
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text("")
        (folder / "done.json").write_text(json.dumps(figures))
        os.utime(folder / "config.yaml", (1000, 1000))
        os.utime(folder / "done.json", (1012.5, 1012.5))   # made in 12.5 s
        if loss:
            (folder / "loss.json").write_text(json.dumps({"loss": loss}))
        if plot:
            Image.new("RGB", (4, 4)).save(folder / "pr_curve.png")
        return folder
    seed_eval = made("seed_eval/seed_split-test", {"mIoU": 12.5}, plot=True)
    reference = made("seg_train/labels-gt", {"iterations": 7}, loss=[[1, 0.5]])
    made("seg_train/seed_train.max_iter-9", {"iterations": 9}, loss=[[1, 0.25]])   # another variant's
    made("seed_eval/images-other-123abc_seed_split-test", {"mIoU": 99.0}, plot=True)   # another dataset's
    seeds = made("seed_train/default", {"iterations": 4}, loss=[[1, 2.0], [2, 1.0]])
    assert report_module.run_folders("smoke", overrides) == [seeds, seed_eval, reference]
    folders = report_module.run_folders("smoke", overrides, skipped={"seed_eval", "reference_train"})
    assert folders == [seeds]
    assert Page(report_module.stages_section(folders)).tables["Every stage"][1:] == \
        [["seed_train", "default", "12.5 s", "iterations 4"]]
    unmeasured = made("seed_eval/unmeasured", {"at": {"fg_precision": 50.0, "bg_precision": None}, "mIoU": 3})
    assert Page(report_module.stages_section([unmeasured])).tables["Every stage"][1][3] == \
        "at.fg_precision 50 at.bg_precision n/a mIoU 3"
    assert report_module.training_section(folders).count("<figure>") == 1
    assert report_module.evaluation_section(folders) == ""
    plots = report_module.evaluation_section(report_module.run_folders("smoke", overrides))
    assert plots.count("<figure>") == 1 and "seed_eval/seed_split-test/pr_curve.png" in plots


def test_the_panels_show_your_saliency_maps_in_grey_whatever_their_png_mode(tmp_path):
    """Your own maps may be RGB, RGBA, 16-bit, 1-bit or palette PNGs (the guide labels read them all as grey): the
    tiles were chosen by the file's mode, so the report read an RGB map as a label PNG and failed at the end of a
    finished run (a probe), and showed a 1-bit one in class colours; a guide label PNG saved as 'L' is a label."""
    salient = np.zeros((4, 6), bool)
    salient[1:3, 2:5] = True
    expected = np.repeat(np.where(salient, 255, 0).astype(np.uint8)[..., None], 3, axis=2)
    byte = salient.astype(np.uint8) * 255
    maps = {"rgb": Image.fromarray(np.dstack([byte] * 3)), "rgba": Image.fromarray(np.dstack([byte] * 4)),
            "i16": Image.fromarray(salient.astype(np.uint16) * 65535), "one": Image.fromarray(salient),
            "pal": Image.fromarray(salient.astype(np.uint8), "P")}
    maps["pal"].putpalette([0, 0, 0, 255, 255, 255])
    for name, img in maps.items():
        img.save(tmp_path / f"{name}.png")
        [(_, tile)] = visualize.file_tiles([("saliency", tmp_path / f"{name}.png")], [], None)
        assert np.array_equal(tile, expected), name
    Image.fromarray(salient.astype(np.uint8) * 2).save(tmp_path / "guide.png")   # class 2, mode L
    [(_, tile)] = visualize.file_tiles([("guide labels", tmp_path / "guide.png")], [], None)
    assert np.array_equal(tile, visualize.PALETTE[salient.astype(np.uint8) * 2])


def test_a_note_naming_a_file_whose_name_is_not_utf8_is_written_escaped(monkeypatch, tmp_path):
    """A photo no row names, called caf\\xe9.jpg by an old camera, is named in a note: the report wrote it as UTF-8
    and raised UnicodeEncodeError at the end of a finished run; it shows it escaped, as stdout does."""
    monkeypatch.setattr(report_module, "render_page", lambda *args: report_module.notes_section(args[6]))
    name = os.fsdecode(b"caf\xe9.jpg")
    note = f"note: 1 image of photos has no row in tags.csv and is not used ({name})"
    path = report_module.write_report("smoke", [f"out_root={tmp_path}"], notes=[note])
    assert "(caf\\udce9.jpg)" in path.read_text(encoding="utf-8")
