#!/usr/bin/env python3
"""Segmentation training: DeepLab-LargeFOV on guide labels, or on the true masks with --labels gt (spec section 6)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # bootstrap: the library lives in src/
from guidedlabelling.training import train_seg  # noqa: E402
from guidedlabelling.runner import run_stage  # noqa: E402

if __name__ == "__main__":
    run_stage("seg_train", __doc__, lambda s: train_seg(s, s.args.guide_dir),
              extra_args=lambda p: p.add_argument("--guide_dir", help="folder of <id>.png training labels"))
