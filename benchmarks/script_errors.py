"""The benchmark scripts' one-line errors (cli.run's) where the commands' own words do not fit a script."""
import contextlib
import os
import shutil
import tempfile
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


@contextlib.contextmanager
def whole_folder(out):
    """A temporary folder beside `out` to write a set into, renamed to `out` once the block ends without error (as
    datasets.builtin does): a run cut short or refused leaves no part of a set, nor its files among an earlier set's."""
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out}: not empty; choose a new DIR or remove this one")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would otherwise stick to the set
    try:
        yield tmp
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def made(path, stage, flags):
    """`path`, a run's output that `stage` makes, or the error that it is missing and what to run with `flags`
    (the run's --config and --set): the readers call a file that is not there unreadable."""
    if not Path(path).exists():
        raise InputError(f"{path}: missing; run {command(stage)} {flags} first, or ./script.py {flags} for the whole "
                         "run")
    return path
