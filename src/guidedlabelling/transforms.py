"""Preprocessing and its inverse: the Caffe input convention, crops, resizes, reflect padding, and the mapping
of network outputs back to the image frame (docs/method.md, sections 1, 2, 6 and 7), as the release computes
them (tests/release_reference.py re-expresses the release's functions; tests/test_release_faithful.py compares).

Images are RGB uint8 HxWx3 arrays as datasets load them; network inputs are BGR, 0..255 minus MEAN_BGR,
CHW float32, as the release's Caffe models take them (networks/vgg.py).
"""
import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .networks.vgg import MEAN_BGR


def random_crop_box(h, w, rng, ratio=0.1):
    """The release's random crop (ResearchTools image/crop.py): top, bottom, left, right, each the int() of a
    uniform draw, in that order: top in [0, ratio*h), bottom in [h - ratio*h, h) (so the last row is never
    kept), likewise left and right. Returns (top, left, bottom, right); at least one row and column (for images
    under 10 pixels, where the release's crop is empty)."""
    dh, dw = ratio * h, ratio * w
    top, bottom = int(rng.uniform(0, dh)), int(rng.uniform(h - dh, h))
    left, right = int(rng.uniform(0, dw)), int(rng.uniform(w - dw, w))
    return top, left, max(bottom, top + 1), max(right, left + 1)


def resize_longer(img, size, resample=Image.BILINEAR):
    """The release's scipy.misc.imresize(img, size / longer side): PIL's resampling on uint8 (bilinear
    averages when shrinking), each side floored, so the longer side is size or, for some lengths, size - 1."""
    h, w = img.shape[:2]
    scale = size / max(h, w)
    return resize(img, (max(1, int(h * scale)), max(1, int(w * scale))), resample)


def resize(img, hw, resample=Image.BILINEAR):
    """PIL's resize of a uint8 image (HxW or HxWx3) to hw = (height, width)."""
    if tuple(img.shape[:2]) == tuple(hw):
        return img
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((hw[1], hw[0]), resample))


def shrink_label(label, side):
    """Training label to the network's output grid, side x side: PIL's nearest neighbour (the release's
    imresize(..., interp='nearest')), which samples pixel centres: row floor((i + 0.5) * h / side)."""
    return resize(label, (side, side), Image.NEAREST)


def pad_reflect(img, size_hw, centre=True):
    """Reflect-101 pad to at least size_hw; returns (padded, (top, left))."""
    h, w = img.shape[:2]
    dh, dw = max(0, size_hw[0] - h), max(0, size_hw[1] - w)
    top, left = (dh // 2, dw // 2) if centre else (0, 0)
    pad = [(top, dh - top), (left, dw - left)] + [(0, 0)] * (img.ndim - 2)
    return (np.pad(img, pad, mode="reflect") if dh or dw else img), (top, left)


def to_caffe_input(img_rgb):
    """RGB HxWx3 (uint8, or float for a resized canvas) -> BGR, minus the ImageNet mean, CHW float32."""
    bgr = img_rgb[..., ::-1].astype(np.float32)
    return np.ascontiguousarray((bgr - MEAN_BGR).astype(np.float32).transpose(2, 0, 1))


def fit_reflect(img, size, resample=Image.BILINEAR):
    """Whole-image test input: longer side to `size`, centred reflect pad to size x size (a label: NEAREST)."""
    resized = resize_longer(img, size, resample)
    padded, offset = pad_reflect(resized, (size, size))
    return padded, offset, resized.shape[:2]


def seed_train_sample(img, rng, size):
    """docs/method.md section 1, in the release's order: random crop, longer side to size, centred reflect pad,
    then a random horizontal flip of the padded square."""
    top, left, bottom, right = random_crop_box(*img.shape[:2], rng)
    img, _, _ = fit_reflect(img[top:bottom, left:right], size)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return to_caffe_input(img)


def seg_train_sample(img, label, rng, size, out_size, resize="none"):
    """docs/method.md section 6. 'none' (the release's driver): a random horizontal flip, a random crop of at
    most size x size (offsets uniform over the whole range), a centred reflect-101 pad to size x size of image
    and label alike. 'tight': the seed network's crop, fit and pad (label by nearest neighbour), then the flip.
    The label is then shrunk to out_size x out_size by nearest neighbour (shrink_label; unchanged when out_size
    is size, loss_res input)."""
    if resize == "tight":
        top, left, bottom, right = random_crop_box(*img.shape[:2], rng)
        img, _, _ = fit_reflect(img[top:bottom, left:right], size)
        label, _, _ = fit_reflect(label[top:bottom, left:right], size, Image.NEAREST)
        if rng.random() < 0.5:
            img, label = img[:, ::-1], label[:, ::-1]
    else:
        if rng.random() < 0.5:
            img, label = img[:, ::-1], label[:, ::-1]
        h, w = label.shape
        y, x = rng.integers(0, max(h - size, 0) + 1), rng.integers(0, max(w - size, 0) + 1)
        img, _ = pad_reflect(img[y:y + size, x:x + size], (size, size))
        label, _ = pad_reflect(label[y:y + size, x:x + size], (size, size))
    return to_caffe_input(img), shrink_label(label, out_size).astype(np.int64)


CANVAS_STEP = 32  # tight canvases are 32k + 1 px, as DeepLab's 321 and 513: with every trunk's total stride (8, 16
                 # or 32), the scores' corner cells then sit on the canvas's corners a whole stride apart


def fit_input(img, size, mode, net_size=None):
    """(network input HxWx3, offset of the image in the canvas, the image's size in it).

    fit: longer side to size, centred pad (seed heatmaps). shrink: the same, but only images larger than size
    are resized (saliency). canvas: centred reflect pad to size (larger images are fit first), then the whole
    canvas resized to net_size (bilinear, no averaging) as the release's Caffe transformer does at test time.
    fullscale: bottom/right pad to size (larger images are fit), no resize: the net sees the image at full
    scale. tight: longer side to size, then a bottom/right pad only up to the next CANVAS_STEP k + 1 of each side:
    the canvas has the image's own shape, not a square, and costs no more than the image."""
    h, w = img.shape[:2]
    if mode == "tight":
        img = resize_longer(img, size)
        padded, offset = pad_reflect(img, [-(-(n - 1) // CANVAS_STEP) * CANVAS_STEP + 1 for n in img.shape[:2]],
                                     centre=False)
        return padded, offset, img.shape[:2]
    if max(h, w) > size or mode == "fit":
        padded, offset, inner = fit_reflect(img, size)
    else:
        padded, offset = pad_reflect(img, (size, size), centre=mode != "fullscale")
        inner = (h, w)
    if mode == "canvas" and net_size != size:
        padded = cv2.resize(padded.astype(np.float32), (net_size, net_size), interpolation=cv2.INTER_LINEAR)
    return padded, offset, inner


def resize_float(values, hw):
    """PIL's bilinear resize of a float32 map (the release's imresize(..., mode='F'); it averages when
    shrinking) to hw = (height, width)."""
    image = Image.fromarray(np.ascontiguousarray(values, np.float32), mode="F")
    return np.asarray(image.resize((hw[1], hw[0]), Image.BILINEAR))


def unfit_saliency(prob, size, offset, inner_hw, out_hw):
    """A probability map [h, w] back in the image frame as the release's saliency stage maps it: resized to
    the input square, the margins cut, resized to the image (PIL bilinear on float32)."""
    (top, left), (ih, iw) = offset, inner_hw
    return resize_float(resize_float(prob, (size, size))[top:top + ih, left:left + iw], out_hw)


def zoom(maps, hw, order=1):
    """scipy.ndimage.zoom semantics on [C, h, w] tensors: order 1 = bilinear with corners aligned, order 0 = the
    nearest pixel with corners aligned (torch's "nearest" aligns pixel edges instead, another pixel for many)."""
    if tuple(maps.shape[-2:]) == tuple(hw):
        return maps
    if order == 0:
        rows, cols = (nearest_index(n, m).to(maps.device) for n, m in zip(maps.shape[-2:], hw))
        return maps[:, rows][:, :, cols]
    return F.interpolate(maps[None], size=tuple(hw), mode="bilinear", align_corners=True)[0]


def nearest_index(n_in, n_out):
    """The source index of each of n_out positions in scipy.ndimage.zoom(order=0): position k at k (n_in - 1) /
    (n_out - 1), rounded half up. (Its default constant mode zeroes a position that float error puts past the last
    pixel; that is not kept.)"""
    if n_out == 1:
        return torch.zeros(1, dtype=torch.long)
    at = torch.arange(n_out, dtype=torch.float64) * ((n_in - 1) / (n_out - 1))
    return torch.floor(at + 0.5).long().clamp(max=n_in - 1)


def unfit(maps, canvas, offset, inner_hw, out_hw, order=1):
    """Network-output maps -> the original frame: zoom to the input canvas ((h, w), before any resize to the net's
    input), cut the margins, zoom to HxW."""
    if maps.shape[0] == 0:  # an image without foreground classes has no heatmaps
        return maps.new_zeros((0,) + tuple(out_hw))
    full = zoom(maps, canvas, order)
    (top, left), (ih, iw) = offset, inner_hw
    return zoom(full[:, top:top + ih, left:left + iw], out_hw, order)

