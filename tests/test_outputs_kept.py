"""A stage command given bad input stops before it touches a finished folder: its outputs stay as they were, and
a folder it did not make is never removed (a review found each of these cleared, then the error)."""
import json
import shutil

import pytest
import torch

from conftest import named_by_masks, own_args, stage_folders
from guidedlabelling import runner


def files_of(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def heatmaps(own, command):
    """The tiny dataset's seed heatmaps, finished; returns their folder and its files."""
    for stage in ("seed_train", "seed_heatmaps"):
        code, out, err = command(stage, *own_args(own))
        assert code == 0, out + err
    folder, = stage_folders(own["out_root"] / "tiny" / "seed_heatmaps")
    return folder, files_of(folder)


def test_a_model_of_another_kind_given_leaves_the_outputs(own, command, heatmaps):
    folder, before = heatmaps
    code, out, err = command("seg_train", *own_args(own), "--labels", "gt")
    assert code == 0, out + err
    segmenter = next(f for f in stage_folders(own["out_root"] / "tiny" / "seg_train") if f.name.endswith("labels-gt"))
    code, out, err = command("seed_heatmaps", *own_args(own), "--model_dir", segmenter)
    assert code == 2 and f"{segmenter / 'model.pth'}: checkpoint is for kind='segmentation'" in err, out + err
    assert "recomputing" not in out and files_of(folder) == before


def test_a_model_of_other_classes_given_leaves_the_outputs(own, command, heatmaps, tmp_path):
    folder, before = heatmaps
    seed_train, = stage_folders(own["out_root"] / "tiny" / "seed_train")
    other = tmp_path / "other_classes"
    other.mkdir()
    state = torch.load(seed_train / "model.pth", weights_only=True)
    state["meta"]["classes"] = ["background", "cat", "horse"]
    torch.save(state, other / "model.pth")
    code, out, err = command("seed_heatmaps", *own_args(own), "--model_dir", other)
    assert code == 2 and "the model was trained on classes ['background', 'cat', 'horse']" in err, out + err
    assert files_of(folder) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_this_machine_lacks_is_refused_before_a_recompute(own, command, heatmaps):
    folder, before = heatmaps
    code, out, err = command("seed_heatmaps", *own_args(own), "--device", "cuda", "--overridecache")
    assert code == 2 and "--device cuda: no CUDA device here; use --device cpu" in err, out + err
    assert files_of(folder) == before
    code, out, err = command("cls_eval", *own_args(own), "--device", "cuda")   # runs no network: no device needed
    assert code == 0, out + err
    code, out, err = command("seed_heatmaps", *own_args(own), "--gpu", "0", "--overridecache")
    assert code == 2 and "--gpu 0: no CUDA device here; use --device cpu" in err, out + err   # the flag given
    assert files_of(folder) == before


@pytest.mark.parametrize("extra", [(), ("--overridecache",)])
@pytest.mark.parametrize("record", [False, True])
def test_an_out_dir_holding_other_files_is_refused(own, command, tmp_path, extra, record):
    """Also one that holds a file named as a stage's record of its inputs (a stage folder is recomputed when its
    config.yaml went: only where its log and a well-formed record say it is one)."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    if record:
        (mine / "inputs.json").write_text('{"a": 1}')
    code, out, err = command("seed_train", *own_args(own), "--out_dir", mine, *extra)
    assert code == 2 and f"{mine}: holds files that no stage wrote (it has no config.yaml)" in err, out + err
    assert sorted(p.name for p in mine.iterdir()) == ["inputs.json"] * record + ["thesis.tex"]


@pytest.mark.parametrize("extra", [(), ("--overridecache",)])
def test_another_stages_folder_as_out_dir_is_refused_and_kept(own, command, heatmaps, extra, tmp_path):
    """Seed heatmaps written into a seed network's folder (a copy, which they do not read): 'made with other
    settings; rerun with --overridecache' led a user to remove the trained model. The folder of another stage is an
    error, with --overridecache too."""
    seed_train = tmp_path / "trained"
    shutil.copytree(stage_folders(own["out_root"] / "tiny" / "seed_train")[0], seed_train)
    before = files_of(seed_train)
    code, out, err = command("seed_heatmaps", *own_args(own), "--out_dir", seed_train, *extra)
    assert code == 2 and f"{seed_train}: the output folder of seed_train (its config.yaml says so), which " \
        "seed_heatmaps would remove whole to write its own; choose another --out_dir" in err, out + err
    assert files_of(seed_train) == before
    folder, _ = heatmaps
    code, out, err = command("seed_heatmaps", *own_args(own), "--out_dir", folder)   # its own: reused
    assert code == 0 and "up to date" in out, out + err


def test_a_stage_folder_whose_config_yaml_went_is_recomputed(own, command, heatmaps):
    """It was refused as 'holds files that no stage wrote', though its log, record and done.json were the stage's,
    and the user had to remove it by hand."""
    folder, before = heatmaps
    (folder / "config.yaml").unlink()
    code, out, err = command("seed_heatmaps", *own_args(own))
    assert code == 0, out + err
    assert f"{folder}: its config.yaml went, so the settings that made it are unknown; recomputing it" in out + err
    after = files_of(folder)
    assert {name: after[name] for name in before if name.endswith(".mat")} == \
        {name: data for name, data in before.items() if name.endswith(".mat")} and "config.yaml" in after


def test_a_damaged_record_of_inputs_is_said_to_be_damaged(own, command, heatmaps):
    folder, _ = heatmaps
    (folder / "inputs.json").write_text('{"broken')
    code, out, err = command("seed_heatmaps", *own_args(own))
    assert code == 0, out + err
    assert f"{folder}: its record of the inputs it was made from, inputs.json, is damaged; recomputing it" in out + err


def test_an_empty_out_dir_is_used(own, command, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".config.yaml.x1.tmp.yaml").write_text("")   # what a run killed while writing leaves
    code, out, err = command("seed_train", *own_args(own), "--out_dir", empty)
    assert code == 0 and (empty / "done.json").exists(), out + err


def test_a_folder_reused_from_another_precision_says_so(own, command):
    """The precision and the device do not name the folder (docs/reference.md): a float32 run reusing a bf16
    training says what it reuses."""
    code, out, err = command("seed_train", *own_args(own), "--set", "amp=bf16")
    assert code == 0, out + err
    code, out, err = command("seed_train", *own_args(own))
    assert code == 0 and "up to date in" in out, out + err
    assert ", made on cpu with amp bf16 (this run: cpu, amp none) (--overridecache recomputes)" in out
    code, out, err = command("seed_train", *own_args(own), "--set", "amp=bf16")
    assert code == 0 and "up to date in" in out and "made on" not in out, out + err


def test_a_resume_in_another_precision_says_the_folder_holds_both(own, command, heatmaps):
    """Heatmaps stopped midway in float32 and resumed in bf16: the resume says so (in its log.txt too), done.json
    names both, and a float32 rerun that reuses the folder says what made it; --overridecache makes them all in one
    precision."""
    folder, before = heatmaps
    for name in ("done.json", "c.mat", "d.mat", "cls_res.mat"):   # as a run stopped after two images leaves it
        (folder / name).unlink()
    code, out, err = command("seed_heatmaps", *own_args(own), "--set", "amp=bf16")
    assert code == 0, out + err
    note = f"{folder}: resuming outputs made on cpu with amp none; this run makes the rest on cpu with amp bf16 " \
           "(--overridecache makes them all so)"
    assert note in out and note in (folder / "log.txt").read_text()   # kept with the folder too
    float32, bf16 = {"device": "cpu", "amp": "none"}, {"device": "cpu", "amp": "bf16"}
    done = json.loads((folder / "done.json").read_text())
    assert done["made_with"] == [float32, bf16]
    assert all((folder / name).read_bytes() == before[name] for name in ("a.mat", "b.mat"))  # kept, not remade
    code, out, err = command("seed_heatmaps", *own_args(own))
    assert code == 0 and "made on cpu with amp none, then on cpu with amp bf16 (this run: cpu, amp none)" in out, \
        out + err
    code, out, err = command("seed_heatmaps", *own_args(own), "--set", "amp=bf16", "--overridecache")
    assert code == 0 and "resuming" not in out, out + err
    assert json.loads((folder / "done.json").read_text())["made_with"] == bf16


def test_why_a_folder_is_resumed_is_said_when_its_log_cannot_be_opened(own, command, heatmaps, monkeypatch):
    """The notes of the folder's check go through its log.txt: a run stopped before it has one (a full disk) still
    says them."""
    folder, _ = heatmaps
    (folder / "done.json").unlink()

    def full(out):
        raise OSError(28, "No space left on device", str(out / "log.txt"))
    monkeypatch.setattr(runner, "make_logger", full)
    code, out, err = command("seed_heatmaps", *own_args(own), "--set", "amp=bf16")
    assert code != 0 and "No space left on device" in err
    assert f"{folder}: resuming outputs made on cpu with amp none; this run makes the rest on cpu with amp bf16" in out


def test_a_new_folder_beside_a_finished_one_of_other_settings_says_how_they_differ(own, command):
    """A run with another setting makes a folder anew: the new one says why, naming the nearest finished folder and
    the settings that differ. A folder with no finished neighbour says nothing."""
    code, out, err = command("seed_train", *own_args(own))
    assert code == 0 and "a new folder for these settings" not in out + err, out + err
    before, = stage_folders(own["out_root"] / "tiny" / "seed_train")
    code, out, err = command("seed_train", *own_args(own), "--set", "seed_train.base_lr=0.002")
    assert code == 0, out + err
    assert f"a new folder for these settings: the nearest finished one, {before}, was made with other values of " \
           "seed_train.base_lr (seed_train.base_lr 0.001 there, 0.002 here)" in out + err


def test_masks_given_after_a_run_without_them_score_what_it_made(own, command):
    """--masks names no folder whose outputs are only scored with them: the steps are kept and scored, and only
    what learns from the masks (the fully supervised reference) is made. Left out again, the scores go."""
    code, out, err = command("script", *own_args(own, masks=False))
    assert code == 0, out + err
    made = {p: p.stat().st_mtime_ns for p in own["out_root"].rglob("model.pth")}
    code, out, err = command("script", *own_args(own))
    assert code == 0, out + err
    assert {p: p.stat().st_mtime_ns for p in made} == made   # no training again
    trained = sorted(p.parent.parent.name for p in own["out_root"].rglob("model.pth") if p not in made)
    assert trained == ["seg_train"] and "up to date" in out   # the reference alone, in a folder of its own
    (guide,) = stage_folders(own["out_root"] / "tiny" / "guide_labels")
    assert "mIoU" in json.dumps(json.loads((guide / "done.json").read_text())["guide"])
    code, out, err = command("script", *own_args(own, masks=False), "--steps", "seed_train")  # the table: stale
    assert code == 0, out + err
    scored = f"scored with the masks of {own['masks']}"
    assert f"summary: out of date: saliency, {scored}; guide_labels, {scored}; segmentations, {scored}; run all " \
           "steps for the table" in out, out   # seed_eval, skipped without masks, shows nothing
    code, out, err = command("script", *own_args(own, masks=False))
    assert code == 0, out + err
    assert "guide" not in json.loads((guide / "done.json").read_text())
    (test,) = [p for p in stage_folders(own["out_root"] / "tiny" / "segmentations") if "labels-gt" not in p.name]
    assert not (test / "results.json").exists()   # the masks' per-class scores went with them
    (trained,) = stage_folders(own["out_root"] / "tiny" / "seed_train")   # scores nothing: records no masks
    assert "scored_with" not in json.loads((trained / "done.json").read_text())
    code, out, err = command("script", *own_args(own), "--steps", "seed_train")
    assert code == 0 and "summary: out of date: saliency, scored without masks; guide_labels, scored without " \
        "masks; segmentations, scored without masks; run all steps for the table" in out, out + err
    from guidedlabelling.tables import Context, Run   # paper_tables: a run to make, with the masks; without, done
    with_masks, without = (Context(str(own["preset"]), own_args(own, masks)[3::2]) for masks in (True, False))
    assert Run("guide_labels").done(with_masks) is None and Run("guide_labels").done(without)["scored_with"] is None
    code, out, err = command("script", *own_args(own))
    assert code == 0 and "run all steps for the table" not in out, out + err
    edited = sorted(own["masks"].glob("*.png"))[0]
    edited.write_bytes(edited.read_bytes() + b"x")   # another file, the same mask
    code, out, err = command("script", *own_args(own), "--steps", "seed_train")
    assert code == 0 and f"scored before {edited} changed" in out and "run all steps for the table" in out, out + err


def test_the_drivers_own_variants_are_no_reason_given_for_a_new_folder(own, command):
    """The seed heatmaps of val (seed_split test, a step of every run) finished beside the training split's new
    folder are no 'nearest finished one'."""
    for stage, extra in (("seed_train", ()), ("seed_heatmaps", ("--seed_split", "test"))):
        code, out, err = command(stage, *own_args(own), *extra)
        assert code == 0, out + err
    from guidedlabelling import config as C, naming, runner
    cfg, preset = C.resolve(str(own["preset"]), own_args(own)[3::2])
    folder = naming.stage_dir(cfg, preset, "seed_heatmaps")
    assert not folder.exists() and runner.nearest_folder(folder, naming.relevant(cfg, "seed_heatmaps")) is None


def test_a_folder_that_an_earlier_version_named_by_masks_is_still_the_stages(own, command):
    """Up to eda7e05 --masks named every folder of your own data: such a folder stays the stage's (its stored
    masks compare as the current settings do) while there is no folder of the current name."""
    code, out, err = command("seed_train", *own_args(own))
    assert code == 0, out + err
    (current,) = stage_folders(own["out_root"] / "tiny" / "seed_train")
    old = named_by_masks(current, own, "seed_train")
    code, out, err = command("seed_train", *own_args(own))
    assert code == 0 and f"seed_train: up to date in {old} " in out + err, out + err
    assert stage_folders(own["out_root"] / "tiny" / "seed_train") == [old]
