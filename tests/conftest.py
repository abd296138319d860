"""Shared by the reliability tests: a tiny own dataset with masks and a saliency set, a tiny preset that runs
every stage on it in seconds, and commands run in this process (exit code, stdout, stderr)."""
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from guidedlabelling import cli
from guidedlabelling import config as C
from guidedlabelling import naming
from guidedlabelling.datasets.image_checks import ENV as IMAGE_CHECKS_ENV
from guidedlabelling.errors import OVERRIDDEN
from guidedlabelling.store import ENV as STORE_ENV

ROOT = Path(__file__).resolve().parents[1]
TINY_PRESET = """name: tiny
dataset: train
test_dataset: val
device: cpu
seed_train: {init: none, width: 0.0625, input_size: 32, max_iter: 2, stepsize: 2, batch_size: 2}
saliency_train: {init: none, width: 0.0625, input_size: 32, max_iter: 2, stepsize: 2, batch_size: 2}
saliency: {test_size: 32}
seg_train: {init: none, width: 0.0625, input_size: 32, max_iter: 2, stepsize: 2, batch_size: 2}
segmentations: {test_size: 32}
snapshot: 1
"""
CLASSES = ["background", "cat", "dog"]
# image: (tags, split); every image is 24 high, 32 wide, with one square of its class
ROWS = {"a.jpg": ("cat", "train"), "b.png": ("dog", "train"), "c.jpg": ("cat", "train"), "d.png": ("dog", "train"),
        "e.jpg": ("cat", "val"), "f.png": ("dog", "val")}


def picture(k, cls):
    """A 24x32 image with a square of colour by class (cat red, dog blue), and its mask."""
    img = np.full((24, 32, 3), 60 + 10 * k, np.uint8)
    mask = np.zeros((24, 32), np.uint8)
    img[4:16, 6 + k:18 + k] = (220, 40, 40) if cls == 1 else (40, 40, 220)
    mask[4:16, 6 + k:18 + k] = cls
    return img, mask


@pytest.fixture(scope="session", autouse=True)
def session_image_checks(tmp_path_factory):
    """The kept decode checks of images (datasets/image_checks.py): never the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(IMAGE_CHECKS_ENV, str(tmp_path_factory.mktemp("image_checks")))
        yield


@pytest.fixture(scope="module", autouse=True)
def module_store(tmp_path_factory):
    """The store of saliency networks (store.py) of a module's fixtures: never the user's, and never another
    module's, so whether a module fixture trains its saliency network does not depend on the order of the
    modules."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(STORE_ENV, str(tmp_path_factory.mktemp("store")))
        yield


@pytest.fixture(autouse=True)
def private_store(tmp_path, monkeypatch):
    """Each test its own empty store of saliency networks; the commands it starts inherit it."""
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "store"))
    return tmp_path / "store"


@pytest.fixture
def own(tmp_path):
    return make_own(tmp_path)


def make_own(tmp_path):
    """A tiny own dataset: images/, tags.csv (with a split column), masks/, saliency/ (a saliency set:
    images/ + masks/) and the tiny preset; returns a dict of their paths (and of the output root)."""
    base = tmp_path / "own"
    for sub in ("images", "masks", "saliency/images", "saliency/masks"):
        (base / sub).mkdir(parents=True)
    for k, (name, (tag, _)) in enumerate(ROWS.items()):
        img, mask = picture(k, CLASSES.index(tag))
        Image.fromarray(img).save(base / "images" / name)
        Image.fromarray(mask).save(base / "masks" / f"{Path(name).stem}.png")
        Image.fromarray(img).save(base / "saliency" / "images" / f"s{k}.png")
        Image.fromarray(np.where(mask > 0, 255, 0).astype(np.uint8)).save(base / "saliency" / "masks" / f"s{k}.png")
    (base / "tags.csv").write_text("image,tags,split\n" + "".join(f"{n},{t},{s}\n" for n, (t, s) in ROWS.items()))
    (base / "tiny.yaml").write_text(TINY_PRESET)
    return {"base": base, "images": base / "images", "tags": base / "tags.csv", "masks": base / "masks",
            "saliency_data": base / "saliency", "preset": base / "tiny.yaml", "out_root": tmp_path / "runs"}


def stage_folders(parent):
    """The run folders under a stage's folder, without the hidden lock files beside them (io.writing)."""
    return sorted(p for p in Path(parent).iterdir() if not p.name.startswith("."))


def retag_mask(own, image_id, cls):
    """Give image_id's mask square class cls: a test that retags an image keeps its mask agreeing with the tags."""
    path = own["masks"] / f"{image_id}.png"
    mask = np.array(Image.open(path))
    Image.fromarray(np.where((mask > 0) & (mask != 255), cls, mask).astype(np.uint8)).save(path)


def named_by_masks(folder, own, stage, section_names=None):
    """A stage folder of your own data renamed and stored as versions up to eda7e05 made it (its name and its
    config.yaml name --masks); returns its path."""
    cfg, preset = C.resolve(str(own["preset"]), own_args(own)[3::2])
    old = folder.parent / naming.stage_name(cfg, preset, stage, section_names, masks_named=True)
    assert "masks-masks-" in old.name and "masks" not in folder.name.replace("tags", "")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["data"]["masks"] = str(own["masks"])   # as that version stored it
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    folder.rename(old)
    return old


def own_args(own, masks=True):
    """The settings that run the tiny preset on the own dataset, as --set items."""
    sets = [f"images={own['images']}", f"tags={own['tags']}", f"saliency_data={own['saliency_data']}",
            f"out_root={own['out_root']}"] + ([f"masks={own['masks']}"] if masks else [])
    return ["--config", str(own["preset"])] + [a for s in sets for a in ("--set", s)]


def exit_code(name, argv, call):
    """The exit code of call() run as the command `name` with `argv` in this process: sys.argv set, and sys.argv and
    the signal handlers, which a command ending ignores (cli.ending), restored after it."""
    old_argv, sys.argv = sys.argv, [name, *argv]
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, *cli.ENDING)}
    try:
        call()
        return 0
    except SystemExit as e:
        return e.code
    finally:
        sys.argv = old_argv
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


@pytest.fixture
def command(capsys):
    """command(stage or "script", *argv) -> (exit code, stdout, stderr), run in this process through cli.run,
    as the command's script runs it."""
    def run(name, *argv):
        argv = [str(a) for a in argv]
        args = ("guidedlabelling.driver", "main", argv) if name == "script" else \
            ("guidedlabelling.runner", "main", name, argv)
        try:
            code = exit_code(name, argv, lambda: cli.run(*args))
        finally:
            OVERRIDDEN.clear()  # what the command cleared for --overridecache (resume_hint reads it) ends with it
        out = capsys.readouterr()
        return code, out.out, out.err
    return run
