"""Own data's tags CSV: images confined to --images (links out of it only when allowed), split values, tags
that cannot be class names, and the 255 classes a label PNG can hold."""
import os
import re
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from guidedlabelling.datasets import OwnDataset, annotated_splits
from guidedlabelling.datasets import own
from guidedlabelling.io import InputError


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "images").mkdir()
    for name in ("a.jpg", "b.png"):
        Image.fromarray(np.full((4, 6, 3), 90, np.uint8)).save(tmp_path / "images" / name)
    Image.fromarray(np.full((4, 6, 3), 10, np.uint8)).save(tmp_path / "elsewhere.jpg")
    return tmp_path


def dataset(folder, rows, split="train", **kwargs):
    return OwnDataset(folder / "images", write_tags(folder, rows), split=split, **kwargs)


def write_tags(folder, rows):
    (folder / "tags.csv").write_text("image,tags,split\n" + "\n".join(rows) + "\n")
    return folder / "tags.csv"


def test_a_link_out_of_the_folder_is_read_only_when_allowed(folder):
    (folder / "images" / "link.jpg").symlink_to(folder / "elsewhere.jpg")
    (folder / "images" / "inside.png").symlink_to(folder / "images" / "b.png")   # a link within: fine
    rows = ["link.jpg,cat,train", "inside.png,dog,train"]
    with pytest.raises(InputError, match=r"line 2: image 'link.jpg' links to .*elsewhere\.jpg, outside .*images; "
                                         r"copy the file in, or pass --set follow_symlinks=true"):
        dataset(folder, rows)
    data = dataset(folder, rows, follow_symlinks=True)
    assert data.ids == ["link", "inside"] and data.image(0)[0, 0, 0] == 10


@pytest.mark.parametrize("name", ["../elsewhere.jpg", "sub/../../elsewhere.jpg", "ABSOLUTE"])
def test_names_that_lead_out_of_the_folder(folder, name):
    name = str(folder / "elsewhere.jpg") if name == "ABSOLUTE" else name
    with pytest.raises(InputError, match=f"line 2: image '{name}' is outside .*images; name a file of that folder"):
        dataset(folder, [f"{name},cat,train", "a.jpg,dog,train"])


def test_an_absolute_path_into_the_folder_says_the_name_to_write(folder):
    with pytest.raises(InputError, match=f"line 2: image '{folder / 'images' / 'a.jpg'}' is an absolute path; names "
                                         f"are relative to {folder / 'images'}: write 'a.jpg'"):
        dataset(folder, [f"{folder / 'images' / 'a.jpg'},cat,train", "b.png,dog,train"])


def test_a_name_matches_a_file_whose_accents_are_written_otherwise(folder):
    """macOS writes é in a file name as e + a combining accent, a spreadsheet as one letter: the row names the file,
    with or without its extension, and the id is the file's stem."""
    decomposed = "vache_e\u0301te\u0301"
    shutil.copy(folder / "images" / "a.jpg", folder / "images" / f"{decomposed}.jpg")
    composed = unicodedata.normalize("NFC", decomposed)
    for name in (f"{composed}.jpg", composed):
        assert dataset(folder, [f"{name},cat,train", "b.png,dog,train"]).ids == [decomposed, "b"]


def test_a_name_matches_a_file_in_folders_whose_accents_are_written_otherwise(folder):
    """Folders copied from a Mac (Été/, its É and é each a letter and a combining accent) and a CSV written as one
    letter each: the row names the file there, with or without its extension, however the file's own name is
    written; the error said the image was not in the folder and that the path it holds was there."""
    outer, inner = "E\u0301te\u0301", "vache_e\u0301te\u0301"
    (folder / "images" / outer / inner).mkdir(parents=True)
    shutil.copy(folder / "images" / "a.jpg", folder / "images" / outer / inner / "a.jpg")
    shutil.copy(folder / "images" / "a.jpg", folder / "images" / outer / f"{inner}.jpg")
    for name, found in ((f"{inner}/a.jpg", f"{inner}/a.jpg"), (f"{inner}/a", f"{inner}/a.jpg"),
                        (f"{inner}.jpg", f"{inner}.jpg"), (inner, f"{inner}.jpg")):
        row = unicodedata.normalize("NFC", f"{outer}/{name}")
        data = dataset(folder, [f"{row},cat,train", "b.png,dog,train"])
        assert data.items[0].image == folder / "images" / outer / found
        assert not data.unlisted or found not in data.unlisted[0]


def test_names_that_lead_out_of_a_relative_folder(folder, monkeypatch):
    monkeypatch.chdir(folder / "images")
    (folder / "tags.csv").write_text("image,tags,split\nsub/../../elsewhere.jpg,cat,train\na.jpg,dog,train\n")
    with pytest.raises(InputError, match="line 2: image 'sub/../../elsewhere.jpg' is outside"):
        OwnDataset(".", folder / "tags.csv", split="train", follow_symlinks=True)


def test_a_name_through_a_subfolder_that_stays_inside_is_its_file(folder):
    """sub/../a.jpg is a.jpg (the probe's case: it was called outside), even with no folder sub."""
    assert dataset(folder, ["sub/../a.jpg,cat,train", "b.png,dog,train"]).ids == ["a", "b"]


def test_split_values_any_case_empty_means_by_name_others_are_errors(folder):
    rows = ["a.jpg,cat,Val", "b.png,cat dog,"]   # b: sha1('b') mod 100 = 20, not below val_percent 20: train
    assert dataset(folder, rows, "val").ids == ["a"] and dataset(folder, rows, "train").ids == ["b"]
    with pytest.raises(InputError, match=r"line 3: split 'test' is not train or val; write train or val, or leave it "
                                         r"empty"):
        dataset(folder, ["a.jpg,cat,val", "b.png,dog,test"])


@pytest.mark.parametrize("row, odd", [('a.jpg,"cat|dog",train', "'\\|'"), ("a.jpg,cat's,train", "\"'\""),
                                      ('a.jpg,"cat""",train', "'\"'"), ("a.jpg,\u201ccat dog\u201d,train", "'\u201d'"),
                                      ("a.jpg,\u2018cat\u2019,train", "'\u2018'"),
                                      ("a.jpg,\u00abcat\u00bb,train", "'\u00ab'"),
                                      ("a.jpg,\u732b\uff0c\u72ac,train", "'\uff0c'"),
                                      ("a.jpg,\u732b\u3001\u72ac,train", "'\u3001'")])
def test_tags_with_quotes_or_bars_are_errors(folder, row, odd):
    """Typographic quotes (a word processor's: “cat dog” made the classes “cat and dog”) and the commas of Chinese
    and Japanese text (猫，犬 one class) too."""
    with pytest.raises(InputError, match=f"line 2: tag .* holds {odd}; separate tags by spaces, ';' or ','"):
        dataset(folder, [row])


def test_at_most_255_classes(folder):
    tags = " ".join(f"t{k:03d}" for k in range(254))
    assert dataset(folder, [f"a.jpg,{tags},train"]).num_classes == 255   # background + 254: values 0..254
    with pytest.raises(InputError, match=r"tags.csv: 256 classes \(background included\); label PNGs hold at most "
                                         r"255 \(values 0..254, 255 = void\); merge tags"):
        dataset(folder, [f"a.jpg,{tags} t254,train"])


def masks(folder, values):
    """Label PNGs (4x6, the fixture images' size) filled with one class value each: {id: value}."""
    (folder / "masks").mkdir(exist_ok=True)
    for image_id, value in values.items():
        Image.fromarray(np.full((4, 6), value, np.uint8)).save(folder / "masks" / f"{image_id}.png")
    return folder / "masks"


def test_a_class_tagged_in_no_training_image_is_an_error(folder):
    """The only cat image in val (or unreadable in train): no training image teaches cat."""
    with pytest.raises(InputError, match=r"tags.csv: class 'cat' is tagged in no readable training image \(only in "
                                         r"a.jpg \(line 2, val\)\), so nothing would learn it; give one of its images "
                                         r"split train"):
        dataset(folder, ["a.jpg,cat,val", "b.png,dog,train"])
    assert dataset(folder, ["a.jpg,cat,val", "b.png,dog,train"], "val").ids == ["a"]   # val alone: nothing to train
    (folder / "images" / "a.jpg").write_bytes(b"not an image")
    with pytest.raises(InputError, match=r"class 'cat' is tagged in no readable training image \(only in a.jpg "
                                         r"\(line 2, unreadable: "):
        dataset(folder, ["a.jpg,cat,train", "b.png,dog,train"])


def test_a_class_of_unreadable_training_images_alone_says_why_they_are_unreadable(folder):
    """The error stops the run before the skipped images are listed: it says why its image is unreadable, and to
    replace it (not only to move an image to train, which it is in)."""
    (folder / "images" / "a.jpg").write_bytes(b"")
    with pytest.raises(InputError, match=r"class 'cat' is tagged in no readable training image \(only in a.jpg "
                                         r"\(line 2, unreadable: an empty file \(0 bytes\)\)\), so nothing would "
                                         r"learn it; replace its unreadable images, give one"):
        dataset(folder, ["a.jpg,cat,train", "b.png,dog,train"])


def test_a_mask_holding_a_class_its_row_does_not_tag_is_an_error(folder):
    """Masks numbered in another class order than background + the sorted tags: cat is 1, dog 2 here."""
    ok = {"a": 1, "b": 2}
    data = dataset(folder, ["a.jpg,cat,train", "b.png,dog,train"], masks=masks(folder, ok))
    assert [np.unique(data.label(i)).tolist() for i in range(2)] == [[1], [2]]
    with pytest.raises(InputError) as e:
        dataset(folder, ["a.jpg,cat,train", "b.png,dog,train"], masks=masks(folder, {"a": 2, "b": 1}))
    assert [m.split(": ", 1)[1] for m in e.value.messages] == [   # both masks, in one error
        "holds dog (2) on 100%% of its pixels, which line 2 of %s does not tag (cat); mask values follow the classes "
        "background + the sorted tags (0 background, 1 cat, 2 dog), and a tag new to the CSV moves up the classes "
        "sorted after it: fix the mask or the tags" % (folder / "tags.csv"),
        "holds cat (1) on 100%% of its pixels, which line 3 of %s does not tag (dog); mask values follow the classes "
        "background + the sorted tags (0 background, 1 cat, 2 dog), and a tag new to the CSV moves up the classes "
        "sorted after it: fix the mask or the tags" % (folder / "tags.csv")]
    assert e.value.messages[0].startswith(f"{folder / 'masks' / 'a.png'}: ")
    masks(folder, {"a": 0, "b": 255})   # a tagged class the mask lacks (too small to draw, all void): allowed
    assert len(dataset(folder, ["a.jpg,cat,train", "b.png,dog cat,train"], masks=folder / "masks")) == 2


def test_a_mask_error_spells_out_the_classes_it_names_past_the_first_twelve(folder):
    """Of 17 classes, the first twelve and those of the row and of the mask: a tag new to the CSV moves the classes
    sorted after it up by one, so a mask written before holds its row's t14 (now 15) as 14, t13."""
    tags = " ".join(f"t{k:02d}" for k in range(16))
    with pytest.raises(InputError) as e:
        dataset(folder, [f"a.jpg,{tags},train", "b.png,t14,train"], masks=masks(folder, {"a": 1, "b": 14}))
    assert "(0 background, 1 t00, 2 t01, 3 t02, 4 t03, 5 t04, 6 t05, 7 t06, 8 t07, 9 t08, 10 t09, 11 t10, ... 14 " \
        "t13, 15 t14, ...), and a tag new to the CSV moves up the classes sorted after it" in e.value.messages[0]
    with pytest.raises(InputError) as e:
        dataset(folder, [f"a.jpg,{tags},train", "b.png,t15,train"], masks=masks(folder, {"a": 1, "b": 14}))
    assert "11 t10, ... 14 t13, ... 16 t15), and" in e.value.messages[0]


def test_a_few_pixels_of_an_untagged_class_pass_from_one_percent_they_do_not(folder):
    """The seam of a mask resized with interpolation: between cat (1) and 3, a thin line of 2."""
    for name in ("a.jpg", "b.png"):
        Image.fromarray(np.full((100, 60, 3), 90, np.uint8)).save(folder / "images" / name)
    (folder / "masks").mkdir()
    seam = np.full((100, 60), 1, np.uint8)
    seam.flat[:59] = 2   # 59 of 6000 pixels: 0.98%
    Image.fromarray(seam).save(folder / "masks" / "a.png")
    Image.fromarray(np.full((100, 60), 2, np.uint8)).save(folder / "masks" / "b.png")
    rows = ["a.jpg,cat,train", "b.png,dog,train"]
    assert np.count_nonzero(dataset(folder, rows, masks=folder / "masks").label(0) == 2) == 59  # kept as it is
    seam.flat[59] = 2    # 60: 1%
    Image.fromarray(seam).save(folder / "masks" / "a.png")
    with pytest.raises(InputError, match=r"a.png: holds dog \(2\) on 1% of its pixels, which line 2"):
        dataset(folder, rows, masks=folder / "masks")


def test_every_missing_image_and_mask_is_reported_at_once(folder):
    rows = ["a.jpg,cat,train", "gone.jpg,cat,train", "b.png,dog,train", "lost.png,dog,train"]
    with pytest.raises(InputError) as e:
        dataset(folder, rows)
    assert [m.split(": ", 1)[0] for m in e.value.messages] == [f"{folder / 'tags.csv'}, line 3",
                                                               f"{folder / 'tags.csv'}, line 5"]
    (folder / "masks").mkdir()   # no mask at all: the folder is named, not each image (without one: unannotated)
    with pytest.raises(InputError) as e:
        dataset(folder, rows[::2], masks=folder / "masks")
    assert [m.split(": ", 1)[0] for m in e.value.messages] == [str(folder / "masks")]
    masks(folder, {"a": 7, "b": 2})   # a missing image and a bad mask of another row: both
    with pytest.raises(InputError) as e:
        dataset(folder, rows[:3], masks=folder / "masks")
    assert [m.split(": ", 1)[0] for m in e.value.messages] == [f"{folder / 'tags.csv'}, line 3",
                                                               str(folder / "masks" / "a.png")]
    many = [f"x{k}.jpg,cat,train" for k in range(12)]
    with pytest.raises(InputError) as e:
        dataset(folder, many)
    assert len(e.value.messages) == 11 and e.value.messages[-1] == f"{folder / 'tags.csv'}: 2 more problems"
    (folder / "images" / "b.png").write_bytes(b"not an image")   # none readable: with the missing row still
    with pytest.raises(InputError) as e:
        dataset(folder, ["b.png,dog,train", "gone.jpg,dog,train"])
    assert [m.split(": ", 1)[0] for m in e.value.messages] == [f"{folder / 'tags.csv'}, line 3",
                                                               str(folder / "tags.csv")]
    assert "its one image cannot be read" in e.value.messages[1]


def test_a_class_without_training_image_is_reported_with_the_other_problems(folder):
    with pytest.raises(InputError) as e:
        dataset(folder, ["a.jpg,cat,val", "b.png,dog,train", "gone.jpg,dog,train"])
    starts = [m.split(": ", 1)[1][:24] for m in e.value.messages]
    assert starts == ["image 'gone.jpg' is not ", "class 'cat' is tagged in"]


def test_an_image_named_like_a_stage_file_is_an_error(folder):
    """seed_heatmaps writes cls_res.mat beside the per-image <id>.mat: an image cls_res would be overwritten."""
    for name in ("cls_res", "CLS_Res"):   # the second: cls_res.mat on a case-insensitive file system
        (folder / "images" / "b.png").rename(folder / "images" / f"{name}.png")
        with pytest.raises(InputError, match=f"line 3: image id '{name}' is the name of a file the stages write "
                                             r"beside the per-image files \(seed_heatmaps' class scores, cls_res.mat"):
            dataset(folder, ["a.jpg,cat,train", f"{name}.png,dog,train"])
        (folder / "images" / f"{name}.png").rename(folder / "images" / "b.png")


@pytest.mark.parametrize("tag", ["background", "Background", "BACKGROUND"])
def test_background_in_any_case_is_not_a_tag(folder, tag):
    with pytest.raises(InputError, match=f"line 2: '{tag}' is not a tag \\(background is class 0\\); remove it"):
        dataset(folder, [f"a.jpg,cat {tag},train"])


def test_photos_without_a_row_and_rows_without_tags_are_noted_once_per_tags_file(folder, capsys):
    from guidedlabelling.driver import print_data_notes
    Image.fromarray(np.full((4, 6, 3), 90, np.uint8)).save(folder / "images" / "c.png")
    (folder / "images" / "notes.txt").write_text("not a photo")   # not an image suffix: not counted
    rows = ["a.jpg,cat,train", "b.png,,train"]
    train, val = dataset(folder, rows), dataset(folder, rows + ["c.png,cat,val"], "val")
    assert (train.unlisted, train.untagged, val.unlisted) == (["c.png"], [3], [])
    print_data_notes([train, ["not a dataset"], dataset(folder, rows, "train")])   # train twice: one note each
    assert capsys.readouterr().out.splitlines() == [
        f"classes of {folder / 'tags.csv'}: 0 background, 1 cat",
        f"note: 1 tag of {folder / 'tags.csv'} names one training image only: cat (line 2); a class of one training "
        "image is hardly learnt, and a misspelt tag makes one: correct any misspelling, or tag more training images "
        "with it",
        f"note: 1 image of {folder / 'images'} has no row in {folder / 'tags.csv'} and is not used (c.png); add "
        "rows to use it",
        f"note: 1 row of {folder / 'tags.csv'} has no tags, so its photo is trained as background only (line 3)"]
    print_data_notes([val])   # cat on two rows, one of them val: still one training image
    assert capsys.readouterr().out.splitlines()[1].startswith(
        f"note: 1 tag of {folder / 'tags.csv'} names one training image only: cat (line 2)")
    print_data_notes([dataset(folder, rows + ["c.png,cat,train"])])   # two training images
    assert capsys.readouterr().out.splitlines() == [
        f"classes of {folder / 'tags.csv'}: 0 background, 1 cat",
        f"note: 1 row of {folder / 'tags.csv'} has no tags, so its photo is trained as background only (line 3)"]


def test_a_quoted_cell_of_tags_separated_by_commas_is_read_as_its_tags(folder):
    """A spreadsheet writes a cell 'cat, dog' as "cat, dog": two tags, as 'cat dog' and 'cat;dog' are."""
    data = dataset(folder, ['a.jpg,"cat, dog",train', 'b.png,"dog,cat;cow",train'])
    assert data.classes == ["background", "cat", "cow", "dog"] and data.image_classes(0) == [1, 3]


def test_tags_always_named_together_are_noted(folder, capsys):
    """'Traffic sign' is two tags; two tags of the same rows and no other are noted, from two rows on."""
    from guidedlabelling.driver import print_data_notes
    for name in ("c.png", "d.png"):
        Image.fromarray(np.full((4, 6, 3), 90, np.uint8)).save(folder / "images" / name)
    data = dataset(folder, ["a.jpg,Traffic sign,train", "b.png,cat,train", "c.png,sign Traffic cat,train",
                            "d.png,cat dog,train"])
    assert data.same_rows == [(["Traffic", "sign"], [2, 4])]   # cat is also on lines 3 and 5; dog on one row only
    print_data_notes([data])
    assert f"note: Traffic and sign are tagged in the same 2 rows of {folder / 'tags.csv'} and in no other (lines 2, "\
        "4), so tags alone cannot tell them apart; if they are one class of 2 words, join them with _ (a space " \
        "separates tags)" in capsys.readouterr().out.splitlines()
    assert dataset(folder, ["a.jpg,Traffic sign,train", "b.png,cat,train"]).same_rows == []   # one row: no note
    data = dataset(folder, ["a.jpg,New York City,train", "b.png,cat,train", "c.png,New York City,train"])
    assert data.same_rows == [(["City", "New", "York"], [2, 4])]   # one note for the three, not one per pair


@pytest.mark.parametrize("name", ["sub\\c.jpg", "sub\\c"])
def test_a_name_written_with_backslashes_says_to_write_slashes(folder, name):
    (folder / "images" / "sub").mkdir()
    shutil.copy(folder / "images" / "a.jpg", folder / "images" / "sub" / "c.jpg")
    with pytest.raises(InputError, match=f"line 3: image {re.escape(repr(name))} is not in .*images; "
                                         f"{name.replace(chr(92), '/')} is there: write / between folders, or add it"):
        dataset(folder, ["a.jpg,cat,train", f"{name},cat,train"])


def test_image_ids_that_differ_only_in_case_or_accents_are_noted(folder, capsys):
    """sub/A.jpg and a.jpg, or é encoded two ways: their outputs (A.png, a.png) are one file on a disk that ignores
    case or accent encoding (macOS's), the second overwriting the first. Legitimate ids elsewhere (base62): a note."""
    from guidedlabelling.driver import print_data_notes
    (folder / "images" / "sub").mkdir()
    shutil.copy(folder / "images" / "a.jpg", folder / "images" / "sub" / "A.jpg")
    composed, decomposed = "\u00e9t\u00e9", "e\u0301te\u0301"
    shutil.copy(folder / "images" / "a.jpg", folder / "images" / "sub" / f"{composed}.jpg")
    shutil.copy(folder / "images" / "a.jpg", folder / "images" / f"{decomposed}.jpg")
    data = dataset(folder, ["a.jpg,cat,train", "sub/A.jpg,cat,train", f"sub/{composed}.jpg,cat,train",
                            f"{decomposed}.jpg,cat,train"])
    assert len(data) == 4 and data.alike_ids == [(3, "A", 2, "a"), (5, decomposed, 4, composed)]
    print_data_notes([data])
    assert f"note: 2 image ids of {folder / 'tags.csv'} differ from another only in case or in how an accent is " \
        f"encoded: A (line 3) and a (line 2), {decomposed} (line 5) and {composed} (line 4); outputs are named by " \
        "id, so on a disk that ignores case" in capsys.readouterr().out
    assert dataset(folder, ["a.jpg,cat,train", f"sub/{composed}.jpg,cat,train"]).alike_ids == []


def test_tags_of_one_row_are_noted_as_possible_misspellings(folder):
    """cwo, written for cow once, is a class of one image; so is zebra. Tags of two rows or more are not named."""
    for name in ("c.png", "d.png"):
        Image.fromarray(np.full((4, 6, 3), 90, np.uint8)).save(folder / "images" / name)
    data = dataset(folder, ["a.jpg,cow,train", "b.png,cow sheep,train", "c.png,cwo sheep,train", "d.png,zebra,train"])
    assert data.tagged_once == {"cwo": 4, "zebra": 5} and data.classes == ["background", "cow", "cwo", "sheep",
                                                                          "zebra"]


def test_a_mask_is_found_whose_accents_are_written_otherwise(folder):
    """A photo named by macOS (e + a combining accent) and its mask by another program (é as one letter): the mask
    is the photo's, as a row finds its photo; the one-line note names the images without a mask."""
    decomposed = "vache_e\u0301te\u0301"
    (folder / "images" / "a.jpg").rename(folder / "images" / f"{decomposed}.jpg")
    (folder / "masks").mkdir()
    composed = unicodedata.normalize("NFC", decomposed)
    Image.fromarray(np.ones((4, 6), np.uint8)).save(folder / "masks" / f"{composed}.png")
    data = dataset(folder, [f"{decomposed}.jpg,cat,train", "b.png,cat,train"], masks=folder / "masks")
    assert data.annotated == 1 and data.unannotated == ["b"]
    assert (data.label(0) == 1).all()


def test_masks_whose_objects_are_void_are_an_error_when_most_are(folder):
    """0/255 masks (Weizmann's, DAVIS'): the objects are void, and no mask holds its tagged class: an error where
    they are most of the split's tagged masks and three or more. Masks all void (not annotated) are not this."""
    rows = [f"{k}.png,cat,train" for k in "abcd"]
    for k in "abcd":
        Image.fromarray(np.full((4, 6, 3), 90, np.uint8)).save(folder / "images" / f"{k}.png")
    object_as_void = np.where(np.arange(24).reshape(4, 6) < 12, 0, 255).astype(np.uint8)

    def write(void_objects, other):
        for k in "abcd":
            mask = object_as_void if k in void_objects else np.full((4, 6), other, np.uint8)
            Image.fromarray(mask).save(folder / "masks" / f"{k}.png")
        return dataset(folder, rows, masks=folder / "masks")
    (folder / "masks").mkdir()
    with pytest.raises(InputError) as e:
        write("bcd", 1)
    assert list(e.value.messages) == [
        f"{folder / 'masks'}: most masks of tagged images hold no pixel of the classes their rows tag; objects take "
        "their class's value 1..1 in the order background + the sorted tags, and 255 is void (a 0/255 mask of one "
        "class needs its 255 written as 1)"]
    assert len(write("", 255)) == 4      # all void: images left unannotated
    assert len(write("ab", 255)) == 4    # two 0/255 masks: under three
    assert len(write("cd", 1)) == 4      # two of four: objects too small to draw, left void


def test_a_class_tagged_in_every_training_image_is_noted(folder, capsys):
    """A set of horses alone: no training image without the class, so the classifier has nothing to tell it from
    background. A val image without it does not help; a training image without it (of no tags) does."""
    from guidedlabelling.driver import print_data_notes
    Image.fromarray(np.full((4, 6, 3), 90, np.uint8)).save(folder / "images" / "c.png")
    rows = ["a.jpg,horse,train", "b.png,horse rider,train"]
    train = dataset(folder, rows + ["c.png,,val"])
    assert train.always_tagged == ["horse"] and dataset(folder, rows + ["c.png,,val"], "val").always_tagged == []
    print_data_notes([train])
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"note: horse is tagged in every training image of {folder / 'tags.csv'} (2): with no image without it, the "
        "classifier is not taught what tells it from background, so its class maps and seeds are weak; add photos "
        "without it (rows of other tags or of none)")
    assert dataset(folder, rows + ["c.png,,train"]).always_tagged == []


def test_a_class_tagged_in_no_val_image_is_noted(folder, capsys):
    """A hash split put all of a class's photos in train: the test on val measures nothing of it (its IoU n/a, its
    'found' count unchecked), and nothing said so. The val split's notes name it; train's do not, nor a val split
    that holds it."""
    from guidedlabelling.driver import print_data_notes
    for k in "cd":
        Image.fromarray(np.full((4, 6, 3), 90, np.uint8)).save(folder / "images" / f"{k}.png")
    rows = ["a.jpg,horse,train", "b.png,horse rider,train", "c.png,cat,train", "d.png,horse,val"]
    val = dataset(folder, rows, "val")
    assert val.untested == ["cat", "rider"] and dataset(folder, rows).untested == []
    print_data_notes([val])
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"note: cat and rider are tagged in no val image of {folder / 'tags.csv'} (1 val image), so the test "
        "measures nothing of them; put some of their rows in val (a split column: image,tags,split)")
    assert dataset(folder, rows[:3] + ["d.png,cat horse rider,val"], "val").untested == []


def test_spreadsheet_shapes_of_the_csv_are_read(folder):
    """A space before a quoted field, empty columns after the last (Excel), and an image in a subfolder named
    without its extension."""
    (folder / "images" / "holiday").mkdir()
    Image.fromarray(np.full((4, 6, 3), 90, np.uint8)).save(folder / "images" / "holiday" / "c.jpeg")
    (folder / "tags.csv").write_text('image,tags,split,,\n a.jpg , "cat dog" ,train,,\n"b.png",cat,,,\n'
                                     'holiday/c,dog,train\n')
    data = OwnDataset(folder / "images", folder / "tags.csv", split="train", val_percent=0)
    assert data.ids == ["a", "b", "c"] and data.classes == ["background", "cat", "dog"]
    assert [data.image_classes(i) for i in range(3)] == [[1, 2], [1], [2]]
    assert data.items[2].image == folder / "images" / "holiday" / "c.jpeg"
    with pytest.raises(InputError, match="line 2: expected 3 fields"):   # not empty: still a problem
        dataset(folder, ["a.jpg,cat,train,x"])
    Image.fromarray(np.full((4, 6, 3), 90, np.uint8)).save(folder / "images.jpg")   # beside the folder
    for name in (".", "holiday/.."):   # the folder itself: not images.jpg beside it
        with pytest.raises(InputError, match=f"line 2: image '{re.escape(name)}' is outside .*images; name a file"):
            dataset(folder, [f"{name},cat,train"], follow_symlinks=True)


def test_an_empty_split_says_which_fix_fits(folder):
    with pytest.raises(InputError, match="no images in split val; give some rows split val$"):
        dataset(folder, ["a.jpg,cat,train", "b.png,dog,train"], "val")
    (folder / "tags.csv").write_text("image,tags\na.jpg,cat\n")
    with pytest.raises(InputError, match=r"no images in split val; add a split column \(train/val\) or more images"):
        OwnDataset(folder / "images", folder / "tags.csv", split="val", val_percent=0)
    (folder / "tags.csv").write_text("image,tags,split\na.jpg,cat,\n")   # the column, no value: split by name
    with pytest.raises(InputError, match="no images in split val; give some rows split val$"):
        OwnDataset(folder / "images", folder / "tags.csv", split="val", val_percent=0)


def test_an_image_without_a_mask_is_not_annotated(folder):
    """Its label is all void (left out of every score); annotated counts the split's masks, and annotated_splits
    tells from the file names alone which splits have one."""
    masks(folder, {"b": 1})
    rows = ["a.jpg,cat,train", "b.png,cat,val"]
    train, val = dataset(folder, rows, masks=folder / "masks"), dataset(folder, rows, "val", masks=folder / "masks")
    assert (train.annotated, val.annotated) == (0, 1)
    np.testing.assert_array_equal(train.label(0), np.full((4, 6), 255, np.uint8))
    np.testing.assert_array_equal(val.label(0), np.full((4, 6), 1, np.uint8))
    d = {"images": folder / "images", "tags": folder / "tags.csv", "masks": folder / "masks", "val_percent": 20}
    assert annotated_splits(d) == {"val"} and annotated_splits(d | {"masks": None}) == set()
    masks(folder, {"a": 1})
    (folder / "tags.csv").write_text("image,tags\nsub/a,cat\nb.png,cat\n")   # ids of rows without their suffix too
    assert annotated_splits(d | {"val_percent": 0}) == {"train"}
    from guidedlabelling.driver import annotated_or_all
    (folder / "other").mkdir()
    assert annotated_or_all(d | {"masks": folder / "other"}) == {"train", "val"}   # no mask matches: the preflight


def test_every_bad_row_of_the_csv_is_named_at_once(folder):
    rows = ["a.jpg,cat,train", "b.png,cat,test", "a.jpg,cat,dog,train", "b.png", ",cat,train", "a.jpg,cat,validation"]
    with pytest.raises(InputError) as e:
        dataset(folder, rows)
    assert [m.split(": ", 1)[0].rsplit(", ", 1)[1] for m in e.value.messages] == \
        ["line 3", "line 4", "line 5", "line 6", "line 7"]
    assert "split 'test' is not train or val" in e.value.messages[0]
    assert "separate tags by spaces or ';', or quote them (\"cat, dog\")" in e.value.messages[1]
    assert "got ['b.png']; write the image's tags after a comma" in e.value.messages[2]
    assert "line 6: no image named" in e.value.messages[3]


def test_a_row_may_leave_out_an_empty_split(folder):
    """image,tags under the header image,tags,split: its split is by name, as with an empty third field."""
    assert dataset(folder, ["a.jpg,cat", "b.png,dog,"], val_percent=0).ids == ["a", "b"]


def test_an_unclosed_quote_names_the_line_it_opens_on(folder):
    with pytest.raises(InputError) as e:
        dataset(folder, ["a.jpg,cat,train", '"b.png,dog,train', "c.jpg,cat,train", "d.jpg,dog,train"])
    assert e.value.messages == (f"{folder / 'tags.csv'}, line 3: a quoted field runs on to line 5; write each row on "
                                "one line (a cell with a line break, or a quote left open)",)
    (folder / "tags.csv").write_text('image,tags\n"a.jpg' + "x" * 200_000 + "\n")   # past csv's field limit
    with pytest.raises(InputError, match=r"tags.csv, line \d+: field larger than field limit .*; close the quote"):
        OwnDataset(folder / "images", folder / "tags.csv", split="train")


def test_tags_that_print_alike_are_an_error(folder):
    composed, decomposed = "caf\u00e9", "cafe\u0301"   # é as one character, and as e + a combining accent
    with pytest.raises(InputError, match="line 3: tag 'cafe\u0301' differs only in how an accent is written "
                                         "\\(composed or not\\) from 'caf\u00e9' \\(line 2\\)"):
        dataset(folder, [f"a.jpg,{composed},train", f"b.png,{decomposed},train"])
    assert dataset(folder, [f"a.jpg,{decomposed},train", "b.png,dog,train"]).classes[1] == decomposed   # as written
    for invisible, code in (("cat\u200b", "U+200B"), ("ca\x00t", "U+0000")):
        with pytest.raises(InputError, match=f"line 2: tag .* holds the invisible character {re.escape(code)}; "
                                             "remove it"):
            dataset(folder, [f"a.jpg,{invisible},train", "b.png,cat,train"])
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647"   # a zero-width non-joiner is a letter of its word
    assert persian in dataset(folder, [f"a.jpg,{persian},train", "b.png,dog,train"]).classes


@pytest.mark.parametrize("name, hint", [
    ("sub", "sub is a folder there, not an image: name a file, or add it or remove the row"),
    ("gone.jpg", "gone.jpg is a link to nowhere.jpg, which does not exist: mend it, or add it or remove the row"),
    ("pipe.jpg", "pipe.jpg is a named pipe, a socket or a device there, not a file: put the image in its place, or "
                 "add it"),
    ("a.png", "a.jpg is there, with another extension: write it so, or add it or remove the row"),
    ("A.JPG", "a.jpg is there, and names are case-sensitive: write it so, or add it or remove the row"),
    ("images/a.jpg", "a.jpg is there: names are relative to {images}, so write it so, or add it or remove the row"),
    ("images/a", "a is there: names are relative to {images}, so write it so, or add it"),
    ("IMG_1", "IMG_1.HEIC is there, but a name without extension finds only .jpg, .jpeg and .png files: save it as "
              "JPEG or PNG, or add it or remove the row"),
    ("IMG_2", "IMG_2.tif is there, but a name without extension finds only .jpg, .jpeg and .png files: write "
              "IMG_2.tif (Pillow reads it), or add it"),
    ("ghost.jpg", "image 'ghost.jpg' is not in")])
def test_a_row_naming_no_image_file_says_what_is_there(folder, name, hint):
    """What a row that names no image file likely meant: a folder, a broken link, another extension or case, a
    path written from the CSV's folder, a file of a type that a name without extension does not find."""
    (folder / "images" / "sub").mkdir()
    (folder / "images" / "gone.jpg").symlink_to("nowhere.jpg")
    os.mkfifo(folder / "images" / "pipe.jpg")   # (it said 'pipe.jpg is there, and names are case-sensitive')
    (folder / "images" / "IMG_1.HEIC").write_bytes(b"x")
    (folder / "images" / "IMG_2.tif").write_bytes(b"x")
    hint = hint.format(images=folder / "images")
    with pytest.raises(InputError) as e:
        dataset(folder, [f"{name},cat,train", "b.png,dog,train"])
    message, = e.value.messages
    assert message.startswith(f"{folder / 'tags.csv'}, line 2: image '{name}' is not in") and hint in message
    assert message.endswith(f"{folder / 'images'}; add it or remove the row") == (name == "ghost.jpg")


@pytest.mark.parametrize("name, hint", [
    ("IMG_1.jpg", "2024/IMG_1.jpg is there: an image in a subfolder is named by its path from {images}: write it "
                  "so, or add it"),
    ("IMG_1", "2024/IMG_1.jpg is there: an image in a subfolder is named by its path from {images}"),
    ("IMG_2.jpg", "2023/IMG_2.jpg, 2024/IMG_2.jpg are there: an image in a subfolder is named by its path"),
    ("Trip/x.jpg", "trip/x.jpg is there, and names are case-sensitive: write it so, or add it"),
    ("TRIP/X", "trip/x.jpg is there, and names are case-sensitive"),
    ("ghost.jpg", "image 'ghost.jpg' is not in {images}; add it or remove the row")])
def test_a_row_naming_an_image_of_a_subfolder_says_where_it_is(folder, name, hint):
    """Photos exported in folders by date and a CSV of their names: the error said the image was not in the folder,
    which holds it; so for a folder's name in another case."""
    for path in ("2024/IMG_1.jpg", "2024/IMG_2.jpg", "2023/IMG_2.jpg", "trip/x.jpg", ".hidden/ghost.jpg"):
        (folder / "images" / path).parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((4, 6, 3), 90, np.uint8)).save(folder / "images" / path)
    with pytest.raises(InputError) as e:
        dataset(folder, [f"{name},cat,train", "b.png,dog,train"])
    message, = e.value.messages
    assert message.startswith(f"{folder / 'tags.csv'}, line 2: image '{name}' is not in {folder / 'images'}; ")
    assert hint.format(images=folder / "images") in message


def test_a_masks_folder_of_no_id_png_names_the_masks_saved_otherwise(folder):
    """Masks named a.PNG (a Windows tool's) or saved as JPEG are no <id>.png: the error names them, where it said
    only to name each mask as its image's id, which they were."""
    write_tags(folder, ["a.jpg,cat,train", "b.png,dog,train"])
    (folder / "masks").mkdir()
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(folder / "masks" / "a.PNG")
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(folder / "masks" / "b.jpg")
    (folder / "masks" / "notes.txt").write_text("x")
    with pytest.raises(InputError) as e:
        OwnDataset(folder / "images", folder / "tags.csv", masks=folder / "masks")
    assert e.value.messages == (f"{folder / 'masks'}: no mask of the CSV's images (<id>.png), but a.PNG, b.jpg there; "
                                "save or rename each as a PNG named <id>.png (its extension in lower case), or leave "
                                "out --masks to run without evaluation",)
    (folder / "masks" / "a.PNG").rename(folder / "images" / "a.PNG")   # beside JPEG photos: not the photos named
    shutil.copy(folder / "images" / "a.jpg", folder / "images" / "c.jpg")
    write_tags(folder, ["a.jpg,cat,train", "c.jpg,dog,train"])
    with pytest.raises(InputError, match=r"images: no mask of the CSV's images \(<id>.png\), but a.PNG there; "):
        OwnDataset(folder / "images", folder / "tags.csv", masks=folder / "images")


def test_a_file_given_as_a_folder_and_a_jpeg_mask_are_named_as_such(folder):
    dataset(folder, ["a.jpg,cat,train", "b.png,dog,train"])
    with pytest.raises(InputError, match=r"tags.csv: a file, not an image folder; pass --images"):
        OwnDataset(folder / "tags.csv", folder / "tags.csv")
    with pytest.raises(InputError, match=r"elsewhere.jpg: a file, not a masks folder; pass --masks"):
        OwnDataset(folder / "images", folder / "tags.csv", masks=folder / "elsewhere.jpg")
    with pytest.raises(InputError, match=r"missing: masks folder not found; pass --masks"):
        OwnDataset(folder / "images", folder / "tags.csv", masks=folder / "missing")
    (folder / "masks").mkdir()
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(folder / "masks" / "a.png", format="JPEG")
    with pytest.raises(InputError, match=r"a.png: a JPEG file, not a PNG; save the labels as PNG \(lossless\)"):
        OwnDataset(folder / "images", folder / "tags.csv", masks=folder / "masks")


def test_masks_beside_their_photos_are_masks_not_images_without_a_row(folder):
    """The probe's case, --masks the images' folder: the masks were noted as images without a row, to add rows for;
    a row's id matched two files without a word on why; and a PNG photo would be its own mask."""
    Image.fromarray(np.full((4, 6), 1, np.uint8)).save(folder / "images" / "a.png")   # a.jpg's mask
    data = dataset(folder, ["a.jpg,cat,train"], masks=folder / "images")
    assert data.unlisted == ["b.png"] and data.items[0].label == folder / "images" / "a.png"
    with pytest.raises(InputError) as e:
        dataset(folder, ["a,cat,train"], masks=folder / "images")
    assert e.value.messages[0].endswith("'a' matches ['a.jpg', 'a.png'] (the masks folder is this one: a .png is its "
                                        "mask); name the file with its extension")
    with pytest.raises(InputError) as e:
        dataset(folder, ["a.jpg,cat,train", "b.png,dog,train"], masks=folder / "images")
    assert e.value.messages[0] == f"{folder / 'tags.csv'}, line 3: image 'b.png' is also its own mask, the masks " \
        "folder being the images folder; keep the masks in a folder of their own"


def test_a_masks_folder_inside_the_images_one_is_left_out_through_a_link_too(folder):
    (folder / "images" / "masks").mkdir()
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(folder / "images" / "masks" / "a.png")
    (folder / "link").symlink_to(folder / "images")
    data = OwnDataset(folder / "link", write_tags(folder, ["a.jpg,cat,train", "b.png,dog,train"]),
                      masks=folder / "images" / "masks")
    assert data.unlisted == []


def test_photos_of_subfolders_without_a_row_are_counted_but_not_masks_or_hidden_ones(folder):
    """A row may name sub/x.png, so the photos of subfolders that no row names are noted too; a masks folder inside
    the images' one holds no photos, nor does a hidden one."""
    photo = Image.fromarray(np.full((4, 6, 3), 90, np.uint8))
    for sub in ("cats", "cats/old", "masks", ".thumbs"):
        (folder / "images" / sub).mkdir()
    for name in ("cats/c.png", "cats/d.png", "cats/old/e.png", ".thumbs/f.png"):
        photo.save(folder / "images" / name)
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(folder / "images" / "masks" / "a.png")
    data = dataset(folder, ["a.jpg,cat,train", "b.png,dog,train", "cats/c.png,cat,train"],
                   masks=folder / "images" / "masks")
    assert data.unlisted == ["cats/d.png", "cats/old/e.png"]


def test_the_outputs_of_a_run_inside_the_images_folder_are_not_noted_as_images_without_a_row(folder):
    """The probe's case: --out_root inside the images' folder, and the rerun noted the run's guide labels and
    predictions as images without a row, to add rows for."""
    photo = Image.fromarray(np.full((4, 6, 3), 90, np.uint8))
    for sub, marks in (("runs/demo/guide_labels/default", ("config.yaml", "inputs.json")), ("preds", ("predict.json",)),
                       ("kept", ("config.yaml",))):   # a config.yaml alone is no stage's folder: its photos count
        (folder / "images" / sub).mkdir(parents=True)
        photo.save(folder / "images" / sub / "c.png")
        for name in marks:
            (folder / "images" / sub / name).write_text("{}")
    assert dataset(folder, ["a.jpg,cat,train", "b.png,dog,train"]).unlisted == ["kept/c.png"]


def test_hidden_files_are_no_images_of_the_folder(folder):
    """macOS leaves ._a.jpg beside a.jpg on other file systems: not an image the CSV forgot."""
    (folder / "images" / "._a.jpg").write_bytes(b"\0\5\26\7")
    assert dataset(folder, ["a.jpg,cat,train", "b.png,dog,train"]).unlisted == []


def test_every_problem_of_the_tags_is_reported_at_once(folder):
    """A bad split, commas between tags, a tag that differs only in case, a missing image and a name leading out of
    the folder: one error listing all five (they came in three rounds, each after the fix of the one before)."""
    with pytest.raises(InputError) as e:
        dataset(folder, ["a.jpg,cat,maybe", '"b.png","cat|dog",train', "a.jpg,Cat,train", "ghost.jpg,cat,train",
                         "../elsewhere.jpg,cat,train", "b.png,cat,train"])
    found = "\n".join(e.value.messages)
    for line, problem in ((2, "split 'maybe' is not train or val"), (3, "tag 'cat|dog' holds '|'"),
                          (5, "tag 'cat' differs only in case from 'Cat' (line 4)"),
                          (5, "image 'ghost.jpg' is not in"), (6, "image '../elsewhere.jpg' is outside")):
        assert f"line {line}: {problem}" in found, found


def test_annotated_splits_lists_the_images_folder_once(folder, monkeypatch):
    """Rows named without extension: the images folder is listed once for all of them (it was listed again for each
    row: 7 s for 1000 rows, 255 s for 5000, at the start of every run with masks)."""
    masks(folder, {"a": 1, "b": 1})
    (folder / "tags.csv").write_text("image,tags,split\na,cat,train\nb,cat,val\nghost,cat,train\n")
    listed = []
    iterdir = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: listed.append(self) or iterdir(self))
    d = {"images": folder / "images", "tags": folder / "tags.csv", "masks": folder / "masks", "val_percent": 20}
    assert annotated_splits(d) == {"train", "val"}
    assert listed.count(folder / "images") == 1


def test_a_header_whose_quote_runs_past_the_field_limit_is_one_error(folder):
    """csv's own error (field larger than field limit) ended in a traceback when the header held the open quote."""
    (folder / "tags.csv").write_text('"image,tags\n' + "a.jpg,cat\n" * 20000)
    with pytest.raises(InputError, match="tags.csv, line 1: field larger than field limit .*; close the quote left "
                                         "open in the header"):
        OwnDataset(folder / "images", folder / "tags.csv", split="train")


@pytest.mark.parametrize("name", ["a.jpg", "a", "sub/../a.jpg", "./sub/../a"])
def test_the_tags_digest_finds_the_id_the_dataset_finds(folder, name):
    """fingerprint.split_rows_digest splits the rows by image_id, the dataset by the file _row_file finds: the two
    must agree (sub/../a.jpg without a folder sub gave a.jpg there, a here, and another hash split)."""
    data = dataset(folder, [f"{name},cat,train", "b.png,dog,train"])
    assert data.ids[0] == own.image_id(folder / "images", name, {}) == "a"


def test_rows_are_matched_and_photos_without_a_row_found_resolving_each_path_once_at_most(folder, monkeypatch):
    """Links are judged with each photo's path resolved (the folder's once for all, not once per row), and the
    photos without a row found by their paths, resolved only where some photo of the folder has no row (10,000
    photos: seconds a split)."""
    photo = Image.fromarray(np.full((4, 6, 3), 90, np.uint8))
    names = ["b.png"] + [f"p{k}.png" for k in range(40)]
    for name in names[1:]:
        photo.save(folder / "images" / name)
    resolved = []
    resolve = Path.resolve
    monkeypatch.setattr(Path, "resolve", lambda self, strict=False: resolved.append(self) or resolve(self, strict))
    rows = ["a.jpg,cat,train"] + [f"{name},dog,train" for name in names]
    assert dataset(folder, rows).unlisted == [] and len(resolved) <= len(rows) + 1   # each row's photo, the folder
    resolved.clear()
    (folder / "images" / "link.png").symlink_to(folder / "images" / "p0.png")   # p0's photo, named: not noted
    data = dataset(folder, rows[:1] + rows[2:])
    assert data.unlisted == ["b.png"] and len(resolved) <= 2 * len(rows) + 3   # and each path, named or not
