"""Training samples of the saliency network, with the augmentation a small set of real masks needs.

The paper's saliency set, MSRA-B, holds thousands of varied objects; a few hundred DAVIS frames and Weizmann
horses do not, and a network trained on them as the segmenter is (90-100% crops) learns those scenes. So
samples may get: copy-paste compositing (another image's masked object pasted onto this image, onto this image
with its own object inpainted away, or onto a synthetic texture), a random crop of a random share of the area
and aspect, or a zoom crop around the object in which it covers up to the whole frame (DAVIS scenes and horses
seldom fill a photo; MSRC's books do), a flip, and colour changes. docs/method.md section 3 lists the settings;
docs/results.md's saliency table what each bought on held-out scenes.

Written with OpenCV and numpy rather than torchvision's transforms (not a dependency): every draw comes from
the sample's own seeded numpy Generator, so a stream is identical whatever the worker or process count.
"""
import cv2
import numpy as np
from PIL import Image

from . import transforms as T

PASTE_BACKGROUNDS = ("keep", "inpaint", "texture", "mix")
MAX_ASPECT = 1.6  # of the random crops, either way
CACHE_BYTES = 1 << 30  # shrunk images kept in memory per process (MSRC's saliency set needs ~0.2 GB)


def random_aspect(rng):
    """A crop's aspect ratio (width / height), log-uniform in [1/MAX_ASPECT, MAX_ASPECT]: one rule for both crops."""
    return np.exp(rng.uniform(-np.log(MAX_ASPECT), np.log(MAX_ASPECT)))


def scale_crop(img, mask, rng, min_area):
    """A random crop of U(min_area, 1) times the image area, aspect ratio random_aspect's, clipped to the image."""
    h, w = mask.shape
    area = rng.uniform(min_area, 1.0) * h * w
    aspect = random_aspect(rng)
    ch = max(min(h, 8), int(round(min(h, np.sqrt(area / aspect)))))
    cw = max(min(w, 8), int(round(min(w, np.sqrt(area * aspect)))))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    return img[y:y + ch, x:x + cw], mask[y:y + ch, x:x + cw]


def zoom_crop(img, mask, rng, shares):
    """A crop around the object in which it covers a share of the area drawn from U(shares), up to filling the
    frame (the object may be cut at the borders, as frame-filling objects in photos are): aspect ratio as
    random_aspect's, centred on a random pixel deep inside the object (zoom_box)."""
    share = rng.uniform(*shares)
    aspect = random_aspect(rng)
    top, left, ch, cw = zoom_box(mask, share, aspect, interior_point(mask, rng))
    return img[top:top + ch, left:left + cw], mask[top:top + ch, left:left + cw]


def interior_point(mask, rng=None):
    """(row, column) deep inside the object: where its distance to the background is largest, or, with rng, a
    random pixel at least half as far in (a pixel near the border cannot centre a box the object fills)."""
    depth = cv2.distanceTransform((mask > 0).astype(np.uint8), cv2.DIST_L2, 3)
    if rng is None:
        return np.unravel_index(int(depth.argmax()), depth.shape)
    ys, xs = np.nonzero(depth >= depth.max() / 2)
    k = rng.integers(len(ys))
    return int(ys[k]), int(xs[k])


def zoom_box(mask, share, aspect, centre):
    """(top, left, height, width) of the largest box of the aspect ratio (width / height; narrowed by the image)
    around centre, shifted inside the image, of which the object covers at least `share`. Bisection on the
    height (the share falls, if not strictly, as the box grows), so the share overshoots by about a row's worth;
    the whole height where the object covers `share` of it, at least 8 rows (as scale_crop) where it covers
    less of any box."""
    h, w = mask.shape
    counts = cv2.integral((mask > 0).astype(np.uint8))

    def box(ch):
        cw = min(w, max(1, int(round(ch * aspect))))
        top, left = min(max(centre[0] - ch // 2, 0), h - ch), min(max(centre[1] - cw // 2, 0), w - cw)
        return top, left, ch, cw

    def covered(b):
        top, left, ch, cw = b
        inside = counts[top + ch, left + cw] - counts[top, left + cw] - counts[top + ch, left] + counts[top, left]
        return inside >= share * ch * cw

    lo, hi = min(h, 8), h
    if covered(box(hi)):
        return box(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if covered(box(mid)) else (lo, mid)
    return box(lo)


def photometric(img, rng, strength=1.0):
    """Colour augmentation of an RGB uint8 image: brightness, contrast, hue, saturation, sometimes grey or a
    Gaussian blur; `strength` scales the ranges (0: the image unchanged)."""
    if strength <= 0:
        return img
    out = img.astype(np.float32) * rng.uniform(1 - 0.4 * strength, 1 + 0.4 * strength)
    mean = out.mean()
    out = np.clip((out - mean) * rng.uniform(1 - 0.4 * strength, 1 + 0.4 * strength) + mean, 0, 255)
    hsv = cv2.cvtColor(out.astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-18, 18) * strength) % 180  # OpenCV's hue runs over 0..180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(1 - 0.5 * strength, 1 + 0.5 * strength), 0, 255)
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    if rng.random() < 0.1 * strength:
        out = np.repeat(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)[..., None], 3, 2)
    if rng.random() < 0.2 * strength:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    return out


def texture(hw, rng):
    """A background with no object: a few octaves of smooth colour noise plus a colour gradient."""
    h, w = hw
    out = np.zeros((h, w, 3), np.float32)
    for octave in range(rng.integers(2, 5)):
        cells = 2 ** (octave + 1)
        noise = rng.normal(0, 1, (cells, cells, 3)).astype(np.float32)
        out += cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC) / (octave + 1)
    horizontal = rng.random() < 0.5
    ramp = np.linspace(-1, 1, w if horizontal else h, dtype=np.float32)
    out += (ramp[None, :, None] if horizontal else ramp[:, None, None]) * rng.normal(0, 1, 3).astype(np.float32)
    base = rng.uniform(40, 215, 3).astype(np.float32)
    return np.clip(base + out * rng.uniform(10, 40), 0, 255).astype(np.uint8)


def remove_object(img, mask):
    """The image with its masked object filled in from the surroundings (Telea inpainting at a quarter size)."""
    if not mask.any():
        return img
    h, w = mask.shape
    small = (max(8, w // 4), max(8, h // 4))
    hole = cv2.dilate(cv2.resize(mask, small, interpolation=cv2.INTER_NEAREST), np.ones((3, 3), np.uint8))
    filled = cv2.inpaint(cv2.resize(img, small, interpolation=cv2.INTER_AREA), hole, 3, cv2.INPAINT_TELEA)
    filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where((cv2.dilate(mask, np.ones((7, 7), np.uint8)) > 0)[..., None], filled, img)


def paste(bg, bg_mask, obj, obj_mask, rng, size_range=(0.3, 0.9)):
    """Copy-paste: the object of (obj, obj_mask), cut to its box, its longer side scaled to U(size_range) of the
    background's shorter side, placed at random (up to a quarter of it past the border), blended with a slightly
    soft alpha. The label: the background's mask with the object on top."""
    ys, xs = np.nonzero(obj_mask)
    if ys.size == 0:
        return bg, bg_mask
    box = slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)
    obj, obj_mask = obj[box], obj_mask[box]
    h, w = bg_mask.shape
    scale = rng.uniform(*size_range) * min(h, w) / max(obj_mask.shape)
    oh, ow = (max(2, int(round(n * scale))) for n in obj_mask.shape)
    obj = cv2.resize(obj, (ow, oh), interpolation=cv2.INTER_LINEAR)
    obj_mask = cv2.resize(obj_mask, (ow, oh), interpolation=cv2.INTER_NEAREST)
    y = rng.integers(-oh // 4, max(h - 3 * oh // 4, -oh // 4 + 1))
    x = rng.integers(-ow // 4, max(w - 3 * ow // 4, -ow // 4 + 1))
    y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + oh, h), min(x + ow, w)
    if y1 <= y0 or x1 <= x0:
        return bg, bg_mask
    part = obj_mask[y0 - y:y1 - y, x0 - x:x1 - x]
    alpha = cv2.GaussianBlur(part.astype(np.float32), (0, 0), 0.8)[..., None]
    out, label = bg.copy(), bg_mask.copy()
    under = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = (alpha * obj[y0 - y:y1 - y, x0 - x:x1 - x] + (1 - alpha) * under).astype(np.uint8)
    label[y0:y1, x0:x1] = np.maximum(label[y0:y1, x0:x1], part)
    return out, label


class SaliencySample:
    """Sample (image index, Generator) -> (Caffe input [3, size, size], label [out, out] 0/1) of a MaskFolder.

    paste: the probability that another image's object is pasted on; paste_bg: onto what (keep: this image, its
    object stays foreground; inpaint: this image without its object; texture: a synthetic texture; mix: each a
    third of the time). min_area: the smallest crop as a share of the area (1: the segmenter's 90-100% crop).
    zoom: the probability that the crop is instead a zoom crop (zoom_crop) whose object share is drawn from
    U(zoom_min_share, 1). colour: strength of the colour augmentation. out_size: the label's side (the network's
    output, as for the segmenter; or the input size, the scores then upsampled). With paste 0, min_area 1,
    colour 0 and zoom 0 the samples are the segmenter's 'tight' samples exactly; otherwise images are first
    shrunk to a longer side of twice `size` (speed).
    """

    def __init__(self, data, size, out_size, paste=0.0, paste_bg="keep", min_area=1.0, colour=0.0, zoom=0.0,
                 zoom_min_share=0.3):
        self.data, self.size, self.out_size = data, size, out_size
        self.paste, self.paste_bg, self.min_area, self.colour = paste, paste_bg, min_area, colour
        self.zoom, self.zoom_shares = zoom, (zoom_min_share, 1.0)
        self.augmented = paste > 0 or min_area < 1 or colour > 0 or zoom > 0
        self.loaded, self.loaded_bytes = {}, 0

    def load(self, i):
        """Image i and its mask, shrunk; kept in memory (up to CACHE_BYTES): decoding and shrinking a DAVIS
        frame took two thirds of a sample's time, and a training draws each image a dozen times or more."""
        if i in self.loaded:
            return self.loaded[i]
        img, mask = self.data.image(i), self.data.label(i)
        if max(mask.shape) > 2 * self.size:
            img, mask = T.resize_longer(img, 2 * self.size), T.resize_longer(mask, 2 * self.size, Image.NEAREST)
        if self.loaded_bytes + img.nbytes + mask.nbytes <= CACHE_BYTES:
            img.flags.writeable = mask.flags.writeable = False  # shared by every sample that draws it
            self.loaded[i] = img, mask
            self.loaded_bytes += img.nbytes + mask.nbytes
        return img, mask

    def __call__(self, i, rng):
        if not self.augmented:
            return T.seg_train_sample(self.data.image(i), self.data.label(i), rng, self.size, self.out_size, "tight")
        img, mask = self.load(i)
        if rng.random() < self.paste and len(self.data) > 1:
            j = int(rng.integers(len(self.data) - 1))
            obj, obj_mask = self.load(j + (j >= i))
            kind = self.paste_bg if self.paste_bg != "mix" else PASTE_BACKGROUNDS[rng.integers(3)]
            if kind == "inpaint":
                img, mask = remove_object(img, mask), np.zeros_like(mask)
            elif kind == "texture":
                img, mask = texture(mask.shape, rng), np.zeros_like(mask)
            img, mask = paste(img, mask, obj, obj_mask, rng)
        if self.zoom and rng.random() < self.zoom and mask.any():  # zoom 0 draws nothing: the same streams
            img, mask = zoom_crop(img, mask, rng, self.zoom_shares)
        else:
            img, mask = scale_crop(img, mask, rng, self.min_area)
        img, _, _ = T.fit_reflect(np.ascontiguousarray(img), self.size)
        mask, _, _ = T.fit_reflect(np.ascontiguousarray(mask), self.size, Image.NEAREST)
        if rng.random() < 0.5:
            img, mask = img[:, ::-1], mask[:, ::-1]
        img = photometric(np.ascontiguousarray(img), rng, self.colour)
        return T.to_caffe_input(img), T.shrink_label(np.ascontiguousarray(mask), self.out_size).astype(np.int64)
