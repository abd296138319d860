"""--amp, --channels_last and cudnn_benchmark: bf16 stays close to float32, channels-last changes nothing but the
layout, cuDNN tunes CUDA trainings only; the rate a training records."""
import logging

import numpy as np
import pytest
import torch

from guidedlabelling import training
from guidedlabelling import transforms as T
from guidedlabelling.inference import forward_all, forward_sizes
from guidedlabelling.io import IGNORE, InputError
from guidedlabelling.model_setup import fc8_mults
from guidedlabelling.networks import DeepLabLargeFOV, GAPNet, init_from_scratch
from guidedlabelling.precision import autocast
from guidedlabelling.solver import Solver
from guidedlabelling.training import Rate, autotuned, segmentation_loss, train_loop

CPU = torch.device("cpu")
SIZE = 64


class Images:
    """Random 80x100 photos: all forward_all reads of a dataset (its length and images)."""

    def __init__(self, n):
        rng = np.random.default_rng(0)
        self.images = [rng.integers(0, 256, (80, 100, 3), dtype=np.uint8) for _ in range(n)]

    def __len__(self):
        return len(self.images)

    def image(self, i):
        return self.images[i]


def network(kind):
    torch.manual_seed(0)
    model = DeepLabLargeFOV(6, 0.125) if kind == "segmenter" else GAPNet("GAP-HighRes", 5, 0.125)
    init_from_scratch(model)
    return model.eval()


def reference_outputs(model, data):
    """float32, contiguous, image by image: computed without forward_all."""
    with torch.no_grad():
        outs = []
        for img in data.images:
            x, _, _ = T.fit_reflect(img, SIZE)
            out = model(torch.from_numpy(T.to_caffe_input(x))[None])
            outs.append(out[0] if isinstance(out, tuple) else out)
        return torch.cat(outs)


def batched_outputs(model, data, **options):
    outs = [out[0] if isinstance(out, tuple) else out
            for _, out, _ in forward_all(model, data, range(len(data.images)), SIZE, "fit", CPU, 2, **options)]
    assert all(o.dtype == torch.float32 for o in outs)
    return torch.stack(outs)


@pytest.mark.parametrize("stop", [None, 3])
def test_forward_sizes_gives_each_size_s_outputs_and_leaves_inference_mode_as_it_found_it(stop):
    """Every image at each size, as forward_all gives it at that size alone; after the loop, run to its end or left
    early, gradients are on again (each forward_all restores the mode it found, and the first ends first)."""
    model, data = network("seed network"), Images(5)
    alone = {size: list(forward_all(model, data, range(5), size, "fit", CPU, 2)) for size in (SIZE, 96)}
    got = []
    for outputs in forward_sizes(model, data, range(5), [SIZE, 96], "fit", CPU, 2):
        got.append(outputs)
        if len(got) == stop:
            break
    assert len(got) == (stop or 5)
    for k, outputs in enumerate(got):
        for (i, (scores, feat), geometry), (j, (scores1, feat1), geometry1) in zip(outputs, (alone[SIZE][k],
                                                                                               alone[96][k])):
            assert i == j == k and geometry == geometry1
            assert torch.equal(scores, scores1) and torch.equal(feat, feat1)
    small, large = (feat for _, (_, feat), _ in got[0])
    assert large.shape[-1] > small.shape[-1]
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()


@pytest.mark.parametrize("kind", ["segmenter", "seed network"])
def test_bf16_inference_is_close_to_float32(kind):
    """bf16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%); rounding the inputs of ~16 layers
    whose products are still summed in float32 gives about 1% relative error (measured 0.6-0.8%); 3%
    bounds it. The error must not be 0: the network did run in bf16."""
    model, data = network(kind), Images(4)
    ref = reference_outputs(model, data)
    error = ((batched_outputs(model, data, amp="bf16") - ref).norm() / ref.norm()).item()
    assert 1e-4 < error < 3e-2


@pytest.mark.parametrize("kind", ["segmenter", "seed network"])
def test_channels_last_gives_the_contiguous_outputs(kind):
    """Same arithmetic in another memory order: equal up to float32 summation order, 1e-5 of the scale."""
    model, data = network(kind), Images(4)
    ref = reference_outputs(model, data)
    out = batched_outputs(model, data, channels_last=True)
    assert (out - ref).abs().max().item() <= 1e-5 * ref.abs().max().item()


class FixedSamples(torch.utils.data.Dataset):
    """Four images with a learnable label (foreground where the red channel is bright), repeated."""

    def __init__(self, out_size):
        rng = np.random.default_rng(1)
        self.samples = []
        for _ in range(4):
            img = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
            rows = np.arange(out_size) * SIZE // out_size
            label = (img[rows][:, rows, 0] > 127).astype(np.int64)
            label[0] = IGNORE
            self.samples.append((T.to_caffe_input(img), label))

    def __len__(self):
        return 10 ** 6

    def __getitem__(self, k):
        return self.samples[k % 4]


def train_start():
    torch.manual_seed(0)
    model = DeepLabLargeFOV(2, 0.0625)
    init_from_scratch(model)
    return model


def train(tmp_path, name, amp="none", channels_last=False, iterations=6):
    model = train_start()
    solver = Solver(0.01, iterations, 1000, 4, 0, 1000, clip_gradients=5)
    run = {"workers": 0, "amp": amp, "channels_last": channels_last, "cudnn_benchmark": True}
    (tmp_path / name).mkdir()
    losses, _ = train_loop(model, FixedSamples(model.output_size(SIZE)), segmentation_loss, solver, fc8_mults(10),
                           tmp_path / name, logging.getLogger("test_amp"), CPU, run)
    return [loss for _, loss in losses], model


def test_bf16_training_learns_like_float32(tmp_path):
    """Same start, so the first losses agree to bf16's ~1%; from-scratch SGD then drifts apart, but
    both must learn the task."""
    fp32, _ = train(tmp_path, "fp32")
    bf16, _ = train(tmp_path, "bf16", amp="bf16")
    assert np.isfinite(bf16).all()
    assert bf16[0] == pytest.approx(fp32[0], rel=1e-2)
    assert bf16[-1] < 0.8 * bf16[0] and fp32[-1] < 0.8 * fp32[0]


def test_channels_last_training_gives_the_contiguous_parameters(tmp_path):
    """One step: the kernels of the two layouts round differently, and this from-scratch training multiplies
    such differences ~100x per step (1 thread: 1.5e-8, 1.2e-4, 4.3e-3 after steps 1, 2, 3; 2 threads less)."""
    _, contiguous = train(tmp_path, "contiguous", iterations=1)
    _, nhwc = train(tmp_path, "nhwc", channels_last=True, iterations=1)
    start = train_start()
    for (name, a), b, s in zip(contiguous.state_dict().items(), nhwc.state_dict().values(),
                               start.state_dict().values()):
        assert (a - b).abs().max().item() <= 1e-6, name
    assert any(not torch.equal(a, s) for a, s in zip(contiguous.state_dict().values(), start.state_dict().values()))


def test_unknown_amp_is_a_one_line_error():
    with pytest.raises(InputError, match="--amp fp8: choose none, bf16 or fp16"):
        autocast(CPU, "fp8")


def test_the_rate_counts_the_iterations_after_the_first(monkeypatch):
    """The first iteration holds the start-up, so it only starts the clock: 3 iterations in 4.5 s."""
    clock = Rate()
    ticks = iter([10.0, 12.0, 13.0, 14.5])
    monkeypatch.setattr(training.time, "perf_counter", lambda: next(ticks))
    clock.tick()
    assert clock.per_second() is None  # one iteration: no rate
    for _ in range(3):
        clock.tick()
    assert clock.per_second() == pytest.approx(3 / 4.5)


def test_cudnn_tunes_cuda_trainings_only_and_the_flag_is_restored():
    before = torch.backends.cudnn.benchmark
    with autotuned(torch.device("cuda"), True):
        assert torch.backends.cudnn.benchmark is True
    assert torch.backends.cudnn.benchmark is before
    for device, asked in ((torch.device("cpu"), True), (torch.device("cuda"), False)):
        with autotuned(device, asked):
            assert torch.backends.cudnn.benchmark is False
    with pytest.raises(KeyError), autotuned(torch.device("cuda"), True):
        raise KeyError("a training that fails")
    assert torch.backends.cudnn.benchmark is before


def test_an_fp16_training_stopped_at_a_snapshot_resumes_as_if_never_stopped(tmp_path):
    """fp16's loss scale (which the first steps' overflows halve) is in the snapshot: 3 + 3 iterations give the
    parameters of 6 in one go."""
    def run(name, iterations, amp="fp16"):
        model = train_start()
        solver = Solver(0.01, iterations, 1000, 4, 0, 3, clip_gradients=5)
        run = {"workers": 0, "amp": amp, "channels_last": False, "cudnn_benchmark": True}
        (tmp_path / name).mkdir(exist_ok=True)
        train_loop(model, FixedSamples(model.output_size(SIZE)), segmentation_loss, solver, fc8_mults(10),
                   tmp_path / name, logging.getLogger("test_amp"), CPU, run)
        return model
    whole = run("whole", 6)
    run("stopped", 3)
    state = torch.load(tmp_path / "stopped" / "snapshot_iter_3.pth", weights_only=True)
    assert state["meta"]["amp"] == "fp16" and state["meta"]["grad_scaler"]["scale"] < 65536.0  # overflows happened
    resumed = run("stopped", 6)
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
