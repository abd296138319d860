"""Independent re-expression of selected functions of the GuidedLabelling release.

Release: coallaoh/GuidedLabelling @ ff208cf (Caffe, Python 2), its submodules
coallaoh/ResearchTools @ c27aa2b and BVLC/caffe @ c0597b1.  Every function
below was written from the release's code (cited as ``file:line``) and from the
sources of the libraries of that era (scipy 0.19 ``scipy.misc.imresize`` /
``toimage`` / ``bytescale``; Pillow 4.x ``Resample.c`` / ``Geometry.c``;
scikit-image 0.13 ``transform.resize``; scipy 0.19 ``ndimage.zoom`` and
``gaussian_filter``; OpenCV ``BORDER_REFLECT_101``).  Nothing is copied; old
library behaviour is re-implemented explicitly in numpy so that the result does
not depend on today's versions of those libraries.  See NOTES.md for the
derivations and the edge cases.

Conventions: images are numpy arrays, HxWx3 uint8 **RGB** exactly as the
release loads them (``np.asarray(PIL.Image.open(jpg))``,
ResearchTools/util/images.py:6-15).  Label maps are HxW.  Network inputs are
CHW float32 in **BGR** order with the mean subtracted.
"""
from __future__ import annotations

import math

import numpy as np

# ----------------------------------------------------------------------------
# Constants
# ----------------------------------------------------------------------------

#: Channel means (B, G, R) of Caffe's python/caffe/imagenet/ilsvrc_2012_mean.npy
#: (BVLC/caffe@c0597b1), computed as the release does: ``np.load(f).mean(1).mean(1)``
#: (src/segmentation/test.py:216-218, lib/caffetools/datalayers.py:59-61, 222-224,
#: src/seed/test.py:157-159).  Exact float64 values (hex: 0x1.a00727d82a000p+6,
#: 0x1.d2acd16b0e000p+6, 0x1.eab7355228000p+6).
MEAN_BGR_ILSVRC12 = np.array([104.0069879317889, 116.66876761696767, 122.6789143406786],
                             dtype=np.float64)

#: The mean the release's *saliency* stage uses instead (src/saliency/test.py:128-131).
MEAN_BGR_DEEPLAB = np.array([104.008, 116.669, 122.675], dtype=np.float64)

INPUT_SIZE = 321     # src/segmentation/config.py:82,201; src/seed/config.py:41,104
OUTPUT_SIZE = 41     # src/segmentation/config.py:83,202
TEST_CANVAS = 531    # src/segmentation/test.py:257-260 (test_resize='none')

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
               'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person',
               'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')  # lib/pascaltools/process.py:6-9 (order of the 20 classes)

#: Seed-evaluation thresholds, src/seed/config.py:168-172 (209 values).
SEED_EVAL_THRESRANGE = np.hstack([
    np.linspace(-10, -2, 9),
    np.linspace(-1, -0.01, 100),
    np.linspace(0, 0.99, 100),
])


# ----------------------------------------------------------------------------
# Small helpers re-expressing C / Python-2 semantics
# ----------------------------------------------------------------------------

def _py2_round(x: float) -> int:
    """Python 2 ``round`` (half away from zero) for x >= 0, then ``int``."""
    r = math.floor(x)
    return int(r + 1) if x - r >= 0.5 else int(r)


def _c_int(x: float) -> int:
    """C ``(int)`` cast of a double: truncation toward zero."""
    return int(x)


# ----------------------------------------------------------------------------
# OpenCV copyMakeBorder(..., BORDER_REFLECT_101)
# ----------------------------------------------------------------------------

def _reflect101_index(idx: np.ndarray, n: int) -> np.ndarray:
    """OpenCV borderInterpolate for BORDER_REFLECT_101 (``gfedcb|abcdefgh|gfedcba``),
    including repeated reflection when the border is wider than the image."""
    idx = np.asarray(idx, dtype=np.int64)
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * n - 2
    m = np.mod(idx, period)
    return np.where(m >= n, period - m, m)


def reflect101_pad(arr: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """``cv2.copyMakeBorder(arr, top, bottom, left, right, cv2.BORDER_REFLECT_101)``
    on the first two axes (dtype kept).  Negative borders are an error, as in cv2."""
    if min(top, bottom, left, right) < 0:
        raise ValueError('negative border (image larger than the canvas)')
    h, w = arr.shape[:2]
    rows = _reflect101_index(np.arange(-top, h + bottom), h)
    cols = _reflect101_index(np.arange(-left, w + right), w)
    return arr[rows][:, cols]


def _centered_pad_amounts(hw, size):
    """preprocessor.py:75-78 / 122-128: margin = (size - side) // 2 before, rest after."""
    m0 = (size - hw[0]) // 2
    m1 = (size - hw[1]) // 2
    return [m0, m1], (m0, size - hw[0] - m0, m1, size - hw[1] - m1)


# ----------------------------------------------------------------------------
# Pillow 4.x resize (what scipy.misc.imresize called)
# ----------------------------------------------------------------------------

def _bilinear_filter(x: float) -> float:
    if x < 0.0:
        x = -x
    if x < 1.0:
        return 1.0 - x
    return 0.0


def _pil_precompute_coeffs(in_size: int, out_size: int, support: float = 1.0,
                           filt=_bilinear_filter):
    """Pillow Resample.c ``precompute_coeffs`` (4.x): centre (xx+0.5)*scale, support
    widened by the downscale factor (i.e. antialiased when shrinking), taps
    normalised to sum 1.  Returns (list of xmin, list of coefficient lists)."""
    scale = float(in_size) / out_size
    filterscale = scale if scale >= 1.0 else 1.0
    support = support * filterscale
    xmins, kks = [], []
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        ww = 0.0
        ss = 1.0 / filterscale
        xmin = _c_int(center - support + 0.5)
        if xmin < 0:
            xmin = 0
        xmax = _c_int(center + support + 0.5)
        if xmax > in_size:
            xmax = in_size
        xmax -= xmin
        k = []
        for x in range(xmax):
            w = filt((x + xmin - center + 0.5) * ss)
            k.append(w)
            ww += w
        if ww != 0.0:
            k = [w / ww for w in k]
        xmins.append(xmin)
        kks.append(k)
    return xmins, kks


def _pil_fixed_coeffs(kks):
    """Resample.c ``normalize_coeffs_8bpc``: 22-bit fixed point, rounded half away from 0."""
    one = 1 << 22
    out = []
    for k in kks:
        out.append([_c_int(-0.5 + w * one) if w < 0 else _c_int(0.5 + w * one) for w in k])
    return out


def _pil_resample_axis_uint8(arr: np.ndarray, axis: int, out_size: int) -> np.ndarray:
    """One 8-bit pass (horizontal axis=1 or vertical axis=0) of Pillow's ImagingResample:
    acc = 2**21 + sum(pix * k_fixed); out = clip(acc >> 22, 0, 255)."""
    in_size = arr.shape[axis]
    xmins, kks = _pil_precompute_coeffs(in_size, out_size)
    kfix = _pil_fixed_coeffs(kks)
    a = np.moveaxis(arr.astype(np.int64), axis, 0)
    out = np.empty((out_size,) + a.shape[1:], dtype=np.int64)
    for xx in range(out_size):
        acc = np.full(a.shape[1:], 1 << 21, dtype=np.int64)
        for x, k in enumerate(kfix[xx]):
            acc += a[xmins[xx] + x] * k
        out[xx] = acc >> 22          # arithmetic shift == floor division, as in C on gcc
    out = np.clip(out, 0, 255).astype(np.uint8)
    return np.moveaxis(out, 0, axis)


def _pil_resample_axis_float32(arr: np.ndarray, axis: int, out_size: int) -> np.ndarray:
    """One pass of Pillow's 32-bit float ('F' mode) resample: double accumulation of
    pix * k (double coefficients, no fixed point), stored as float32."""
    in_size = arr.shape[axis]
    xmins, kks = _pil_precompute_coeffs(in_size, out_size)
    a = np.moveaxis(arr.astype(np.float32), axis, 0)
    out = np.empty((out_size,) + a.shape[1:], dtype=np.float32)
    for xx in range(out_size):
        acc = np.zeros(a.shape[1:], dtype=np.float64)
        for x, k in enumerate(kks[xx]):
            acc += a[xmins[xx] + x].astype(np.float64) * k
        out[xx] = acc.astype(np.float32)
    return np.moveaxis(out, 0, axis)


def _pil_nearest_index(in_size: int, out_size: int) -> np.ndarray:
    """Pillow Geometry.c ``ImagingScaleAffine`` (NEAREST resize): source coordinate
    starts at 0.5*a and is *accumulated* (xo += a), a = in/out; index = (int)xo.
    Equals floor((i + 0.5) * in / out) except at exact integer ties."""
    a = float(in_size) / out_size
    xo = a * 0.5
    idx = np.empty(out_size, dtype=np.int64)
    for x in range(out_size):
        idx[x] = -1 if xo < 0 else _c_int(xo)
        xo += a
    return idx


def _pil_resize(arr: np.ndarray, out_w: int, out_h: int, resample: str) -> np.ndarray:
    """PIL ``Image.resize((out_w, out_h), resample)`` on the array view of an 'L', 'RGB'
    (uint8) or 'F' (float32) image.  Horizontal pass first, then vertical (Resample.c
    ImagingResampleInner), each rounding to the image type."""
    h, w = arr.shape[:2]
    if (h, w) == (out_h, out_w):
        return arr.copy()
    if resample == 'nearest':
        return arr[_pil_nearest_index(h, out_h)][:, _pil_nearest_index(w, out_w)]
    if resample != 'bilinear':
        raise NotImplementedError(resample)
    if arr.dtype == np.uint8:
        step = _pil_resample_axis_uint8
    elif arr.dtype == np.float32:
        step = _pil_resample_axis_float32
    else:
        raise TypeError(arr.dtype)
    out = arr
    if out_w != w:
        out = step(out, 1, out_w)
    if out_h != h:
        out = step(out, 0, out_h)
    return out


def _bytescale(data: np.ndarray) -> np.ndarray:
    """scipy.misc.bytescale (scipy <= 1.1) with default cmin/cmax/low/high:
    uint8 returned unchanged; else (x - min) * 255/(max - min), clipped, +0.5, truncated."""
    if data.dtype == np.uint8:
        return data
    cmin = data.min()
    cmax = data.max()
    cscale = cmax - cmin
    if cscale == 0:
        cscale = 1
    scale = float(255 - 0) / cscale
    bytedata = (data - cmin) * scale + 0
    return (bytedata.clip(0, 255) + 0.5).astype(np.uint8)


def release_imresize(arr: np.ndarray, size, interp: str = 'bilinear', mode=None) -> np.ndarray:
    """Re-expression of ``scipy.misc.imresize(arr, size, interp, mode)`` (scipy 0.19/1.0,
    scipy/misc/pilutil.py) as the release calls it.

    * ``toimage``: 2-D with mode 'F' -> float32 image (no scaling); 2-D with mode None ->
      'L' after ``bytescale`` (min->0, max->255 unless the array is already uint8!);
      HxWx3 -> 'RGB' after ``bytescale`` (again a no-op only for uint8).
    * ``size``: Python int -> percent; float -> factor, new size
      ``(array([W, H]) * factor).astype(int)`` (floored, per axis); sequence -> (h, w).
    * PIL resize with 'nearest' or 'bilinear' (Pillow 4.x semantics), ``fromimage``.
    Returns uint8 (L/RGB) or float32 (F)."""
    arr = np.asarray(arr)
    if arr.ndim == 2 and mode == 'F':
        im = arr.astype(np.float32)
    elif arr.ndim == 2 and mode in (None, 'L'):
        im = _bytescale(arr)
    elif arr.ndim == 3 and arr.shape[2] == 3 and mode in (None, 'RGB'):
        im = _bytescale(arr)
    else:
        raise NotImplementedError((arr.shape, mode))
    h, w = im.shape[:2]
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        percent = size / 100.0
        new_w, new_h = (np.array([w, h]) * percent).astype(int)
    elif isinstance(size, (float, np.floating)):
        new_w, new_h = (np.array([w, h]) * size).astype(int)
    else:
        new_h, new_w = int(size[0]), int(size[1])
    return _pil_resize(im, int(new_w), int(new_h), interp)


# ----------------------------------------------------------------------------
# scikit-image 0.13 resize(order=1) and caffe.io.resize_image / Transformer
# ----------------------------------------------------------------------------

def _skimage013_resize_order1(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """skimage.transform.resize(img, (out_h, out_w), order=1) of scikit-image 0.12/0.13:
    mode='constant' (cval 0), no anti-aliasing (that option only appeared in 0.14),
    pixel-centre mapping src = (dst + 0.5) * in/out - 0.5, bilinear with floor/ceil
    neighbours (out-of-image neighbours read cval=0), computed in float64.
    Works channel-wise on HxW or HxWxC; returns float64."""
    x = img.astype(np.float64)
    h, w = x.shape[:2]
    rs = float(h) / out_h
    cs = float(w) / out_w
    r = (np.arange(out_h) + 0.5) * rs - 0.5
    c = (np.arange(out_w) + 0.5) * cs - 0.5
    r0 = np.floor(r).astype(np.int64)
    r1 = np.ceil(r).astype(np.int64)
    c0 = np.floor(c).astype(np.int64)
    c1 = np.ceil(c).astype(np.int64)
    dr = (r - r0)
    dc = (c - c0)

    def get(ri, ci):
        vr = (ri >= 0) & (ri < h)
        vc = (ci >= 0) & (ci < w)
        v = x[np.clip(ri, 0, h - 1)][:, np.clip(ci, 0, w - 1)]
        mask = vr[:, None] & vc[None, :]
        if v.ndim == 3:
            mask = mask[..., None]
        return np.where(mask, v, 0.0)

    if x.ndim == 3:
        dr_ = dr[:, None, None]
        dc_ = dc[None, :, None]
    else:
        dr_ = dr[:, None]
        dc_ = dc[None, :]
    top = (1 - dc_) * get(r0, c0) + dc_ * get(r0, c1)
    bottom = (1 - dc_) * get(r1, c0) + dc_ * get(r1, c1)
    out = (1 - dr_) * top + dr_ * bottom
    # warp(..., clip=True): clip to the input range (cval 0 lies inside [0, 1] here)
    return np.clip(out, x.min(), x.max())


def _caffe_resize_image(im: np.ndarray, new_dims) -> np.ndarray:
    """caffe/python/caffe/io.py:306-338 (c0597b1), 3-channel branch, interp_order=1:
    rescale to [0,1] by the image's own min/max (float32 arithmetic), skimage resize,
    scale back (float64), cast float32.  A constant image is returned as a constant."""
    im_min, im_max = im.min(), im.max()
    if im_max > im_min:
        im_std = (im - im_min) / (im_max - im_min)              # float32
        resized_std = _skimage013_resize_order1(im_std, int(new_dims[0]), int(new_dims[1]))
        resized_im = resized_std * (im_max - im_min) + im_min   # float64
        return resized_im.astype(np.float32)
    ret = np.empty((int(new_dims[0]), int(new_dims[1]), im.shape[-1]), dtype=np.float32)
    ret.fill(im_min)
    return ret


def caffe_transformer_preprocess(im_hwc: np.ndarray, in_dims=(INPUT_SIZE, INPUT_SIZE),
                                 mean_bgr: np.ndarray = MEAN_BGR_ILSVRC12) -> np.ndarray:
    """caffe.io.Transformer.preprocess (io.py:122-162) with the release's settings
    (lib/caffetools/preprocessor.py:30-40): transpose (2,0,1), channel_swap (2,1,0),
    mean = per-channel vector, no raw_scale, no input_scale.

    Order: float32 -> resize_image to in_dims -> HWC->CHW -> RGB->BGR -> minus mean.
    NOTE: the release builds the Transformer from a *list* shape ``[N, 3, 321, 321]``,
    so ``caffe_in.shape[:2] != in_dims`` compares a tuple with a list and is always
    True: resize_image runs even when the image is already 321x321 (a near-identity,
    up to float32 rounding of the min/max rescaling)."""
    caffe_in = im_hwc.astype(np.float32)
    caffe_in = _caffe_resize_image(caffe_in, in_dims)
    caffe_in = caffe_in.transpose((2, 0, 1))
    caffe_in = caffe_in[[2, 1, 0], :, :]
    caffe_in -= np.asarray(mean_bgr, dtype=np.float64)[:, None, None]  # float64 op, stored float32
    return caffe_in


# ----------------------------------------------------------------------------
# scipy.ndimage.zoom(order=1) of scipy 0.19 (unchanged in today's scipy for this use)
# ----------------------------------------------------------------------------

def _zoom_axis_plan(n_in: int, factor: float):
    n_out = _py2_round(n_in * factor)
    z = (n_in - 1) / float(n_out - 1) if n_out - 1 != 0 else 1.0
    kk = np.arange(n_out, dtype=np.float64)
    cc = kk * z
    zero = cc > n_in - 1            # constant mode: map_coordinate -> -1 -> output cval
    start = np.floor(cc).astype(np.int64)
    y0 = np.abs(start - cc)
    y1 = np.abs((start - cc) + 1.0)
    w0 = np.where(y0 > 1.0, 0.0, 1.0 - y0)
    w1 = np.where(y1 > 1.0, 0.0, 1.0 - y1)
    i0 = np.clip(start, 0, n_in - 1)
    i1 = _reflect101_index(start + 1, n_in) if n_in > 1 else np.zeros_like(start)
    return n_out, zero, (i0, i1), (w0, w1)


def release_nd_zoom_order1(arr: np.ndarray, zoom) -> np.ndarray:
    """``scipy.ndimage.zoom(arr, zoom, order=1)`` (mode='constant', cval=0) as in scipy 0.19:
    output side = round(in * zoom) (Py2 round), align-corners mapping
    c = k * (in-1)/(out-1) in float64, no spline prefilter for order 1, value =
    sum over the 2**rank corners (last axis fastest) of v * w_axis0 * w_axis1 * ...,
    accumulated in float64 and cast to the input dtype.  Quirk kept: when k*(in-1)/(out-1)
    exceeds in-1 by rounding, that output index is cval = 0 (still true in scipy 1.17).
    Supports 2-D and 3-D float arrays."""
    arr = np.asarray(arr)
    if arr.ndim not in (2, 3):
        raise NotImplementedError
    zoom = list(zoom) if np.ndim(zoom) else [zoom] * arr.ndim
    plans = [_zoom_axis_plan(n, f) for n, f in zip(arr.shape, zoom)]
    out_shape = tuple(p[0] for p in plans)
    x = arr.astype(np.float64)
    t = np.zeros(out_shape, dtype=np.float64)
    rank = arr.ndim
    for corner in range(2 ** rank):
        bits = [(corner >> (rank - 1 - ax)) & 1 for ax in range(rank)]
        idx = np.ix_(*[plans[ax][2][bits[ax]] for ax in range(rank)])
        coeff = x[idx]
        for ax in range(rank):
            wshape = [1] * rank
            wshape[ax] = -1
            coeff = coeff * plans[ax][3][bits[ax]].reshape(wshape)
        t = t + coeff
    zero = np.zeros(out_shape, dtype=bool)
    for ax in range(rank):
        zshape = [1] * rank
        zshape[ax] = -1
        zero = zero | plans[ax][1].reshape(zshape)
    t[zero] = 0.0
    return t.astype(arr.dtype if arr.dtype.kind == 'f' else np.float64)


# ----------------------------------------------------------------------------
# Item 1: segmentation test geometry
# ----------------------------------------------------------------------------

def release_test_input(img: np.ndarray, canvas: int = TEST_CANVAS, mean_bgr=MEAN_BGR_ILSVRC12):
    """Segmentation test input, ``test_resize='none'`` (src/segmentation/test.py:250-260;
    lib/caffetools/preprocessor.py:62-89 with no_resize=True; caffe io.py:122-162).

    img: HxWx3 uint8 RGB (PIL load).  Steps: no crop, no resize; centred reflect-101
    pad to canvas x canvas (before = (531-side)//2); Transformer.preprocess resizes
    the 531 canvas to 321x321 (caffe resize_image / skimage 0.13 bilinear, no
    anti-aliasing), CHW, BGR, minus the ILSVRC mean.
    Returns (float32 [3,321,321], confs dict as preprocessor.py:87)."""
    hw = img.shape[:2]
    margin, (t, b, l, r) = _centered_pad_amounts(hw, canvas)
    canvas_img = reflect101_pad(img, t, b, l, r)
    assert canvas_img.shape[0] == canvas_img.shape[1] == canvas
    x = caffe_transformer_preprocess(canvas_img, (INPUT_SIZE, INPUT_SIZE), mean_bgr)
    confs = dict(margin=margin, input_size=canvas, imshape=tuple(hw), im_original_shape=tuple(hw))
    return x, confs


def release_deprocess_label(label: np.ndarray, confs: dict, order: int = 1) -> np.ndarray:
    """lib/caffetools/preprocessor.py:92-104: zoom CxSxS (S=41) by input_size/S (order 1),
    cut [m0:m0+h, m1:m1+w] (h,w = imshape), zoom by original/imshape (order 1)."""
    if order != 1:
        raise NotImplementedError
    s = label.shape[1]
    f = float(confs['input_size']) / s
    lab = release_nd_zoom_order1(label, [1, f, f])
    m0, m1 = confs['margin']
    h, w = confs['imshape']
    lab = lab[:, m0:h + m0, m1:w + m1]
    H, W = confs['im_original_shape']
    lab = release_nd_zoom_order1(lab, [1, float(H) / h, float(W) / w])
    return lab


def release_test_labels(scores_41: np.ndarray, img_hw, canvas: int = TEST_CANVAS,
                        return_scoremap: bool = False):
    """Back-mapping of the 21x41x41 ``fc8_voc12`` scores (src/segmentation/test.py:265-275):
    zoom 41 -> 531 (scipy zoom order 1, align corners), cut the centred margin, (identity
    zoom), transpose to HxWx21, argmax over classes (first max wins) -> uint8 HxW.
    With return_scoremap also returns the HxWx21 float32 score map (input of the CRF)."""
    H, W = int(img_hw[0]), int(img_hw[1])
    margin, _ = _centered_pad_amounts((H, W), canvas)
    confs = dict(margin=margin, input_size=canvas, imshape=(H, W), im_original_shape=(H, W))
    scoremap = release_deprocess_label(np.asarray(scores_41), confs).transpose((1, 2, 0))
    seg = scoremap.argmax(2).astype(np.uint8)
    if return_scoremap:
        return seg, scoremap
    return seg


def release_softmax(w: np.ndarray, axis: int = 0, t: float = 1.0) -> np.ndarray:
    """ResearchTools/util/maths.py:41-56 ``Jsoftmax`` (max-subtracted softmax, dtype kept)."""
    w = np.array(w)
    w = w - np.amax(w, axis=axis, keepdims=True)
    e = np.exp(w / t)
    z = np.sum(e, axis=axis, keepdims=True)
    return e / z


def release_densecrf(image: np.ndarray, unary: np.ndarray, crf_param: str = 'deeplab',
                     maxiter: int = 10) -> np.ndarray:
    """lib/densecrftools/densecrf.py:6-69 with pydensecrf: energy = -unary (whatever
    ``unary`` is), Gaussian sxy 3 compat 3, bilateral sxy bi_xy, srgb bi_rgb, compat bi_w,
    DIAG_KERNEL, NORMALIZE_SYMMETRIC, 10 iterations.  'deeplab' = (4, 121, 5),
    'seed' = (10, 80, 13).  Returns HxWxL marginals."""
    import pydensecrf.densecrf as dcrf
    if 'seed' in crf_param:
        bi_w, bi_xy, bi_rgb = 10., 80., 13.
    elif 'deeplab' in crf_param:
        bi_w, bi_xy, bi_rgb = 4., 121., 5.
    else:
        raise NotImplementedError(crf_param)
    H, W = image.shape[:2]
    L = unary.shape[2]
    crf = dcrf.DenseCRF2D(W, H, L)
    crf.setUnaryEnergy(np.ascontiguousarray(
        -unary.transpose((2, 0, 1)).reshape((L, -1))).astype(np.float32))
    crf.addPairwiseGaussian(sxy=(3., 3.), compat=3., kernel=dcrf.DIAG_KERNEL,
                            normalization=dcrf.NORMALIZE_SYMMETRIC)
    crf.addPairwiseBilateral(sxy=(bi_xy, bi_xy), srgb=(bi_rgb, bi_rgb, bi_rgb),
                             rgbim=np.ascontiguousarray(image), compat=bi_w,
                             kernel=dcrf.DIAG_KERNEL, normalization=dcrf.NORMALIZE_SYMMETRIC)
    q = np.array(crf.inference(maxiter)).reshape((L, H, W)).transpose((1, 2, 0))
    return q


def release_test_crf_labels(scoremap_hw21: np.ndarray, image: np.ndarray, crf_fn=None) -> np.ndarray:
    """src/segmentation/test.py:269-273 (test_pcrf != 'none'; script.py uses 'deeplab'):
    p = softmax(scoremap, axis=2); Q = CRF(image, log p, 'deeplab'); argmax -> uint8."""
    if crf_fn is None:
        crf_fn = release_densecrf
    prob = release_softmax(scoremap_hw21, axis=2)
    q = crf_fn(image.copy(), np.log(prob))
    return q.argmax(2).astype(np.uint8)


def release_seg_confusion(gt: np.ndarray, seg: np.ndarray, nclass: int = 21) -> np.ndarray:
    """src/segmentation/test.py:222-229: counts[pred, gt] over pixels with gt < 255."""
    gt = gt.astype(np.float64)
    locs = gt < 255
    s = gt + seg.astype(np.float64) * nclass
    hs = np.histogram(s[locs], bins=range(nclass ** 2 + 1))[0]
    return hs.reshape((nclass, nclass))


def release_miou(confcounts: np.ndarray) -> np.ndarray:
    """src/segmentation/test.py:328-339: IoU_j = 100*c[j,j]/(colsum_j + rowsum_j - c[j,j])."""
    c = confcounts.astype(np.float64)
    with np.errstate(divide='ignore', invalid='ignore'):
        return 100 * np.diag(c) / (c.sum(0) + c.sum(1) - np.diag(c))


# ----------------------------------------------------------------------------
# Items 2 and 3: segmentation training sample
# ----------------------------------------------------------------------------

def release_label_downsample(label_321: np.ndarray) -> np.ndarray:
    """lib/caffetools/datalayers.py:252-253: ``scipy.misc.imresize(label, [41, 41],
    interp='nearest', mode='F').astype(float32)`` -> PIL NEAREST on a float image:
    out[i, j] = label[r_i, r_j], r_k = (int)(0.5*321/41 + k*321/41 accumulated)
    = floor((k + 0.5) * 321 / 41) = 3, 11, 19, ..., 317."""
    return release_imresize(np.asarray(label_321), [OUTPUT_SIZE, OUTPUT_SIZE],
                            interp='nearest', mode='F').astype(np.float32)


def release_seg_train_sample(img: np.ndarray, label: np.ndarray, flip: int, off_row: int,
                             off_col: int, resize: str = 'none', crop=None,
                             mean_bgr=MEAN_BGR_ILSVRC12):
    """Segmentation training sample (lib/caffetools/datalayers.py:232-256,
    preprocessor.py:107-166), with the random draws given as arguments.

    resize='none' (release driver, script.py:172,227): flip (np.random.choice(2)*2-1, i.e.
    -1 = horizontal flip, probability 1/2) is applied FIRST; then offsets
    off_row ~ random.randint(0, max(H-321, 0)), off_col ~ random.randint(0, max(W-321, 0))
    (Python's ``random``, inclusive bounds); crop [off:off+321-margin]; centred
    reflect-101 pad of image AND label (margin//2 before); Transformer; label -> 41x41 by
    PIL nearest.  resize='tight': ``crop`` = (x0, x1, y0, y1) from random_crop, imresize
    to longer side 321 (image bilinear, label nearest/'F'), pad, then flip.
    Returns (float32 [3,321,321] BGR mean-subtracted, float32 [41,41] label)."""
    S = INPUT_SIZE
    if flip not in (-1, 1):
        raise ValueError('flip is -1 (flip) or 1 (keep)')
    if resize == 'none':
        im = img[:, ::flip, :]
        lab = label[:, ::flip]
        H, W = im.shape[:2]
        margin = [max(S - H, 0), max(S - W, 0)]
        if not (0 <= off_row <= max(H - S, 0) and 0 <= off_col <= max(W - S, 0)):
            raise ValueError('offset out of range')
        pads = (margin[0] // 2, margin[0] - margin[0] // 2, margin[1] // 2, margin[1] - margin[1] // 2)
        im = im[off_row:off_row + S - margin[0], off_col:off_col + S - margin[1], :]
        im = reflect101_pad(im, *pads)
        lab = lab[off_row:off_row + S - margin[0], off_col:off_col + S - margin[1]]
        lab = reflect101_pad(lab, *pads)
    elif resize == 'tight':
        x0, x1, y0, y1 = crop
        im = img[x0:x1, y0:y1]
        lab = label[x0:x1, y0:y1]
        f = S / float(max(im.shape[:2]))
        im = release_imresize(im, f)
        lab = release_imresize(lab, f, interp='nearest', mode='F')
        _, pads = _centered_pad_amounts(im.shape[:2], S)
        im = reflect101_pad(im, *pads)
        lab = reflect101_pad(lab, *pads)
        im = im[:, ::flip, :]
        lab = lab[:, ::flip]
    else:
        raise NotImplementedError(resize)
    assert im.shape[:2] == (S, S) and lab.shape == (S, S)
    x = caffe_transformer_preprocess(np.ascontiguousarray(im), (S, S), mean_bgr)
    y = release_label_downsample(np.ascontiguousarray(lab))
    return x, y


# ----------------------------------------------------------------------------
# Item 4: seed training sample
# ----------------------------------------------------------------------------

def release_random_crop_coords(H: int, W: int, u, ratio: float = .1):
    """ResearchTools/image/crop.py:4-18 with the four uniform [0,1) draws u = (u0..u3)
    that ``np.random.uniform`` turned into low + (high-low)*u, drawn in the order
    x0, x1, y0, y1; truncated by int().  x = rows, y = columns."""
    Hf, Wf = float(H), float(W)
    dH, dW = Hf * ratio, Wf * ratio

    def unif(lo, hi, v):
        return lo + (hi - lo) * v

    x0 = int(unif(0, dH, u[0]))
    x1 = int(unif(Hf - dH, Hf, u[1]))
    y0 = int(unif(0, dW, u[2]))
    y1 = int(unif(Wf - dW, Wf, u[3]))
    return x0, x1, y0, y1


def release_seed_train_sample(img: np.ndarray, crop, flip: int, mean_bgr=MEAN_BGR_ILSVRC12):
    """Seed (GAP) training input (lib/caffetools/datalayers.py:133-171,
    preprocessor.py:62-89 phase 'train'):
    crop = (x0, x1, y0, y1) (rows x0:x1, cols y0:y1; see release_random_crop_coords);
    imresize by factor 321/max(crop side) (bilinear, sizes floored: the longer side can be
    320 for some lengths, e.g. 311, 312); centred reflect-101 pad to 321; THEN flip
    (np.random.choice(2)*2-1: -1 flips); Transformer (BGR, minus mean).
    Returns float32 [3,321,321]."""
    x0, x1, y0, y1 = crop
    im = img[x0:x1, y0:y1]
    im = release_imresize(im, INPUT_SIZE / float(max(im.shape[:2])))
    _, pads = _centered_pad_amounts(im.shape[:2], INPUT_SIZE)
    im = reflect101_pad(im, *pads)
    if flip not in (-1, 1):
        raise ValueError('flip is -1 or 1')
    im = im[:, ::flip, :]
    return caffe_transformer_preprocess(np.ascontiguousarray(im), (INPUT_SIZE, INPUT_SIZE), mean_bgr)


def release_multilabel(gt: np.ndarray) -> np.ndarray:
    """datalayers.py:155-168: 20-vector, 1 at (c-1) for every c in gt other than 0/255."""
    y = np.zeros(20, dtype=np.float32)
    cls = np.unique(gt.astype(np.float64))
    for c in cls[(cls != 0) & (cls != 255)]:
        y[int(c) - 1] = 1
    return y


# ----------------------------------------------------------------------------
# Item 5: seed test / CAM / heatmap2segconf
# ----------------------------------------------------------------------------

def release_seed_test_input(img: np.ndarray, mean_bgr=MEAN_BGR_ILSVRC12):
    """src/seed/test.py:186-192 -> preprocessor.py:62-89 phase 'test' (no crop):
    imresize by 321/max(H,W) (bilinear, floored sizes), centred reflect-101 pad to 321,
    Transformer.  Returns (float32 [3,321,321], confs)."""
    H, W = img.shape[:2]
    im = release_imresize(img, INPUT_SIZE / float(max(H, W)))
    imshape = tuple(im.shape[:2])
    margin, pads = _centered_pad_amounts(imshape, INPUT_SIZE)
    im = reflect101_pad(im, *pads)
    x = caffe_transformer_preprocess(im, (INPUT_SIZE, INPUT_SIZE), mean_bgr)
    confs = dict(margin=margin, input_size=INPUT_SIZE, imshape=imshape, im_original_shape=(H, W))
    return x, confs


def release_seed_cam(fmap: np.ndarray, score_w: np.ndarray, gt_cls) -> np.ndarray:
    """src/seed/test.py:134-146: for each present class c (increasing), the CAM
    sum_k w[c-1, k] * relu7_gap[k] (float32 products summed over k in order, float32),
    stored in a float64 (n, 41, 41) array."""
    fmap = np.asarray(fmap, dtype=np.float32)
    score_w = np.asarray(score_w, dtype=np.float32)
    out = np.zeros((len(gt_cls),) + fmap.shape[1:], dtype=np.float64)
    for i, c in enumerate(gt_cls):
        w = score_w[int(c - 1)]
        prod = fmap * w[:, None, None]
        acc = np.zeros(fmap.shape[1:], dtype=np.float32)
        for k in range(prod.shape[0]):
            acc += prod[k]
        out[i] = acc
    return out


def release_seed_backmap(heat_41: np.ndarray, confs: dict) -> np.ndarray:
    """src/seed/test.py:196 -> preprocessor.py:92-104 with order 1: 41 -> 321 (zoom
    factor 321/41, align corners), cut the padding, zoom to the original HxW.
    This (n, H, W) float64 array is what the release saves as ``heatmap`` (.mat)."""
    return release_deprocess_label(np.asarray(heat_41, dtype=np.float64), confs)


def release_heatmap2segconf(heatmaps: np.ndarray, imshape, gt_cls):
    """lib/seedtools/heatmap.py:6-16: (identity) zoom to imshape, divide each class map by
    its own maximum (no guard: a max <= 0 flips/blows up the map, a max of 0 gives
    nan/inf), confidence = max over classes, seg = gt_cls[argmax] (nan counts as max in
    argmax).  Returns (seg with gt_cls dtype, confidence float64)."""
    hm = np.asarray(heatmaps, dtype=np.float64)
    hm = release_nd_zoom_order1(hm, [1, float(imshape[0]) / hm.shape[1], float(imshape[1]) / hm.shape[2]])
    with np.errstate(divide='ignore', invalid='ignore'):
        norm = hm / hm.max(axis=1).max(axis=1).reshape((-1, 1, 1))
    confidence = norm.max(0)
    seg = np.asarray(gt_cls)[norm.argmax(axis=0)]
    return seg, confidence


def release_seed_labels(heatmaps: np.ndarray, imshape, gt_cls, seedthres: float = 20) -> np.ndarray:
    """src/guide_generation/generate.py:276-279: seed = seg * (confidence*100 >= seedthres)
    (nan confidence -> 0).  Returns float64 label map (classes as in gt_cls, 0 = bg)."""
    seg, conf = release_heatmap2segconf(heatmaps, imshape, gt_cls)
    with np.errstate(invalid='ignore'):
        keep = conf * 100 >= seedthres
    return seg * keep


# ----------------------------------------------------------------------------
# Item 6: connected components and guide rule G2
# ----------------------------------------------------------------------------

def release_components(mask: np.ndarray, minarea: float = 5 ** 2):
    """ResearchTools/image/cc.py:5-19: 8-connected components (skimage label,
    connectivity=2), in label order (raster order of first pixel); drop those with
    pixel count < minarea and those whose bbox area (x1-x0)*(y1-y0) is 0, where x1/y1
    are the INCLUSIVE max row/col (mask_box.py:4-10, 44-45): every component lying in
    a single row or a single column is dropped whatever its size.
    Returns a list of bool masks."""
    import scipy.ndimage as ndi
    lab, n = ndi.label(np.asarray(mask, dtype=bool), structure=np.ones((3, 3), dtype=int))
    out = []
    for k in range(1, n + 1):
        m = lab == k
        if m.sum() < minarea:
            continue
        rows, cols = np.where(m)
        if (rows.max() - rows.min()) * (cols.max() - cols.min()) == 0:
            continue
        out.append(m)
    return out


def _gaussian_kernel_scipy019(sigma: float, truncate: float = 4.0) -> np.ndarray:
    sd = float(sigma)
    lw = int(truncate * sd + 0.5)
    weights = [0.0] * (2 * lw + 1)
    weights[lw] = 1.0
    s = 1.0
    sd2 = sd * sd
    for ii in range(1, lw + 1):
        tmp = math.exp(-0.5 * float(ii * ii) / sd2)
        weights[lw + ii] = tmp
        weights[lw - ii] = tmp
        s += 2.0 * tmp
    return np.array([w / s for w in weights])


def _symmetric_index(idx, n):
    period = 2 * n
    m = np.mod(idx, period)
    return np.where(m >= n, period - 1 - m, m)


def release_gaussian_filter(x: np.ndarray, sigma: float) -> np.ndarray:
    """scipy.ndimage.gaussian_filter(x, sigma) (0.19): mode 'reflect' (half-sample
    symmetric), truncate 4 (radius int(4*sigma+0.5)), separable along axis 0 then 1,
    each pass accumulated in float64 (centre tap first, then (x[+l]+x[-l])*w_l) and
    stored in x's dtype (float32 in the release)."""
    w = _gaussian_kernel_scipy019(sigma)
    lw = (len(w) - 1) // 2
    out = np.asarray(x)
    for axis in range(out.ndim):
        a = np.moveaxis(out, axis, 0).astype(np.float64)
        n = a.shape[0]
        ext = a[_symmetric_index(np.arange(-lw, n + lw), n)]
        acc = ext[lw:lw + n] * w[lw]
        for l in range(1, lw + 1):
            acc = acc + (ext[lw + l:lw + l + n] + ext[lw - l:lw - l + n]) * w[lw + l]
        out = np.moveaxis(acc.astype(x.dtype), 0, axis)
    return out


def _mask_inference(image, gap_seed, ov_gap, crf_fn):
    """generate.py:161-176."""
    involved = np.unique(np.array([o[0] for o in ov_gap]))
    unary = np.zeros((image.shape[0], image.shape[1], len(involved)), dtype=np.float64)
    for gtc, _gc in ov_gap:
        hm = (gap_seed == gtc).astype(np.float32)
        hm = np.maximum(hm, np.float32(1e-3))
        hm = np.minimum(hm, np.float32(1 - 1e-3))
        hm = release_gaussian_filter(hm, 10)
        unary[:, :, np.where(gtc == involved)[0][0]] = hm
    q = crf_fn(image, unary)
    return involved[np.asarray(q).argmax(2)]


def release_g2(image: np.ndarray, seed: np.ndarray, saliency_mask: np.ndarray, crf_fn,
               gt_cls=None, emulate_slip: bool = True) -> np.ndarray:
    """src/guide_generation/generate.py:179-238 (rule 'G2'; 'salor' is the same with the
    GT foreground as saliency).

    image: HxWx3 uint8 RGB; seed: HxW labels (0 = bg seed, classes, from
    release_seed_labels); saliency_mask: HxW bool; crf_fn(image, unary_HxWxC) ->
    HxWxC marginals (release: release_densecrf(..., 'deeplab'), energy = -unary);
    gt_cls: the classes looped over; the release passes np.unique(gt) INCLUDING 0 and
    255 (default here: np.unique(seed) with 0 added).
    emulate_slip=True reproduces line 229: ``seg[int 0/1 array] = 0`` indexes ROWS,
    so whenever a background seed component touches a saliency component, row 0 (and
    row 1 if that component has pixels outside the saliency) is set to 0 at that
    point (foreground seeds that no saliency component touched are written after
    that and survive).  emulate_slip=False: the intent (a no-op in effect).
    Returns uint8 HxW guide (0 = background)."""
    H, W = image.shape[:2]
    if gt_cls is None:
        gt_cls = np.unique(np.concatenate([[0.0], np.unique(seed).astype(np.float64)]))
    saliency_mask = np.asarray(saliency_mask, dtype=bool)
    cc = {}
    usage = {}
    for gtc in gt_cls:
        cc[gtc] = release_components(seed == gtc)
        usage[gtc] = np.zeros(len(cc[gtc]))
    sal_cc = release_components(saliency_mask, minarea=H * W * .01)
    seg = np.ones((H, W), dtype=np.uint8) * 255
    for sc in sal_cc:
        ov_gap = []
        for gtc in gt_cls:
            for idx, gc in enumerate(cc[gtc]):
                if np.logical_and(sc, gc).sum() > 0:      # compute_iou(sc, gc) > 0
                    if gtc != 0:
                        ov_gap.append([gtc, gc])
                    usage[gtc][idx] = 1
        n_ov = len(np.unique(np.array([o[0] for o in ov_gap])))
        if n_ov == 0:
            seg[sc] = 255
        elif n_ov == 1:
            seg[sc] = ov_gap[0][0]
        else:
            pred = _mask_inference(image, seed, ov_gap, crf_fn)
            seg[sc] = pred[sc]
    for gtc in gt_cls:
        for idx, gc in enumerate(cc[gtc]):
            if usage[gtc][idx]:
                if gtc == 0:
                    outside = (gc & ~saliency_mask)
                    if emulate_slip:
                        seg[np.unique(outside.astype(np.int64))] = 0   # rows 0 and maybe 1
                    else:
                        seg[outside] = 0
            else:
                seg[gc] = gtc
    seg[seg == 255] = 0
    return seg


def release_saliency_mask(sal_map: np.ndarray, salthres: float = 50) -> np.ndarray:
    """generate.py:281-286: saliency = map(float) >= salthres * 255 / 100 (127.5 -> >= 128)."""
    return np.asarray(sal_map).astype(np.float64) >= salthres * 255. / 100


# ----------------------------------------------------------------------------
# Item 7: class-balanced batches
# ----------------------------------------------------------------------------

def release_balanced_batch(labellist, rng):
    """lib/caffetools/datalayers.py:69-131 ``pascal_balancedbatch`` (after its
    np.random.seed(seed)), returning the list of image positions (into labellist).

    labellist[i]: sorted classes (1..20) of image i from its Annotations XML
    (np.unique of every <object><name>, difficult ones included).
    rng: np.random.RandomState(seed) reproduces the release exactly (legacy stream:
    ``np.random.shuffle(list)`` and ``np.random.choice(arr, 1)[0]``); a
    np.random.Generator is mapped to ``rng.shuffle(list)`` and
    ``arr[rng.integers(len(arr))]`` (same distribution, different stream)."""
    legacy = isinstance(rng, np.random.RandomState)

    def choose(arr):
        if legacy:
            return rng.choice(arr, 1)[0]
        return arr[rng.integers(len(arr))]

    img_ids_cls = [np.where(np.array([c in lab for lab in labellist]))[0] for c in range(1, 21)]
    insts = []
    min_len = min(len(x) for x in img_ids_cls)
    while min_len > 0:
        cls_list = list(range(1, 21))
        rng.shuffle(cls_list)
        no_more = False
        while len(cls_list) > 0:
            no_more = False
            pick = cls_list[0]
            cand = img_ids_cls[pick - 1].copy()
            seen = True
            while seen:
                if len(cand) == 0:
                    no_more = True
                    break
                seen = False
                id_choice = choose(cand)
                all_cls = labellist[id_choice]
                for c in all_cls:
                    if c not in cls_list:
                        seen = True
                        cand = cand[cand != id_choice]
                        break
            if no_more:
                break
            for c in all_cls:
                if c in cls_list:
                    cls_list.remove(c)
            img_ids_cls[pick - 1] = img_ids_cls[pick - 1][img_ids_cls[pick - 1] != id_choice]
            insts.append(id_choice)
            if len(img_ids_cls[pick - 1]) == 0:
                break
        if no_more:
            break
        min_len = min(len(x) for x in img_ids_cls)
    return [int(i) for i in insts]


# ----------------------------------------------------------------------------
# Item 8: classifier AP
# ----------------------------------------------------------------------------

def release_cls_ap(scores: np.ndarray, gt_pm1_0: np.ndarray) -> float:
    """src/seed/eval_cls.py:82-118: rank by -score (np.argsort default kind); tp = gt>0,
    fp = gt<0 (difficult 0 entries are neither but keep their rank); rec = cumtp/#pos;
    prec = cumtp/(cumfp+cumtp); VOC2010+ AP: append sentinels (0, rec, 1), (0, prec, 0),
    make precision non-increasing from the right (Python max: nan on the left is kept),
    sum (dr * p) where recall changes."""
    scores = np.asarray(scores, dtype=np.float64)
    gt = np.asarray(gt_pm1_0)
    si = np.argsort(-scores)
    tp = np.cumsum(gt[si] > 0).astype(np.float64)
    fp = np.cumsum(gt[si] < 0).astype(np.float64)
    with np.errstate(divide='ignore', invalid='ignore'):
        rec = tp / (gt > 0).sum()
        prec = tp / (fp + tp)
    mrec = np.concatenate([[0.], rec, [1.]])
    mpre = np.concatenate([[0.], prec, [0.]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.where(mrec[1:] != mrec[:-1])[0] + 1
    return float(((mrec[i] - mrec[i - 1]) * mpre[i]).sum())


# ----------------------------------------------------------------------------
# Item 9: seed evaluation
# ----------------------------------------------------------------------------

def _hist_edges_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """np.histogram(values, edges) counts: [e_i, e_i+1) except the last bin, closed."""
    v = np.sort(values)
    left = np.searchsorted(v, edges[:-1], side='left')
    last = np.searchsorted(v, edges[-1], side='right')
    return np.diff(np.concatenate([left, [last]]))


def release_seed_eval_image(gt: np.ndarray, heatmaps: np.ndarray, imshape=None,
                            thresrange: np.ndarray = SEED_EVAL_THRESRANGE) -> np.ndarray:
    """src/seed/eval.py:93-166 (threstype 'generic'): per-image confidence histogram
    hist[t, gt, pred] (T x 21 x 22) over pixels with gt < 255; pred = argmax class (never
    background), confidence clipped to [thresrange.min(), thresrange.max()], nan -> min;
    bins = thresrange + [1.0]."""
    gt = np.asarray(gt, dtype=np.float64)
    if imshape is None:
        imshape = gt.shape
    num = 21
    cls = np.unique(gt)
    cls = cls[cls != 0]
    cls = cls[cls != 255]
    resim, confim = release_heatmap2segconf(heatmaps, imshape, cls)
    resim = resim.astype(np.float64)
    resim[resim == 255] = 21
    confim = confim.copy()
    confim[np.isnan(confim)] = thresrange.min()
    confim[confim >= thresrange.max()] = thresrange.max()
    confim[confim <= thresrange.min()] = thresrange.min()
    locs = gt < 255
    sumim = gt + resim * num
    edges = np.append(thresrange, thresrange[-1] + thresrange[-1] - thresrange[-2])
    hist = np.zeros((len(thresrange), num, num + 1), dtype=np.int64)
    for g in range(num):
        for r in range(num + 1):
            sel = (sumim == g + r * num) & locs
            hist[:, g, r] = _hist_edges_counts(confim[sel], edges)
    return hist


def release_seed_eval(confidencehists: np.ndarray):
    """src/seed/eval.py:169-226 and 248-254, 411-435: from the summed histograms
    (T x 21 x 22) -> curves prec/rec/acc of shape (T+1, 21).  Row i moves, for every gt
    class and every predicted foreground class, the pixels with confidence <
    thresrange[i] to the background column (row 0: none; row T: all).  So row i is the
    seed 'fg iff conf >= thresrange[i]'.  Also returns what the release prints."""
    ch = np.asarray(confidencehists)
    num = ch.shape[1]
    T = ch.shape[0]
    confcounts = ch.sum(axis=0)
    cum = np.cumsum(ch, axis=0)
    prec = np.zeros((T + 1, num))
    rec = np.zeros((T + 1, num))
    acc = np.zeros((T + 1, num))
    with np.errstate(divide='ignore', invalid='ignore'):
        for i in range(T + 1):
            cc = confcounts.copy()
            if i > 0:
                moved = cum[i - 1, :, 1:num]
                cc[:, 1:num] -= moved
                cc[:, 0] += moved.sum(1)
            cc = cc.astype(np.float64)
            tp = np.diag(cc[:, :num])
            g = cc.sum(1)
            r = cc.sum(0)[:num]
            prec[i] = tp / r
            rec[i] = tp / g
            acc[i] = tp / (g + r - tp)
        # basic (threshold-free) table, eval.py:169-191
        c = confcounts.astype(np.float64)
        gtj = c.sum(1)
        resj = c.sum(0)[:num]
        tpj = np.diag(c[:, :num])
        basic_iou = 100 * tpj / (gtj + resj - tpj)
    fgrec = rec[:, 1:].mean(1)
    fgprec = prec[:, 1:].mean(1)
    bgrec = rec[:, 0]
    bgprec = prec[:, 0]
    sv = np.argsort(fgrec)
    fgrec_s, fgprec_s = fgrec[sv], fgprec[sv]
    sv = np.argsort(bgrec)
    bgrec_s, bgprec_s = bgrec[sv], bgprec[sv]
    try:
        summary = 0.5 * (fgprec_s[fgrec_s > 0.2][0] + bgprec_s[bgrec_s > 0.8][0])
    except IndexError:
        summary = float('nan')
    return dict(prec=prec, rec=rec, acc=acc, confcounts=confcounts, basic_iou=basic_iou,
                fg_prec=prec[2, 1:].mean(), fg_rec=rec[2, 1:].mean(),
                bg_prec=prec[2, 0], bg_rec=rec[2, 0],
                max_miou=acc.mean(1).max() * 100, mean_precision=summary)


# ----------------------------------------------------------------------------
# Item 12: saliency stage geometry
# ----------------------------------------------------------------------------

def release_saliency_input(img: np.ndarray, size: int = INPUT_SIZE):
    """src/saliency/test.py:79-98: if H,W <= 321 keep, else imresize by
    min(321/H, 321/W) (bilinear, floored); reflect-101 pad (margin//2 before) to 321;
    Transformer with the DeepLab mean (104.008, 116.669, 122.675).
    Returns (float32 [3,321,321], margins [t,b,l,r], factor, h, w)."""
    H, W = img.shape[:2]
    if H <= size and W <= size:
        factor = 1
        im = img
    else:
        factor = min(float(size) / H, float(size) / W)
        im = release_imresize(img, factor, interp='bilinear')
    h, w = im.shape[:2]
    margin = [size - h, size - w]
    margins = [margin[0] // 2, margin[0] - margin[0] // 2, margin[1] // 2, margin[1] - margin[1] // 2]
    im = reflect101_pad(im, *margins)
    x = caffe_transformer_preprocess(im, (size, size), MEAN_BGR_DEEPLAB)
    return x, margins, factor, h, w


def release_saliency_output(prob: np.ndarray, margins, H: int, W: int, h: int, w: int,
                            size: int = INPUT_SIZE) -> np.ndarray:
    """src/saliency/test.py:108-116, 163: each of the 2 channels of ``fc1_prob`` ->
    imresize to 321x321 (mode 'F', bilinear), cut [t:t+h, l:l+w], imresize to HxW
    (mode 'F', bilinear); sal = 255 * p1 / p1.max() (float32, saved as 'heatmap' in .mat)."""
    out = np.zeros((2, H, W), dtype=np.float32)
    for ch in range(2):
        p = release_imresize(np.asarray(prob[ch], dtype=np.float32), [size, size], mode='F')
        p = p[margins[0]:margins[0] + h, margins[2]:margins[2] + w]
        out[ch] = release_imresize(p, [H, W], mode='F')
    return 255 * out[1] / out[1].max()


# ----------------------------------------------------------------------------
# Item 15 (NOT from the release; low-to-medium confidence, see NOTES.md)
# ----------------------------------------------------------------------------

def deeplab_largefov_init_from_vgg16(fc6_w, fc6_b, fc7_w, fc7_b):
    """The usual reading of DeepLab's "VGG-16 with fc6/fc7 subsampled" init
    (vgg16_20M / VGG_ILSVRC_16_layers-deeplab): fc6 4096x25088 -> (4096,512,7,7),
    keep every 4th filter and spatial taps 0,3,6 -> (1024,512,3,3); fc7 keeps every
    4th output and every 4th input -> (1024,1024,1,1); biases every 4th.  This is the
    convention of public re-implementations (SSD's fc-reduced VGG, which says it
    follows DeepLab); it was not verified against the DeepLab caffemodel itself."""
    fc6 = np.asarray(fc6_w).reshape(4096, 512, 7, 7)[::4, :, ::3, ::3]
    fc7 = np.asarray(fc7_w).reshape(4096, 4096, 1, 1)[::4, ::4]
    return fc6, np.asarray(fc6_b)[::4], fc7, np.asarray(fc7_b)[::4]
