#!/usr/bin/env python3
"""Stage cls_eval: the logic and settings are in src/guidedlabelling/stages/cls_eval.py; -h lists the flags."""
from guidedlabelling.cli import run_stage

if __name__ == "__main__":
    run_stage("cls_eval")
