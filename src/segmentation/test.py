#!/usr/bin/env python3
"""Stage segmentations: the logic and settings are in src/guidedlabelling/stages/segmentations.py; -h: flags."""
from guidedlabelling.cli import run_stage

if __name__ == "__main__":
    run_stage("segmentations")
