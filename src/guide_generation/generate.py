#!/usr/bin/env python3
"""Stage guide: the logic and settings are in src/guidedlabelling/stages/guide.py; -h lists the flags."""
from guidedlabelling.runner import main

if __name__ == "__main__":
    main("guide")
