"""The benchmark scripts' one-line errors (cli.run's) where the commands' own words do not fit a script."""
from pathlib import Path

from guidedlabelling.errors import InputError
from guidedlabelling.pipeline import command


def made(path, stage, flags):
    """`path`, a run's output that `stage` makes, or the error that it is missing and what to run with `flags`
    (the run's --config and --set): the readers call a file that is not there unreadable."""
    if not Path(path).exists():
        raise InputError(f"{path}: missing; run {command(stage)} {flags} first, or ./script.py {flags} for the whole "
                         "run")
    return path
