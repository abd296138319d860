#!/usr/bin/env python3
"""What a training's iterations buy: held-out figures of its snapshots, as a curve against iterations.

Runs a preset's training with a snapshot every --every iterations (after the steps it needs), then evaluates
each snapshot with the stage's evaluation steps on held-out data, and prints one row per snapshot (IoU,
precision and AP in percent, max-F from 0 to 1):
- seed_train: seed mIoU and foreground precision on val at the paper's threshold (seed_eval), mAP (cls_eval);
- saliency_train: foreground IoU at salthres and max-F on val and on the held-out saliency images
  (saliency), and the guide labels' mIoU on train (guide_labels);
- seg_train: the segmenter's mIoU on val (segmentations), and with --reference the fully supervised one's.
A snapshot at iteration t is the model after t iterations of the preset's whole schedule (its lr steps
included), so a plateau says that the iterations after it buy nothing; a shorter schedule is then checked
with a run of its own.

    python benchmarks/curve.py --config demo --stage seg_train --every 100 --reference
"""
import argparse
import json
import subprocess
import sys

from guidedlabelling import config as C
from guidedlabelling import naming
from guidedlabelling.checks import POSITIVE, argument
from guidedlabelling.cli import run
from guidedlabelling.errors import Parser
from guidedlabelling.pipeline import STEPS

STEPS_OF = {  # training stage: (steps that make its inputs, its own steps, evaluation steps, snapshot setting)
    "seed_train": ((), ("seed_train",), ("seed_eval_heatmaps", "seed_eval", "cls_eval"), "seed_heatmaps.test_iter"),
    "saliency_train": (("seed_train", "seed_heatmaps"), ("saliency_train",), ("saliency", "guide_labels"),
                       "saliency.test_iter"),
    "seg_train": (("seed_train", "seed_heatmaps", "saliency_train", "saliency", "guide_labels"), ("seg_train",),
                  ("segmentations",), "segmentations.test_iter"),
}


def run_step(step, config, settings):
    """One step of ./script.py's table as its stage command; stops the curve if it fails."""
    _, stage, extra = next(s for s in STEPS if s[0] == step)
    cmd = [sys.executable, "-m", "guidedlabelling", stage, "--config", config]
    cmd += [a for s in list(settings) + list(extra) for a in ("--set", s)]
    if subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode:
        sys.exit(f"step {step} failed: {' '.join(cmd)}")


def done(config, settings, stage):
    cfg, preset = C.resolve(config, settings)
    return json.loads((naming.stage_dir(cfg, preset, stage) / "done.json").read_text())


def figures(stage, config, settings, reference):
    """The held-out figures of one snapshot (its settings name it)."""
    if stage == "seed_train":
        split = list(settings) + ["seed_split=test"]
        seeds = done(config, split, "seed_eval")
        return {"seed mIoU % (val)": seeds["mIoU"], "seed fg precision % (val)": seeds["fg_precision"],
                "mAP % (val)": done(config, split, "cls_eval")["mAP"]}
    if stage == "saliency_train":
        sal = done(config, settings, "saliency")
        salthres = str(C.resolve(config, settings)[0]["guide_labels"]["salthres"])
        row = {f"{part} fg IoU %": sal[part]["foreground_IoU"][salthres] for part in ("train", "val") if part in sal}
        row |= {f"{part} max-F (0-1)": sal[part]["max_F"] for part in ("val", "holdout") if part in sal}
        return row | {"guide mIoU % (train)": done(config, settings, "guide_labels")["guide"]["mIoU"]}
    row = {"segmenter mIoU % (val)": done(config, settings, "segmentations")["mIoU"]}
    if reference:
        row["reference mIoU % (val)"] = done(config, list(settings) + ["labels=gt"], "segmentations")["mIoU"]
    return row


def main(argv=None):
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="demo")
    p.add_argument("--stage", choices=list(STEPS_OF), required=True)
    p.add_argument("--every", type=argument(int, POSITIVE), required=True, help="iterations between snapshots")
    p.add_argument("--reference", action="store_true", help="seg_train: the fully supervised reference too")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="settings of the run")
    args = p.parse_args(argv)
    before, train, evaluate, snapshot_key = STEPS_OF[args.stage]
    if args.reference:
        train, evaluate = train + ("reference_train",), evaluate + ("reference_segmentations",)
    settings = args.set + [f"snapshot={args.every}", "store=none"]  # snapshots: trained here, not reused
    for step in before:
        run_step(step, args.config, settings)
    for step in train:  # trained again even where finished: a finished folder may hold other snapshots or none
        run_step(step, args.config, settings + ["overridecache=true"])
    max_iter = C.resolve(args.config, settings)[0][args.stage]["max_iter"]
    rows = []
    for it in list(range(args.every, max_iter, args.every)) + [0]:  # 0: the final model
        snap = settings + [f"{snapshot_key}={it}"]
        for step in evaluate:
            run_step(step, args.config, snap)
        rows.append((it or max_iter, figures(args.stage, args.config, snap, args.reference)))
        print(f"{rows[-1][0]:6d}  " + "  ".join(f"{k} {v:.3f}" for k, v in rows[-1][1].items()), flush=True)


if __name__ == "__main__":
    run("__main__")  # bad input, Ctrl-C: one line
