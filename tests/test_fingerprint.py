"""Outputs are reused only while the content of their inputs is what they were made from (fingerprint.py):
an input edited in place (same size, same time stamp) reruns its stage and everything downstream, says what
changed, and gives what a fresh run on the edited data gives."""
import csv
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import yaml
from PIL import Image

from conftest import ROWS, make_own, own_args, retag_mask, stage_folders
from guidedlabelling import fingerprint as fingerprints, preflight, runner
from guidedlabelling.fingerprint import ABSENT, EVALUATED, IMAGE_WORK_SIZE, TAG_CLASSES, TAG_IMAGES, TAG_ROWS, \
    READ_IDS, SPLIT_ROWS, TAG_SPLIT, UPSTREAM, WORK_SIZE, file_digest, files_read_digest, csv_of, fingerprint, \
    images_come_or_go, key_name, output_fingerprint, outputs_fingerprint, rows_came_or_went, rows_digest, since_made
from guidedlabelling.io import save_heatmap_mat
from guidedlabelling.tags import hash_split
from guidedlabelling.settings import SHARED

METHOD = ("seed_train", "seed_heatmaps", "saliency_train", "saliency", "guide_labels")
SEGMENTER = METHOD + ("seg_train", "segmentations")


def edit_in_place(path, old, new):
    """Replace text of the same length, then restore the time stamps: size and mtime do not change."""
    st = path.stat()
    text = path.read_text()
    assert len(old) == len(new) and old in text
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def run_all(command, own, stages=METHOD, *extra):
    """Each stage in turn, as ./script.py would run them; returns their stdout."""
    outputs = []
    for stage in stages:
        code, out, err = command(stage, *own_args(own), *extra)
        assert code == 0, out + err
        outputs.append(out)
    return outputs


def own_sets(own):
    """The settings of own_args that the seed stages read, as a message asks to rerun them with."""
    return " ".join(f"--set {key}={own[key]}" for key in ("images", "tags", "masks", "out_root"))


def folder(own, stage_folder):
    """The one output folder of a stage (its name lists the own data's settings)."""
    found = stage_folders(own["out_root"] / "tiny" / stage_folder)
    assert len(found) == 1, found
    return found[0]


def guide_done(own):
    return json.loads((folder(own, "guide_labels") / "done.json").read_text())


def test_a_digest_sees_an_edit_that_keeps_size_and_time(tmp_path):
    path = tmp_path / "tags.csv"
    path.write_text("image,tags\na.jpg,cat\n")
    before = file_digest(path)
    edit_in_place(path, "cat", "dog")
    assert file_digest(path) != before and file_digest(tmp_path / "missing") == "absent"


def test_the_same_heatmaps_written_later_are_the_same_bytes(tmp_path, monkeypatch):
    """scipy writes the time into a MAT-file's header; ours hold a fixed text, so a stage made again to the same
    maps has the same outputs_digest, and MATLAB/scipy read them as before."""
    heat = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    save_heatmap_mat(tmp_path / "a.mat", heat, (3, 4), [0.5, 2.0])
    monkeypatch.setattr(time, "asctime", lambda *t: "Thu Jan  1 00:00:00 2037")   # what scipy's header would hold
    save_heatmap_mat(tmp_path / "b.mat", heat, (3, 4), [0.5, 2.0])
    assert (tmp_path / "a.mat").read_bytes() == (tmp_path / "b.mat").read_bytes()
    loaded = scipy.io.loadmat(tmp_path / "b.mat")
    assert loaded["__header__"] == b"MATLAB 5.0 MAT-file Platform: posix, written by GuidedLabelling"
    assert np.array_equal(loaded["heatmap"], heat) and np.array_equal(loaded["scores"], [[0.5, 2.0]])


def test_tags_edited_in_place_rerun_every_stage_like_a_fresh_run(own, command, tmp_path):
    """The probe's case: tags edited in place used to leave every stage 'up to date' with the old results."""
    run_all(command, own)
    stale = guide_done(own)
    edit_in_place(own["tags"], "a.jpg,cat", "a.jpg,dog")
    retag_mask(own, "a", 2)
    outputs = run_all(command, own)
    for stage, out in zip(METHOD, outputs):   # the saliency network reads no tags: reused
        assert ("up to date" in out) == (stage == "saliency_train"), stage
    assert f"{own['tags']} changed since it was made; recomputing it" in outputs[0]          # seed_train
    assert "seed_train's output changed since it was made; recomputing it" in outputs[1]     # seed_heatmaps
    rerun = guide_done(own)
    own["out_root"] = tmp_path / "fresh"
    run_all(command, own)
    fresh = guide_done(own)
    assert rerun == fresh and rerun["guide"]["mIoU"] != stale["guide"]["mIoU"]


def test_steps_that_read_no_tags_keep_their_outputs_when_only_tags_change(own, command):
    """The saliency maps, the fully supervised reference and the tests do not depend on the tags of a row: a tag
    added to a training row rescores the maps and the tests, and leaves the reference as it is; only a class that
    comes or goes trains the reference again, and the maps depend on no class (they all ran again before, for any
    edit of tags.csv)."""
    reference = ("seg_train", "segmentations")
    run_all(command, own, METHOD)
    run_all(command, own, reference, "--set", "labels=gt")
    tags = own["tags"].read_text()
    own["tags"].write_text(tags.replace("a.jpg,cat,train", "a.jpg,cat dog,train"))   # classes unchanged
    outputs = run_all(command, own, METHOD) + run_all(command, own, reference, "--set", "labels=gt")
    said = dict(zip(METHOD + ("reference", "reference test"), outputs))
    assert f"{own['tags']} changed since it was made; recomputing it" in said["seed_train"]
    assert f"{own['tags']} changed since it was made; scoring its outputs again" in said["saliency"]
    assert "up to date" in said["reference"]
    assert f"{own['tags']} changed since it was made; scoring its outputs again" in said["reference test"]
    own["tags"].write_text(tags.replace("a.jpg,cat,train", "a.jpg,cat zebra,train"))   # a class more (the last)
    saliency, = run_all(command, own, ("saliency",))
    trained, _ = run_all(command, own, reference, "--set", "labels=gt")
    assert f"{own['tags']} changed since it was made; scoring its outputs again" in saliency   # no class read
    assert f": the classes of {own['tags']} changed since it was made; recomputing it" in trained
    own["tags"].write_text(tags.replace("a.jpg,cat,train", "a.jpg,cat zebra,train").replace(
        "d.png,dog,train", "d.png,dog,val"))   # a training image made a val one, the classes unchanged
    code, _, err = command("segmentations", *own_args(own), "--set", "labels=gt")   # alone: the reference is read
    assert code == 2 and f"the output of stage seg_train is out of date, the train images {own['tags']} lists " \
        "changed since it was made" in err, err
    saliency, = run_all(command, own, ("saliency",))   # d's map is its image's, in train or in val: kept
    assert f"the train images {own['tags']} lists, the val images {own['tags']} lists changed since it was made; " \
        "keeping the outputs of the images it had" in saliency


def test_a_val_rows_tags_leave_the_trainings_as_they_are(own, command):
    """A typo fixed in a val row's tags retrained the seed network and everything after it (three minutes on 80
    photos: a probe). The steps that read tags count the rows of their splits: a val row's tags rescore the test
    and remake only what reads val's tags; the same edit to a training row retrains. The seed split by hash (no split
    column) counts the same way, the row's split worked out from its image's id."""
    run_all(command, own, SEGMENTER)
    run_all(command, own, ("seed_heatmaps",), "--set", "seed_split=test")   # val's heatmaps read val's tags
    text = own["tags"].read_text()
    own["tags"].write_text(text.replace("e.jpg,cat,val", "e.jpg,dog,val"))   # the classes unchanged
    retag_mask(own, "e", 2)
    said = dict(zip(SEGMENTER, run_all(command, own, SEGMENTER)))
    for step in ("seed_train", "seed_heatmaps", "saliency_train", "guide_labels", "seg_train"):
        assert "up to date" in said[step], (step, said[step])
    assert f"{own['tags']} changed since it was made; scoring its outputs again" in said["segmentations"]
    val_heatmaps, = run_all(command, own, ("seed_heatmaps",), "--set", "seed_split=test")
    assert f"the val rows of {own['tags']} changed since it was made; recomputing it" in val_heatmaps
    own["tags"].write_text(text.replace("a.jpg,cat,train", "a.jpg,dog,train"))
    retag_mask(own, "e", 1)
    retag_mask(own, "a", 2)
    seed_train, = run_all(command, own, ("seed_train",))
    assert f"the train rows of {own['tags']} changed since it was made; recomputing it" in seed_train
    own["tags"].write_text("image,tags\n" + "".join(f"{name},{tag}\n" for name, (tag, _) in ROWS.items()))
    for image_id in "ae":
        retag_mask(own, image_id, 1)
    by_hash = [*own_args(own), "--set", "val_percent=50"]   # b and c fall in val (sha1 of the id mod 100 < 50)
    assert [hash_split(i, 50) for i in "abcdef"] == ["train", "val", "val", "train", "train", "train"]
    code, out, err = command("seed_train", *by_hash)
    assert code == 0, out + err
    own["tags"].write_text(own["tags"].read_text().replace("b.png,dog", "b.png,cat"))
    retag_mask(own, "b", 1)
    code, out, err = command("seed_train", *by_hash)
    assert code == 0 and "up to date" in out, out + err


def test_folders_whose_tags_csv_an_earlier_version_counted_by_its_rows_stay_current(own, command, monkeypatch):
    """Before, every step counted the tags CSV by its rows: those folders stay up to date after the upgrade (and
    a step downstream of them), and a mask edited since still only rescores them."""
    reference = ("seg_train", "segmentations")
    made_manifest = preflight.Checked.made_manifest
    with monkeypatch.context() as m:
        m.setattr(preflight.Checked, "made_manifest", lambda self, way="now", sized="image": made_manifest(
            self, "rows" if way == "now" else way, sized))
        run_all(command, own, SEGMENTER)
        run_all(command, own, reference, "--set", "labels=gt")
    outputs = run_all(command, own, SEGMENTER) + run_all(command, own, reference, "--set", "labels=gt")
    assert all("up to date" in out for out in outputs), outputs
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(own["masks"] / "e.png")   # a val mask
    outputs = dict(zip(SEGMENTER, run_all(command, own, SEGMENTER)))
    assert [stage for stage, out in outputs.items() if "up to date" not in out] == ["saliency", "segmentations"]
    assert all("scoring its outputs again" in outputs[stage] for stage in ("saliency", "segmentations"))


def test_a_training_made_again_to_other_weights_makes_its_test_stale(own, command, monkeypatch):
    """A training rerun with --overridecache that ends in other weights (another thread count or device sums floats
    in another order; here another random start) makes the test of the former weights stale: it stayed 'up to
    date' with their predictions. A rerun that makes the same bytes again leaves it up to date."""
    run_all(command, own, SEGMENTER)
    model = folder(own, "seg_train") / "model.pth"
    before = file_digest(model)
    seeded = torch.manual_seed
    monkeypatch.setattr(torch, "manual_seed", lambda seed: seeded(seed + 1))
    run_all(command, own, ("seg_train",), "--overridecache")
    assert file_digest(model) != before
    out = run_all(command, own, ("segmentations",))[0]
    assert "seg_train's output changed since it was made; recomputing it" in out
    again = file_digest(model)
    run_all(command, own, ("seg_train",), "--overridecache")
    assert file_digest(model) == again and "up to date" in run_all(command, own, ("segmentations",))[0]


def test_a_stage_made_again_after_an_upgrade_records_its_upstream_digest(own, command, monkeypatch):
    """Stages of a version before the digests (here: none written) stay up to date on their fingerprint alone;
    made again, they record the digests, and an upstream then made again to other bytes makes them stale, and
    is an error for a stage command that reads them (a review: the remade stage kept the bare record)."""
    with monkeypatch.context() as m:
        m.setattr(runner, "outputs_record", lambda folder, names: {})
        run_all(command, own)
    run_all(command, own, ("seed_train", "seed_heatmaps"), "--overridecache")   # the same bytes
    assert "seed_heatmaps" not in json.loads((folder(own, "guide_labels") / "inputs.json").read_text()).get(
        "upstream_digests", {})
    assert all("up to date" in out for out in run_all(command, own))
    seeded = torch.manual_seed
    monkeypatch.setattr(torch, "manual_seed", lambda seed: seeded(seed + 1))
    run_all(command, own, ("seed_train",), "--overridecache")
    code, _, err = command("guide_labels", *own_args(own))
    assert code == 2 and ("the output of stage seed_heatmaps is out of date, seed_train's output changed since it "
                          f"was made; rerun ./src/seed/test.py {own_sets(own)} with the same --config first") in err
    outputs = run_all(command, own, ("seed_heatmaps",))
    assert "seed_train's output changed since it was made; recomputing it" in outputs[0]


def test_a_stale_chain_is_told_in_the_order_that_remakes_it(own, command, monkeypatch, tmp_path):
    """The seed network trained again to other bytes: the guide labels' folder reads heatmaps that are out of date,
    not heatmaps that changed, and remaking it alone would fail in turn. The message names the stale folder it
    reads and the commands that remake the chain, in order; for folders given by flag, each with its folder."""
    run_all(command, own)
    heat, guide = tmp_path / "heat", tmp_path / "guide"
    run_all(command, own, ("seed_heatmaps",), "--out_dir", heat)
    trained, maps = folder(own, "seed_train"), folder(own, "saliency")
    code, out, err = command("guide_labels", *own_args(own), "--seed_dir", heat, "--out_dir", guide)
    assert code == 0, out + err
    seeded = torch.manual_seed
    monkeypatch.setattr(torch, "manual_seed", lambda seed: seeded(seed + 1))
    run_all(command, own, ("seed_train",), "--overridecache")
    code, _, err = command("seg_train", *own_args(own))
    guide_sets = own_sets(own).replace(" --set out_root", f" --set saliency_data={own['saliency_data']} --set out_root")
    assert code == 2 and (
        f"the output of stage guide_labels is out of date, the seed_heatmaps output it reads, "
        f"{folder(own, 'seed_heatmaps')}, is itself out of date; first rerun ./src/seed/test.py {own_sets(own)} with "
        f"the same --config, then ./src/guide_generation/generate.py {guide_sets} with the same --config (or "
        "./script.py, which remakes them in order)") in err, err
    code, _, err = command("seg_train", *own_args(own), "--guide_dir", guide)
    assert code == 2 and (
        f"{guide}: out of date, the seed_heatmaps output it reads, {heat}, is itself out of date; first rerun "
        f"./src/seed/test.py --config {heat / 'config.yaml'} --out_dir {heat} --model_dir {trained} --overridecache, "
        f"then ./src/guide_generation/generate.py --config {guide / 'config.yaml'} --out_dir {guide} --saliency_dir "
        f"{maps} --seed_dir {heat} --overridecache (adding the flag of any folder of your own files it read)") \
        in err, err
    for line in (f"seed_heatmaps --config {heat / 'config.yaml'} --out_dir {heat} --model_dir {trained}",
                 f"guide_labels --config {guide / 'config.yaml'} --out_dir {guide} --seed_dir {heat} --saliency_dir "
                 f"{maps}"):   # the commands as the message says them, run
        code, out, err = command(*line.split(), "--overridecache")
        assert code == 0, out + err
    code, out, err = command("seg_train", *own_args(own), "--guide_dir", guide)
    assert code == 0, out + err


def test_a_folder_remade_with_its_upstream_given_by_flag_stays_up_to_date_for_the_driver(own, command):
    """A review's: a message's hint remakes a folder of ./script.py's by the stage command, its upstream folders
    given by flag (remake_command); ./script.py then found the same folders by their settings and recomputed it,
    'the settings of the given seed_train folder changed since it was made'. The other way too: the folder that
    ./script.py found given by flag."""
    run_all(command, own, METHOD[:2])
    heat, trained = folder(own, "seed_heatmaps"), folder(own, "seed_train")
    code, out, err = command("seed_heatmaps", *own_args(own), "--model_dir", trained)
    assert code == 0 and "up to date" in out, out + err
    code, out, err = command("seed_heatmaps", "--config", heat / "config.yaml", "--out_dir", heat, "--model_dir",
                             trained, "--overridecache")
    assert code == 0 and "up to date" not in out, out + err
    assert "up to date" in run_all(command, own, ("seed_heatmaps",))[0]


def test_a_run_moved_whole_stays_up_to_date_and_a_copy_sees_its_own_upstream(own, command, monkeypatch, tmp_path):
    """Records name the upstream folders by path: a run folder moved (mv runs runs2) made every stage after the
    trainings recompute, saying 'seed_train's output changed', and in a copy a stage compared its upstream bytes
    with the original's: heatmaps made again to other bytes in the copy left its guide labels up to date."""
    run_all(command, own, SEGMENTER)
    moved = tmp_path / "moved"
    shutil.move(own["out_root"], moved)
    own["out_root"] = moved
    assert all("up to date" in out for out in run_all(command, own, SEGMENTER))
    copy = tmp_path / "copy"
    shutil.copytree(moved, copy)
    own["out_root"] = copy
    seeded = torch.manual_seed
    monkeypatch.setattr(torch, "manual_seed", lambda seed: seeded(seed + 1))
    run_all(command, own, ("seed_train", "seed_heatmaps"), "--overridecache")   # other bytes, in the copy alone
    out = run_all(command, own, ("guide_labels",))[0]   # (its record names the original's folder, which it left)
    assert "it was made from the seed_heatmaps folder" in out and "recomputing it" in out, out
    own["out_root"] = moved
    assert all("up to date" in out for out in run_all(command, own, SEGMENTER))


def test_two_stale_inputs_are_remade_before_the_folder_that_reads_them(tmp_path):
    """A guide folder reading seeds and saliency maps that are both out of date (their records name inputs that
    changed): both come first, each once, in the order the guide's record lists them."""
    from guidedlabelling.fingerprint import Digests, remade_in_order, staleness

    def made(name, upstream, inputs):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "inputs.json").write_text(json.dumps({"fingerprint": "f", "inputs": inputs, "upstream": upstream}))
        (folder / "done.json").write_text(json.dumps({"fingerprint": "f", "output_fingerprint": "o", "outputs": {}}))
        return folder
    source = tmp_path / "tags.csv"
    source.write_text("image,tags\n")
    seeds = made("seeds", {}, {str(source): "a digest of another content"})
    maps = made("maps", {}, {str(source): "a digest of another content"})
    guide = made("guide", {"seed_heatmaps": str(seeds), "saliency": str(maps)},
                 {"upstream seed_heatmaps": "o", "upstream saliency": "o"})
    digests, checked = Digests(), {}
    assert staleness(guide, digests, checked) == (f"the seed_heatmaps and saliency outputs it reads ({seeds}, {maps}) "
                                                  "are themselves out of date")
    assert remade_in_order("guide_labels", guide, digests, checked) == [
        ("seed_heatmaps", seeds), ("saliency", maps), ("guide_labels", guide)]
    assert remade_in_order("seed_heatmaps", seeds, digests, checked) == [("seed_heatmaps", seeds)]


def test_a_photo_added_to_the_set_is_said_to_be_added(own, command):
    """A new photo and its row: the first stage names the photo as added (not as changed) and tags.csv as changed."""
    run_all(command, own, ("seed_train",))
    shutil.copy(own["images"] / "a.jpg", own["images"] / "g.jpg")
    shutil.copy(own["masks"] / "a.png", own["masks"] / "g.png")
    with open(own["tags"], "a") as f:
        f.write("g.jpg,cat,train\n")
    (out,) = run_all(command, own, ("seed_train",))
    assert f"{own['tags']} changed, {own['images'] / 'g.jpg'} was added since it was made; recomputing it" in out


def test_a_photo_added_or_a_row_removed_keeps_the_other_images_maps(own, command):
    """Saliency maps depend on the image and the saliency network alone: a row added remade every map (85 for 5 new
    photos: a probe). Now the maps of the images it had are kept (their files untouched) and the new image's is
    made; a row removed keeps the rest too; an image edited in place remakes its map alone (it remade them all: 47 s
    for one photo of 3000, a probe)."""
    run_all(command, own, ("saliency_train", "saliency"))
    maps = folder(own, "saliency")
    stamps = {p.name: p.stat().st_mtime_ns for p in maps.glob("*.png")}
    shutil.copy(own["images"] / "a.jpg", own["images"] / "g.jpg")
    shutil.copy(own["masks"] / "a.png", own["masks"] / "g.png")
    with open(own["tags"], "a") as f:
        f.write("g.jpg,cat,val\n")
    (out,) = run_all(command, own, ("saliency",))
    assert f"{own['images'] / 'g.jpg'}" in out and "since it was made; keeping the outputs of the images it had " \
        "unchanged, making the others'" in out and "saliency val: 1 of 3 images to do" in out, out
    assert {p.name: p.stat().st_mtime_ns for p in maps.glob("*.png") if p.name != "g.png"} == stamps
    assert np.array_equal(np.array(Image.open(maps / "g.png")), np.array(Image.open(maps / "a.png")))   # a's copy
    assert json.loads((maps / "done.json").read_text())["fingerprint"] == \
        json.loads((maps / "inputs.json").read_text())["fingerprint"]
    own["tags"].write_text(own["tags"].read_text().replace("g.jpg,cat,val\n", "").replace("f.png,dog,val\n", ""))
    (out,) = run_all(command, own, ("saliency",))
    assert "keeping the outputs of the images it had" in out and (maps / "a.png").stat().st_mtime_ns == stamps["a.png"]
    assert "up to date" in run_all(command, own, ("saliency",))[0]
    before = {p.name: p.stat().st_mtime_ns for p in maps.glob("*.png")}
    Image.fromarray(255 - np.array(Image.open(own["images"] / "b.png"))).save(own["images"] / "b.png")
    (out,) = run_all(command, own, ("saliency",))
    assert f"{own['images'] / 'b.png'} changed since it was made; keeping the outputs of the images it had " \
        "unchanged, making the others'" in out and "1 of " in out, out
    assert {p.name for p in maps.glob("*.png") if p.stat().st_mtime_ns != before[p.name]} == {"b.png"}
    alone = folder(own, "saliency").parent / "alone"
    code, _, err = command("saliency", *own_args(own), "--out_dir", alone)   # the map b's file makes now
    assert code == 0, err
    assert np.array_equal(np.array(Image.open(maps / "b.png")), np.array(Image.open(alone / "b.png")))


def test_a_val_photo_added_or_removed_keeps_the_guide_labels_and_the_segmenter(own, command):
    """The guide labels read the training images' maps alone: a val photo added remade them all, retrained the
    segmenter and tested every val image again (the saliency folder's fingerprint counts both splits). Now they and
    the segmenter are up to date, the saliency maps and the test make the new image's alone, and a row removed
    makes nothing; the outputs are a fresh run's."""
    run_all(command, own, SEGMENTER)
    made = {stage: {p.name: p.stat().st_mtime_ns for p in folder(own, stage).iterdir() if p.is_file()}
            for stage in ("guide_labels", "seg_train")}
    shutil.copy(own["images"] / "e.jpg", own["images"] / "g.jpg")
    shutil.copy(own["masks"] / "e.png", own["masks"] / "g.png")
    with open(own["tags"], "a") as f:
        f.write("g.jpg,cat,val\n")
    outputs = dict(zip(SEGMENTER, run_all(command, own, SEGMENTER)))
    assert "up to date" in outputs["guide_labels"] and "up to date" in outputs["seg_train"], outputs
    assert "saliency val: 1 of 3 images to do" in outputs["saliency"], outputs["saliency"]
    assert "segmentation test on val: 1 of 3 images to do" in outputs["segmentations"], outputs["segmentations"]
    assert made == {stage: {p.name: p.stat().st_mtime_ns for p in folder(own, stage).iterdir() if p.is_file()}
                    for stage in made}
    own["tags"].write_text(own["tags"].read_text().replace("f.png,dog,val\n", ""))
    outputs = dict(zip(SEGMENTER, run_all(command, own, SEGMENTER)))
    assert all("up to date" in outputs[stage] for stage in ("guide_labels", "seg_train")), outputs
    assert "segmentation test on val: 0 of 2 images to do" in outputs["segmentations"], outputs["segmentations"]
    fresh = dict(own, out_root=own["out_root"].parent / "fresh")
    run_all(command, fresh, SEGMENTER)
    for stage in ("saliency", "guide_labels", "segmentations"):
        kept, anew = folder(own, stage), folder(fresh, stage)
        assert sorted(p.name for p in kept.glob("*.png")) == sorted(p.name for p in anew.glob("*.png")), stage
        assert all(p.read_bytes() == (kept / p.name).read_bytes() for p in anew.glob("*.png")), stage


def test_a_val_row_added_keeps_the_fully_supervised_reference_a_train_row_retrains_it(own, command):
    """The reference trains on the training split's masks: it counted the images of every row of the tags CSV, so a
    val photo added retrained it. Now it counts those of its split (the JSON key names it), and a training row
    added still retrains it."""
    def reference(own):
        code, out, err = command("seg_train", *own_args(own), "--labels", "gt")
        assert code == 0, out + err
        return out
    reference(own)
    for name, split, fresh in (("g", "val", False), ("h", "train", True)):
        shutil.copy(own["images"] / "e.jpg", own["images"] / f"{name}.jpg")
        shutil.copy(own["masks"] / "e.png", own["masks"] / f"{name}.png")
        with open(own["tags"], "a") as f:
            f.write(f"{name}.jpg,cat,{split}\n")
        out = reference(own)
        assert ("up to date" not in out) == fresh, out
        assert not fresh or f"the train images {own['tags']} lists changed" in out, out


def same_mat(a, b):
    """Two heatmap MAT-files hold the same maps, ids and classes; their class scores agree to float32 rounding: an
    image forwarded in a batch of other size (alone, where it was added) differs in the last bits on some CPUs (a
    2-core AVX-512 Xeon: 2.3e-10), the maps not."""
    x, y = scipy.io.loadmat(a), scipy.io.loadmat(b)
    keys = sorted(k for k in x if not k.startswith("__"))
    return keys == sorted(k for k in y if not k.startswith("__")) and all(
        np.allclose(x[k], y[k], rtol=1e-6, atol=0) if k == "scores" else np.array_equal(x[k], y[k]) for k in keys)


def test_a_val_row_added_or_removed_keeps_the_other_val_heatmaps_a_row_retagged_remakes_them(own, command):
    """The seed heatmaps hold the maps of an image's own tags: a val row added made every val heatmap again (the val
    rows of the CSV changed). Now the others are kept and the new image's made, a row removed makes none, and the
    heatmaps are a fresh run's; a row's tags changed still remakes them all."""
    def val_heatmaps(own):
        code, out, err = command("seed_heatmaps", *own_args(own), "--seed_split", "test")
        assert code == 0, out + err
        return out

    run_all(command, own, ("seed_train",))
    val_heatmaps(own)
    heat = folder(own, "seed_heatmaps")   # (the val split's: seed_split test)
    stamps = {p.name: p.stat().st_mtime_ns for p in heat.glob("*.mat") if p.name != "cls_res.mat"}
    shutil.copy(own["images"] / "e.jpg", own["images"] / "g.jpg")
    shutil.copy(own["masks"] / "e.png", own["masks"] / "g.png")
    with open(own["tags"], "a") as f:
        f.write("g.jpg,cat,val\n")
    out = val_heatmaps(own)
    assert "keeping the outputs of the images it had unchanged" in out and "1 of 3 images to do" in out, out
    own["tags"].write_text(own["tags"].read_text().replace("f.png,dog,val\n", ""))
    out = val_heatmaps(own)
    assert "keeping the outputs of the images it had unchanged" in out and "0 of 2 images to do" in out, out
    assert {p.name: p.stat().st_mtime_ns for p in heat.glob("*.mat") if p.name != "cls_res.mat"} == \
        {"e.mat": stamps["e.mat"]} | {"g.mat": (heat / "g.mat").stat().st_mtime_ns}
    fresh = dict(own, out_root=own["out_root"].parent / "fresh")
    run_all(command, fresh, ("seed_train",))
    val_heatmaps(fresh)
    anew = folder(fresh, "seed_heatmaps")
    assert sorted(p.name for p in anew.glob("*.mat")) == ["cls_res.mat", "e.mat", "g.mat"]
    assert all(same_mat(heat / p.name, p) for p in anew.glob("*.mat"))
    own["tags"].write_text(own["tags"].read_text().replace("g.jpg,cat,val", "g.jpg,dog,val"))
    retag_mask(own, "g", 2)
    out = val_heatmaps(own)
    assert "recomputing it" in out and "2 of 2 images to do" in out, out


class Key(str):
    """A manifest key that counts the comparisons made with it: membership in a list compares with each member."""
    compared = 0

    def __eq__(self, other):
        Key.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_thousands_of_photos_added_are_told_and_kept_apart_in_linear_time():
    """since_made and images_come_or_go on the keys of 4000 photos added with rows and no masks (their masks' keys
    absent then and now): each key is compared a few times, not with every other key (a list's membership test, which
    took minutes at VOC's 10,582)."""
    n = 4000
    images = [Key(f"/i/im{k:05d}.jpg") for k in range(n)]
    masks = [Key(f"{EVALUATED}/m/im{k:05d}.png") for k in range(n)]
    old = {Key("/t.csv"): "1"}
    new = old | dict.fromkeys(images, "d") | dict.fromkeys(masks, ABSENT)
    keys = images + masks
    Key.compared = 0
    assert since_made(keys, old, new) == f"{images[0]}, {images[1]}, {images[2]} and {n - 3} more were added since " \
        "it was made"
    assert images_come_or_go(keys, old, new) == images
    assert Key.compared < 10 * len(keys)


def test_rows_that_only_came_or_went_leave_the_other_images_outputs():
    """rows_came_or_went: a split's rows changed only by rows added or removed is no change of its own (the images
    of those rows are); a row retagged, a class added to the CSV, or no record of the rows, is."""
    key = TAG_SPLIT + json.dumps(["val", 20, "/i", "/t.csv"])
    rows = [["e", ["e.jpg", ["cat"], "val"]], ["f", ["f.png", ["dog"], "val"]]]

    def kept(then, now):
        return rows_came_or_went([key, "/i/g.jpg"], {SPLIT_ROWS: {key: then}}, {SPLIT_ROWS: {key: now}})

    added = rows + [["g", ["g.jpg", ["cat"], "val"]]]
    assert kept([["cat", "dog"], rows], [["cat", "dog"], added]) == ["/i/g.jpg"]
    assert kept([["cat", "dog"], added], [["cat", "dog"], rows[:1]]) == ["/i/g.jpg"]
    retagged = [rows[0], ["f", ["f.png", ["cat"], "val"]]]
    assert kept([["cat", "dog"], rows], [["cat", "dog"], retagged]) == [key, "/i/g.jpg"]
    assert kept([["cat", "dog"], rows], [["bird", "cat", "dog"], added]) == [key, "/i/g.jpg"]
    assert kept(None, [["cat", "dog"], added]) == [key, "/i/g.jpg"]


def test_a_per_image_output_is_keyed_by_the_files_of_it_a_stage_reads(tmp_path):
    """files_read_digest: the maps of images a stage does not read (another split's, one added or gone) leave it as
    it was; a map it reads, or the class scores beside per-image heatmaps, changed change it; a folder whose
    done.json records no digests of its outputs (an older version's) has none."""
    def digest(outputs, suffix=".png"):
        (tmp_path / "done.json").write_text(json.dumps({"output_digests": outputs}))
        return files_read_digest(tmp_path, suffix, ["a", "b"])

    maps = {"a.png": "1", "b.png": "2", "e.png": "3"}
    assert digest(maps) == digest(maps | {"g.png": "4"}) == digest({"a.png": "1", "b.png": "2"})
    assert len({digest(maps), digest(maps | {"a.png": "5"}), digest({"a.png": "1", "e.png": "3"})}) == 3
    heat = {"a.mat": "1", "b.mat": "2", "cls_res.mat": "6"}
    assert digest(heat, ".mat") != digest(heat | {"cls_res.mat": "7"}, ".mat")
    assert digest(heat | {"e.mat": "3"}, ".mat") == digest(heat, ".mat")
    (tmp_path / "done.json").write_text(json.dumps({"outputs": {}}))
    assert files_read_digest(tmp_path, ".png", ["a"]) is None


def test_an_upstream_made_again_since_a_record_keyed_it_by_its_fingerprint_remakes_every_output(tmp_path):
    """A folder whose record keyed a per-image upstream by its fingerprint (an older version's), stale for another
    reason (a map of the user's edited): the upstream output made again to other bytes since, its fingerprint the
    same, is a change, and every image's output is made again; keyed_otherwise left it out of the changes, so the
    other images' guide labels of the former heatmaps were kept. Not made again, it is no change."""
    heat, out = tmp_path / "heat", tmp_path / "guide"
    heat.mkdir()
    out.mkdir()
    (heat / "done.json").write_text(json.dumps({"output_fingerprint": "F", "outputs_digest": "after",
                                                "output_digests": {"a.mat": "2", "b.mat": "3"}}))
    for name in ("a.png", "b.png"):
        (out / name).write_bytes(b"label")
    key, upstream = UPSTREAM + "seed_heatmaps", {"seed_heatmaps": str(heat)}
    manifest = {"inputs": {key: "by files", "/maps/a.png": "2"}, "upstream": upstream, "fingerprint": "now",
                READ_IDS: {"seed_heatmaps": ["a", "b"]}}

    def stale(made):
        record = {"inputs": {key: "F", "/maps/a.png": "1"}, "upstream": upstream, "fingerprint": "then",
                  "upstream_digests": {"seed_heatmaps": made}}
        why, changed = runner.why_stale(out, {}, record, manifest)
        return changed, runner.kept_outputs(out, why, changed, record, manifest, ".png")[0]

    assert stale("before") == (["/maps/a.png", key], None)
    assert stale("after") == (["/maps/a.png"], ["/maps/a.png"])


def test_an_upstream_made_again_to_the_same_bytes_since_a_record_keyed_it_by_its_fingerprint_is_no_change(tmp_path):
    """A segmenter trained by a version before files_read_digest on guide labels (its record keys them by their
    fingerprint) whose guide labels were made again to the same bytes (a val map added to the saliency folder they
    read, which their own record keyed whole): the segmenter's manifest keys them as recorded and no message calls
    them changed; it was retrained, 'guide_labels's output changed since it was made'. Other bytes: a change."""
    guide, out = tmp_path / "guide", tmp_path / "seg"
    guide.mkdir()
    out.mkdir()
    (out / "model.pth").write_bytes(b"model")
    (guide / "done.json").write_text(json.dumps({"output_fingerprint": "F2", "outputs_digest": "same",
                                                 "output_digests": {"a.png": "1"}}))
    key, upstream = UPSTREAM + "guide_labels", {"guide_labels": str(guide)}
    manifest = {"inputs": {key: "by files"}, "upstream": upstream, "fingerprint": "now",
                READ_IDS: {"guide_labels": ["a"]}}

    def record(made):
        return {"inputs": {key: "F1"}, "upstream": upstream, "fingerprint": "then",
                "upstream_digests": {"guide_labels": made}}

    assert runner.why_stale(out, {}, record("same"), manifest)[1] == []
    assert runner.why_stale(out, {}, record("other"), manifest)[1] == [key]
    assert preflight.as_recorded_bytes({key: "F2", "x": "1"}, upstream, record("same")) == {key: "F1", "x": "1"}
    assert preflight.as_recorded_bytes({key: "F2"}, upstream, record("other")) == {key: "F2"}


def test_a_photo_made_readable_again_gets_its_map_alone(own, command):
    """A photo that could not be read (truncated) has no map; copied again whole, it is an image edited in place
    that had no output: its map alone is made, as a fresh run makes it (every map of the folder was made again, as
    for an input that is not an image: a probe)."""
    run_all(command, own, ("saliency_train", "saliency"))
    maps = folder(own, "saliency")
    whole = (own["images"] / "b.png").read_bytes()
    (own["images"] / "b.png").write_bytes(whole[:len(whole) // 2])
    (out,) = run_all(command, own, ("saliency",))
    assert "keeping the outputs of the images it had unchanged" in out and not (maps / "b.png").exists(), out
    stamps = {p.name: p.stat().st_mtime_ns for p in maps.glob("*.png")}
    (own["images"] / "b.png").write_bytes(whole)
    (out,) = run_all(command, own, ("saliency",))
    assert f"{own['images'] / 'b.png'} changed since it was made; keeping the outputs of the images it had " \
        "unchanged, making the others'" in out and "1 of " in out, out
    assert {p.name: p.stat().st_mtime_ns for p in maps.glob("*.png") if p.name != "b.png"} == stamps
    alone = maps.parent / "alone"
    code, _, err = command("saliency", *own_args(own), "--out_dir", alone)   # a fresh run's maps
    assert code == 0, err
    assert sorted(p.name for p in maps.glob("*.png")) == sorted(p.name for p in alone.glob("*.png"))
    for made in alone.glob("*.png"):
        assert np.array_equal(np.array(Image.open(maps / made.name)), np.array(Image.open(made))), made.name


def test_another_photo_under_an_images_id_gets_its_own_map(own, command):
    """A photo replaced by another file of its id (a.jpg by a.png), or one removed in a run and another of its name
    added in a later run: the kept folder held the former photo's map under the id, and the stage, seeing it there,
    made none (a probe: guide labels and segmenter then learnt from it). Their maps are those a fresh run makes."""
    def maps_of_a_fresh_run():
        fresh = dict(own, out_root=own["out_root"].parent / "fresh")
        shutil.rmtree(fresh["out_root"], ignore_errors=True)
        run_all(command, fresh, ("saliency_train", "saliency"))
        return {p.name: np.array(Image.open(p)) for p in folder(fresh, "saliency").glob("*.png")}

    run_all(command, own, ("saliency_train", "saliency"))
    maps = folder(own, "saliency")
    before = {p.name: np.array(Image.open(p)) for p in maps.glob("*.png")}
    Image.fromarray(255 - np.array(Image.open(own["images"] / "a.jpg"))).save(own["images"] / "a.png")
    (own["images"] / "a.jpg").unlink()
    own["tags"].write_text(own["tags"].read_text().replace("a.jpg,", "a.png,"))
    own["tags"].write_text(own["tags"].read_text().replace("e.jpg,cat,val\n", ""))   # e goes in this run
    (out,) = run_all(command, own, ("saliency",))
    assert "keeping the outputs of the images it had" in out and not (maps / "e.png").exists(), out
    e_before = np.array(Image.open(own["images"] / "e.jpg"))
    Image.fromarray(e_before[::-1].copy()).save(own["images"] / "e.jpg")   # another photo named e, in a later run
    own["tags"].write_text(own["tags"].read_text() + "e.jpg,cat,val\n")
    (out,) = run_all(command, own, ("saliency",))
    assert "keeping the outputs of the images it had" in out, out
    now, fresh = {p.name: np.array(Image.open(p)) for p in maps.glob("*.png")}, maps_of_a_fresh_run()
    assert now.keys() == fresh.keys() == before.keys()
    assert all(np.array_equal(now[name], fresh[name]) for name in now)
    assert not np.array_equal(now["a.png"], before["a.png"]) and not np.array_equal(now["e.png"], before["e.png"])


def test_tags_saved_again_by_a_spreadsheet_leave_every_stage_current(own, command):
    """Other line ends, quotes and spaces (what a spreadsheet's 'save as CSV' changes): every stage is up to date
    (each made everything again); a tag changed is still seen."""
    run_all(command, own, METHOD)
    text = own["tags"].read_text()
    rows = list(csv.reader(text.splitlines()))
    with open(own["tags"], "w", newline="") as f:   # every field quoted, CRLF, tags reordered and spaced
        csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(
            rows[:1] + [[image, " ".join(reversed(tags.split())) + " ", *rest] for image, tags, *rest in rows[1:]])
    assert own["tags"].read_text() != text
    assert all("up to date" in out for out in run_all(command, own, METHOD))
    own["tags"].write_text(text.replace("a.jpg,cat", "a.jpg,dog", 1))
    retag_mask(own, "a", 2)
    (out,) = run_all(command, own, ("seed_train",))
    assert f"{own['tags']} changed since it was made; recomputing it" in out


def test_folders_made_at_the_files_size_are_remade_once_the_work_size_shrinks_the_images(own, command,
                                                                                          monkeypatch):
    """Folders of a version before max_image_side (no such setting in config.yaml, none in the manifest) were made
    at the files' size (24 x 32): with a default that shrinks the images (16: 12 x 16) they are not reused."""
    run_all(command, own, ("seed_train", "seed_heatmaps"))
    for stage in ("seed_train", "seed_heatmaps"):
        config = folder(own, stage) / "config.yaml"
        stored = yaml.safe_load(config.read_text())
        assert stored["data"].pop("max_image_side") == 1024
        config.write_text(yaml.safe_dump(stored))
        assert not any(k.startswith("work size") for k in json.loads((folder(own, stage) / "inputs.json").read_text())
                       ["inputs"])   # no image shrinks: the manifest is what the former version wrote
    assert scipy.io.loadmat(folder(own, "seed_heatmaps") / "a.mat")["heatmap"].shape[-2:] == (24, 32)
    outputs = run_all(command, own, ("seed_train", "seed_heatmaps"))   # the former default: up to date
    assert all("up to date" in out for out in outputs)
    monkeypatch.setitem(SHARED["data"], "max_image_side", (16, "a default that shrinks the tiny images"))
    outputs = run_all(command, own, ("seed_train", "seed_heatmaps"))
    said = "the work size of 4 images changed since it was made; recomputing it"
    assert said in outputs[0] and f"seed_train's output, {said}" in outputs[1], outputs
    assert scipy.io.loadmat(folder(own, "seed_heatmaps") / "a.mat")["heatmap"].shape[-2:] == (12, 16)


def grow(own, image_id, name):
    """Make an image of the own dataset and its mask twice as large (48 x 64), edited in place."""
    for path, resample in ((own["images"] / name, Image.BILINEAR), (own["masks"] / f"{image_id}.png", Image.NEAREST)):
        Image.open(path).resize((64, 48), resample).save(path)


def test_a_photo_grown_past_the_work_size_remakes_its_own_map_alone(own, command, monkeypatch):
    """A photo replaced by a larger one that the work size shrinks (48 x 64 at max_image_side 40: 30 x 40) while
    the others stay within it: only its map is made again (every map was: the work size was keyed per split, a
    probe), at its work size, as a fresh run makes it; shrunk back within it, only its map again."""
    monkeypatch.setitem(SHARED["data"], "max_image_side", (40, "shrinks a grown 48 x 64 image alone"))
    run_all(command, own, ("saliency_train", "saliency"))
    maps = folder(own, "saliency")
    before = {p.name: p.stat().st_mtime_ns for p in maps.glob("*.png")}
    grow(own, "e", "e.jpg")
    (out,) = run_all(command, own, ("saliency",))
    assert f"{own['images'] / 'e.jpg'}, {own['masks'] / 'e.png'} changed since it was made; keeping the outputs of " \
        "the images it had unchanged, making the others'" in out and "1 of 2 images to do" in out, out
    assert {p.name for p in maps.glob("*.png") if p.stat().st_mtime_ns != before[p.name]} == {"e.png"}
    assert Image.open(maps / "e.png").size == (40, 30)
    fresh = dict(own, out_root=own["out_root"].parent / "fresh")
    run_all(command, fresh, ("saliency_train", "saliency"))
    made = {p.name: np.array(Image.open(p)) for p in folder(fresh, "saliency").glob("*.png")}
    assert made.keys() == before.keys()
    assert all(np.array_equal(np.array(Image.open(maps / name)), made[name]) for name in made)
    before = {p.name: p.stat().st_mtime_ns for p in maps.glob("*.png")}
    for path in (own["images"] / "e.jpg", own["masks"] / "e.png"):
        Image.open(path).resize((32, 24), Image.NEAREST).save(path)
    (out,) = run_all(command, own, ("saliency",))
    assert "keeping the outputs of the images it had unchanged" in out, out
    assert {p.name for p in maps.glob("*.png") if p.stat().st_mtime_ns != before[p.name]} == {"e.png"}
    assert Image.open(maps / "e.png").size == (32, 24)


def made_keying_the_work_size_per_split(own, command, monkeypatch, stages):
    """Run the stages as versions up to fbe18ef did (the work size keyed per split), e grown past max_image_side
    40 so that val's key is there."""
    monkeypatch.setitem(SHARED["data"], "max_image_side", (40, "shrinks a grown 48 x 64 image alone"))
    grow(own, "e", "e.jpg")
    made_manifest = preflight.Checked.made_manifest
    with monkeypatch.context() as m:
        m.setattr(preflight.Checked, "made_manifest", lambda self, way="now", sized="image": made_manifest(
            self, way, "split"))
        run_all(command, own, stages)


def test_folders_that_keyed_the_work_size_per_split_stay_current(own, command, monkeypatch):
    """Versions up to fbe18ef keyed the work size per split ('work size of val'): their folders stay up to date."""
    made_keying_the_work_size_per_split(own, command, monkeypatch, SEGMENTER)
    assert json.loads((folder(own, "saliency") / "inputs.json").read_text())["inputs"][WORK_SIZE + "val"] == "40"
    assert all("up to date" in out for out in run_all(command, own, SEGMENTER))


def test_a_photo_edited_in_a_folder_that_keyed_the_work_size_per_split_remakes_its_own_map_alone(own, command,
                                                                                                 monkeypatch):
    """A folder of a version up to fbe18ef (work size keyed per split, 'work size of val'), one photo edited since
    (a.jpg, not shrunk): only its map is made again, as that version did, and the message names it alone (every map
    was made again, 'a.jpg, the work size of e.jpg, work size of val changed', a probe)."""
    made_keying_the_work_size_per_split(own, command, monkeypatch, ("saliency_train", "saliency"))
    maps = folder(own, "saliency")
    assert WORK_SIZE + "val" in json.loads((maps / "inputs.json").read_text())["inputs"]
    before = {p.name: p.stat().st_mtime_ns for p in maps.glob("*.png")}
    path = own["images"] / "a.jpg"
    image = np.array(Image.open(path))
    image[0, 0] = 0
    Image.fromarray(image).save(path)
    (out,) = run_all(command, own, ("saliency",))
    assert f"{path} changed since it was made; keeping the outputs of the images it had unchanged" in out, out
    assert {p.name for p in maps.glob("*.png") if p.stat().st_mtime_ns != before[p.name]} == {"a.png"}
    assert all("up to date" in out for out in run_all(command, own, ("saliency",)))


def test_the_work_size_keyed_per_split_then_per_image_now_is_not_a_change():
    """The work size keys of a manifest recorded per split and of today's per image say the same where
    max_image_side is the same: only the images whose files changed are remade; at another max_image_side, all."""
    old = {"/i/a.jpg": "d0", "/i/e.jpg": "d1", WORK_SIZE + "val": "40"}
    new = old | {"/i/a.jpg": "d2", IMAGE_WORK_SIZE + "/i/e.jpg": "40"}
    new.pop(WORK_SIZE + "val")
    changed = ["/i/a.jpg", IMAGE_WORK_SIZE + "/i/e.jpg", WORK_SIZE + "val"]
    assert images_come_or_go(changed, old, new, lambda key: True) == ["/i/a.jpg"]
    assert since_made(changed, old, new) == "/i/a.jpg changed since it was made"
    smaller = new | {IMAGE_WORK_SIZE + "/i/e.jpg": "30"}
    assert images_come_or_go(changed, old, smaller, lambda key: True) is None
    grown = new | {IMAGE_WORK_SIZE + "/i/a.jpg": "40"}
    assert images_come_or_go(changed + [IMAGE_WORK_SIZE + "/i/a.jpg"], old, grown, lambda key: True) == \
        ["/i/a.jpg", IMAGE_WORK_SIZE + "/i/a.jpg"]


def test_a_stale_upstream_output_is_an_error_naming_what_changed(own, command):
    run_all(command, own, ("seed_train", "seed_heatmaps"))
    edit_in_place(own["tags"], "c.jpg,cat", "c.jpg,dog")
    retag_mask(own, "c", 2)
    code, _, err = command("seed_heatmaps", *own_args(own))
    assert code == 2
    assert (f"the output of stage seed_train is out of date, the train rows of {own['tags']} changed since it was "
            f"made; rerun ./src/seed/train.py {own_sets(own)} with the same --config first") in err
    run_all(command, own, ("seed_train", "seed_heatmaps"))
    scores = scipy.io.loadmat(folder(own, "seed_heatmaps") / "cls_res.mat")
    ids = [str(np.ravel(v)[0]) for v in scores["ids"].ravel()]
    np.testing.assert_array_equal(scores["gt"][ids.index("c")], [0, 1])   # c is a dog now


def test_a_replaced_image_and_a_replaced_mask(own, command, tmp_path):
    """An image replaced with one of the same size and time stamp reruns training. A mask is read only to score
    outputs: the stages that score with it keep their maps and labels and score them again, as a fresh run
    scores, and nothing downstream of them reruns (the probe's case: an edited val mask retrained the
    segmenter)."""
    run_all(command, own)
    image = own["images"] / "d.png"
    st = image.stat()
    Image.fromarray(np.ascontiguousarray(np.asarray(Image.open(image))[..., ::-1])).save(image)  # blue -> red
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert image.stat().st_size == st.st_size   # the PNG of the recoloured picture has the same size
    out = run_all(command, own, ("seed_train",))[0]
    assert f"{image} changed since it was made; recomputing it" in out
    run_all(command, own, SEGMENTER)
    labels = {p: p.stat().st_mtime_ns for p in folder(own, "guide_labels").glob("*.png")}
    scored = {"saliency": "saliency", "guide_labels": "guide_labels", "segmentations": "segmentations"}

    def summaries():  # done.json of each (without the path of the results file, which names the run's folder)
        return {stage: {k: v for k, v in json.loads((folder(own, name) / "done.json").read_text()).items()
                        if k != "results"} for stage, name in scored.items()}
    before = summaries()
    train, val = own["masks"] / "a.png", own["masks"] / "e.png"
    for mask in (train, val):
        Image.fromarray(np.zeros((24, 32), np.uint8)).save(mask)
    outputs = dict(zip(SEGMENTER, run_all(command, own, SEGMENTER)))
    assert [stage for stage, out in outputs.items() if "up to date" not in out] == list(scored)
    for stage, edited in (("saliency", f"{train}, {val}"), ("guide_labels", train), ("segmentations", val)):
        assert f"{edited} changed since it was made; scoring its outputs again" in outputs[stage]
    assert {p: p.stat().st_mtime_ns for p in labels} == labels      # the guide labels were not written again
    rerun = summaries()
    assert rerun["guide_labels"]["guide"]["mIoU"] != before["guide_labels"]["guide"]["mIoU"]
    assert rerun["segmentations"]["mIoU"] != before["segmentations"]["mIoU"]
    own["out_root"] = tmp_path / "fresh"
    run_all(command, own, SEGMENTER)
    assert rerun == summaries()


def test_a_mask_edited_after_an_upgrade_scores_outputs_again_and_reruns_nothing_after(own, command, monkeypatch):
    """Folders made before done.json held a digest of the outputs (here: none written) and scored again now have
    one; the stages after them, whose records hold the upstream fingerprint alone, stay up to date
    (fingerprint.upstream_record). The panels of an earlier --vis run showed the former mask: they go, and --vis
    draws them again."""
    with monkeypatch.context() as m:
        m.setattr(runner, "outputs_record", lambda folder, names: {})
        run_all(command, own, SEGMENTER, "--set", "vis=true")
    for mask in (own["masks"] / "a.png", own["masks"] / "e.png"):
        Image.fromarray(np.zeros((24, 32), np.uint8)).save(mask)
    outputs = dict(zip(SEGMENTER, run_all(command, own, SEGMENTER)))
    assert [stage for stage, out in outputs.items() if "up to date" not in out] == \
        ["saliency", "guide_labels", "segmentations"]
    assert all("scoring its outputs again" in outputs[stage] and "recomputing" not in outputs[stage]
               for stage in ("saliency", "guide_labels", "segmentations"))
    for stage in ("guide_labels", "segmentations"):
        assert json.loads((folder(own, stage) / "done.json").read_text())["outputs_digest"]
        assert not (folder(own, stage) / "vis").exists()
    outputs = dict(zip(SEGMENTER, run_all(command, own, SEGMENTER, "--set", "vis=true")))
    assert all("recomputing" not in out for out in outputs.values())
    assert f"missing panels drawn into {folder(own, 'guide_labels') / 'vis'}: 4" in outputs["guide_labels"]
    assert f"missing panels drawn into {folder(own, 'segmentations') / 'vis'}: 2" in outputs["segmentations"]


def test_an_edited_mask_recomputes_a_stage_that_draws_it_or_whose_output_is_damaged(own, command):
    """Re-scoring keeps per-image files as they are: not when panels show the old mask (--set vis=true), nor
    when an output was damaged since."""
    mask = own["masks"] / "a.png"
    run_all(command, own, METHOD, "--set", "vis=true")
    panel = folder(own, "guide_labels") / "vis" / "a.png"
    before = panel.read_bytes()
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(mask)
    out = run_all(command, own, METHOD, "--set", "vis=true")[4]
    assert f"{mask} changed since it was made; recomputing it" in out and panel.read_bytes() != before
    label = folder(own, "guide_labels") / "b.png"
    label.write_bytes(label.read_bytes()[:60])
    Image.fromarray(np.ones((24, 32), np.uint8)).save(mask)
    out = run_all(command, own)[4]
    assert f"{mask} changed since it was made; recomputing it" in out and "scoring" not in out
    assert np.asarray(Image.open(label)).shape == (24, 32)


def test_the_same_data_written_another_way_is_up_to_date_and_another_project_is_not_refused(own, command, tmp_path,
                                                                                            monkeypatch):
    """The probe's case: --images D/images/ with a trailing slash, or relative, was 'made with other settings', and
    another project whose folders are also called images/ and tags.csv was refused (folders were named by the
    last part of the path)."""
    run_all(command, own, ("seed_train",))
    monkeypatch.chdir(own["base"].parent)
    relative = dict(own, images="own/images/", tags="./own/tags.csv", masks="own/../own/masks",
                    saliency_data="own/saliency/")
    assert "seed_train: up to date" in run_all(command, relative, ("seed_train",))[0]
    other = make_own(tmp_path / "other") | {"out_root": own["out_root"]}
    edit_in_place(other["tags"], "a.jpg,cat", "a.jpg,dog")
    retag_mask(other, "a", 2)
    out = run_all(command, other, ("seed_train",))[0]
    assert "up to date" not in out and len(stage_folders(own["out_root"] / "tiny" / "seed_train")) == 2


def test_a_folder_given_instead_of_an_upstream_output_is_one_folder_however_written(own, command, monkeypatch):
    """A user's folder of heatmaps as --seed_dir, given relative, then absolute with a trailing slash: the guide
    labels are up to date (its files were recorded by the path as written)."""
    run_all(command, own, METHOD[:4])
    seeds = own["base"] / "my_heatmaps"
    seeds.mkdir()
    for mat in folder(own, "seed_heatmaps").glob("*.mat"):
        shutil.copy(mat, seeds)
    monkeypatch.chdir(own["base"])
    for given in ("my_heatmaps", f"{seeds}/"):
        code, out, err = command("guide_labels", *own_args(own), "--seed_dir", given)
        assert code == 0, out + err
    assert "guide_labels: up to date" in out


def test_another_training_of_the_same_inputs_given_as_the_model_is_not_up_to_date(own, command, tmp_path):
    """Two seed classifiers of the same inputs and other seeds share their outputs' fingerprint: heatmaps made
    from one with --model_dir were 'up to date' when given the other, and kept the first one's maps. The heatmaps
    of each go to the folder of the settings that trained it, as the run's own do; one --out_dir for both is an
    error naming the setting."""
    run_all(command, own, ("seed_train",))
    run_all(command, own, ("seed_train",), "--set", "seed_train.seed=1")
    second, first = sorted(stage_folders(own["out_root"] / "tiny" / "seed_train"), key=lambda f: "seed-1" not in f.name)
    assert json.loads((first / "done.json").read_text())["output_fingerprint"] == \
        json.loads((second / "done.json").read_text())["output_fingerprint"]
    maps, outs = {}, []
    for given in (first, second, second):
        code, out, err = command("seed_heatmaps", *own_args(own), "--model_dir", given)
        assert code == 0, out + err
        outs.append(out)
        made = [f for f in stage_folders(own["out_root"] / "tiny" / "seed_heatmaps")
                if ("seed-1" in f.name) == (given == second)]
        maps[given] = {p.name: scipy.io.loadmat(p)["heatmap"] for p in made[0].glob("*.mat") if p.name != "cls_res.mat"}
    assert f"{second}: its seed_train outputs were made with seed_train.seed 1 (this command's: 0); this command " \
        "uses those settings" in outs[1] and "seed_heatmaps: up to date" in outs[2]
    assert maps[first].keys() == maps[second].keys() and len(maps[first]) > 0
    assert any(not np.array_equal(maps[first][k], maps[second][k]) for k in maps[first])
    code, out, err = command("seed_heatmaps", *own_args(own), "--set", "seed_train.seed=1")  # the run's own folder
    assert code == 0, out + err
    made, = (f for f in stage_folders(own["out_root"] / "tiny" / "seed_heatmaps") if "seed-1" in f.name)
    assert all(np.array_equal(scipy.io.loadmat(made / k)["heatmap"], v) for k, v in maps[second].items())
    for given in (first, second):
        code, out, err = command("seed_heatmaps", *own_args(own), "--model_dir", given, "--out_dir", tmp_path / "one")
    assert code == 2 and "this folder was made with other settings (seed_train.seed 0 there, 1 here)" in err, err


def test_a_given_folder_brings_the_settings_its_outputs_were_made_with(own, command, tmp_path):
    """A stage command given a model trained at 48 px (--model_dir) made its heatmaps at the command's 32 px and
    recorded 32 (a probe: the release's user runs each stage by hand); the driver's run of that training makes them
    at 48. Now the folder's settings are the command's, said in a note, and its heatmaps are those of the driver's
    run; a setting given that the folder was made otherwise with is an error, and so is a folder of per-image
    outputs made from other data."""
    model = tmp_path / "model"
    run_all(command, own, ("seed_train",), "--out_dir", model, "--set", "seed_train.input_size=48")
    code, out, err = command("seed_heatmaps", *own_args(own), "--model_dir", model, "--out_dir", tmp_path / "maps")
    assert code == 0 and f"note: {model}: its seed_train outputs were made with seed_train.input_size 48 (this " \
        "command's: 32); this command uses those settings" in out and "seed heatmaps at 48 px" in out, out + err
    assert yaml.safe_load((tmp_path / "maps" / "config.yaml").read_text())["seed_train"]["input_size"] == 48
    run_all(command, own, ("seed_train", "seed_heatmaps"), "--set", "seed_train.input_size=48")   # the driver's way
    made = [f for f in stage_folders(own["out_root"] / "tiny" / "seed_heatmaps") if "input_size-48" in f.name]
    maps = [m for m in (tmp_path / "maps").glob("*.mat") if m.name != "cls_res.mat"]
    assert maps and all(np.array_equal(scipy.io.loadmat(made[0] / m.name)["heatmap"], scipy.io.loadmat(m)["heatmap"])
                        for m in maps)
    code, out, err = command("seed_heatmaps", *own_args(own), "--model_dir", model, "--set", "seed_train.input_size=40")
    assert code == 2 and err == f"error: {model}: seed_train's outputs made with other settings than those given " \
        "(seed_train.input_size 48 there, 40 given here); pass a folder made with them, or leave them out to use the " \
        "folder's\n", err
    code, out, err = command("guide_labels", *own_args(own), "--seed_dir", tmp_path / "maps", "--set",
                             "max_image_side=20")
    assert code == 2 and err == f"error: {tmp_path / 'maps'}: seed_heatmaps's outputs made from other data than this " \
        "command's (max_image_side 1024 there, 20 here); pass a folder of seed_heatmaps made from these images\n", err
    code, out, err = command("seed_heatmaps", *own_args(own), "--model_dir", model, "--out_dir", tmp_path / "half",
                             "--n", "1", "--N", "2")   # the second of two fragments (the 4 images are one block)
    assert code == 0, out + err
    code, out, err = command("guide_labels", *own_args(own), "--seed_dir", tmp_path / "half")
    assert code == 2 and f"{tmp_path / 'half'}: seed_heatmaps has not finished this folder; rerun the command that " \
        "made it (each of its --n/--N fragments) to finish it, or pass a finished folder" in err, err
    shutil.copytree(tmp_path / "maps", tmp_path / "whole")
    (tmp_path / "whole" / "done.json").unlink()   # unfinished, with every file the guide labels read: taken
    code, out, err = command("guide_labels", *own_args(own), "--seed_dir", tmp_path / "whole")
    assert code == 2 and "no finished output of stage saliency" in err and str(tmp_path / "whole") not in err, err
    code, out, err = command("seed_heatmaps", *own_args(own), "--model_dir", model / "model.pth")   # predict takes it
    assert code == 2 and f"{model / 'model.pth'}: a file, not a folder; pass the folder that holds it, {model}" in err


def test_outputs_of_a_given_model_retrained_in_place_with_other_settings_are_stale_downstream(own, command, tmp_path):
    """Heatmaps made from a seed classifier given with --model_dir; that folder is then trained again in place with
    another seed (same inputs, so the same output fingerprint): a later stage reading the heatmaps must not take
    them as current."""
    model = tmp_path / "my_model"
    run_all(command, own, ("seed_train",), "--out_dir", model)
    run_all(command, own, ("seed_heatmaps",), "--model_dir", model)
    run_all(command, own, ("seed_train",), "--out_dir", model, "--overridecache", "--set", "seed_train.seed=1")
    code, out, err = command("cls_eval", *own_args(own))
    assert code == 2 and "seed_heatmaps is out of date, seed_train's output changed since it was made" in err, out + err


def test_a_killed_run_does_not_resume_from_outputs_of_other_inputs(own, command):
    """A training folder with snapshots of other inputs (a killed run) is cleared, not resumed."""
    run_all(command, own, ("seed_train",))
    training = folder(own, "seed_train")
    (training / "done.json").unlink()
    (training / "model.pth").unlink()          # as a run killed after its snapshots
    edit_in_place(own["tags"], "a.jpg,cat", "a.jpg,dog")
    retag_mask(own, "a", 2)
    out = run_all(command, own, ("seed_train",))[0]
    assert "changed since it was made; recomputing it" in out and "resuming at iteration" not in out


def test_an_upstream_output_made_with_other_settings_is_an_error(own, command):
    """A preset edited after its upstream stage ran: the folder of these settings holds the old preset's output.
    Run alone, the downstream stage used to read it as if current."""
    run_all(command, own, ("seed_train",))
    preset = own["preset"].read_text()
    own["preset"].write_text(preset.replace("max_iter: 2, stepsize: 2", "max_iter: 3, stepsize: 2", 1))
    code, _, err = command("seed_heatmaps", *own_args(own))
    assert code == 2
    assert "the output of stage seed_train was made with other settings than these; rerun ./src/seed/train.py " \
           "with --overridecache" in err
    assert not (own["out_root"] / "tiny" / "seed_heatmaps").exists()


def test_damaged_outputs_are_recomputed_like_a_fresh_run(own, command, tmp_path):
    """The probe's case: a deleted guide label and a truncated model were reported as up to date."""
    run_all(command, own)
    model = folder(own, "seed_train") / "model.pth"
    label = next(folder(own, "guide_labels").glob("*.png"))
    model.write_bytes(model.read_bytes()[:100])
    label.unlink()
    outputs = run_all(command, own)
    assert f"{model.parent}: its output model.pth is damaged (100 bytes" in outputs[0]
    assert "up to date" in outputs[1]      # the same inputs made the retrained model: its heatmaps still hold
    assert f"{label.parent}: its output {label.name} is missing; recomputing it" in outputs[4]
    rerun = guide_done(own)
    own["out_root"] = tmp_path / "fresh"
    run_all(command, own)
    fresh = guide_done(own)
    assert rerun == fresh and label.is_file()


def test_what_later_runs_do_not_read_is_not_an_output(tmp_path):
    """Snapshots, vis/ and rule/ may be deleted to free space without the folder counting as damaged."""
    from guidedlabelling.fingerprint import output_sizes
    for name in ("a.png", "model.pth", "snapshot_iter_100.pth", "vis/a.png", "rule/a.png", "done.json", ".x.tmp"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name)
    assert output_sizes(tmp_path) == {"a.png": 5, "model.pth": 9}


def test_a_damaged_upstream_output_is_an_error_for_a_lone_stage(own, command):
    run_all(command, own, ("seed_train", "seed_heatmaps"))
    next(folder(own, "seed_heatmaps").glob("*.mat")).unlink()
    code, _, err = command("seed_heatmaps", *own_args(own), "--set", "overridecache=false")
    assert code == 0   # the stage itself recomputes
    run_all(command, own, ("saliency_train", "saliency"))
    victim = next(folder(own, "seed_heatmaps").glob("*.mat"))
    victim.unlink()
    code, _, err = command("guide_labels", *own_args(own))
    assert code == 2 and f"its output {victim.name} is missing; rerun ./src/seed/test.py" in err


def test_a_damaged_heatmap_in_an_unfinished_folder_is_one_line_naming_it(own, command):
    """A seed_heatmaps folder left unfinished (no done.json) with one damaged heatmap: the stage used to skip the file
    as done and end in scipy's IndexError when it collected the class scores."""
    run_all(command, own, ("seed_train", "seed_heatmaps"))
    heatmaps = folder(own, "seed_heatmaps")
    (heatmaps / "done.json").unlink()
    victim = next(heatmaps.glob("*.mat"))
    victim.write_bytes(victim.read_bytes()[:100])
    code, _, err = command("seed_heatmaps", *own_args(own))
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"error: {victim}: unreadable heatmap file (")
    assert "remove it and rerun ./src/seed/test.py" in err
    victim.unlink()
    assert run_all(command, own, ("seed_heatmaps",))


def test_an_emptied_heatmap_in_an_unfinished_folder_is_made_again(own, command):
    """An empty output (what a power cut can leave of a file renamed into place unflushed) used to count as done:
    the rerun stopped on it, one file a rerun. It is made again, as it was."""
    run_all(command, own, ("seed_train", "seed_heatmaps"))
    heatmaps = folder(own, "seed_heatmaps")
    (heatmaps / "done.json").unlink()
    victim = next(p for p in heatmaps.glob("*.mat") if p.name != "cls_res.mat")
    before = scipy.io.loadmat(victim)["heatmap"]
    victim.write_bytes(b"")
    out = run_all(command, own, ("seed_heatmaps",))[0]
    assert "1 of " in out and (heatmaps / "done.json").is_file(), out
    assert np.array_equal(scipy.io.loadmat(victim)["heatmap"], before)


def test_a_clear_killed_after_the_rename_leaves_no_half_folder(tmp_path, monkeypatch):
    from guidedlabelling import runner
    out = tmp_path / "stage"
    (out / "sub").mkdir(parents=True)
    for name in ("config.yaml", "a.png", "sub/b.png"):
        (out / name).write_text(name)
    real = runner.shutil.rmtree

    def killed(path, *args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(runner.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        runner.clear(out)
    assert not out.exists()                              # all or nothing: a rerun starts afresh
    monkeypatch.setattr(runner.shutil, "rmtree", real)
    leftover, = tmp_path.glob(".stage.cleared-*")
    runner.remove_leftovers(out)
    assert leftover.exists()                             # its process (this one) still runs: maybe still deleting
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftover.rename(tmp_path / f".stage.cleared-{dead.pid}")
    runner.remove_leftovers(out)
    assert list(tmp_path.iterdir()) == []                # a killed clear's leftover goes with the next run


def test_a_folder_of_the_longest_name_is_cleared_and_its_leftover_found(tmp_path, monkeypatch):
    """naming.MAX_BYTES left room for the lock alone: a stage folder named with 249 bytes (wide characters) was
    renamed aside to .<name>.cleared-<pid>, 'File name too long', and so never recomputed."""
    from guidedlabelling import naming
    out = tmp_path / ("照" * (naming.MAX_BYTES // 3))
    (out / "sub").mkdir(parents=True)
    monkeypatch.setattr(runner.shutil, "rmtree", lambda path, *args, **kwargs: None)   # killed after the rename
    runner.clear(out)
    assert not out.exists()
    leftover, = tmp_path.iterdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftover.rename(tmp_path / f"{leftover.name.rsplit('-', 1)[0]}-{dead.pid}")
    monkeypatch.undo()
    runner.remove_leftovers(out)
    assert list(tmp_path.iterdir()) == []
    bracketed = tmp_path / "init-[1]"   # a name holding '[' is no glob pattern
    (tmp_path / f".{bracketed.name}.cleared-{dead.pid}").mkdir()
    runner.remove_leftovers(bracketed)
    assert list(tmp_path.iterdir()) == []


def test_a_diverging_training_stops_with_one_line(own, command):
    code, out, err = command("seed_train", *own_args(own), "--set", "seed_train.base_lr=1000",
                             "--set", "seed_train.max_iter=4")
    assert code == 2 and len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert "Traceback" not in err and "at iteration" in err
    assert "the training diverged; lower base_lr (now 1000)" in err
    assert not list((own["out_root"] / "tiny" / "seed_train").glob("*/model.pth"))


def test_json_outputs_hold_null_for_nan(tmp_path):
    from guidedlabelling.io import save_json
    save_json(tmp_path / "a.json", {"mIoU": float("nan"), "per_class": [1.5, np.float32("inf")], "n": np.int64(3)})
    assert json.loads((tmp_path / "a.json").read_text()) == {"mIoU": None, "per_class": [1.5, None], "n": 3}


def test_a_file_recorded_absent_and_made_since_was_added():
    """A mask given later for an image that had none (recorded absent): added, not changed; one removed: went."""
    assert since_made(["/m/a.png"], {"/m/a.png": ABSENT}, {"/m/a.png": "d1"}) == "/m/a.png was added since it was made"
    assert since_made([EVALUATED + "/m/a.png"], {EVALUATED + "/m/a.png": ABSENT}, {EVALUATED + "/m/a.png": "d1"}) \
        == "/m/a.png was added since it was made"
    assert since_made(["/m/a.png"], {"/m/a.png": "d1"}, {"/m/a.png": ABSENT}) == "/m/a.png went since it was made"
    assert since_made(["/m/a.png"], {"/m/a.png": "d1"}, {"/m/a.png": "d2"}) == "/m/a.png changed since it was made"


def test_a_tags_csv_is_counted_by_what_its_rows_say(tmp_path):
    """Quotes, line ends, spaces, tag order and separators, an empty split column: the same rows; another tag, row
    order or split: other rows. A CSV that does not read: its bytes."""
    def digest(text):
        (tmp_path / "t.csv").write_bytes(text.encode())
        return rows_digest(tmp_path / "t.csv")
    same = digest("image,tags\na.jpg,cat dog\nb.png,dog\n")
    assert same == digest('image,tags\r\n"a.jpg"," dog;cat "\r\n\r\nb.png,dog\r\n') == \
        digest("image,tags,split\na.jpg,cat dog,\nb.png,dog,\n")
    assert same not in {digest("image,tags\na.jpg,cat\nb.png,dog\n"), digest("image,tags\nb.png,dog\na.jpg,cat dog\n"),
                        digest("image,tags,split\na.jpg,cat dog,val\nb.png,dog,\n")}
    assert digest("image,tags\na.jpg,cat,dog\n") == file_digest(tmp_path / "t.csv")


def test_a_tags_csv_counted_by_its_bytes_then_is_named_only_where_they_changed(tmp_path):
    """An older version keyed the tags CSV by its path and bytes, this one by its rows: the same bytes are no change
    (it said nothing at all: ' since it was made'), other bytes are one change of the file."""
    tags = tmp_path / "tags.csv"
    tags.write_text("image,tags\na.jpg,cat\n")
    old, new = {str(tags): file_digest(tags), "/m/a.jpg": "d1"}, {TAG_ROWS + str(tags): "r1", "/m/a.jpg": "d2"}
    keys = sorted({str(tags), TAG_ROWS + str(tags), "/m/a.jpg"})
    assert since_made(keys, old, new) == "/m/a.jpg changed since it was made"
    assert since_made([str(tags), TAG_ROWS + str(tags)], old, new) == \
        "its inputs are counted otherwise since it was made"
    tags.write_text("image,tags\r\na.jpg,cat\r\n")
    assert since_made(keys, old, new) == f"{tags}, /m/a.jpg changed since it was made"


@pytest.mark.parametrize("now", [EVALUATED + TAG_ROWS, TAG_CLASSES, TAG_IMAGES])
def test_a_tags_csv_counted_by_its_rows_then_is_named_only_where_they_changed(tmp_path, now):
    """The version before counted the tags CSV by its rows in every step; the steps that read no tags now count it
    as a file they score with, or by its classes: the same rows are no change (not 'the classes of tags.csv, tags.csv
    were added, tags.csv is no longer read'), other rows are one change of the file."""
    tags = tmp_path / "tags.csv"
    tags.write_text("image,tags\na.jpg,cat\n")
    old, new = {TAG_ROWS + str(tags): rows_digest(tags), "/m/a.jpg": "d1"}, {now + str(tags): "r1", "/m/a.jpg": "d2"}
    keys = sorted({TAG_ROWS + str(tags), now + str(tags), "/m/a.jpg"})
    assert since_made(keys, old, new) == "/m/a.jpg changed since it was made"
    tags.write_text("image,tags\na.jpg,cat dog\nb.jpg,cat\n")
    assert since_made(keys, old, new) == f"{tags}, /m/a.jpg changed since it was made"
    other = tmp_path / "other.csv"   # another CSV given: not the same one counted otherwise
    other.write_text("image,tags\na.jpg,cat\n")
    new = {now + str(other): "r1", "/m/a.jpg": "d1"}
    assert since_made(sorted({TAG_ROWS + str(tags), now + str(other)}), old, new) == \
        f"{key_name(now + str(other))} was added, {tags} is no longer read since it was made"


def test_a_file_recorded_and_no_longer_in_the_manifest_is_no_longer_read(tmp_path):
    """A file recorded that is still there but that the stage no longer reads (an image the tags no longer name, a
    map of another split that an older version hashed) is not said to have gone."""
    there = tmp_path / "b.png"
    there.write_bytes(b"x")
    keys = [str(there), "/m/gone.png"]
    assert since_made(keys, {str(there): "d1", "/m/gone.png": "d2"}, {}) == \
        f"/m/gone.png went, {there} is no longer read since it was made"
    assert since_made(["/m/x.png"], {"/m/x.png": ABSENT}, {}) == "/m/x.png is no longer read since it was made"


def test_the_upstream_folder_named_only_where_another_one_with_other_content_was_read(tmp_path, monkeypatch):
    """Records of before out_root was made absolute hold relative paths: the same folder, so an edited mask is named
    as the change, not the folder."""
    monkeypatch.chdir(tmp_path)
    now = {"seg_train": str(tmp_path / "runs" / "x")}
    assert runner.other_upstream({"seg_train": "runs/x"}, now, ["evaluated masks/f.png"]) is None
    assert runner.other_upstream({"seg_train": "runs/y"}, now, ["evaluated masks/f.png"]) is None  # same content
    assert runner.other_upstream({"seg_train": "runs/y"}, now, ["upstream seg_train"]) == \
        f"it was made from the seg_train folder runs/y, and now reads {tmp_path / 'runs' / 'x'} (--out_dir keeps the " \
        "outputs of each apart)"


def test_maps_a_stage_does_not_read_leave_its_outputs_current(own, command, tmp_path):
    """A user's saliency maps given to the guide labels (--saliency_dir): a val image's map edited and a map of an
    image the tags do not name added leave them up to date (every file of the folder was hashed, so the guide
    labels and the segmenter downstream were made again); a training image's map edited remakes its guide label
    alone, naming the map."""
    run_all(command, own, METHOD[:4])
    maps = tmp_path / "my_saliency"
    shutil.copytree(folder(own, "saliency"), maps, ignore=shutil.ignore_patterns("*.json", "*.yaml", "*.txt"))
    code, out, err = command("guide_labels", *own_args(own), "--saliency_dir", maps)
    assert code == 0, out + err
    train = {p.stem for p in folder(own, "guide_labels").glob("*.png")}
    val = sorted(p for p in maps.glob("*.png") if p.stem not in train)
    assert train and val and train < {p.stem for p in maps.glob("*.png")}
    Image.fromarray(255 - np.asarray(Image.open(val[0]))).save(val[0])
    shutil.copy(val[0], maps / "not_tagged.png")
    code, out, err = command("guide_labels", *own_args(own), "--saliency_dir", maps)
    assert code == 0 and "guide_labels: up to date" in out, out + err
    edited = maps / f"{sorted(train)[0]}.png"
    Image.fromarray(255 - np.asarray(Image.open(edited))).save(edited)
    guides = folder(own, "guide_labels")
    before = {p.name: p.stat().st_mtime_ns for p in guides.glob("*.png")}
    code, out, err = command("guide_labels", *own_args(own), "--saliency_dir", maps)
    assert code == 0 and f"{edited} changed since it was made; keeping the outputs of the images it had unchanged" \
        in out, out + err
    assert {p.name for p in guides.glob("*.png") if p.stat().st_mtime_ns != before[p.name]} == {edited.name}


def as_an_older_version_recorded(stage_folder, maps):
    """Rewrite a stage folder's record as versions up to cce8fdd wrote it: the tags CSV keyed by its path with its
    bytes' digest, every file of the user's folder of maps counted, an upstream stage's output by its fingerprint
    (written from that version's manifest code)."""
    record = json.loads((stage_folder / "inputs.json").read_text())
    csv = {k: csv_of(k) for k in record["inputs"] if not k.startswith(EVALUATED)}   # the CSV, however counted now
    inputs = {csv.get(k) or k: file_digest(csv[k]) if csv.get(k) else v for k, v in record["inputs"].items()}
    inputs |= {UPSTREAM + stage: output_fingerprint(path) for stage, path in record["upstream"].items()}
    record.pop(READ_IDS, None)
    inputs |= {str(p): file_digest(p) for p in maps.iterdir() if p.is_file() and not p.name.startswith(".")}
    record |= {"inputs": inputs, "fingerprint": fingerprint(inputs)}
    (stage_folder / "inputs.json").write_text(json.dumps(record))
    done = json.loads((stage_folder / "done.json").read_text())
    done |= {"fingerprint": fingerprint(inputs), "output_fingerprint": outputs_fingerprint(inputs)}
    (stage_folder / "done.json").write_text(json.dumps(done))


def test_guide_labels_an_older_version_made_from_a_folder_of_maps_stay_current(own, command, tmp_path):
    """Versions up to cce8fdd counted every file of a user's folder of maps, and the tags CSV by its bytes: their
    guide labels stay up to date (what the segmenter after them recorded stays true), an edited mask re-scores them,
    and a map read that changed makes them again, counted as today, saying what changed."""
    run_all(command, own, METHOD[:4])
    maps = tmp_path / "my_saliency"
    shutil.copytree(folder(own, "saliency"), maps, ignore=shutil.ignore_patterns("*.json", "*.yaml", "*.txt"))
    code, out, err = command("guide_labels", *own_args(own), "--saliency_dir", maps)
    assert code == 0, out + err
    guides = folder(own, "guide_labels")
    as_an_older_version_recorded(guides, maps)
    before = json.loads((guides / "done.json").read_text())["output_fingerprint"]
    code, out, err = command("guide_labels", *own_args(own), "--saliency_dir", maps)
    assert code == 0 and "guide_labels: up to date" in out, out + err
    train = sorted(p.stem for p in guides.glob("*.png"))
    mask_png = own["masks"] / f"{train[0]}.png"   # a mask it only scores with: one pixel void
    mask = np.array(Image.open(mask_png))
    mask[0, 0] = 255 if mask[0, 0] != 255 else 0
    Image.fromarray(mask).save(mask_png)
    code, out, err = command("guide_labels", *own_args(own), "--saliency_dir", maps)
    assert code == 0 and "changed since it was made; scoring its outputs again" in out, out + err
    assert json.loads((guides / "done.json").read_text())["output_fingerprint"] == before   # nothing downstream stale
    edited = maps / f"{train[0]}.png"
    Image.fromarray(255 - np.asarray(Image.open(edited))).save(edited)
    code, out, err = command("guide_labels", *own_args(own), "--saliency_dir", maps)
    assert code == 0 and f"{edited} changed" in out and "no longer read since it was made; recomputing it" in out
    assert str(own["tags"]) not in out   # counted by its rows now, by its bytes then: the same bytes, not a change
    made = json.loads((guides / "inputs.json").read_text())["inputs"]
    assert not any(Path(k).parent == maps and Path(k).stem not in train for k in made)


def test_masks_of_other_images_are_not_said_added_or_gone():
    """A masks folder of val masks given to a stage of train: its manifest names each train image's mask, absent; the
    message named them 'added' (the probe's 12_10_s.png, which the folder does not hold)."""
    old, new = {"a.jpg": "1"}, {"a.jpg": "1", EVALUATED + "/m/a.png": ABSENT}
    assert since_made([EVALUATED + "/m/a.png"], old, new) == \
        "the masks or labels it would score with, none of them there, are other files since it was made"
    new[EVALUATED + "/m/b.png"] = "2"
    assert since_made([EVALUATED + "/m/a.png", EVALUATED + "/m/b.png"], old, new) == \
        "/m/b.png was added since it was made"


def test_a_row_added_without_a_mask_names_its_image_alone():
    """A row added to own data whose image has no mask: its mask, recorded absent now and not at all before, was
    not added (the message said 'b.jpg, masks/b.png were added' of a mask that does not exist)."""
    old = {"/i/a.jpg": "d0", "/m/a.png": "d1"}
    new = old | {"/i/b.jpg": "d2", "/m/b.png": ABSENT}
    assert since_made(["/i/b.jpg", "/m/b.png"], old, new) == "/i/b.jpg was added since it was made"


def guides_after_the_rule(own, command, tmp_path):
    """The guide labels with dropped seeds (an option after the rule) from saliency maps of the masks' foreground in
    a folder of the user's: (that folder, the settings, the guide labels' folder)."""
    run_all(command, own, METHOD[:2])
    maps, extra = tmp_path / "my_saliency", ("--set", "guide_labels.dropped=seeds")
    maps.mkdir()
    for m in own["masks"].glob("*.png"):
        Image.fromarray(np.where(np.array(Image.open(m)) > 0, 255, 0).astype(np.uint8)).save(maps / m.name)
    code, out, err = command("guide_labels", *own_args(own), "--saliency_dir", maps, *extra)
    assert code == 0, out + err
    return maps, extra, folder(own, "guide_labels")


def test_an_edited_map_remakes_the_rules_labels_of_its_image_too(own, command, tmp_path):
    """With an option after the rule (dropped seeds) the guide labels are made from the rule's own in rule/: a
    user's saliency map edited removed the image's final label alone, and the final label was made again from its
    former rule/ label (624 of 768 pixels other than a run from scratch makes)."""
    maps, extra, guides = guides_after_the_rule(own, command, tmp_path)
    assert (guides / "rule" / "b.png").is_file()
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(maps / "b.png")
    code, out, err = command("guide_labels", *own_args(own), "--saliency_dir", maps, *extra)
    assert code == 0 and "keeping the outputs of the images it had unchanged" in out, out + err
    alone = tmp_path / "alone"
    code, out, err = command("guide_labels", *own_args(own), "--saliency_dir", maps, *extra, "--out_dir", alone)
    assert code == 0, out + err
    for made in sorted(alone.glob("*.png")) + sorted(alone.glob("rule/*.png")):
        kept = guides / made.relative_to(alone)
        assert np.array_equal(np.array(Image.open(made)), np.array(Image.open(kept))), kept


def test_final_labels_follow_class_lists_that_an_edited_image_changes(own, command, tmp_path, monkeypatch):
    """The final labels keep the seeds of the classes the rule drops often, a list taken over all the images: an edit
    of one image that changed the list remade that image's final label alone, while the others kept the former list's
    (a review). Now every final label is made again where the list changed."""
    from guidedlabelling.stages import guide_labels
    maps, extra, guides = guides_after_the_rule(own, command, tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in guides.glob("*.png")}
    real = guide_labels.class_diagnostics

    def every_class_dropped_often(stage, data, job, rule_dir):   # the list the edit brings
        classes, often, rarely, alike = real(stage, data, job, rule_dir)
        return classes, data.classes[1:], rarely, alike
    monkeypatch.setattr(guide_labels, "class_diagnostics", every_class_dropped_often)
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(maps / "b.png")
    code, out, err = command("guide_labels", *own_args(own), "--saliency_dir", maps, *extra)
    assert code == 0 and "keeping the outputs of the images it had unchanged" in out, out + err
    assert all(p.stat().st_mtime_ns != before[p.name] for p in guides.glob("*.png")), out
    alone = tmp_path / "alone"
    code, out, err = command("guide_labels", *own_args(own), "--saliency_dir", maps, *extra, "--out_dir", alone)
    assert code == 0, out + err
    for made in sorted(alone.glob("*.png")):
        assert np.array_equal(np.array(Image.open(made)), np.array(Image.open(guides / made.name))), made.name


def test_only_files_edited_in_place_count_as_one_images():
    """An image file edited in place is one image's to remake where own() says its output is there; an upstream
    output or a work size that changed is every image's, whatever own() says (a full remake: None)."""
    old = {"/i/a.jpg": "d0", "/i/b.jpg": "d1", UPSTREAM + "saliency_train": "u0", WORK_SIZE + "train": "w0"}
    every = lambda key: True   # noqa: E731
    assert images_come_or_go(["/i/a.jpg"], old, old | {"/i/a.jpg": "d2"}, every) == ["/i/a.jpg"]
    assert images_come_or_go(["/i/a.jpg"], old, old | {"/i/a.jpg": "d2"}) is None   # its output is not there
    for key in (UPSTREAM + "saliency_train", WORK_SIZE + "train"):
        assert images_come_or_go(["/i/a.jpg", key], old, old | {"/i/a.jpg": "d2", key: "x"}, every) is None


def test_an_images_work_size_is_that_images_alone():
    """An image's work size key that comes, goes or changes is that image's to remake (its stem is the id)."""
    old = {"/i/a.jpg": "d0", "/i/b.jpg": "d1", IMAGE_WORK_SIZE + "/i/b.jpg": "40"}
    grown = old | {"/i/a.jpg": "d2", IMAGE_WORK_SIZE + "/i/a.jpg": "40"}
    changed = ["/i/a.jpg", IMAGE_WORK_SIZE + "/i/a.jpg"]
    assert images_come_or_go(changed, old, grown, lambda key: True) == changed
    assert images_come_or_go(changed[1:], old, grown) == changed[1:]
    assert since_made(changed, old, grown) == "/i/a.jpg changed since it was made"
    assert since_made(changed[1:], old, grown) == "the work size of /i/a.jpg changed since it was made"
    both = {IMAGE_WORK_SIZE + "/i/a.jpg": "40", IMAGE_WORK_SIZE + "/i/b.jpg": "40"}
    assert since_made(sorted(both), {}, both) == "the work size of 2 images changed since it was made"


def test_a_photo_this_user_may_not_read_is_keyed_unreadable_not_a_failed_step(tmp_path, monkeypatch):
    """A val photo of another user (chmod 600), which the dataset skips as unreadable, ended the first step that read
    val in 'Permission denied; ... choose another output folder' as its manifest hashed it; keyed unreadable, the
    outputs are remade once it can be read."""
    from guidedlabelling import fingerprint
    denied, readable = tmp_path / "a.jpg", tmp_path / "b.jpg"
    denied.write_bytes(b"a")
    readable.write_bytes(b"b")

    def opener(file, *args, **kwargs):
        if str(file) == str(denied):
            raise PermissionError(13, "Permission denied", str(file))
        return open(file, *args, **kwargs)
    monkeypatch.setattr(fingerprint, "open", opener, raising=False)
    found = fingerprint.Digests().manifest([denied, readable])
    assert found == {str(denied): fingerprint.UNREADABLE, str(readable): fingerprint.file_digest(readable)}


def test_a_run_reads_the_rows_of_each_split_once(own, command, monkeypatch):
    """split_rows looks each row's image up in the folder (1.5 s for 10,000 rows): the digests of a split's keys and
    the per-image stages' records of its rows take them from one read per command, not one per stage and key."""
    steps = ("--steps", ",".join(METHOD))
    code, out, err = command("script", *own_args(own), *steps)
    assert code == 0, out + err
    reads = []
    read = fingerprints.split_rows
    monkeypatch.setattr(fingerprints, "split_rows", lambda described: reads.append(described) or read(described))
    code, out, err = command("script", *own_args(own), *steps)
    assert code == 0, out + err
    assert sorted(reads) == sorted(set(reads)) and len(set(reads)) == 2   # the train and val rows, once each
