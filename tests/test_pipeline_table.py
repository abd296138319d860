"""The table of stages (guidedlabelling/pipeline.py) and what is derived from it, against the lists the
project wrote out by hand before the table existed."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from guidedlabelling import config as C
from guidedlabelling import settings as S
from guidedlabelling import pipeline

ROOT = Path(__file__).resolve().parents[1]
METHOD = ["seed_train", "seed_heatmaps", "saliency_train", "saliency", "guide_labels"]


def cfg(*sets):
    return C.resolve("smoke", sets)[0]


def test_sections_naming_each_stage():
    written_out = {  # the former config.UPSTREAM
        "seed_train": ["data", "seed_train"],
        "seed_heatmaps": ["data", "seed_train", "seed_heatmaps"],
        "seed_eval": ["data", "seed_train", "seed_heatmaps", "seed_eval"],
        "cls_eval": ["data", "seed_train", "seed_heatmaps", "cls_eval"],
        "saliency_train": ["saliency_train"],
        "saliency": ["data", "saliency_train", "saliency"],
        "guide_labels": ["data", "seed_train", "seed_heatmaps", "saliency_train", "saliency", "guide_labels"],
        "seg_train": ["data"] + METHOD + ["seg_train"],
        "segmentations": ["data"] + METHOD + ["seg_train", "segmentations"],
    }
    for stage, sections in written_out.items():
        assert pipeline.sections(stage, cfg()) == sections, stage
    assert pipeline.sections("segmentations", cfg("labels=gt")) == ["data", "seg_train", "segmentations"]
    own_maps = ["data", "seed_train", "seed_heatmaps", "guide_labels", "seg_train", "segmentations"]
    assert pipeline.sections("segmentations", cfg("saliency_maps=/maps")) == own_maps


def test_driver_steps_and_what_each_needs():
    assert [s[0] for s in pipeline.STEPS] == [
        "seed_train", "seed_heatmaps", "seed_eval_heatmaps", "seed_eval", "cls_eval", "saliency_train", "saliency",
        "guide_labels", "seg_train", "reference_train", "segmentations", "reference_segmentations"]
    needed = {  # the former tables.STEPS
        "guide_labels": METHOD,
        "segmentations": METHOD + ["seg_train", "segmentations"],
        "reference_segmentations": ["reference_train", "reference_segmentations"],
        "seed_eval": ["seed_train", "seed_eval_heatmaps", "seed_eval"],
        "cls_eval": ["seed_train", "seed_eval_heatmaps", "cls_eval"],
    }
    for step, steps in needed.items():
        assert pipeline.steps_needed(step, lambda sets: cfg(*sets)) == steps, step


def test_every_stage_module_declares_options_and_runs():
    for stage in pipeline.STAGES:
        module = __import__(f"guidedlabelling.stages.{stage.name}", fromlist=["run"])
        assert callable(module.run) and module.__doc__ and module.OPTIONS is S.OPTIONS[stage.name]
        assert all(len(v) == 2 and isinstance(v[1], str) for v in module.OPTIONS.values())
        assert not set(module.OPTIONS) & (set(S.SHARED["data"]) | set(S.SHARED["run"])), stage.name
        assert set(module.CHECKS) <= set(module.OPTIONS) and callable(module.reads), stage.name


@pytest.mark.parametrize("stage,own,folders", [("segmentations", 4, 1), ("guide_labels", 12, 2), ("seg_train", 25, 1),
                                               ("seed_train", 18, 0)])
def test_stage_help_lists_its_own_settings_plus_data_and_run(stage, own, folders):
    command = pipeline.BY_NAME[stage].command
    proc = subprocess.run([sys.executable, command, "-h"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0
    groups = proc.stdout.split("\n\n")
    own_group = next(g for g in groups if g.startswith(f"{stage} settings:"))
    assert own_group.count("\n  --") == own
    shared = len(S.SHARED["data"]) + len(S.SHARED["run"])
    assert proc.stdout.count("\n  --") == own + shared + 4 + folders  # + --config, --set, --debug, --out_dir
    assert "--set SECTION.KEY=VALUE" in proc.stdout


def test_python_m_runs_a_stage_by_its_name():
    proc = subprocess.run([sys.executable, "-m", "guidedlabelling", "guide_labels", "-h"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "guide_labels settings:" in proc.stdout
    assert proc.stdout.startswith("usage: python -m guidedlabelling guide_labels [-h]")
    proc = subprocess.run([sys.executable, "-m", "guidedlabelling", "guide_labels", "--nonsense"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.endswith("; see python -m guidedlabelling guide_labels -h\n")
    proc = subprocess.run([sys.executable, "-m", "guidedlabelling", "seed_eval", "--max_iter", "5"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--max_iter: not a flag of python -m guidedlabelling seed_eval, but" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "guidedlabelling", "nonsense"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown stage 'nonsense'; choose one of seed_train, "
                                                          "seed_heatmaps")
    proc = subprocess.run([sys.executable, "-m", "guidedlabelling", "reference_train"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith(
        "error: unknown stage 'reference_train' (reference_train is the driver's step of stage seg_train with --set "
        "labels=gt); ")


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_every_command_runs_with_sleeping_openmp_threads_unless_the_user_says(given, expected):
    """cli.run, which every command (script.py, the stage commands, predict, a lane) goes through, sets the policy
    before anything imports torch, whose OpenMP reads it once, as it loads."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env |= {"OMP_WAIT_POLICY": given} if given else {}
    code = "import sys; from guidedlabelling.cli import run; print('torch' in sys.modules, run('os', 'getenv', " \
           "'OMP_WAIT_POLICY'))"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.stdout.split() == ["False", expected], proc.stderr


WORKERS_ABOVE_CORES = "len(os.sched_getaffinity(0)) + 1"


@pytest.mark.parametrize("code, warned", [
    (f"import os, torch.utils.data as d; d.DataLoader([0, 1], num_workers={WORKERS_ABOVE_CORES})", True),
    ("import os; from guidedlabelling.cli import run; run('torch.utils.data', 'DataLoader', [0, 1], 1, False, None, "
     f"None, {WORKERS_ABOVE_CORES})", False)])
def test_commands_leave_the_worker_count_to_the_projects_note(code, warned):
    """torch warns, four lines at each loader, of DataLoader workers above the cores; every command (cli.run) leaves
    it to the note its run begins with (notes.machine_notes), once."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and ("This DataLoader will create" in proc.stderr) is warned, proc.stderr
