#!/usr/bin/env python3
"""Seed heatmaps: CAMs of the present classes, mapped back to each image, plus all class scores (spec section 2)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # bootstrap: the library lives in src/
from guidedlabelling.inference import seed_heatmaps  # noqa: E402
from guidedlabelling.runner import run_stage  # noqa: E402

if __name__ == "__main__":
    run_stage("seed_test", __doc__, lambda s: seed_heatmaps(s, s.args.model_dir),
              extra_args=lambda p: p.add_argument("--model_dir", help="seed training folder holding model.pth"))
