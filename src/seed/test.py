#!/usr/bin/env python3
"""Stage seed_test: the logic and settings are in src/guidedlabelling/stages/seed_test.py; -h lists the flags."""
from guidedlabelling.cli import run_stage

if __name__ == "__main__":
    run_stage("seed_test")
