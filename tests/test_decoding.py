"""Images and masks decode to their exact values whatever their bit depth, palette or mode: a 16-bit mask's
256 is 256 (an error, not class 0), a 16-bit greyscale image is scaled to 8 bits (not clipped to white)."""
import numpy as np
import pytest
from PIL import Image

from guidedlabelling.datasets import MaskFolder, OwnDataset
from guidedlabelling.datasets.base import checked_label, value_counts
from guidedlabelling.io import InputError, label_values, load_gray_png, load_image, load_label_png


def save16(path, values):
    img = Image.fromarray(np.asarray(values, np.uint16))
    assert img.mode == "I;16"
    img.save(path)
    return path


def test_a_16_bit_mask_keeps_its_values(tmp_path):
    path = save16(tmp_path / "m.png", [[0, 1, 2], [255, 256, 258]])
    np.testing.assert_array_equal(label_values(path), [[0, 1, 2], [255, 256, 258]])
    with pytest.raises(InputError, match=r"m\.png: label values \[256, 258\] outside 0\.\.255"):
        load_label_png(path)
    small = save16(tmp_path / "small.png", [[0, 1], [2, 255]])   # 16-bit, values in range: read as they are
    np.testing.assert_array_equal(load_label_png(small), [[0, 1], [2, 255]])


def test_palette_and_one_bit_masks_give_their_indices(tmp_path):
    palette = Image.fromarray(np.array([[0, 3], [255, 1]], np.uint8), "P")
    palette.putpalette([200, 10, 10] * 256)   # every index the same colour: values are indices, not colours
    palette.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_label_png(tmp_path / "p.png"), [[0, 3], [255, 1]])
    Image.fromarray(np.array([[True, False]])).save(tmp_path / "b.png")
    np.testing.assert_array_equal(load_label_png(tmp_path / "b.png"), [[1, 0]])


def test_an_8_bit_mask_is_read_and_checked_as_8_bits(tmp_path):
    """A phone photo's mask has 12 megapixels: as int64 (96 MB) its checks took as long as its decoding, in every
    stage that opened the masks."""
    Image.fromarray(np.array([[0, 3], [255, 1]], np.uint8), "L").save(tmp_path / "m.png")
    assert label_values(tmp_path / "m.png").dtype == np.uint8
    np.testing.assert_array_equal(checked_label(tmp_path / "m.png", (2, 2), range(4), "x"), [[0, 3], [255, 1]])
    with pytest.raises(InputError, match=r"m\.png: label values \[3\] outside the 3 classes of x"):
        checked_label(tmp_path / "m.png", (2, 2), range(3), "x")
    counts = value_counts(np.array([[0, 3], [255, 3]], np.uint8))
    assert counts.tolist() == [1, 0, 0, 2] + [0] * 251 + [1]


def test_a_mask_in_colour_says_how_to_save_it(tmp_path):
    """VOC's colours saved as RGB are no class values: one line naming the file and how to save it."""
    Image.fromarray(np.array([[[0, 0, 0], [128, 0, 0]]], np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(InputError, match="rgb.png: label PNG has mode RGB \\(colours are not read as classes\\); save "
                                         "it as an index \\(palette\\) or single-channel PNG whose values are the "
                                         "classes 0..C-1, and 255 for void"):
        load_label_png(tmp_path / "rgb.png")


def test_a_16_bit_greyscale_image_is_scaled_to_8_bits(tmp_path):
    path = save16(tmp_path / "grey.png", [[0, 257, 32896], [65535, 128, 129]])
    expected = [[0, 1, 128], [255, 0, 1]]   # v / 257, rounded: 128/257 = 0.498 -> 0, 129/257 = 0.502 -> 1
    np.testing.assert_array_equal(load_image(path), np.dstack([expected] * 3))
    np.testing.assert_array_equal(load_gray_png(path), expected)


def test_own_data_16_bit_masks_are_checked_with_their_true_values(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(tmp_path / "images" / "x.png")
    (tmp_path / "tags.csv").write_text("image,tags,split\nx.png,cat,train\n")
    save16(tmp_path / "masks" / "x.png", [[0, 1, 1], [255, 0, 0]])
    data = OwnDataset(tmp_path / "images", tmp_path / "tags.csv", tmp_path / "masks")
    np.testing.assert_array_equal(data.label(0), [[0, 1, 1], [255, 0, 0]])
    save16(tmp_path / "masks" / "x.png", [[0, 257, 1], [255, 0, 0]])   # 257 used to be read as 1
    with pytest.raises(InputError, match=r"x\.png: label values \[257\] outside the 2 classes"):
        OwnDataset(tmp_path / "images", tmp_path / "tags.csv", tmp_path / "masks")


def test_saliency_set_masks_are_grey_at_any_depth_and_of_the_image_size(tmp_path):
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    save16(tmp_path / "masks" / "a.png", [[0, 65535], [40000, 20000]])   # 16-bit: above half is foreground
    np.testing.assert_array_equal(MaskFolder(tmp_path).label(0), [[0, 1], [1, 0]])
    Image.fromarray(np.zeros((3, 2), np.uint8)).save(tmp_path / "masks" / "a.png")
    with pytest.raises(InputError, match=r"a\.png: mask is 2x3 \(WxH\), its image 2x2; fix the PNG"):
        MaskFolder(tmp_path)


def test_a_saliency_set_mask_of_0_1_or_in_colour_is_refused(tmp_path):
    """Foreground is above 127 of 255: a 0/1 mask, or a red one (luminance 76), read as all background and trained
    the saliency network on nothing salient without a word (a probe); grey masks saved as RGB read as they look."""
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    drawn = np.zeros((4, 4), np.uint8)
    drawn[1:3, 1:3] = 255
    Image.fromarray(np.dstack([drawn] * 3)).save(tmp_path / "masks" / "a.png")
    np.testing.assert_array_equal(MaskFolder(tmp_path).label(0), drawn // 255)
    fix = "saliency training masks are grey, 0 background and 255 foreground: save it so"
    Image.fromarray(drawn // 255).save(tmp_path / "masks" / "a.png")
    with pytest.raises(InputError, match=rf"a\.png: values of 0\.\.1 only \(a 0/1 mask\?\); {fix}"):
        MaskFolder(tmp_path)
    Image.fromarray(np.dstack([drawn, 0 * drawn, 0 * drawn])).save(tmp_path / "masks" / "a.png")
    with pytest.raises(InputError, match=rf"a\.png: colour \(its channels differ\); {fix}"):
        MaskFolder(tmp_path)


def test_every_bad_mask_of_a_saliency_set_is_named_at_once(tmp_path):
    """A 0/1 mask, one in colour and one of another size: three lines (the first alone was named, one rerun per
    file); the good mask between them passes."""
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for name in "abcd":
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "images" / f"{name}.png")
    drawn = np.zeros((4, 4), np.uint8)
    drawn[1:3, 1:3] = 255
    Image.fromarray(drawn // 255).save(tmp_path / "masks" / "a.png")
    Image.fromarray(drawn).save(tmp_path / "masks" / "b.png")
    Image.fromarray(np.dstack([drawn, 0 * drawn, 0 * drawn])).save(tmp_path / "masks" / "c.png")
    Image.fromarray(drawn[:3]).save(tmp_path / "masks" / "d.png")
    with pytest.raises(InputError) as e:
        MaskFolder(tmp_path)
    fix = "saliency training masks are grey, 0 background and 255 foreground: save it so"
    assert list(e.value.messages) == [
        f"{tmp_path / 'masks/a.png'}: values of 0..1 only (a 0/1 mask?); {fix}",
        f"{tmp_path / 'masks/c.png'}: colour (its channels differ); {fix}",
        f"{tmp_path / 'masks/d.png'}: mask is 4x3 (WxH), its image 4x4; fix the PNG"]


def test_every_missing_mask_and_clashing_name_of_a_saliency_set_is_named_at_once(tmp_path):
    """Two masks missing (one saved as JPEG, which the line names) and an image named as one of another folder:
    three lines (the first alone was named, one rerun per file; a probe)."""
    for root in ("one", "two"):
        for sub in ("images", "masks"):
            (tmp_path / root / sub).mkdir(parents=True)
    for root, name in (("one", "a"), ("one", "b"), ("one", "c"), ("two", "a")):
        Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / root / "images" / f"{name}.png")
    for root, name in (("one", "a"), ("two", "a")):
        Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / root / "masks" / f"{name}.png")
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "one" / "masks" / "b.jpg")
    with pytest.raises(InputError) as e:
        MaskFolder(f"{tmp_path / 'one'},{tmp_path / 'two'}")
    assert list(e.value.messages) == [
        f"{tmp_path / 'one/masks/b.png'}: mask of b.png not found (b.jpg is there; masks are <id>.png, lossless); "
        "add it or remove the image",
        f"{tmp_path / 'one/masks/c.png'}: mask of c.png not found; add it or remove the image",
        f"{tmp_path / 'two/images/a.png'}: same name as {tmp_path / 'one/images/a.png'}; held-out maps are named by "
        "it, so rename one"]


def test_a_32_bit_image_of_8_bit_values_is_read_as_they_are(tmp_path):
    """A TIFF of 32-bit integers holding 0..255 (a probe): scaled as 16-bit, it was black and predicted all
    background. Values beyond 255 are 16-bit ones, scaled as such."""
    values = np.array([[0, 7], [128, 255]], np.int32)
    Image.fromarray(values).save(tmp_path / "eight.tiff")
    assert Image.open(tmp_path / "eight.tiff").mode == "I"
    np.testing.assert_array_equal(load_image(tmp_path / "eight.tiff")[..., 0], values)
    Image.fromarray(values * 257).save(tmp_path / "sixteen.tiff")
    np.testing.assert_array_equal(load_image(tmp_path / "sixteen.tiff")[..., 1], values)


def test_a_32_bit_map_of_8_bit_values_is_no_problem_and_a_16_bit_one_is():
    """The preflight's check of grey maps reads them as io.eight_bit does: 0..255 in 32 bits are 8-bit values, in
    16 bits they read as 0..1."""
    from guidedlabelling.preflight import grey_map_problem
    values = np.tile(np.arange(0, 256, 5, dtype=np.int32), (4, 1))
    assert grey_map_problem(Image.fromarray(values)) is None
    assert grey_map_problem(Image.fromarray(values.astype(np.uint16))) == \
        "16-bit values of at most 255, which read as 0..1 (a 16-bit map runs to 65535)"
