"""Decode checks of image files, kept between processes.

Every stage process opens its dataset, which decodes every image to check it (base.image_check), and so does
predict on every rerun: 0.05 s per 12-megapixel JPEG and 0.7 s per such PNG on the project's CPU, per process, so
a rerun of a few thousand phone photos spent minutes per step checking files it had checked. A check is reused
while the file is the one it was made of: the same device, inode, size, modification time and change time (the
kernel sets the last on every write and rename, and no tool can set it back), read by the same Pillow version and
the same code (a digest of the check's module: an upgrade that reads a size otherwise or words a reason anew kept the
old outcomes until Pillow changed); a file written in the last seconds is checked again until it is older (RACY_NS).
Only what the file's bytes decode to is kept (the caller's keeps), not a failure to read them (permission denied:
another user, or one added to the file's group since, reads it), and a kept check is used only for a file this
process can open.

Where: $GUIDEDLABELLING_IMAGE_CHECKS, else $XDG_CACHE_HOME/guidedlabelling/image_checks (~/.cache by default);
'none' checks every file every time. One JSON file per folder of images; a file that cannot be read or written
is checked again, never trusted.
"""
import hashlib
import inspect
import json
import os
import time
from pathlib import Path

import PIL

from ..io import flocked, save_json
from ..progress import progress

ENV = "GUIDEDLABELLING_IMAGE_CHECKS"
SAY_AFTER_S = 10.0   # checks that take longer say their progress
RACY_NS = 3 * 10**9  # a check of a file written this recently is not kept: where times tick in seconds (FAT's two),
# a rewrite of the same size within the tick would keep its stamp (git's "racy" index entries)


def root():
    """The folder of the kept checks, or None ('none', or no home folder to keep them in: a user id of no account,
    HOME unset, as in some containers, where Path.home() raises and every dataset open failed)."""
    if os.environ.get(ENV):
        return None if os.environ[ENV] == "none" else Path(os.environ[ENV]).expanduser()
    try:
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    except RuntimeError:
        return None
    return Path(cache) / "guidedlabelling" / "image_checks"


def stamp(path):
    """What identifies a file's content without reading it (see the module's docstring), or None if it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def checks_file(folder):
    """The file of a folder's kept checks, named by a hash of the folder's path as bytes (fsencode: its name need not
    be UTF-8, such as one unpacked from an old zip)."""
    return root() / (hashlib.blake2b(os.fsencode(folder), digest_size=12).hexdigest() + ".json")


def checker(check):
    """What identifies the code of a check: a digest of its module's source file; None where that cannot be read
    (its checks are then made every time)."""
    try:
        return hashlib.blake2b(Path(inspect.getsourcefile(check)).read_bytes(), digest_size=12).hexdigest()
    except (OSError, TypeError):
        return None


def kept_checks(folder, code):
    """{file name: {stamp, check}} of a folder, as far as they hold for this Pillow and the check's code (checker);
    {} where none can be read."""
    try:
        data = json.loads(checks_file(folder).read_text())
    except (OSError, ValueError, RecursionError):   # RecursionError: a damaged file of nested brackets
        return {}
    ok = isinstance(data, dict) and data.get("folder") == str(folder) and data.get("pillow") == PIL.__version__ \
        and data.get("checker") == code
    files = data["files"] if ok and isinstance(data.get("files"), dict) else {}
    return {name: kept for name, kept in files.items()   # only entries of the form keep() writes
            if isinstance(kept, dict) and isinstance(kept.get("stamp"), list) and isinstance(kept.get("check"), list)}


def keep(folder, made, code):
    """Adds the checks `made` ({name: {stamp, check}}) to the folder's file under its lock, dropping those of files
    since gone or changed; a cache that cannot be written is left as it is."""
    path = checks_file(folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with flocked(path.with_suffix(".lock"), lambda: None):
            files = kept_checks(folder, code) | made
            files = {name: kept for name, kept in files.items() if kept.get("stamp") == stamp(folder / name)}
            save_json(path, {"folder": str(folder), "pillow": PIL.__version__, "checker": code, "files": files})
    except OSError:
        pass


def readable(path):
    """Whether this process may read the file now: a kept check says what the file's bytes decode to, not whether
    this user may read them (one since removed from the file's group, a cache shared with another user)."""
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError:
        return False
    return True


def checked(paths, check, keeps=lambda result: True, desc="checking images"):
    """[check(path)] of every path (check returns JSON-able values, a tuple read back as a tuple), each made
    again only where no kept check of the same file holds, or the file cannot be opened now. keeps(result): whether
    a result may be kept, and a kept one used (one of the file's bytes, well formed), such as not a failure to
    read it that another user or a later run may not meet (permission denied, an I/O error). Progress (`desc`) is
    said once the checks take SAY_AFTER_S: 3000 photos took 15 s before a run's first line, 0.3 s per 12-MP PNG."""
    code = checker(check)
    if root() is None or code is None:
        return [check(path) for path in progress(paths, desc, delay=SAY_AFTER_S)]
    located = [(Path(os.path.abspath(path)).parent, Path(path).name) for path in paths]
    kept = {folder: kept_checks(folder, code) for folder in dict.fromkeys(folder for folder, _ in located)}
    made, results = {}, []
    for path, (folder, name) in progress(list(zip(paths, located)), desc, delay=SAY_AFTER_S):
        now, before = stamp(path), kept[folder].get(name) or {}
        if now is not None and before.get("stamp") == now and readable(path):
            result = tuple(tuple(v) if isinstance(v, list) else v for v in before["check"])
            if keeps(result):
                results.append(result)
                continue
        result = check(path)
        results.append(result)
        recent = now is None or time.time_ns() - max(now[3:]) <= RACY_NS
        if not recent and stamp(path) == now and keeps(result):   # stamped again: nor one changed while read
            made.setdefault(folder, {})[name] = {"stamp": now, "check": result}
    for folder, checks in made.items():
        keep(folder, checks, code)
    return results
