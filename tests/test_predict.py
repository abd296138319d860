"""./src/predict.py: a trained segmenter on a folder of new images -> label PNGs and colour overlays."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from guidedlabelling.crf import dense_crf
from guidedlabelling.datasets import ImageFiles
from guidedlabelling.fingerprint import file_digest
from guidedlabelling.inference import load_model
from guidedlabelling.io import InputError, load_image, save_checkpoint, save_json, voc_palette
from guidedlabelling.networks import build_seg_net, init_from_scratch
from guidedlabelling.prediction import found_line, images_to_do, legend_line, predict, written
from guidedlabelling.transforms import fit_input, to_caffe_input, unfit

ROOT = Path(__file__).resolve().parents[1]
PALETTE = np.array(voc_palette(), np.uint8).reshape(256, 3)
SIZES = {"photo.jpg": (50, 70), "grey.png": (64, 40), "alpha.png": (30, 30), "turned.jpg": (36, 20)}  # (h, w) shown


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The smoke run's fully supervised segmenter (6 classes of the built-in data), trained in seconds."""
    out = tmp_path_factory.mktemp("runs")
    proc = subprocess.run([sys.executable, str(ROOT / "src/segmentation/train.py"), "--config", "smoke",
                           "--labels", "gt", "--out_root", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out / "smoke" / "seg_train" / "labels-gt" / "model.pth"


@pytest.fixture(scope="module")
def varied_model(tmp_path_factory):
    """A segmenter with seeded random weights: unlike the smoke model (all background on new images), its
    labels vary from pixel to pixel, so the CRF and the colours have something to change."""
    torch.manual_seed(0)
    net = build_seg_net("DeepLab-LargeFOV", 6, 1 / 16)
    init_from_scratch(net)
    path = tmp_path_factory.mktemp("random") / "model.pth"
    save_checkpoint(path, net, {"kind": "segmentation", "net": "DeepLab-LargeFOV", "width": 1 / 16,
                                "classes": ["background", "a", "b", "c", "d", "e"]})
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(1)
    for name, (h, w) in SIZES.items():
        img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        img[h // 4:3 * h // 4, w // 4:3 * w // 4] = (235, 140, 40)   # an orange body, as in the built-in data
        if name == "grey.png":
            Image.fromarray(img[..., 1]).save(folder / name)
        elif name == "alpha.png":
            Image.fromarray(np.dstack([img, np.full((h, w), 200, np.uint8)]), "RGBA").save(folder / name)
        elif name == "turned.jpg":   # stored turned; EXIF orientation 6 turns it back
            exif = Image.Exif()
            exif[0x0112] = 6
            Image.fromarray(np.ascontiguousarray(np.rot90(img, 1))).save(folder / name, exif=exif)
        else:
            Image.fromarray(img).save(folder / name)
    data = (folder / "photo.jpg").read_bytes()
    (folder / "broken.jpg").write_bytes(data[:len(data) // 2])
    (folder / "notes.txt").write_text("not an image; predict ignores it")
    return folder


def run_predict(photos, model, out, *extra):
    """./src/predict.py on `photos` into `out` at the smoke preset's geometry: the finished process."""
    return subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(photos), "--model", str(model),
                           "--out_dir", str(out), "--config", "smoke", *extra], cwd=ROOT, capture_output=True,
                          text=True)


def shown(path):
    """The image as a viewer shows it: EXIF orientation applied, RGB."""
    with Image.open(path) as img:
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


def check_overlay(path, image, label):
    """Background pixels keep the image; the others are the mean of the image and the class colour."""
    blend = np.round(0.5 * image.astype(np.float64) + 0.5 * PALETTE[label]).astype(np.uint8)
    expected = np.where(label[..., None] > 0, blend, image)
    overlay = np.asarray(Image.open(path))
    assert overlay.shape == image.shape
    assert np.abs(overlay.astype(int) - expected).max() <= 1   # float32 vs float64 rounding at .5


def test_an_overlay_mixed_in_bands_of_rows_is_the_whole_images_mix():
    """overlay works in bands of OVERLAY_ROWS rows (a 120-MP photo's float copies took 5 GB): across the bands'
    seams, the mix of check_overlay's formula."""
    from guidedlabelling.prediction import OVERLAY_ROWS, overlay
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (2 * OVERLAY_ROWS + 7, 9, 3)).astype(np.uint8)
    label = rng.integers(0, 6, image.shape[:2]).astype(np.uint8)
    blend = np.round(0.3 * image.astype(np.float64) + 0.7 * PALETTE[label]).astype(np.uint8)
    assert np.abs(overlay(image, label, 0.7).astype(int) - np.where(label[..., None] > 0, blend, image)).max() <= 1


def test_predict_a_folder_writes_labels_and_overlays(model, photos, tmp_path):
    out = tmp_path / "preds"
    proc = run_predict(photos, model, out)
    assert proc.returncode == 0, proc.stderr
    assert f"predicted {len(SIZES)} images" in proc.stdout
    assert "skipped 1 unreadable image:" in proc.stdout and str(photos / "broken.jpg") in proc.stdout
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    stems = sorted(Path(n).stem for n in SIZES)
    bookkeeping = ["predict.json", ".predict.lock"]
    assert written == sorted([f"{s}.png" for s in stems] + [f"overlay/{s}.png" for s in stems] + bookkeeping)
    found = np.zeros(6, int)
    for name, (h, w) in SIZES.items():
        stem = Path(name).stem
        with Image.open(out / f"{stem}.png") as png:
            assert png.mode == "P" and png.size == (w, h)
            assert np.array_equal(np.asarray(png.getpalette(), np.uint8), PALETTE.ravel()[:len(png.getpalette())])
            label = np.asarray(png)
        assert label.max() < 6
        check_overlay(out / "overlay" / f"{stem}.png", shown(photos / name), label)
        found[np.unique(label)] += 1
    line, = [line for line in proc.stdout.splitlines() if line.startswith("predicted")]
    classes = load_model(model, "segmentation")[1]["classes"]
    for c in range(1, 6):   # the summary names each class found, with the number of images whose labels hold it
        assert (f"{classes[c]} in {found[c]}" in line) == bool(found[c]), line
    assert line.endswith("found only background: none of the model's 5 classes (" + ", ".join(classes[1:]) + ") in "
                         f"any of the {len(SIZES)} images") == (found[1:].sum() == 0), line
    assert json.loads((out / "predict.json").read_text())["classes"] == classes   # what each PNG value is


def voc_colour(value):
    """The VOC palette's colour of a label value, as VOC's devkit (labelcolormap) computes it: the value's bits
    spread over the three channels, the first three in each channel's highest bit."""
    rgb = [0, 0, 0]
    for shift in range(8):
        for channel in range(3):
            rgb[channel] |= ((value >> (3 * shift + channel)) & 1) << (7 - shift)
    return tuple(rgb)


def test_the_summary_gives_the_colour_of_each_class_found():
    """The label PNGs and overlays are in the VOC colours, with no key but predict.json's names: the summary now
    gives each found class's value and colour (the model's values: 'sign' is 9, not its rank among those found)."""
    classes = ["background", "Cow", "Traffic", "aeroplane", "bicycle", "bird", "car", "flower", "sheep", "sign"]
    assert voc_colour(1) == (128, 0, 0) and voc_colour(8) == (64, 0, 0)
    line = legend_line({"Cow": 7, "sign": 1}, classes, "preds")
    assert line == f"legend (label value, class, colour): 1 Cow rgb{voc_colour(1)}; 9 sign rgb{voc_colour(9)}; " \
        "overlays in preds/overlay"


def test_the_summary_says_which_classes_were_found():
    classes = ["background", "Kuh", "grass", "cat"]
    assert found_line({}, 7, classes) == "found only background: none of the model's 3 classes (Kuh, grass, cat) in " \
        "any of the 7 images"
    assert found_line({"Kuh": 3, "grass": 5}, 7, classes) == "found Kuh in 3 and grass in 5 of the 7 images (not " \
        "found: cat)"
    assert found_line({"Kuh": 1}, 1, classes) == "found Kuh in the image (not found: grass, cat)"
    assert found_line(dict.fromkeys(classes[1:], 1), 1, classes) == "found Kuh, grass and cat in the image"
    assert found_line({}, 2, classes[:2]) == "found only background: not the model's class (Kuh) in any of the 2 images"


def expected_labels(model_path, path, size, mode="fullscale", net_size=None, image=None):
    """Labels computed here step by step: fit/pad to size (the canvas resized to net_size), forward, back to the
    image frame, softmax. image: the pixels to use instead of the file's."""
    net, _ = load_model(model_path, "segmentation")
    image = shown(path) if image is None else image
    x, offset, inner = fit_input(image, size, mode, net_size)
    with torch.inference_mode():
        scores = net.eval()(torch.from_numpy(to_caffe_input(x))[None])[0]
    canvas = (size, size) if mode == "canvas" else x.shape[:2]
    probs = torch.softmax(unfit(scores, canvas, offset, inner, image.shape[:2]), 0).numpy()
    crf = dense_crf(image, -np.log(np.clip(probs, 1e-8, 1)), "deeplab").argmax(0)
    return probs.argmax(0), crf


@pytest.mark.parametrize("pcrf,resize", [("none", "fullscale"), ("deeplab", "fullscale"), ("none", "none")])
def test_crf_on_and_off(varied_model, photos, tmp_path, pcrf, resize):
    files = [photos / "photo.jpg", photos / "turned.jpg"]
    summary = predict(varied_model, files, tmp_path, size=64, pcrf=pcrf, resize=resize, net_size=48)
    assert summary["images"] == 2 and summary["classes"][0] == "background" and not summary["skipped_images"]
    for path in files:
        mode = "canvas" if resize == "none" else resize           # none: the release's canvas, resized to 48
        without_crf, with_crf = expected_labels(varied_model, path, 64, mode, 48)
        assert len(np.unique(without_crf)) > 1 and np.mean(with_crf != without_crf) > 0.02   # a real test
        got = np.asarray(Image.open(tmp_path / f"{path.stem}.png"))
        expected = without_crf if pcrf == "none" else with_crf
        assert got.shape == expected.shape and np.mean(got == expected) > 0.995   # batch vs single forward
        check_overlay(tmp_path / "overlay" / f"{path.stem}.png", shown(path), got)


def test_tight_tests_each_image_in_a_canvas_of_its_own_shape(varied_model, photos, tmp_path):
    """test_resize tight: the longer side to --size 40 and a bottom/right pad to sides 32k + 1, so the landscape photo
    (50 x 70 -> 28 x 40) and the portrait one (36 x 20 -> 40 x 22) get canvases 33 x 65 and 65 x 33 (no batch could
    stack them); each label map, CRF included, is exactly the one computed step by step from its own canvas."""
    files = [photos / "photo.jpg", photos / "turned.jpg"]
    predict(varied_model, files, tmp_path, size=40, pcrf="deeplab", resize="tight")
    for path, canvas in zip(files, [(33, 65), (65, 33)]):
        assert fit_input(shown(path), 40, "tight")[0].shape[:2] == canvas
        expected = expected_labels(varied_model, path, 40, "tight")[1]
        got = np.asarray(Image.open(tmp_path / f"{path.stem}.png"))
        assert len(np.unique(expected)) > 1 and np.array_equal(got, expected)


def test_a_photo_larger_than_max_side_is_segmented_shrunk_and_labelled_at_its_own_size(varied_model, photos, tmp_path):
    """max_side 35: the 50 x 70 photo is segmented at 25 x 35 and the turned one (36 x 20 as shown) at 35 x 19, CRF
    included; the labels written have the photos' own sizes, each pixel the label of its nearest shrunk pixel."""
    files = [photos / "photo.jpg", photos / "turned.jpg"]
    predict(varied_model, files, tmp_path, size=40, pcrf="deeplab", resize="tight", max_side=35)
    for path, work in zip(files, [(25, 35), (35, 19)]):
        h, w = SIZES[path.name]
        shrunk = expected_labels(varied_model, path, 40, "tight", image=load_image(path, work))[1]
        assert shrunk.shape == work and len(np.unique(shrunk)) > 1
        rows = ((np.arange(h) + 0.5) * work[0] / h).astype(int)   # nearest: the shrunk pixel under each centre
        cols = ((np.arange(w) + 0.5) * work[1] / w).astype(int)
        got = np.asarray(Image.open(tmp_path / f"{path.stem}.png"))
        assert np.array_equal(got, shrunk[rows][:, cols])
        check_overlay(tmp_path / "overlay" / f"{path.stem}.png", shown(path), got)


def test_a_list_file_names_images_from_its_own_folder(model, photos, tmp_path):
    """--list: one path per line, relative ones from the list's folder (run from elsewhere), CRLF, a byte-order
    mark, blank and # lines passed over; the images it names are predicted beside one named on the command line."""
    listing = photos.parent / "some.txt"
    listing.write_bytes(b"\xef\xbb\xbf# a comment\r\n" + f"{photos.name}/photo.jpg\r\n\r\n  {photos / 'grey.png'}  \r\n"
                        .encode())
    out = tmp_path / "preds"
    proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(photos / "alpha.png"), "--list",
                           str(listing), "--model", str(model), "--out_dir", str(out), "--config", "smoke"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.glob("*.png")) == ["alpha.png", "grey.png", "photo.png"]
    assert "predicted 3 images" in proc.stdout


@pytest.mark.parametrize("lines, problem", [
    (None, "--list {list}: not found; name a text file of image paths, one per line"),
    ("# only a comment\n\n", "--list {list}: names no image; give one path per line"),
    ("{photos}/photo.jpg\nnone.jpg\n", "{list} line 2: {tmp}/none.jpg not found; correct the line or remove it"),
])
def test_a_list_that_names_nothing_readable_is_one_error_before_the_model_is_read(photos, tmp_path, lines, problem):
    listing = tmp_path / "list.txt"
    if lines:
        listing.write_text(lines.format(photos=photos))
    proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), "--list", str(listing), "--model",
                           str(tmp_path / "none.pth"), "--out_dir", str(tmp_path / "o")], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr == "error: " + problem.format(list=listing, tmp=tmp_path) + "\n"
    assert not (tmp_path / "o").exists()


def test_paths_given_empty_are_one_error_each(photos, tmp_path):
    """--out_dir "$OUT" with OUT unset wrote the predictions into the current folder, and --model "" looked for
    model.pth there: an unset variable is told as such, before anything is read or written."""
    proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(photos), "", "--model", "",
                           "--out_dir", " ", "--config", ""], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr == "".join(
        f"error: {what}: is empty (an unset variable?); write the path\n"
        for what in ("--model", "--out_dir", "--config", "an input"))
    assert not any(tmp_path.iterdir())


def test_no_images_named_is_one_error(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), "--model", str(tmp_path / "m.pth"),
                           "--out_dir", str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error: name image files or folders of images, or --list")


def test_an_out_dir_holding_the_input_images_is_refused(model, photos, tmp_path):
    """The probe's case: --out_dir equal to the photos' folder overwrote the PNG photos with label maps."""
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(photos), "--model", str(model),
                           "--out_dir", str(photos), "--config", "smoke"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert f"--out_dir {photos}: a folder of input images; choose a folder that holds none of them" in proc.stderr
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before


def test_a_file_as_out_dir_is_one_line_naming_that_file_and_the_flag(model, photos, tmp_path):
    """The probe's case: the message named the label file to be written inside it, and --out_root, which predict
    does not have."""
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(photos), "--model", str(model),
                           "--out_dir", str(blocker), "--config", "smoke"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"error: {blocker}: ") and proc.stderr.strip().endswith(
        "a file stands where a folder is needed; move it away or choose another output folder (--out_dir)")


def test_a_link_to_nothing_as_out_dir_is_told_as_such(model, photos, tmp_path):
    """A probe's: --out_dir a link to a folder since removed was told 'a file stands where a folder is needed'."""
    link = tmp_path / "preds"
    link.symlink_to(tmp_path / "gone")
    proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(photos), "--model", str(model),
                           "--out_dir", str(link / "sub"), "--config", "smoke"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 2 and proc.stderr == (
        f"error: {link}: a link to {tmp_path / 'gone'}, which is not there; create that folder, or point the link at "
        "one, or choose another output folder (--out_dir)\n")


def test_predict_under_torchrun_is_one_line(model, photos, tmp_path):
    """Each of torchrun's processes predicted every image, one after another (the folder's lock): no gain, and no
    word on why; it is refused before any work."""
    proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(photos), "--model", str(model),
                           "--out_dir", str(tmp_path / "preds"), "--config", "smoke"], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, TORCHELASTIC_RUN_ID="launch", WORLD_SIZE="2", RANK="0"))
    assert proc.returncode == 2 and proc.stderr == "error: ./src/predict.py under torchrun: it runs in one process; " \
        "run it without torchrun (on a GPU of your choice: --device cuda:N)\n"
    assert not (tmp_path / "preds").exists()


@pytest.mark.parametrize("flag, value, problem", [("--size", "-5", "must be at least 16"),
                                                  ("--size", "0", "must be at least 16"),
                                                  ("--size", "3", "must be at least 16"),
                                                  ("--input_size", "-5", "must be at least 16"),
                                                  ("--input_size", "15", "must be at least 16"),
                                                  ("--max_side", "8", "must be 0 or at least 16"),
                                                  ("--alpha", "nan", "must be within 0..1"),
                                                  ("--alpha", "7", "must be within 0..1")])
def test_out_of_range_flags_are_refused_before_any_work(flag, value, problem, capsys):
    """predict's own flags are checked as settings are (a negative --size ended in a torch traceback, --alpha nan
    wrote nonsense overlays, --size 0 fell back to the preset's size without a word, and --input_size 3 gave every
    pixel one class)."""
    from guidedlabelling.prediction import parse
    with pytest.raises(SystemExit) as e:
        parse(["photo.jpg", "--model", "m.pth", "--out_dir", "out", flag, value])
    assert e.value.code == 2
    assert capsys.readouterr().err == f"error: argument {flag}: {value}: {problem}; see ./src/predict.py -h\n"


def test_a_file_named_alone_and_in_its_folder_is_predicted_once(tmp_path):
    from guidedlabelling.datasets import ImageFiles
    for name in ("a.png", "b.jpg"):
        Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / name)
    files = ImageFiles([tmp_path, tmp_path / "a.png", str(tmp_path / "." / "b.jpg")])
    assert [it.id for it in files.items] == ["a", "b"]


def test_a_link_to_a_device_or_a_pipe_is_told_as_such_not_as_a_link_to_nothing(tmp_path):
    """b.png a link to /dev/null was skipped as 'a link to /dev/null, which does not exist', and a folder whose only
    image name was a named pipe was 'a link to nothing' (a review)."""
    from guidedlabelling.datasets import ImageFiles
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").symlink_to(os.devnull)
    (tmp_path / "c.png").symlink_to(tmp_path / "nowhere.png")
    files = ImageFiles([tmp_path])
    assert files.skipped == {
        str(tmp_path / "b.png"): f"a link to {os.devnull}, a named pipe, a socket or a device, not a file; put the "
                                 "image in its place, or remove it",
        str(tmp_path / "c.png"): f"a link to {tmp_path / 'nowhere.png'}, which does not exist; mend the link, or "
                                 "remove it"}
    piped = tmp_path / "piped"
    piped.mkdir()
    os.mkfifo(piped / "d.jpg")
    with pytest.raises(InputError) as e:
        ImageFiles([piped])
    assert list(e.value.messages) == [f"{piped / 'd.jpg'}: a named pipe, a socket or a device, not a file; no .jpg, "
                                      ".jpeg or .png of the folders named is a file: name image files"]


def test_a_file_of_another_format_named_with_its_folder_is_read_and_not_noted(tmp_path):
    """scan.tif named beside its folder is predicted, and so not in the note of files left out; the folder's
    other .bmp is."""
    from guidedlabelling.datasets import ImageFiles
    for name in ("a.png", "scan.tif", "other.bmp"):
        Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / name)
    files = ImageFiles([tmp_path, tmp_path / "scan.tif"])
    assert [it.id for it in files.items] == ["a", "scan"] and files.ignored == [tmp_path / "other.bmp"]


def test_the_test_geometry_defaults_to_the_preset_that_trained_the_model(model, varied_model, photos, tmp_path):
    """A segmenter's checkpoint names the preset of the run that trained it (smoke here); without --config, predict
    tests with that preset's geometry (the same files as --config smoke, no note). Another --config, or a
    checkpoint that names no preset (demo's geometry then), is noted in one line."""
    def predict(path, name, *extra):
        proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(photos / "photo.jpg"), "--model",
                               str(path), "--out_dir", str(tmp_path / name), *extra], cwd=ROOT, capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout, (tmp_path / name / "photo.png").read_bytes()
    assert torch.load(model, weights_only=True)["meta"]["preset"] == "smoke"
    implicit, explicit = predict(model, "implicit"), predict(model, "explicit", "--config", "smoke")
    assert "note:" not in implicit[0] + explicit[0] and implicit[1] == explicit[1]
    other, _ = predict(model, "other", "--config", "demo")
    assert "note: the model was trained by a run of preset smoke; --config demo gives it that preset's test " \
           "geometry\n" in other
    older, _ = predict(varied_model, "older")
    assert "note: the model records no preset (trained before it did): the test geometry is demo's" in older


def test_the_preset_a_checkpoint_names_is_the_presets_file_whatever_the_current_folder_holds(tmp_path, monkeypatch):
    from guidedlabelling.config import CONFIGS
    from guidedlabelling.prediction import test_preset
    monkeypatch.chdir(tmp_path)
    (tmp_path / "msrc").write_text("not the preset")   # was read as the preset: 'msrc: ... not a mapping'
    assert test_preset({"preset": "msrc"}) == (str(CONFIGS / "msrc.yaml"), None)


def test_a_rerun_resumes_and_other_settings_predict_again(model, photos, tmp_path):
    """predict.json records the model and settings: the same command again predicts only the images whose
    outputs are missing (as after an interrupt) or damaged since (of another size than it recorded), to the same
    files, and draws a missing overlay from its labels; another setting predicts all, but --alpha, which draws the
    overlays again."""
    out = tmp_path / "preds"

    def predict(*extra):
        proc = run_predict(photos, model, out, *extra)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    assert "by an earlier run" not in predict()
    first = {p.name: p.read_bytes() for p in out.glob("*.png")}
    overlays = {p.name: p.read_bytes() for p in (out / "overlay").glob("*.png")}
    (out / "grey.png").unlink()
    (out / "overlay" / "photo.png").unlink()
    (out / "turned.png").write_bytes(b"")   # emptied
    assert f"predicted {len(SIZES)} images, {len(SIZES) - 3} of them by an earlier run, 1 from the labels of an " \
        "earlier run (their overlays drawn again)" in predict()
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == first
    assert {p.name: p.read_bytes() for p in (out / "overlay").glob("*.png")} == overlays   # photo's drawn alike
    assert f"{len(SIZES)} images, all predicted by an earlier run with these settings" in predict()
    record = json.loads((out / "predict.json").read_text())
    del record["outputs"]   # as a version before it recorded them wrote it (or a run killed before the end)
    save_json(out / "predict.json", record)
    (out / "photo.png").write_bytes((out / "photo.png").read_bytes()[:-20])   # cut: no size to compare, checked
    assert f"predicted {len(SIZES)} images, {len(SIZES) - 1} of them by an earlier run" in predict()
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == first
    assert f"{len(SIZES)} images, all predicted by an earlier run with these settings; {len(SIZES)} overlays drawn " \
        "again from their labels" in predict("--alpha", "0.3")
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == first   # the labels stand
    assert json.loads((out / "predict.json").read_text())["alpha"] == 0.3
    label = np.asarray(Image.open(out / "photo.png"))
    image = shown(photos / "photo.jpg")
    expected = np.where(label[..., None] > 0, np.round(0.7 * image + 0.3 * PALETTE[label]).astype(np.uint8), image)
    assert np.abs(np.asarray(Image.open(out / "overlay" / "photo.png")).astype(int) - expected).max() <= 1
    out_text = predict("--size", "96")   # another setting: every image again, said
    assert "by an earlier run" not in out_text and f"note: {out} held predictions made with other settings (size " \
        "64 there, 96 here); they are made again with these" in out_text, out_text


def test_a_rerun_counts_the_classes_found_from_the_record_not_by_decoding_every_label(model, photos, tmp_path):
    """predict.json keeps each label PNG's class values (a 12-megapixel label took 0.1 s to decode and count): a
    rerun's line comes from them; a record without them (an earlier version's) has them counted from the labels."""
    out = tmp_path / "preds"
    first = run_predict(photos, model, out)
    record = json.loads((out / "predict.json").read_text())
    labels = {p.stem: np.unique(np.asarray(Image.open(p))).tolist() for p in out.glob("*.png")}
    assert record["found"] == labels
    line = [line for line in first.stdout.splitlines() if line.startswith("predicted")][0].split("; ")[-1]
    del record["found"]
    save_json(out / "predict.json", record)
    assert line in run_predict(photos, model, out).stdout   # counted from the labels again
    assert json.loads((out / "predict.json").read_text())["found"] == labels
    record["found"] = {i: [0] for i in labels} | {"grey": [0, 1]}   # not what the labels hold: the record is read
    save_json(out / "predict.json", record)
    classes = load_model(model, "segmentation")[1]["classes"]
    assert f"found {classes[1]} in 1 of the {len(SIZES)} images" in run_predict(photos, model, out).stdout


def test_a_rerun_of_a_finished_out_dir_writes_nothing(model, photos, tmp_path):
    """A rerun with nothing to do rewrote predict.json with the same record: on a finished folder read-only to this
    user (a shared disk) it stopped with 'predict.json: Read-only file system' (a probe), where a stage's is read."""
    out = tmp_path / "preds"
    assert run_predict(photos, model, out).returncode == 0
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*")}
    again = run_predict(photos, model, out)
    assert again.returncode == 0 and f"{len(SIZES)} images, all predicted by an earlier run" in again.stdout
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*")} == before


@pytest.mark.parametrize("key, entry", [("found", None), ("found", 3), ("found", [0, -1]), ("found", [0, True]),
                                        ("found", [0, 7]), ("found", [0, 1.0]), ("found", "x"), ("found", [2, 1]),
                                        ("outputs", None), ("outputs", "ab")])
def test_a_record_entry_edited_into_another_form_is_made_again_not_trusted(model, photos, tmp_path, key, entry):
    """An entry of predict.json's "found" or "outputs" that is not of the form predict writes (edited by hand,
    damaged) is no traceback and no wrong count (null counted the image in every class, -1 in the last): its
    labels are decoded again, its outputs checked again. The whole key of another form too."""
    out = tmp_path / "preds"
    summary = predict(model, [photos], out, size=64)
    record = json.loads((out / "predict.json").read_text())
    for edited in ({**record[key], "photo": entry}, [entry]):
        save_json(out / "predict.json", record | {key: edited})
        again = predict(model, [photos], out, size=64)
        assert again["found"] == summary["found"] and again["done_before"] == len(SIZES)
        assert json.loads((out / "predict.json").read_text())[key] == record[key]


def test_a_label_damaged_in_place_keeping_its_size_and_time_is_predicted_again(model, photos, tmp_path):
    """A byte flipped inside a label PNG keeps its size (the record's check) and, put back, its modification time:
    it changed after predict.json was written, so its checksums are verified, and it is made again; a later --alpha
    redraws every overlay from whole labels."""
    out = tmp_path / "preds"
    predict(model, [photos], out, size=64)
    label = out / "photo.png"
    whole, st = label.read_bytes(), label.stat()
    damaged = bytearray(whole)
    damaged[len(damaged) // 2] ^= 0xFF
    label.write_bytes(bytes(damaged))
    os.utime(label, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert predict(model, [photos], out, size=64)["done_before"] == len(SIZES) - 1
    assert label.read_bytes() == whole
    assert predict(model, [photos], out, size=64, alpha=0.3)["redrawn"] == len(SIZES)


def test_a_photo_replaced_by_one_of_the_same_size_and_time_is_predicted_again(model, tmp_path):
    """cp -p or tar -x of another photo of the same byte size (uncompressed PNGs of one shape) keeps the size and
    the modification time: the inode or change time tells the file changed, and its outputs are made again."""
    folder, out = tmp_path / "photos", tmp_path / "preds"
    folder.mkdir()
    first, second = (np.full((40, 48, 3), v, np.uint8) for v in (30, 220))
    second[10:30, 10:30] = (200, 20, 20)
    Image.fromarray(first).save(folder / "a.png", compress_level=0)
    predict(model, [folder], out, size=64)
    st = (folder / "a.png").stat()
    Image.fromarray(second).save(tmp_path / "b.png", compress_level=0)
    assert (tmp_path / "b.png").stat().st_size == st.st_size
    os.utime(tmp_path / "b.png", ns=(st.st_atime_ns, st.st_mtime_ns))
    (tmp_path / "b.png").replace(folder / "a.png")
    again = predict(model, [folder], out, size=64)
    assert again["done_before"] == 0
    assert json.loads((out / "predict.json").read_text())["images"]["a"]["digest"] == file_digest(folder / "a.png")
    assert np.asarray(Image.open(out / "overlay" / "a.png"))[0, 0].tolist() != [30, 30, 30]   # not a's


def test_an_image_replaced_since_its_outputs_were_made_is_predicted_again(model, photos, tmp_path):
    """A camera that reuses names: the outputs of the former photo are not kept for the new one; an interrupted
    run leaves none of the former settings' outputs to be taken as done."""
    folder, out, other = tmp_path / "photos", tmp_path / "preds", tmp_path / "other"
    shutil.copytree(photos, folder)

    def predict(*extra, inputs=folder):
        proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(inputs), "--model", str(model),
                               "--out_dir", str(out), "--config", "smoke", *extra], cwd=ROOT, capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    predict()
    with Image.open(folder / "grey.png") as grey:
        Image.fromarray(np.zeros((grey.height * 2, grey.width, 3), np.uint8)).save(folder / "grey.png")
    assert f"predicted {len(SIZES)} images, {len(SIZES) - 1} of them by an earlier run" in predict()
    with Image.open(out / "grey.png") as label, Image.open(folder / "grey.png") as grey:
        assert label.size == grey.size   # the new photo's, not the former's
    os.utime(folder / "photo.jpg", ns=(1, 1))   # touched, the same bytes: its digest decides, nothing to redo
    assert f"{len(SIZES)} images, all predicted by an earlier run" in predict()
    (folder / "alpha.png").write_bytes(b"a truncated replacement")   # no longer decodes: no former outputs stay
    assert f"  {folder / 'alpha.png'}: " in predict()   # among the skipped
    assert not (out / "alpha.png").exists() and not (out / "overlay" / "alpha.png").exists()
    kept = (out / "photo.png").read_bytes()
    other.mkdir()
    shutil.copy(photos / "photo.jpg", other / "zz.jpg")
    assert "predicted 1 image " in predict(inputs=other) and (out / "zz.png").exists()   # the same out_dir
    settings = json.loads((out / "predict.json").read_text())
    del settings["images"], settings["outputs"]
    with pytest.raises(InputError, match=r"preds: holds predictions of 1 other image made with other settings "
                                         r"\(zz\); choose another --out_dir, name those images too"):
        images_to_do(ImageFiles([folder]), out, settings | {"size": 999})   # they would be lost
    assert (out / "zz.png").exists() and (out / "photo.png").exists()
    images = ImageFiles([folder, other])
    assert images_to_do(images, out, settings | {"size": 999}) == list(range(len(images)))   # as if interrupted
    assert not (out / "photo.png").exists() and not (out / "overlay" / "photo.png").exists()
    assert not (out / "zz.png").exists()   # no output of the former settings stays to be taken as done
    assert "by an earlier run" not in predict("--alpha", "0.3")
    assert (out / "photo.png").read_bytes() == kept   # the labels do not depend on alpha


def test_another_image_of_a_name_predicted_into_the_same_out_dir_is_refused(model, photos, tmp_path):
    """Two folders, each with its own a.jpg, predicted in turn into one --out_dir: the second replaced the first's
    outputs without a word (a probe). The same photo in a folder moved since is the same image."""
    first, second, out = tmp_path / "first", tmp_path / "second", tmp_path / "preds"
    for folder, source in ((first, "photo.jpg"), (second, "turned.jpg")):
        folder.mkdir()
        shutil.copy(photos / source, folder / "a.jpg")

    def predict(inputs, *extra, out=out):
        return subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(inputs), "--model", str(model),
                               "--out_dir", str(out), "--config", "smoke", *extra], cwd=ROOT, capture_output=True,
                              text=True)
    assert predict(first).returncode == 0
    made = (out / "a.png").read_bytes()
    proc = predict(second)
    assert proc.returncode == 2 and proc.stderr == f"error: --out_dir {out}: holds predictions of other files of " \
        f"the names of 1 image named here ({first / 'a.jpg'}, now {second / 'a.jpg'}); choose another --out_dir, " \
        "or rename them\n", proc.stderr
    assert (out / "a.png").read_bytes() == made
    proc = predict(second, "--size", "96")   # other settings would replace them too
    assert proc.returncode == 2 and "holds predictions of other files of the names" in proc.stderr, proc.stderr
    proc = predict(second, "--alpha", "0.3")   # refused before another alpha's overlays are removed
    assert proc.returncode == 2 and (out / "overlay" / "a.png").exists(), proc.stderr
    assert (out / "a.png").read_bytes() == made
    first.rename(tmp_path / "moved")
    proc = predict(tmp_path / "moved")
    assert proc.returncode == 0 and "all predicted by an earlier run" in proc.stdout, proc.stderr
    (tmp_path / "latest.jpg").symlink_to(tmp_path / "moved" / "a.jpg")   # a link named, then pointed elsewhere
    assert predict(tmp_path / "latest.jpg", out=tmp_path / "linked").returncode == 0
    (tmp_path / "latest.jpg").unlink()
    (tmp_path / "latest.jpg").symlink_to(second / "a.jpg")
    proc = predict(tmp_path / "latest.jpg", out=tmp_path / "linked")
    assert proc.returncode == 0 and "predicted 1 image " in proc.stdout, proc.stderr   # its file changed


def test_an_error_of_a_file_is_told_apart_from_one_of_the_out_dir(tmp_path):
    """An input folder it may not read was told to 'choose another output folder (--out_dir)' (a probe)."""
    out = tmp_path / "preds"
    assert written(OSError(13, "Permission denied", str(out / "a.png")), out)
    assert written(OSError(13, "Permission denied", str(tmp_path)), out)   # its parent, where out_dir is made
    assert written(OSError(28, "No space left on device"), out)
    assert not written(OSError(13, "Permission denied", str(tmp_path / "photos")), out)


def test_an_image_pillow_warns_of_is_predicted_and_named_with_its_warning(model, tmp_path):
    """A palette PNG with its transparency given as bytes (as GIF converters write) is predicted; Pillow's warning on
    it comes once, naming the file, not as Pillow's own line."""
    folder = tmp_path / "gifs"
    folder.mkdir()
    palette = Image.fromarray(np.arange(40 * 30).reshape(30, 40).astype(np.uint8) % 3, "P")
    palette.putpalette([235, 140, 40, 30, 200, 30, 30, 30, 200])
    palette.save(folder / "logo.png", transparency=bytes([0, 128, 255]))
    proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(folder), "--model", str(model),
                           "--out_dir", str(tmp_path / "out"), "--config", "smoke"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    warning = "Palette images with Transparency expressed in bytes should be converted to RGBA images"
    assert f"1 image decoded with warnings from Pillow and used as decoded (re-save a file to silence it):\n" \
        f"  {folder / 'logo.png'}: {warning}" in proc.stdout
    assert "UserWarning" not in proc.stdout + proc.stderr
    assert np.asarray(Image.open(tmp_path / "out" / "logo.png")).shape == (30, 40)


def test_other_files_of_a_folder_are_noted_and_a_link_to_nothing_is_skipped(model, photos, tmp_path):
    """A folder's files that are not .jpg/.jpeg/.png, and its folders, are named in a note (not silently left out), a
    .jpg that is a link to nothing is a counted skip, not an error; every name clash is reported, not only the
    first."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("photo.jpg", "grey.png"):
        shutil.copy(photos / name, folder / name)
    Image.open(photos / "photo.jpg").save(folder / "scan.bmp")
    (folder / "trip" / "day2").mkdir(parents=True)   # folders inside: named in a note, not read
    shutil.copy(photos / "photo.jpg", folder / "trip" / "inner.jpg")
    (folder / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(folder), "--model", str(model),
                           "--out_dir", str(tmp_path / "out"), "--config", "smoke"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert "note: 1 file of the folders named is not .jpg, .jpeg or .png and was not predicted " \
           f"({folder / 'scan.bmp'})" in proc.stdout
    assert "predicted 2 images" in proc.stdout
    assert f"note: 1 folder inside the folders named was not read ({folder / 'trip'}); name them too" in proc.stdout
    assert f"skipped 1 unreadable image:\n  {folder / 'gone.jpg'}: a link to {tmp_path / 'nowhere.jpg'}, which does " \
        "not exist; mend the link, or remove it" in proc.stdout
    shutil.copy(photos / "photo.jpg", folder / "photo.png")  # two clashes: photo, grey
    shutil.copy(photos / "grey.png", folder / "grey.jpg")
    proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(folder), "--model", str(model),
                           "--out_dir", str(tmp_path / "out2"), "--config", "smoke"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 2 and proc.stderr.count("same name as") == 2, proc.stderr


def test_predict_reports_its_progress_on_the_images_it_predicts(model, photos, tmp_path):
    """A folder of thousands of photos was predicted for many minutes without a line (a probe), and its overlays
    drawn again for another --alpha too: their progress comes on stderr as the stages' does (progress.py; a plain line
    where stderr is no terminal), counting this run's images."""
    out = tmp_path / "preds"

    def predict(*extra):
        proc = run_predict(photos, model, out, *extra)
        assert proc.returncode == 0, proc.stderr
        return proc.stderr
    assert f"predict: {len(SIZES)}/{len(SIZES)} (100%)" in predict()
    (out / "grey.png").unlink()
    assert "predict: 1/1 (100%)" in predict()
    assert "predict:" not in predict()   # nothing left to do
    said = predict("--alpha", "0.3")   # every overlay drawn again from its labels (3000: minutes), no network
    assert f"overlays: {len(SIZES)}/{len(SIZES)} (100%)" in said and "predict:" not in said


def test_the_temporary_files_of_a_killed_predict_are_removed_by_the_next(model, photos, tmp_path):
    """A predict killed (kill -9) while it wrote an overlay left its temporary file in overlay/ for good, as large as
    the overlay (a probe); the stages remove theirs (runner.remove_temporary). The next predict removes them."""
    out = tmp_path / "preds"

    def predict():
        proc = run_predict(photos, model, out)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    predict()
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    (out / "photo.png").unlink()   # killed while its outputs were written: as io.atomic_path names its files
    for left in (out / ".photo.png.k2l3m4n5.tmp.png", out / "overlay" / ".photo.png.a1b2c3d4.tmp.png",
                 out / ".predict.json.q9w8e7r6.tmp.json"):
        left.write_bytes(b"\x89PNG half")
    assert f"predicted {len(SIZES)} images, {len(SIZES) - 1} of them by an earlier run" in predict()
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == made


def test_a_link_to_nothing_of_a_readable_images_name_leaves_its_outputs_done(model, photos, tmp_path):
    """a.jpg, a link to nothing, beside a.png: the skipped link's name made a.png's outputs stale, removed and
    predicted again on every rerun (a probe). A rerun finds it done and leaves its outputs as they were."""
    folder, out = tmp_path / "photos", tmp_path / "preds"
    folder.mkdir()
    shutil.copy(photos / "grey.png", folder / "a.png")
    shutil.copy(photos / "photo.jpg", folder / "b.jpg")
    (folder / "a.jpg").symlink_to(tmp_path / "nowhere.jpg")

    def predict():
        proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(folder), "--model", str(model),
                               "--out_dir", str(out), "--config", "smoke"], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert f"skipped 1 unreadable image:\n  {folder / 'a.jpg'}: a link to {tmp_path / 'nowhere.jpg'}, which " \
            "does not exist; mend the link, or remove it" in proc.stdout
        return proc.stdout
    assert "predicted 2 images into" in predict()
    made = {path: path.stat().st_mtime_ns for path in (out / "a.png", out / "overlay" / "a.png")}
    assert "2 images, all predicted by an earlier run with these settings" in predict()
    assert {path: path.stat().st_mtime_ns for path in made} == made   # not written again


def test_a_checkpoint_of_another_kind_is_one_error_without_a_note(photos, tmp_path):
    """A saliency network's model.pth: predict says what it is, and no note about its preset comes first."""
    path = tmp_path / "saliency" / "model.pth"
    save_checkpoint(path, build_seg_net("DeepLab-LargeFOV", 2, 1 / 16),
                    {"kind": "saliency", "net": "DeepLab-LargeFOV", "width": 1 / 16, "classes": ["bg", "salient"]})
    proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(photos), "--model", str(path),
                           "--out_dir", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == (f"error: {path}: checkpoint is for kind='saliency' (a saliency network "
                                   "DeepLab-LargeFOV, width 0.0625), not kind='segmentation' as asked; pass a "
                                   "model.pth of ./src/segmentation/train.py")


def test_a_preset_that_does_not_exist_is_one_error_without_a_note(photos, tmp_path):
    """A model trained by a run of demo, given --config nope: no note that nope's geometry replaces demo's first."""
    path = tmp_path / "model.pth"
    save_checkpoint(path, build_seg_net("DeepLab-LargeFOV", 6, 1 / 16),
                    {"kind": "segmentation", "net": "DeepLab-LargeFOV", "width": 1 / 16, "preset": "demo",
                     "classes": ["background", "a", "b", "c", "d", "e"]})
    proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(photos), "--model", str(path),
                           "--out_dir", str(tmp_path / "out"), "--config", "nope"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.startswith("error: nope"), proc.stderr


def test_files_that_predict_did_not_make_are_left_alone(model, photos, tmp_path):
    """A folder of someone else's files is refused (their x.png was overwritten, and deleted where x.jpg no longer
    decoded); in predict's own folder, a file of an image it has not recorded is refused too (taken as done)."""
    out = tmp_path / "preds"
    out.mkdir()
    (out / "keep.png").write_bytes(b"mine")

    def predict(inputs, *extra, out=out):
        return subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(inputs), "--model", str(model),
                               "--out_dir", str(out), "--config", "smoke", *extra], cwd=ROOT, capture_output=True,
                              text=True)
    proc = predict(photos / "photo.jpg")
    assert proc.returncode == 2 and proc.stderr.strip() == (f"error: --out_dir {out}: holds files that predict did "
                                                            "not make (keep.png); choose an empty or new folder")
    assert sorted(p.name for p in out.iterdir()) == ["keep.png"]   # no lock file of predict's left there
    (out / "keep.png").unlink()
    assert predict(photos / "photo.jpg").returncode == 0 and (out / "photo.png").exists()
    (out / "grey.png").write_bytes(b"mine")
    proc = predict(photos / "grey.png")
    assert proc.returncode == 2 and "holds grey.png, which predict did not make" in proc.stderr
    assert (out / "grey.png").read_bytes() == b"mine"


@pytest.mark.parametrize("record", [None, "settings only", "digests as text"])
def test_a_folder_an_earlier_predict_made_is_predicted_again(model, photos, tmp_path, record):
    """Before predict.json, before it listed the images, and while it listed their digests as text: the folder's
    label PNGs and overlays are an earlier predict's, of unknown settings; and an interrupted run's record names
    images it never wrote, which do not stop a run of other settings."""
    out = tmp_path / "preds"
    (out / "overlay").mkdir(parents=True)
    for name in ("photo", "grey"):
        (out / f"{name}.png").write_bytes(b"earlier")
        (out / "overlay" / f"{name}.png").write_bytes(b"earlier")
    settings = {"model": "x", "size": 64}
    if record is not None:
        save_json(out / "predict.json", settings | ({"images": {"photo": "d1", "grey": "d2"}}
                                                    if record == "digests as text" else {}))
    images = ImageFiles([photos / "photo.jpg", photos / "grey.png"])
    assert images_to_do(images, out, settings | {"size": 96}) == [0, 1]
    assert not list(out.glob("*.png")) and not list((out / "overlay").glob("*.png"))   # none taken as done
    images = ImageFiles([photos / "photo.jpg"])
    assert images_to_do(images, out, settings) == [0]   # grey recorded, never written: no refusal


def test_the_crop_size_a_model_was_trained_on_is_its_input_size(varied_model, photos, tmp_path):
    """A run that set seg_train.input_size: predict took the preset's, and its labels were not the run's."""
    checkpoint = torch.load(varied_model, weights_only=True)
    net = build_seg_net("DeepLab-LargeFOV", 6, 1 / 16)
    net.load_state_dict(checkpoint["model"])
    trained_at_48 = tmp_path / "model48.pth"
    save_checkpoint(trained_at_48, net, checkpoint["meta"] | {"preset": "smoke", "input_size": 48})

    def predict_(out, *extra):
        proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(photos / "photo.jpg"), "--model",
                               str(trained_at_48), "--out_dir", str(tmp_path / out), *extra], cwd=ROOT,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    said = predict_("told")
    assert "note: the model was trained on 48-px crops, not on the preset's 64: --input_size 48; --size stays " \
        "the preset's (64) unless given" in said
    assert "note:" not in predict_("given", "--input_size", "48")
    assert (tmp_path / "told" / "photo.png").read_bytes() == (tmp_path / "given" / "photo.png").read_bytes()
    assert "note: --input_size is the network's input side for --resize none; --resize tight reads --size instead" \
        in predict_("tight", "--input_size", "48", "--resize", "tight")
    assert "all predicted by an earlier run with these settings" in predict_("tight", "--resize", "tight")  # unread
    record = json.loads((tmp_path / "tight" / "predict.json").read_text())
    save_json(tmp_path / "tight" / "predict.json", record | {"net_size": 48})   # as recorded before it said so
    assert "all predicted by an earlier run with these settings" in predict_("tight", "--resize", "tight")


def test_a_model_trained_on_photos_shrunk_to_another_side_says_so(photos, tmp_path):
    """A run that set seg_train.max_side (README: raise it with segmentations.test_size for larger photos): predict
    tested its model at the preset's test size without a word."""
    train = subprocess.run([sys.executable, str(ROOT / "src/segmentation/train.py"), "--config", "smoke", "--labels",
                            "gt", "--max_side", "48", "--out_root", str(tmp_path / "runs")], cwd=ROOT,
                           capture_output=True, text=True)
    assert train.returncode == 0, train.stderr
    model = next((tmp_path / "runs").glob("smoke/seg_train/*/model.pth"))

    def predict_(out, *extra):
        proc = subprocess.run([sys.executable, str(ROOT / "src/predict.py"), str(photos / "photo.jpg"), "--model",
                               str(model), "--out_dir", str(tmp_path / out), *extra], cwd=ROOT, capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    assert "note: the model was trained on photos shrunk to seg_train.max_side 48, not the preset's 0 (0: never " \
        "shrunk): --size stays the preset's test size (64); pass --size with the segmentations.test_size of the " \
        "run that trained it" in predict_("told")
    assert "note:" not in predict_("given", "--size", "48")


def test_a_named_pipe_of_an_image_name_is_skipped_with_what_to_do(photos, tmp_path):
    """A folder's x.jpg that is no file nor link (a named pipe) is skipped with its fix, not called a link."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(photos / "photo.jpg", folder / "photo.jpg")
    os.mkfifo(folder / "pipe.jpg")
    assert ImageFiles([folder]).skipped[str(folder / "pipe.jpg")] == \
        "a named pipe, a socket or a device, not a file; put the image in its place, or remove it"


def test_a_folder_of_folders_of_images_names_them(photos, tmp_path):
    """A folder holding only folders of images is one error that says its folders are not read, naming one."""
    (tmp_path / "trips" / "day1").mkdir(parents=True)
    shutil.copy(photos / "photo.jpg", tmp_path / "trips" / "day1" / "a.jpg")
    with pytest.raises(InputError, match=f"trips: no .jpg, .jpeg or .png images in this folder \\(its folders are "
                                         f"not read: name them, such as {tmp_path / 'trips' / 'day1'}\\)"):
        ImageFiles([tmp_path / "trips"])
    assert [it.id for it in ImageFiles([tmp_path / "trips" / "day1"]).items] == ["a"]
    shutil.copy(photos / "photo.jpg", tmp_path / "trips" / "b.jpg")
    both = ImageFiles([tmp_path / "trips", tmp_path / "trips" / "day1"])   # the folder inside named too: no note
    assert sorted(it.id for it in both.items) == ["a", "b"] and both.subfolders == []


def test_a_training_folder_without_its_final_model_says_what_to_do(tmp_path):
    """--model_dir of a training that stopped midway said 'checkpoint not found; run the training stage first':
    now its snapshots are named, with the two ways on (resume it, or test the last snapshot)."""
    from guidedlabelling.inference import trained
    assert trained(tmp_path / "missing") == tmp_path / "missing" / "model.pth"   # no folder: its check says so
    with pytest.raises(InputError) as e:
        trained(tmp_path)
    assert e.value.messages == (f"{tmp_path / 'model.pth'}: no final model; pass the folder a training command wrote "
                                "(its model.pth)",)
    for i in (20, 100, 40):
        (tmp_path / f"snapshot_iter_{i}.pth").write_bytes(b"")
    with pytest.raises(InputError) as e:
        trained(tmp_path)
    assert e.value.messages == (f"{tmp_path / 'model.pth'}: no final model; the folder holds snapshots of a training "
                                "that stopped midway (iterations 20, 40, 100): rerun that training command with "
                                f"--out_dir {tmp_path} to resume it, or test a snapshot with --test_iter 100",)
    assert trained(tmp_path, 40) == tmp_path / "snapshot_iter_40.pth"


def test_memory_running_out_on_an_image_is_one_error_naming_it_and_max_side(varied_model, photos, tmp_path,
                                                                             monkeypatch):
    """A probe: --max_side 0 and the CRF on a 50-megapixel photo ran out of memory, told as the stages' generic line
    (test_size, input_size, batch_size: no file named, and batch_size is not predict's). It names the image, its
    size and --max_side; the images done before it are kept."""
    import guidedlabelling.prediction as prediction
    real = prediction.label_map

    def label_map(scores, image, *args):
        if image.shape[:2] == SIZES["grey.png"]:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")
        return real(scores, image, *args)
    monkeypatch.setattr(prediction, "label_map", label_map)
    with pytest.raises(InputError) as e:
        predict(varied_model, [photos], tmp_path / "preds", 64, pcrf="deeplab", max_side=0)
    assert list(e.value.messages) == [f"{photos / 'grey.png'}: out of memory segmenting it at 40x64 px (--max_side 0: "
                                "none); rerun with a smaller --max_side or --pcrf none (other settings: the images "
                                "done are predicted again)"]
    assert (tmp_path / "preds" / "alpha.png").is_file()   # predicted before grey.png, in the folder's order
    # the line said 'the images done are kept: rerun the same command to resume': that runs out again on grey.png,
    # and the smaller --max_side it advises is other settings, which predict every image again
    summary = predict(varied_model, [photos], tmp_path / "preds", 64, pcrf="deeplab", max_side=32)
    assert "max_side 0 there, 32 here" in summary["replaced"] and summary["done_before"] == 0


def test_memory_running_out_in_the_network_is_one_error_naming_predicts_flags(model, photos, tmp_path, monkeypatch):
    """A review: outside the CRF and the saving (memory_of), the network's pass ran out with the stages' line
    (test_size, batch_size, flags predict has not)."""
    import guidedlabelling.prediction as prediction
    monkeypatch.setattr(prediction.torch.nn.Module, "__call__", lambda *args, **kwargs: (_ for _ in ()).throw(
        RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")))
    with pytest.raises(InputError) as e:
        predict(model, [photos], tmp_path / "preds", 64, max_side=0)
    assert list(e.value.messages) == [f"out of memory in the network's pass over a batch of up to {prediction.BATCH} "
                                      "images at --size 64 (--max_side 0: none); rerun with a smaller --size or "
                                      "--max_side (other settings: the images done are predicted again)"]
    monkeypatch.setattr(prediction.torch.nn.Module, "__call__", lambda *args, **kwargs: (_ for _ in ()).throw(
        RuntimeError("mat1 and mat2 shapes cannot be multiplied")))
    with pytest.raises(RuntimeError, match="shapes cannot"):   # any other error is not said to be memory
        predict(model, [photos], tmp_path / "preds", 64, max_side=0)


def test_an_out_dir_inside_a_folder_named_is_not_noted_as_a_folder_to_predict(model, photos, tmp_path):
    """A probe: photos/preds, rerun, was noted as a folder inside the folders named, 'name them too to predict their
    images': predict's own outputs. A folder of the user's beside it is still noted."""
    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    (folder / "trip").mkdir()
    for _ in range(2):
        proc = run_predict(folder, model, folder / "preds")
        assert proc.returncode == 0, proc.stderr
    assert f"note: 1 folder inside the folders named was not read ({folder / 'trip'}); name them too" in proc.stdout
    named = (f"into {folder / 'preds'};", f"overlays in {folder / 'preds' / 'overlay'}")   # where its outputs are
    assert "preds" not in proc.stdout.replace(named[0], "").replace(named[1], "")


def test_outputs_of_an_image_deleted_since_say_how_to_predict_with_other_settings(model, photos, tmp_path):
    """A probe: a photo deleted from the folder, then --pcrf changed, was refused with 'choose another --out_dir, or
    name those images too': it cannot be named. The line says to delete its outputs; done, the run goes on."""
    folder, out = tmp_path / "photos", tmp_path / "preds"
    shutil.copytree(photos, folder)
    assert run_predict(folder, model, out, "--pcrf", "none").returncode == 0
    (folder / "grey.png").unlink()
    proc = run_predict(folder, model, out, "--pcrf", "deeplab")
    assert proc.returncode == 2 and proc.stderr.strip().endswith(
        "(grey); choose another --out_dir, name those images too to predict them again, or delete their outputs "
        "from it (<name>.png, overlay/<name>.png)"), proc.stderr
    (out / "grey.png").unlink()
    (out / "overlay" / "grey.png").unlink()
    proc = run_predict(folder, model, out, "--pcrf", "deeplab")
    assert proc.returncode == 0 and f"predicted {len(SIZES) - 1} images into" in proc.stdout, proc.stderr
