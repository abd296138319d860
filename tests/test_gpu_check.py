"""benchmarks/gpu_check.py, the one command for a lent GPU, runs every path on the CPU (--device cpu --quick)."""
import gpu_check


def test_gpu_check_runs_on_cpu_and_reports_every_figure(capsys):
    report = gpu_check.main(["--device", "cpu", "--quick"])
    assert '"one_training_step_vs_cpu"' in capsys.readouterr().out
    assert set(report["networks"]) == {"GAP-HighRes", "DeepLab-LargeFOV"}
    for figures in report["networks"].values():
        assert figures["GFLOP_per_image_forward"] > 0
        for key in ("train_images_per_s_float32", "train_images_per_s_bf16", "inference_images_per_s_float32",
                    "train_images_per_s_bf16_channels_last", "train_images_per_s_bf16_channels_last_tuned",
                    "train_percent_of_peak_float32", "train_percent_of_peak_bf16",
                    "train_percent_of_peak_bf16_channels_last_tuned"):
            assert figures[key] > 0, key
    assert report["one_training_step_vs_cpu"] == {"max_abs_diff": 0.0, "relative_l2": 0.0}   # the CPU twice
    assert report["crf"]["label_agreement_with_cpu"] == 1.0 and report["crf"]["seconds_per_image"] > 0


def test_a_network_that_cannot_be_built_is_reported_and_the_rest_still_measured(monkeypatch):
    measured = gpu_check.network_figures

    def without_weights(kind, name, *rest):
        if name == "GAP-HighRes":
            raise ImportError("no weights package")
        return measured(kind, name, *rest)
    monkeypatch.setattr(gpu_check, "network_figures", without_weights)
    report = gpu_check.main(["--device", "cpu", "--quick"])
    assert report["networks"]["GAP-HighRes"] == {"error": "ImportError: no weights package"}
    assert report["networks"]["DeepLab-LargeFOV"]["train_images_per_s_float32"] > 0
    assert report["float32_in_tf32"] is False and report["crf"]["label_agreement_with_cpu"] == 1.0
