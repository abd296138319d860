"""benchmarks/gpu_run.py, the whole lent-GPU run, and the random VOC-size data it times the trainings on."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import crf_cases
import gpu_run
from guidedlabelling.datasets import VOCDataset
from guidedlabelling.provenance import git_state
from random_voc import write_random_voc


def test_training_figures_project_the_papers_iterations_at_the_recorded_rate(tmp_path):
    (tmp_path / "done.json").write_text('{"iterations": 300, "iterations_per_s": 20.0}')
    assert gpu_run.training_figures(tmp_path, 8000) == {"iterations": 300, "iterations_per_s": 20.0,
                                                        "paper_iterations": 8000, "projected_minutes": 8000 / 20 / 60}
    (tmp_path / "done.json").write_text('{"iterations": 1, "iterations_per_s": null}')  # too short to time
    assert gpu_run.training_figures(tmp_path, 8000)["projected_minutes"] is None


def test_printed_json_is_the_last_indented_object_or_says_why_not():
    report = json.dumps({"a": {"b": 1}}, indent=2)
    assert gpu_run.printed_json("UserWarning: {x} is deprecated\n" + report + "\nlater text {") == {"a": {"b": 1}}
    assert "no JSON object" in gpu_run.printed_json("Traceback ...\nImportError: no module")["error"]
    assert "no JSON object" in gpu_run.printed_json("{\n  \"a\": 1\n")["error"]   # cut short


def test_a_figure_that_cannot_be_read_is_recorded_and_the_run_goes_on(tmp_path):
    run = gpu_run.Runner(tmp_path, 10, [])
    run.record("demo_bf16", gpu_run.demo_figures, tmp_path / "nothing", "demo")
    assert run.summary["demo_bf16"]["error"].startswith("FileNotFoundError")
    assert json.loads((tmp_path / "summary.json").read_text()) == run.summary


@pytest.mark.parametrize("handler,code", [("signal.SIG_DFL", -15), ("signal.SIG_IGN", -9)])
def test_stop_terminates_then_kills(handler, code):
    child = subprocess.Popen([sys.executable, "-c", f"import signal, time; signal.signal(signal.SIGTERM, {handler}); "
                              "print(flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    child.stdout.readline()  # its handler is set
    gpu_run.stop(child, grace=1)
    assert child.returncode == code


def test_git_state_outside_a_checkout_is_unknown(tmp_path):
    assert git_state(tmp_path) == (None, None)


def test_random_voc_is_a_voc_layout_of_voc_size_photos(tmp_path):
    ids = write_random_voc(tmp_path, 6)
    data = VOCDataset(tmp_path, "train_aug")
    assert data.ids == ids
    for i in range(len(data)):
        with Image.open(tmp_path / "JPEGImages" / f"{ids[i]}.jpg") as photo:
            assert photo.size in {(500, 375), (375, 500)}
        assert (tmp_path / "JPEGImages" / f"{ids[i]}.jpg").stat().st_size > 40_000   # textured, as photos are
        values = set(np.unique(data.label(i)))
        assert {0, 255} < values and values <= set(range(21)) | {255}
        assert 1 <= len(data.image_classes(i)) <= 3


def test_gpu_run_quick_runs_its_steps_on_the_cpu(tmp_path):
    """One demo and one training of each network, between them every flag of the variants (gpu_check --quick has
    a test of its own; the other steps are the same commands with another amp or layout)."""
    steps = ["demo_bf16", "random_voc", "voc12_seed_train_untuned", "voc12_seg_train_channels_last_fp16", "cuda_tests"]
    summary = gpu_run.main([str(tmp_path), "--quick", "--steps", ",".join(steps)])
    assert list(summary["steps"]) == ["cuda_tests", "random_voc", "voc12_seed_train_untuned",
                                      "voc12_seg_train_channels_last_fp16", "demo_bf16"]
    assert all(step["rc"] == 0 for step in summary["steps"].values()), summary["steps"]
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert 0 < summary["demo_bf16"]["segmenter_mIoU_val"] <= 100 and "seg_train" in summary["demo_bf16"]["step_seconds"]
    seed, seg = (summary["steps"][name]["command"] for name in steps[2:4])
    assert "--no_cudnn_benchmark" in seed and "--amp bf16" in seed and "--channels_last" not in seed
    assert "--no_cudnn_benchmark" not in seg and "--amp fp16" in seg and "--channels_last" in seg
    for name in steps[2:4]:
        assert (tmp_path / name / "model.pth").exists() and summary[name]["iterations"] == 6   # done.json's
        assert summary[name]["paper_iterations"] == 8000 and summary[name]["projected_minutes"] > 0
    expected = "1 passed" if torch.cuda.is_available() and crf_cases.MSRC.exists() else "1 skipped"
    assert expected in summary["cuda_tests"]
    assert summary["provenance"]["loader_workers"] == 2 and summary["provenance"]["cores"] >= 1


def test_gpu_run_reruns_a_step_from_an_empty_folder(tmp_path):
    (tmp_path / "random_voc" / "JPEGImages").mkdir(parents=True)
    (tmp_path / "random_voc" / "JPEGImages" / "old.jpg").write_bytes(b"stale")
    summary = gpu_run.main([str(tmp_path), "--quick", "--steps", "random_voc"])
    assert summary["steps"]["random_voc"]["rc"] == 0
    assert not (tmp_path / "random_voc" / "JPEGImages" / "old.jpg").exists()


def test_a_training_without_its_whole_data_is_skipped_with_the_reason(tmp_path):
    (tmp_path / "random_voc" / "ImageSets" / "Segmentation").mkdir(parents=True)  # a random_voc cut short
    summary = gpu_run.main([str(tmp_path), "--quick", "--steps", "voc12_seg_train"])
    listed = tmp_path / "random_voc" / "ImageSets" / "Segmentation" / "train_aug.txt"
    assert summary["steps"]["voc12_seg_train"]["rc"] == f"skipped: {listed} is missing"


def test_gpu_run_names_an_unknown_step(capsys):
    with pytest.raises(SystemExit):
        gpu_run.main(["out", "--steps", "gpu_check,demo"])
    assert "--steps demo: not a step" in capsys.readouterr().err


def test_git_state_says_whether_the_checkout_has_changes(tmp_path, monkeypatch):
    """summary.json's 'made': the commit of the checkout (as git log names it) and whether files changed since;
    without git, nothing."""
    from guidedlabelling import provenance
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    (tmp_path / "a.txt").write_text("a\n")
    subprocess.run(git + ["add", "a.txt"], check=True)
    subprocess.run(git + ["commit", "-qm", "a"], check=True)
    head = subprocess.run(git + ["log", "-1", "--format=%h"], capture_output=True, text=True, check=True).stdout.strip()
    assert provenance.git_state(tmp_path) == (head, False)
    (tmp_path / "a.txt").write_text("b\n")
    assert provenance.git_state(tmp_path) == (head, True)
    monkeypatch.setattr(provenance.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(FileNotFoundError("git")))
    assert provenance.git_state(tmp_path) == (None, None)
