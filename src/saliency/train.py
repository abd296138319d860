#!/usr/bin/env python3
"""Saliency network training: class-agnostic foreground/background DeepLab (spec section 3)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # bootstrap: the library lives in src/
from guidedlabelling.training import train_saliency  # noqa: E402
from guidedlabelling.runner import run_stage  # noqa: E402

if __name__ == "__main__":
    run_stage("saliency_train", __doc__, train_saliency)
