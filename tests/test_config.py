"""Settings: presets, overrides, readable folder names, cache ownership."""
import hashlib
import json
import re

import pytest
import torch
import yaml
from PIL import Image

from guidedlabelling import config as C
from guidedlabelling import driver
from guidedlabelling import naming
from guidedlabelling import settings as S
from guidedlabelling.datasets import open_dataset
from guidedlabelling.io import InputError, load_checkpoint, save_checkpoint, save_json
from guidedlabelling.networks import DeepLabLargeFOV, GAPNet
from guidedlabelling.flags import settings_as_flags
from guidedlabelling.runner import check_cache


def resolve(*sets, config="smoke"):
    return C.resolve(config, sets)


@pytest.mark.parametrize("stage", ["seg_train", "guide_labels"])
def test_a_folders_config_yaml_is_a_preset_of_the_same_settings(stage, tmp_path):
    """Every folder holds the config.yaml that made it; given back as --config it was refused on the blank it keeps
    for an unread --pascalroot (null: 'not one value')."""
    cfg, _ = resolve("seg_train.max_iter=7", "guiderule=seed", f"dataset_dir={tmp_path}")
    stored = naming.relevant(cfg, stage)
    assert stored["data"]["pascalroot"] is None
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(stored))
    again, _ = C.resolve(str(tmp_path / "config.yaml"))
    assert naming.relevant(again, stage) == stored and again["name"] == "config"


def test_a_blank_pascalroot_in_a_yaml_is_the_default_as_the_project_resolves_it(tmp_path, monkeypatch):
    (tmp_path / "p.yaml").write_text("name: p\ndata: {pascalroot: }\n")
    monkeypatch.chdir(tmp_path)
    assert C.resolve("p.yaml")[0]["data"]["pascalroot"] == C.resolve("demo")[0]["data"]["pascalroot"] != \
        str(tmp_path / "data" / "VOCdevkit")


def test_a_folder_named_like_a_preset_leaves_the_preset_its_name(tmp_path, monkeypatch):
    """--out_root . made the folder msrc/ in the current folder: `--config msrc` there was 'a folder, not a
    config' (predict.py too, for the preset its model's checkpoint names); a file of that name is still the file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "msrc").mkdir()
    (tmp_path / "mine").mkdir()
    assert C.preset_path("msrc") == C.CONFIGS / "msrc.yaml"
    with pytest.raises(InputError, match="^mine: a folder, not a config"):
        C.preset_path("mine")
    (tmp_path / "smoke").write_text("run: {seed: 1}")
    assert C.preset_path("smoke").resolve() == tmp_path / "smoke"


def test_a_run_of_some_steps_keeps_the_notes_of_the_earlier_summary(tmp_path):
    """--steps opens only its steps' data and says only their notes: summary.json and the report keep the earlier
    run's too (a review found a partial rerun dropping the shapes-saliency note)."""
    from types import SimpleNamespace
    cfg = C.resolve("smoke", [f"out_root={tmp_path}"])[0]
    naming.run_dir(cfg).mkdir(parents=True)
    (naming.run_dir(cfg) / "summary.json").write_text(json.dumps({"notes": ["note: a", "note: b"], "config": "smoke",
                                                                  "overrides": [f"out_root={tmp_path}"]}))
    every = ",".join(s for s, _, _ in driver.STEPS)
    args = SimpleNamespace(steps="segmentations", config="smoke")
    assert driver.run_notes(args, cfg, ["note: b", "note: c"], [f"out_root={tmp_path}"]) == \
        ["note: b", "note: c", "note: a"]
    assert driver.run_notes(args, cfg, ["note: c"], [f"out_root={tmp_path}", "overridecache=true"]) == \
        ["note: c", "note: a", "note: b"]   # the same run, recomputed
    assert driver.run_notes(SimpleNamespace(steps=every, config="smoke"), cfg, ["note: c"], [f"out_root={tmp_path}"]) \
        == ["note: c"]


def test_summary_records_the_folder_that_relative_paths_of_the_settings_given_are_relative_to(tmp_path,
                                                                                              monkeypatch):
    """summary.json held `config: my.yaml` and `out_root=../runs` as given, naming no folder to rerun them from."""
    from types import SimpleNamespace
    monkeypatch.chdir(tmp_path)
    assert driver.summary_settings(SimpleNamespace(config="my.yaml"), ["out_root=../runs"]) == {
        "config": "my.yaml", "overrides": ["out_root=../runs"], "ran_in": str(tmp_path)}


def test_a_run_of_some_steps_keeps_no_notes_of_another_runs_summary(tmp_path):
    """The run folder is the preset's: the summary.json there may be a variant's or other data's, whose notes (on
    another tags.csv, a review found) are not this run's."""
    from types import SimpleNamespace
    cfg = C.resolve("smoke", [f"out_root={tmp_path}"])[0]
    naming.run_dir(cfg).mkdir(parents=True)
    (naming.run_dir(cfg) / "summary.json").write_text(json.dumps({
        "notes": ["note: 2 rows of other/tags.csv have no tags"], "config": "smoke",
        "overrides": [f"out_root={tmp_path}", "tags=other/tags.csv"]}))
    args = SimpleNamespace(steps="segmentations", config="smoke")
    assert driver.run_notes(args, cfg, ["note: c"], [f"out_root={tmp_path}"]) == ["note: c"]
    assert driver.run_notes(args, cfg, ["note: c"], [f"out_root={tmp_path}", "seedthres=30"]) == ["note: c"]
    assert driver.run_notes(SimpleNamespace(steps="segmentations", config="demo"), cfg, ["note: c"],
                            [f"out_root={tmp_path}", "tags=other/tags.csv"]) == ["note: c"]


def test_a_run_of_some_steps_keeps_no_notes_of_a_run_whose_relative_paths_named_other_data(tmp_path, monkeypatch):
    """The same settings as given, images=photos, run in another folder: other photos, whose notes are not this
    run's; summary.json's folders of guide labels and predictions tell them apart (summary_settings' ran_in)."""
    from types import SimpleNamespace
    for folder in ("a", "b"):
        (tmp_path / folder / "photos").mkdir(parents=True)
        Image.new("RGB", (8, 8), {"a": "red", "b": "blue"}[folder]).save(tmp_path / folder / "photos" / "x.png")
        (tmp_path / folder / "tags.csv").write_text("image,tags\nx.png,cow\n")
    overrides = [f"out_root={tmp_path}/runs", "images=photos", "tags=tags.csv"]
    args = SimpleNamespace(steps="segmentations", config="smoke")

    def summary_made_in(folder):
        monkeypatch.chdir(tmp_path / folder)
        cfg, preset = C.resolve("smoke", overrides)
        naming.run_dir(cfg).mkdir(parents=True, exist_ok=True)
        (naming.run_dir(cfg) / "summary.json").write_text(json.dumps({
            "notes": [f"note: of {folder}"], "config": "smoke", "overrides": overrides,
            "ran_in": str(tmp_path / folder),
            "guide_labels": str(naming.stage_dir(cfg, preset, "guide_labels")),
            "predictions": str(naming.stage_dir(cfg, preset, "segmentations"))}))
        return cfg
    cfg = summary_made_in("a")
    assert driver.run_notes(args, cfg, ["note: c"], overrides) == ["note: c", "note: of a"]
    monkeypatch.chdir(tmp_path / "b")
    assert driver.run_notes(args, C.resolve("smoke", overrides)[0], ["note: c"], overrides) == ["note: c"]


def test_summary_keeps_no_made_seconds_of_a_skipped_step(tmp_path):
    """A run without masks skips seed_eval, whose folder (not named by the masks) a run with them left: summary.json's
    made_seconds names the run's own steps alone, as step_seconds does (a review found seed_eval's among them)."""
    import os
    from types import SimpleNamespace
    overrides = [f"out_root={tmp_path}"]
    for name, seconds in (("seed_train/default", 12.5), ("seed_eval/seed_split-test", 3.0)):
        folder = tmp_path / "smoke" / name
        folder.mkdir(parents=True)
        for file, when in (("config.yaml", 1000), ("done.json", 1000 + seconds)):
            (folder / file).write_text("{}")
            os.utime(folder / file, (when, when))
    args = SimpleNamespace(config="smoke")
    assert driver.steps_made_seconds(args, overrides) == {"seed_train": 12.5, "seed_eval": 3.0}
    assert driver.steps_made_seconds(args, overrides, {"seed_eval": "no ground-truth masks"}) == {"seed_train": 12.5}


def test_paper_defaults():
    d = S.defaults()
    assert d["seed_train"]["base_lr"] == 0.001 and d["seed_train"]["batch_size"] == 15
    assert d["seed_train"]["max_iter"] == 8000 and d["seed_train"]["stepsize"] == 2000
    assert d["guide_labels"] == {"guiderule": "G2", "seedthres": 20, "salthres": 50, "saliency_maps": None,
                          "dropped": "none", "dropped_share": 10, "dropped_often": 25,   # none: the paper
                          "unsure": "none", "unsure_core": 50, "unsure_share": 70, "unsure_saliency": 6,
                          "unused": "keep"}   # keep: the paper
    assert d["segmentations"]["test_size"] == 531 and d["seed_train"]["net"] == "GAP-HighRes"


def test_preset_then_overrides_with_types():
    cfg, preset = resolve("seedthres=30", "guide_labels.salthres=40", "vis=true")
    assert preset["seed_train"]["width"] == 0.0625 and cfg["guide_labels"]["seedthres"] == 30
    assert cfg["guide_labels"]["salthres"] == 40 and cfg["run"]["vis"] is True


def test_folder_names_list_changed_settings_and_their_upstream():
    cfg, preset = resolve("seedthres=30")
    assert naming.stage_name(cfg, preset, "seed_heatmaps") == "default"
    assert naming.stage_name(cfg, preset, "guide_labels") == "seedthres-30"
    assert naming.stage_name(cfg, preset, "segmentations") == "seedthres-30"
    cfg, preset = resolve("seedthres=30", "labels=gt", "device=cpu", "workers=2")
    assert naming.stage_name(cfg, preset, "seg_train") == "labels-gt"   # the reference has no guide upstream
    cfg, preset = resolve("saliency_maps=/maps", "saliency_train.max_iter=7", "saliency.test_size=80")
    maps = "saliency_maps-maps-" + hashlib.sha1(b"/maps").hexdigest()[:6]   # guide labels of your own maps read no
    assert naming.stage_name(cfg, preset, "guide_labels") == naming.stage_name(cfg, preset, "seg_train") == maps
    assert naming.stage_name(cfg, preset, "saliency") == "saliency_train.max_iter-7_saliency.test_size-80"


def test_a_folder_made_from_your_own_maps_with_the_saliency_settings_stored_is_current(tmp_path):
    """Up to ca9f5ca guide labels of your own saliency maps stored the saliency settings, which they do not read:
    such a folder is still current, and one of the network's maps is not current where maps are given now."""
    cfg, _ = resolve("saliency_maps=/maps")
    stored = naming.relevant(resolve()[0], "guide_labels")   # made from the saliency stage's maps
    stored["guide_labels"]["saliency_maps"] = "/maps"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(stored))
    assert "saliency_train" in stored and "saliency_train" not in naming.relevant(cfg, "guide_labels")
    assert naming.same_settings(naming.stored_settings(tmp_path), naming.relevant(cfg, "guide_labels"))
    stored["guide_labels"]["saliency_maps"] = None
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(stored))
    assert not naming.same_settings(naming.stored_settings(tmp_path), naming.relevant(cfg, "guide_labels"))


def test_unknown_setting_is_a_clear_error():
    with pytest.raises(InputError, match="unknown setting 'sedthres'"):
        resolve("sedthres=30")


INPUTS = {"fingerprint": "f1", "inputs": {"tags.csv": "d1", "a.jpg": "d2"}, "upstream": {}}


def test_cache_belongs_to_one_config(tmp_path):
    check_cache(tmp_path, {"guide_labels": {"seedthres": 20}}, False, INPUTS)
    (tmp_path / "x.png").write_bytes(b"")
    check_cache(tmp_path, {"guide_labels": {"seedthres": 20}}, False, INPUTS)          # same settings: resume
    with pytest.raises(InputError, match=r"made with other settings \(seedthres 20 there, 30 here\); rerun with "
                                         "--overridecache to replace it, or choose another --out_root$"):
        check_cache(tmp_path, {"guide_labels": {"seedthres": 30}}, False, INPUTS)
    with pytest.raises(InputError, match="or choose another --out_dir$"):   # a stage command's --out_dir named it
        check_cache(tmp_path, {"guide_labels": {"seedthres": 30}}, False, INPUTS, folder_flag="--out_dir")
    check_cache(tmp_path, {"guide_labels": {"seedthres": 30}}, True, INPUTS)           # --overridecache replaces it
    assert not (tmp_path / "x.png").exists()
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == {"guide_labels": {"seedthres": 30}}


def test_cache_belongs_to_one_content_of_the_inputs(tmp_path, capsys):
    settings = {"guide_labels": {"seedthres": 20}}
    assert not check_cache(tmp_path, settings, False, INPUTS)
    (tmp_path / "x.png").write_bytes(b"")
    edited = {"fingerprint": "f2", "inputs": {"tags.csv": "d3", "a.jpg": "d2"}, "upstream": {}}
    with pytest.raises(InputError, match=r"tags.csv changed since it was made; run one process"):
        check_cache(tmp_path, settings, False, edited, alone=False)   # fragments share the folder: not cleared
    assert (tmp_path / "x.png").exists()
    assert check_cache(tmp_path, settings, False, edited)            # cleared, and says what changed
    assert f"{tmp_path}: tags.csv changed since it was made; recomputing it" in capsys.readouterr().out
    assert not (tmp_path / "x.png").exists()
    assert json.loads((tmp_path / "inputs.json").read_text()) == edited


@pytest.mark.parametrize("being_written", [".config.yaml.a1b2.tmp.yaml", ".inputs.json.c3d4.tmp.json"])
def test_a_fragment_starting_beside_another_is_not_refused_for_its_temp_files(tmp_path, being_written):
    """Two fragments started at once into a new folder: where one was writing config.yaml or inputs.json (its temp
    file beside them, io.atomic_path), the other took that file for an output and stopped ('its config.yaml went',
    'no record of the inputs'), though nothing was made yet."""
    settings = {"guide_labels": {"seedthres": 20}}
    if being_written.startswith(".inputs"):   # the first fragment's config.yaml written, its inputs.json not yet
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(settings))
    (tmp_path / being_written).write_bytes(b"")
    assert not check_cache(tmp_path, settings, False, INPUTS, alone=False)
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == settings
    assert json.loads((tmp_path / "inputs.json").read_text())["fingerprint"] == "f1"


@pytest.mark.parametrize("name", ["é" * 125 + ".png", "a" * 245 + ".json"])
def test_a_file_of_a_long_valid_name_is_written(tmp_path, name):
    """atomic_path's temp file is `.<name>.<8 random>.tmp<suffix>`: for an output named with 249 bytes (the labels of
    an image of a long valid name) that was 267 bytes, 'File name too long' (a probe)."""
    path = tmp_path / name
    save_json(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1} and list(tmp_path.iterdir()) == [path]


def test_checkpoint_of_another_network_is_refused(tmp_path):
    path = tmp_path / "model.pth"
    save_checkpoint(path, GAPNet("GAP-HighRes", 5, 1 / 16), {"kind": "seed"})
    assert torch.load(path, weights_only=True)["meta"]["kind"] == "seed"
    with pytest.raises(InputError, match="checkpoint is for kind='seed'"):
        load_checkpoint(path, expect={"kind": "segmentation"})
    with pytest.raises(InputError, match="does not fit this network"):
        load_checkpoint(path, DeepLabLargeFOV(6, 1 / 16))


def test_long_folder_names_are_shortened_with_a_hash():
    trainings = ("seed_train", "saliency_train", "seg_train")
    many = [f"{s}.width=0.5" for s in trainings] + \
           [f"{s}.{k}=17" for s in trainings for k in ("max_iter", "input_size", "batch_size")]
    cfg, preset = resolve(*many)
    name = naming.stage_name(cfg, preset, "segmentations")
    assert len(name) <= naming.MAX_NAME and name.startswith("seed_train.width-0.5_seed_train.input_size-17")
    kept, digest = name.rsplit("_", 1)
    tokens = [naming.token(sec, k, v) for sec in ("seed_train", "saliency_train", "seg_train")
              for k, v in cfg[sec].items() if v != preset[sec][k]]
    n = next(n for n in range(len(tokens)) if "_".join(tokens[:n]) == kept)   # settings kept whole, none cut short
    assert len(digest) == 10 and 0 < n < len(tokens) and len("_".join(tokens[:n + 1])) > naming.MAX_NAME - 11
    cfg2, _ = resolve(*many, "seedthres=30")
    assert naming.stage_name(cfg2, preset, "segmentations") != name


def test_a_long_name_of_wide_characters_is_shortened_to_fit_a_folder_name(tmp_path):
    """MAX_NAME counts characters: a dataset folder named with 80 Chinese characters (240 bytes, a valid name) named
    a stage folder of 99 characters and 259 bytes, which the system refused ('File name too long')."""
    wide = "照片" * 40
    cfg, preset = resolve(f"dataset_dir=/data/{wide}")
    name = naming.stage_name(cfg, preset, "seed_train")
    digest = hashlib.sha1(f"dataset_dir-{wide}-{hashlib.sha1(f'/data/{wide}'.encode()).hexdigest()[:6]}"
                          .encode()).hexdigest()[:10]
    assert name == "dataset_dir-" + wide[:(249 - 11 - 12) // 3] + "_" + digest   # 12 + 75 * 3 + 11 = 248 bytes
    (tmp_path / name).mkdir()
    (tmp_path / f".{name}.lock").touch()   # its lock file fits too
    cfg, _ = resolve("dataset_dir=/data/" + "é" * 50)   # a name that fits stays whole
    assert naming.stage_name(cfg, preset, "seed_train").startswith("dataset_dir-" + "é" * 50 + "-")


def test_a_folder_whose_long_name_was_cut_midway_is_still_found(tmp_path):
    """Versions before 2026-12 cut a long name inside a setting (max_iter-2 of max_iter 20): their folder is the
    stage's while there is no folder of the current name."""
    cfg, preset = resolve(*[f"seg_train.{k}=20" for k in ("max_iter", "input_size", "batch_size")],
                          *[f"{s}.width=0.5" for s in ("seed_train", "saliency_train", "seg_train")],
                          "saliency_train.max_iter=20", "seed_train.max_iter=20", f"out_root={tmp_path}")
    current = naming.stage_dir(cfg, preset, "seg_train")
    old = current.parent / naming.stage_name(cfg, preset, "seg_train", cut_midway=True)
    assert old != current and current.name.rsplit("_", 1)[1] == old.name.rsplit("_", 1)[1]   # the same hash
    old.mkdir(parents=True)
    assert naming.stage_dir(cfg, preset, "seg_train") == old
    current.mkdir()
    assert naming.stage_dir(cfg, preset, "seg_train") == current


def test_folders_made_before_a_new_option_stay_valid():
    current = {"guide_labels": {"guiderule": "G2", "seedthres": 20, "saliency_maps": None}}
    older = {"guide_labels": {"guiderule": "G2", "seedthres": 20}}  # made before saliency_maps existed
    assert naming.same_settings(older, current)
    assert not naming.same_settings(older, {"guide_labels": dict(current["guide_labels"], saliency_maps="my_maps")})
    assert not naming.same_settings({"guide_labels": dict(older["guide_labels"], seedthres=30)}, current)
    assert not naming.same_settings({"guide_labels": dict(current["guide_labels"], retired=1)}, current)
    assert not naming.same_settings({}, current)


def test_a_key_of_several_sections_needs_its_section():
    cfg, _ = resolve("seg_train.base_lr=0.01", "saliency_train.max_iter=9")
    assert cfg["seg_train"]["base_lr"] == 0.01 and cfg["seed_train"]["base_lr"] == 0.001
    assert cfg["saliency_train"]["max_iter"] == 9 and cfg["seg_train"]["max_iter"] == 4  # smoke's
    with pytest.raises(InputError, match="'base_lr' is in several sections; write seed_train.base_lr or "
                                         "saliency_train.base_lr or seg_train.base_lr"):
        resolve("base_lr=0.01")
    with pytest.raises(InputError, match=r"'.max_iter' is in several sections; write seed_train.max_iter or "):
        resolve(".max_iter=3")   # (it said seed_train..max_iter)


def test_a_key_under_the_wrong_section_is_refused():
    """seg_train.seedthres used to set guide_labels.seedthres without a word."""
    with pytest.raises(InputError, match="unknown setting 'seg_train.seedthres'; section seg_train has no "
                                         "'seedthres'; did you mean seedthres\\? ./src/segmentation/train.py -h lists "
                                         "its settings$"):
        resolve("seg_train.seedthres=1")


@pytest.mark.parametrize("written, hint", [
    ("seed_heatmaps.max_iter", "section seed_heatmaps has no 'max_iter'; did you mean seed_train.max_iter, "
                               "saliency_train.max_iter, seg_train.max_iter?"),
    ("seed_heatmaps.test_sise", "did you mean seed_heatmaps.test_size, "),
    ("max_ite", "did you mean max_iter (of seed_train, saliency_train, seg_train)"),
    ("seed_train", "'seed_train' is a section, not a setting; write seed_train.KEY=VALUE"),
    ("SEED_TRAIN.MAX_ITER", "did you mean seed_train.max_iter?"), ("Seedthres", "did you mean seedthres?"),
    ("MAX_ITER", "did you mean seed_train.max_iter, saliency_train.max_iter, seg_train.max_iter?")])
def test_an_unknown_setting_is_told_what_it_likely_meant(written, hint):
    """A key of other sections names them (it suggested the bare key, which is refused as in several sections), a
    section given a value says so (it suggested keys like its name), and a name in capitals is told it in lower
    case (none was suggested)."""
    with pytest.raises(InputError) as e:
        resolve(f"{written}=5")
    assert hint in e.value.messages[0]


def test_a_preset_may_group_keys_by_section_or_write_them_flat(tmp_path):
    (tmp_path / "p.yaml").write_text("seedthres: 30\nseg_train.base_lr: 0.01\nsaliency_train: {max_iter: 5}\n")
    cfg, preset = C.resolve(str(tmp_path / "p.yaml"))
    assert (cfg["guide_labels"]["seedthres"], cfg["seg_train"]["base_lr"], cfg["saliency_train"]["max_iter"]) == \
        (30, 0.01, 5)
    assert cfg == preset and cfg["name"] == "p"


def test_a_preset_that_names_another_is_told_presets_do_not_include_one_another(tmp_path):
    """`base: msrc` said 'unknown setting 'base'; did you mean base_lr', `config: msrc` only 'unknown setting'."""
    (tmp_path / "p.yaml").write_text("base: msrc\nconfig: smoke\nseed_train: {max_iter: 3}\n")
    with pytest.raises(InputError) as e:
        C.resolve(str(tmp_path / "p.yaml"))
    assert list(e.value.messages) == [
        f"{tmp_path / 'p.yaml'}: {key}: {name} names a preset, but presets do not include one another; copy "
        f"{C.CONFIGS / name}.yaml and edit it, or give it as --config with --set for the changes"
        for key, name in (("base", "msrc"), ("config", "smoke"))]


def test_a_misspelt_section_of_a_preset_is_told_the_section_it_likely_meant(tmp_path):
    """A probe's `guide_label:` group was 'unknown setting 'guide_label'; did you mean guiderule?'."""
    (tmp_path / "p.yaml").write_text("guide_label: {dropped: seeds}\nsegs: {test_pcrf: none}\n")
    with pytest.raises(InputError) as e:
        C.resolve(str(tmp_path / "p.yaml"))
    assert list(e.value.messages) == [
        f"{tmp_path / 'p.yaml'}: unknown section 'guide_label'; did you mean guide_labels?",
        f"{tmp_path / 'p.yaml'}: unknown section 'segs'; the sections are " + ", ".join(S.OPTIONS)]


def test_a_layout_whose_settings_name_no_data_setting_is_one_error(monkeypatch):
    """A probe's layout module with `settings = ("dataset_dirr", ...)` ran, its folders named without the dataset,
    so a second dataset's run took the first's; it is now an error naming the module."""
    from guidedlabelling.datasets import LAYOUTS
    monkeypatch.setattr(LAYOUTS["voc"], "settings", ("dataset_dirr", "datatype"))
    with pytest.raises(InputError) as e:
        C.resolve("smoke")
    message, = e.value.messages
    assert message.startswith("layout voc: its `settings` name 'dataset_dirr', which no data setting is (the data "
                              "settings: layout, dataset_dir, ")
    assert message.endswith("correct guidedlabelling.datasets.voc")


def test_paths_expand_environment_variables_and_spaces_around_a_set_value_are_dropped(tmp_path, monkeypatch):
    """A probe's `out_root=$HOME/x` made a folder '$HOME' in the current one; `init= none` named a file ' none';
    `store=None` made a store ./None."""
    from guidedlabelling.store import store_root
    monkeypatch.setenv("GL_PROBE", str(tmp_path))
    monkeypatch.delenv("GL_UNSET", raising=False)
    cfg, _ = resolve("out_root=$GL_PROBE/runs", " seed_train.init = none ", "seed_train.max_iter =6")
    assert cfg["run"]["out_root"] == str(tmp_path / "runs") and cfg["seed_train"]["init"] == "none"
    assert cfg["seed_train"]["max_iter"] == 6
    cfg, _ = resolve('out_root="$GL_PROBE/my runs"', "seed_train.init='none'")   # quotes, as a preset's
    assert cfg["run"]["out_root"] == str(tmp_path / "my runs") and cfg["seed_train"]["init"] == "none"
    assert C.split_override('k="') == ("k", '"') and C.split_override("k='x\"") == ("k", "'x\"")   # not a pair
    with pytest.raises(InputError, match=r"^setting run.out_root = '\$\{GL_UNSET\}/x' \(command line\): "
                                         r"\$\{GL_UNSET\} is not set in the environment; set it, or write the path out$"):
        resolve("out_root=${GL_UNSET}/x")
    (tmp_path / "p.yaml").write_text("name: p\ndataset_dir: $GL_UNSET/voc\n")   # a review's: overridden, no error
    assert C.resolve(str(tmp_path / "p.yaml"), [f"dataset_dir={tmp_path}"])[0]["data"]["dataset_dir"] == str(tmp_path)
    odd = tmp_path / "we$rd"   # a stored path holding a '$' compares as it is (its folder's cache check raised)
    with pytest.raises(InputError, match=r"\$rd is not set in the environment"):
        resolve(f"out_root={odd}")
    odd.mkdir()   # a folder so named, where no variable rd is set, is named as written (a probe's: refused)
    assert resolve(f"out_root={odd}")[0]["run"]["out_root"] == str(odd)
    assert naming.same_settings({"data": {"dataset_dir": str(odd)}}, {"data": {"dataset_dir": str(odd)}})
    with pytest.raises(InputError, match="two values"):   # spaces around a --set key, beside a flag
        C.refuse_conflicts(["workers = 3"], [("--workers 2", "workers=2")])
    assert store_root("None") is None and store_root("$GL_PROBE/store") == tmp_path / "store"


def test_an_unset_variable_in_the_store_setting_is_an_error(monkeypatch):
    """run.store expands variables as the path settings do (store.py), but was not checked: `--set
    store=$UNSET/s` kept a network in a folder '$UNSET' of the current one."""
    monkeypatch.delenv("GL_UNSET", raising=False)
    with pytest.raises(InputError, match=r"^setting run.store = '\$GL_UNSET/s' \(command line\): "
                                         r"\$GL_UNSET is not set in the environment; set it, or write the path out$"):
        resolve("store=$GL_UNSET/s")
    assert resolve("store=none")[0]["run"]["store"] == "none"


def test_a_set_variable_in_the_store_setting_is_expanded(monkeypatch, tmp_path):
    """--set store=$SCRATCH/s with SCRATCH set names $SCRATCH's folder, as a path setting does (it was refused:
    '$SCRATCH is not set in the environment', the check looking at the setting before store_root expanded it)."""
    monkeypatch.setenv("GL_SCRATCH", str(tmp_path))
    for value in ("$GL_SCRATCH/s", "${GL_SCRATCH}/s"):
        assert resolve(f"store={value}")[0]["run"]["store"] == f"{tmp_path}/s"


def test_steps_may_be_written_with_spaces_or_as_all():
    every = ",".join(s for s, _, _ in driver.STEPS)
    assert driver.parse(["--steps", "all"]).steps == every == driver.parse([]).steps
    assert driver.parse(["--steps", "seed_train, seed_heatmaps,"]).steps == "seed_train,seed_heatmaps"


def test_an_empty_preset_and_a_preset_named_with_its_suffix_are_one_error_each(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("# only a comment\n")
    with pytest.raises(InputError, match=r"^mine.yaml: holds no settings; write `key: value` lines, or start from a "
                                         r"copy of a preset in configs/ \(demo, "):
        C.resolve("mine.yaml")
    with pytest.raises(InputError, match=r"^smoke.yaml: config not found \(did you mean smoke, a preset of "
                                         r"configs/\?\); use a file in configs/"):
        C.resolve("smoke.yaml")
    with pytest.raises(InputError, match=r"^smok: config not found \(did you mean smoke, a preset of configs/\?\)"):
        C.resolve("smok")


def test_a_setting_given_several_values_is_noted_with_the_one_used():
    """A probe's --set max_iter=6 --set max_iter=8 trained 8 iterations without a word (a flag given twice is an
    error); the same value twice, written otherwise, is no note."""
    from guidedlabelling.notes import repeated, setting_notes
    items = ["seed_train.max_iter=6", "seedthres=30", "seed_train.max_iter = 8", "guide_labels.seedthres=30"]
    assert repeated(items) == ["seed_train.max_iter is given 2 values (6, 8): the last, 8, is used"]
    assert repeated(items)[0] in setting_notes(C.resolve("smoke")[0], items)   # what every command prints
    assert repeated(["run.cudnn_benchmark=no", "run.cudnn_benchmark=False", "out_root=runs", "out_root=./runs/",
                     "seedthres=030", "seedthres=30"]) == []   # one value each, written otherwise


def test_settings_are_read_as_their_type_and_errors_name_the_setting_and_its_source(tmp_path):
    cfg, _ = resolve("vis=yes", "channels_last=OFF", "seedthres=30", "seg_train.base_lr=1e-3", "workers=+2")
    assert (cfg["run"]["vis"], cfg["run"]["channels_last"], cfg["guide_labels"]["seedthres"]) == (True, False, 30)
    assert (cfg["seg_train"]["base_lr"], cfg["run"]["workers"]) == (0.001, 2)
    with pytest.raises(InputError) as e:
        resolve("seed_train.max_iter=abc", "vis=maybe", "seed_train.batch_size=1.5", "sedthres=1")
    assert e.value.messages == (
        "setting seed_train.max_iter = 'abc' (command line): not a whole number; write e.g. 8000",
        "setting run.vis = 'maybe' (command line): not true or false (also yes/no, on/off, 1/0)",
        "setting seed_train.batch_size = '1.5' (command line): not a whole number; write e.g. 15",
        "command line: unknown setting 'sedthres'; did you mean seedthres, salthres, eval_seedthres? each stage "
        "command's -h lists its settings (./src/seed/train.py -h, ...), and configs/*.yaml name them")
    preset = tmp_path / "p.yaml"
    preset.write_text("seed_train: {max_iter: abc}\nvis: 1\nsalthres: 101\n")
    with pytest.raises(InputError) as e:
        C.resolve(str(preset))
    assert e.value.messages == (f"setting seed_train.max_iter = 'abc' ({preset}): not a whole number; write e.g. 8000",
                                f"setting guide_labels.salthres = 101 ({preset}): must be within 0..100")


@pytest.mark.parametrize("setting, problem", [
    ("seed_train.batch_size=0", "must be at least 1"), ("seg_train.max_iter=-2", "must be within 1..1000000"),
    ("snapshot=0", "must be at least 1"), ("saliency_train.stepsize=0", "must be at least 1"),
    ("seed_train.base_lr=0", "must be above 0"), ("seg_train.momentum=1", "must be below 1"),
    ("device=gpu", "write cpu, cuda, cuda:N (a GPU index) or auto"), ("device=cuda:x", "write cpu, cuda"),
    ("guiderule=G3", "choose one of G2, salor, seed, sal"), ("seed_train.net=VGG", "choose one of GAP-HighRes"),
    ("amp=fp8", "choose one of none, bf16, fp16"), ("val_percent=101", "must be within 0..100"),
    ("test_interpord=2", "choose one of 0, 1"), ("eval_thres_step=0", "must be within 1..100"),
    ("labels=true", "choose one of guide, gt"), ("seed_split=val", "choose one of train, test"),
    ("seg_train.net=DeepLab-Foo", "choose one of DeepLab-LargeFOV"), ("layout=coco", "choose one of auto, voc, own"),
    ("seg_train.net=DeepLab", "the release's DeepLab is DeepLab-LargeFOV here; choose one of DeepLab-LargeFOV"),
    ("saliency_train.net=DeepLabv2_ResNet", "the release's saliency network, DeepLab v2 on ResNet-101 (its maps came "
                                            "precomputed), is not ported; choose one of DeepLab-LargeFOV"),
    ("seed_train.net=DeepLab", "choose one of GAP-HighRes"),
    ("extra_sizes=321,8", "8: a side must be within 16..8192"), ("extra_sizes=321px", "write sides in pixels"),
    ("seed_train.input_size=100000", "must be at most 8192"), ("seed_train.base_lr=1e39", "must be at most 1000"),
    ("builtin_train=100000000", "must be within 1..100000"),
    ("seg_train.input_size=3", "must be at least 16"), ("seed_train.input_size=1", "must be at least 16"),
    ("saliency_train.input_size=15", "must be at least 16"), ("segmentations.test_size=1", "must be at least 16"),
    ("saliency.test_size=3", "must be at least 16"), ("seed_heatmaps.test_size=3", "must be 0 or at least 16"),
    ("max_image_side=3", "must be 0 or at least 16"), ("seg_train.max_side=3", "must be 0 or at least 16"),
    ("seg_train.gamma=10", "must be within 0..1"),
    ("seed_train.seed=18446744073709551616", "must be within 0..18446744073709551615")])
def test_ranges_and_choices(setting, problem):
    key = setting.split("=")[0].split(".")[-1]
    with pytest.raises(InputError) as e:
        resolve(setting)
    message, = e.value.messages
    assert message.startswith("setting ") and f".{key} = " in message and f"(command line): {problem}" in message
    assert resolve("device=cuda:1")[0]["run"]["device"] == "cuda:1"


def test_gpu_and_another_device_are_an_error_and_agreeing_ones_are_not():
    """--gpu 0 --device cpu ran on cuda:0 (and said there was no CUDA device, 'use --device cpu')."""
    with pytest.raises(InputError) as e:
        resolve("gpu=0", "device=cpu")
    assert e.value.messages == ("settings run.gpu = 0 (command line) and run.device = 'cpu' (command line) name two "
                                "devices (--gpu N is --device cuda:N); give one",)
    for device in ("auto", "cuda", "cuda:1"):
        assert resolve("gpu=1", f"device={device}")[0]["run"]["device"] == "cuda:1"
    assert C.resolve("smoke", ["gpu=0"])[0]["run"]["device"] == "cuda:0"   # over smoke's device cpu (a probe's
    # 'name two devices; give one', where the user gave one)


def test_a_dataset_named_for_a_builtin_preset_is_the_one_read():
    """demo/smoke name the built-in dataset; --dataset_dir or --saliency_data used to be replaced by it."""
    cfg, preset = resolve("dataset_dir=/data/voc", "saliency_data=/data/msra")
    assert (cfg["data"]["dataset_dir"], cfg["saliency_train"]["saliency_data"]) == ("/data/voc", "/data/msra")
    assert preset["data"]["dataset_dir"].endswith("builtin")
    cfg, _ = resolve("dataset_dir=/data/voc")
    assert cfg["saliency_train"]["saliency_data"] == preset["saliency_train"]["saliency_data"]  # the built-in set
    assert naming.stage_name(cfg, preset, "seed_train") == "dataset_dir-voc-" + hashlib.sha1(b"/data/voc").hexdigest()[:6]


def test_a_folder_whose_name_is_not_utf8_names_an_output_folder_of_utf8():
    """--images caf\xe9 (an old camera's, a zip's folder, read with a surrogate) ended ./script.py in a traceback
    before any work: its hash is of the name's bytes, its shown part replaces the byte."""
    cfg, preset = resolve("dataset_dir=/data/caf\udce9")
    assert naming.stage_name(cfg, preset, "seed_train") == \
        "dataset_dir-caf\ufffd-" + hashlib.sha1(b"/data/caf\xe9").hexdigest()[:6]


def test_one_folder_written_any_way_names_one_output_folder(tmp_path, monkeypatch):
    """A trailing slash, a relative path, '..' or a link to the folder: the same settings and folder names;
    another project's folder of the same name gets its own folders."""
    for project in ("a", "b"):
        (tmp_path / project / "images").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    monkeypatch.chdir(tmp_path)
    written = [str(tmp_path / "a" / "images"), "a/images/", "./a/images", "b/../a/images", "link/images"]
    found = {(json.dumps(cfg["data"], sort_keys=True), naming.stage_name(cfg, preset, "seed_train"))
             for cfg, preset in (resolve(f"images={w}", f"tags={w}/../tags.csv") for w in written)}
    (data, name), = found
    assert json.loads(data)["images"] == str(tmp_path / "a" / "images")
    assert json.loads(data)["tags"] == str(tmp_path / "a" / "tags.csv")
    assert name.startswith("images-images-") and "_tags-tags.csv-" in name
    other, preset = resolve("images=b/images", "tags=b/tags.csv")
    assert naming.stage_name(other, preset, "seed_train") != name


def test_a_relative_path_of_ones_own_preset_that_is_there_only_from_elsewhere_names_where(tmp_path, monkeypatch):
    """A copy of configs/msrc.yaml run from another folder said only '/tmp/shared/data/msrc_things: dataset folder
    not found': its ../shared/data/... is the current folder's, where the project's presets are the project's."""
    (tmp_path / "mine" / "photos").mkdir(parents=True)
    preset = tmp_path / "mine" / "p.yaml"
    preset.write_text("builtin: true\ndataset_dir: photos\nsaliency_data: src,absent\nout_root: runs\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as e:
        C.resolve(str(preset))
    home = "a relative path of your own preset is the current folder's"
    assert list(e.value.messages) == [
        f"setting data.dataset_dir = 'photos' ({preset}): {tmp_path / 'photos'} is not there ({home}); "
        f"{tmp_path / 'mine' / 'photos'} is: write that",
        f"setting saliency_train.saliency_data = 'src,absent' ({preset}): {tmp_path / 'src'} is not there ({home}); "
        f"{C.ROOT / 'src'} is: write that"]
    monkeypatch.chdir(tmp_path / "mine")   # photos is there from here; a path of the command line is not the preset's
    cfg = C.resolve(str(preset), ["saliency_data=src"])[0]
    assert (cfg["data"]["dataset_dir"], cfg["run"]["out_root"]) == (str(tmp_path / "mine" / "photos"),
                                                                    str(tmp_path / "mine" / "runs"))


def test_the_default_out_root_is_the_projects_from_any_folder_and_a_given_one_the_current_folders(tmp_path,
                                                                                                 monkeypatch):
    """A stage command started from another folder looked for the project's outputs under that folder."""
    monkeypatch.chdir(tmp_path)
    assert C.resolve("demo", [])[0]["run"]["out_root"] == str(C.ROOT / "data" / "runs")
    assert C.resolve("demo", ["out_root=mine"])[0]["run"]["out_root"] == str(tmp_path / "mine")


def test_a_folder_made_with_a_relative_path_matches_the_same_path_made_absolute(tmp_path, monkeypatch):
    """config.yaml of folders made before paths were stored absolute still matches the same settings."""
    monkeypatch.chdir(tmp_path)
    cfg, _ = resolve("dataset_dir=voc", "saliency_data=sal1,sal2/,")
    assert cfg["saliency_train"]["saliency_data"] == f"{tmp_path / 'sal1'},{tmp_path / 'sal2'}"
    current = naming.relevant(cfg, "saliency")
    stored = json.loads(json.dumps(current))
    stored["data"]["dataset_dir"], stored["saliency_train"]["saliency_data"] = "voc", "sal1,sal2"
    assert naming.same_settings(stored, current)
    stored["data"]["dataset_dir"] = "other"
    assert not naming.same_settings(stored, current)


def test_a_folder_made_by_another_clone_of_the_project_has_the_same_settings(tmp_path, monkeypatch):
    """--pascalroot's default lies inside the project, so two clones resolve it to two paths; with --dataset_dir or
    your own data it is not read, and a folder one clone made (its config.yaml as written before it was left
    blank included) matches the other's settings. Where it is read, it still tells the folders apart."""
    def settings(root, *sets, config="msrc"):
        monkeypatch.setattr(C, "ROOT", root)
        return naming.relevant(resolve(*sets, config=config)[0], "seed_train")
    for given in (["dataset_dir=/data/msrc"], ["images=/data/own", "tags=/data/own.csv"]):
        mine, theirs = settings(tmp_path / "clone1", *given), settings(tmp_path / "clone2", *given)
        assert mine["data"]["pascalroot"] is None and naming.same_settings(mine, theirs)
        older = json.loads(json.dumps(mine))
        older["data"]["pascalroot"] = str(tmp_path / "clone1/data/VOCdevkit")
        assert naming.same_settings(older, theirs)
    mine = settings(tmp_path / "clone1", config="voc12_paper")
    assert mine["data"]["pascalroot"] == str(tmp_path / "clone1/data/VOCdevkit")
    assert settings(tmp_path / "clone1", "layout=voc", "images=/data/own", config="voc12_paper")["data"]["pascalroot"]
    assert not naming.same_settings(mine, settings(tmp_path / "clone2", config="voc12_paper"))


def test_a_folder_made_on_the_builtin_data_of_a_moved_project_has_the_same_settings(tmp_path, monkeypatch):
    """The built-in data is generated inside the project, so a project moved or cloned elsewhere finds its folders'
    stored data paths under the former project folder: they count as this one's (they ended the rerun in "made with
    other settings" before). A folder of your own named alike, or built-in data of other settings, still differs."""
    def settings(root, *sets):
        monkeypatch.setattr(C, "ROOT", root)
        return naming.relevant(resolve(*sets, config="smoke")[0], "saliency")
    before, after = settings(tmp_path / "old/project"), settings(tmp_path / "moved")
    assert before["data"]["dataset_dir"] == str(tmp_path / "old/project/data/builtin_64px_20_10/builtin")
    assert after["saliency_train"]["saliency_data"] == str(tmp_path / "moved/data/builtin_64px_20_10/builtin_saliency")
    assert not naming.same_settings(before, settings(tmp_path / "moved", "builtin_val=11"))
    assert naming.same_settings(before, after)
    listed = [settings(root, f"saliency_data={root}/data/builtin_64px_20_10/builtin_saliency,{tmp_path / 'horses'}")
              for root in (tmp_path / "old/project", tmp_path / "moved")]   # the shapes beside a set of photos
    assert naming.same_settings(*listed)
    listed[0]["saliency_train"]["saliency_data"] += f",{tmp_path / 'cows'}"
    assert not naming.same_settings(*listed)
    yours = json.loads(json.dumps(before))
    yours["data"]["dataset_dir"] = str(tmp_path / "photos/builtin")
    assert naming.said_differences(yours, after) == \
        f"dataset_dir {str(tmp_path / 'photos/builtin')!r} there, {after['data']['dataset_dir']!r} here"


@pytest.mark.parametrize("config, overrides, expected", [
    ("demo", [], False),                                                  # the shapes' network on the shapes
    ("demo", ["images=photos", "tags=photos/tags.csv"], True),            # ... on your photos
    ("smoke", ["images=photos", "tags=photos/tags.csv"], True),
    ("demo", ["dataset_dir=voc_photos"], True),                           # ... on photos in VOC layout
    ("demo", ["pascalroot=VOCdevkit"], True),
    ("demo", [f"dataset_dir={C.builtin_dir(C.resolve()[0]['data'])}/builtin/"], False),   # the shapes, named
    ("demo", ["images=photos", "tags=photos/tags.csv", "saliency_maps=maps"], False),   # your maps instead
    ("demo", ["images=photos", "tags=photos/tags.csv", "saliency.source=imagenet-cam"], False),
    ("demo", ["images=photos", "tags=photos/tags.csv", "saliency_data=horses"], False),  # a saliency set of photos
    ("msrc", ["images=photos", "tags=photos/tags.csv"], False),
])
def test_a_saliency_network_of_the_builtin_shapes_on_other_images_is_told(config, overrides, expected):
    line = C.shapes_saliency_warning(C.resolve(config, overrides)[0])
    assert (line == C.SHAPES_SALIENCY) if expected else line is None


@pytest.mark.parametrize("steps, told", [("seed_train,seed_heatmaps,seg_train", False), ("saliency_train", True),
                                         ("saliency", True), ("guide_labels", True)])
def test_the_shapes_note_comes_where_the_steps_make_or_read_the_saliency_maps(steps, told):
    args = driver.parse(["--images", "photos", "--tags", "photos/tags.csv", "--steps", steps])
    overrides = driver.settings(args)
    note = driver.shapes_saliency_note(args, overrides, *driver.planned_steps(args, overrides))
    assert note == (C.SHAPES_SALIENCY if told else None)


def test_a_run_without_results_summarises_without_naming_a_model(tmp_path, capsys):
    """--steps seed_train before any segmenter, with a snapshot to test named: no table, and no error about the
    snapshot (the model is named only where the segmenter was tested)."""
    args = driver.parse(["--config", "smoke", "--out_root", str(tmp_path), "--set", "segmentations.test_iter=5"])
    overrides = driver.settings(args)
    assert driver.summarise(args, overrides, driver.skipped_steps(args, overrides)) is False
    assert "summary: some steps have no results yet" in capsys.readouterr().out


def test_the_rerun_command_of_a_missing_upstream_gives_its_settings_as_a_user_would(tmp_path):
    """The built-in data's size settings, not the folders they make; a setting two sections share as SECTION.KEY;
    a path with a space quoted; nothing of the stages downstream (--max_iter of seg_train is not generate.py's)."""
    cfg, preset = C.resolve("smoke", ["builtin_train=8", "saliency_train.max_iter=3", "seg_train.max_iter=9",
                                      f"out_root={tmp_path / 'a b'}"])
    assert naming.rerun_command("saliency", cfg, preset) == (
        f"./src/saliency/test.py --set builtin_train=8 --set saliency_train.max_iter=3 "
        f"--set 'out_root={tmp_path / 'a b'}' with the same --config")
    assert naming.rerun_command("seed_train", *C.resolve("smoke", [])) == "./src/seed/train.py with the same --config"


@pytest.mark.parametrize("setting, problem", [
    ("out_root=", "run.out_root = '' (command line): is empty; write a folder (. for the current one)"),
    ("seed_train.init= ", "seed_train.init = '' (command line): is empty; write none (from scratch), imagenet or "
                          "a weights file"),   # (the spaces around a value dropped)
    ("seed_train.max_iter=99999999999999999999", "must be within 1..1000000")])
def test_values_an_unset_variable_or_a_slip_would_give_are_refused(setting, problem):
    """An empty out_root wrote into the current folder, an empty init trained from scratch, and a huge max_iter drew
    its sample order until the memory ran out."""
    with pytest.raises(InputError, match=re.escape(problem)):
        resolve(setting)


def test_a_comma_list_written_two_ways_names_one_folder():
    """Each is a set: the sizes are averaged and the scenes held out whatever their order (written in another order,
    the sizes made another folder, and the heatmaps were computed again)."""
    names = {naming.stage_name(*resolve(f"seed_heatmaps.extra_sizes={v}"), "seed_heatmaps")
             for v in ("96,128", " 096 , 128 ", "96,128,", "128,96", "128,96,128")}
    assert names == {"extra_sizes-96,128"}
    cfg, preset = resolve("holdout_scenes= b ,a,b,")
    assert cfg["saliency_train"]["holdout_scenes"] == "a,b"


def test_masks_without_images_and_tags_is_an_error():
    """It was ignored: a run on the built-in data in folders named for the masks."""
    cfg, _ = resolve("masks=/elsewhere/masks")
    with pytest.raises(InputError, match="--masks /elsewhere/masks goes with --images and --tags"):
        open_dataset(cfg["data"], "train")


@pytest.mark.parametrize("data, problem", [
    (b"builtin: true\nseedthres: 30\t# thirty\n", ", line 2: not a preset (found character '\\t' that cannot start "
     "any token); YAML indents and separates with spaces only: replace the tabs with spaces"),
    ("builtin: true\nname: caf\u00e9\n".encode("latin-1"), ": not UTF-8 text; a preset is YAML `key: value` lines: "
     "save it as UTF-8")])
def test_a_preset_of_tabs_or_of_another_encoding_is_told_the_fix(tmp_path, data, problem):
    """A tab before a comment said 'write `key: value` lines', which the lines were; a Latin-1 file, 'not a text
    file'."""
    (tmp_path / "p.yaml").write_bytes(data)
    with pytest.raises(InputError) as e:
        C.resolve(str(tmp_path / "p.yaml"))
    assert list(e.value.messages) == [str(tmp_path / "p.yaml") + problem]


@pytest.mark.parametrize("text", ["", "- a list\n", "{unclosed: [\n"])
def test_a_damaged_config_yaml_is_unreadable_not_matching(tmp_path, text):
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(InputError, match=f"{re.escape(str(tmp_path / 'config.yaml'))}: unreadable; remove this "
                                         "folder, or rerun with --overridecache"):
        naming.stored_settings(tmp_path)


def test_a_preset_file_named_like_a_builtin_one_keeps_to_its_own_folders(tmp_path):
    """Its folders would have been the built-in preset's, and 'made with other settings; --overridecache replaces
    it' then advised destroying them."""
    builtin = C.CONFIGS / "smoke.yaml"
    (tmp_path / "smoke.yaml").write_text(builtin.read_text())
    assert C.resolve(str(tmp_path / "smoke.yaml"))[0]["name"] == "smoke"   # a copy: the same runs
    (tmp_path / "smoke.yaml").write_text(builtin.read_text() + "seedthres: 30\n")
    with pytest.raises(InputError, match=r"smoke.yaml: its runs would share <out_root>/smoke with the preset smoke "
                                         r"of configs/.*add a line `name: my_smoke`"):
        C.resolve(str(tmp_path / "smoke.yaml"))
    (tmp_path / "smoke.yaml").write_text(builtin.read_text() + "seedthres: 30\nname: my_smoke\n")
    assert C.resolve(str(tmp_path / "smoke.yaml"))[0]["name"] == "my_smoke"


def test_a_setting_on_by_default_is_turned_off_by_its_no_flag():
    parser = C.stage_parser("seg_train", "")
    assert "--no_cudnn_benchmark" in parser.format_help() and "--cudnn_benchmark" not in parser.format_help()
    assert resolve(*C.flag_overrides(parser.parse_args([])))[0]["run"]["cudnn_benchmark"] is True
    off = C.flag_overrides(parser.parse_args(["--no_cudnn_benchmark"]))
    assert resolve(*off)[0]["run"]["cudnn_benchmark"] is False


def test_each_flags_help_shows_the_value_of_the_preset_it_runs_with():
    """-h showed the release's defaults alone (--max_iter 8000, --test_pcrf none) where demo, the default --config,
    runs 300 iterations and the CRF: each flag now shows the preset's value where it differs, as its file writes it."""
    for argv, name in (([], "demo"), (["--config", "msrc", "-h"], "msrc")):
        written = yaml.safe_load((C.CONFIGS / f"{name}.yaml").read_text())
        text = " ".join(C.stage_parser("seed_train", "", argv).format_help().split())
        assert f"(default: 8000; {name}: {written['seed_train']['max_iter']})" in text
        assert "(default: 0.0005)" in text and "(Caffe lr_mult 0 for the pretrained trunk) " \
            f"({name}: on)" in text
        assert "(default: data/VOCdevkit)" in text   # a path of the defaults: the preset does not move it
    text = " ".join(C.stage_parser("segmentations", "", []).format_help().split())
    demo = yaml.safe_load((C.CONFIGS / "demo.yaml").read_text())
    assert f"(default: none; demo: {demo['segmentations']['test_pcrf']})" in text


def test_the_help_of_a_preset_with_a_slip_shows_its_other_values_and_says_it_has_problems(tmp_path, monkeypatch):
    """A preset with one unknown key showed every flag with the defaults alone (--max_iter 8000, where the preset gives
    7), as if the preset set nothing."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text("builtin: true\nseed_train: {max_iter: 7}\nbogus: 1\n")
    text = " ".join(C.stage_parser("seed_train", "", ["--config", "p.yaml", "-h"]).format_help().split())
    assert "(default: 8000; p.yaml: 7)" in text
    assert "p.yaml has 1 problem, which the command without -h names" in text
    text = " ".join(C.stage_parser("seed_train", "", ["--config", "q.yaml", "-h"]).format_help().split())
    assert "q.yaml does not load: the command without -h says why" in text


def test_a_flag_of_a_setting_on_by_default_that_a_command_lacks_says_how_to_set_it():
    assert settings_as_flags(["--no_cudnn_benchmark"], "./script.py") == [
        "--no_cudnn_benchmark: not a flag of ./script.py, but a setting of run; give it as --set cudnn_benchmark=false"]
    assert settings_as_flags(["--cudnn_benchmark"], "./src/seed/train.py") == [
        "--cudnn_benchmark: a setting of run, on by default; --set cudnn_benchmark=false turns it off"]
    assert settings_as_flags(["--no_vis"], "./script.py") == [   # off by default: no flag turns it off
        "--no_vis: no such flag (vis, a setting of run, is off by default); --set vis=false turns it off where "
        "--config turns it on"]
    assert settings_as_flags(["--vis"], "./script.py") == [
        "--vis: not a flag of ./script.py, but a setting of run; give it as --set vis=true"]


def test_a_flag_is_taken_whole_not_as_the_start_of_another():
    """argparse read `./src/seed/test.py --seed 1` as --seed_split 1 (an abbreviation), and the error then named
    seed_split; `./script.py --ste` ran the steps it named. A flag is now a setting's hint or argparse's own error."""
    from guidedlabelling import runner
    with pytest.raises(InputError) as e:
        runner.parse("seed_heatmaps", ["--seed", "1"])
    assert e.value.messages == ("--seed: not a flag of ./src/seed/test.py, but a setting of seed_train, saliency_train "
                                "and seg_train; give it as --set SECTION.seed=1 (SECTION: seed_train, saliency_train "
                                "and seg_train)",)
    with pytest.raises(SystemExit):
        driver.parse(["--ste", "seed_train"])
    assert C.preset_of(["--conf", "msrc"])[0] == "demo"   # the defaults -h shows are the demo preset's


def test_the_releases_flags_that_mean_otherwise_here_are_told():
    """A user of the release's scripts: its names of upstream settings (--s_seedthres, --g_net), its flags with no
    counterpart here (--test_gtcls, --save_heat) and its type=bool switches given a value (--overridecache False)
    ended in a bare 'unrecognized arguments'; each is now a line saying what to give instead."""
    from guidedlabelling import runner
    with pytest.raises(InputError) as e:
        runner.parse("segmentations", ["--s_seedthres", "30", "--s_s_net", "X", "--test_gtcls", "use"])
    assert e.value.messages == (
        "--s_seedthres: not a flag of ./src/segmentation/test.py, but (the release's name of an upstream stage's "
        "setting) a setting of guide_labels; give it as --set seedthres=30",
        "--s_s_net: not a flag of ./src/segmentation/test.py, but (the release's name of an upstream stage's "
        "setting) a setting of saliency_train; give it as --set saliency_train.net=X",
        "--test_gtcls: a flag of the release with no use here (the heatmaps are always those of each image's tags, as "
        "the release's 'use' made them); leave it out")
    with pytest.raises(InputError) as e:
        runner.parse("seed_heatmaps", ["--overridecache", "False", "--vis", "True", "--no_cudnn_benchmark", "true"])
    assert e.value.messages == tuple(
        f"{flag} {word}: {flag} takes no value (the release's type=bool flags took one, and turned even False into "
        f"True); give {flag} alone to turn it {way}" for flag, word, way in (
            ("--overridecache", "False", "on, or --set overridecache=false to turn it off"),
            ("--vis", "True", "on, or --set vis=false to turn it off"),
            ("--no_cudnn_benchmark", "true", "off, or --set cudnn_benchmark=true to turn it on")))


def test_an_output_or_upstream_folder_given_empty_is_refused():
    """--out_dir "$OUT" with OUT unset wrote the folder named from the settings, and --model_dir "" read that
    one's model, without a word (an empty data path is refused: it ran the preset's data)."""
    from guidedlabelling import runner
    with pytest.raises(InputError) as e:
        runner.parse("seed_heatmaps", ["--out_dir", "", "--model_dir", " "])
    assert e.value.messages == (
        "--out_dir: is empty (an unset variable?); write a folder, or leave the flag out to write the folder named "
        "from the settings",
        "--model_dir: is empty (an unset variable?); write a folder, or leave the flag out to read the folder named "
        "from the settings")
    assert runner.parse("guide_labels", ["--seed_dir", "s", "--out_dir", "."]).seed_dir == "s"


def test_a_switch_that_the_preset_turns_on_is_told_how_to_turn_off():
    """demo turns seed_train.freeze_trunk on, which its flag --freeze_trunk also does: `--freeze_trunk False` was told
    to leave the flag out, which kept it on, and --no_freeze_trunk was a bare 'unrecognized arguments'."""
    from guidedlabelling import runner
    with pytest.raises(InputError) as e:
        runner.parse("seed_train", ["--freeze_trunk", "False", "--no_freeze_trunk"])
    assert e.value.messages == (
        "--no_freeze_trunk: no such flag (freeze_trunk, a setting of seed_train, saliency_train and seg_train, is off "
        "by default); --set SECTION.freeze_trunk=false turns it off where --config turns it on",
        "--freeze_trunk False: --freeze_trunk takes no value (the release's type=bool flags took one, and turned even "
        "False into True); give --freeze_trunk alone to turn it on, or --set seed_train.freeze_trunk=false to turn "
        "it off")
    cfg, _ = resolve("seed_train.freeze_trunk=false", config="demo")
    assert cfg["seed_train"]["freeze_trunk"] is False   # what the line says turns it off
    with pytest.raises(SystemExit):   # a flag that is nobody's: argparse's own error
        runner.parse("seed_heatmaps", ["--test_gtcls", "use", "--nosuch"])


def test_vis_given_to_a_stage_that_draws_no_panels_is_noted():
    """Every stage command lists --vis (a run setting); seed/test.py --vis wrote no panel and said nothing."""
    from guidedlabelling import notes
    cfg, _ = resolve("vis=true", config="demo")
    assert notes.panels_not_drawn("seed_heatmaps", cfg) == [
        "--vis: seed_heatmaps draws no panels (only ./src/guide_generation/generate.py and ./src/segmentation/test.py "
        "draw them), so it changes nothing here"]
    assert notes.panels_not_drawn("guide_labels", cfg) == notes.panels_not_drawn("segmentations", cfg) == []
    assert notes.panels_not_drawn("seed_heatmaps", resolve(config="demo")[0]) == []


def test_a_split_or_folder_flag_the_stage_does_not_read_is_noted():
    """The release's --test_dataset named the split each command works on; here seed/test.py --test_dataset
    voc12val made train's heatmaps without a word, and seg_train --labels gt read no --guide_dir."""
    from guidedlabelling import notes
    cfg, preset = resolve("test_dataset=voc12val", config="demo")
    assert notes.unread_inputs("seed_heatmaps", cfg, preset, {}) == [
        "--test_dataset voc12val: seed_heatmaps works on train, not on it (the release's --test_dataset named the "
        "split each command works on; here it is the split the segmenter is tested on; --set seed_split=test makes "
        "this command work on it)"]
    assert notes.unread_inputs("guide_labels", cfg, preset, {}) == []   # its saliency maps' step reads val too
    assert notes.unread_inputs("segmentations", cfg, preset, {}) == []
    assert notes.unread_inputs("saliency_train", cfg, preset, {})[0].startswith(
        "--test_dataset voc12val: saliency_train reads no split of the dataset (the release's")
    cfg, preset = resolve("dataset=voc12train", config="voc12_paper")   # the segmenter tested was trained on it
    assert notes.unread_inputs("segmentations", cfg, preset, {}) == []
    cfg, preset = resolve("labels=gt", config="demo")
    assert notes.unread_inputs("seg_train", cfg, preset, {"guide_dir": "/g"}) == [
        "--guide_dir /g: seg_train does not read it with these settings"]
    assert notes.unread_inputs("seg_train", *resolve(config="demo"), {"guide_dir": "/g"}) == []
    cfg, preset = resolve("test_dataset=train", config="demo")   # the release's script.py: seed/test.py and
    # generate.py --test_dataset voc12train_aug, its training split; here an error then named a seed_train folder
    # of test_dataset-train to train first, which ./script.py never reads
    assert notes.unread_inputs("guide_labels", cfg, preset, {}) == [
        "--test_dataset train: guide_labels works on the training split, train, without it (the release's "
        "--test_dataset named the split each command works on; here it is the split the segmenter is tested on, and "
        "names this stage's folder and its inputs'); leave it out"]
    assert notes.unread_inputs("seed_heatmaps", cfg, preset, {})[0].startswith(
        "--test_dataset train: seed_heatmaps works on the training split, train, without it")
    assert notes.unread_inputs("segmentations", cfg, preset, {}) == []   # scoring the segmenter on train
    assert notes.unread_inputs("saliency", cfg, preset, {}) == []   # its maps of the test split: train's
    assert notes.unread_inputs("saliency_train", cfg, preset, {})[0].startswith(
        "--test_dataset train: saliency_train reads no split of the dataset")
    cfg, preset = resolve(config="demo")   # the release's eval.py --test_dataset voc12val (its default) scored val's
    # seeds; here, given the preset's split, train's were scored without a word
    assert notes.unread_inputs("seed_eval", cfg, preset, {"data.test_dataset": "val"}) == [
        "--test_dataset val: seed_eval works on train, not on it (the release's --test_dataset named the split each "
        "command works on; here it is the split the segmenter is tested on; --set seed_split=test makes this command "
        "work on it)"]
    assert notes.unread_inputs("seed_eval", cfg, preset, {"data.test_dataset": None}) == []
    assert notes.unread_inputs("segmentations", cfg, preset, {"data.test_dataset": "val"}) == []


def test_a_test_iter_of_the_last_iteration_is_noted():
    """The release's --test_iter 8000 (its default, script.py's value) was its max_iter, the final model; here it
    made a folder of its own (seed_heatmaps.test_iter-8000) of the same heatmaps, which generate.py does not read."""
    from guidedlabelling import notes
    cfg, _ = resolve("seed_heatmaps.test_iter=4", config="smoke")   # smoke trains 4 iterations
    assert notes.last_iteration("seed_heatmaps", cfg) == [
        "--test_iter 4: seed_train's last iteration, whose snapshot is the final model; the default, --test_iter 0, "
        "tests it in the folder ./script.py makes and the later stages read, where this one makes a folder of its own"]
    assert notes.last_iteration("seed_heatmaps", resolve("seed_heatmaps.test_iter=2", config="smoke")[0]) == []
    assert notes.last_iteration("segmentations", resolve("segmentations.test_iter=4", config="smoke")[0])[0].startswith(
        "--test_iter 4: seg_train's last iteration")
    assert notes.last_iteration("guide_labels", cfg) == []
    assert notes.last_iteration("seed_heatmaps", resolve(config="smoke")[0]) == []


def test_the_releases_saliency_set_flags_of_saliency_test_are_noted():
    """The release's saliency/test.py --dataset MSRA --datatype NP named the saliency network's training set; here
    they name the dataset's split and ImageSets folder, and the error that followed said to create MSRA.txt."""
    from guidedlabelling import notes
    cfg, preset = resolve("dataset=MSRA", "datatype=NP", config="smoke")
    given = {"data.dataset": "MSRA", "data.datatype": "NP"}
    assert notes.unread_inputs("saliency", cfg, preset, given) == [
        "--dataset MSRA: the dataset's training split here, not the saliency set (the release's saliency/test.py "
        "--dataset and --datatype named the saliency network's training set, MSRA, of type NP); the saliency set is "
        "--set saliency_data=DIR",
        "--datatype NP: the ImageSets folder of the dataset's splits here, not the saliency set (the release's "
        "saliency/test.py --dataset and --datatype named the saliency network's training set, MSRA, of type NP); "
        "the saliency set is --set saliency_data=DIR"]
    assert notes.unread_inputs("saliency", *resolve(config="smoke"), {"data.dataset": None}) == []
    assert notes.unread_inputs("saliency", *resolve(config="smoke"), {"data.dataset": "train",   # the preset's
                                                                      "data.datatype": "Segmentation"}) == []
    assert all("saliency set" not in note for note in notes.unread_inputs("guide_labels", cfg, preset, given))


def test_a_flag_and_a_set_item_of_one_setting_must_agree(monkeypatch, tmp_path):
    """--max_iter 9 with --set seed_train.max_iter=7 trained 9 iterations without a word (the flag came last): now
    one error per setting given two values, naming the flag as written; the same value however written (a path
    relative or absolute, a list with spaces), another setting, or an unknown key pass here."""
    with pytest.raises(InputError) as e:
        C.refuse_conflicts(["seed_train.max_iter=7", "out_root=/a", "cudnn_benchmark=yes", "saliency_maps=/m"],
                           [("--max_iter 9", "seed_train.max_iter=9"), ("--out_root /b", "out_root=/b"),
                            ("--no_cudnn_benchmark", "run.cudnn_benchmark=False"),
                            ("--saliency /n", "saliency_maps=/n")])
    assert e.value.messages == (
        "--max_iter 9 and --set seed_train.max_iter=7: two values of seed_train.max_iter; give one",
        "--out_root /b and --set out_root=/a: two values of run.out_root; give one",
        "--no_cudnn_benchmark and --set cudnn_benchmark=yes: two values of run.cudnn_benchmark; give one",
        "--saliency /n and --set saliency_maps=/m: two values of guide_labels.saliency_maps; give one")
    monkeypatch.chdir(tmp_path)
    C.refuse_conflicts(["seed_train.max_iter=9", "seedthres=30", "nosuch=1", "out_root=./runs/",
                        "seed_heatmaps.extra_sizes=321, 481"],
                       [("--max_iter 9", "seed_train.max_iter=9"), ("--out_root runs", f"out_root={tmp_path / 'runs'}"),
                        ("--extra_sizes 321,481", "seed_heatmaps.extra_sizes=321,481")])
    assert C.flag_written("run.cudnn_benchmark=False") == "--no_cudnn_benchmark"
    assert C.flag_written("seed_train.max_iter=9") == "--max_iter 9" and C.flag_written("run.vis=True") == "--vis"


def test_a_setting_the_stage_does_not_read_is_noted_with_the_nearest_it_reads(own, command):
    """`./src/seed/eval.py --set seedthres=30` (guide_labels') left seed_eval at eval_seedthres 20 without a word.
    The driver, which gives every step all the run's settings, notes nothing."""
    from conftest import own_args
    from guidedlabelling import notes
    cfg, _ = resolve()
    assert notes.unread_settings("seed_eval", cfg, ["seedthres=30", "eval_seedthres=30", "threads=1"]) == [
        "--set seedthres: a setting of guide_labels, which seed_eval does not read (it reads data, seed_train, "
        "seed_heatmaps, seed_eval, run), so it changes nothing here; did you mean eval_seedthres?"]
    assert notes.unread_settings("seg_train", cfg, ["seedthres=30", "saliency_train.max_iter=2"]) == []  # upstream
    code, out, err = command("seed_train", *own_args(own), "--set", "seg_train.max_iter=5")
    assert code == 0 and "note: --set seg_train.max_iter: a setting of seg_train, which seed_train does not read " \
        "(it reads data, seed_train, run), so it changes nothing here; did you mean seed_train.max_iter?" in out, err
    code, out, err = command("script", *own_args(own), "--steps", "seed_train,seed_heatmaps")
    assert code == 0 and "does not read" not in out, out + err


def test_a_key_given_twice_in_a_preset_is_an_error_naming_both_lines(tmp_path):
    """PyYAML keeps the last of two equal keys: `builtin: true` then `builtin: false` ran without the built-in data."""
    preset = tmp_path / "p.yaml"
    preset.write_text("builtin: true\ndataset: train\nseg_train: {max_iter: 3}\nbuiltin: false\n")
    with pytest.raises(InputError) as e:
        C.resolve(str(preset))
    assert e.value.messages == (f"{preset}, line 4: 'builtin' is given twice, on lines 1 and 4: keep one",)
    preset.write_text("seg_train:\n  max_iter: 3\n  base_lr: 0.01\n  max_iter: 4\n")
    with pytest.raises(InputError, match="line 4: 'max_iter' is given twice, on lines 2 and 4: keep one"):
        C.resolve(str(preset))


def test_a_data_setting_of_the_layout_not_read_is_noted_and_names_no_folder():
    """--dataset_dir beside --images (your own data replaces the VOC-layout folder), val_percent on VOC data, or
    --pascalroot beside --dataset_dir changed nothing silently and named new folders, so the run recomputed
    everything; now each is a note, and the folders, their stored settings and the report's config are those of the
    run without it. Only settings given are noted (demo's own data with --layout own leaves the built-in
    dataset_dir blank: no note), the built-in data's settings are read with own data too (they choose its saliency
    set), and --masks without --images stays an error (VOCDataset.open), not a note."""
    from guidedlabelling import notes, report
    own = ["images=/data/own", "tags=/data/own.csv"]
    voc = "VOC-layout data (--dataset_dir, --pascalroot, or the built-in data)"
    for config, sets, extra, note in [
            ("msrc", own, "dataset_dir=/data/voc", f"dataset_dir /data/voc changes nothing: a setting of {voc}, and "
             "this run's dataset is your own data (--images, --tags)"),
            ("demo", [], "val_percent=30", "val_percent 30 changes nothing: a setting of your own data (--images, "
             f"--tags), and this run's dataset is {voc}"),
            ("msrc", [], "pascalroot=/data/VOCdevkit", "pascalroot /data/VOCdevkit changes nothing: --dataset_dir "
             "replaces it")]:
        cfg, preset = resolve(*sets, extra, config=config)
        without = resolve(*sets, config=config)[0]
        assert notes.setting_notes(cfg, [*sets, extra]) == [note]
        assert notes.setting_notes(without, sets) == []
        assert naming.stage_name(cfg, preset, "seed_train") == naming.stage_name(without, preset, "seed_train")
        assert naming.relevant(cfg, "seed_train") == naming.relevant(without, "seed_train")
    cfg, preset = resolve(*own, "dataset_dir=/data/voc", config="msrc")
    assert naming.relevant(cfg, "seed_train")["data"]["dataset_dir"] is None
    assert set(report.shown_config(cfg)["data"]) == {"layout", "dataset", "test_dataset", "builtin", "builtin_size",
                                                     "builtin_train", "builtin_val", "images", "tags", "masks",
                                                     "val_percent", "max_image_side"}
    for sets in (["layout=own", *own], [*own, "builtin_size=64"]):
        assert notes.setting_notes(resolve(*sets, config="demo")[0], sets) == []
    shapes = resolve(*own, "builtin_size=64", config="demo")
    assert naming.stage_name(*shapes, "saliency_train").startswith("saliency_data-builtin_saliency-")
    cfg, preset = resolve("masks=/data/masks", config="demo")
    assert notes.setting_notes(cfg, ["masks=/data/masks"]) == []
    assert "images" not in report.shown_config(cfg)["data"] and "dataset_dir" in report.shown_config(cfg)["data"]
    assert notes.setting_notes(resolve("dataset_dir=/data/voc", config="msrc")[0], ["dataset_dir=/data/voc"]) == []


def test_a_folder_made_before_unread_data_settings_were_blank_keeps_its_settings():
    """Stored configs as earlier versions wrote them: own data's with the VOC-layout settings and no layout key, VOC
    data's with own data's val_percent; each still matches the current settings, so no folder is remade."""
    cfg = resolve("images=/data/own", "tags=/data/own.csv", config="msrc")[0]
    current = naming.relevant(cfg, "seed_train")
    older = json.loads(json.dumps(current))
    older["data"].update(dataset_dir="/data/msrc_things", pascalroot="/old/clone/data/VOCdevkit", datatype="Main")
    del older["data"]["layout"]
    assert naming.same_settings(older, current)
    current = naming.relevant(resolve(config="demo")[0], "seed_train")
    older = json.loads(json.dumps(current))
    older["data"]["val_percent"] = 30
    assert naming.same_settings(older, current)
    older["seed_train"]["max_iter"] += 1
    assert not naming.same_settings(older, current)


def test_how_a_folders_settings_differ_is_said():
    stored = {"guide_labels": {"seedthres": 20, "salthres": 50, "gone": 1}, "old_section": {}}
    current = {"guide_labels": {"seedthres": 30, "salthres": 60}}
    assert naming.said_differences(stored, current) == (
        "seedthres 20 there, 30 here; salthres 50 there, 60 here; guide_labels.gone there, not a setting here and 1 "
        "more")


def test_threads_and_workers_above_the_cores_are_noted(monkeypatch):
    from guidedlabelling import lanes, notes
    monkeypatch.setattr(lanes, "cores", lambda: 2)
    assert notes.machine_notes({"threads": 256, "workers": 2}) == [
        "threads 256 is more than the 2 cores this process may use: torch's threads then wait on each other, which "
        "may be slower than threads 2"]
    assert notes.machine_notes({"threads": 0, "workers": 3})[0].startswith("workers 3 is more than the 2 cores")
    assert notes.machine_notes({"threads": 2, "workers": 0}) == []


def test_lanes_above_the_cores_are_noted(monkeypatch):
    """--set lanes=4 on two cores ran two lanes without a word, where threads and workers above them get one."""
    from guidedlabelling import lanes
    monkeypatch.setattr(lanes, "cores", lambda: 2)
    assert driver.lanes_note({"lanes": 4, "n": 0, "N": 1}) == \
        "lanes 4 is more than the 2 cores this process may use: it runs 2 at most, one per core"
    assert driver.lanes_note({"lanes": 2, "n": 0, "N": 1}) is None
    assert driver.lanes_note({"lanes": 4, "n": 0, "N": 2}) is None   # a fragment runs one lane


def test_review_cases_of_the_new_checks(tmp_path):
    """A former section name is the section (seed_test is seed_heatmaps); run's keys are never the nearest setting;
    a damaged config.yaml names no stage (check_cache says it is damaged, and --overridecache replaces it); a YAML
    merge key is no key given twice."""
    from guidedlabelling import notes
    cfg, _ = resolve()
    assert notes.unread_settings("seed_heatmaps", cfg, ["seed_test.test_size=48", "guide.seedthres=30"]) == [
        "--set guide.seedthres: a setting of guide_labels, which seed_heatmaps does not read (it reads data, "
        "seed_train, seed_heatmaps, run), so it changes nothing here"]
    (tmp_path / "config.yaml").write_text("- broken\n")
    assert naming.made_by(tmp_path) is None
    preset = tmp_path / "p.yaml"
    preset.write_text("seed_train: &t {width: 0.125, max_iter: 3}\nsaliency_train: {<<: *t, max_iter: 4}\n")
    cfg, _ = C.resolve(str(preset))
    assert (cfg["saliency_train"]["width"], cfg["saliency_train"]["max_iter"]) == (0.125, 4)


def test_a_missing_upstream_folder_names_one_of_the_same_name_under_another_preset(tmp_path):
    """A stage command run without --config (demo) after a run of --config msrc: the folder it looks for is under
    demo/, and the one the run made under msrc/ is named as the way out."""
    from guidedlabelling.preflight import under_other_presets
    wanted = tmp_path / "demo" / "seed_heatmaps" / "images-a-1"
    made = tmp_path / "msrc" / "seed_heatmaps" / "images-a-1"
    made.mkdir(parents=True)
    assert under_other_presets(wanted) == ""   # not finished
    (made / "done.json").write_text("{}")
    (tmp_path / "smoke" / "seed_heatmaps" / "images-b-2").mkdir(parents=True)   # another name
    assert under_other_presets(wanted) == f"; a finished folder of that name is under --config msrc ({made})"
    bracketed = tmp_path / "msrc" / "seed_heatmaps" / "images-[a]-1"   # '[a]': no glob pattern (it matched 'a')
    bracketed.mkdir()
    (bracketed / "done.json").write_text("{}")
    assert under_other_presets(tmp_path / "demo" / "seed_heatmaps" / "images-a-1").endswith(f"({made})")
    assert under_other_presets(tmp_path / "demo" / "seed_heatmaps" / "images-[a]-1").endswith(f"({bracketed})")


def test_own_data_masks_name_only_the_folders_of_what_learns_from_them():
    """--masks names the folders of the fully supervised reference and of the oracle's guide labels (and what is
    made from them); the others record the masks they were scored with instead. VOC-layout data has no masks."""
    own = ["images=/x", "tags=/x/t.csv", "masks=/x/m"]
    cfg, preset = resolve(*own)
    for stage in ("seed_train", "seed_heatmaps", "saliency", "guide_labels", "seg_train", "segmentations"):
        assert "masks" not in naming.stage_name(cfg, preset, stage).replace("tags", "")
        assert naming.relevant(cfg, stage)["data"]["masks"] is None
        assert naming.scored_with(cfg, stage) == {"scored_with": "/x/m"}
    for sets in (["labels=gt"], ["guiderule=salor"]):
        cfg, preset = resolve(*own, *sets)
        for stage in ("seg_train", "segmentations") if sets == ["labels=gt"] else ("guide_labels", "seg_train"):
            assert "_masks-m-" in naming.stage_name(cfg, preset, stage), stage
            assert naming.relevant(cfg, stage)["data"]["masks"] == "/x/m" and naming.scored_with(cfg, stage) == {}
    cfg, _ = resolve()
    assert naming.scored_with(cfg, "guide_labels") == {}
    assert naming.other_masks({"scored_with": "/x/m"}, cfg) == "/x/m" and naming.other_masks({}, cfg) is False


def stage_folder(path, stage, *sets):
    """A folder whose config.yaml is that of `stage` made with the smoke preset and `sets`."""
    path.mkdir()
    (path / "config.yaml").write_text(yaml.safe_dump(naming.relevant(resolve(*sets)[0], stage)))
    return str(path)


def test_only_folders_given_by_a_flag_bring_their_settings(tmp_path):
    """A saliency folder given as --saliency_dir brings its settings; the same folder as the saliency_maps setting
    (a folder of maps, which the driver reads too) brings none: the driver's steps would name their folders
    otherwise than the steps after them look for them (a review)."""
    maps = stage_folder(tmp_path / "maps", "saliency", "saliency.test_size=24")
    cfg, notes = naming.with_given_folders("guide_labels", resolve()[0], {"saliency_dir": maps}, [])
    assert cfg["saliency"]["test_size"] == 24 and notes == [
        f"{maps}: its saliency outputs were made with saliency.test_size 24 (this command's: 64); this command uses "
        "those settings"]
    cfg, notes = naming.with_given_folders("guide_labels", resolve(f"saliency_maps={maps}")[0], {}, [])
    assert cfg == resolve(f"saliency_maps={maps}")[0] and notes == []


def test_a_given_model_brings_the_sections_its_labels_setting_reads(tmp_path):
    """A segmenter trained on guide labels (seedthres 30) given to a test whose settings train on the masks
    (labels gt): its labels were taken, and then none of its guide settings (a review)."""
    model = stage_folder(tmp_path / "model", "seg_train", "seedthres=30")
    cfg, _ = naming.with_given_folders("segmentations", resolve("labels=gt")[0], {"model_dir": model}, [])
    assert cfg["seg_train"]["labels"] == "guide" and cfg["guide_labels"]["seedthres"] == 30


def test_data_settings_written_otherwise_are_the_same_data(tmp_path):
    """Heatmaps of your own data (layout auto) given to a command that says layout own: the same data, not 'other
    data' (a review); another max_image_side is other data."""
    own = [f"images={tmp_path}", f"tags={tmp_path / 'tags.csv'}"]
    heatmaps = stage_folder(tmp_path / "heatmaps", "seed_heatmaps", *own)
    cfg, _ = naming.with_given_folders("guide_labels", resolve(*own, "layout=own")[0], {"seed_dir": heatmaps}, [])
    assert cfg["data"]["layout"] == "own"
    with pytest.raises(InputError, match="max_image_side 1024 there, 512 here"):
        naming.with_given_folders("guide_labels", resolve(*own, "max_image_side=512")[0], {"seed_dir": heatmaps}, [])
    for sets in (["builtin_size=96"], ["builtin=false"], ["datatype=Main"]):   # your own data does not read them
        naming.with_given_folders("guide_labels", resolve(*own, *sets)[0], {"seed_dir": heatmaps}, [])
    (tmp_path / "tags.csv").write_text("image,tags\na.jpg,cat\nb.jpg,dog\n")
    (tmp_path / "renamed.csv").write_text("image,tags\na.jpg,zebra\nb.jpg,dog\n")   # class order: dog, zebra
    (tmp_path / "moved.csv").write_text("image,tags\na.jpg,cat\nb.jpg,dog\n")
    naming.with_given_folders("guide_labels", resolve(f"images={tmp_path}", f"tags={tmp_path / 'moved.csv'}")[0],
                              {"seed_dir": heatmaps}, [])   # another CSV of the same classes
    with pytest.raises(InputError, match=r"the classes of tags \['cat', 'dog'\] there, \['dog', 'zebra'\] here"):
        naming.with_given_folders("guide_labels", resolve(f"images={tmp_path}", f"tags={tmp_path / 'renamed.csv'}")[0],
                                  {"seed_dir": heatmaps}, [])
    builtin = stage_folder(tmp_path / "builtin", "seed_heatmaps")   # the built-in data: its size says which
    with pytest.raises(InputError, match="builtin_size 64 there, 96 here"):
        naming.with_given_folders("guide_labels", resolve("builtin_size=96")[0], {"seed_dir": builtin}, [])


def test_a_setting_written_twice_in_a_preset_in_two_ways_is_an_error(tmp_path):
    """A probe's `seedthres: 30` beside `guide_labels: {seedthres: 40}` ran with 40 without a word (PyYAML's check
    of a key given twice sees one mapping at a time), and so did a section under its former name beside its own."""
    preset = tmp_path / "p.yaml"
    cases = {"seedthres: 30\nguide_labels: {seedthres: 40}\n":
             "setting guide_labels.seedthres is given twice, as seedthres and as seedthres under guide_labels",
             "guide: {seedthres: 30}\nguide_labels: {seedthres: 40}\n":
             "setting guide_labels.seedthres is given twice, as seedthres under guide and as seedthres under "
             "guide_labels",
             "seg_train: {max_iter: 3}\nseg_train.max_iter: 4\n":
             "setting seg_train.max_iter is given twice, as max_iter under seg_train and as seg_train.max_iter"}
    for text, said in cases.items():
        preset.write_text("builtin: true\n" + text)
        with pytest.raises(InputError) as e:
            C.resolve(str(preset))
        assert e.value.messages == (f"{preset}: {said}; keep one",)
    preset.write_text("builtin: true\nseedthres: 30\nguide_labels: {salthres: 40}\n")   # two settings: no error
    cfg = C.resolve(str(preset))[0]["guide_labels"]
    assert (cfg["seedthres"], cfg["salthres"]) == (30, 40)


@pytest.mark.parametrize("line, problem", [
    ("name:\n", "name None is not a folder name"),
    ("name: [a]\n", "name ['a'] is not a folder name"),
    ("name: true\n", "name True is not a folder name"),
    ('name: "x\\0y"\n', "name 'x\\x00y' is not a folder name"),
    ("name: " + "é" * 126 + "\n", "name '" + "é" * 20 + "'... is 252 bytes long (it names the run's folder under "
                                 "out_root); write a name of at most 250 bytes"),
    ("seedthres: {a: 1}\n", None),
    ("guide_labels: 3\n", "'guide_labels' is a section, not a setting; write its settings under it, "
                          "`guide_labels: {KEY: VALUE}` (-h lists them)"),
    ("seed_heatmaps: {extra_sizes: [321, 161]}\n", None), ("test_pcrf: off\n", None)])
def test_a_preset_value_of_the_wrong_shape_is_one_error_with_its_fix(tmp_path, line, problem):
    """A probe's `name:` left empty ran into <out_root>/None, `name: [a]` into <out_root>/['a'], one holding a NUL
    was a traceback and one of 252 bytes 'File name too long' on configs/<name>.yaml; a setting given a
    mapping was 'unknown section'; a section given a value said to write SECTION.KEY=VALUE, --set's form; a YAML list
    of a comma-separated setting was 'not one value (text)' without the fix, and so was `test_pcrf: off`, which YAML
    reads as false."""
    preset = tmp_path / "p.yaml"
    preset.write_text("builtin: true\n" + line)
    expected = {"seedthres: {a: 1}\n": "setting guide_labels.seedthres = {'a': 1} (" + str(preset) + "): not a whole "
                                       "number; write e.g. 20",
                "seed_heatmaps: {extra_sizes: [321, 161]}\n":
                "setting seed_heatmaps.extra_sizes = [321, 161] (" + str(preset) + "): not one value (text); write its "
                "items in one value, comma-separated: 321,161",
                "test_pcrf: off\n": "setting segmentations.test_pcrf = False (" + str(preset) + "): not one value "
                "(text); YAML reads yes/no, on/off and true/false unquoted as a switch: write the value in quotes"
                }.get(line, f"{preset}: {problem}")
    with pytest.raises(InputError) as e:
        C.resolve(str(preset))
    assert len(e.value.messages) == 1 and e.value.messages[0].startswith(expected), e.value.messages


@pytest.mark.parametrize("line, name", [("name: 2024-05-01\n", "2024-05-01"), ("name: 1.5\n", "1.5"),
                                        ("name: '007'\n", "007"), ("name: 7\n", "7")])
def test_a_name_yaml_reads_as_a_date_or_a_number_names_the_folder_as_written(tmp_path, line, name):
    """YAML reads `name: 2024-05-01` as a date and `name: 1.5` as a float: both named their folders as written
    before names were checked, and were then refused as 'not a folder name'."""
    preset = tmp_path / "p.yaml"
    preset.write_text("builtin: true\n" + line)
    assert C.resolve(str(preset))[0]["name"] == name


@pytest.mark.parametrize("lines, expected", [
    ("name: 007\ndataset: 010\nseedthres: 030\n", ("007", "010", 30, None)),
    ("name: 12:30\nholdout_scenes: 0755\n", ("12:30", "voc12train_aug", 20, "0755")),
    ("seedthres: 0x1e\n", "setting guide_labels.seedthres = '0x1e' ({preset}): not a whole number; write e.g. 20")])
def test_a_number_yaml_1_1_reads_otherwise_is_read_as_written(tmp_path, lines, expected):
    """YAML 1.1 reads 030 as octal 24, 0x1e as 30 and 12:30 as 750 (base 60): `seedthres: 030` was 24 where
    --set seedthres=030 is 30, `name: 007` named the folder 7 and `dataset: 010` read the split 8, without a word."""
    preset = tmp_path / "p.yaml"
    preset.write_text("builtin: true\n" + lines)
    if isinstance(expected, str):
        with pytest.raises(InputError) as e:
            C.resolve(str(preset))
        assert list(e.value.messages) == [expected.format(preset=preset)]
        return
    cfg = C.resolve(str(preset))[0]
    scenes = cfg["saliency_train"]["holdout_scenes"] or None
    assert (cfg["name"], cfg["data"]["dataset"], cfg["guide_labels"]["seedthres"], scenes) == expected


def test_a_section_whose_lines_are_all_commented_out_holds_no_settings(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("builtin: true\nname: 7\nseg_train:\n  # max_iter: 3\n")
    cfg = C.resolve(str(preset))[0]
    assert (cfg["name"], cfg["seg_train"]["max_iter"]) == ("7", 8000)


def test_a_users_preset_edited_since_its_run_is_told_to_take_a_name_of_its_own(tmp_path, command):
    """A probe's my.yaml, its max_iter edited after a run, was told '--overridecache to replace it' (the earlier run's
    folder) 'or choose another --out_root'; a `name:` line gives the edited file a run folder of its own, and every
    run folder's config.yaml fed back names <out_root>/config."""
    preset = tmp_path / "my.yaml"
    preset.write_text((C.CONFIGS / "smoke.yaml").read_text())
    sets = ("--config", preset, "--set", f"out_root={tmp_path / 'runs'}", "--set", "snapshot=4")
    assert command("seed_train", *sets)[0] == 0
    preset.write_text(preset.read_text().replace("max_iter: 4, stepsize: 2", "max_iter: 3, stepsize: 2", 1))
    code, out, err = command("seed_train", *sets)
    folder = tmp_path / "runs" / "my" / "seed_train" / "default"
    assert code == 2 and err.strip() == (
        f"error: {folder / 'config.yaml'}: this folder was made with other settings (seed_train.max_iter 4 there, 3 "
        f"here); rerun with --overridecache to replace it, or choose another --out_root, or add a line `name: my_2` "
        f"to {preset} (it names the run's folder under out_root)"), err
    preset.write_text(preset.read_text() + "name: my_2\n")
    assert command("seed_train", *sets)[0] == 0 and (tmp_path / "runs" / "my_2" / "seed_train" / "default").is_dir()
    from types import SimpleNamespace
    from guidedlabelling.runner import other_folder
    assert other_folder(SimpleNamespace(out_dir=None, config="smoke"), {"name": "smoke"}) == "--out_root"
    assert other_folder(SimpleNamespace(out_dir=tmp_path, config=str(preset)), {"name": "my_2"}) == "--out_dir"
    assert other_folder(SimpleNamespace(out_dir=None, config=str(preset)), {"name": "my_2"}) == (   # named: a second
        f"--out_root, or write `name: my_2_2` in place of its line `name: my_2` in {preset} (it names the run's folder "
        "under out_root)")   # `name:` line would be an error ('name' is given twice)


def test_seed_split_test_for_the_guide_labels_is_one_error_before_any_step(tmp_path, command):
    """A probe's `./script.py --set seed_split=test` (or a seed_eval folder's config.yaml fed back, which holds it)
    trained and tested seven steps, then stopped at guide_labels with 'train_0000.mat: missing; run
    ./src/seed/test.py for this dataset first': the guides' seeds were made for the test split."""
    out_root = tmp_path / "runs"
    said = ("error: setting seed_heatmaps.seed_split = 'test': guide_labels reads the seed heatmaps of split train, "
            "and it names those of split val (seed_eval's and cls_eval's input, which ./script.py makes for them "
            "itself); leave it train, its default")
    code, out, err = command("script", "--config", "smoke", "--set", f"out_root={out_root}", "--set",
                             "seed_split=test")
    assert (code, err.strip()) == (2, said) and not out_root.exists(), out
    code, out, err = command("guide_labels", "--config", "smoke", "--set", f"out_root={out_root}", "--seedthres",
                             "30", "--set", "seed_split=test")
    assert code == 2 and said in err.splitlines() and not out_root.exists(), err


def test_a_run_folders_config_yaml_fed_back_says_which_steps_it_holds_no_settings_of(tmp_path):
    """A probe fed a seed_eval folder's config.yaml back to ./script.py: its saliency training took the paper's
    settings (a VGG-16 network of 8000 iterations at 321 px: 9.6 days on the CPU) without a word before it began."""
    from types import SimpleNamespace
    from guidedlabelling.pipeline import STEPS
    folder = tmp_path / "seed_train" / "default"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(naming.relevant(resolve()[0], "seed_train"), sort_keys=False))
    (folder / "inputs.json").write_text("{}")
    args = SimpleNamespace(config=str(folder / "config.yaml"))
    steps = lambda *names: [s for s in STEPS if s[0] in names]   # noqa: E731
    assert driver.folder_config_note(args, [], steps("seed_train"), {}) is None
    assert driver.folder_config_note(args, [], steps("seed_train", "seed_heatmaps", "saliency_train", "saliency"),
                                     {"saliency": "saliency maps given"}) == (
        f"{folder / 'config.yaml'} is the config.yaml of a seed_train folder, with the settings of data, seed_train "
        "only: steps seed_heatmaps, saliency_train take the defaults (the paper's) of seed_heatmaps, saliency_train; "
        "to reproduce that folder give --steps of its own, or add those sections from the preset it was made with")
    (tmp_path / "my.yaml").write_text((folder / "config.yaml").read_text())   # a preset of the user's: no note
    assert driver.folder_config_note(SimpleNamespace(config=str(tmp_path / "my.yaml")), [], steps("saliency"), {}) \
        is None


def test_a_run_folders_config_yaml_whose_defaults_fail_a_check_says_why_they_are_the_defaults(tmp_path, monkeypatch):
    """A segmentations/labels-gt folder's config.yaml fed back to ./script.py stopped with 'VGG_ILSVRC_16_layers...:
    initial weights not found' alone: the note that the seed steps take the paper's defaults came after the checks."""
    from types import SimpleNamespace
    from guidedlabelling.pipeline import STEPS
    folder = tmp_path / "seed_train" / "default"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(naming.relevant(resolve()[0], "seed_train"), sort_keys=False))
    (folder / "inputs.json").write_text("{}")
    args = SimpleNamespace(config=str(folder / "config.yaml"))
    monkeypatch.setattr(driver, "check_inputs", lambda *a: (_ for _ in ()).throw(InputError("weights not found")))
    steps = [s for s in STEPS if s[0] in ("seed_train", "seed_heatmaps")]
    with pytest.raises(InputError) as e:
        driver.checked_inputs(args, [], steps, {})
    assert list(e.value.messages) == ["weights not found", driver.folder_config_note(args, [], steps, {})]
    with pytest.raises(InputError) as e:   # the steps of the folder's sections alone: no note
        driver.checked_inputs(args, [], steps[:1], {})
    assert list(e.value.messages) == ["weights not found"]


def test_an_empty_data_path_is_an_error_not_the_presets_data(tmp_path, command):
    """A probe's `./script.py --images "$PHOTOS" --tags "$CSV"`, both variables unset, trained on the preset's built-in
    data without a word (the flags were read as not given); `--saliency ""` trained the saliency network, `--masks
    ""` left the masks out, and an empty dataset_dir read data/VOCdevkit."""
    out_root = tmp_path / "runs"
    code, out, err = command("script", "--config", "smoke", "--steps", "seed_train", "--set", f"out_root={out_root}",
                             "--images", "", "--tags", "", "--masks", "", "--saliency", "", "--dataset_dir", "")
    assert code == 2 and not out_root.exists(), out
    assert err.splitlines() == [f"error: setting {key} = '' (command line): is empty; write {what}" for key, what in (
        ("data.dataset_dir", "a folder"), ("data.images", "a folder"), ("data.tags", "a CSV file"),
        ("data.masks", "a folder"), ("guide_labels.saliency_maps", "a folder of saliency maps"))]
    code, out, err = command("seed_train", "--config", "smoke", "--out_root", out_root, "--set", "pascalroot= ")
    assert (code, err.strip(), out_root.exists()) == (
        2, "error: setting data.pascalroot = '' (command line): is empty; write a folder", False), out


def test_the_releases_upstream_data_flags_are_not_told_to_set_the_runs_data():
    """generate.py's --s_dataset MSRA (the saliency network's training set) was told `--set dataset=MSRA`, the
    run's training split; --s_test_dataset voc12train_aug (the saliency maps' split) `--set test_dataset=...`, the
    segmenter's test split; and --g_test_datatype / --s_gtcls, which script.py passes, were a bare 'unrecognized
    arguments'. The seed's --g_dataset is the run's --dataset, as the hint says."""
    from guidedlabelling import runner
    with pytest.raises(InputError) as e:
        runner.parse("guide_labels", ["--s_dataset", "MSRA", "--s_test_dataset", "voc12train_aug",
                                      "--g_test_datatype", "Segmentation", "--g_dataset", "train"])
    assert e.value.messages == (
        "--g_dataset: not a flag of ./src/guide_generation/generate.py, but (the release's name of an upstream "
        "stage's setting) a setting of data; give it as --set dataset=train",
        "--s_dataset: a flag of the release with no use here (the saliency network's training set, MSRA, and its "
        "type, NP: here --set saliency_data=DIR, or the built-in saliency set); leave it out",
        "--s_test_dataset: a flag of the release with no use here (the split an upstream stage worked on: here it "
        "is the training split, --dataset); leave it out",
        "--g_test_datatype: a flag of the release with no use here (--datatype names the ImageSets folder of every "
        "split); leave it out")
    with pytest.raises(InputError) as e:
        runner.parse("seg_train", ["--s_gtcls", "use", "--s_s_datatype", "NP"])
    assert [m.split(":")[0] for m in e.value.messages] == ["--s_gtcls", "--s_s_datatype"]
