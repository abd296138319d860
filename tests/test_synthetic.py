import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from guidedlabelling import io
from guidedlabelling.datasets import builtin as syn

K = syn.NUM_CLASSES


def _read_ids(root, split):
    return (root / "ImageSets" / "Segmentation" / f"{split}.txt").read_text().split()


def _file_bytes(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    return syn.generate_builtin(tmp_path_factory.mktemp("voc"), n_train=15, n_val=10, size=64, seed=0)


@pytest.fixture(scope="module")
def saliency(tmp_path_factory):
    return syn.generate_saliency_set(tmp_path_factory.mktemp("sal"), n=12, size=64, seed=1)


def test_voc_palette_is_the_standard_colormap():
    pal = np.array(io.VOC_PALETTE).reshape(256, 3)
    assert pal[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert pal[15].tolist() == [192, 128, 128]  # VOC "person"
    assert pal[255].tolist() == [224, 224, 192]  # VOC void


def test_voc_layout_and_formats(voc):
    names = (voc / "classes.txt").read_text().split()
    assert names[0] == "background" and len(names) == K + 1 == 6
    train, val = _read_ids(voc, "train"), _read_ids(voc, "val")
    assert train == [f"train_{i:04d}" for i in range(15)] and val == [f"val_{i:04d}" for i in range(10)]
    for image_id in train + val:
        image = Image.open(voc / "JPEGImages" / f"{image_id}.jpg")
        label = Image.open(voc / "SegmentationClass" / f"{image_id}.png")
        assert image.format == "JPEG" and image.mode == "RGB" and image.size == (64, 64)
        assert label.mode == "P" and label.size == (64, 64)
        assert label.getpalette()[:768] == io.VOC_PALETTE
        values = set(np.unique(np.array(label)).tolist())
        assert values <= set(range(K + 1)) | {255}
        assert 255 in values and 0 in values  # void band and background present


def test_every_image_has_one_or_two_classes_and_every_class_in_each_split(voc):
    for split in ("train", "val"):
        seen = set()
        for image_id in _read_ids(voc, split):
            label = np.array(Image.open(voc / "SegmentationClass" / f"{image_id}.png"))
            classes = set(np.unique(label).tolist()) - {0, 255}
            assert 1 <= len(classes) <= 2
            seen |= classes
        assert seen == set(range(1, K + 1))


def test_void_band_is_thin():
    for i in range(30):
        label = syn.render_scene(syn.image_rng(0, 0, i), 96).label
        void = (label == 255).astype(np.uint8)
        assert void.any()
        assert not cv2.erode(void, np.ones((3, 3), np.uint8)).any()  # never 3 px thick
        assert void.sum() < 0.4 * (label > 0).sum()


def test_generation_is_deterministic_and_independent_of_order(tmp_path):
    a = _file_bytes(syn.generate_builtin(tmp_path / "a", n_train=6, n_val=3, size=48, seed=5))
    b = _file_bytes(syn.generate_builtin(tmp_path / "b", n_train=6, n_val=3, size=48, seed=5))
    assert a == b
    fewer = _file_bytes(syn.generate_builtin(tmp_path / "c", n_train=3, n_val=2, size=48, seed=5))
    assert all(a[path] == data for path, data in fewer.items() if path.suffix in (".jpg", ".png"))
    other_seed = _file_bytes(syn.generate_builtin(tmp_path / "d", n_train=6, n_val=3, size=48, seed=6))
    assert other_seed[Path("JPEGImages/train_0000.jpg")] != a[Path("JPEGImages/train_0000.jpg")]
    s1 = _file_bytes(syn.generate_saliency_set(tmp_path / "s1", n=4, size=48, seed=2))
    s2 = _file_bytes(syn.generate_saliency_set(tmp_path / "s2", n=4, size=48, seed=2))
    assert s1 == s2


@pytest.mark.parametrize("size", [64, 96, 128])
def test_discriminative_part_is_small_but_visible(size):
    for i in range(40):
        scene = syn.render_scene(syn.image_rng(1, 0, i), size)
        assert 1 <= len(scene.objects) <= 2
        for obj in scene.objects:
            fraction = obj.part.sum() / obj.mask.sum()
            assert 0.05 < fraction < 0.30
            assert not (obj.part & ~obj.mask).any()
            length = np.ptp(np.argwhere(obj.mask), axis=0).max() + 1
            assert 0.25 * size <= length <= 0.7 * size


def _class_colours(scenes):
    """{class: (mean body colour, mean head colour)} over the objects of scenes."""
    body, head = {c: [] for c in range(1, K + 1)}, {c: [] for c in range(1, K + 1)}
    for scene in scenes:
        for obj in scene.objects:
            body[obj.cls].append(scene.image[obj.mask & ~obj.part].mean(0))
            head[obj.cls].append(scene.image[obj.part].mean(0))
    return {c: (np.mean(body[c], 0), np.mean(head[c], 0)) for c in body}


def test_head_names_the_class_and_the_body_only_leans_toward_it():
    """Heads differ by 150+ levels between classes, bodies by a few tens: each class's mean body colour is
    nearest the mid-range orange moved BODY_TINT toward its own head colour."""
    colours = _class_colours(syn.render_scene(syn.image_rng(2, 0, i), 96) for i in range(80))
    body_means = np.array([colours[c][0] for c in colours])
    head_means = np.array([colours[c][1] for c in colours])
    assert np.ptp(head_means, axis=0).max() > 150
    assert 15 < np.ptp(body_means, axis=0).max() < 50
    heads = np.array([syn.HEAD_COLOURS[c][0] for c in colours])
    assert (np.linalg.norm(head_means[:, None] - heads[None], axis=2).argmin(1) == np.arange(K)).all()
    orange = np.array([240, 157.5, 22.5])  # the middle of _body_colour's ranges
    tinted = np.array([(1 - syn.BODY_TINT) * orange + syn.BODY_TINT * np.array(syn.HEAD_COLOURS[c][0])
                       for c in colours])
    distances = np.linalg.norm(body_means[:, None] - tinted[None], axis=2)
    assert (distances.argmin(1) == np.arange(K)).all()


def test_second_object_mostly_shares_the_first_ones_class():
    same = pairs = 0
    for i in range(400):
        objects = syn.render_scene(syn.image_rng(5, 0, i), 32).objects
        if len(objects) == 2:
            pairs += 1
            same += objects[0].cls == objects[1].cls
    assert 0.3 < pairs / 400 < 0.5
    assert abs(same / pairs - syn.P_SAME_CLASS) < 0.08


def test_label_is_the_objects_painted_pixels():
    """Away from the void band the label holds each visible object's class on its pixels, else background."""
    for i in range(20):
        scene = syn.render_scene(syn.image_rng(6, 0, i), 96)
        expected = np.zeros(scene.label.shape, np.uint8)
        for obj in scene.objects:
            expected[obj.mask] = obj.cls
        valid = scene.label != 255
        assert (scene.label[valid] == expected[valid]).all()
        assert not any((obj.mask & np.any([o.mask for o in scene.objects if o is not obj], axis=0)).any()
                       for obj in scene.objects)  # visible masks are disjoint


def test_objects_contrast_with_background():
    for i in range(30):
        scene = syn.render_scene(syn.image_rng(3, 0, i), 96)
        image = scene.image.astype(float)
        background = image[scene.label == 0]
        centre = background.mean(0)
        bodies = image[np.any([o.mask & ~o.part for o in scene.objects], axis=0)]
        spread = np.linalg.norm(background - centre, axis=1).mean()
        distance = np.linalg.norm(bodies - centre, axis=1).mean()
        assert distance > 3 * spread


def test_background_type_cooccurs_with_class():
    hits, counts = np.zeros((K + 1, 2)), np.zeros((K + 1, 2))
    for i in range(400):
        scene = syn.render_scene(syn.image_rng(4, 0, i), 32)
        present = {obj.cls for obj in scene.objects}
        for c in range(1, K + 1):
            counts[c, int(c in present)] += 1
            hits[c, int(c in present)] += scene.background == syn.PREFERRED_BACKGROUND[c]
    rate = hits[1:] / counts[1:]
    assert (rate[:, 1] > 0.3).all()  # chance is 1/5
    assert (rate[:, 0] < 0.2).all()


def test_saliency_set_layout_and_masks(saliency):
    images = sorted((saliency / "images").glob("*.jpg"))
    masks = sorted((saliency / "masks").glob("*.png"))
    assert len(images) == len(masks) == 12
    assert [p.stem for p in images] == [p.stem for p in masks]
    for image_path, mask_path in zip(images, masks):
        image, mask = Image.open(image_path), Image.open(mask_path)
        assert image.mode == "RGB" and image.size == (64, 64)
        assert mask.mode == "L" and mask.size == (64, 64)
        values = np.array(mask)
        assert set(np.unique(values).tolist()) == {0, 255}
        assert 0.01 < (values == 255).mean() < 0.6


def test_saliency_objects_are_the_masked_pixels_in_colours_of_every_kind():
    """Masked pixels stand out from the background; object colours span far more than the demo's
    orange bodies and five heads, so the set teaches objectness, not the classes."""
    means = []
    for i in range(40):
        image, mask = syn.render_saliency_sample(syn.image_rng(7, 2, i), 96)
        image, fg = image.astype(float), mask == 255
        centre = image[~fg].mean(0)
        spread = np.linalg.norm(image[~fg] - centre, axis=1).mean()
        assert np.linalg.norm(image[fg] - centre, axis=1).mean() > 3 * spread
        means.append(image[fg].mean(0))
    hues = cv2.cvtColor(np.uint8(means)[None], cv2.COLOR_RGB2HSV)[0, :, 0]
    assert len(np.unique(hues // 30)) == 6  # every sixth of the hue circle


def test_ensure_builtin_generates_once_and_regenerates_on_new_params(tmp_path, monkeypatch):
    params = dict(n_train=5, n_val=5, size=32, seed=0, n_saliency=3)
    voc_root, sal_root = syn.ensure_builtin(tmp_path, **params)
    assert (voc_root, sal_root) == (tmp_path / "builtin", tmp_path / "builtin_saliency")
    assert json.loads((voc_root / ".complete").read_text())["n_train"] == 5
    assert len(_read_ids(voc_root, "train")) == 5 and len(list((sal_root / "masks").iterdir())) == 3
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["builtin",
                                                                                           "builtin_saliency"]

    def fail(*args, **kwargs):
        raise AssertionError("regenerated a complete dataset")

    with monkeypatch.context() as m:
        m.setattr(syn, "generate_builtin", fail)
        m.setattr(syn, "generate_saliency_set", fail)
        assert syn.ensure_builtin(tmp_path, **params) == (voc_root, sal_root)

    syn.ensure_builtin(tmp_path, **{**params, "n_train": 7})
    assert len(_read_ids(voc_root, "train")) == 7
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["builtin",
                                                                                           "builtin_saliency"]


def test_two_first_runs_generate_the_built_in_data_once(tmp_path, monkeypatch):
    """The second waits for the first's lock, then finds the data complete (it used to replace the folder while
    the first read it); a generation killed midway leaves a temporary folder, which the next one removes."""
    calls = []
    generate = syn.generate_builtin

    def counted(*args, **kwargs):
        calls.append(1)
        return generate(*args, **kwargs)
    monkeypatch.setattr(syn, "generate_builtin", counted)
    params = dict(n_train=5, n_val=5, size=32, seed=0, n_saliency=3)
    with io.flocked(tmp_path / ".builtin.lock", lambda: None):   # the first run, generating
        waiter = threading.Thread(target=syn.ensure_builtin, args=(tmp_path,), kwargs=params)
        waiter.start()
        waiter.join(timeout=1)
        assert waiter.is_alive() and not calls     # it waits, generating nothing
        syn.ensure_builtin(tmp_path / "first", **params)   # the first run's data, moved into place below
        (tmp_path / "first" / "builtin").rename(tmp_path / "builtin")
    waiter.join(timeout=60)
    assert not waiter.is_alive() and len(calls) == 1   # the first's generation alone
    (tmp_path / ".builtin-killed").mkdir()
    syn.ensure_builtin(tmp_path, **{**params, "n_train": 6})
    assert len(calls) == 2 and not (tmp_path / ".builtin-killed").exists()


def test_a_builtin_dataset_that_cannot_be_written_is_one_error_naming_its_folder(tmp_path, monkeypatch):
    """A data/ folder read-only to this user (a shared install) said 'choose another output folder (--out_root,
    --out_dir)', which does not move the built-in dataset (a probe)."""
    from guidedlabelling import config as C
    from guidedlabelling.errors import InputError
    from guidedlabelling.runner import ensure_data
    blocker = tmp_path / "data"
    blocker.write_text("")   # a file where the folder should be: refused whoever runs the test, root too
    monkeypatch.setattr(C, "builtin_dir", lambda d: blocker / "builtin_64px_3_2")
    with pytest.raises(InputError) as e:
        ensure_data({"data": {"builtin": True, "builtin_train": 3, "builtin_val": 2, "builtin_size": 64}})
    assert e.value.messages == (f"{blocker}/builtin_64px_3_2: Not a directory; the built-in dataset of these settings "
                                "is generated there on first use: let this user write that folder (or free space "
                                "there), or have its owner run the same command once",)
