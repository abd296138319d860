"""The table, summary.json and report.html show only current results: after some --steps ran an earlier step
again, the later steps' folders made from its former outputs are out of date until rerun; and a finished run whose
folder cannot be written still ends with its table."""
import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import ROOT, own_args, stage_folders
from guidedlabelling import driver


def script(own, *extra):
    proc = subprocess.run([sys.executable, str(ROOT / "script.py"), *own_args(own), *extra], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def test_results_made_before_an_earlier_step_ran_again_are_not_shown(own):
    assert "\nstage " in script(own)   # the whole run: a table
    summary = own["out_root"] / "tiny" / "summary.json"
    before = summary.read_bytes()
    train = own["images"] / "b.png"   # a training image (conftest.ROWS), changed
    pixels = np.asarray(Image.open(train).convert("RGB")).copy()
    Image.fromarray(255 - pixels).save(train)
    out = script(own, "--steps", "seed_train,seed_heatmaps")
    runs = own["out_root"] / "tiny"
    seeds, (ref, guided) = stage_folders(runs / "seed_heatmaps")[1], stage_folders(runs / "seg_train")
    assert "seed_split-test" in seeds.name and "labels-gt" in ref.name and "labels-gt" not in guided.name
    # the steps not run whose inputs (b.png, an output made again) changed, the reference too: it learnt from b.png
    assert "\nstage " not in out and f"summary: out of date: seed_eval, the seed_heatmaps output it reads, {seeds}, " \
        f"is itself out of date; saliency, {train} changed since it was made; guide_labels, {train}, " \
        "seed_heatmaps's output changed since it was made; segmentations, the seg_train output it reads, " \
        f"{guided}, is itself out of date; reference_segmentations, the seg_train output it reads, {ref}, is itself " \
        "out of date; run all steps for the table" in out, out
    assert "report: not written until every step is up to date (an earlier run's report.html and summary.json stay)" \
        in out and summary.read_bytes() == before   # every step has results: it said 'until every step has results'
    out = script(own)   # all steps: current again
    assert "\nstage " in out and "out of date" not in out


def test_a_summary_that_cannot_be_written_is_a_warning(tmp_path):
    (tmp_path / "file").write_text("")
    line = driver.saved_summary(tmp_path / "file" / "summary.json", {"a": 1})
    assert line.startswith(f"warning: summary.json not written: {tmp_path / 'file'}: ")
    assert driver.saved_summary(tmp_path / "summary.json", {"a": 1}) == f"summary: {tmp_path / 'summary.json'}"
