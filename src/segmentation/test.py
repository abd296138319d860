#!/usr/bin/env python3
"""Stage seg_test: the logic and settings are in src/guidedlabelling/stages/seg_test.py; -h lists the flags."""
from guidedlabelling.runner import main

if __name__ == "__main__":
    main("seg_test")
