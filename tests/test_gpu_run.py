"""benchmarks/gpu_run.py, the whole lent-GPU run, and the random VOC-size data it times the trainings on."""
import json

import numpy as np
import pytest
from PIL import Image

import gpu_run
from guidedlabelling.datasets import VOCDataset
from random_voc import write_random_voc


def test_iteration_rate_skips_the_first_logged_iteration_and_crosses_midnight():
    log = ("23:59:50 init: from scratch\n23:59:50 iter 1/300  loss 1\n23:59:58 iter 15/300  loss 1\n"
           "23:59:59 iter 30/300  loss 1\n00:00:08 iter 300/300  loss 1\n")
    assert gpu_run.iteration_rate(log) == pytest.approx((300 - 15) / 10)
    assert gpu_run.iteration_rate("00:00:01 iter 1/2  loss 1\n00:00:02 iter 2/2  loss 1\n") is None  # too few


def test_random_voc_is_a_voc_layout_of_voc_size_photos(tmp_path):
    ids = write_random_voc(tmp_path, 6)
    data = VOCDataset(tmp_path, "train_aug")
    assert data.ids == ids
    for i in range(len(data)):
        assert Image.open(tmp_path / "JPEGImages" / f"{ids[i]}.jpg").size in {(500, 375), (375, 500)}
        values = set(np.unique(data.label(i)))
        assert {0, 255} < values and values <= set(range(21)) | {255}
        assert 1 <= len(data.image_classes(i)) <= 3


def test_gpu_run_quick_runs_every_step_on_the_cpu(tmp_path):
    summary = gpu_run.main([str(tmp_path), "--quick"])
    assert set(summary["steps"]) == set(gpu_run.STEPS)
    assert all(step["rc"] == 0 for step in summary["steps"].values()), summary["steps"]
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert summary["gpu_check"]["one_training_step_vs_cpu"]["max_abs_diff"] == 0.0   # the CPU twice
    for name in ("demo_float32", "demo_bf16"):
        assert 0 < summary[name]["segmenter_mIoU_val"] <= 100 and "seg_train" in summary[name]["step_seconds"]
    assert "--channels_last" in summary["steps"]["voc12_seg_train_channels_last"]["command"]
    for name in ("voc12_seed_train", "voc12_seed_train_channels_last", "voc12_seg_train_channels_last"):
        assert (tmp_path / name / "model.pth").exists() and summary[name]["iterations"] == 6


def test_gpu_run_names_an_unknown_step(capsys):
    with pytest.raises(SystemExit):
        gpu_run.main(["out", "--steps", "gpu_check,demo"])
    assert "--steps demo: not a step" in capsys.readouterr().err
