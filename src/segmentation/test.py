#!/usr/bin/env python3
"""Segmentation test and evaluation: predictions, confusion matrix, per-class IoU, mIoU (spec section 7)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # bootstrap: the library lives in src/
from guidedlabelling.inference import segmentation_test  # noqa: E402
from guidedlabelling.runner import run_stage  # noqa: E402

if __name__ == "__main__":
    run_stage("seg_test", __doc__, lambda s: segmentation_test(s, s.args.model_dir),
              extra_args=lambda p: p.add_argument("--model_dir", help="segmentation training folder holding model.pth"))
