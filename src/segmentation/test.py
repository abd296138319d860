#!/usr/bin/env python3
"""Stage seg_test: the logic and settings are in src/guidedlabelling/stages/seg_test.py; -h lists the flags."""
from guidedlabelling.cli import run_stage

if __name__ == "__main__":
    run_stage("seg_test")
