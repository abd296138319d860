"""What the version before the stages were named for their folders (41e8e02 and older) wrote and accepted still
works: its stage, step and section names in presets, --set, --steps and `python -m guidedlabelling STAGE`, and its
run folders, which are found and reused, not made again."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT, TINY_PRESET, named_by_masks, own_args, retag_mask, stage_folders
from guidedlabelling import config as C
from guidedlabelling import driver

# that version's names of the stages that have new ones (its pipeline.py), and the folder it called otherwise
OLD_STAGE = {"seed_heatmaps": "seed_test", "saliency": "saliency_test", "guide_labels": "guide",
             "segmentations": "seg_test"}
OLD_FOLDER = {"segmentations": "seg_test"}
ORDER = ("seed_train", "seed_heatmaps", "seed_eval", "cls_eval", "saliency_train", "saliency", "guide_labels",
         "seg_train", "segmentations")


def old_fingerprint(manifest):
    """That version's fingerprint.fingerprint: the hash of a manifest's sorted items."""
    return hashlib.sha256(json.dumps(sorted(manifest.items())).encode()).hexdigest()[:32]


def as_older_version(run):
    """Rewrite a run's stage folders as that version wrote them: config.yaml's sections and inputs.json's upstream
    stages under the old names, every fingerprint of the old manifests (an upstream output's as that version's
    done.json records it), segmentations/ as seg_test/."""
    for stage in ORDER:
        for folder in stage_folders(run / stage) if (run / stage).is_dir() else ():
            cfg = yaml.safe_load((folder / "config.yaml").read_text())
            (folder / "config.yaml").write_text(yaml.safe_dump({OLD_STAGE.get(s, s): v for s, v in cfg.items()}))
            record = json.loads((folder / "inputs.json").read_text())
            inputs = {}
            for key, digest in record["inputs"].items():
                if key.startswith("upstream "):
                    parent = key.removeprefix("upstream ")
                    done = json.loads((Path(record["upstream"][parent]) / "done.json").read_text())
                    key, digest = f"upstream {OLD_STAGE.get(parent, parent)}", done["output_fingerprint"]
                inputs[key] = digest
            record = {"fingerprint": old_fingerprint(inputs), "inputs": inputs,
                      "upstream": {OLD_STAGE.get(s, s): p for s, p in record["upstream"].items()}}
            (folder / "inputs.json").write_text(json.dumps(record))
            done = json.loads((folder / "done.json").read_text())
            del done["outputs_digest"], done["output_digests"]   # newer than the renames
            done["fingerprint"] = record["fingerprint"]
            done["output_fingerprint"] = old_fingerprint({k: v for k, v in inputs.items()
                                                          if not k.startswith("evaluated ")})
            (folder / "done.json").write_text(json.dumps(done))
        if stage in OLD_FOLDER:
            (run / stage).rename(run / OLD_FOLDER[stage])


def test_the_old_names_set_what_the_new_ones_set(tmp_path):
    old = {o: n for n, o in OLD_STAGE.items()}
    preset = TINY_PRESET.replace("saliency:", "saliency_test:").replace("segmentations:", "seg_test:")
    (tmp_path / "old.yaml").write_text(preset.replace("name: tiny", "name: old"))
    (tmp_path / "new.yaml").write_text(TINY_PRESET.replace("name: tiny", "name: old"))
    sets = {"seed_heatmaps": "test_size=40", "saliency": "test_size=33", "guide_labels": "dropped=seeds",
            "segmentations": "test_size=35"}
    by_old = C.resolve(str(tmp_path / "old.yaml"), [f"{o}.{sets[n]}" for o, n in old.items()])
    by_new = C.resolve(str(tmp_path / "new.yaml"), [f"{n}.{sets[n]}" for n in old.values()])
    assert by_old == by_new and by_new[0]["guide_labels"]["dropped"] == "seeds"
    assert by_new[0]["saliency"]["test_size"] == 33 and by_new[1]["saliency"]["test_size"] == 32


def test_old_step_and_stage_names_run_the_renamed_ones():
    args = driver.parse(["--steps", "seed_test,guide,seg_test,reference_test"])
    steps, _ = driver.planned_steps(args, [])
    assert [s[0] for s in steps] == ["seed_heatmaps", "guide_labels", "segmentations", "reference_segmentations"]
    proc = subprocess.run([sys.executable, "-m", "guidedlabelling", "guide", "-h"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0 and "guide_labels settings:" in proc.stdout


def test_a_run_of_the_older_version_is_found_and_reused(own, command):
    code, out, err = command("script", *own_args(own))
    assert code == 0, out + err
    run = own["out_root"] / "tiny"
    made = {p: p.stat().st_mtime_ns for p in run.glob("*/*/*.png")}
    figures = {k: v for k, v in json.loads((run / "summary.json").read_text()).items() if "mIoU" in k}
    as_older_version(run)
    assert (run / "seg_test").is_dir() and not (run / "segmentations").exists()
    code, again, err = command("script", *own_args(own))
    assert code == 0, again + err
    assert again.count("up to date in") == len(driver.STEPS), again
    assert f"up to date in {run / 'seg_test'}/" in again and not (run / "segmentations").exists()
    moved = {Path(str(p).replace("/segmentations/", "/seg_test/")): t for p, t in made.items()}
    assert {p: p.stat().st_mtime_ns for p in run.glob("*/*/*.png")} == moved   # nothing written again
    assert figures and {k: v for k, v in json.loads((run / "summary.json").read_text()).items()
                        if "mIoU" in k} == figures


def test_an_old_run_with_an_edited_input_names_the_input_not_the_renames(own, command):
    code, out, err = command("script", *own_args(own))
    assert code == 0, out + err
    as_older_version(own["out_root"] / "tiny")
    text = own["tags"].read_text()
    own["tags"].write_text(text.replace("a.jpg,cat", "a.jpg,dog"))
    retag_mask(own, "a", 2)
    code, again, err = command("script", *own_args(own))
    assert code == 0, again + err
    assert f"{own['tags']} changed since it was made; recomputing it" in again
    assert "seed_train's output changed since it was made; recomputing it" in again   # seed_heatmaps
    assert not any(f"{name}'s output" in again for name in OLD_STAGE.values()), again


def test_a_new_segmentations_folder_names_the_nearest_in_the_old_seg_test(own, command):
    """Another seedthres after an older version's run: the segmentation test's new folder (under segmentations/)
    says why, naming the finished one in seg_test/ (it named none: it looked in segmentations/ alone)."""
    code, out, err = command("script", *own_args(own))
    assert code == 0, out + err
    run = own["out_root"] / "tiny"
    as_older_version(run)
    guided, = [p for p in stage_folders(run / "seg_test") if "labels-gt" not in p.name]
    code, again, err = command("script", *own_args(own), "--set", "seedthres=25")
    assert code == 0, again + err
    assert f"a new folder for these settings: the nearest finished one, {guided}, was made with other values of " \
           "seedthres (seedthres 20 there, 25 here)" in again, again


def test_an_old_seg_test_folder_named_by_masks_is_found_and_reused(own, command):
    """That version also named every folder of your own data by --masks (as versions up to eda7e05 did): its
    seg_test/ folder of the guided segmenter, only scored with the masks, is reused, not tested again into a new
    folder under segmentations/."""
    from guidedlabelling import pipeline
    code, out, err = command("script", *own_args(own))
    assert code == 0, out + err
    run = own["out_root"] / "tiny"
    as_older_version(run)
    guided, = [p for p in stage_folders(run / "seg_test") if "labels-gt" not in p.name]
    old = named_by_masks(guided, own, "segmentations", pipeline.FORMER_OF)
    code, again, err = command("script", *own_args(own))
    assert code == 0, again + err
    assert f"segmentations: up to date in {old} " in again and not (run / "segmentations").exists(), again
    assert again.count("up to date in") == len(driver.STEPS), again


def test_an_old_folder_made_again_leaves_the_stages_below_it_up_to_date(own, command):
    """A damaged output of an older version's guide labels is made again; the segmenter that read the same labels
    is not retrained (the fingerprints do not depend on the version that wrote the manifests)."""
    code, out, err = command("script", *own_args(own))
    assert code == 0, out + err
    run = own["out_root"] / "tiny"
    as_older_version(run)
    next(run.glob("guide_labels/*/a.png")).unlink()
    code, again, err = command("script", *own_args(own))
    assert code == 0, again + err
    assert "its output a.png is missing; recomputing it" in again
    assert again.count("recomputing it") == 1 and again.count("up to date in") == len(driver.STEPS) - 1, again
