"""Own data's tags CSV: images confined to --images (links out of it only when allowed), split values, tags
that cannot be class names, and the 255 classes a label PNG can hold."""
import numpy as np
import pytest
from PIL import Image

from guidedlabelling.datasets import OwnDataset
from guidedlabelling.io import InputError


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "images").mkdir()
    for name in ("a.jpg", "b.png"):
        Image.fromarray(np.full((4, 6, 3), 90, np.uint8)).save(tmp_path / "images" / name)
    Image.fromarray(np.full((4, 6, 3), 10, np.uint8)).save(tmp_path / "elsewhere.jpg")
    return tmp_path


def dataset(folder, rows, split="train", **kwargs):
    (folder / "tags.csv").write_text("image,tags,split\n" + "\n".join(rows) + "\n")
    return OwnDataset(folder / "images", folder / "tags.csv", split=split, **kwargs)


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


def test_names_that_lead_out_of_a_relative_folder(folder, monkeypatch):
    monkeypatch.chdir(folder / "images")
    (folder / "tags.csv").write_text("image,tags,split\nsub/../../elsewhere.jpg,cat,train\na.jpg,dog,train\n")
    with pytest.raises(InputError, match="line 2: image 'sub/../../elsewhere.jpg' is outside"):
        OwnDataset(".", folder / "tags.csv", split="train", follow_symlinks=True)


def test_a_name_through_a_subfolder_that_stays_inside_is_its_file(folder):
    """sub/../a.jpg is a.jpg (the probe's case: it was called outside), even with no folder sub."""
    assert dataset(folder, ["sub/../a.jpg,cat,train", "b.png,dog,train"]).ids == ["a", "b"]


def test_split_values_any_case_empty_means_by_name_others_are_errors(folder):
    rows = ["a.jpg,cat,Val", "b.png,dog,"]   # b: sha1('b') mod 100 = 20, not below val_percent 20: train
    assert dataset(folder, rows, "val").ids == ["a"] and dataset(folder, rows, "train").ids == ["b"]
    with pytest.raises(InputError, match=r"line 3: split 'test' is not train or val; write train or val, or leave it "
                                         r"empty"):
        dataset(folder, ["a.jpg,cat,val", "b.png,dog,test"])


@pytest.mark.parametrize("row, odd", [('a.jpg,"cat,dog",train', "','"), ("a.jpg,cat's,train", "\"'\""),
                                      ('a.jpg,"cat""",train', "'\"'")])
def test_tags_with_commas_or_quotes_are_errors(folder, row, odd):
    with pytest.raises(InputError, match=f"line 2: tag .* holds {odd}; separate tags by spaces or ';'"):
        dataset(folder, [row])


def test_at_most_255_classes(folder):
    tags = " ".join(f"t{k:03d}" for k in range(254))
    assert dataset(folder, [f"a.jpg,{tags},train"]).num_classes == 255   # background + 254: values 0..254
    with pytest.raises(InputError, match=r"tags.csv: 256 classes \(background included\); label PNGs hold at most "
                                         r"255 \(values 0..254, 255 = void\); merge tags"):
        dataset(folder, [f"a.jpg,{tags} t254,train"])
