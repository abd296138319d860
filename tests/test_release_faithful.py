"""The project's functions against tests/release_reference.py, a re-expression of the release's own functions
(coallaoh/GuidedLabelling ff208cf, ResearchTools c27aa2b, Caffe c0597b1) written from that code, on random
inputs and on real MSRC photos. One test (or group) per item of docs/reference.md's "Differences from the release".
"""
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from PIL import Image

import release_reference as R
from crf_cases import has_pydensecrf
from guidedlabelling import guide_rules, sampling
from guidedlabelling.inference import Inputs, evaluate_folder, label_map
from guidedlabelling import transforms as T
from guidedlabelling.io import save_label_png
from guidedlabelling.metrics import classifier_report, release_seed_table, seed_curve, seed_histogram
from guidedlabelling.networks.vgg import GAPNet
from guidedlabelling.seeds import SeedRule, heatmap2segconf
from guidedlabelling.stages.saliency import saliency_map
from guidedlabelling.stages.seed_heatmaps import class_heatmaps
from guidedlabelling.stages.seed_eval import RELEASE_THRESHOLDS, scores

MSRC = Path(__file__).resolve().parents[2] / "shared" / "data" / "msrc_things"


def photos(n):
    files = sorted((MSRC / "JPEGImages").glob("*.jpg"))[::37][:n]
    if not files:
        pytest.skip("../shared/data/msrc_things is absent")
    return [(np.asarray(Image.open(f)), np.asarray(Image.open(MSRC / "SegmentationClass" / f"{f.stem}.png")))
            for f in files]


def random_images(rng, n=3):
    sizes = [(375, 500), (500, 333), (213, 320), (311, 200), (100, 80)]
    return [rng.integers(0, 256, sizes[k % len(sizes)] + (3,), dtype=np.uint8) for k in range(n)]


class Draws:
    """A stand-in for numpy's Generator that hands out given values, so that ours and the release's functions
    see the same random draws: uniform(lo, hi) = lo + (hi - lo) * u for the next u, random() the next u,
    integers(lo, hi) the next integer."""

    def __init__(self, uniforms=(), integers=()):
        self.u, self.i = list(uniforms), list(integers)

    def uniform(self, lo, hi):
        return lo + (hi - lo) * self.u.pop(0)

    def random(self):
        return self.u.pop(0)

    def integers(self, lo, hi):
        value = self.i.pop(0)
        assert lo <= value < hi
        return value


# ---- item 12: the mean ----

def test_mean_is_the_channel_means_of_ilsvrc_2012_mean_npy():
    assert np.array_equal(T.MEAN_BGR, R.MEAN_BGR_ILSVRC12)


# ---- item 11: image resize ----

def test_resize_longer_is_scipy_imresize(rng=np.random.default_rng(0)):
    images = random_images(rng, 5)
    images += [img for img, _ in photos(3)] if MSRC.exists() else []
    for img in images + [np.zeros((200, 311, 3), np.uint8)]:          # 311: the longer side comes out 320
        ours = T.resize_longer(img, 321)
        theirs = R.release_imresize(img, 321 / float(max(img.shape[:2])))
        assert ours.shape == theirs.shape
        diff = np.abs(ours.astype(int) - theirs.astype(int))
        assert diff.max() <= 1 and (diff == 0).mean() > 0.999   # Pillow 13 may swap its passes: +-1 at a few


# ---- item 1: the test geometry ----

@pytest.mark.parametrize("source", ["random", "msrc"])
def test_segmentation_test_input_is_the_releases(source):
    rng = np.random.default_rng(1)
    images = random_images(rng) if source == "random" else [img for img, _ in photos(3)]
    for img in images:
        x, offset, inner = T.fit_input(img, 531, "canvas", 321)
        ours = T.to_caffe_input(x)
        theirs, confs = R.release_test_input(img)
        assert ours.shape == theirs.shape == (3, 321, 321)
        assert np.abs(ours - theirs).max() < 2e-3
        assert list(offset) == confs["margin"] and inner == img.shape[:2]


def test_segmentation_test_labels_are_the_releases():
    rng = np.random.default_rng(2)
    for hw in [(375, 500), (213, 320), (500, 281)]:
        scores = rng.normal(size=(21, 41, 41)).astype(np.float32)
        _, offset, inner = T.fit_input(np.zeros(hw + (3,), np.uint8), 531, "canvas", 321)
        ours = T.unfit(torch.from_numpy(scores), (531, 531), offset, inner, hw).numpy()
        theirs, scoremap = R.release_test_labels(scores, hw, return_scoremap=True)
        assert np.abs(ours - scoremap.transpose(2, 0, 1)).max() < 1e-4     # float32 against the release's float64
        assert (ours.argmax(0) == theirs).mean() > 0.9999


def test_the_order_0_heatmap_back_mapping_is_scipy_zoom_order_0():
    """seed_heatmaps.test_interpord 0: the release zooms with scipy.ndimage.zoom(order=0), which aligns corners;
    torch's "nearest" (used before) picked another source pixel for many sizes (5 -> 9: 0 0 1 1 2 ... for 0 1 1 2 2)."""
    rng = np.random.default_rng(7)
    for (h, w), (oh, ow) in [((5, 5), (9, 3)), ((41, 41), (531, 531)), ((21, 30), (375, 500)), ((8, 8), (26, 42)),
                             ((7, 3), (1, 2)), ((64, 48), (64, 20))]:
        maps = rng.normal(size=(2, h, w)).astype(np.float32)
        ours = T.zoom(torch.from_numpy(maps), (oh, ow), order=0).numpy()
        theirs = ndi.zoom(maps, (1, oh / h, ow / w), order=0, mode="nearest")  # (no zeroed edge: docstring)
        assert theirs.shape == ours.shape == (2, oh, ow) and np.array_equal(ours, theirs)


# ---- items 2, 4, 5: segmentation training geometry and the 41x41 label ----

def test_label_to_41_is_pil_nearest_at_pixel_centres():
    rng = np.random.default_rng(3)
    for _ in range(5):
        label = rng.integers(0, 21, (321, 321), dtype=np.uint8)
        assert np.array_equal(T.shrink_label(label, 41), R.release_label_downsample(label).astype(np.uint8))


@pytest.mark.parametrize("source", ["random", "msrc"])
def test_segmentation_training_sample_is_the_releases(source):
    rng = np.random.default_rng(4)
    pairs = [(img, rng.integers(0, 21, img.shape[:2], dtype=np.uint8)) for img in random_images(rng, 4)] \
        if source == "random" else photos(3)
    for img, label in pairs:
        h, w = label.shape
        for flip in (0.2, 0.7):                           # random() < 0.5 flips, as the release's choice(2)
            rows, cols = int(rng.integers(0, max(h - 321, 0) + 1)), int(rng.integers(0, max(w - 321, 0) + 1))
            x, y = T.seg_train_sample(img, label, Draws([flip], [rows, cols]), 321, 41)
            rx, ry = R.release_seg_train_sample(img, label, -1 if flip < 0.5 else 1, rows, cols)
            assert np.abs(x - rx).max() < 1e-3 and np.array_equal(y, ry.astype(np.int64))


def test_random_crop_is_the_releases():
    rng = np.random.default_rng(5)
    for h, w in [(375, 500), (213, 320), (97, 33)]:
        for _ in range(50):
            u = rng.random(4)
            top, left, bottom, right = T.random_crop_box(h, w, Draws(u))
            assert (top, bottom, left, right) == R.release_random_crop_coords(h, w, u)


@pytest.mark.parametrize("source", ["random", "msrc"])
def test_seed_training_sample_is_the_releases(source):
    rng = np.random.default_rng(6)
    images = random_images(rng, 4) if source == "random" else [img for img, _ in photos(3)]
    for img in images:
        u, flip = rng.random(4), float(rng.random())
        x = T.seed_train_sample(img, Draws(list(u) + [flip]), 321)
        crop = R.release_random_crop_coords(*img.shape[:2], u)
        rx = R.release_seed_train_sample(img, crop, -1 if flip < 0.5 else 1)
        diff = np.abs(x - rx)
        assert diff.max() <= 1 + 1e-3 and (diff < 1e-3).mean() > 0.999   # the resize may differ by 1 at a few


# ---- the seed heatmaps: input, class activation maps, back-mapping (item "seed heatmap back-mapping") ----

class Photos:
    """The one method of a dataset that the stages' input pipeline (inference.Inputs) reads."""

    def __init__(self, images):
        self.images = images

    def image(self, i):
        return self.images[i]


@pytest.mark.parametrize("source", ["random", "msrc"])
def test_seed_heatmaps_are_the_releases(source):
    """seed_heatmaps' path (test_interpord 1, the default) from a photo to its class heatmaps, on the same
    features: the input, the CAM of each tagged class and its zoom back to the photo's size. The release's last row
    or column may be 0 for some sizes (docs/reference.md: deliberate); every other pixel is compared."""
    rng = np.random.default_rng(14)
    images = random_images(rng, 5) if source == "random" else [img for img, _ in photos(3)]
    net = GAPNet("GAP-HighRes", 20, width=0.125)
    for i, img in enumerate(images):
        x, (_, frame) = Inputs(Photos(images), [i], 321, "fit")[0]
        theirs, confs = R.release_seed_test_input(img)
        diff = np.abs(x.numpy() - theirs)
        assert diff.max() <= 1 + 1e-3 and (diff < 1e-3).mean() > 0.999   # the resize may differ by 1 at a few
        assert (frame.offset, frame.inner) == (tuple(confs["margin"]), confs["imshape"])
        feat = torch.relu(torch.randn(net.score.in_features, 41, 41, generator=torch.Generator().manual_seed(i)))
        classes = [3, 15]                                        # 1-based, as tagged
        with torch.no_grad():
            ours = class_heatmaps(net, [(i, (None, feat), frame)], classes, 1).numpy()
        ref = R.release_seed_backmap(R.release_seed_cam(feat.numpy(), net.score.weight.detach().numpy(),
                                                         np.array(classes, float)), confs)
        assert ours.shape == ref.shape == (2,) + img.shape[:2]
        kept = (ref != 0).all(0)                                 # where the release did not write its 0
        assert kept[:-1, :-1].all()
        np.testing.assert_allclose(ours[:, kept], ref[:, kept], rtol=1e-4, atol=1e-5 * np.abs(ref).max())


# ---- item 6: heatmap normalisation, and the seeds ----

def test_heatmap_normalisation_is_the_releases_even_for_maxima_at_or_below_zero():
    rng = np.random.default_rng(7)
    for case in range(20):
        heat = rng.normal(size=(3, 23, 31))
        if case % 3 == 1:
            heat[1] -= heat[1].max() + 0.5          # a negative maximum
        if case % 3 == 2:
            heat[2] -= heat[2].max()                # a zero maximum
        classes = [2, 5, 9]
        label, conf = heatmap2segconf(heat, classes)
        rlabel, rconf = R.release_heatmap2segconf(heat, heat.shape[1:], np.array(classes))
        assert np.array_equal(label, rlabel.astype(np.uint8))
        np.testing.assert_allclose(conf, rconf, rtol=1e-6)       # NaN where the release has NaN
        assert np.array_equal(SeedRule(20).labels(heat, classes),
                              R.release_seed_labels(heat, heat.shape[1:], np.array(classes), 20).astype(np.uint8))


# ---- the test-time CRF (item "test-time CRF") ----

def block_photo(rng, hw=(213, 320)):
    """A photo of flat coloured blocks with noise: edges for the CRF's bilateral kernel to follow."""
    blocks = rng.integers(0, 256, (4, 5, 3))
    img = np.kron(blocks, np.ones((hw[0] // 4 + 1, hw[1] // 5 + 1, 1)))[:hw[0], :hw[1]]
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.skipif(not has_pydensecrf(), reason="pydensecrf2 (the release's CRF) is not installed")
@pytest.mark.parametrize("source", ["blocks", "msrc"])
def test_test_time_crf_is_the_releases(source):
    """seg_test's labels with test_pcrf deeplab, from the 21x41x41 scores to the CRF's labels in the image frame,
    against the release's softmax of its score map, CRF on log p, argmax (the same CRF library: only float32
    against float64 and our clip of p at 1e-8 differ); the default backend, torch's, agrees as docs/crf.md says."""
    rng = np.random.default_rng(15)
    images = [block_photo(rng), block_photo(rng, (300, 200))] if source == "blocks" else \
        [img for img, _ in photos(2)]
    for i, img in enumerate(images):
        _, (_, frame) = Inputs(Photos(images), [i], 531, "canvas", 321)[0]
        scores = ndi.gaussian_filter(rng.normal(size=(21, 41, 41)), (0, 2, 2)).astype(np.float32) * 8
        _, scoremap = R.release_test_labels(scores, img.shape[:2], return_scoremap=True)
        theirs = R.release_test_crf_labels(scoremap, img)
        assert (theirs != scoremap.argmax(2)).mean() > 0.01            # the CRF moved labels: a case that tells
        ours = label_map(torch.from_numpy(scores), img, frame, "deeplab", crf_backend="pydensecrf")
        assert ours.shape == theirs.shape and (ours == theirs).mean() > 0.999
        assert (label_map(torch.from_numpy(scores), img, frame, "deeplab") == theirs).mean() > 0.99


# ---- item 7: connected components; rule G2 ----

def test_components_drop_thin_ones_as_the_release():
    rng = np.random.default_rng(8)
    for _ in range(30):
        mask = rng.random((40, 60)) < 0.08
        mask[rng.integers(40), 5:45] = True           # a long one-row line
        mask[3:30, rng.integers(60)] = True           # a long one-column line
        for minimum in (1, 5, 25):
            lab, n = guide_rules.components(mask, minimum)
            ours = {frozenset(np.flatnonzero(lab == k)) for k in range(1, n + 1)}
            theirs = {frozenset(np.flatnonzero(m)) for m in R.release_components(mask, minimum)}
            assert ours == theirs


def stub_crf(image, energy, params="deeplab", **kwargs):
    """Our dense_crf's interface, deterministic: the marginals are the unary (minus the energy) plus a ramp."""
    return -energy + 1e-3 * np.arange(energy.shape[2])[None, None, :]


def release_stub_crf(image, unary):
    return unary + 1e-3 * np.arange(unary.shape[1])[None, :, None]


def test_g2_is_the_releases_intent(monkeypatch):
    """The release's G2 without its indexing slip (METHOD: the intent), the CRF stubbed in both."""
    monkeypatch.setattr(guide_rules, "dense_crf", stub_crf)
    rng = np.random.default_rng(9)
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    for _ in range(25):
        seed = np.zeros((60, 80), np.uint8)
        for c in rng.choice([1, 2, 3, 4], rng.integers(1, 4), replace=False):
            for _ in range(rng.integers(1, 3)):
                y, x = rng.integers(0, 50), rng.integers(0, 70)
                seed[y:y + rng.integers(3, 12), x:x + rng.integers(3, 12)] = c
        salient = np.zeros((60, 80), bool)
        for _ in range(rng.integers(1, 4)):
            y, x = rng.integers(0, 45), rng.integers(0, 60)
            salient[y:y + rng.integers(8, 25), x:x + rng.integers(8, 25)] = True
        ours = guide_rules.g2(image, seed, salient)
        theirs = R.release_g2(image, seed.astype(float), salient, release_stub_crf, emulate_slip=False)
        assert np.array_equal(ours, theirs)


@pytest.mark.skipif(not has_pydensecrf(), reason="pydensecrf2 (the release's CRF) is not installed")
def test_g2_on_msrc_photos_with_the_real_crf():
    for img, gt in photos(3):
        classes = [c for c in np.unique(gt) if 0 < c < 255]
        h, w = gt.shape
        yy, xx = np.mgrid[:h, :w]
        heat = np.stack([np.exp(-((yy - h * (k + 1) / (len(classes) + 1)) ** 2 + (xx - w / 2) ** 2) / 2e3)
                         for k in range(len(classes))])
        seed = SeedRule(20).labels(heat, classes)
        salient = (gt > 0) & (gt < 255)
        ours = guide_rules.g2(img, seed, salient)
        theirs = R.release_g2(img, seed.astype(float), salient, lambda im, u: R.release_densecrf(im, u, "deeplab"),
                              emulate_slip=False)
        assert (ours == theirs).mean() > 0.999


# ---- item 8: class-balanced batches ----

def test_balanced_epochs_are_the_releases():
    rng = np.random.default_rng(10)
    lengths = []
    for seed in range(10):
        labels = [sorted(set(rng.choice(np.arange(1, 21), rng.integers(1, 3)).tolist())) for _ in range(600)]
        ours = sampling.balanced_epoch(labels, 20, np.random.default_rng(seed))
        theirs = R.release_balanced_batch([np.array(cls) for cls in labels], np.random.default_rng(seed))
        assert ours == theirs
        lengths.append(len(ours))
    assert max(lengths) > 40                                      # epochs of several rounds were compared


# ---- item 9: classifier AP with difficult images ----

def test_average_precision_with_difficult_entries_is_the_releases():
    rng = np.random.default_rng(11)
    for _ in range(50):
        n = rng.integers(5, 60)
        scores = rng.normal(size=(n, 3))
        labels = rng.choice([1, -1, -1, 0], size=(n, 3))
        labels[0] = 1                                            # every class has a positive
        ours = classifier_report(scores, labels, ["a", "b", "c"])["per_class_AP"]
        for c, name in enumerate("abc"):
            assert ours[name] == pytest.approx(100 * R.release_cls_ap(scores[:, c], labels[:, c]))


# ---- item 10: the seed evaluation's thresholds and table ----

def seed_histograms(rng, images, hw, num_classes, lifts=(0,)):
    """(ours, the release's) seed histograms at its thresholds, summed over random images of num_classes values and
    5% void, with heatmaps of normal noise each class's lifted by one of `lifts`."""
    ours, theirs = 0, 0
    for _ in range(images):
        gt = rng.choice(np.arange(num_classes), size=hw).astype(np.uint8)
        gt[rng.random(hw) < 0.05] = 255
        classes = [c for c in np.unique(gt) if 0 < c < 255]
        heat = rng.normal(size=(len(classes), *hw)) + rng.choice(lifts, size=(len(classes), 1, 1))
        ours = ours + seed_histogram(gt, *scores(heat, classes, 100, RELEASE_THRESHOLDS), RELEASE_THRESHOLDS, 21)
        theirs = theirs + R.release_seed_eval_image(gt, heat)
    return ours, theirs


def test_seed_evaluation_with_the_releases_thresholds_is_the_releases():
    ours, theirs = seed_histograms(np.random.default_rng(12), 6, (30, 40), 21)
    table, release = release_seed_table(ours), R.release_seed_eval(theirs)
    for key, ref in [("fg_precision", release["fg_prec"]), ("fg_recall", release["fg_rec"]),
                     ("bg_precision", release["bg_prec"]), ("bg_recall", release["bg_rec"]),
                     ("max_mIoU", release["max_miou"] / 100), ("mean_precision", release["mean_precision"])]:
        assert table[key] == (None if np.isnan(ref) else pytest.approx(100 * ref)), key


def test_seed_curve_with_the_releases_thresholds_is_the_releases_row_by_row():
    """Every point of seed_eval's curve (210: the release's 209 thresholds and 1.0) against the same row of the
    release's get_curves (its T + 1 rows: row i keeps the seeds whose confidence is >= thresrange[i]): per-class
    precision, recall and IoU, where the release's are defined."""
    ours, theirs = seed_histograms(np.random.default_rng(16), 4, (20, 30), 6, lifts=(0, 1.5))
    release, names = R.release_seed_eval(theirs), [str(c) for c in range(21)]
    curve = seed_curve(ours, RELEASE_THRESHOLDS, names, 100)
    assert len(curve) == len(release["prec"]) == 210
    for point, *rows in zip(curve, release["prec"], release["rec"], release["acc"]):
        for c in range(6):
            got = point["per_class"][str(c)]
            for key, row in zip(("precision", "recall", "IoU"), rows):
                assert got[key] == (None if np.isnan(row[c]) else pytest.approx(100 * row[c])), (point, c, key)


# ---- the segmentation mIoU ----

class Masks:
    """The part of a dataset evaluate_folder reads: ids, ground-truth masks, class names."""

    def __init__(self, masks, num_classes):
        self.masks, self.num_classes, self.classes = masks, num_classes, [str(c) for c in range(num_classes)]
        self.items = [type("Item", (), {"id": f"im{i}"})() for i in range(len(masks))]

    def label(self, i):
        return self.masks[i]

    def annotated_at(self, i):
        return True


def test_segmentation_miou_is_the_releases_over_images(tmp_path):
    """evaluate_folder's per-class IoU and mIoU of predicted PNGs against the release's segmentation/test.py: one
    confusion matrix summed over the images (void ground truth left out), IoU per class, the plain mean over all
    21 classes. Where a class occurs in neither, the release's mean is NaN and ours the mean over the others
    (docs/reference.md, item mIoU)."""
    rng = np.random.default_rng(17)
    for absent in (None, 7):
        masks, confcounts = [], 0
        for i, hw in enumerate([(40, 50), (33, 21), (60, 17)]):
            gt = rng.choice(np.arange(21), size=hw).astype(np.uint8)
            gt[rng.random(hw) < 0.1] = 255
            pred = rng.choice(np.arange(21), size=hw).astype(np.uint8)
            if absent:
                gt[gt == absent], pred[pred == absent] = 0, 0
            save_label_png(tmp_path / f"im{i}.png", pred)
            masks.append(gt)
            confcounts = confcounts + R.release_seg_confusion(gt, pred)
        rep, theirs = evaluate_folder(Masks(masks, 21), tmp_path), R.release_miou(confcounts)
        for c in range(21):
            got = rep["per_class_IoU"][str(c)]
            assert got == (None if np.isnan(theirs[c]) else pytest.approx(theirs[c])), c
        if absent:
            assert np.isnan(theirs.mean()) and rep["mIoU"] == pytest.approx(np.nanmean(theirs))
        else:
            assert rep["mIoU"] == pytest.approx(theirs.mean())


# ---- the saliency stage's geometry (no item of its own; the release's saliency/test.py) ----

@pytest.mark.parametrize("source", ["random", "msrc"])
def test_saliency_input_and_back_mapping_are_the_releases(source):
    rng = np.random.default_rng(13)
    images = random_images(rng, 4) if source == "random" else [img for img, _ in photos(3)]
    for img in images:
        x, offset, inner = T.fit_input(img, 321, "shrink")
        theirs, margins, _, h, w = R.release_saliency_input(img)
        # the same canvas; the release's saliency net took DeepLab's mean, ours the one it was trained with
        canvas = T.to_caffe_input(x) + T.MEAN_BGR[:, None, None]
        diff = np.abs(canvas - (theirs + R.MEAN_BGR_DEEPLAB[:, None, None]))
        assert diff.max() <= 1 + 1e-3 and (diff < 1e-3).mean() > 0.999   # the resize may differ by 1 at a few
        assert (offset, inner) == ((margins[0], margins[2]), (h, w))
        scores = torch.from_numpy(rng.normal(size=(2, 41, 41)).astype(np.float32))
        ours = saliency_map(scores, 321, Inputs(Photos([img]), [0], 321, "shrink")[0][1][1])
        ref = R.release_saliency_output(torch.softmax(scores, 0).numpy(), margins, *img.shape[:2], h, w)
        assert np.abs(ours - ref).max() <= 0.5 + 1e-3       # the release's float map, rounded to 8 bits to store
