"""Predicting on new images: a trained segmenter (model.pth of src/segmentation/train.py) on image files (named,
in folders named, or named by a --list text file).

For each image <id>: <out_dir>/<id>.png, the class per pixel as an index PNG in the VOC colours (as
segmentations writes), and <out_dir>/overlay/<id>.png, the image with every non-background pixel blended
with its class colour, both at the image's own size. An image larger than --max_side is segmented shrunk to it (as
the pipeline works on it), its labels then enlarged (nearest neighbour). Both are written atomically; images that
do not decode are skipped and listed. <out_dir>/predict.json records the model file's digest, the settings and each
image file's digest, and once all are written the outputs' sizes: a rerun with the same settings resumes (images
with both outputs whole, made from the same file, are not predicted again; a missing overlay is drawn from the
labels), other settings predict all, but for --alpha, which draws the overlays again (an out_dir holding predictions
of other settings of images the run does not name is an error, as is one holding files predict did not make). Two
predicts into one out_dir take turns (its .predict.lock).
"""
import argparse
import contextlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import distributed
from . import transforms as T
from .cli import out_of_memory
from .checks import SIDE, argument, between, side_or_zero
from .config import CONFIGS, resolve
from .datasets import ImageFiles, image_checks
from .datasets.base import label_classes, warned_line
from .errors import Parser, counted, given_empty, image_lines, listed, os_error_message, raise_all, some
from .crf import BACKENDS, TEST_CRFS
from .inference import TEST_GEOMETRIES, forward_all, geometry, label_map, load_model, pick_device, trained
from .fingerprint import file_digest, read_json
from .io import InputError, atomic_path, finite_json, load_checkpoint, load_image, load_label_png, save_json, \
    save_label_png, being_written, snapshot_iteration, snapshots, text_lines, writing
from .progress import progress
from .runner import remove_temporary
from .stages.segmentations import BATCH
from .visualize import colour

LOCK = ".predict.lock"  # in out_dir: held while a predict writes there
RECORD = "predict.json"  # in out_dir: the model's digest, the settings and the images its files were made with

DESCRIPTION = """Segment new images with a trained segmenter: a label PNG (VOC colours) and a colour overlay per image.

  ./src/predict.py --model data/runs/demo/seg_train/default/model.pth --out_dir preds photos/ extra.jpg

Writes <out_dir>/<name>.png and <out_dir>/overlay/<name>.png. The test geometry (--size, --resize) defaults to
the settings of --config, by default the preset whose run trained the model; --input_size to the crop side the
model was trained on.
"""


OVERLAY_ROWS = 256   # rows of an overlay mixed at a time


def overlay(image, label, alpha=0.5):
    """The image with each non-background pixel mixed with its class colour: (1 - alpha) image + alpha colour. In
    bands of rows: float copies of a whole 120-MP photo took 5 GB."""
    out = image.copy()
    for y in range(0, len(image), OVERLAY_ROWS):
        rows = slice(y, y + OVERLAY_ROWS)
        mixed = np.round((1 - alpha) * image[rows].astype(np.float32) + alpha * colour(label[rows]).astype(np.float32))
        out[rows] = np.where(label[rows, :, None] > 0, mixed.astype(np.uint8), image[rows])
    return out


def save_overlay(path, image, label, alpha):
    """At zlib's fastest level: a 12-megapixel overlay took 6.2 s at Pillow's default (6) and takes 0.8 s, 16% larger
    (most of predict's time on phone photos)."""
    with atomic_path(path) as tmp:
        Image.fromarray(overlay(image, label, alpha)).save(tmp, format="PNG", compress_level=1)


def classes_found(found, classes):
    """{class: the number of images whose labels hold it} of the model's foreground classes found, in class order;
    found: {id: the class values of its label PNG} of the run's images."""
    counts = np.zeros(len(classes), int)
    for values in found.values():
        counts[values] += 1
    return {classes[c]: int(counts[c]) for c in range(1, len(classes)) if counts[c]}


def found_line(found, images, classes):
    """'found Kuh in 3 and grass in 5 of the 7 images (not found: cat)', or that the labels hold background
    only."""
    missing = [c for c in classes[1:] if c not in found]
    if not found:
        which = "not the model's class" if len(missing) == 1 else f"none of the model's {len(missing)} classes"
        return f"found only background: {which} ({some(missing, 5)}) in " \
            + ("the image" if images == 1 else f"any of the {images} images")
    named = list(found) if images == 1 else [f"{c} in {n}" for c, n in found.items()]
    return f"found {listed(named)} " + ("in the image" if images == 1 else f"of the {images} images") + \
        (f" (not found: {some(missing, 5)})" if missing else "")


def legend_line(found, classes, out_dir):
    """Each class found with its label value and colour, and where the overlays are: the label PNGs and overlays are
    in the VOC colours, whose key was nowhere but in the VOC palette and predict.json's class names."""
    keys = [f"{value} {name} rgb({', '.join(str(int(v)) for v in colour(value))})"
            for value, name in enumerate(classes) if name in found]
    return f"legend (label value, class, colour): {'; '.join(keys)}; overlays in {Path(out_dir) / 'overlay'}"


def model_file(path):
    """A model.pth, or a segmentation training folder holding one. A folder with snapshots but no model.pth yet:
    one line that says whether a training is writing it now, and names a snapshot as --model (predict.py has no
    --test_iter)."""
    given = Path(path)
    path = given if given.is_dir() else given.parent if given.name == "model.pth" and not given.exists() else None
    if path is None or not path.is_dir():
        return given
    held, busy = snapshots(path), being_written(path)
    if (held or busy) and not (path / "model.pth").exists():
        why = "another process is training it now; run this again once it has finished" if busy \
            else f"the folder holds snapshots of a training that stopped midway (the last at iteration " \
                 f"{snapshot_iteration(held[-1])}); rerun that training command with --out_dir {path} to resume it"
        raise InputError(f"{path / 'model.pth'}: no final model; {why}" +
                         (f", or predict with a snapshot: --model {held[-1]}" if held else ""))
    return trained(path) if given.is_dir() else given


def predict(model_path, inputs, out_dir, size, resize="none", pcrf="none", device="cpu", alpha=0.5, net_size=321,
            crf_backend="torch", max_side=0):
    """Label PNGs and overlays of every image in `inputs` (files or folders); returns a summary dict.

    Geometry as segmentations (its test_resize, test_size and the training input_size net_size): 'none' pads
    images to a `size` canvas (fitting larger ones into it) that is resized to net_size, 'fullscale' pads
    without the resize, 'tight' gives every image's longer side `size` and keeps its shape. An image whose longer
    side exceeds max_side (0: never) is segmented, CRF included, at that size.
    """
    if pcrf not in TEST_CRFS:
        raise InputError(f"--pcrf {pcrf}: choose {listed(TEST_CRFS, 'or')}")
    images = ImageFiles(inputs).work_at(max_side)
    out_dir = Path(out_dir)
    refuse_overwriting_inputs(images, out_dir)
    model, meta = load_model(model_file(model_path), "segmentation")
    device = pick_device(device)
    settings = {"model": file_digest(model_file(model_path)), "size": size, "resize": resize, "pcrf": pcrf,
                "device": torch.device(device).type, "alpha": alpha, "crf_backend": crf_backend, "max_side": max_side,
                "net_size": net_size if resize == "none" else None}   # (read by --resize none alone)
    if out_dir.is_dir() and not (out_dir / RECORD).exists():
        refuse_foreign(out_dir, None)   # before its lock file is left in someone else's folder
    with writing(out_dir, "predict", lock=out_dir / LOCK):  # another predict there: wait, then resume
        remove_temporary(out_dir, alone=True)   # a killed predict's half-written files (it holds the lock alone)
        replaced = other_settings(out_dir, settings)
        todo, found_now = images_to_do(images, out_dir, settings), {}
        passes = forward_all(model, images, todo, size, geometry(resize), device, BATCH, net_size=net_size)
        for i, scores, frame in progress(memory_of_passes(passes, size, max_side), "predict", len(todo)):
            with out_of_memory_said(image_memory_line(images, i, pcrf)):
                image = images.image(i)
                label = label_map(scores, image, frame, pcrf, crf_backend)
                if image.shape[:2] != tuple(images.sizes[i]):
                    image = load_image(images.items[i].image)
                    label = T.resize(label, image.shape[:2], Image.NEAREST)
                label_png, overlay_png = outputs(out_dir, images.items[i].id)
                save_label_png(label_png, label)
                save_overlay(overlay_png, image, label, alpha)
            found_now[images.items[i].id] = label_classes(label)
        redrawn = [i for i, it in enumerate(images.items) if not outputs(out_dir, it.id)[1].exists()]
        for i in progress(redrawn, "overlays"):   # labels made before (another --alpha, overlay/ deleted): no network
            label_png, overlay_png = outputs(out_dir, images.items[i].id)
            save_overlay(overlay_png, load_image(images.items[i].image), load_label_png(label_png), alpha)
        values = record_outputs(out_dir, images, found_now, meta["classes"])   # under the lock
        found = classes_found(values, meta["classes"])
    return {"images": len(images), "done_before": len(images) - len(todo) - len(redrawn), "redrawn": len(redrawn),
            "classes": list(meta["classes"]), "found": found, "replaced": replaced,
            "out_dir": str(out_dir), "skipped_images": images.skipped, "warned_images": images.warned,
            "not_images": [str(p) for p in images.ignored],
            "folders_not_read": [str(p) for p in images.subfolders   # but out_dir: its note asked to predict
                                 if p.resolve() != out_dir.resolve()]}   # predict's own outputs, on every rerun


@contextlib.contextmanager
def out_of_memory_said(line):
    """Memory running out in the block is the error `line`, in predict's flags: the stages' generic line advised
    test_size and batch_size, which predict has not."""
    try:
        yield
    except (MemoryError, RuntimeError) as e:
        if not out_of_memory(e):
            raise
        raise InputError(line) from None


def memory_of_passes(passes, size, max_side):
    """The network's passes (forward_all's), memory running out in them said with --size and --max_side."""
    with out_of_memory_said(f"out of memory in the network's pass over a batch of up to {BATCH} images at --size "
                            f"{size} (--max_side {max_side}{': none' if not max_side else ''}); rerun with a smaller "
                            "--size or --max_side (other settings: the images done are predicted again)"):
        yield from passes


def image_memory_line(images, i, pcrf):
    """What memory running out on image i says: the image and the flags that shrink its work (--max_side 0 with the
    CRF on a 50-megapixel photo took over 12 GB); the same command would run out again on it."""
    (h, w), side = images.hw(i), images.max_side
    return (f"{images.items[i].image}: out of memory segmenting it at {w}x{h} px (--max_side "
            f"{side}{': none' if not side else ''}); rerun with a smaller --max_side"
            f"{' or --pcrf none' if pcrf != 'none' else ''} (other settings: the images done are predicted again)")


def images_to_do(images, out_dir, settings):
    """The images left to predict, out_dir's RECORD (the settings, and each image file's size, time and digest) written
    first: those without a label PNG made with these settings (the same model file and test geometry: a rerun
    resumes) from the same file (an image with its labels but no overlay has it drawn from them). Outputs it
    made of these images from another file, of the images that no longer decode, and with other settings are
    removed first, so that no run leaves them to be taken as done. A folder it did not make, and one holding
    predictions of other settings of images this run does not name, are errors. Another --alpha keeps the labels
    and removes the overlays, which predict draws again from them."""
    record, made, sizes, found = earlier_record(out_dir)
    names = {"classes": record.pop("classes")} if "classes" in record else {}   # the model's: not a setting
    recorded = set(made)
    same_labels = without_alpha(record) == without_alpha(settings)
    files = {it.id: file_state(it.image, made.get(it.id)) for it in images.items}
    refuse_other_files(out_dir, made, files)   # whatever the settings, before anything is removed
    if record != settings:  # other settings: no output there is of these, or (another alpha) no overlay
        refuse_losing_others(images, out_dir, recorded)
        for image_id in recorded if same_labels else ():
            outputs(out_dir, image_id)[1].unlink(missing_ok=True)   # drawn again from the labels
        made, sizes, found = (made, sizes, found) if same_labels else ({}, {}, {})
    refuse_unrecorded(images, out_dir, recorded)
    stale = (set() if same_labels else recorded) | stale_outputs(images, out_dir, made, sizes, files)
    for image_id in stale & recorded:  # a file it never made stays
        for path in outputs(out_dir, image_id):
            path.unlink(missing_ok=True)
    save_record(out_dir, settings | {"images": {i: v for i, v in made.items() if i not in stale} | files,
                                     "outputs": {i: v for i, v in sizes.items() if i not in stale},
                                     "found": {i: v for i, v in found.items() if i not in stale}}
                | (names if same_labels else {}))
    return [i for i, it in enumerate(images.items) if not outputs(out_dir, it.id)[0].exists()]


def other_settings(out_dir, settings):
    """'pcrf 'deeplab' there, 'none' here; ...' where out_dir holds predictions made with other settings than these
    (--alpha aside: the labels stand), which this run replaces; else ''."""
    record = read_json(out_dir / RECORD) or {}
    if not record.get("images"):
        return ""
    return "; ".join("another model file" if key == "model" else f"{key} {record.get(key)!r} there, {value!r} here"
                     for key, value in without_alpha(settings).items() if record.get(key) != value)


def without_alpha(settings):
    """The settings the label PNGs depend on: --alpha changes the overlays alone, and --input_size (net_size) only
    those of --resize none (a record made before it said so holds the net_size of another resize)."""
    unread = {"alpha"} | ({"net_size"} if settings.get("resize") != "none" else set())
    return {k: v for k, v in settings.items() if k not in unread}


def earlier_record(out_dir):
    """(settings, {id: image file state}, {id: output sizes}, {id: class values of its label}) of out_dir's RECORD.
    A folder with no record of its images (before predict kept one) holds an earlier predict's label PNGs, of
    unknown settings, if it made the folder (its overlay/); else it is refused."""
    record = read_json(out_dir / RECORD)
    made = (record or {}).pop("images", None)
    sizes = recorded_entries((record or {}).pop("outputs", None), sizes_entry)
    found = recorded_entries((record or {}).pop("found", None), found_entry)   # absent before predict kept it
    if not (isinstance(made, dict) and all(isinstance(v, dict) for v in made.values())):
        refuse_foreign(out_dir, record)
        return {"settings": "unknown"}, {p.stem: {} for p in out_dir.glob("*.png")}, {}, {}
    return record, made, sizes, found


def recorded_entries(entries, valid):
    """{id: entry} of a RECORD's "outputs" or "found" that are of the form predict writes (valid(entry)): an entry of
    another form (a record edited by hand or damaged) is dropped, its output then checked or its labels decoded
    again, not a traceback nor counted wrongly (null counted an image in every class, -1 in the last)."""
    return {i: v for i, v in entries.items() if valid(v)} if isinstance(entries, dict) else {}


def sizes_entry(sizes):
    """[bytes of the label PNG, of the overlay] (None: absent), as output_sizes gives them."""
    return isinstance(sizes, list) and len(sizes) == 2 and all(v is None or type(v) is int for v in sizes)


def found_entry(values, classes=256):
    """The increasing class values of a label PNG, as label_classes gives them, each below `classes`."""
    return isinstance(values, list) and all(type(v) is int and 0 <= v < classes for v in values) and \
        values == sorted(set(values))


def refuse_losing_others(images, out_dir, recorded):
    """Other settings remove the recorded outputs: an error where some are of images this run does not name (one
    since deleted from its folder cannot be named: its outputs are deleted instead)."""
    named = {it.id for it in images.items} | {Path(path).stem for path in images.skipped}
    others = sorted(i for i in recorded - named if any(p.exists() for p in outputs(out_dir, i)))
    if others:
        raise InputError(f"--out_dir {out_dir}: holds predictions of {counted(len(others), 'other image')} made "
                         f"with other settings ({some(others)}); choose another --out_dir, name those images too to "
                         "predict them again, or delete their outputs from it (<name>.png, overlay/<name>.png)")


def refuse_unrecorded(images, out_dir, recorded):
    """Outputs of this run's images that the record does not list would be taken for its own, done: an error."""
    foreign = [str(path.relative_to(out_dir)) for it in images.items if it.id not in recorded
               for path in outputs(out_dir, it.id) if path.exists()]
    if foreign:
        raise InputError(f"--out_dir {out_dir}: holds {some(foreign)}, which predict did not make; choose another "
                         "--out_dir, or move them away")


def stale_outputs(images, out_dir, made, sizes, files):
    """The images whose outputs are made again: those that no longer decode (but of a readable image's name: a link
    to nothing a.jpg beside a.png, whose outputs were removed and predicted again on every rerun), whose file changed
    since (`files` against `made`), or whose outputs were damaged since: there with another size than recorded, or,
    changed since the record was written (a byte flipped in place) or with no sizes (an interrupted run's, a
    version's before sizes were recorded), not whole."""
    stale = {Path(path).stem for path in images.skipped} - set(files)
    stale |= {i for i, state in files.items() if (made.get(i) or {}).get("digest") != state["digest"]}
    stale |= {i for i in files if i in sizes and any(now not in (None, then) for now, then in
                                                     zip(output_sizes(out_dir, i), sizes[i]))}   # absent: made
    since = (out_dir / RECORD).stat().st_mtime_ns if (out_dir / RECORD).exists() else 0
    unsure = [i for i in files if i not in stale and (i not in sizes or changed_since(out_dir, i, since))]
    return stale | {i for i in unsure if not whole_outputs(out_dir, i)}


def changed_since(out_dir, image_id, since):
    """Whether an output of the image was written or changed at or after `since` (ns; the kernel's change time,
    which an edit keeping the size and the modification time still moves)."""
    return any(path.exists() and path.stat().st_ctime_ns >= since for path in outputs(out_dir, image_id))


def output_sizes(out_dir, image_id):
    """[bytes] of the label PNG and overlay of an image (None where absent)."""
    return [path.stat().st_size if path.is_file() else None for path in outputs(out_dir, image_id)]


def whole_outputs(out_dir, image_id):
    """Whether an image's outputs that are there decode whole (PNG's checksums: Image.verify); absent ones pass
    (they are made)."""
    for path in outputs(out_dir, image_id):
        if path.exists():
            try:
                with Image.open(path) as png:
                    png.verify()
            except Exception:   # Pillow raises many kinds (SyntaxError, OSError, struct.error) on damaged files
                return False
    return True


def record_outputs(out_dir, images, found_now, classes):
    """The sizes of the outputs made, added to out_dir's RECORD once all are written: a rerun predicts again those
    damaged since (a folder copied in part, a file emptied), as the stages do with done.json's. With them the class
    values of each label PNG (`found_now`: of those made now), so that a rerun counts the classes found without
    decoding every label again (0.1 s a 12-megapixel photo's; one recorded of another form, or of a value not in
    `classes`, the model's class names, is decoded again), and those names, which the PNGs' values index (nothing
    in the folder said which class a value is); returns the values, {id: values}, of the run's images."""
    record = read_json(out_dir / RECORD)
    made = {it.id: output_sizes(out_dir, it.id) for it in images.items}
    found = recorded_entries(record.get("found"), lambda values: found_entry(values, len(classes))) | found_now
    found |= {i: label_classes(load_label_png(outputs(out_dir, i)[0])) for i in made if i not in found}
    save_record(out_dir, record | {"outputs": record.get("outputs", {}) | made, "found": found,
                                   "classes": list(classes)})
    return {i: found[i] for i in made}


def save_record(out_dir, record):
    """Write out_dir's RECORD unless it holds `record` already: a rerun of a finished folder on a read-only disk
    reads it, as a stage's is read, where writing the same record again stopped it ('Read-only file system')."""
    if read_json(out_dir / RECORD) != json.loads(json.dumps(finite_json(record))):
        save_json(out_dir / RECORD, record)


def refuse_foreign(out_dir, record):
    """An out_dir with no record of predict's images holds nothing but hidden files (its lock, a temporary file of
    a killed run), an empty overlay/, or the label PNGs and overlay/ of an earlier predict: anything else is
    someone else's, which predict would overwrite or delete."""
    overlay = out_dir / "overlay"
    earlier = record is not None or (overlay.is_dir() and any(overlay.glob("*.png")))
    held = [p.name for p in sorted(out_dir.iterdir()) if not p.name.startswith(".") and p != overlay
            and p.name != RECORD and not (earlier and p.suffix == ".png" and p.is_file())]
    held += [f"overlay/{p.name}" for p in sorted(overlay.iterdir())
             if not p.name.startswith(".") and not (earlier and p.suffix == ".png")] if overlay.is_dir() else []
    if held:
        raise InputError(f"--out_dir {out_dir}: holds files that predict did not make ({some(held)}); choose an "
                         "empty or new folder")


def written(e, out_dir):
    """Whether an OSError is of --out_dir (or of no file: a disk full), not of the images named."""
    if not e.filename:
        return True
    path, out_dir = Path(os.path.abspath(e.filename)), Path(os.path.abspath(out_dir))
    return path == out_dir or out_dir in path.parents or path in out_dir.parents


def file_state(path, known=None):
    """{path, stamp, digest} of a file; the digest of `known` (a former state) where the path and the stamp
    (image_checks.stamp: device, inode, size, modification and change time) are its: a photo replaced by one of the
    same size and time (cp -p, tar -x) has another inode or change time. A state recorded without a stamp (size and
    mtime_ns, before 2026-12-07) has its file hashed again once."""
    path = os.path.abspath(path)   # a link's own path: re-pointed, its file changed
    stamp = image_checks.stamp(path)
    if known and (known.get("path"), known.get("stamp")) == (path, stamp):
        return known
    return {"path": path, "stamp": stamp, "digest": file_digest(path)}


def refuse_other_files(out_dir, made, files):
    """An image whose outputs in out_dir were made from another file of its name (b/a.jpg where a/a.jpg was
    predicted), with other content, is an error: its outputs would replace the other's without a word. The same
    content elsewhere (a folder moved) is the same image."""
    others = [f"{then['path']}, now {now['path']}" for i, now in files.items() if (then := made.get(i))
              and then.get("path") not in (None, now["path"]) and then.get("digest") != now["digest"]]
    if others:
        raise InputError(f"--out_dir {out_dir}: holds predictions of other files of the names of "
                         f"{counted(len(others), 'image')} named here ({some(others)}); choose another --out_dir, or "
                         "rename them")


def outputs(out_dir, image_id):
    return out_dir / f"{image_id}.png", out_dir / "overlay" / f"{image_id}.png"


def test_preset(meta, config=None):
    """(the preset that gives the test geometry, a note or None): `config` if given, else the preset whose run
    trained the model (its checkpoint's meta), else demo. The note says where that is not the model's preset."""
    trained_by = meta.get("preset")
    known = trained_by is not None and (CONFIGS / f"{trained_by}.yaml").is_file()
    if config is not None:
        resolve(config)  # a preset that does not exist is the one error, before any note
        same = trained_by is None or Path(config).stem == trained_by
        return config, None if same else (f"the model was trained by a run of preset {trained_by}; --config "
                                          f"{config} gives it that preset's test geometry")
    if known:   # its file: a file of that name in the current folder is not it
        return str(CONFIGS / f"{trained_by}.yaml"), None
    if trained_by is None:
        return "demo", ("the model records no preset (trained before it did): the test geometry is demo's; pass "
                        "--config with the preset it was trained with")
    return "demo", (f"the model was trained by a run of preset {trained_by}, not in configs/: the test geometry "
                    "is demo's; pass --config with that preset's file")


def refuse_overwriting_inputs(images, out_dir):
    """No output may land on an input image: an out_dir that would hold <id>.png or overlay/<id>.png where an
    input is (e.g. the input folder itself) is an error before anything is written."""
    inputs = {it.image.resolve() for it in images.items}
    if out_dir.resolve() in {path.parent for path in inputs}:
        raise InputError(f"--out_dir {out_dir}: a folder of input images; choose a folder that holds none of them")
    for it in images.items:
        for path in outputs(out_dir, it.id):
            if path.resolve() in inputs:
                raise InputError(f"--out_dir {out_dir}: would write {path} over an input image; choose a folder "
                                 "that holds none of the images")


def parse(argv=None):
    p = Parser(prog="./src/predict.py", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", help="image files (jpg, png) and folders of images")
    p.add_argument("--list", metavar="FILE", help="a text file naming more image files or folders, one per line "
                                                  "(relative to its own folder; blank lines and lines starting with # "
                                                  "are passed over)")
    p.add_argument("--model", required=True, help="model.pth of src/segmentation/train.py, or its folder")
    p.add_argument("--out_dir", required=True, help="folder for the label PNGs and overlay/")
    p.add_argument("--pcrf", choices=TEST_CRFS, help="test-time dense CRF (default: the preset's test_pcrf)")
    p.add_argument("--config", help="preset whose settings give the defaults of --pcrf, --size, --resize, "
                                    "--max_side, --crf_backend and, where the model records none, --input_size "
                                    "(default: the preset whose run trained the model, else demo)")
    p.add_argument("--size", type=argument(int, SIDE), help="test input side (default: the preset's test_size)")
    p.add_argument("--resize", choices=tuple(TEST_GEOMETRIES),
                   help="none: the release's, a padded canvas resized to --input_size; fullscale: the padded canvas "
                        "at full scale; tight: every image's longer side to --size, in its own shape (default: the "
                        "preset's test_resize)")
    p.add_argument("--input_size", type=argument(int, SIDE),
                   help="the network's input side for --resize none (default: the crop side the model was trained "
                        "on, which it records; else the preset's seg_train input_size)")
    p.add_argument("--max_side", type=argument(int, side_or_zero),
                   help="images whose longer side exceeds this are segmented shrunk to it, their labels then "
                        "enlarged to the image (default: the preset's max_image_side; 0: never)")
    p.add_argument("--alpha", type=argument(float, between(0, 1)), default=0.5,
                   help="weight of the class colour in the overlay (0.5)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: a GPU where there is one, "
                                                    "whatever device the preset's runs use)")
    p.add_argument("--crf_backend", choices=BACKENDS,
                   help="dense CRF: torch or pydensecrf (the optional C++ package pydensecrf2) (default: the preset's "
                        "crf_backend)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    args = p.parse_args(argv)
    refuse_empty_paths(args)
    return args


def refuse_empty_paths(args):
    """A path given empty (an unset shell variable: --out_dir "$OUT") wrote into the current folder, and --model ""
    looked for model.pth there; an input named "" read the current folder."""
    empty = [f"--{flag}" for flag in given_empty(args, ("model", "out_dir", "list", "config"))]
    empty += ["an input"] if any(not name.strip() for name in args.inputs) else []
    raise_all([f"{what}: is empty (an unset variable?); write the path" for what in empty], "./src/predict.py")


def listed_inputs(path):
    """The paths a --list file names, relative ones from its folder; every line naming nothing is one error."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--list {path}: {'a folder' if path.is_dir() else 'not found'}; name a text file of image "
                         "paths, one per line")
    lines = [(n, line.strip()) for n, line in enumerate(text_lines(path, "save it as UTF-8"), 1)]
    named = [(n, path.parent / line) for n, line in lines if line and not line.startswith("#")]
    raise_all([f"{path} line {n}: {p} not found; correct the line or remove it" for n, p in named if not p.exists()],
              str(path))
    if not named:
        raise InputError(f"--list {path}: names no image; give one path per line")
    return [str(p) for _, p in named]


def main(argv=None):
    """./src/predict.py: errors end in one line (cli.py)."""
    with distributed.said_once():   # by the first process alone, of a torchrun launch
        args = parse(argv)
        if distributed.under_torchrun() and distributed.world_size() > 1:  # each would predict every image, in turn
            raise InputError("./src/predict.py under torchrun: it runs in one process; run it without torchrun (on "
                             "a GPU of your choice: --device cuda:N)")
    inputs = args.inputs + (listed_inputs(args.list) if args.list else [])
    if not inputs:
        raise InputError("name image files or folders of images, or --list a text file of them; see "
                         "./src/predict.py -h")
    preset, resize, net_size = test_settings(args)
    test = preset["segmentations"]
    try:
        summary = predict(args.model, inputs, args.out_dir, args.size or test["test_size"],
                          resize, args.pcrf or test["test_pcrf"], args.device,
                          args.alpha, net_size, args.crf_backend or preset["run"]["crf_backend"],
                          preset["data"]["max_image_side"] if args.max_side is None else args.max_side)
    except OSError as e:
        raise InputError(os_error_message(e, "--out_dir") if written(e, args.out_dir) else
                         f"{e.filename}: {e.strerror or type(e).__name__}; give this user access to it, or name other "
                         "images") from None
    print_summary(summary)


def test_settings(args):
    """(the preset the model was trained with, or --config; the test geometry; the network's input side) of
    predict's arguments, noting where the model or a flag sets them otherwise."""
    meta = load_checkpoint(model_file(args.model), expect={"kind": "segmentation"})["meta"]
    config, note = test_preset(meta, args.config)
    if note:
        print(f"note: {note}")
    preset = resolve(config)[0]
    test = preset["segmentations"]
    resize = args.resize or test["test_resize"]
    net_size = args.input_size or (resize == "none" and meta.get("input_size")) or preset["seg_train"]["input_size"]
    if args.input_size and resize != "none":
        print(f"note: --input_size is the network's input side for --resize none; --resize {resize} reads --size "
              "instead, so --input_size changes nothing")
    if args.input_size is None and net_size != preset["seg_train"]["input_size"]:  # a run that set another
        print(f"note: the model was trained on {net_size}-px crops, not on the preset's "
              f"{preset['seg_train']['input_size']}: --input_size {net_size}; --size stays the preset's "
              f"({test['test_size']}) unless given")
    side_note = args.size is None and max_side_note(meta.get("max_side"), preset)
    if side_note:
        print(f"note: {side_note}")
    return preset, resize, net_size


def max_side_note(trained_side, preset):
    """A note where the model was trained on photos shrunk to another side (seg_train.max_side) than the preset's,
    whose test_size --size takes: a run told to raise both (README, own data) was predicted at the preset's size
    without a word. None where they agree or the model records none (trained before it did)."""
    side = preset["seg_train"]["max_side"]
    if trained_side is None or trained_side == side:
        return None
    return (f"the model was trained on photos shrunk to seg_train.max_side {trained_side}, not the preset's {side} "
            f"(0: never shrunk): --size stays the preset's test size ({preset['segmentations']['test_size']}); pass "
            "--size with the segmentations.test_size of the run that trained it")


def print_summary(summary):
    """What predict did: the images predicted (or kept from an earlier run), the classes found, and the files it
    left out or read with warnings."""
    if summary["replaced"]:
        print(f"note: {summary['out_dir']} held predictions made with other settings ({summary['replaced']}); they "
              "are made again with these")
    n, before, redrawn = summary["images"], summary["done_before"], summary["redrawn"]
    done = f"predicted {counted(n, 'image')}" + (f", {before} of them by an earlier run" if before else "") + \
        (f", {redrawn} from the labels of an earlier run (their overlays drawn again)" if redrawn else "") \
        if before + redrawn < n else f"{counted(n, 'image')}, all predicted by an earlier run with these settings" + \
        (f"; {counted(redrawn, 'overlay')} drawn again from their labels" if redrawn else "")
    print(f"{done} into {summary['out_dir']}; {found_line(summary['found'], n, summary['classes'])}")
    if summary["found"]:
        print(legend_line(summary["found"], summary["classes"], summary["out_dir"]))
    others = summary["not_images"]
    if others:
        one = len(others) == 1
        print(f"note: {counted(len(others), 'file')} of the folders named {'is' if one else 'are'} not .jpg, .jpeg or "
              f".png and {'was' if one else 'were'} not predicted "
              f"({some(others)}); name such a file itself to try it")
    inner = summary["folders_not_read"]
    if inner:
        print(f"note: {counted(len(inner), 'folder')} inside the folders named {'was' if len(inner) == 1 else 'were'} "
              f"not read ({some(inner)}); name them too to predict their images")
    skipped = summary["skipped_images"]
    if skipped:
        print(f"skipped {counted(len(skipped), 'unreadable image')}:\n{image_lines(skipped)}")
    if summary["warned_images"]:
        print(f"{warned_line(len(summary['warned_images']))}:\n{image_lines(summary['warned_images'])}")
