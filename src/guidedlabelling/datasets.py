"""Datasets in PASCAL VOC layout, the release's preprocessing, and batch orders.

A dataset root holds JPEGImages/, SegmentationClass/ or SegmentationClassAug/
(index PNGs, 255 = void), ImageSets/<datatype>/<split>.txt and optionally
classes.txt (background first; VOC's 20 classes when absent). Image-level
labels are the values of the label PNG other than 0 and 255, as in the release.
"""
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .io import InputError, load_image, load_label_png

VOC_CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor"]
MEAN_BGR = np.array([104.008, 116.669, 122.675], np.float32)
IGNORE = 255


def split_name(dataset):
    """'voc12train_aug' -> 'train_aug'; other names are split names already."""
    return dataset[len("voc12"):] if dataset.startswith("voc12") else dataset


def dataset_root(pascalroot=None, dataset_dir=None):
    """--dataset_dir names a VOC-layout folder; --pascalroot keeps the release's meaning (holds VOC2012/)."""
    root = Path(dataset_dir) if dataset_dir else Path(pascalroot) / "VOC2012"
    if not root.is_dir():
        flag = "--dataset_dir" if dataset_dir else "--pascalroot"
        raise InputError(f"{root}: dataset folder not found; pass {flag} pointing at a VOC-layout folder "
                         "(downloads.sh fetches VOC2012)")
    return root


def read_classes(root):
    path = Path(root) / "classes.txt"
    if not path.exists():
        return list(VOC_CLASSES)
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(names) < 2:
        raise InputError(f"{path}: needs background plus at least one class, one name per line")
    return names


@dataclass(frozen=True)
class Item:
    id: str
    image: Path
    label: Path


class VOCDataset:
    """Ids, files and image-level labels of one split of a VOC-layout folder."""

    def __init__(self, root, split, datatype="Segmentation"):
        self.root = Path(root)
        self.split = split
        self.classes = read_classes(self.root)
        self.items = self._read_list(datatype)
        self._labels = {}

    def _label_dir(self):
        aug = self.root / "SegmentationClassAug"
        return aug if self.split.endswith("_aug") and aug.is_dir() else self.root / "SegmentationClass"

    def _read_list(self, datatype):
        path = self.root / "ImageSets" / datatype / f"{self.split}.txt"
        if not path.exists():
            raise InputError(f"{path}: image list not found; create it (one id per line) or choose "
                             "another split with --dataset/--test_dataset")
        label_dir = self._label_dir()
        items = []
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:  # "/JPEGImages/x.jpg /SegmentationClassAug/x.png"
                items.append(Item(Path(parts[0]).stem, self.root / parts[0].lstrip("/"),
                                  self.root / parts[1].lstrip("/")))
            elif len(parts) == 1:
                items.append(Item(parts[0], self.root / "JPEGImages" / f"{parts[0]}.jpg",
                                  label_dir / f"{parts[0]}.png"))
        if not items:
            raise InputError(f"{path}: image list is empty")
        return items

    def __len__(self):
        return len(self.items)

    @property
    def ids(self):
        return [it.id for it in self.items]

    @property
    def num_classes(self):
        return len(self.classes)

    def image(self, i):
        path = self.items[i].image
        if not path.exists():
            raise InputError(f"{path}: image of id {self.items[i].id} not found; "
                             f"add it or remove the id from the {self.split} list")
        return load_image(path)

    def label(self, i):
        path = self.items[i].label
        if not path.exists():
            raise InputError(f"{path}: label of id {self.items[i].id} not found; "
                             f"add it or remove the id from the {self.split} list")
        label = load_label_png(path)
        bad = np.setdiff1d(np.unique(label), np.r_[np.arange(self.num_classes), IGNORE])
        if bad.size:
            raise InputError(f"{path}: label values {bad.tolist()} outside the {self.num_classes} classes "
                             f"of {self.root / 'classes.txt'}; fix the PNG or the class list")
        return label

    def image_classes(self, i):
        """Foreground classes present (1-based class values, increasing)."""
        if i not in self._labels:
            values = np.unique(self.label(i))
            self._labels[i] = [int(v) for v in values if 0 < v < IGNORE]
        return self._labels[i]

    def class_vector(self, i):
        vec = np.zeros(self.num_classes - 1, np.float32)
        vec[np.array(self.image_classes(i), int) - 1] = 1
        return vec


class MaskFolder:
    """A class-agnostic saliency set: images/<id>.jpg|png and masks/<id>.png (0 / 255).

    part 'train' is all but the last `holdout` images (sorted by name), 'holdout' those.
    """

    def __init__(self, root, holdout=0, part="train"):
        self.root = Path(root)
        images = self.root / "images"
        if not images.is_dir():
            raise InputError(f"{images}: saliency training images not found; expected images/ and masks/ "
                             "folders (set --saliency_data)")
        self.items = [Item(p.stem, p, self.root / "masks" / f"{p.stem}.png")
                      for p in sorted(images.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
        if len(self.items) <= holdout:
            raise InputError(f"{images}: {len(self.items)} images, not enough to hold out {holdout}")
        cut = len(self.items) - holdout
        self.items = self.items[:cut] if part == "train" else self.items[cut:]

    def __len__(self):
        return len(self.items)

    def image(self, i):
        return load_image(self.items[i].image)

    def label(self, i):
        path = self.items[i].label
        if not path.exists():
            raise InputError(f"{path}: mask of {self.items[i].image.name} not found; add it or remove the image")
        return (load_label_png(path) > 127).astype(np.uint8)


# ---- preprocessing (spec sections 1, 2, 6, 7) ----

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


def seed_train_sample(img, rng, size):
    """Spec section 1: random 90-100% crop, longer side to size, reflect pad, random flip."""
    y0, x0, y1, x1 = random_crop_box(*img.shape[:2], rng)
    img, _, _ = fit_reflect(img[y0:y1, x0:x1], size)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return to_caffe_input(img)


def seg_train_sample(img, label, rng, size, out_size, resize="none"):
    """Spec section 6 ('none'): flip, random size x size crop, reflect pad (label too), label NN to out_size."""
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


def fit_reflect_label(label, size):
    resized = resize_longer(label, size, cv2.INTER_NEAREST)
    padded, offset = pad_reflect(resized, (size, size))
    return padded, offset, resized.shape[:2]


class TrainStream(torch.utils.data.Dataset):
    """Sample k of a training stream: image order[k], augmented with a generator seeded by (seed, k).

    Deterministic whatever the number of DataLoader workers, and resumable at any k.
    """

    def __init__(self, order, make_sample, seed):
        self.order, self.make_sample, self.seed = order, make_sample, seed

    def __len__(self):
        return len(self.order)

    def __getitem__(self, k):
        return self.make_sample(int(self.order[k]), np.random.default_rng([self.seed, k]))


def shuffled_order(n_images, length, rng):
    """The release's 'none': plain shuffling, one permutation per epoch."""
    reps = -(-length // n_images)
    return np.concatenate([rng.permutation(n_images) for _ in range(reps)])[:length]


def clsbal_order(image_classes, num_fg, length, rng):
    """'clsbal': each run of num_fg images covers every class once in random order,
    drawing for each class an image that contains it."""
    by_class = [[i for i, cls in enumerate(image_classes) if c in cls] for c in range(1, num_fg + 1)]
    missing = [c for c, ims in enumerate(by_class, 1) if not ims]
    if missing:
        raise InputError(f"--balbatch clsbal: classes {missing} occur in no training image; use --balbatch none")
    order = []
    while len(order) < length:
        for c in rng.permutation(num_fg):
            order.append(by_class[c][rng.integers(len(by_class[c]))])
    return np.array(order[:length])
