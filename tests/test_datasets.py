"""Preprocessing and back-mapping (docs/method.md sections 1, 2, 6, 7), VOC lists, batch orders."""
import numpy as np
import pytest
import torch
from PIL import Image

from guidedlabelling import datasets as D
from guidedlabelling import sampling
from guidedlabelling import transforms as T
from guidedlabelling.transforms import fit_input, unfit
from guidedlabelling.io import InputError, save_label_png


def test_reflect_101_padding_centred():
    img = np.array([[1, 2, 3], [4, 5, 6]])
    padded, offset = T.pad_reflect(img, (4, 5))
    # reflect-101 repeats no edge value: row order 4-row pad (1 top, 1 bottom): [r1, r0, r1, r0]
    np.testing.assert_array_equal(padded, [[5, 4, 5, 6, 5], [2, 1, 2, 3, 2], [5, 4, 5, 6, 5], [2, 1, 2, 3, 2]])
    assert offset == (1, 1)


def test_fit_longer_side_then_pad_then_back():
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    padded, offset, inner = T.fit_reflect(img, 12)
    assert padded.shape == (12, 12, 3) and inner == (8, 12) and offset == (2, 0)


def test_caffe_input_is_bgr_minus_mean():
    img = np.zeros((1, 1, 3), np.uint8)
    img[0, 0] = (10, 20, 30)   # R, G, B
    x = T.to_caffe_input(img)
    # the means of Caffe's ilsvrc_2012_mean.npy (B, G, R), as the release uses them
    np.testing.assert_allclose(x[:, 0, 0], [30 - 104.0069879317889, 20 - 116.66876761696767, 10 - 122.6789143406786],
                               rtol=1e-6)


def test_random_crop_keeps_90_to_99_percent():
    """The release's int(uniform(0.9 H, H)): the last row and column are never kept."""
    rng = np.random.default_rng(0)
    boxes = np.array([T.random_crop_box(100, 200, rng) for _ in range(2000)])
    top, left, bottom, right = boxes.T
    assert top.min() == 0 and top.max() == 9 and left.min() == 0 and left.max() == 19
    assert bottom.min() == 90 and bottom.max() == 99 and right.min() == 180 and right.max() == 199


def test_unfit_maps_a_linear_ramp_exactly():
    # a 41x41 map that is linear in x survives order-1 zooms unchanged in shape (corners aligned)
    ramp = torch.linspace(0, 1, 41).repeat(41, 1)[None]
    # 500x375 image (W=500, H=375): fit to 321 -> 241x321, top margin 40
    out = unfit(ramp, (321, 321), (40, 0), (241, 321), (375, 500))
    assert out.shape == (1, 375, 500)
    np.testing.assert_allclose(out[0, 0].numpy(), np.linspace(0, 1, 500), atol=1e-5)
    np.testing.assert_allclose(out[0, :, 250].numpy(), np.full(375, 250 / 499), atol=1e-5)


def test_fit_input_modes():
    img = np.zeros((30, 50, 3), np.uint8)
    assert fit_input(img, 64, "fullscale")[1:] == ((0, 0), (30, 50))  # full-scale test: pad bottom/right
    assert fit_input(img, 64, "shrink")[1:] == ((17, 7), (30, 50))    # saliency: no upscaling
    assert fit_input(img, 40, "shrink")[1:] == ((8, 0), (24, 40))     # larger: downscaled (0.8: 24 x 40)
    x, offset, inner = fit_input(img, 64, "canvas", 32)               # the release's test: centred canvas ...
    assert x.shape == (32, 32, 3) and offset == (17, 7) and inner == (30, 50)  # ... resized to the net's input
    x, offset, inner = fit_input(img, 50, "tight")                    # its own shape, up to sides of 32k + 1
    assert x.shape == (33, 65, 3) and offset == (0, 0) and inner == (30, 50)
    np.testing.assert_array_equal(x[:30, :50], img)
    noise = np.random.default_rng(0).integers(0, 256, (80, 100, 3)).astype(np.uint8)
    x, offset, inner = fit_input(noise, 161, "tight")                 # smaller: enlarged (1.61: 128 x 161) ...
    assert x.shape == (129, 161, 3) and offset == (0, 0) and inner == (128, 161)
    np.testing.assert_array_equal(x[128], x[126])                                # ... reflect-101 pad below
    x, offset, inner = fit_input(noise, 50, "tight")                  # larger: shrunk (0.5: 40 x 50) ...
    assert x.shape == (65, 65, 3) and offset == (0, 0) and inner == (40, 50)
    np.testing.assert_array_equal(x[:40, 50:52], x[:40, 48:46:-1])              # ... reflect-101 pad to the right
    np.testing.assert_array_equal(x[40:42, :50], x[38:36:-1, :50])              # ... and below


def test_unfit_of_a_tight_canvas():
    """A plane over a 33 x 65 canvas (3 x 5 scores at stride 16, corners aligned), cut to the image's 30 x 50: rising
    1 across the canvas's width and 10 down its height, so the cut keeps 49/64 and 29/32 of each."""
    plane = (torch.linspace(0, 1, 5)[None, :] + torch.linspace(0, 10, 3)[:, None])[None]
    out = unfit(plane, (33, 65), (0, 0), (30, 50), (30, 50))
    np.testing.assert_allclose(out[0, 0].numpy(), np.linspace(0, 49 / 64, 50), atol=1e-5)
    np.testing.assert_allclose(out[0, :, 0].numpy(), np.linspace(0, 10 * 29 / 32, 30), atol=1e-5)


def test_seg_train_sample_reflects_label_and_shrinks_nearest():
    """A 10 x 10 label, 10 r + c + 1 at (r, c), padded 3 px each side to 16 x 16 by reflect-101 (padded index
    j takes row/column |j - 3| mirrored at 9: 3 2 1 0 1 .. 9 8 7 6), then shrunk to 3 x 3 at the pixel centres
    floor((i + 0.5) 16 / 3) = 2, 8, 13, that is source rows/columns 1, 5, 8; a flip comes first, at random."""
    r, c = np.mgrid[:10, :10]
    label = (10 * r + c + 1).astype(np.uint8)
    img = np.repeat(label[..., None], 3, -1)
    reflect = np.array([3, 2, 1] + list(range(10)) + [8, 7, 6])
    kept = np.array([1, 5, 8])
    flips = set()
    for seed in range(8):
        x, small = T.seg_train_sample(img, label, np.random.default_rng(seed), 16, 3)
        flipped = not np.array_equal(small, label[np.ix_(kept, kept)])
        source = label[:, ::-1] if flipped else label
        assert np.array_equal(small, source[np.ix_(kept, kept)])
        np.testing.assert_allclose(x[2] + T.MEAN_BGR[2], source[np.ix_(reflect, reflect)], atol=1e-4)  # image (R)
        flips.add(flipped)
    assert flips == {False, True}


def test_seg_sample_max_side_trains_at_the_scale_of_the_test(tmp_path):
    """max_side 40 on a 40 x 80 image: the 4 x 8 object block becomes 2 x 4 (what a test at test_size 40 sees);
    a 48-px crop then holds the whole shrunk image, reflect-padded."""
    from types import SimpleNamespace
    from guidedlabelling.sampling import SegSample
    label = np.zeros((40, 80), np.uint8)
    label[10:14, 20:28] = 1
    data = SimpleNamespace(image=lambda i, max_side=0: np.zeros(D.base.work_size((40, 80), max_side) + (3,), np.uint8),
                           label=lambda i: label)
    _, shrunk = SegSample(data, 48, 48, "none", max_side=40)(0, np.random.default_rng(0))
    rows, cols = np.nonzero(shrunk == 1)
    assert len(set(cols)) == 4 and len(rows) == 8 * len(set(rows)) // 2   # 2 x 4 blocks (the pad reflects it)
    _, kept = SegSample(data, 48, 48, "none")(0, np.random.default_rng(0))
    rows, cols = np.nonzero(kept == 1)
    assert len(set(cols)) == 8 and len(set(rows)) == 4   # max_side 0: the release's crop at the image's scale


def test_guide_labels_of_the_image_file_size_are_shrunk_to_the_work_size_for_training(tmp_path):
    """A guide label PNG of the file's size (6 x 8) is read at the work size (3 x 4 at max_image_side 4, nearest
    neighbour: rows 1, 3, 5, columns 1, 3, 5, 7), as one written at the work size is; training pairs it with the
    image at that size."""
    from guidedlabelling.sampling import SegSample
    root = make_voc(tmp_path / "voc")
    data = D.open_dataset({"layout": "voc", "pascalroot": None, "dataset_dir": str(root), "datatype": "Segmentation",
                           "max_image_side": 4}, "train")
    full = np.zeros((6, 8), np.uint8)
    full[3, 5] = 2
    full[5, 0:2] = 1
    save_label_png(tmp_path / "full" / "a.png", full)
    save_label_png(tmp_path / "work" / "a.png", full[1::2, 1::2])
    expected = [[0, 0, 0, 0], [0, 0, 2, 0], [1, 0, 0, 0]]
    for folder in ("full", "work"):
        np.testing.assert_array_equal(SegSample(data, 4, 4, "none", tmp_path / folder).label(0), expected)
    image, label = SegSample(data, 4, 4, "none", tmp_path / "full")(0, np.random.default_rng(0))
    assert label.shape == (4, 4) and set(np.unique(label)) <= {0, 1, 2, 255}


def test_clsbal_rounds_cover_every_class_once():
    """In an epoch, rounds follow each other: each covers every class exactly once (an image covers all its
    classes), except the last, cut short when a class runs out of images."""
    image_classes = [[1], [2, 3], [3], [4], [1, 4], [2], [1], [3], [4], [2]]
    for seed in range(20):
        epoch = sampling.balanced_epoch(image_classes, 4, np.random.default_rng(seed))
        rounds, covered = [[]], []
        for i in epoch:
            assert not set(image_classes[i]) & set(covered)
            rounds[-1].append(i)
            covered += image_classes[i]
            if sorted(covered) == [1, 2, 3, 4]:
                rounds.append([])
                covered = []
        assert len(rounds) >= 2 and all(len(r) for r in rounds[:-1])
    order = sampling.clsbal_order(image_classes, 4, 50, np.random.default_rng(1))
    assert len(order) == 50 and set(order) <= set(range(10))


def test_shuffled_order_is_a_permutation_per_epoch():
    order = sampling.shuffled_order(5, 12, np.random.default_rng(0))
    assert sorted(order[:5]) == list(range(5)) and sorted(order[5:10]) == list(range(5))


def make_voc(root, ids=("a", "b"), classes=("background", "cat", "dog")):
    (root / "JPEGImages").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    for k, i in enumerate(ids):
        Image.fromarray(np.full((6, 8, 3), 100, np.uint8)).save(root / "JPEGImages" / f"{i}.jpg")
        label = np.zeros((6, 8), np.uint8)
        label[1:3, 1:3] = k + 1
        label[0, 0] = 255
        save_label_png(root / "SegmentationClass" / f"{i}.png", label)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(ids) + "\n")
    return root


def test_voc_dataset_labels_from_pngs(tmp_path):
    data = D.VOCDataset(make_voc(tmp_path), "train")
    assert data.classes == ["background", "cat", "dog"]
    assert data.image_classes(0) == [1] and data.image_classes(1) == [2]
    np.testing.assert_array_equal(data.class_vector(1), [0, 1])
    assert data.image(0).shape == (6, 8, 3)


def test_voc_tags_come_from_the_full_size_labels_when_the_work_size_is_smaller(tmp_path):
    """At max_image_side 4 the 6 x 8 label shrinks to 3 x 4 (nearest neighbour: rows 1, 3, 5 and columns 1, 3, 5,
    7), which keeps cat's pixel at (1, 1) and misses dog's at (2, 4); the image is still tagged dog."""
    root = make_voc(tmp_path)
    label = np.zeros((6, 8), np.uint8)
    label[1, 1] = 1
    label[2, 4] = 2
    save_label_png(root / "SegmentationClass" / "a.png", label)
    data = D.open_dataset({"layout": "voc", "pascalroot": None, "dataset_dir": str(root), "datatype": "Segmentation",
                           "max_image_side": 4}, "train")
    assert data.image_classes(0) == [1, 2] and data.sizes[0] == (6, 8) and data.hw(0) == (3, 4)
    np.testing.assert_array_equal(data.label(0), [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    label[3, 5] = 2   # under the centre of the shrunk pixel (1, 2)
    save_label_png(root / "SegmentationClass" / "a.png", label)
    np.testing.assert_array_equal(data.label(0), [[1, 0, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0]])
    assert data.image(0).shape == (3, 4, 3)


def test_voc_list_with_path_pairs(tmp_path):
    root = make_voc(tmp_path)
    (root / "ImageSets" / "Segmentation" / "pairs.txt").write_text(
        "/JPEGImages/a.jpg /SegmentationClass/a.png\n")
    data = D.VOCDataset(root, "pairs")
    assert data.ids == ["a"] and data.image_classes(0) == [1]


def test_label_outside_class_list_names_the_file(tmp_path):
    root = make_voc(tmp_path, classes=("background", "cat"))
    with pytest.raises(InputError, match=r"b\.png: label values \[2\] outside the 2 classes"):
        D.VOCDataset(root, "train")   # checked when the dataset is opened, before a stage writes anything


def test_label_outside_voc_classes_without_a_class_list_names_no_missing_file(tmp_path):
    """A real VOC2012 folder has no classes.txt: the error says VOC's 21 classes were meant, and that a classes.txt
    would name others, instead of naming a classes.txt that is not there."""
    root = make_voc(tmp_path)
    (root / "classes.txt").unlink()
    label = np.zeros((6, 8), np.uint8)
    label[0, 0] = 30
    save_label_png(root / "SegmentationClass" / "b.png", label)
    with pytest.raises(InputError) as e:
        D.VOCDataset(root, "train")
    assert e.value.messages == (f"{root}/SegmentationClass/b.png: label values [30] outside the 21 classes of PASCAL "
                                f"VOC (no {root}/classes.txt, which would name others); fix the PNG or the class list "
                                "(255 = void)",)


def test_missing_list_names_the_file(tmp_path):
    make_voc(tmp_path)
    with pytest.raises(InputError, match=r"val\.txt: image list not found"):
        D.VOCDataset(tmp_path, "val")


def test_voc_classes_when_no_classes_txt(tmp_path):
    root = make_voc(tmp_path)
    (root / "classes.txt").unlink()
    assert D.VOCDataset(root, "train").num_classes == 21


def test_an_image_larger_than_the_test_canvas_is_fit_into_it():
    """The release stops with an error; here the image is fit into the canvas first."""
    x, offset, inner = fit_input(np.zeros((600, 800, 3), np.uint8), 531, "canvas", 321)
    assert x.shape == (321, 321, 3) and inner == (398, 531) and offset == (66, 0)


def test_a_one_row_image_still_gives_a_crop():
    rng = np.random.default_rng(0)
    top, left, bottom, right = T.random_crop_box(1, 7, rng)
    assert (top, bottom) == (0, 1) and right > left
    assert T.seed_train_sample(np.zeros((1, 7, 3), np.uint8), rng, 33).shape == (3, 33, 33)


def test_an_images_folder_of_own_data_is_not_read_as_a_voc_folder(tmp_path):
    """The stages read VOC's Annotations/ and ImageSets/Main/ under any dataset's root, so own data whose images
    folder held a labelling tool's Annotations/ (LabelImg writes VOC XML there) balanced by those files."""
    from conftest import make_own
    own = make_own(tmp_path)
    (own["images"] / "Annotations").mkdir()
    for name in "abcd":
        (own["images"] / "Annotations" / f"{name}.xml").write_text("<annotation><object><name>horse</name>"
                                                                     "</object></annotation>")
    (own["images"] / "ImageSets" / "Main").mkdir(parents=True)
    for name in ("cat", "dog"):
        (own["images"] / "ImageSets" / "Main" / f"{name}_train.txt").write_text("nonsense\n")
    data = D.OwnDataset(own["images"], own["tags"], split="train")
    assert data.balancing_classes() == [[1], [2], [1], [2]] and data.classification_labels() is None


def test_annotations_name_the_classes_of_class_balancing(tmp_path):
    root = make_voc(tmp_path)
    (root / "Annotations").mkdir()
    xml = "<annotation>{}</annotation>"
    obj = "<object><name>{}</name><difficult>{}</difficult></object>"
    (root / "Annotations" / "a.xml").write_text(xml.format(obj.format("dog", 1) + obj.format("cat", 0)))
    (root / "Annotations" / "b.xml").write_text(xml.format(obj.format("dog", 0)))
    data = D.VOCDataset(root, "train")
    assert [data.image_classes(i) for i in range(2)] == [[1], [2]]          # from the label PNGs
    assert data.balancing_classes() == [[1, 2], [2]]                         # the XML's, difficult included
    (root / "Annotations" / "b.xml").write_text(xml.format(obj.format("horse", 0)))
    with pytest.raises(InputError, match=r"b.xml: objects \['horse'\] are not classes"):
        data.balancing_classes()


@pytest.mark.parametrize("text, line, said", [
    ("background\ncat\n\ndog\n", 3, "blank, while each line names the class of label value line - 1; name the class "
     "of value 2 there"),
    ("cat\nbackground\ndog\n", 2, "'background' on line 2, while label value 0, the first line's class ('cat'), is "
     "background; put background on line 1"),
    ("background\ncat\nCat\n", 3, "class 'Cat' already on line 2; give each class one name"),
])
def test_class_list_whose_lines_are_not_the_label_values_is_refused(tmp_path, text, line, said):
    """Each line of classes.txt names the class of label value line - 1: a blank line inside (it was dropped, so dog,
    value 3, was read as class 2), background below the first line (cat was taught as background) and a name twice
    (the tables merged the two) are errors naming the line."""
    root = make_voc(tmp_path)
    (root / "classes.txt").write_text(text)
    with pytest.raises(InputError) as e:
        D.VOCDataset(root, "train")
    assert e.value.messages[0].startswith(f"{root}/classes.txt, line {line}: {said}")


def test_class_list_with_crlf_a_bom_and_blank_lines_at_the_end_keeps_its_names(tmp_path):
    root = make_voc(tmp_path)
    (root / "classes.txt").write_bytes("\ufeffbackground\r\nbrown cat\r\nchien é\r\n\r\n  \r\n".encode())
    assert D.VOCDataset(root, "train").classes == ["background", "brown cat", "chien é"]


def test_classes_in_no_training_label_are_noted(tmp_path):
    """bird and fish are in classes.txt but in no label PNG of the training split (cat in a.png, dog in b.png):
    nothing learns them, which the run says before its steps; the test split's data says nothing of it."""
    root = make_voc(tmp_path, classes=("background", "cat", "bird", "dog", "fish"))
    label = np.zeros((6, 8), np.uint8)
    label[1:3, 1:3] = 3
    save_label_png(root / "SegmentationClass" / "b.png", label)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("a\nb\n")
    d = {"layout": "voc", "pascalroot": None, "dataset_dir": str(root), "datatype": "Segmentation",
         "max_image_side": 1024, "dataset": "train", "test_dataset": "val"}
    assert D.open_dataset(d, "train").notes() == [
        f"note: bird, fish (2 of the 5 classes of {root}/classes.txt) are in no label PNG of train "
        f"({root}/ImageSets/Segmentation/train.txt, 2 images), so nothing learns them: their IoU is 0 wherever the "
        "test images show them, lowering the mIoU; list training images that show them"]
    assert D.open_dataset(d, "val").notes() == []


def test_missing_list_names_the_lists_there(tmp_path):
    """A split name that is no list of the folder (a slip: --set test_dataset=vall) says which lists there are; a list
    of ImageSets/Main alone (no ImageSets/Segmentation/<split>.txt) says the datatype setting that reads it."""
    root = make_voc(tmp_path)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("a\n")
    with pytest.raises(InputError) as e:
        D.VOCDataset(root, "vall")
    assert e.value.messages == (f"{root}/ImageSets/Segmentation/vall.txt: image list not found; create it (one id per "
                                "line) or choose another split with --dataset/--test_dataset "
                                f"({root}/ImageSets/Segmentation holds train, val)",)
    (root / "ImageSets" / "Segmentation").rename(root / "ImageSets" / "Main")
    with pytest.raises(InputError) as e:
        D.VOCDataset(root, "train")
    assert e.value.messages == (f"{root}/ImageSets/Segmentation/train.txt: image list not found, while "
                                "ImageSets/Main/train.txt is there; --set datatype=Main reads the lists of "
                                "ImageSets/Main",)
    assert D.VOCDataset(root, "train", "Main").ids == ["a", "b"]


def test_a_layout_listing_two_images_of_one_id_is_one_error(tmp_path, monkeypatch):
    """A layout of one's own (docs/reference.md's class folders: cat/x.jpg and cat/x.png, both id cat_x) listed two
    images of one id: their outputs were one file, so the second image was never made, silently."""
    for name in ("x.jpg", "x.png"):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / name)

    class Twins(D.Labelled):
        has_labels, classes, split = False, ["background", "cat"], "train"

        @classmethod
        def open(cls, d, split, follow_symlinks=False):
            data = cls()
            data.root, data.items = tmp_path, [D.Item("cat_x", tmp_path / n, None) for n in ("x.jpg", "x.png")]
            return data

    monkeypatch.setitem(D.LAYOUTS, "twins", Twins)
    with pytest.raises(InputError) as e:
        D.open_dataset({"layout": "twins", "max_image_side": 0}, "train")
    message, = e.value.messages
    assert message == f"{tmp_path / 'x.jpg'} and {tmp_path / 'x.png'}: one image id, 'cat_x', while the outputs are " \
                      "named by id; rename one of them"
