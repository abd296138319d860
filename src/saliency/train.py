#!/usr/bin/env python3
"""Stage saliency_train: the logic and settings are in src/guidedlabelling/stages/saliency_train.py; -h lists the flags."""
from guidedlabelling.runner import main

if __name__ == "__main__":
    main("saliency_train")
