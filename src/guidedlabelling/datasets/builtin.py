"""Built-in synthetic demo data: objects whose class is told mainly by a small part.

Every object is a saturated orange "body" (~80% of its area) plus a small "head" disc
at one end whose colours name the class. The body is tinted slightly (BODY_TINT)
toward its head's colour: each class is visible on its whole object, as real objects
are, but the head is the strong cue. A classifier's CAM therefore fires on the head,
while a class-agnostic saliency model, trained on the separate set of random-coloured
shapes and two-toned "creatures", can recover the whole body - the premise of Oh et al.
(CVPR 2017). An image holds one or two objects, the second mostly of the first's class
(P_SAME_CLASS), so a segmenter can tell which head a body belongs to. Backgrounds are
smooth, greyish textures; each class prefers one background type, so context is a
(weak) cue too.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image

from ..io import IGNORE, save_label_png, writing

CLASS_NAMES = ("background", "bluehead", "pinkhead", "greenhead", "tealhead", "whitehead")
NUM_CLASSES = len(CLASS_NAMES) - 1
HEAD_COLOURS = {  # class -> (head disc RGB, centre dot RGB)
    1: ((30, 70, 235), (255, 255, 255)),
    2: ((225, 40, 205), (255, 255, 255)),
    3: ((40, 190, 50), (0, 0, 0)),
    4: ((20, 205, 225), (0, 0, 0)),
    5: ((250, 250, 250), (0, 0, 0)),
}
BACKGROUNDS = (  # (base RGB, noise cells across the image, noise amplitude, ramp amplitude)
    ((150, 165, 182), 3, 6.0, 30.0),   # sky: pale blue-grey, very smooth
    ((118, 138, 108), 14, 10.0, 12.0),  # grass: grey-green, fine grain
    ((178, 166, 140), 8, 8.0, 16.0),   # sand: beige, medium grain
    ((128, 128, 128), 5, 12.0, 10.0),  # stone: neutral grey, blotchy
    ((136, 118, 142), 4, 7.0, 24.0),   # dusk: grey-violet, smooth
)
PREFERRED_BACKGROUND = {c: c - 1 for c in range(1, NUM_CLASSES + 1)}
P_PREFERRED_BACKGROUND = 0.3
OBJECT_COUNT_PROBS = (0.6, 0.4)  # for 1, 2 objects
P_SAME_CLASS = 0.75  # a second object's chance of the first one's class (else one of the others)
BODY_TINT = 0.15  # share of the head colour mixed into the body colour
MAX_OVERLAP = 0.05  # of a new object's area
GENERATOR_VERSION = 4
_SHIFT = 4  # sub-pixel bits for cv2 drawing
_TRAIN, _VAL, _SALIENCY = 0, 1, 2  # per-stream seed salt


class SceneObject(NamedTuple):
    cls: int
    mask: np.ndarray  # visible object pixels (bool)
    part: np.ndarray  # visible class-specific head pixels (bool)


class Scene(NamedTuple):
    image: np.ndarray  # HxWx3 uint8 RGB
    label: np.ndarray  # HxW uint8: 0 background, 1..K classes, 255 void band
    objects: tuple[SceneObject, ...]
    background: int  # index into BACKGROUNDS


class _Blob(NamedTuple):
    body: np.ndarray
    head: np.ndarray
    dot: np.ndarray


def image_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """Independent generator per image, so images don't depend on generation order."""
    return np.random.default_rng([seed, stream, index])


def _fixed(points) -> np.ndarray:
    return np.round(np.asarray(points) * (1 << _SHIFT)).astype(np.int32)


def _fill_polygon(size: int, points) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [_fixed(points)], 1, cv2.LINE_8, _SHIFT)
    return mask.astype(bool)


def _fill_disc(size: int, centre, radius: float) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.circle(mask, tuple(_fixed(centre).tolist()), int(_fixed(radius)), 1, -1, cv2.LINE_8, _SHIFT)
    return mask.astype(bool)


def _place(unit_points, centre, scale, theta) -> np.ndarray:
    """Scale (sx, sy), rotate by theta and translate points given around the origin."""
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return (np.asarray(unit_points) * scale) @ rot.T + centre


def render_background(rng: np.random.Generator, kind: int, size: int) -> np.ndarray:
    """Low-saturation, low-contrast texture: tinted base + smooth noise + linear ramp (float)."""
    base, cells, noise_amp, ramp_amp = BACKGROUNDS[kind]
    grid = rng.normal(size=(cells, cells, 1)) + 0.3 * rng.normal(size=(cells, cells, 3))
    noise = cv2.resize(grid.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    ramp = (np.cos(theta) * xx + np.sin(theta) * yy)[..., None]
    tint = np.asarray(base) + rng.normal(0, 5, 3)
    return tint + noise_amp * noise + ramp_amp * ramp


def _paint(image: np.ndarray, mask: np.ndarray, colour, rng: np.random.Generator) -> None:
    """Fill mask with colour under a gentle linear shading, in place."""
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.nonzero(mask)
    shade = 1 + 0.15 * (np.cos(theta) * xx + np.sin(theta) * yy) / image.shape[0]
    image[yy, xx] = np.asarray(colour, float) * shade[:, None]


def _finish(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add sensor grain and quantise to uint8."""
    image = image + rng.normal(0, 2.0, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _body_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """Saturated orange-yellow, the same family for every class."""
    return rng.uniform(225, 255), rng.uniform(125, 190), rng.uniform(0, 45)


def _tinted(body, head) -> np.ndarray:
    """Body colour moved BODY_TINT of the way toward the head colour: a weak class cue on the whole body."""
    return (1 - BODY_TINT) * np.asarray(body, float) + BODY_TINT * np.asarray(head, float)


def _second_class(rng: np.random.Generator, first: int) -> int:
    """The first object's class with P_SAME_CLASS, else one of the other classes."""
    if rng.random() < P_SAME_CLASS:
        return first
    return int(rng.choice([c for c in range(1, NUM_CLASSES + 1) if c != first]))


def _bright_colour(rng: np.random.Generator) -> np.ndarray:
    """Any hue, high saturation and value (for saliency shapes)."""
    hsv = np.array([[[rng.integers(180), rng.integers(170, 256), rng.integers(190, 256)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(float)


def _sample_blob(rng: np.random.Generator, size: int) -> _Blob:
    """Wobbly elliptic body 30-56% of the side long, with a head disc at one end."""
    a = rng.uniform(0.15, 0.28) * size  # half length
    b = a * rng.uniform(0.45, 0.7)  # half width
    head_radius = np.sqrt(0.2 * a * b)  # head disc ~ a fifth of the body's area
    theta = rng.uniform(0, 2 * np.pi)
    reach = max(1.15 * a, 0.85 * a + head_radius) + 1
    centre = rng.uniform(reach, size - reach, 2)
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    wobble = 1 + sum(rng.uniform(0, 0.07) * np.cos(k * t + rng.uniform(0, 2 * np.pi)) for k in (2, 3))
    outline = _place(np.stack([np.cos(t), np.sin(t)], 1) * wobble[:, None], centre, (a, b), theta)
    head_centre = centre + 0.85 * a * np.array([np.cos(theta), np.sin(theta)])
    return _Blob(
        _fill_polygon(size, outline),
        _fill_disc(size, head_centre, head_radius),
        _fill_disc(size, head_centre, max(0.45 * head_radius, 1.0)),
    )


def _place_blobs(rng: np.random.Generator, size: int, count: int, tries: int = 20) -> list[_Blob]:
    """Rejection-sample up to count blobs that overlap earlier ones by at most MAX_OVERLAP."""
    blobs, taken = [], np.zeros((size, size), bool)
    for _ in range(count):
        for _ in range(tries):
            blob = _sample_blob(rng, size)
            area = blob.body | blob.head
            if (area & taken).sum() <= MAX_OVERLAP * area.sum():
                blobs.append(blob)
                taken |= area
                break
    return blobs


def _pick_background(rng: np.random.Generator, cls: int) -> int:
    if rng.random() < P_PREFERRED_BACKGROUND:
        return PREFERRED_BACKGROUND[cls]
    return int(rng.integers(len(BACKGROUNDS)))


def add_void_band(label: np.ndarray) -> np.ndarray:
    """Mark object pixels touching a different label as void (1 px, like VOC's border)."""
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    edge = (cv2.erode(label, cross) != cv2.dilate(label, cross)) & (label > 0)
    return np.where(edge, np.uint8(IGNORE), label)


def render_scene(rng: np.random.Generator, size: int = 128, first_class: int | None = None) -> Scene:
    """One image with 1-2 part-labelled objects; later objects are drawn on top."""
    count = 1 + int(rng.choice(len(OBJECT_COUNT_PROBS), p=OBJECT_COUNT_PROBS))
    classes = [first_class or int(rng.integers(1, NUM_CLASSES + 1))]
    classes += [_second_class(rng, classes[0]) for _ in range(count - 1)]
    background = _pick_background(rng, classes[0])
    image = render_background(rng, background, size)
    blobs = _place_blobs(rng, size, count)
    owner = np.full((size, size), -1)
    label = np.zeros((size, size), np.uint8)
    for i, (cls, blob) in enumerate(zip(classes, blobs)):
        head_colour, dot_colour = HEAD_COLOURS[cls]
        _paint(image, blob.body, _tinted(_body_colour(rng), head_colour), rng)
        _paint(image, blob.head, head_colour, rng)
        _paint(image, blob.dot, dot_colour, rng)
        owner[blob.body | blob.head] = i
        label[blob.body | blob.head] = cls
    objects = tuple(
        SceneObject(cls, owner == i, blob.head & (owner == i))
        for i, (cls, blob) in enumerate(zip(classes, blobs))
    )
    return Scene(_finish(image, rng), add_void_band(label), objects, background)


def _saliency_shape(rng: np.random.Generator, size: int) -> np.ndarray:
    """Mask of a random rectangle, triangle, star, cross or ring, 28-56% of the side."""
    half = rng.uniform(0.14, 0.28) * size
    centre = rng.uniform(half + 1, size - half - 1, 2)
    theta = rng.uniform(0, 2 * np.pi)
    kind = rng.integers(5)
    if kind == 4:  # ring
        return _fill_disc(size, centre, half) & ~_fill_disc(size, centre, half * rng.uniform(0.4, 0.7))
    if kind == 0:  # rectangle
        h = rng.uniform(0.35, 1.0)
        unit = [(-1, -h), (1, -h), (1, h), (-1, h)]
    elif kind == 1:  # triangle
        angles = np.pi / 2 + 2 * np.pi / 3 * np.arange(3) + rng.uniform(-0.3, 0.3, 3)
        unit = np.stack([np.cos(angles), np.sin(angles)], 1)
    elif kind == 2:  # star
        angles = np.pi * np.arange(10) / 5
        radii = np.where(np.arange(10) % 2, rng.uniform(0.4, 0.6), 1.0)
        unit = np.stack([np.cos(angles), np.sin(angles)], 1) * radii[:, None]
    else:  # cross
        w = rng.uniform(0.25, 0.45)
        unit = [(w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1),
                (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w), (-w, -1)]
    return _fill_polygon(size, _place(unit, centre, half, theta))


def _paint_shapes(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paint 1-2 bright shapes (some with a differently coloured patch) into image; return their mask."""
    size = image.shape[0]
    mask = np.zeros((size, size), bool)
    for _ in range(1 + int(rng.choice(len(OBJECT_COUNT_PROBS), p=OBJECT_COUNT_PROBS))):
        shape = _saliency_shape(rng, size)
        _paint(image, shape, _bright_colour(rng), rng)
        if rng.random() < 0.4:  # a differently coloured patch, so objects need not be one colour
            ys, xs = np.nonzero(shape)
            spot = shape & _fill_disc(size, (xs.mean(), ys.mean()), 0.5 * np.sqrt(shape.sum()))
            _paint(image, spot, _bright_colour(rng), rng)
        mask |= shape
    return mask


def _paint_creatures(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paint 1-2 body-and-head blobs in random bright colours into image; return their mask.

    The demo's objects have this outline, so saliency learns that a head belongs to its body, yet every
    colour is random: the set names no class and holds none of the dataset's images."""
    mask = np.zeros(image.shape[:2], bool)
    for blob in _place_blobs(rng, image.shape[0], 1 + int(rng.choice(len(OBJECT_COUNT_PROBS), p=OBJECT_COUNT_PROBS))):
        for part in blob:
            _paint(image, part, _bright_colour(rng), rng)
        mask |= blob.body | blob.head
    return mask


def render_saliency_sample(rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Image with 1-2 bright objects, creatures or shapes with even odds, and its binary 0/255 mask."""
    image = render_background(rng, int(rng.integers(len(BACKGROUNDS))), size)
    mask = (_paint_creatures if rng.random() < 0.5 else _paint_shapes)(image, rng)
    return _finish(image, rng), np.where(mask, np.uint8(255), np.uint8(0))


def _save_jpeg(image: np.ndarray, path: Path) -> None:
    Image.fromarray(image).save(path, quality=95, subsampling=0)  # 4:4:4 keeps small heads crisp


def generate_builtin(root, n_train: int = 300, n_val: int = 100, size: int = 128, seed: int = 0) -> Path:
    """Write the VOC-layout demo dataset into root and return root."""
    root = Path(root)
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("".join(f"{name}\n" for name in CLASS_NAMES))
    for stream, split, n in ((_TRAIN, "train", n_train), (_VAL, "val", n_val)):
        ids = [f"{split}_{i:04d}" for i in range(n)]
        for i, image_id in enumerate(ids):
            # cycling the first object's class guarantees every class in every split
            scene = render_scene(image_rng(seed, stream, i), size, first_class=1 + i % NUM_CLASSES)
            _save_jpeg(scene.image, root / "JPEGImages" / f"{image_id}.jpg")
            save_label_png(root / "SegmentationClass" / f"{image_id}.png", scene.label)
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("".join(f"{x}\n" for x in ids))
    return root


def generate_saliency_set(root, n: int = 300, size: int = 128, seed: int = 1) -> Path:
    """Write the class-agnostic saliency set (images/*.jpg, masks/*.png) into root."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, mask = render_saliency_sample(image_rng(seed, _SALIENCY, i), size)
        _save_jpeg(image, root / "images" / f"sal_{i:04d}.jpg")
        Image.fromarray(mask, "L").save(root / "masks" / f"sal_{i:04d}.png")
    return root


def _read_stamp(root: Path) -> dict | None:
    try:
        return json.loads((root / ".complete").read_text())
    except (OSError, ValueError):
        return None


def _ensure(root: Path, generate, params: dict) -> Path:
    """Generate into a temp dir beside root, stamp it, then swap it into place; under a lock, so that two first
    runs at once generate it once (the second waits, then finds it complete) and leftovers of a killed generation
    can go."""
    stamp = {"version": GENERATOR_VERSION, **params}
    if _read_stamp(root) == stamp:
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with writing(root, "built-in data"):
        if _read_stamp(root) == stamp:  # made while this process waited
            return root
        for leftover in root.parent.glob(f".{root.name}-*"):  # a generation killed midway
            shutil.rmtree(leftover, ignore_errors=True)
        _generate(root, generate, params, stamp)
    return root


def _generate(root: Path, generate, params: dict, stamp: dict):
    """generate() into a temporary folder beside root, stamped complete, which then replaces root."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would otherwise stick to the dataset
    try:
        generate(tmp, **params)
        (tmp / ".complete").write_text(json.dumps(stamp))
        shutil.rmtree(root, ignore_errors=True)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def builtin_roots(data_dir) -> tuple[Path, Path]:
    """(voc_root, saliency_root): where ensure_builtin puts the two datasets."""
    return Path(data_dir) / "builtin", Path(data_dir) / "builtin_saliency"


def ensure_builtin(data_dir, *, n_train: int = 300, n_val: int = 100, size: int = 128, seed: int = 0,
                   n_saliency: int = 300, saliency_seed: int = 1) -> tuple[Path, Path]:
    """Return (voc_root, saliency_root) under data_dir, generating them unless already complete."""
    voc_root, saliency_root = builtin_roots(data_dir)
    _ensure(voc_root, generate_builtin, dict(n_train=n_train, n_val=n_val, size=size, seed=seed))
    _ensure(saliency_root, generate_saliency_set, dict(n=n_saliency, size=size, seed=saliency_seed))
    return voc_root, saliency_root
