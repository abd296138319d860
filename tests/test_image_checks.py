"""Decode checks kept between processes (datasets/image_checks.py): reused only for the very file they were made of."""
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from guidedlabelling.datasets import base, image_checks
from guidedlabelling.datasets.base import Item, pillow_warnings, readable_items


@pytest.fixture
def kept(tmp_path, monkeypatch):
    """A private folder of kept checks that keeps checks of files however new, and a counting check."""
    monkeypatch.setenv(image_checks.ENV, str(tmp_path / "checks"))
    monkeypatch.setattr(image_checks, "RACY_NS", -10**12)
    calls = []

    def check(path):
        calls.append(os.path.basename(path))
        return pillow_warnings(path)
    return calls, check


def denying(path, real):
    """`real` (Image.open, os.open) but for `path`, which this user may not read."""
    def opener(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real(file, *args, **kwargs)
    return opener


def photo(path, hw=(30, 40), value=90):
    Image.fromarray(np.full((*hw, 3), value, np.uint8)).save(path)
    return path


def test_a_kept_check_answers_for_the_same_file_as_the_check_did(tmp_path, kept):
    calls, check = kept
    paths = [photo(tmp_path / "a.png"), photo(tmp_path / "b.jpg", (50, 20))]
    (tmp_path / "c.jpg").write_bytes(b"not an image")
    paths.append(tmp_path / "c.jpg")
    first = image_checks.checked(paths, check)
    again = image_checks.checked(paths, check)
    assert calls == ["a.png", "b.jpg", "c.jpg"]   # the second call decoded nothing
    assert again == first == [pillow_warnings(p) for p in paths]
    assert first[0] == ((30, 40), "") and first[1] == ((50, 20), "") and isinstance(first[2][0], str)


def test_a_file_written_again_is_checked_again_even_with_its_size_and_times_put_back(tmp_path, kept):
    calls, check = kept
    path = photo(tmp_path / "a.png")
    image_checks.checked([path], check)
    st = os.stat(path)
    data = bytearray(path.read_bytes())
    data[-20:] = bytes(20)   # the same size, damaged
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))   # mtime as before: the change time still moved
    result = image_checks.checked([path], check)
    assert calls == ["a.png", "a.png"] and isinstance(result[0][0], str)


def test_a_file_replaced_by_rename_is_checked_again(tmp_path, kept):
    calls, check = kept
    path = photo(tmp_path / "a.png")
    image_checks.checked([path], check)
    photo(tmp_path / "new.png", (10, 10)).replace(path)
    assert image_checks.checked([path], check) == [((10, 10), "")] and calls == ["a.png", "a.png"]


def test_checks_are_not_kept_for_a_file_written_within_the_racy_time(tmp_path, kept, monkeypatch):
    calls, check = kept
    monkeypatch.setattr(image_checks, "RACY_NS", 3600 * 10**9)
    path = photo(tmp_path / "a.png")
    image_checks.checked([path], check)
    image_checks.checked([path], check)
    assert calls == ["a.png", "a.png"]


def test_another_pillow_version_a_damaged_file_or_none_checks_again(tmp_path, kept, monkeypatch):
    calls, check = kept
    path = photo(tmp_path / "a.png")
    image_checks.checked([path], check)
    monkeypatch.setattr(image_checks.PIL, "__version__", "0.0")
    image_checks.checked([path], check)   # kept for this version now
    (store,) = (tmp_path / "checks").glob("*.json")
    store.write_text("{not json")
    assert image_checks.checked([path], check) == [((30, 40), "")]
    assert json.loads(store.read_text())["pillow"] == "0.0"   # written again whole
    monkeypatch.setenv(image_checks.ENV, "none")
    image_checks.checked([path], check)
    assert calls == ["a.png"] * 4


def test_a_check_kept_by_other_code_is_made_again(tmp_path, kept, monkeypatch):
    """A check kept by another version of the checking code (a reason since reworded: 'cannot identify image file'
    for an empty file) was reused until Pillow changed; the code is told by a digest of the check's module."""
    calls, check = kept
    path = photo(tmp_path / "a.png")
    assert image_checks.checker(pillow_warnings) == hashlib.blake2b(
        Path(base.__file__).read_bytes(), digest_size=12).hexdigest()
    image_checks.checked([path], check)
    image_checks.checked([path], check)
    monkeypatch.setattr(image_checks, "checker", lambda check: "another version")
    image_checks.checked([path], check)
    image_checks.checked([path], check)   # kept for that code now
    monkeypatch.setattr(image_checks, "checker", lambda check: None)   # no source to tell it by: never kept
    image_checks.checked([path], check)
    assert calls == ["a.png"] * 3


def test_an_unwritable_store_checks_every_time(tmp_path, kept, monkeypatch):
    calls, check = kept
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(image_checks.ENV, str(tmp_path / "file" / "checks"))   # under a file: never a folder
    path = photo(tmp_path / "a.png")
    assert image_checks.checked([path], check) == image_checks.checked([path], check) == [((30, 40), "")]
    assert calls == ["a.png", "a.png"]


def test_no_home_folder_checks_every_time(tmp_path, kept, monkeypatch):
    """A user id of no account with HOME unset (Path.home() raises): the images are checked, not a crash."""
    calls, check = kept
    monkeypatch.delenv(image_checks.ENV)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home():
        raise RuntimeError("Could not determine home directory.")
    monkeypatch.setattr(image_checks.Path, "home", no_home)
    path = photo(tmp_path / "a.png")
    assert image_checks.checked([path], check) == image_checks.checked([path], check) == [((30, 40), "")]
    assert calls == ["a.png", "a.png"]


def test_checks_of_files_gone_are_dropped_and_folders_kept_apart(tmp_path, kept):
    calls, check = kept
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    a, b = photo(tmp_path / "one" / "a.png"), photo(tmp_path / "one" / "b.png")
    other = photo(tmp_path / "two" / "a.png", (8, 8))
    image_checks.checked([a, b, other], check)
    b.unlink()
    photo(tmp_path / "one" / "c.png")
    image_checks.checked([a, tmp_path / "one" / "c.png"], check)
    stores = {json.loads(p.read_text())["folder"]: json.loads(p.read_text())["files"]
              for p in (tmp_path / "checks").glob("*.json")}
    assert sorted(stores[str(tmp_path / "one")]) == ["a.png", "c.png"]
    assert stores[str(tmp_path / "two")]["a.png"]["check"] == [[8, 8], ""]
    assert calls == ["a.png", "b.png", "a.png", "c.png"]


def test_readable_items_answer_the_same_from_kept_checks(tmp_path, kept, monkeypatch):
    calls, check = kept
    monkeypatch.setattr("guidedlabelling.datasets.base.pillow_warnings", check)
    items = [Item(p.stem, p, None) for p in (photo(tmp_path / "a.png", (12, 16)), photo(tmp_path / "b.jpg"))]
    (tmp_path / "c.png").write_bytes(photo(tmp_path / "c.png").read_bytes()[:60])   # truncated
    items.append(Item("c", tmp_path / "c.png", None))
    first = readable_items(items, "tags.csv")
    assert readable_items(items, "tags.csv") == first and len(calls) == 3
    assert first[0] == items[:2] and first[1] == [(12, 16), (30, 40)] and list(first[2]) == [str(items[2].image)]


def test_a_folder_whose_name_is_not_utf8_keeps_its_checks(tmp_path, kept):
    calls, check = kept
    folder = tmp_path / os.fsdecode(b"caf\xe9")   # such as one unpacked from an old zip
    folder.mkdir()
    path = photo(folder / "a.png")
    assert image_checks.checked([path], check) == image_checks.checked([path], check) == [((30, 40), "")]
    assert calls == ["a.png"]


@pytest.mark.parametrize("entry", [5, "no-stamp", "STAMP-no-check", "STAMP-int",
                                   "STAMP-short", "STAMP-odd", "deep"])
def test_a_damaged_or_foreign_entry_is_checked_again_never_trusted_nor_a_crash(tmp_path, kept, entry, monkeypatch):
    calls, check = kept
    monkeypatch.setattr("guidedlabelling.datasets.base.pillow_warnings", check)
    path = photo(tmp_path / "a.png")
    items = [Item("a", path, None)]
    first = readable_items(items, "tags.csv")
    (store,) = (tmp_path / "checks").glob("*.json")
    data = json.loads(store.read_text())
    stamp = data["files"]["a.png"]["stamp"]
    forms = {"no-stamp": {"check": [[30, 40], ""]}, "STAMP-no-check": {"stamp": stamp},
             "STAMP-int": {"stamp": stamp, "check": 7}, "STAMP-short": {"stamp": stamp, "check": ["x"]},
             "STAMP-odd": {"stamp": stamp, "check": [[1, 2, 3], 5]}}
    data["files"]["a.png"] = forms.get(entry, entry)
    store.write_text("[" * 100_000 if entry == "deep" else json.dumps(data))   # deep: json's RecursionError
    assert readable_items(items, "tags.csv") == first
    assert readable_items(items, "tags.csv") == first and len(calls) == 2   # kept again, whole


def test_a_failure_to_read_a_file_is_not_kept_and_a_kept_check_needs_the_file_readable(tmp_path, kept, monkeypatch):
    """Permission denied is the reader's, not the file's: a user added to the file's group since, or a cache shared
    with another user, reads it; and one that may no longer read a file is told so at open, as without kept checks,
    not by the step that loads it."""
    calls, check = kept
    monkeypatch.setattr("guidedlabelling.datasets.base.pillow_warnings", check)
    path, other = photo(tmp_path / "a.png"), photo(tmp_path / "b.png", (8, 8))
    items = [Item("a", path, None), Item("b", other, None)]
    refused = denying(path, Image.open)
    with monkeypatch.context() as denied:
        denied.setattr("guidedlabelling.datasets.base.Image.open", refused)
        kept_items, _, skipped, _ = readable_items(items, "tags.csv")
        assert kept_items == items[1:] and "Permission denied" in skipped[str(path)]
    kept_items, sizes, skipped, _ = readable_items(items, "tags.csv")
    assert kept_items == items and sizes == [(30, 40), (8, 8)] and not skipped
    with monkeypatch.context() as denied:
        denied.setattr(image_checks.os, "open", denying(path, os.open))
        denied.setattr("guidedlabelling.datasets.base.Image.open", refused)
        kept_items, _, skipped, _ = readable_items(items, "tags.csv")
        assert kept_items == items[1:] and "Permission denied" in skipped[str(path)]


@pytest.mark.parametrize("store", ["kept", "none"])
def test_checks_that_take_long_say_their_progress(tmp_path, kept, monkeypatch, capsys, store):
    """3000 photos were checked for 15 s (a 12-MP PNG: 0.3 s) before a run said anything; now a check taking more
    than SAY_AFTER_S says its progress, and one quicker says nothing."""
    if store == "none":
        monkeypatch.setenv(image_checks.ENV, "none")
    items = [Item(f"p{i}", photo(tmp_path / f"p{i}.png"), None) for i in range(3)]
    readable_items(items, "tags.csv")
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(image_checks, "SAY_AFTER_S", 0.0)
    (tmp_path / "p3.png").write_bytes(b"")
    readable_items(items + [Item("p3", tmp_path / "p3.png", None)], "tags.csv")
    assert capsys.readouterr().err.splitlines()[-1].startswith("checking the images of tags.csv: 4/4 (100%), ")
