#!/usr/bin/env python
"""One command for a lent GPU: the CUDA path end to end, every figure in OUT/summary.json (docs/gpu.md).

1. benchmarks/gpu_check.py: matrix-multiply peaks, training and inference images/s of every network at the
   paper's batch and size, the torch CRF, CPU/GPU equality of a training step and of the CRF.
2. ./script.py --device cuda on the built-in data (the demo preset), float32: wall time per step and the table.
3. voc12_paper's two trainings (seed network; segmenter on the true masks) under torchrun --nproc_per_node 1
   (NCCL), --amp bf16, on random VOC-size photos (benchmarks/random_voc.py), each in the contiguous and the
   channels-last layout: iterations/s and the projected wall time of the preset's 8000 iterations.
4. The demo again with --amp bf16.

Each step has its own time limit inside --budget seconds, its log in OUT/<step>.log, and summary.json is
rewritten after every step, so what ran survives a step that fails or a run cut short.

    python benchmarks/gpu_run.py OUT                   # on a GPU machine: about 4-5 minutes on one H200
    python benchmarks/gpu_run.py OUT --quick           # every step, tiny, on the CPU (gloo; a test runs it)
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAININGS = {"voc12_seed_train": ("src/seed/train.py", []),
             "voc12_seg_train": ("src/segmentation/train.py", ["--labels", "gt"])}
LAYOUTS = {"": [], "_channels_last": ["--channels_last"]}
STEPS = ("gpu_check", "demo_float32", "random_voc") + tuple(t + v for t in TRAININGS for v in LAYOUTS) + ("demo_bf16",)
ITER_LINE = re.compile(r"^(\d\d:\d\d:\d\d) iter (\d+)/(\d+)", re.M)


def iteration_rate(log_text):
    """Iterations/s between the second and the last logged iteration (the first includes start-up)."""
    marks = [(datetime.strptime(t, "%H:%M:%S"), int(i)) for t, i, _ in ITER_LINE.findall(log_text)]
    if len(marks) < 3:
        return None
    (t0, i0), (t1, i1) = marks[1], marks[-1]
    seconds = (t1 - t0).total_seconds() % 86400
    return (i1 - i0) / seconds if seconds else None


class Runner:
    """Runs the steps one after another, each within its limit and what is left of the budget."""

    def __init__(self, out, budget, steps):
        self.out, self.deadline, self.steps, self.summary = out, time.monotonic() + budget, steps, {"steps": {}}
        env_paths = [str(ROOT / "src"), str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")]
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in env_paths if p), PYTHONUNBUFFERED="1",
                        GUIDEDLABELLING_STORE=str(out / "store"))

    def step(self, name, command, limit):
        if name not in self.steps:
            return False
        limit = min(limit, self.deadline - time.monotonic())
        record = {"command": " ".join(map(str, command))}
        if limit < 10:
            record["rc"] = "skipped: the budget is spent"
        else:
            start = time.monotonic()
            with open(self.out / f"{name}.log", "w") as log:
                try:
                    record["rc"] = subprocess.run([str(c) for c in command], cwd=ROOT, env=self.env, stdout=log,
                                                  stderr=subprocess.STDOUT, timeout=limit).returncode
                except subprocess.TimeoutExpired:
                    record["rc"] = f"timeout after {limit:.0f} s"
            record["seconds"] = round(time.monotonic() - start, 1)
        self.summary["steps"][name] = record
        self.save()
        print(f"{name}: rc {record['rc']}, {record.get('seconds', 0)} s", flush=True)
        return record["rc"] == 0

    def log(self, name):
        return (self.out / f"{name}.log").read_text()

    def save(self):
        (self.out / "summary.json").write_text(json.dumps(self.summary, indent=1))


def demo_figures(out_root, config):
    path = out_root / config / "summary.json"
    if not path.exists():
        return None
    s = json.loads(path.read_text())
    keys = ("seeds_mIoU_train", "guide_labels_mIoU_train", "segmenter_mIoU_val", "fully_supervised_mIoU_val",
            "ratio_to_fully_supervised", "step_seconds")
    return {k: s[k] for k in keys if k in s}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--quick", action="store_true", help="tiny sizes on the CPU: every step, in about a minute")
    p.add_argument("--budget", type=float, default=500, help="seconds for all steps together")
    p.add_argument("--steps", default=",".join(STEPS), help="comma-separated steps to run (default: all)")
    p.add_argument("--voc_iters", type=int, default=1000, help="iterations of each voc12_paper training")
    args = p.parse_args(argv)
    unknown = set(args.steps.split(",")) - set(STEPS)
    if unknown:
        p.error(f"--steps {','.join(sorted(unknown))}: not a step; choose among {','.join(STEPS)}")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    run = Runner(out, args.budget, args.steps.split(","))
    py = sys.executable
    device, config = ("cpu", "smoke") if args.quick else ("cuda", "demo")
    small = ["--width", 0.0625, "--input_size", 65, "--batch_size", 3] if args.quick else []
    iters, images, workers = (6, 12, 2) if args.quick else (args.voc_iters, 200, max(1, (os.cpu_count() or 2) - 1))

    if run.step("gpu_check", [py, "benchmarks/gpu_check.py", "--device", device] + ["--quick"] * args.quick, 150):
        run.summary["gpu_check"] = json.loads(run.log("gpu_check")[run.log("gpu_check").index("{"):])
    demos = {"demo_float32": ("none", 150), "demo_bf16": ("bf16", 120)}

    def demo(name):
        amp, limit = demos[name]
        if run.step(name, [py, "script.py", "--config", config, "--device", device, "--set", f"amp={amp}",
                           "--out_root", out / name], limit):
            run.summary[name] = demo_figures(out / name, config)
        run.save()

    demo("demo_float32")
    voc = out / "random_voc"
    run.step("random_voc", [py, "benchmarks/random_voc.py", voc, "--n", images], 60)
    for training, (script, extra) in TRAININGS.items():
        for variant, layout in LAYOUTS.items():
            name = training + variant
            command = [py, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", 1, script,
                       "--config", "voc12_paper", "--dataset_dir", voc, "--init", "none", "--max_iter", iters,
                       "--device", device, "--amp", "bf16", "--workers", workers, "--out_dir", out / name]
            if run.step(name, command + extra + layout + small, 100 + iters / 10):
                rate = iteration_rate((out / name / "log.txt").read_text())
                run.summary[name] = {"iterations": iters, "iterations_per_s": rate,
                                     "projected_minutes_for_8000": 8000 / rate / 60 if rate else None}
                run.save()
    demo("demo_bf16")
    return run.summary


if __name__ == "__main__":
    main()
