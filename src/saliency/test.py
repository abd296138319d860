#!/usr/bin/env python3
"""Saliency maps: 8-bit foreground maps (maximum 255) for the training and test images (spec section 3)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # bootstrap: the library lives in src/
from guidedlabelling.inference import saliency_maps  # noqa: E402
from guidedlabelling.runner import run_stage  # noqa: E402

if __name__ == "__main__":
    run_stage("saliency_test", __doc__, lambda s: saliency_maps(s, s.args.model_dir),
              extra_args=lambda p: p.add_argument("--model_dir", help="saliency training folder holding model.pth"))
