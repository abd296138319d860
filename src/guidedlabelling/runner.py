"""What every stage command shares: flags, config, output folder, cache check, log, errors.

A stage command (`./src/seed/train.py ...` or `python -m guidedlabelling seed_train ...`) is main(stage): it
parses the stage's flags, resolves the config, owns the output folder the settings name, and calls
stages/<stage>.py's run(Stage). Bad input ends in one line `error: ...` and exit code 2.
"""
import importlib
import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import config as C
from . import pipeline
from .datasets import open_dataset
from .inference import pick_device
from .io import InputError, save_json, save_yaml
from .synthetic import ensure_builtin


@dataclass
class Stage:
    """One run of a stage: its settings, its output folder and log, and what it needs from the others."""
    name: str
    cfg: dict
    preset: dict
    out: Path
    args: object
    log: logging.Logger
    skipped: dict = field(default_factory=dict)  # {image: why} of unreadable images the datasets left out

    @property
    def device(self):
        return pick_device(self.cfg["run"]["device"])

    def dataset(self, split):
        data = open_dataset(self.cfg["data"], split)
        self.skipped.update(data.skipped)
        return data

    def output_dir(self, stage):
        """The folder of another stage's output with this run's settings (it may not exist)."""
        return C.stage_dir(self.cfg, self.preset, stage)

    def input_dir(self, stage, explicit=None):
        """Output folder of an upstream stage (or the user's own folder); it must be finished."""
        if explicit:
            path = Path(explicit)
            if not path.is_dir():
                raise InputError(f"{path}: folder not found; pass an existing folder")
            return path
        path = self.output_dir(stage)
        if not (path / "done.json").exists():
            raise InputError(f"{path}: no finished output of stage {stage}; run {pipeline.command(stage)} with the "
                             "same settings first (or ./script.py)")
        return path

    @property
    def fragment(self):
        """(n, N): the release's --n/--N, or RANK/WORLD_SIZE when started by torchrun."""
        run = self.cfg["run"]
        if run["N"] == 1 and "WORLD_SIZE" in os.environ:
            return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        if not 0 <= run["n"] < run["N"]:
            raise InputError(f"--n {run['n']} --N {run['N']}: need 0 <= n < N")
        return run["n"], run["N"]

    def finish(self, summary):
        if self.skipped:
            summary = summary | {"skipped_images": self.skipped}
            self.log.info("skipped %d unreadable images (listed in done.json):\n%s", len(self.skipped),
                          "\n".join(f"  {path}: {why}" for path, why in self.skipped.items()))
        save_json(self.out / "done.json", summary)
        self.log.info("wrote %s", self.out)


def ensure_data(cfg):
    """Generate the built-in dataset on first use (complete() has made it the dataset of the run)."""
    d = cfg["data"]
    if d["builtin"]:
        ensure_builtin(C.builtin_dir(d), n_train=d["builtin_train"], n_val=d["builtin_val"], size=d["builtin_size"],
                       seed=0)


def make_logger(out):
    log = logging.getLogger(f"gl.{out}")
    log.setLevel(logging.INFO)
    log.propagate = False
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    for handler in (logging.StreamHandler(sys.stdout), logging.FileHandler(out / "log.txt")):
        handler.setFormatter(fmt)
        log.addHandler(handler)
    return log


def check_cache(out, stage_cfg, override):
    """An output folder belongs to one config; reruns with it resume, others must choose a new folder."""
    stored = out / "config.yaml"
    if override and out.exists():
        shutil.rmtree(out)
    if stored.exists() and not C.same_settings(yaml.safe_load(stored.read_text()), stage_cfg):
        if any(p.name not in ("config.yaml", "log.txt") for p in out.iterdir()):
            raise InputError(f"{stored}: this folder was made with other settings; rerun with --overridecache "
                             "to replace it, or choose another --out_dir")
    out.mkdir(parents=True, exist_ok=True)
    save_yaml(stored, stage_cfg)


def stage_module(stage):
    return importlib.import_module(f".stages.{stage}", __package__)


def parse(stage, argv=None):
    module = stage_module(stage)
    parser = C.stage_parser(stage, module.__doc__)
    parser.add_argument("--out_dir", help="write here instead of the folder named from the settings")
    if hasattr(module, "add_arguments"):
        module.add_arguments(parser)
    return parser.parse_args(argv)


def main(stage, argv=None):
    """Run one stage as a command; returns its output folder."""
    args = parse(stage, argv)
    out = fresh = None
    try:
        cfg, preset = C.resolve(args.config, C.flag_overrides(args))
        ensure_data(cfg)
        out = Path(args.out_dir) if args.out_dir else C.stage_dir(cfg, preset, stage)
        stage_cfg = C.relevant(cfg, stage)
        if (out / "done.json").exists() and (out / "config.yaml").exists() and not cfg["run"]["overridecache"] \
                and C.same_settings(yaml.safe_load((out / "config.yaml").read_text()), stage_cfg):
            print(f"{stage}: up to date in {out} (--overridecache recomputes)")
            return out
        fresh = not out.exists() or cfg["run"]["overridecache"]
        check_cache(out, stage_cfg, cfg["run"]["overridecache"])
        current = Stage(stage, cfg, preset, out, args, make_logger(out))
        if current.fragment[1] == 1:  # alone in the folder: temp files left by a killed run are never outputs
            for stale in out.rglob(".*.tmp*"):
                stale.unlink()
        stage_module(stage).run(current)
        return out
    except InputError as e:
        if fresh and out.is_dir():
            discard_if_bare(out)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def discard_if_bare(out):
    """A folder this run made and left with nothing but its config and log holds no output: remove it."""
    if {p.name for p in out.iterdir()} <= {"config.yaml", "log.txt"}:
        shutil.rmtree(out)
