#!/usr/bin/env python3
"""Seed network training: a GAP classifier on image-level labels (spec section 1)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # bootstrap: the library lives in src/
from guidedlabelling.training import train_seed  # noqa: E402
from guidedlabelling.runner import run_stage  # noqa: E402

if __name__ == "__main__":
    run_stage("seed_train", __doc__, train_seed)
