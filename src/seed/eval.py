#!/usr/bin/env python3
"""Seed evaluation: precision and recall of the seeds over confidence thresholds, and mIoU (spec section 2)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # bootstrap: the library lives in src/
from guidedlabelling.evaluation import seed_evaluation  # noqa: E402
from guidedlabelling.runner import run_stage  # noqa: E402

if __name__ == "__main__":
    run_stage("seed_eval", __doc__, lambda s: seed_evaluation(s, s.args.seed_dir),
              extra_args=lambda p: p.add_argument("--seed_dir", help="folder of <id>.mat seed heatmaps "
                                                                     "(default: the seed test output)"))
