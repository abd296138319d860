"""What made a run's figures: the project's version and commit (and whether the checkout had uncommitted changes),
torch's version, and when; recorded in summary.json and in the GPU benchmark's record."""
import datetime
import importlib.metadata
import subprocess
from pathlib import Path

import torch

from .config import ROOT


def git_state(root=ROOT):
    """(commit, whether the tree has uncommitted changes) of the checkout at `root`, or (None, None) outside git
    (or without git)."""
    git = ["git", "-C", str(root)]
    try:
        top = subprocess.run(git + ["rev-parse", "--show-toplevel"], capture_output=True, text=True)
        if top.returncode or Path(top.stdout.strip()).resolve() != Path(root).resolve():
            return None, None
        commit = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
        status = subprocess.run(git + ["status", "--porcelain"], capture_output=True, text=True).stdout
    except OSError:
        return None, None
    return commit.strip() or None, bool(status.strip())


def provenance():
    """{"written", "version", "commit", "uncommitted_changes", "torch"} of this run."""
    commit, dirty = git_state()
    try:
        version = importlib.metadata.version("guidedlabelling")
    except importlib.metadata.PackageNotFoundError:   # the sources run without an install
        version = None
    return {"written": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "version": version,
            "commit": commit, "uncommitted_changes": dirty, "torch": torch.__version__}
