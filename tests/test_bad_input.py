"""Bad input: one line "error: <file>: <problem>; <fix>", exit code 2, and no output left behind;
unreadable images are skipped, counted and listed instead."""
import hashlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from guidedlabelling.datasets import OwnDataset
from guidedlabelling.datasets.base import Item, image_check, readable_items
from guidedlabelling.datasets.voc import VOCDataset, dataset_root
from guidedlabelling.io import InputError, load_heatmap_mat, load_image, save_checkpoint, save_label_png, save_mat
from guidedlabelling.networks import GAPNet

ROOT = Path(__file__).resolve().parents[1]
TINY = """name: tiny
dataset: train
test_dataset: val
device: cpu
seed_train: {init: none, width: 0.0625, input_size: 32, max_iter: 2, stepsize: 2, batch_size: 2}
seg_train: {init: none, width: 0.0625, input_size: 32, max_iter: 2, stepsize: 2, batch_size: 2}
segmentations: {test_size: 32}
snapshot: 2
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def make_voc(root, ids=("a", "b", "c", "d")):
    """A VOC-layout folder: 24x32 images, each with one object of class 1 or 2."""
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "classes.txt").write_text("background\ncat\ndog\n")
    for k, i in enumerate(ids):
        Image.fromarray(np.full((24, 32, 3), 40 + 30 * k, np.uint8)).save(root / "JPEGImages" / f"{i}.jpg")
        label = np.zeros((24, 32), np.uint8)
        label[4:12, 4:12] = k % 2 + 1
        save_label_png(root / "SegmentationClass" / f"{i}.png", label)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(ids) + "\n")
    return root


def run(script, config, out_root, *args):
    return subprocess.run([sys.executable, str(ROOT / script), "--config", str(config), "--out_root",
                           str(out_root), *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300)


def named(root):
    """The folder name of --dataset_dir ROOT's outputs (config.token): its last part and a hash of its path."""
    return f"dataset_dir-{root.name}-{hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:6]}"


def assert_clean_error(proc, names, out_root):
    """Exit code 2, one line naming the file, no traceback, and no file written under out_root."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and str(names) in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not [p for p in Path(out_root).rglob("*") if p.is_file()]


def test_missing_dataset_root(tiny, tmp_path):
    missing = tmp_path / "no_such_dataset"
    proc = run("src/seed/train.py", tiny, tmp_path / "runs", "--dataset_dir", missing)
    assert_clean_error(proc, missing, tmp_path / "runs")
    assert "dataset folder not found; pass --dataset_dir" in proc.stderr


def test_missing_list_file(tiny, tmp_path):
    root = make_voc(tmp_path / "voc")
    (root / "ImageSets" / "Segmentation" / "train.txt").unlink()
    proc = run("src/seed/train.py", tiny, tmp_path / "runs", "--dataset_dir", root)
    assert_clean_error(proc, root / "ImageSets" / "Segmentation" / "train.txt", tmp_path / "runs")
    assert "image list not found" in proc.stderr


@pytest.mark.parametrize("missing, message", [
    ("JPEGImages/c.jpg", "image of id c not found; add it or remove the id from"),
    ("SegmentationClass/b.png", "label of id b not found"),
])
def test_id_without_image_or_label(tiny, tmp_path, missing, message):
    root = make_voc(tmp_path / "voc")
    (root / missing).unlink()
    proc = run("src/seed/train.py", tiny, tmp_path / "runs", "--dataset_dir", root)
    assert_clean_error(proc, root / missing, tmp_path / "runs")
    assert message in proc.stderr


def test_every_missing_image_and_label_of_a_list_is_named_at_once(tmp_path):
    """The first missing file alone was named: a user fixing a VOC folder learned of the next one on the next run."""
    root = make_voc(tmp_path / "VOC2012", ids=("a", "b", "c", "d", "e"))
    for gone in ("JPEGImages/b.jpg", "JPEGImages/e.jpg", "SegmentationClass/c.png"):
        (root / gone).unlink()
    with pytest.raises(InputError) as e:
        VOCDataset(root, "train")
    listing = root / "ImageSets" / "Segmentation" / "train.txt"
    assert e.value.messages == (
        f"{root}/JPEGImages/b.jpg: image of id b not found; add it or remove the id from {listing}",
        f"{root}/SegmentationClass/c.png: label of id c not found; add it or remove the id from {listing}",
        f"{root}/JPEGImages/e.jpg: image of id e not found; add it or remove the id from {listing}")
    for i in "bcde":
        (root / "JPEGImages" / f"{i}.jpg").unlink(missing_ok=True)
        (root / "SegmentationClass" / f"{i}.png").unlink(missing_ok=True)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join("a" + "bcdefghijklm"))
    with pytest.raises(InputError) as e:
        VOCDataset(root, "train")
    assert len(e.value.messages) == 11 and e.value.messages[-1] == f"{listing}: 14 more problems"


def test_a_voc_folder_without_sbd_is_told_how_to_make_train_aug(tmp_path):
    root = make_voc(tmp_path / "VOC2012")
    with pytest.raises(InputError, match=r"train_aug.txt: image list not found; make it with ./downloads.sh --sbd or"):
        VOCDataset(root, "train_aug")
    (root / "SegmentationClassAug").mkdir()   # the arranger stopped before its list (written last)
    with pytest.raises(InputError, match=r"train_aug.txt: image list not found; make it with ./downloads.sh --sbd or"):
        VOCDataset(root, "train_aug")
    (root / "SegmentationClassAug").rmdir()
    (root / "ImageSets" / "Segmentation" / "train_aug.txt").write_text("a\nb\n")   # VOC's own ids: found in
    assert len(VOCDataset(root, "train_aug").items) == 2                         # SegmentationClass/
    (root / "ImageSets" / "Segmentation" / "train_aug.txt").write_text("a\n2008_000002\n")
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(root / "JPEGImages" / "2008_000002.jpg")
    with pytest.raises(InputError) as e:
        VOCDataset(root, "train_aug")
    assert e.value.messages == (f"{root}/SegmentationClass/2008_000002.png: label of id 2008_000002 not found; "
                                f"train_aug's labels are SBD's, in {root}/SegmentationClassAug, which does not exist: "
                                "./downloads.sh --sbd makes it",)


def test_pascalroot_given_the_voc_folder_itself_is_told_its_parent(tmp_path):
    root = make_voc(tmp_path / "VOCdevkit" / "VOC2012")
    assert dataset_root(pascalroot=root.parent) == root
    with pytest.raises(InputError) as e:
        dataset_root(pascalroot=root)
    assert e.value.messages == (f"{root}/VOC2012: dataset folder not found; --pascalroot names the folder that holds "
                                f"VOC2012/, and {root} is a VOC-layout folder itself: pass --pascalroot {root.parent} "
                                f"(./script.py: --set pascalroot={root.parent}) or --dataset_dir {root}",)
    with pytest.raises(InputError) as e:
        dataset_root(pascalroot=tmp_path / "elsewhere")
    assert e.value.messages == (f"{tmp_path}/elsewhere/VOC2012: dataset folder not found; pass --pascalroot "
                                "(./script.py: --set pascalroot=DIR) naming the folder that holds VOC2012/, or fetch "
                                "VOC 2012 and SBD's train_aug with ./downloads.sh --voc --sbd (into data/VOCdevkit, "
                                "the default --pascalroot; DATA=DIR ./downloads.sh --voc --sbd: into DIR/VOCdevkit)",)
    twice = make_voc(tmp_path / "twice" / "VOCdevkit" / "VOCdevkit" / "VOC2012")   # the tar unpacked into VOCdevkit/
    for given, nested in ((tmp_path, root), (twice.parents[1], twice)):         # or data/ given for data/VOCdevkit
        with pytest.raises(InputError) as e:
            dataset_root(pascalroot=given)
        assert e.value.messages == (f"{given}/VOC2012: dataset folder not found; {nested} is there: pass --pascalroot "
                                    f"{nested.parent} (./script.py: --set pascalroot={nested.parent}), the folder "
                                    "that holds VOC2012/",)   # (./script.py has no --pascalroot)
    other = make_voc(tmp_path / "VOC2012_trainval")   # its parent holds no VOC2012/: --dataset_dir alone
    with pytest.raises(InputError, match=f"itself: pass --dataset_dir {other}$"):
        dataset_root(pascalroot=other)


def test_label_values_outside_the_class_list(tiny, tmp_path):
    root = make_voc(tmp_path / "voc")
    label = np.zeros((24, 32), np.uint8)
    label[0, 0], label[1, 1], label[2, 2] = 7, 255, 2     # 255 (void) and 2 (dog) are fine, 7 is not
    save_label_png(root / "SegmentationClass" / "d.png", label)
    proc = run("src/seed/train.py", tiny, tmp_path / "runs", "--dataset_dir", root)
    assert_clean_error(proc, root / "SegmentationClass" / "d.png", tmp_path / "runs")
    assert "label values [7] outside the 3 classes" in proc.stderr


def test_unreadable_images_are_skipped_counted_and_listed(tiny, tmp_path):
    root = make_voc(tmp_path / "voc", ids=("a", "b", "c", "d", "e", "f"))
    whole = (root / "JPEGImages" / "b.jpg").read_bytes()
    (root / "JPEGImages" / "b.jpg").write_bytes(whole[:len(whole) // 2])        # truncated
    (root / "JPEGImages" / "e.jpg").write_text("not a JPEG at all")
    proc = run("src/seed/train.py", tiny, tmp_path / "runs", "--dataset_dir", root)
    assert proc.returncode == 0, proc.stderr
    done = json.loads((tmp_path / "runs" / "tiny" / "seed_train" / named(root) / "done.json").read_text())
    skipped = done["skipped_images"]
    assert sorted(skipped) == [str(root / "JPEGImages" / "b.jpg"), str(root / "JPEGImages" / "e.jpg")]
    assert "truncated" in skipped[str(root / "JPEGImages" / "b.jpg")].lower()
    assert done["images"] == 4
    assert "skipped 2 unreadable images (listed in done.json)" in proc.stdout
    assert all(path in proc.stdout for path in skipped)


def own_data(folder, csv_text):
    (folder / "images").mkdir(parents=True)
    for name in ("x.jpg", "y.png"):
        Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(folder / "images" / name)
    (folder / "tags.csv").write_text(csv_text)
    return folder / "images", folder / "tags.csv"


def test_tags_naming_an_unknown_image(tmp_path):
    images, tags = own_data(tmp_path / "own", "image,tags\nx.jpg,cat\nghost.jpg,dog\ny.png,cat dog\n")
    proc = subprocess.run([sys.executable, str(ROOT / "script.py"), "--config", "smoke", "--out_root",
                           str(tmp_path / "runs"), "--images", str(images), "--tags", str(tags)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert_clean_error(proc, tags, tmp_path / "runs")
    assert f"{tags}, line 3: image 'ghost.jpg' is not in {images}; add it or remove the row" in proc.stderr


@pytest.mark.parametrize("csv_text, problem", [
    ("file;labels\nx.jpg;cat\n", "header file;labels is not image,tags (or image,tags,split); the first line must"),
    ("image;tags\nx.jpg;cat\n", "header image;tags is not image,tags (or image,tags,split); its fields are separated "
                               "by semicolons: save it with commas (CSV)"),
    ("image\ttags\nx.jpg\tcat\n", "its fields are separated by tabs: save it with commas (CSV)"),
    ("image,tags\nx.jpg,cat,dog\n", "line 2: expected 2 fields (image,tags)"),
    ("", "header (empty file) is not image,tags"),
    (",,\nx.jpg,cat\n", "header (no column names) is not image,tags")])
def test_tags_in_an_unknown_format(tiny, tmp_path, csv_text, problem):
    images, tags = own_data(tmp_path / "own", csv_text)
    proc = run("src/seed/train.py", tiny, tmp_path / "runs", "--images", images, "--tags", tags)
    assert_clean_error(proc, tags, tmp_path / "runs")
    assert problem in proc.stderr


def test_a_tags_error_comes_alone_where_the_upstream_output_is_missing_too(tmp_path):
    """A step whose data does not open says so alone: its upstream folders are named after the data, and its
    fix may change them (before, 'no finished output of stage seed_heatmaps; run ... tags=<the broken CSV>')."""
    images, tags = own_data(tmp_path / "own", "image,tags\nx.jpg,cat\nx.jpg,cat\ny.png,dog\n")
    proc = subprocess.run([sys.executable, str(ROOT / "script.py"), "--config", "smoke", "--out_root",
                           str(tmp_path / "runs"), "--images", str(images), "--tags", str(tags), "--steps", "cls_eval"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert_clean_error(proc, tags, tmp_path / "runs")
    assert f"{tags}, line 3: image 'x.jpg' is listed again (line 2); remove one row" in proc.stderr


def test_upstream_output_missing(tiny, tmp_path):
    root = make_voc(tmp_path / "voc")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("a\nb\n")
    proc = run("src/segmentation/test.py", tiny, tmp_path / "runs", "--dataset_dir", root)
    assert_clean_error(proc, tmp_path / "runs" / "tiny" / "seg_train" / named(root), tmp_path / "runs")
    assert (f"no finished output of stage seg_train; run ./src/segmentation/train.py --set dataset_dir={root} "
            f"--set out_root={tmp_path / 'runs'} with the same --config first") in proc.stderr


def test_checkpoint_of_another_network(tmp_path):
    seed_model = tmp_path / "seed" / "model.pth"
    save_checkpoint(seed_model, GAPNet("GAP-HighRes", 5, 1 / 16),
                    {"kind": "seed", "net": "GAP-HighRes", "width": 0.0625, "classes": ["background"] + list("abcde")})
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "photo.png")
    out = tmp_path / "preds"
    proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(tmp_path / "photo.png"), "--model",
                           str(seed_model), "--out_dir", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert_clean_error(proc, seed_model, out)
    assert not out.exists()
    assert ("checkpoint is for kind='seed' (a seed network GAP-HighRes, width 0.0625), not kind='segmentation' "
            "as asked; pass a model.pth of ./src/segmentation/train.py") in proc.stderr


def test_own_mask_of_another_size(tmp_path):
    images, tags = own_data(tmp_path / "own", "image,tags,split\nx.jpg,cat,train\ny.png,dog,train\n")
    (tmp_path / "masks").mkdir()
    for stem, hw in (("x", (20, 30)), ("y", (30, 20))):
        save_label_png(tmp_path / "masks" / f"{stem}.png", np.zeros(hw, np.uint8))
    with pytest.raises(InputError, match=r"y\.png: label is 20x30 \(WxH\), its image 30x20"):
        OwnDataset(images, tags, tmp_path / "masks")


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    out = tmp_path / "preds"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "photo.png")
    proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(tmp_path / "photo.png"), "--model",
                           str(path), "--out_dir", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert_clean_error(proc, path, out)
    assert "not a checkpoint of this project" in proc.stderr


def test_pillow_warnings_name_the_image_once_and_a_skipped_one_keeps_them_in_its_reason(tmp_path):
    """A JPEG with a malformed MPO block decodes with Pillow's warning: the dataset check lists it with the warning and
    load_image is silent on it; the same file cut short is skipped, the warning beside the reason, and is not listed
    as 'used as decoded'."""
    import io
    import struct
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3)).astype(np.uint8)).save(buffer, "JPEG")
    payload = b"MPF\0" + bytes(8)   # an APP2 multi-picture block of no valid content
    data = buffer.getvalue()[:2] + b"\xff\xe2" + struct.pack(">H", len(payload) + 2) + payload + buffer.getvalue()[2:]
    (tmp_path / "mpo.jpg").write_bytes(data)
    (tmp_path / "cut.jpg").write_bytes(data[:len(data) * 4 // 5])
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "plain.png")
    items = [Item(name, tmp_path / f"{name}.{ext}", None) for name, ext in (("mpo", "jpg"), ("cut", "jpg"),
                                                                           ("plain", "png"))]
    kept, sizes, skipped, warned = readable_items(items, "the test's list")
    said = "Image appears to be a malformed MPO file, it will be interpreted as a base JPEG file"
    assert [it.id for it in kept] == ["mpo", "plain"] and sizes == [(32, 32), (8, 8)]
    assert warned == {str(tmp_path / "mpo.jpg"): said}
    assert list(skipped) == [str(tmp_path / "cut.jpg")] and skipped[str(tmp_path / "cut.jpg")].startswith(
        "image file is truncated") and skipped[str(tmp_path / "cut.jpg")].endswith(
        f"; copy it again from its source, or remove it (Pillow: {said})")   # a cut copy: the fix
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(tmp_path / "mpo.jpg").shape == (32, 32, 3)


def test_a_file_that_is_no_image_says_how_to_make_it_one(tmp_path):
    """An iPhone's HEIC, which Pillow does not read, says to save it as JPEG or PNG; a .jpg of other bytes, to
    re-create it."""
    (tmp_path / "IMG_0001.HEIC").write_bytes(b"\0\0\0\x18ftypheic" + bytes(range(256)))
    (tmp_path / "notes.jpg").write_text("not a photo")
    assert image_check(tmp_path / "IMG_0001.HEIC").endswith(
        "; Pillow reads no .heic files (an iPhone's photos): save it as JPEG or PNG")
    (tmp_path / "notes.txt").write_text("not a photo")   # named as an image: no word of iPhones
    assert image_check(tmp_path / "notes.txt").endswith("; Pillow reads no .txt files: save it as JPEG or PNG")
    assert image_check(tmp_path / "notes.jpg").startswith("cannot identify image file")
    assert image_check(tmp_path / "notes.jpg").endswith("; re-create it, or save it as JPEG or PNG")


def test_an_empty_file_and_a_heic_photo_named_jpg_say_so(tmp_path):
    """A .jpg of 0 bytes (a copy cut short) and an iPhone's HEIC renamed .jpg, which was told to be re-created or
    saved as JPEG, say what they are."""
    (tmp_path / "empty.jpg").write_bytes(b"")
    heic = b"\0\0\0\x18ftypheic" + bytes(range(256))
    for name in ("IMG_0002.jpg", "IMG_0003.JPEG", "IMG_0004"):
        (tmp_path / name).write_bytes(heic)
    assert image_check(tmp_path / "empty.jpg") == "an empty file (0 bytes); copy it again from its source, or remove it"
    for name, suffix in (("IMG_0002.jpg", ".jpg"), ("IMG_0003.JPEG", ".JPEG"), ("IMG_0004", "without extension")):
        assert image_check(tmp_path / name) == f"an HEIC photo (an iPhone's) named {suffix}; Pillow reads no HEIC " \
            "files: save it as JPEG or PNG"


def test_a_float_image_is_skipped_and_a_huge_one_is_read(tmp_path):
    """A float TIFF would convert to black: it is an unreadable image, skipped and listed. A 196-megapixel PNG
    (over PIL's decompression-bomb limits) is a photo like another, read at its work size without warnings."""
    Image.fromarray(np.full((20, 30), 0.5, np.float32), "F").save(tmp_path / "float.tif")
    assert image_check(tmp_path / "float.tif") == "floating-point pixels (mode F); save it as an 8-bit JPEG or PNG"
    huge = Image.new("1", (14000, 14000), 1)
    huge.paste(0, (0, 0, 7000, 14000))   # left half black
    huge.save(tmp_path / "huge.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert image_check(tmp_path / "huge.png") == (14000, 14000)
        small = load_image(tmp_path / "huge.png", hw=(100, 100))
    assert small.shape == (100, 100, 3) and small[:, :49].max() == 0 and small[:, 51:].min() == 255


@pytest.mark.parametrize("lines, problem", [
    ("a\nb extra junk\nc\n", "line 2: 'b extra junk' is neither '<id>' nor '<image> <label>'; fix the line"),
    ("a\nb\na\n", "line 3: image id 'a' already on line 1; outputs are named by id, so each image may appear once "
                  "(remove one line)"),
    ("a\n/JPEGImages/b.jpg /SegmentationClass/b.png\nb\n", "line 3: image id 'b' already on line 2"),
])
def test_a_voc_list_line_of_three_fields_or_an_id_listed_twice_is_an_error(tmp_path, lines, problem):
    """Before, the first was dropped without a word and the second trained and scored an image twice."""
    root = make_voc(tmp_path / "voc")
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text(lines)
    with pytest.raises(InputError) as e:
        VOCDataset(root, "train")
    assert str(e.value).startswith(f"{root / 'ImageSets' / 'Segmentation' / 'train.txt'}, {problem}")


@pytest.mark.parametrize("name", ["classes.txt", "ImageSets/Segmentation/train.txt"])
def test_a_voc_text_file_that_is_not_utf8_is_one_line(tiny, tmp_path, name):
    root = make_voc(tmp_path / "voc")
    text = "background\nbébé\ndog\n" if name == "classes.txt" else "a\nb\nc\nd\n# café\n"
    (root / name).write_bytes(text.encode("latin-1"))
    proc = run("src/seed/train.py", tiny, tmp_path / "runs", "--dataset_dir", root)
    assert_clean_error(proc, root / name, tmp_path / "runs")
    line = 2 if name == "classes.txt" else 5
    assert f"not a UTF-8 text file (line {line}, byte 0xe9); re-encode it as UTF-8" in proc.stderr


def test_a_heatmap_file_whose_map_does_not_fit_its_size_is_one_line(tmp_path):
    path = tmp_path / "a.mat"
    save_mat(path, {"heatmap": np.zeros((2, 5, 5), np.float32), "imshape_original": np.asarray([4, 4], np.int32)})
    with pytest.raises(InputError, match="its heatmap holds 50 values, no whole number of maps of its "
                                         r"imshape_original \[4, 4\]; remove it and rerun"):
        load_heatmap_mat(path)
    for maps in (2, 0):  # an image without tags has no maps
        save_mat(path, {"heatmap": np.ones((maps, 4, 4), np.float32), "imshape_original": np.asarray([4, 4], np.int32)})
        heatmap, shape = load_heatmap_mat(path)
        assert heatmap.shape == (maps, 4, 4) and shape == (4, 4)


@pytest.mark.parametrize("content", [b"", b"MATLAB 5.0 MAT-file" + b"\0" * 20, b"not a mat file at all, garbage"])
def test_a_damaged_sbd_mat_file_is_one_error_naming_it(tmp_path, content):
    """An SBD cls/<id>.mat cut short (a partly unpacked benchmark.tgz) or of other bytes: one error naming the file,
    never scipy's traceback."""
    from guidedlabelling.datasets.sbd import build_train_aug
    voc = make_voc(tmp_path / "VOC2012", ids=("a", "b"))
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("b\n")
    sbd = tmp_path / "dataset"
    (sbd / "cls").mkdir(parents=True)
    (sbd / "train.txt").write_text("s1\n")
    (sbd / "val.txt").write_text("b\n")            # VOC val: left out of train_aug
    (sbd / "cls" / "s1.mat").write_bytes(content)
    with pytest.raises(InputError, match=rf"^{sbd}/cls/s1\.mat: not an SBD cls file"):
        build_train_aug(sbd, voc)


def test_a_voc_file_of_another_case_or_kind_is_named_in_the_error(tmp_path):
    """What stands in place of a missing VOC file is named with the fix: a.JPG (Windows, a camera) for a.jpg, SBD's
    b.mat copied into SegmentationClassAug for b.png, and an id written with its extension."""
    root = make_voc(tmp_path / "VOC2012", ids=("a", "b", "c"))
    (root / "JPEGImages" / "a.jpg").rename(root / "JPEGImages" / "a.JPG")
    (root / "SegmentationClassAug").mkdir()
    for i in ("a", "c"):
        (root / "SegmentationClass" / f"{i}.png").rename(root / "SegmentationClassAug" / f"{i}.png")
    (root / "SegmentationClass" / "b.png").unlink()
    (root / "SegmentationClassAug" / "b.mat").write_bytes(b"MATLAB 5.0 MAT-file")
    listing = root / "ImageSets" / "Segmentation" / "train_aug.txt"
    listing.write_text("a\nb\nc.jpg\n")
    with pytest.raises(InputError) as e:
        VOCDataset(root, "train_aug")
    aug = root / "SegmentationClassAug"
    assert e.value.messages == (
        f"{root}/JPEGImages/a.jpg: image of id a not found; a.JPG is there (names are case-sensitive): "
        f"rename it a.jpg, or remove the id from {listing}",
        f"{aug}/b.png: label of id b not found; b.mat is there, an SBD label: python -m guidedlabelling.datasets.sbd "
        f"SBD_DATASET {root} converts SBD's labels to PNGs (./downloads.sh --sbd runs it)",
        f"{root}/JPEGImages/c.jpg.jpg: image of id c.jpg not found; the list names ids without extension: write c "
        f"in {listing}",
        f"{aug}/c.jpg.png: label of id c.jpg not found; the list names ids without extension: write c in {listing}")


def test_a_voc_folder_without_its_images_folder_is_one_error(tmp_path):
    """Not one 'image of id ... not found' per id (10, then 'N more problems') when JPEGImages/ itself is absent."""
    root = make_voc(tmp_path / "VOC2012")
    for p in (root / "JPEGImages").iterdir():
        p.unlink()
    (root / "JPEGImages").rmdir()
    with pytest.raises(InputError) as e:
        VOCDataset(root, "train")
    assert e.value.messages == (f"{root}/JPEGImages: folder not found, and {root}/ImageSets/Segmentation/train.txt "
                                "names images in it; a VOC-layout folder keeps its images there (./downloads.sh --voc "
                                "unpacks VOC 2012 so)",)


def test_sbd_arranger_run_again_remakes_only_the_labels_edited_since(tmp_path):
    """Rerun after a VOC label or an SBD .mat was edited: their PNGs in SegmentationClassAug are made again (it kept
    every PNG already there, so train_aug trained on the former label), the others are left as they are."""
    import os
    import scipy.io
    from guidedlabelling.datasets.sbd import build_train_aug
    voc = make_voc(tmp_path / "VOC2012", ids=("a", "b", "c"))
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("c\n")
    sbd = tmp_path / "dataset"
    (sbd / "cls").mkdir(parents=True)
    (sbd / "train.txt").write_text("s1\n")
    (sbd / "val.txt").write_text("c\n")
    scipy.io.savemat(sbd / "cls" / "s1.mat", {"GTcls": {"Segmentation": np.ones((24, 32), np.uint8)}})
    assert build_train_aug(sbd, voc) == ["a", "b", "s1"]
    aug = voc / "SegmentationClassAug"
    made = {p.name: p.stat().st_mtime_ns for p in aug.glob("*.png")}
    assert sorted(made) == ["a.png", "b.png", "c.png", "s1.png"]
    edited = np.full((24, 32), 2, np.uint8)
    save_label_png(voc / "SegmentationClass" / "a.png", edited)
    scipy.io.savemat(sbd / "cls" / "s1.mat", {"GTcls": {"Segmentation": edited}})
    for source in (voc / "SegmentationClass" / "a.png", sbd / "cls" / "s1.mat"):   # later than the PNGs made
        os.utime(source, ns=(made["a.png"] + 10**9, made["a.png"] + 10**9))
    build_train_aug(sbd, voc)
    assert {p.name for p in aug.glob("*.png") if p.stat().st_mtime_ns != made[p.name]} == {"a.png", "s1.png"}
    assert all(np.array_equal(np.array(Image.open(aug / name)), edited) for name in ("a.png", "s1.png"))


def test_sbd_arranger_remakes_a_label_put_back_with_its_former_time(tmp_path):
    """A VOC label edited, arranged, then put back as VOC ships it (tar -x restores the archive's 2012 time, older
    than the PNG made from the edit): its SegmentationClassAug PNG is made again from it (it was kept: newer than
    its label), and a rerun keeps every PNG."""
    import os
    from guidedlabelling.datasets.sbd import build_train_aug
    voc = make_voc(tmp_path / "VOC2012", ids=("a", "b"))
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("b\n")
    sbd = tmp_path / "dataset"
    sbd.mkdir()
    (sbd / "train.txt").write_text("a\n")
    (sbd / "val.txt").write_text("b\n")
    label = voc / "SegmentationClass" / "a.png"
    shipped, shipped_time = np.array(Image.open(label)), label.stat().st_mtime_ns - 10**9   # (as tar restores it)
    os.utime(label, ns=(shipped_time, shipped_time))
    build_train_aug(sbd, voc)
    save_label_png(label, np.full(shipped.shape, 2, np.uint8))   # edited
    build_train_aug(sbd, voc)
    aug = voc / "SegmentationClassAug" / "a.png"
    assert (np.array(Image.open(aug)) == 2).all()
    save_label_png(label, shipped)   # put back: tar -xf VOCtrainval_11-May-2012.tar
    os.utime(label, ns=(shipped_time, shipped_time))
    build_train_aug(sbd, voc)
    assert np.array_equal(np.array(Image.open(aug)), shipped)
    made = {p.name: p.stat().st_mtime_ns for p in aug.parent.glob("*.png")}
    build_train_aug(sbd, voc)
    assert {p.name: p.stat().st_mtime_ns for p in aug.parent.glob("*.png")} == made


def test_sbd_arranger_given_the_unpacked_folder_above_dataset_names_it(tmp_path):
    """python -m guidedlabelling.datasets.sbd benchmark_RELEASE VOC2012 (one folder too high, by hand): told the
    folder that holds SBD's lists, not to run ./downloads.sh --sbd."""
    from guidedlabelling.datasets.sbd import build_train_aug
    voc = make_voc(tmp_path / "VOC2012", ids=("a", "b"))
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("b\n")
    sbd = tmp_path / "benchmark_RELEASE" / "dataset"
    (sbd / "cls").mkdir(parents=True)
    (sbd / "train.txt").write_text("a\n")
    (sbd / "val.txt").write_text("b\n")
    with pytest.raises(InputError) as e:
        build_train_aug(sbd.parent, voc)
    assert e.value.messages == (f"{sbd.parent}/train.txt: missing; SBD's lists are in {sbd}: pass that folder",)
