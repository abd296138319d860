"""Preprocessing and its inverse: the Caffe input convention, crops, resizes, reflect padding, and the mapping
of network outputs back to the image frame (docs/method.md, sections 1, 2, 6 and 7).

Images are RGB uint8 HxWx3 arrays as datasets load them; network inputs are BGR, 0..255 minus MEAN_BGR,
CHW float32, as the release's Caffe models take them.
"""
import cv2
import numpy as np
import torch.nn.functional as F

MEAN_BGR = np.array([104.008, 116.669, 122.675], np.float32)


def random_crop_box(h, w, rng, keep=0.9):
    """Top-left offset uniform in [0, 1-keep), bottom-right uniform in (keep, 1] of each side."""
    y0, x0 = (rng.uniform(0, 1 - keep, 2) * (h, w)).astype(int)
    y1 = int(np.ceil(h * (1 - rng.uniform(0, 1 - keep))))
    x1 = int(np.ceil(w * (1 - rng.uniform(0, 1 - keep))))
    return y0, x0, max(y1, y0 + 1), max(x1, x0 + 1)


def resize_longer(img, size, interp=cv2.INTER_LINEAR):
    """Resize so the longer side is `size` (aspect kept)."""
    h, w = img.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    return cv2.resize(img, (nw, nh), interpolation=interp)


def pad_reflect(img, size_hw, centre=True):
    """Reflect-101 pad to at least size_hw; returns (padded, (top, left))."""
    h, w = img.shape[:2]
    dh, dw = max(0, size_hw[0] - h), max(0, size_hw[1] - w)
    top, left = (dh // 2, dw // 2) if centre else (0, 0)
    pad = [(top, dh - top), (left, dw - left)] + [(0, 0)] * (img.ndim - 2)
    return (np.pad(img, pad, mode="reflect") if dh or dw else img), (top, left)


def to_caffe_input(img_rgb):
    """RGB uint8 HxWx3 -> BGR, minus the ImageNet mean, CHW float32."""
    return np.ascontiguousarray((img_rgb[..., ::-1].astype(np.float32) - MEAN_BGR).transpose(2, 0, 1))


def fit_reflect(img, size):
    """Whole-image test input: longer side to `size`, centred reflect pad to size x size."""
    resized = resize_longer(img, size)
    padded, offset = pad_reflect(resized, (size, size))
    return padded, offset, resized.shape[:2]


def fit_reflect_label(label, size):
    resized = resize_longer(label, size, cv2.INTER_NEAREST)
    padded, offset = pad_reflect(resized, (size, size))
    return padded, offset, resized.shape[:2]


def seed_train_sample(img, rng, size):
    """docs/method.md section 1: random 90-100% crop, longer side to size, reflect pad, random flip."""
    y0, x0, y1, x1 = random_crop_box(*img.shape[:2], rng)
    img, _, _ = fit_reflect(img[y0:y1, x0:x1], size)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return to_caffe_input(img)


def seg_train_sample(img, label, rng, size, out_size, resize="none"):
    """docs/method.md section 6 ('none'): flip, random size x size crop, reflect pad (label too), label
    nearest-neighbour to out_size. 'tight': the seed network's crop and fit, for image and label."""
    if resize == "tight":
        y0, x0, y1, x1 = random_crop_box(*img.shape[:2], rng)
        img, _, _ = fit_reflect(img[y0:y1, x0:x1], size)
        label, _, _ = fit_reflect_label(label[y0:y1, x0:x1], size)
    else:
        img, _ = pad_reflect(img, (size, size), centre=False)
        label, _ = pad_reflect(label, (size, size), centre=False)
        h, w = label.shape
        y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        img, label = img[y:y + size, x:x + size], label[y:y + size, x:x + size]
    if rng.random() < 0.5:
        img, label = img[:, ::-1], label[:, ::-1]
    small = cv2.resize(np.ascontiguousarray(label), (out_size, out_size), interpolation=cv2.INTER_NEAREST)
    return to_caffe_input(img), small.astype(np.int64)


def fit_input(img, size, mode):
    """Network input + geometry. fit: longer side to size; shrink: only if larger; pad: bottom/right padding."""
    h, w = img.shape[:2]
    if mode == "pad" and max(h, w) <= size:
        padded, offset = pad_reflect(img, (size, size), centre=False)
        return padded, offset, (h, w)
    if mode == "shrink" and max(h, w) <= size:
        padded, offset = pad_reflect(img, (size, size))
        return padded, offset, (h, w)
    return fit_reflect(img, size)


def zoom(maps, hw, order=1):
    """scipy.ndimage.zoom semantics on [C, h, w] tensors: order 1 = bilinear with corners aligned."""
    if tuple(maps.shape[-2:]) == tuple(hw):
        return maps
    if order == 0:
        return F.interpolate(maps[None], size=tuple(hw), mode="nearest")[0]
    return F.interpolate(maps[None], size=tuple(hw), mode="bilinear", align_corners=True)[0]


def unfit(maps, size, offset, inner_hw, out_hw, order=1):
    """Network-output maps -> the original frame: zoom to the input square, cut the margins, zoom to HxW."""
    if maps.shape[0] == 0:  # an image without foreground classes has no heatmaps
        return maps.new_zeros((0,) + tuple(out_hw))
    full = zoom(maps, (size, size), order)
    (top, left), (ih, iw) = offset, inner_hw
    return zoom(full[:, top:top + ih, left:left + iw], out_hw, order)

