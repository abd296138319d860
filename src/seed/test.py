#!/usr/bin/env python3
"""Stage seed_heatmaps: the logic and settings are in src/guidedlabelling/stages/seed_heatmaps.py; -h: flags."""
from guidedlabelling.cli import run_stage

if __name__ == "__main__":
    run_stage("seed_heatmaps")
