"""Self-checks of tests/release_reference.py, the re-expression of the release's functions that
test_release_faithful.py compares the project with: each function against hand-worked values or against the
library the release called, where today's version still behaves the same."""
import glob
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.transform as skt
from PIL import Image

import release_reference as R

PHOTO_DIR = str(Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'msrc_things')


def _photos(n=3):
    fs = sorted(glob.glob(os.path.join(PHOTO_DIR, 'JPEGImages', '*.jpg')))[:n]
    if not fs:
        pytest.skip('no photos')
    return fs


def _load(f):
    return np.asarray(Image.open(f))          # the release's load_image_PIL


def _with_photos(synthetic, n):
    """The synthetic images, then n photos where ../shared/data is at hand (the synthetic ones run without it)."""
    found = sorted(glob.glob(os.path.join(PHOTO_DIR, 'JPEGImages', '*.jpg')))[:n]
    return synthetic + [_load(f) for f in found]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ------------------------------------------------------------------ item 11
def test_mean_constants_are_exact():
    """The float64 means of Caffe's ilsvrc_2012_mean.npy (c0597b1), checked once against the file itself."""
    assert [float(x).hex() for x in R.MEAN_BGR_ILSVRC12] == [
        '0x1.a00727d82a000p+6', '0x1.d2acd16b0e000p+6', '0x1.eab7355228000p+6']


# ------------------------------------------------------------------ item 10
def test_imresize_bytescale_and_sizes():
    a = np.array([[0., 0.5], [1.0, 2.0]])
    # float 2-D, mode None -> 'L' after bytescale: min->0, max->255, (x-min)*255/(max-min)+.5 truncated
    assert R.release_imresize(a, [2, 2]).tolist() == [[0, 64], [128, 255]]
    # float factor -> floor(W*f), floor(H*f)
    img = np.zeros((375, 500, 3), np.uint8)
    assert R.release_imresize(img, 321 / 500.).shape == (240, 321, 3)   # 375*0.642=240.75
    # the longer side can come out as 320 (float error in 311*(321/311.))
    img = np.zeros((200, 311, 3), np.uint8)
    assert R.release_imresize(img, 321 / 311.).shape[1] == 320
    # int -> percent
    assert R.release_imresize(np.zeros((10, 20), np.uint8), 50).shape == (5, 10)


@pytest.mark.parametrize('shape,out', [((500, 375), (321, 240)), ((213, 320), (214, 321)),
                                       ((321, 321), (41, 41)), ((37, 50), (321, 200))])
def test_imresize_matches_pillow_when_pillow_goes_horizontal_first(rng, shape, out):
    # The re-expression follows Pillow 4.x (horizontal pass, then vertical).  Pillow >=13
    # (PR #9549, 2026) goes vertical first when the height shrinks much more; these sizes
    # are not such cases, so today's Pillow must agree bit for bit.
    a = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    ref = np.asarray(Image.fromarray(a).resize(out[::-1], Image.BILINEAR))
    assert np.array_equal(R.release_imresize(a, list(out)), ref)
    f = rng.normal(size=shape).astype(np.float32)
    ref = np.asarray(Image.fromarray(f, mode='F').resize(out[::-1], Image.BILINEAR))
    assert np.array_equal(R.release_imresize(f, list(out), mode='F'), ref)
    ref = np.asarray(Image.fromarray(f, mode='F').resize(out[::-1], Image.NEAREST))
    assert np.array_equal(R.release_imresize(f, list(out), interp='nearest', mode='F'), ref)


def test_imresize_real_photo():
    for f in _photos():
        img = _load(f)
        H, W = img.shape[:2]
        fac = 321 / float(max(H, W))
        out = R.release_imresize(img, fac)
        assert out.dtype == np.uint8
        assert out.shape[:2] == (int(H * fac), int(W * fac))
        ref = np.asarray(Image.fromarray(img).resize((out.shape[1], out.shape[0]), Image.BILINEAR))
        assert np.array_equal(out, ref)


# ------------------------------------------------------------------ helpers
def test_reflect101_matches_cv2(rng):
    for (h, w, t, b, l, r) in [(10, 7, 3, 4, 5, 6), (5, 4, 20, 13, 9, 30), (213, 320, 159, 159, 105, 106)]:
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        assert np.array_equal(cv2.copyMakeBorder(a, t, b, l, r, cv2.BORDER_REFLECT_101),
                              R.reflect101_pad(a, t, b, l, r))
    assert R.reflect101_pad(np.arange(4)[None], 0, 0, 3, 3)[0].tolist() == [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]


def test_zoom_matches_scipy_including_zero_edge_quirk(rng):
    for shp, z in [((21, 41, 41), [1, 531 / 41., 531 / 41.]), ((1, 41, 41), [1, 321 / 41., 321 / 41.]),
                   ((2, 161, 200), [1, 375 / 161., 500 / 200.]), ((3, 151, 20), [1, 150 / 151., 1.])]:
        a = rng.normal(size=shp).astype(np.float32)
        assert np.array_equal(ndi.zoom(a, z, order=1), R.release_nd_zoom_order1(a, z))
    # 151 -> 150: 149*(150/149) > 150 by one ulp, so the last output row is cval 0
    out = R.release_nd_zoom_order1(np.ones((151, 3)), [150 / 151., 1.])
    assert out.shape == (150, 3) and (out[-1] == 0).all() and (out[:-1] == 1).all()


# ------------------------------------------------------------------ item 1
def test_test_input_constant_image_hand_values():
    img = np.zeros((100, 80, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10, 20, 30          # R, G, B
    x, confs = R.release_test_input(img)
    assert x.shape == (3, 321, 321) and x.dtype == np.float32
    # constant canvas -> caffe resize_image's constant branch; channels are B, G, R
    np.testing.assert_array_equal(x[0], np.float32(30 - 104.0069879317889))
    np.testing.assert_array_equal(x[1], np.float32(20 - 116.66876761696767))
    np.testing.assert_array_equal(x[2], np.float32(10 - 122.6789143406786))
    assert confs == dict(margin=[215, 225], input_size=531, imshape=(100, 80), im_original_shape=(100, 80))


def test_test_input_against_library_path(rng):
    for img in _with_photos([rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)], 2):
        H, W = img.shape[:2]
        x, confs = R.release_test_input(img)
        m0, m1 = (531 - H) // 2, (531 - W) // 2
        canvas = cv2.copyMakeBorder(img, m0, 531 - H - m0, m1, 531 - W - m1, cv2.BORDER_REFLECT_101)
        c = canvas.astype(np.float32)
        lo, hi = c.min(), c.max()
        rs = skt.resize((c - lo) / (hi - lo), (321, 321), order=1, mode='constant',
                        anti_aliasing=False) * (hi - lo) + lo
        ref = rs.transpose(2, 0, 1)[::-1] - R.MEAN_BGR_ILSVRC12[:, None, None]
        assert np.abs(ref - x).max() < 1e-3
        assert confs['margin'] == [m0, m1]


def test_test_labels_geometry_by_hand():
    H, W = 213, 320
    s = np.zeros((21, 41, 41), np.float32)
    s[1, :, :21] = 1.0      # class 1 on grid columns 0..20
    s[2, :, 21:] = 1.0      # class 2 on grid columns 21..40
    seg = R.release_test_labels(s, (H, W))
    assert seg.shape == (H, W) and seg.dtype == np.uint8
    # canvas column x samples grid t = x*40/530: class 1 while t < 20.5, i.e. x <= 271
    m1 = (531 - W) // 2                         # 105
    j = np.arange(W)
    expect = np.where(j + m1 <= 271, 1, 2)
    assert (seg == expect[None, :]).all()
    # one class everywhere -> that class; ties -> first index (0)
    assert (R.release_test_labels(np.zeros((21, 41, 41), np.float32), (H, W)) == 0).all()


def test_test_labels_real_photo_and_crf(rng):
    img = _load(_photos(1)[0])
    H, W = img.shape[:2]
    s = rng.normal(size=(21, 41, 41)).astype(np.float32)
    seg, scoremap = R.release_test_labels(s, (H, W), return_scoremap=True)
    assert scoremap.shape == (H, W, 21) and scoremap.dtype == np.float32
    assert (seg == scoremap.argmax(2)).all()
    # the CRF post-processing call, with a stub (identity on log p) and with pydensecrf
    stub = R.release_test_crf_labels(scoremap, img, crf_fn=lambda im, u: u)
    assert (stub == seg).all()
    pytest.importorskip("pydensecrf.densecrf")
    out = R.release_test_crf_labels(scoremap, img)
    assert out.shape == (H, W) and out.dtype == np.uint8


def test_confusion_and_miou():
    gt = np.array([[0, 1, 255], [1, 1, 0]])
    seg = np.array([[0, 1, 1], [0, 1, 0]])
    c = R.release_seg_confusion(gt, seg)
    assert c[0, 0] == 2 and c[1, 1] == 2 and c[0, 1] == 1 and c.sum() == 5
    iou = R.release_miou(c)
    assert iou[0] == pytest.approx(100 * 2 / 3) and iou[1] == pytest.approx(100 * 2 / 3)


# ------------------------------------------------------------------ item 2
def test_label_downsample_indices():
    rows = np.repeat(np.arange(321, dtype=np.float32)[:, None], 321, 1)
    out = R.release_label_downsample(rows)
    idx = out[:, 0].astype(int)
    assert idx[:3].tolist() == [3, 11, 19] and idx[-1] == 317
    assert (idx == np.floor((np.arange(41) + 0.5) * 321 / 41)).all()
    assert (out == out[:, :1]).all() and out.dtype == np.float32
    ref = np.asarray(Image.fromarray(rows, mode='F').resize((41, 41), Image.NEAREST))
    assert np.array_equal(out, ref)


# ------------------------------------------------------------------ item 3
def test_seg_train_sample_none(rng):
    img = rng.integers(0, 256, (400, 500, 3), dtype=np.uint8)
    lab = rng.integers(0, 21, (400, 500)).astype(np.uint8)
    x, y = R.release_seg_train_sample(img, lab, flip=-1, off_row=79, off_col=0)
    assert x.shape == (3, 321, 321) and y.shape == (41, 41) and y.dtype == np.float32
    fl = lab[:, ::-1]
    crop = fl[79:400, 0:321]
    assert np.array_equal(y, R.release_label_downsample(crop.astype(np.float32)))
    # image content: canvas pixel (r, c) is flipped[79 + r, c]; check via the constant-free
    # path (identity resize) within float32 rounding
    canvas = img[:, ::-1][79:400, 0:321].astype(np.float64)
    ref = canvas.transpose(2, 0, 1)[::-1] - R.MEAN_BGR_ILSVRC12[:, None, None]
    assert np.abs(ref - x).max() < 1e-3
    with pytest.raises(ValueError):
        R.release_seg_train_sample(img, lab, flip=1, off_row=80, off_col=0)


def test_seg_train_sample_small_real_photo_reflect_padded_label():
    f = _photos(1)[0]
    img = _load(f)
    lab = np.asarray(Image.open(f.replace('JPEGImages', 'SegmentationClass').replace('.jpg', '.png')))
    H, W = img.shape[:2]                                  # 213 x 320: both < 321
    x, y = R.release_seg_train_sample(img, lab, flip=1, off_row=0, off_col=0)
    m0 = 321 - H
    pad = R.reflect101_pad(lab, m0 // 2, m0 - m0 // 2, 0, 1)
    assert np.array_equal(y, R.release_label_downsample(pad.astype(np.float32)))
    assert set(np.unique(y)) <= set(np.unique(lab).astype(np.float32))   # 255 reflected, not added


def test_seg_train_sample_tight_runs(rng):
    img = rng.integers(0, 256, (300, 420, 3), dtype=np.uint8)
    lab = rng.integers(0, 21, (300, 420)).astype(np.uint8)
    crop = R.release_random_crop_coords(300, 420, [0.1, 0.9, 0.5, 0.5])
    x, y = R.release_seg_train_sample(img, lab, 1, 0, 0, resize='tight', crop=crop)
    assert x.shape == (3, 321, 321) and y.shape == (41, 41)


# ------------------------------------------------------------------ item 4
def test_random_crop_coords():
    assert R.release_random_crop_coords(500, 375, [0, 0, 0, 0]) == (0, 450, 0, 337)
    x0, x1, y0, y1 = R.release_random_crop_coords(500, 375, [0.999999, 0.999999, 0.999999, 0.999999])
    assert (x0, x1, y0, y1) == (49, 499, 37, 374)          # the last row/column is never kept


def test_seed_train_sample(rng):
    for img in _with_photos([rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)], 1):
        H, W = img.shape[:2]
        crop = R.release_random_crop_coords(H, W, rng.random(4))
        x = R.release_seed_train_sample(img, crop, flip=-1)
        assert x.shape == (3, 321, 321) and x.dtype == np.float32
        # by hand: resize, pad, flip, BGR, mean
        c = img[crop[0]:crop[1], crop[2]:crop[3]]
        r = R.release_imresize(c, 321 / float(max(c.shape[:2])))
        _, pads = R._centered_pad_amounts(r.shape[:2], 321)
        p = R.reflect101_pad(r, *pads)[:, ::-1]
        ref = p.astype(np.float64).transpose(2, 0, 1)[::-1] - R.MEAN_BGR_ILSVRC12[:, None, None]
        assert np.abs(ref - x).max() < 1e-3


def test_multilabel():
    y = R.release_multilabel(np.array([[0, 15, 255], [3, 3, 0]], np.uint8))
    assert np.nonzero(y)[0].tolist() == [2, 14]


# ------------------------------------------------------------------ item 5
def test_seed_test_input_and_backmap(rng):
    for img in _with_photos([rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)], 1):
        H, W = img.shape[:2]
        x, confs = R.release_seed_test_input(img)
        assert x.shape == (3, 321, 321)
        h, w = confs['imshape']
        assert max(h, w) in (320, 321)
        fmap = rng.random((1024, 41, 41)).astype(np.float32)
        wts = rng.normal(size=(20, 1024)).astype(np.float32)
        heat = R.release_seed_cam(fmap, wts, np.array([3.0, 15.0]))
        assert heat.shape == (2, 41, 41) and heat.dtype == np.float64
        assert np.array_equal(heat[1], np.sum(fmap * wts[14][:, None, None], axis=0))
        hm = R.release_seed_backmap(heat, confs)
        assert hm.shape == (2, H, W)
        const = R.release_seed_backmap(np.ones((1, 41, 41)), confs)
        assert np.allclose(const[:, :-1, :-1], 1.0)    # (last row/col may be 0: zoom quirk)


def test_heatmap2segconf_by_hand():
    hm = np.zeros((2, 2, 3))
    hm[0] = [[1, 2, 4], [0, 0, 0]]          # max 4
    hm[1] = [[2, 2, 2], [1, 1, 0.5]]        # max 2
    seg, conf = R.release_heatmap2segconf(hm, (2, 3), np.array([3., 7.]))
    np.testing.assert_allclose(conf, [[1, 1, 1], [.5, .5, .25]])
    # (0,1): 0.5 vs 1.0 -> 7; (0,2): 1.0 vs 1.0 tie -> first map (class 3)
    assert seg.tolist() == [[7, 7, 3], [7, 7, 7]]
    seed = R.release_seed_labels(hm, (2, 3), np.array([3., 7.]), seedthres=50)
    assert seed.tolist() == [[7, 7, 3], [7, 7, 0]]


def test_heatmap2segconf_nonpositive_max():
    hm = np.zeros((2, 1, 3))
    hm[0] = [[-4, -1, -2]]     # max -1: normalised map = [4, 1, 2] -> dominates
    hm[1] = [[0.5, 1, 0.2]]
    seg, conf = R.release_heatmap2segconf(hm, (1, 3), np.array([1., 2.]))
    assert conf.tolist() == [[4, 1, 2]] and seg.tolist() == [[1, 1, 1]]
    hm[0] = [[0, -1, -2]]      # max 0: 0/0 = nan, -1/0 = -inf
    seg, conf = R.release_heatmap2segconf(hm, (1, 3), np.array([1., 2.]))
    assert np.isnan(conf[0, 0]) and seg[0, 0] == 1           # argmax takes the nan
    assert R.release_seed_labels(hm, (1, 3), np.array([1., 2.]))[0, 0] == 0


# ------------------------------------------------------------------ item 6
def test_components_rules():
    m = np.zeros((20, 60), bool)
    m[1, 0:40] = True                        # 40 px in one row: bbox area 0 -> dropped
    m[5:10, 5:10] = True                     # 25 px -> kept
    m[12:16, 20:26] = True                   # 24 px -> dropped (< 25)
    m[12, 40] = m[13, 41] = True             # diagonal neighbours: one component (8-conn)
    m[14:18, 42:50] = True
    m[13, 41] = True
    cc = R.release_components(m)
    assert len(cc) == 2
    assert cc[0].sum() == 25
    assert cc[1][12, 40] and cc[1].sum() == 2 + 32


def test_g2_rules_with_stub_crf():
    H, W = 60, 80
    img = np.zeros((H, W, 3), np.uint8)
    seed = np.zeros((H, W))                  # 0 = background seed everywhere ...
    seed[20:30, 5:15] = 3                    # class 3 seed inside S1
    seed[20:30, 40:45] = 3                   # class 3 seed inside S3
    seed[20:30, 52:57] = 5                   # class 5 seed inside S3
    seed[45:55, 65:75] = 5                   # class 5 seed outside any saliency
    sal = np.zeros((H, W), bool)
    sal[0:35, 0:20] = True                   # S1 (touches rows 0,1)
    sal[15:35, 35:60] = True                 # S3 (two classes)
    sal[40:55, 25:40] = True                 # S2 (no seed but background)
    seed[40:55, 25:40] = 0
    calls = []

    def stub_crf(im, unary):
        calls.append(unary.shape)
        return unary                         # argmax of the blurred seed masks

    g_slip = R.release_g2(img, seed, sal, stub_crf, gt_cls=np.array([0., 3., 5., 255.]))
    g_int = R.release_g2(img, seed, sal, stub_crf, gt_cls=np.array([0., 3., 5., 255.]),
                         emulate_slip=False)
    assert calls and calls[0] == (H, W, 2)
    # intent: S1 -> 3 everywhere, S2 -> 0, unused fg seed keeps 5, S3 split 3 | 5
    assert (g_int[0:35, 0:20] == 3).all()
    assert (g_int[40:55, 25:40] == 0).all()
    assert (g_int[45:55, 65:75] == 5).all()
    assert g_int[25, 40] == 3 and g_int[25, 56] == 5
    assert set(np.unique(g_int[15:35, 35:60])) == {3, 5}
    # the slip: rows 0 and 1 zeroed (the bg seed component touching S1 has pixels outside)
    assert (g_slip[0:2] == 0).all()
    assert np.array_equal(g_slip[2:], g_int[2:])


def test_g2_real_photo_runs():
    f = _photos(1)[0]
    img = _load(f)
    gt = np.asarray(Image.open(f.replace('JPEGImages', 'SegmentationClass').replace('.jpg', '.png')))
    H, W = gt.shape
    cls = np.unique(gt.astype(np.float64))
    fg = cls[(cls != 0) & (cls != 255)]
    yy, xx = np.mgrid[0:H, 0:W]
    heat = np.stack([np.exp(-((yy - H / 2) ** 2 + (xx - W / 2) ** 2) / (2 * 40. ** 2))] * len(fg))
    seed = R.release_seed_labels(heat, (H, W), fg)
    sal = R.release_saliency_mask(((gt != 0) & (gt != 255)) * 255.)     # 'salor'
    guide = R.release_g2(img, seed, sal, lambda im, u: u, gt_cls=cls)
    assert guide.shape == (H, W) and guide.dtype == np.uint8
    assert set(np.unique(guide)) <= set(np.concatenate([[0], fg]).astype(np.uint8))


# ------------------------------------------------------------------ item 7
def test_balanced_batch_rounds(rng):
    labellist = [np.unique(rng.choice(np.arange(1, 21), size=rng.integers(1, 4))) for _ in range(400)]
    out = R.release_balanced_batch(labellist, np.random.RandomState(543))
    assert out == R.release_balanced_batch(labellist, np.random.RandomState(543))
    covered = set()
    for i in out:
        c = set(labellist[i].tolist())
        assert not (c & covered)              # no class repeated within a round
        covered |= c
        if len(covered) == 20:
            covered = set()
    out2 = R.release_balanced_batch(labellist, np.random.default_rng(0))
    assert len(out2) > 20


# ------------------------------------------------------------------ item 8
def test_cls_ap_by_hand():
    assert R.release_cls_ap([0.9, 0.8, 0.7, 0.6], [1, -1, 1, 0]) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert R.release_cls_ap([0.9, 0.8, 0.7], [0, 1, -1]) == pytest.approx(1.0)   # difficult on top
    assert R.release_cls_ap([0.1, 0.2, 0.3], [1, -1, -1]) == pytest.approx(1 / 3)


# ------------------------------------------------------------------ item 9
def test_seed_eval_rows_are_thresholds(rng):
    H, W = 30, 40
    gt = np.zeros((H, W), np.uint8)
    gt[5:20, 5:25] = 8
    gt[22:28, 30:38] = 12
    gt[0, :] = 255
    heat = rng.normal(size=(2, H, W)) + 0.5
    hist = R.release_seed_eval_image(gt, heat)
    res = R.release_seed_eval(hist)
    T = len(R.SEED_EVAL_THRESRANGE)
    assert res['prec'].shape == (T + 1, 21)
    seg, conf = R.release_heatmap2segconf(heat, (H, W), np.array([8., 12.]))
    conf = np.clip(conf, -10, 0.99)
    for i in [0, 5, 120, 150, T - 1]:
        pred = np.where(conf >= R.SEED_EVAL_THRESRANGE[i], seg, 0) if i > 0 else seg
        v = gt < 255
        for c in [0, 8, 12]:
            tp = ((pred == c) & (gt == c) & v).sum()
            with np.errstate(invalid='ignore', divide='ignore'):
                np.testing.assert_allclose(res['rec'][i, c], tp / ((gt == c) & v).sum())
                np.testing.assert_allclose(res['prec'][i, c], tp / ((pred == c) & v).sum())
    assert np.isnan(res['prec'][0, 0])        # no background predicted before thresholding
    assert res['rec'][T, 0] == 1.0            # last row: everything background


# ------------------------------------------------------------------ item 12
def test_saliency_geometry(rng):
    for img in _with_photos([rng.integers(0, 256, (213, 320, 3), dtype=np.uint8)], 1):   # smaller than 321: kept
        x, margins, factor, h, w = R.release_saliency_input(img)
        assert x.shape == (3, 321, 321) and factor == 1 and (h, w) == img.shape[:2]
    big = rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)
    x, margins, factor, h, w = R.release_saliency_input(big)
    assert factor == pytest.approx(0.642) and (h, w) == (240, 321)
    prob = rng.random((2, 41, 41)).astype(np.float32)
    sal = R.release_saliency_output(prob, margins, 375, 500, h, w)
    assert sal.shape == (375, 500) and sal.max() == pytest.approx(255)


def test_vgg_subsampling_shapes(rng):
    fc6, b6, fc7, b7 = R.deeplab_largefov_init_from_vgg16(
        np.arange(4096 * 25088, dtype=np.float32).reshape(4096, 25088), np.arange(4096.),
        np.zeros((4096, 4096), np.float32), np.arange(4096.))
    assert fc6.shape == (1024, 512, 3, 3) and fc7.shape == (1024, 1024, 1, 1)
    # filter 1 of the result is VGG filter 4; tap (1,1) is VGG tap (3,3) = flat 3*7+3 = 24
    assert fc6[1, 0, 1, 1] == 4 * 25088 + 24 and b6[1] == 4 and b7[-1] == 4092
