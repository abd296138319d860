#!/usr/bin/env python3
"""Stage saliency_test: the logic and settings are in src/guidedlabelling/stages/saliency_test.py; -h lists the flags."""
from guidedlabelling.runner import main

if __name__ == "__main__":
    main("saliency_test")
