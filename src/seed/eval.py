#!/usr/bin/env python3
"""Stage seed_eval: the logic and settings are in src/guidedlabelling/stages/seed_eval.py; -h lists the flags."""
from guidedlabelling.cli import run_stage

if __name__ == "__main__":
    run_stage("seed_eval")
