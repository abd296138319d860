#!/usr/bin/env python3
"""GuidedLabelling: the whole method, stage after stage (Oh et al., CVPR 2017). The driver is
src/guidedlabelling/driver.py; -h lists its flags."""
from guidedlabelling.cli import run

if __name__ == "__main__":
    run("guidedlabelling.driver")
