"""The benchmark scripts' one-line errors (cli.run's) where the commands' own words do not fit a script."""
import contextlib
from pathlib import Path

from guidedlabelling.errors import InputError, os_error_message
from guidedlabelling.pipeline import command


@contextlib.contextmanager
def output_folder(flag):
    """A file the system would not write in the block: the error names the script's own output folder `flag`,
    where errors_end_in_one_line would name the stage commands' --out_root, --out_dir."""
    try:
        yield
    except OSError as e:
        raise InputError(os_error_message(e, flag)) from None


def made(path, stage, flags):
    """`path`, a run's output that `stage` makes, or the error that it is missing and what to run with `flags`
    (the run's --config and --set): the readers call a file that is not there unreadable."""
    if not Path(path).exists():
        raise InputError(f"{path}: missing; run {command(stage)} {flags} first, or ./script.py {flags} for the whole "
                         "run")
    return path
