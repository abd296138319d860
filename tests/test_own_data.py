"""Own data: a folder of images + a tags CSV, through the dataset and the whole method (./script.py --images)."""
import hashlib
import html
import json
import shutil
import subprocess
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from guidedlabelling.config import SHAPES_SALIENCY
from guidedlabelling.datasets import OwnDataset, own_split
from guidedlabelling.datasets.base import image_check
from guidedlabelling.io import load_image, voc_palette

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["background", "bird", "cat", "dog"]          # background, then the tags sorted by name
COLOURS = {"bird": (240, 200, 20), "cat": (30, 60, 230), "dog": (220, 40, 40)}
# id: (file, displayed height, width, tags as written in the CSV). photo2 and square fall in val:
# sha1(id) mod 100 is 5 and 11, below the default val_percent 20; the others are 28 or more.
IMAGES = {"big": ("big.jpg", 70, 90, "cat dog"), "grey": ("grey.png", 40, 56, "dog"),
          "alpha": ("alpha.png", 48, 48, "bird;cat"), "rotated": ("rotated.jpg", 40, 24, "cat"),
          "wide": ("wide.png", 30, 80, "bird"), "tall": ("tall.jpg", 72, 36, "dog; bird"),
          "small": ("small.png", 20, 28, "cat"), "plain": ("plain.jpg", 50, 60, "dog cat"),
          "photo2": ("photo2.png", 44, 66, "cat"), "square": ("square.jpg", 64, 64, "dog bird")}
VAL = {"photo2", "square"}
# (height, width) at max_image_side 48, worked out by hand: the longer side 48, the other rounded (big: 70 * 48 / 90
# = 37.3); images within 48 keep theirs.
WORK = {"big": (37, 48), "grey": (34, 48), "alpha": (48, 48), "rotated": (40, 24), "wide": (18, 48),
        "tall": (48, 24), "small": (20, 28), "plain": (40, 48), "photo2": (32, 48), "square": (48, 48)}
EXIF_ORIENTATION = 0x0112


def tag_list(text):
    return sorted(t for t in text.replace(";", " ").split() if t)


def scene(h, w, tags, rng):
    """A noisy background with one coloured rectangle per tag; the mask holds each rectangle's class."""
    img = rng.integers(90, 160, (h, w, 3)).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    for k, tag in enumerate(tags):
        y0, x0 = (k * h) // (2 * len(tags)), (k * w) // (2 * len(tags))
        img[y0:y0 + h // 2, x0:x0 + w // 2] = COLOURS[tag]
        mask[y0:y0 + h // 2, x0:x0 + w // 2] = CLASSES.index(tag)
    return img, mask


def write_image(path, img):
    """Saves `img` as it should be displayed; rotated.jpg is stored turned, with EXIF orientation 6."""
    if path.stem == "grey":
        Image.fromarray(img[..., 0]).save(path)
    elif path.stem == "alpha":
        Image.fromarray(np.dstack([img, np.full(img.shape[:2], 128, np.uint8)]), "RGBA").save(path)
    elif path.stem == "rotated":   # orientation 6: the viewer turns the stored pixels 90 degrees clockwise
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = 6
        Image.fromarray(np.ascontiguousarray(np.rot90(img, 1))).save(path, exif=exif, quality=95)
    else:
        Image.fromarray(img).save(path, **({"quality": 95} if path.suffix == ".jpg" else {}))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    base = tmp_path_factory.mktemp("own")
    for sub in ("images", "masks", "saliency"):
        (base / sub).mkdir()
    rng = np.random.default_rng(0)
    for image_id, (name, h, w, tags) in IMAGES.items():
        img, mask = scene(h, w, tag_list(tags), rng)
        write_image(base / "images" / name, img)
        Image.fromarray(mask).save(base / "masks" / f"{image_id}.png")
        Image.fromarray(np.where(mask > 0, 255, 0).astype(np.uint8)).save(base / "saliency" / f"{image_id}.png")
    (base / "images" / "not_listed.png").write_bytes(b"images the CSV does not name are not used")
    rows = [f"{name},{tags}" for name, _, _, tags in IMAGES.values()]
    (base / "tags.csv").write_text("image,tags\n" + "\n".join(rows) + "\n")
    return base


def script_command(folder, out_root, *extra):
    return [sys.executable, str(ROOT / "script.py"), "--config", "smoke", "--out_root", str(out_root),
            "--images", str(folder / "images"), "--tags", str(folder / "tags.csv"), *extra]


def run_script(folder, out_root, *extra):
    proc = subprocess.run(script_command(folder, out_root, *extra), cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out_root / "smoke", proc.stdout


@pytest.fixture(scope="module")
def without_masks(folder, tmp_path_factory):
    return run_script(folder, tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def with_masks_and_saliency(folder, tmp_path_factory):
    """With max_image_side 48, under most of the images' sizes: masks and saliency maps are given at the files' own
    sizes, and every stage works at the shrunk ones."""
    return run_script(folder, tmp_path_factory.mktemp("runs"), "--masks", str(folder / "masks"),
                      "--saliency", str(folder / "saliency"), "--set", "max_image_side=48")


def the_only(folder, pattern):
    found = list(folder.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_images_decode_upright_as_rgb(folder):
    data = OwnDataset(folder / "images", folder / "tags.csv", split="train")
    index = {image_id: i for i, image_id in enumerate(data.ids)}
    for image_id in ("rotated", "grey", "alpha", "big"):
        img = data.image(index[image_id])
        _, h, w, _ = IMAGES[image_id]
        assert img.shape == (h, w, 3) and img.dtype == np.uint8 and data.sizes[index[image_id]] == (h, w)
    with Image.open(folder / "images" / "rotated.jpg") as raw:   # decoded as stored, EXIF not applied
        assert raw.getexif()[EXIF_ORIENTATION] == 6 and raw.size == (40, 24)   # stored 40 wide, 24 high
        stored = np.asarray(raw.convert("RGB"))
    np.testing.assert_array_equal(data.image(index["rotated"]), np.rot90(stored, -1))   # turned clockwise
    grey = np.asarray(Image.open(folder / "images" / "grey.png"))
    np.testing.assert_array_equal(data.image(index["grey"]), np.dstack([grey] * 3))
    rgba = np.asarray(Image.open(folder / "images" / "alpha.png"))
    np.testing.assert_array_equal(data.image(index["alpha"]), rgba[..., :3])


def test_classes_and_hash_split_from_the_tags(folder):
    train = OwnDataset(folder / "images", folder / "tags.csv", split="train")
    val = OwnDataset(folder / "images", folder / "tags.csv", split="val")
    in_val = {i for i in IMAGES if int(hashlib.sha1(i.encode()).hexdigest(), 16) % 100 < 20}
    assert in_val == VAL and set(val.ids) == VAL and set(train.ids) == set(IMAGES) - VAL
    assert train.classes == val.classes == CLASSES and train.num_classes == 4
    for data in (train, val):
        for i, image_id in enumerate(data.ids):
            expected = [CLASSES.index(t) for t in tag_list(IMAGES[image_id][3])]
            assert data.image_classes(i) == expected
            np.testing.assert_array_equal(data.class_vector(i), [c in expected for c in (1, 2, 3)])
    assert not train.has_labels and OwnDataset(folder / "images", folder / "tags.csv", folder / "masks").has_labels


def test_split_column_and_names_without_extension(folder, tmp_path):
    csv = tmp_path / "tags.csv"
    csv.write_text("image,tags,split\nbig,cat,val\ngrey.png,cat dog,train\nalpha,bird,train\n")
    train = OwnDataset(folder / "images", csv, split="train_aug")   # the VOC presets' name for train
    val = OwnDataset(folder / "images", csv, split="val")
    assert train.ids == ["grey", "alpha"] and val.ids == ["big"]
    assert own_split("voc12train_aug") == train.split == "train" and own_split("voc12val") == "val"   # as the run says
    assert train.classes == ["background", "bird", "cat", "dog"]
    assert val.items[0].image == folder / "images" / "big.jpg"


def test_whole_method_without_masks(folder, without_masks):
    root, stdout = without_masks
    for step in ("reference_train", "reference_segmentations", "seed_eval"):
        assert f"==> {step}: skipped, no ground-truth masks; pass --masks DIR to run it" in stdout
    assert "no ground-truth masks, so no mIoU table" in stdout
    summary = json.loads((root / "summary.json").read_text())
    test = json.loads(next((root / "segmentations").glob("*/done.json")).read_text())
    assert summary["segmenter_classes"] == test["tags_marked"] and set(test["tags_marked"]) <= set(CLASSES)
    assert "\n".join(f"{name:<16}{m['tagged']:>8}{m['marked']:>8}" for name, m in test["tags_marked"].items()) in stdout
    tagged = {c: sum(c in IMAGES[i][3].replace(";", " ").split() for i in VAL) for c in CLASSES[1:]}
    assert {c: m["tagged"] for c, m in test["tags_marked"].items()} == {c: n for c, n in tagged.items() if n}
    shapes = SHAPES_SALIENCY   # smoke's saliency set is the built-in shapes
    assert f"note: {shapes}" in stdout and f"warning: {shapes}" in stdout and summary["saliency_warning"] == shapes
    assert html.escape(shapes) in (root / "report.html").read_text()
    # the notes the run began with: in summary.json and in the report (a probe missed a one-image class's there)
    assert f"note: {shapes}" in summary["notes"] and all(f"{line}\n" in stdout for line in summary["notes"])
    notes = (root / "report.html").read_text().split("<h2>Notes on the settings and data</h2>\n", 1)[1].split("<h2>")[0]
    assert notes == "".join(f"<p class=warn>{html.escape(line)}</p>" for line in summary["notes"]) + "\n"
    guides, preds = Path(summary["guide_labels"]), Path(summary["predictions"])
    assert f"model: {summary['model']} (./src/predict.py --model)" in stdout
    assert f"guide labels: {guides} (the train images)\npredictions: {preds} (the val images; ./src/predict.py " \
           "IMAGES --model MODEL segments any others)" in stdout
    assert torch.load(summary["model"], weights_only=True)["meta"]["classes"] == CLASSES   # the guided segmenter
    assert "labels-gt" not in summary["model"]
    assert sorted(p.stem for p in guides.glob("*.png")) == sorted(set(IMAGES) - VAL)
    assert sorted(p.stem for p in preds.glob("*.png")) == sorted(VAL)
    for folder_, ids in ((guides, set(IMAGES) - VAL), (preds, VAL)):
        for image_id in ids:
            with Image.open(folder_ / f"{image_id}.png") as png:
                _, h, w, tags = IMAGES[image_id]
                assert png.mode == "P" and png.size == (w, h)   # the displayed size, EXIF orientation applied
                values = set(np.unique(np.asarray(png)).tolist())
            if folder_ is guides:   # guide labels hold only the image's own tags (and void)
                assert values <= {0, 255} | {CLASSES.index(t) for t in tag_list(tags)}
    assert "seeds" not in json.loads((guides / "done.json").read_text())
    done = json.loads((preds / "done.json").read_text())
    assert "mIoU" not in done
    marks = {name: {"tagged": 0, "marked": 0} for name in CLASSES[1:]}
    for image_id in VAL:   # counted here from the tags and the predictions (no masks: tags_marked reads none)
        with Image.open(preds / f"{image_id}.png") as png:
            values = set(np.unique(np.asarray(png)).tolist())
        for name in tag_list(IMAGES[image_id][3]):
            marks[name]["tagged"] += 1
            marks[name]["marked"] += CLASSES.index(name) in values
    assert done["tags_marked"] == marks and done["split"] == "val"
    assert summary["segmenter_warnings"] == []   # two val images: too few to say a class is not learnt
    model = torch.load(the_only(root / "seg_train", "*/model.pth"), weights_only=True)
    assert model["meta"]["classes"] == CLASSES
    assert not list((root / "seg_train").glob("*labels-gt*"))


def test_a_class_the_guided_segmenter_rarely_marks_is_named_without_masks(folder, without_masks):
    """The test's counts say the guided segmenter marks dog in none of the 4 val images tagged with it (written into
    its done.json by hand): a rerun, every step up to date, names dog at its end, in summary.json and the report."""
    root, _ = without_masks
    done_path = Path(json.loads((root / "summary.json").read_text())["predictions"]) / "done.json"
    kept = done_path.read_text()
    done = json.loads(kept)
    done["tags_marked"]["dog"] = {"tagged": 4, "marked": 0}
    done_path.write_text(json.dumps(done))
    try:
        _, stdout = run_script(folder, root.parent)
        line = "the guided segmenter marks few of the val images tagged with dog (0 of 4): it learns little of it;"
        assert f"warning: {line}" in stdout and "recomputing" not in stdout
        assert json.loads((root / "summary.json").read_text())["segmenter_warnings"][0].startswith(line)
        assert f"<p class=warn>{html.escape(line)}" in (root / "report.html").read_text()
    finally:  # and the summary and report of the run as it was, for the other tests of its fixture
        done_path.write_text(kept)
        run_script(folder, root.parent)


def test_a_stop_while_the_report_is_written_says_that_every_step_had_finished(folder, with_masks_and_saliency,
                                                                              command, monkeypatch):
    """Ctrl-C after the table, while report.html is written: not the 'rerun to resume' of a run stopped midway."""
    from guidedlabelling import driver
    root, _ = with_masks_and_saliency

    def stopped(*_, **__):
        raise KeyboardInterrupt
    monkeypatch.setattr(driver, "write_report", stopped)
    code, out, err = command("script", "--config", "smoke", "--out_root", root.parent, "--images", folder / "images",
                             "--tags", folder / "tags.csv", "--masks", folder / "masks", "--saliency",
                             folder / "saliency", "--set", "max_image_side=48")
    assert code == 130 and "ratio guided / fully supervised" in out and "seg_train: up to date in" in out
    assert err.splitlines()[-1] == ("interrupted; every step had finished; rerun the same command to write the report "
                                    "(nothing is computed again)")


def test_a_rerun_removes_the_temp_files_of_a_report_and_summary_whose_write_was_killed(folder, with_masks_and_saliency,
                                                                                      command):
    """The stress test's kill -9 of ./script.py while it wrote report.html (after every step): the rerun wrote the
    report and summary again but left the killed write's .report.html.<random>.tmp.html (700 KB on the demo) in the
    run's folder for good, each such kill one more; the stage folders' temp files go at the next run."""
    root, _ = with_masks_and_saliency
    killed = [root / ".report.html.k1ll3d_a.tmp.html", root / ".summary.json.k1ll3d_b.tmp.json"]
    for path in killed:
        path.write_text("half written")
    code, out, err = command("script", "--config", "smoke", "--out_root", root.parent, "--images", folder / "images",
                             "--tags", folder / "tags.csv", "--masks", folder / "masks", "--saliency",
                             folder / "saliency", "--set", "max_image_side=48")
    assert code == 0 and f"report: {root / 'report.html'}" in out, err
    assert not any(path.exists() for path in killed) and not list(root.glob(".*.tmp*"))
    assert json.loads((root / "summary.json").read_text())["segmenter_mIoU_val"] is not None


def test_whole_method_with_masks_and_own_saliency(with_masks_and_saliency):
    root, stdout = with_masks_and_saliency
    for step in ("saliency_train", "saliency"):
        assert f"==> {step}: skipped, saliency maps given" in stdout
    assert not (root / "saliency_train").exists() and not (root / "saliency").exists()
    assert "synthetic shapes" not in stdout   # the saliency maps are the user's
    summary = json.loads((root / "summary.json").read_text())
    assert "saliency_warning" not in summary
    for key in ("seeds_mIoU_train", "guide_labels_mIoU_train", "segmenter_mIoU_val", "fully_supervised_mIoU_val"):
        assert 0 <= summary[key] <= 100
    results = json.loads((Path(summary["predictions"]) / "results.json").read_text())
    assert results["classes"] == CLASSES and np.asarray(results["confusion"]).shape == (4, 4)
    reference = torch.load(the_only(root / "seg_train", "*labels-gt*/model.pth"), weights_only=True)
    assert reference["meta"]["classes"] == CLASSES
    guide = the_only(root / "guide_labels", "*/rotated.png")
    with Image.open(guide) as png:
        assert png.size == (24, 40) and np.array_equal(np.asarray(png.getpalette(), np.uint8)[:768],
                                                       np.asarray(voc_palette(), np.uint8)[:768])
    guides, preds = Path(summary["guide_labels"]), Path(summary["predictions"])
    for folder_, ids in ((guides, set(IMAGES) - VAL), (preds, VAL)):
        for image_id in ids:
            with Image.open(folder_ / f"{image_id}.png") as png:
                assert png.size == WORK[image_id][::-1], image_id   # the work size, not the file's
    assert sum(map(sum, results["confusion"])) == sum(
        h * w for image_id, (h, w) in WORK.items() if image_id in VAL)   # scored at the work size


def test_images_and_masks_larger_than_max_image_side_are_shrunk_to_it(folder):
    """image(i) is the file shrunk (bilinear) and label(i) the mask shrunk by nearest neighbour, both to the work
    size; sizes and tags stay the files'."""
    full = OwnDataset(folder / "images", folder / "tags.csv", folder / "masks", split="train")
    data = OwnDataset(folder / "images", folder / "tags.csv", folder / "masks", split="train").work_at(48)
    for i, image_id in enumerate(data.ids):
        h, w = WORK[image_id]
        assert data.hw(i) == (h, w) and data.sizes[i] == full.sizes[i] == IMAGES[image_id][1:3]
        assert data.image_classes(i) == full.image_classes(i)
        image, mask = full.image(i), full.label(i)
        expected = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
        np.testing.assert_array_equal(data.image(i), expected)
        rows = ((np.arange(h) + 0.5) * mask.shape[0] / h).astype(int)   # nearest: the pixel under each centre
        cols = ((np.arange(w) + 0.5) * mask.shape[1] / w).astype(int)
        np.testing.assert_array_equal(data.label(i), mask[rows][:, cols])
        if (h, w) == full.sizes[i]:
            np.testing.assert_array_equal(data.image(i), image)


@pytest.mark.parametrize("suffix", [".tif", ".png", ".webp", ".jpg"])
@pytest.mark.parametrize("orientation, turn", [(6, 1), (8, -1), (3, 2)])
def test_a_photo_with_an_exif_orientation_is_turned_once_whatever_its_format(tmp_path, suffix, orientation, turn):
    """Stored turned (np.rot90 by `turn`) with the EXIF orientation that undoes it, a 24 x 40 photo is checked and
    decoded at its displayed size, upright. Pillow's TIFF reader turns it itself as it opens: turned again, a TIFF
    came out 40 x 24, squashed (its masks then refused as the wrong size)."""
    img = np.zeros((24, 40, 3), np.uint8)
    img[:6, :10] = (250, 20, 20)    # a red block in the top left corner, as displayed
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    path = tmp_path / f"turned{suffix}"
    Image.fromarray(np.ascontiguousarray(np.rot90(img, turn))).save(path, exif=exif, **(
        {"lossless": True} if suffix == ".webp" else {"quality": 95} if suffix == ".jpg" else {}))
    assert image_check(path) == (24, 40)
    got = load_image(path)
    assert got.shape == (24, 40, 3)
    error = np.abs(got.astype(int) - img)
    if suffix == ".jpg":   # lossy at the block's edges; the block elsewhere would make the mean 12
        assert error.mean() < 3
    else:
        assert error.max() == 0


@pytest.mark.parametrize("orientation, turn", [(6, 1), (8, -1), (3, 2)])
def test_a_mask_or_saliency_map_with_an_exif_orientation_is_read_as_displayed(tmp_path, orientation, turn):
    """The probe's case: a mask saved turned with the orientation tag that undoes it (as an editor may) was read as
    stored: on a square photo misaligned without a word, on another refused as the wrong size. It is read as
    displayed, as its photo is; so is a saliency map, and the preflight checks the size displayed."""
    from guidedlabelling.datasets.base import checked_label
    from guidedlabelling.io import load_gray_png, load_label_png
    from guidedlabelling.preflight import png_problem
    mask = np.zeros((24, 40), np.uint8)
    mask[:6, :10] = 2    # class 2 in the top left corner, as displayed
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(mask, turn)))
    stored.save(tmp_path / "mask.png", exif=exif)
    stored.convert("P").save(tmp_path / "palette.png", exif=exif)
    Image.fromarray(np.ascontiguousarray(np.rot90(mask * 100, turn))).save(tmp_path / "sal.png", exif=exif)
    for name in ("mask.png", "palette.png"):
        np.testing.assert_array_equal(load_label_png(tmp_path / name), mask)
        np.testing.assert_array_equal(checked_label(tmp_path / name, (24, 40), ["bg", "a", "b"], "tags.csv"), mask)
        assert png_problem(tmp_path / name, [(24, 40)], classes=3) is None
    np.testing.assert_array_equal(load_gray_png(tmp_path / "sal.png"), mask * 100)
    assert png_problem(tmp_path / "sal.png", [(24, 40)], grey=True) is None


def test_a_photo_whose_exif_block_pillow_cannot_write_again_is_turned_all_the_same(tmp_path):
    """A camera's EXIF block with the orientation 6 and its resolution unit stored as a BYTE, not a SHORT: the photo
    decodes whole (image_check passes it), but ImageOps.exif_transpose, writing the block again, raised struct.error,
    a bare traceback that ended predict at that photo (a probe). It is turned as displayed, as a mask with it is."""
    from guidedlabelling.io import load_label_png
    img = np.zeros((24, 40, 3), np.uint8)
    img[:6, :10] = (250, 20, 20)    # a red block in the top left corner, as displayed
    entries = [(EXIF_ORIENTATION, 3, struct.pack("<H", 6)), (0x0128, 1, b"\x02")]   # (tag, type, value), count 1
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHI", tag, kind, 1) + value.ljust(4, b"\0")
                                                     for tag, kind, value in entries) + struct.pack("<I", 0)
    exif = b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd
    Image.fromarray(np.ascontiguousarray(np.rot90(img, 1))).save(tmp_path / "camera.png", exif=exif)
    Image.fromarray(np.ascontiguousarray(np.rot90(img[..., 0] // 125, 1))).save(tmp_path / "mask.png", exif=exif)
    assert image_check(tmp_path / "camera.png") == (24, 40)
    np.testing.assert_array_equal(load_image(tmp_path / "camera.png"), img)
    np.testing.assert_array_equal(load_image(tmp_path / "camera.png", (12, 20)).shape, (12, 20, 3))
    np.testing.assert_array_equal(load_label_png(tmp_path / "mask.png"), img[..., 0] // 125)


def test_a_mask_whose_exif_block_does_not_parse_is_read_as_stored(tmp_path, recwarn):
    """Reading the orientation made a PNG with a garbage EXIF block unreadable ('not a TIFF file'); it has none."""
    from guidedlabelling.io import load_gray_png, load_label_png
    mask = np.zeros((4, 6), np.uint8)
    mask[0, 0] = 1
    Image.fromarray(mask).save(tmp_path / "m.png", exif=b"Exif\x00\x00garbage, not TIFF")
    np.testing.assert_array_equal(load_label_png(tmp_path / "m.png"), mask)
    np.testing.assert_array_equal(load_gray_png(tmp_path / "m.png"), mask)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_a_large_jpeg_decodes_at_a_reduced_scale_close_to_the_full_decode_shrunk(tmp_path):
    """A 304 x 400 photo for a 48-px work size decodes at 1/8 scale (50 x 38), then shrinks to 36 x 48, within JPEG's
    error of the picture shrunk; stored turned with EXIF orientation 6, it comes out upright all the same."""
    yy, xx = np.mgrid[0:304, 0:400]
    img = np.dstack([xx * 255 // 399, yy * 255 // 303, (xx + yy) * 255 // 702]).astype(np.uint8)
    img[100:200, 150:300] = (240, 40, 40)
    Image.fromarray(img).save(tmp_path / "photo.jpg", quality=95)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(img, 1))).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    (tmp_path / "tags.csv").write_text("image,tags,split\nphoto.jpg,cat,train\nturned.jpg,cat,train\n")
    data = OwnDataset(tmp_path, tmp_path / "tags.csv", split="train").work_at(48)
    with Image.open(tmp_path / "photo.jpg") as raw:
        raw.draft(None, (48, 37))
        assert raw.size == (50, 38)   # the 1/8-scale decode
        eighth = raw.convert("RGB").resize((48, 36), Image.BILINEAR)
    with Image.open(tmp_path / "photo.jpg") as raw:
        whole = raw.convert("RGB").resize((48, 36), Image.BILINEAR)
    assert not np.array_equal(np.asarray(eighth), np.asarray(whole))   # the two decodes can be told apart
    np.testing.assert_array_equal(data.image(0), np.asarray(eighth))   # the 1/8-scale decode is the one used
    expected = np.asarray(Image.fromarray(img).resize((48, 36), Image.BILINEAR), np.int16)
    for i in range(2):
        got = data.image(i).astype(np.int16)
        assert data.hw(i) == (36, 48) and got.shape == (36, 48, 3)
        assert np.abs(got - expected).mean() < 2 and np.abs(got - expected).max() < 40


def test_a_mask_that_is_all_void_is_left_out_of_the_scores(tmp_path):
    """A val mask of void only (255) has no pixel to score: the saliency quality leaves that image out (its empty
    pixel list made pysodmetrics raise, a traceback) and the run ends with a table and valid JSON."""
    from conftest import make_own, own_args
    own = make_own(tmp_path)
    Image.fromarray(np.full((24, 32), 255, np.uint8)).save(own["masks"] / "e.png")
    proc = subprocess.run([sys.executable, str(ROOT / "script.py"), *own_args(own)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    saliency = json.loads(the_only(own["out_root"], "*/saliency/*/done.json").read_text(), parse_constant=float)
    assert saliency["val"]["images"] == 1 and saliency["train"]["images"] == 4
    json.loads(the_only(own["out_root"], "*/summary.json").read_text(),
               parse_constant=lambda c: pytest.fail(f"summary.json holds {c}"))


def test_masks_of_training_images_alone_train_no_reference(folder, tmp_path):
    """Nothing could score a reference trained on them (the probe's train-only masks trained it for nothing)."""
    masks = tmp_path / "masks"
    shutil.copytree(folder / "masks", masks)
    for name in VAL:
        (masks / f"{name}.png").unlink(missing_ok=True)
    root, stdout = run_script(folder, tmp_path / "runs", "--masks", str(masks))
    for step in ("reference_train", "reference_segmentations"):
        assert f"==> {step}: skipped, no val image has a mask (the reference is only there to be scored on them " \
               "beside the segmenter)" in stdout
    assert "==> seed_eval: skipped, no val image has a mask" in stdout
    assert not list(root.glob("seg_train/*labels-gt*"))
    summary = json.loads((root / "summary.json").read_text())   # nothing measured on val: what it marks, by tags
    assert summary["segmenter_mIoU_val"] is None
    assert {name: m["tagged"] for name, m in summary["segmenter_classes"].items()} == {"bird": 1, "cat": 1, "dog": 1}
    assert "\nwhat the guided segmenter marks of each class (val images; from their tags):\n" in stdout
    report = (root / "report.html").read_text()
    assert "No val image has a mask; what the guided segmenter marks of each class" in report


def test_masks_of_some_val_images_score_the_segmenter_on_them_alone(folder, tmp_path):
    """A user who annotated one val photo: images without a mask are left out of every score, the reference (no
    training image annotated) and the seed scores of val are skipped, and the table shows what was measured."""
    masks = tmp_path / "masks"
    shutil.copytree(folder / "masks", masks)
    root, stdout = run_script(folder, tmp_path / "runs", "--masks", str(masks))   # every image annotated
    assert json.loads((root / "summary.json").read_text())["fully_supervised_mIoU_val"] is not None
    for path in masks.glob("*.png"):
        if path.stem != "square":
            path.unlink()   # the former reference's folder stays, and is not shown
    Image.new("L", (8, 8)).save(masks / "photo2.jpg")   # no mask: named in the note
    root, stdout = run_script(folder, tmp_path / "runs", "--masks", str(masks))
    assert "==> reference_train: skipped, no training image has a mask (the reference learns from them)" in stdout
    assert "==> seed_eval: skipped" not in stdout   # square is a val image with a mask
    assert f"note: 8 of the 8 train images have no mask in {masks} and are left out of the scores (big, grey, " \
        "alpha, ...)" in stdout
    assert f"note: 1 of the 2 val images has no mask in {masks} and is left out of the scores (photo2; photo2.jpg " \
        "there: a mask is <id>.png)" in stdout
    assert "warning: no fully supervised reference: no training image has a mask" in stdout
    assert "guide vs ground truth on train: mIoU n/a (no annotated pixel)" in stdout
    summary = json.loads((root / "summary.json").read_text())
    assert summary["fully_supervised_mIoU_val"] is None and summary["ratio_to_fully_supervised"] is None
    assert summary["seeds_mIoU_train"] is None and summary["guide_labels_mIoU_train"] is None   # nothing to score
    assert 0 <= summary["segmenter_mIoU_val"] <= 100 and summary["reference_predictions"] is None
    results = json.loads((Path(summary["predictions"]) / "results.json").read_text())
    assert sum(map(sum, results["confusion"])) == 64 * 64   # square's pixels alone: photo2 has no mask
    with Image.open(masks / "square.png") as png:
        shown = set(np.unique(np.asarray(png)).tolist())
    absent = ", ".join(name for k, name in enumerate(CLASSES) if k not in shown)
    line = f"no scored val image shows {absent} (no ground-truth pixel)"
    assert absent and f"warning: {line}" in stdout and summary["score_warnings"][0].startswith(line)
    assert sorted(p.stem for p in Path(summary["predictions"]).glob("*.png")) == sorted(VAL)   # both predicted
    report = (root / "report.html").read_text()
    assert "fully supervised (val)" not in report and ">n/a<" in report
    assert f"<p class=warn>{line}" in report
    why = "no fully supervised reference: no training image has a mask (the reference learns from them); the " \
        "segmenter is scored on the val images that have one"   # printed, and in summary.json and the report alike
    assert f"warning: {why}\n" in stdout and summary["reference_warnings"] == [why]
    assert f"<p class=warn>{why}</p>" in report
    assert "labels-gt" not in report   # the former reference's folder: the stage table shows the run's steps alone


def test_unreadable_images_are_named_in_the_summary_and_the_report(folder, tmp_path):
    """An image that does not decode is left out: the end of the run lists it once, and summary.json and the report
    name it too (they did not: only the stages' done.json and logs did). One that decodes with a warning of Pillow's
    is used, and named with its warning at the end of the run, in place of Pillow's own line (which named no file
    and came from every loader worker)."""
    shutil.copytree(folder, tmp_path / "own")
    (tmp_path / "own" / "images" / "broken.jpg").write_bytes(b"not a JPEG")   # sha1 mod 100 = 40: a training image
    palette = Image.fromarray(np.arange(64 * 64).reshape(64, 64).astype(np.uint8) % 3, "P")
    palette.putpalette([200, 30, 30, 30, 200, 30, 30, 30, 200])
    palette.save(tmp_path / "own" / "images" / "gif_like.png", transparency=bytes([0, 128, 255]))   # a training image
    with open(tmp_path / "own" / "tags.csv", "a") as f:
        f.write("broken.jpg,cat\ngif_like.png,cat\n")
    proc = subprocess.run(script_command(tmp_path / "own", tmp_path / "runs"), cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    root, stdout = tmp_path / "runs" / "smoke", proc.stdout
    broken = str(tmp_path / "own" / "images" / "broken.jpg")
    summary = json.loads((root / "summary.json").read_text())
    assert list(summary["skipped_images"]) == [broken]
    assert f"\nskipped 1 unreadable image:\n  {broken}: " in stdout
    warning = "Palette images with Transparency expressed in bytes should be converted to RGBA images"
    gif_like = str(tmp_path / "own" / "images" / "gif_like.png")
    assert summary["warned_images"] == {gif_like: warning}
    assert f"\n1 image decoded with warnings from Pillow and used as decoded (re-save a file to silence it):\n" \
        f"  {gif_like}: {warning}\n" in stdout
    assert "UserWarning" not in proc.stderr + stdout
    guide = json.loads((Path(summary["guide_labels"]) / "done.json").read_text())
    assert guide["warned_images"] == {gif_like: warning} and (Path(summary["guide_labels"]) / "gif_like.png").is_file()
    report = (root / "report.html").read_text()
    assert "<h2>1 unreadable image left out</h2>" in report and html.escape(broken) in report
    assert "<h2>1 image decoded with warnings from Pillow and used as decoded (re-save a file to silence it)</h2>" \
        in report and f"<td>{html.escape(gif_like)}</td><td>{warning}</td>" in report
