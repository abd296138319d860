"""The store of trained saliency networks, and of their maps of held-out images: one per machine, shared by
every run, keyed by content.

The saliency network is class-agnostic: what it learns depends on its training set (the saliency set's
training images and masks) and the saliency_train settings, not on the photos a run labels, its preset or its
--out_root. So the saliency_train stage first looks in the store for a network of the same key and copies it
into its folder instead of training; a network it trains goes into the store for every later run.

The key hashes (KEY_VERSION, the settings, the training items):
- the saliency_train settings, except those that only say where the set lies and which part of it is held out
  (saliency_data, holdout, holdout_scenes): the training items they select are hashed instead;
- the initial weights by content (a file's digest; the built-in ImageNet weights' file for imagenet);
- the run's precision (run.amp), which changes what is learnt;
- every training image and mask, in the set's order, by file name and content (fingerprint.file_digest).
KEY_VERSION changes when the training code changes what a network learns from the same key.

Where: the setting run.store, else $GUIDEDLABELLING_STORE, else $XDG_CACHE_HOME/guidedlabelling/saliency
(~/.cache/guidedlabelling/saliency); run.store=none turns it off. An entry <store>/<key>/ holds model.pth,
loss.json and entry.json (the settings and run that made it, the model's digest). Two runs that want one key:
the first takes <store>/<key>.lock (flock; the system releases it if the run dies) and trains, the second waits
and then reuses its network. An entry appears whole (written to a temporary folder, then renamed) or not at
all; one whose model no longer matches its recorded digest is removed and retrained.

Held-out maps (stages/saliency.py): the saliency stage measures its network on the saliency set's held-out images,
whose maps are the same for every dataset a run labels. <store>/held_out/<key>/ keeps those maps, keyed by
HELD_OUT_VERSION, the model file's digest, every held-out image and mask by name and content, and what the maps
depend on (the test size, the device type, the precision, the batch and zoom settings); the scores are computed
from them in every run, so they follow today's scoring code and folder names. record.json lists each file's
digest; maps that are incomplete or no longer match are removed and computed again, as with --overridecache,
which replaces them. Two runs that compute the same maps at once both compute them; the first to rename its
folder into place keeps it.
"""
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from . import distributed
from .fingerprint import file_digest, read_json
from .io import Busy, atomic_path, flocked, save_json

KEY_VERSION = 1
ENV = "GUIDEDLABELLING_STORE"
NOT_KEYED = ("saliency_data", "holdout", "holdout_scenes")  # the training items stand for them
FILES = ("model.pth", "loss.json")
HELD_OUT = "held_out"  # <store>/held_out/<key>/: a network's maps of held-out images
HELD_OUT_VERSION = 1  # changes when the saliency stage's maps change for the same network, images and settings


def store_root(setting):
    """The store's folder for the setting run.store ('' = the environment's default), or None for 'none' and where
    the default has no home folder to be in (a user id of no account, HOME unset, as in some containers, where
    Path.home() raises: the run trains without a store, as image_checks keeps no checks)."""
    if setting.strip().lower() == "none":   # (None, as Python writes it, named a folder ./None)
        return None
    if setting:
        return Path(os.path.expandvars(setting)).expanduser()
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    try:
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    except RuntimeError:
        return None
    return Path(cache) / "guidedlabelling" / "saliency"


def saliency_key(settings, amp, init_digest, items):
    """The key of a saliency network: settings (the saliency_train section), amp (run.amp), init_digest (of
    the initial weights, or 'none'), items [(image name, image digest, mask digest)] in training order."""
    keyed = {k: v for k, v in settings.items() if k not in NOT_KEYED and k != "init"}
    text = json.dumps({"version": KEY_VERSION, "settings": keyed, "amp": amp, "init": init_digest,
                       "items": items}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Entry:
    """One key's place in the store: <root>/<key>/ and its lock <root>/<key>.lock."""

    def __init__(self, root, key):
        self.root, self.key = Path(root), key
        self.path = self.root / key
        self.waited = None   # seconds claimed waited for another run that held the key, else None

    def __str__(self):
        return str(self.path)

    @contextlib.contextmanager
    def claimed(self, log, wait=True):
        """Hold the key's lock for the block, waiting while another run holds it (it trains this network), or with
        wait=False raising Busy; self.waited says how long it waited."""
        if not self.root.is_dir():   # (mkdir of a read-only store that is there fails EROFS, not EEXIST)
            self.root.mkdir(parents=True, exist_ok=True)

        def waiting():
            if not wait:
                raise Busy(f"{self}.lock")
            log.info("store: another run is training this saliency network (%s.lock); waiting for it", self)
        with contextlib.ExitStack() as stack:
            try:
                waited = stack.enter_context(flocked(self.root / f"{self.key}.lock", waiting))
            except OSError as e:   # a store this user cannot write (read-only, another user's): its networks are
                if not self.path.is_dir():   # read without the lock, as a stage folder is; none to read: unusable
                    raise
                log.info("store: cannot lock %s.lock (%s); reading the store without it", self, e.strerror or e)
                waited = None
            if waited is not None:
                log.info("store: waited %.0f s", waited)
            self.waited = waited
            yield

    def record(self, say=lambda line: None):
        """The entry's entry.json when its model is intact (its recorded digest), else None; a damaged entry
        is removed, saying so."""
        record = read_json(self.path / "entry.json")
        if record is None:
            return None
        if any(not (self.path / name).is_file() for name in FILES) or \
                file_digest(self.path / "model.pth") != record.get("model_digest"):
            shutil.rmtree(self.path, ignore_errors=True)
            say(f"store: {self.path} was damaged since it was stored (a file gone or changed); removed it")
            return None
        return record

    def copy_to(self, out, say=lambda line: None):
        """Copy the entry's files into a stage folder; returns its record, or None when there is no intact
        entry."""
        record = self.record(say)
        if record is None:
            return None
        for name in FILES:
            with atomic_path(out / name) as tmp:  # the old file or a whole copy
                shutil.copyfile(self.path / name, tmp)
        return record

    def publish(self, out, record):
        """Put a stage folder's trained network into the store under this key (the lock held), replacing an
        older entry; the entry appears whole or not at all. Leftovers of runs killed while publishing go."""
        remove_leftovers(self.root, self.key)
        with new_folder(self.root, self.key, replace=True) as tmp:
            for name in FILES:
                shutil.copyfile(out / name, tmp / name)
            save_json(tmp / "entry.json", record | {"key": self.key, "model_digest": file_digest(tmp / "model.pth")})


def remove_leftovers(root, key, min_age=0):
    """Remove what runs killed while publishing root/key left (new_folder's temporary folders), min_age seconds
    old or older."""
    for leftover in root.glob(f".{key}.*"):
        if time.time() - leftover.stat().st_mtime >= min_age:
            shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def new_folder(root, key, replace):
    """Yield a temporary folder in root to fill; when the block succeeds it becomes root/key, whole or not at all:
    in place of an older one (replace), else only where there is none (another run's that came first stays). The
    folder is readable by everyone who shares the store (mkdtemp's 0700 would hide it)."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=root))
    os.chmod(tmp, 0o755)
    path, old = root / key, root / f".{key}.old"
    try:
        yield tmp
        if replace and path.exists():
            os.replace(path, old)
        try:
            os.rename(tmp, path)
        except OSError:
            if not path.exists():  # not another run's folder that came first
                raise
    finally:
        for leftover in (tmp, old):
            shutil.rmtree(leftover, ignore_errors=True)


def held_out_key(model_digest, items, settings):
    """The key of a network's held-out maps: model_digest (of the model file), items [(image name, image digest,
    mask digest)] of the held-out images in order (a mask places its image's zoom crop), settings ({name: value}
    the maps depend on)."""
    text = json.dumps({"version": HELD_OUT_VERSION, "model": model_digest, "items": items, "settings": settings},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class HeldOut:
    """One key's held-out maps: <root>/held_out/<key>/ with subfolders of maps and record.json ({"files":
    {relative path: digest}})."""

    def __init__(self, root, key):
        self.root, self.key = Path(root) / HELD_OUT, key
        self.path = self.root / key

    def __str__(self):
        return str(self.path)

    def copy_to(self, out, names):
        """Copy the stored maps into out (the same subfolders); False, the stored maps removed, when they are
        damaged or are not exactly `names` (relative paths)."""
        if not self.path.is_dir():   # none (nothing to remove: another run may be putting its maps in place)
            return False
        record = read_json(self.path / "record.json")
        files = record.get("files") if record else None
        if not isinstance(files, dict) or set(files) != set(names) or \
                any(file_digest(self.path / name) != digest for name, digest in files.items()):
            shutil.rmtree(self.path, ignore_errors=True)
            return False
        for name in files:
            with atomic_path(out / name) as tmp:
                shutil.copyfile(self.path / name, tmp)
        return True

    def publish(self, out, folders, replace=False):
        """Keep the maps of out's subfolders `folders` under this key, unless maps are already there (replace:
        in their place); they appear whole or not at all. Leftovers of runs killed while publishing, an hour old,
        go."""
        remove_leftovers(self.root, self.key, min_age=3600)  # no lock: a younger one may be another run's
        if self.path.exists() and not replace:
            return
        with new_folder(self.root, self.key, replace) as tmp:
            files = {}
            for folder in folders:
                (tmp / folder).mkdir(mode=0o755)
                for path in sorted((out / folder).iterdir()):
                    if path.is_file() and not path.name.startswith("."):
                        shutil.copyfile(path, tmp / folder / path.name)
                        os.chmod(tmp / folder / path.name, 0o644)  # readable by all who share the store
                        files[f"{folder}/{path.name}"] = file_digest(tmp / folder / path.name)
            save_json(tmp / "record.json", {"files": files})


@contextlib.contextmanager
def claim(entry, log, device):
    """Hold the entry's lock for the block; yields whether the store can be used. Under torchrun the first
    process takes the lock and decides for all, without waiting for another run that holds it: the others, waiting
    for its word, would end at the process group's timeout. A store that cannot be created or locked is reported,
    and the block runs without it."""
    usable = entry is not None
    with contextlib.ExitStack() as stack:
        if usable and distributed.is_main():
            try:
                stack.enter_context(entry.claimed(log, wait=distributed.world_size() == 1))
            except Busy:
                log.warning("store: another run is training this saliency network (%s.lock), and the processes of a "
                            "torchrun launch cannot wait for it; training without the store", entry)
                usable = False
            except OSError as e:
                log.warning("store %s unusable (%s); training without it (--set store=DIR names another folder, "
                            "--set store=none turns it off)", entry.root, e.strerror or e)
                usable = False
        yield distributed.main_decides(usable, device)
