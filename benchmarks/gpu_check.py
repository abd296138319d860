#!/usr/bin/env python3
"""One command for a lent GPU: prints one JSON object with
- the device and its measured dense matrix-multiply peak (float32, in TF32 where cuDNN's convolutions are, and bf16),
- training images/s of every network at the paper's batch and size (15 x 321), float32 and bf16 autocast,
  with the % of that peak the nominal FLOPs reach (a training step counted as 3 forward passes); bf16 also in the
  channels-last layout, without and with cuDNN's tuning (the trainings' cudnn_benchmark),
- inference images/s,
- the torch dense CRF per 500x375 image (21 labels, 10 iterations),
- equality checks between the device and the CPU: one training step (the Caffe solver, from the same weights
  and batch) and the CRF (labels and marginals).

    python benchmarks/gpu_check.py                       # on CUDA; 30 s on one H200 before the channels-last ones
    python benchmarks/gpu_check.py --device cpu --quick  # every path, small, on the CPU (a test runs this)
"""
import argparse
import json
import re
import time

import numpy as np
import torch

from bench import conv_flops
from guidedlabelling import crf
from guidedlabelling.checks import argument
from guidedlabelling.cli import run
from guidedlabelling.errors import InputError, Parser, counted
from guidedlabelling.networks import NETWORKS, build_seed_net, build_seg_net
from guidedlabelling.solver import CaffeSGD, param_groups
from guidedlabelling.model_setup import fc8_mults
from guidedlabelling.training import autotuned


def synchronise(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeat):
    """Seconds per call: one warm-up call, then the mean of `repeat`."""
    fn()
    synchronise(device)
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    synchronise(device)
    return (time.perf_counter() - start) / repeat


def matmul_peak(device, dtype, n, repeat):
    """FLOP/s of an n x n matrix product; float32 at the precision convolutions get, TF32 where cuDNN allows
    it (torch's default on CUDA), so that the networks' float32 % of peak compares like with like."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    if device.type != "cuda":
        return 2 * n ** 3 / timed(lambda: a @ b, device, repeat)
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32
    try:
        return 2 * n ** 3 / timed(lambda: a @ b, device, repeat)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def network(kind, name, width):
    return build_seed_net(name, 20, width) if kind == "seed" else build_seg_net(name, 21, width)


def loss_of(kind, model, x):
    out = model(x)
    return out[0].sum() if kind == "seed" else out.sum()


def training_step(kind, model, x, amp_dtype, device):
    """One forward/backward/Caffe-SGD step, under autocast to amp_dtype when given."""
    sgd = CaffeSGD(param_groups(model, fc8_mults(10)), lr=1e-4)

    def step():
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = loss_of(kind, model, x)
        sgd.zero_grad(set_to_none=True)
        loss.backward()
        sgd.step()
    return step


TRAINING_VARIANTS = (  # label, autocast dtype, memory layout, cuDNN's tuning
    ("float32", None, torch.contiguous_format, False), ("bf16", torch.bfloat16, torch.contiguous_format, False),
    ("bf16_channels_last", torch.bfloat16, torch.channels_last, False),
    ("bf16_channels_last_tuned", torch.bfloat16, torch.channels_last, True))


def network_figures(kind, name, args, device, peaks):
    """Training (TRAINING_VARIANTS) and inference images/s of one network, with the % of the measured peak."""
    torch.manual_seed(0)
    model = network(kind, name, args.width).to(device)
    flops = conv_flops(model.to("cpu").eval(), args.size)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device) * 60
    figures = {"GFLOP_per_image_forward": flops / 1e9}
    model.to(device).eval()
    with torch.inference_mode():
        seconds = timed(lambda: model(x), device, args.repeat)
    figures["inference_images_per_s_float32"] = args.batch / seconds
    model.train()
    for label, dtype, layout, tuned in TRAINING_VARIANTS:
        model.to(memory_format=layout)
        with autotuned(device, tuned):
            seconds = timed(training_step(kind, model, x.to(memory_format=layout), dtype, device), device, args.repeat)
        rate = args.batch / seconds
        figures[f"train_images_per_s_{label}"] = rate
        figures[f"train_percent_of_peak_{label}"] = 100 * 3 * flops * rate / peaks["bf16" if dtype else "float32"]
    return figures


def figures_or_error(name, args, device, peaks):
    """One network's figures, or why it failed (a missing weights package, say): the other figures still come."""
    try:
        return network_figures(NETWORKS[name].role, name, args, device, peaks)
    except (ImportError, RuntimeError) as e:
        return {"error": f"{type(e).__name__}: {e}"}


def same_training_step(device, args):
    """Parameters after one Caffe-SGD step from the same weights and batch, on the device and on the CPU."""
    results = {}
    for where in (torch.device("cpu"), device):
        torch.manual_seed(0)
        model = network("segmentation", "DeepLab-LargeFOV", args.width).to(where).eval()  # eval: no dropout draws
        x = (torch.randn(2, 3, args.size, args.size, generator=torch.Generator().manual_seed(1)) * 60).to(where)
        training_step("segmentation", model, x, None, where)()
        results[where.type] = torch.cat([p.detach().flatten().cpu() for p in model.parameters()])
    cpu, dev = results["cpu"], results[device.type]
    return {"max_abs_diff": float((cpu - dev).abs().max()),
            "relative_l2": float((cpu - dev).norm() / cpu.norm())}


def crf_figures(device, args):
    """Seconds per image of the torch CRF on the device, and its agreement with the CPU's."""
    rng = np.random.default_rng(0)
    h, w = (375, 500) if not args.quick else (94, 125)
    image = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    logits = rng.normal(size=(21, h // 25 + 1, w // 25 + 1)).astype(np.float32) * 3
    logits = torch.nn.functional.interpolate(torch.from_numpy(logits)[None], size=(h, w), mode="bilinear")[0]
    unary = -torch.log_softmax(logits, 0).numpy()
    seconds = timed(lambda: crf.dense_crf(image, unary, "deeplab", device=device), device, args.repeat)
    ours, cpu = crf.dense_crf(image, unary, device=device), crf.dense_crf(image, unary, device="cpu")
    return {"image": [h, w], "labels": 21, "seconds_per_image": seconds,
            "label_agreement_with_cpu": float((ours.argmax(0) == cpu.argmax(0)).mean()),
            "max_abs_marginal_diff_with_cpu": float(np.abs(ours - cpu).max())}


def device_syntax(name):
    return None if re.fullmatch(r"cpu|cuda(:\d+)?", name) else "write cpu, cuda or cuda:N (a GPU index)"


def usable(name):
    """The torch device `name`, or the error that this machine has no such GPU."""
    device, count = torch.device(name), torch.cuda.device_count()
    if device.type == "cuda" and (device.index or 0) >= count:
        here = f"this machine has {counted(count, 'CUDA device')}" if count else "no CUDA device here"
        raise InputError(f"--device {name}: {here}; pass --device cpu (with --quick: every path, small) or run on a "
                         "GPU machine")
    return device


def main(argv=None):
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", type=argument(str, device_syntax), default="cuda")
    p.add_argument("--quick", action="store_true", help="small sizes and two networks (for the CPU test)")
    args = p.parse_args(argv)
    device = usable(args.device)
    args.batch, args.size, args.width, args.repeat = (2, 65, 1 / 16, 1) if args.quick else (15, 321, 1.0, 5)
    n = 256 if args.quick else 8192
    peaks = {"float32": matmul_peak(device, torch.float32, n, args.repeat),
             "bf16": matmul_peak(device, torch.bfloat16, n, args.repeat)}
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "batch": args.batch, "size": args.size, "width": args.width,
              "matmul_peak_TFLOPs": {k: v / 1e12 for k, v in peaks.items()},
              "float32_in_tf32": device.type == "cuda" and torch.backends.cudnn.allow_tf32}
    networks = ["GAP-HighRes", "DeepLab-LargeFOV"] if args.quick else NETWORKS  # every registered network
    report["networks"] = {name: figures_or_error(name, args, device, peaks) for name in networks}
    report["crf"] = crf_figures(device, args)
    report["one_training_step_vs_cpu"] = same_training_step(device, args)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    run("__main__")  # bad input, Ctrl-C: one line
