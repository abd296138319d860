#!/usr/bin/env python3
"""Classifier evaluation: per-class average precision and mAP of the seed network's class scores (spec section 2)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # bootstrap: the library lives in src/
from guidedlabelling.evaluation import classifier_evaluation  # noqa: E402
from guidedlabelling.runner import run_stage  # noqa: E402

if __name__ == "__main__":
    run_stage("cls_eval", __doc__, lambda s: classifier_evaluation(s, s.args.seed_dir),
              extra_args=lambda p: p.add_argument("--seed_dir", help="seed test folder holding cls_res.mat "
                                                                     "(default: the seed test output)"))
