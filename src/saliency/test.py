#!/usr/bin/env python3
"""Stage saliency: the logic and settings are in src/guidedlabelling/stages/saliency.py; -h lists the flags."""
from guidedlabelling.cli import run_stage

if __name__ == "__main__":
    run_stage("saliency")
