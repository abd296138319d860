#!/usr/bin/env python3
"""GuidedLabelling: the whole method, stage after stage (Oh et al., CVPR 2017). The driver is
src/guidedlabelling/driver.py; -h lists its flags."""
from guidedlabelling.cli import run, sleeping_openmp_threads

if __name__ == "__main__":
    sleeping_openmp_threads()  # before the driver imports torch
    run("guidedlabelling.driver")
