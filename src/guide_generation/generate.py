#!/usr/bin/env python3
"""Stage guide_labels: the logic and settings are in src/guidedlabelling/stages/guide_labels.py; -h lists the flags."""
from guidedlabelling.cli import run_stage

if __name__ == "__main__":
    run_stage("guide_labels")
