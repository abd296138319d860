"""Datasets: PASCAL VOC layout or your own images with tags; the release's preprocessing; batch orders.

A VOC root holds JPEGImages/, SegmentationClass/ or SegmentationClassAug/ (index
PNGs, 255 = void), ImageSets/<datatype>/<split>.txt and optionally classes.txt
(background first; VOC's 20 classes when absent). Image-level labels are the
values of the label PNG other than 0 and 255, as in the release.

Own data (OwnDataset) is a folder of images plus a CSV of image-level tags.

Every dataset checks its files when opened, before a stage writes anything: a
missing image or label, a label value outside the class list or a label of
another size is an error naming the file; an image that does not decode
(truncated, not an image) is left out and listed in `skipped`.
"""
import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from .io import InputError, load_image, load_label_png

VOC_CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor"]
MEAN_BGR = np.array([104.008, 116.669, 122.675], np.float32)
IGNORE = 255
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
EXIF_ORIENTATION = 0x0112
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


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


def is_own_data(d):
    """True when the data settings name your own images and tags instead of a VOC-layout folder."""
    return bool(d["images"] or d["tags"])


def has_ground_truth(d):
    """Whether the data has label PNGs to evaluate against (VOC always; own data with --masks)."""
    return not is_own_data(d) or bool(d["masks"])


def open_dataset(d, split):
    """The dataset the data settings name: own images + tags, or a split of a VOC-layout folder."""
    if is_own_data(d):
        if not (d["images"] and d["tags"]):
            raise InputError("--images and --tags go together: a folder of images and a CSV `image,tags` "
                             "naming their classes")
        return OwnDataset(d["images"], d["tags"], d["masks"], split, d["val_percent"])
    return VOCDataset(dataset_root(d["pascalroot"], d["dataset_dir"]), split_name(split), d["datatype"])


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
    label: Path | None


def image_check(path):
    """(height, width) as load_image returns it (EXIF orientation applied), or the reason it does not decode.

    JPEGs decode at 1/8 scale: every byte of the file is still read, so truncation shows, at half the cost.
    """
    try:
        with Image.open(path) as img:
            w, h = img.size
            turned = img.getexif().get(EXIF_ORIENTATION) in TRANSPOSING_ORIENTATIONS
            img.draft(None, (1, 1))
            img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        return str(e) or type(e).__name__
    return (w, h) if turned else (h, w)


def readable_items(items, listed_in):
    """Items whose image decodes, their image sizes, and {image path: problem} of those that do not."""
    kept, sizes, skipped = [], [], {}
    for it in items:
        if not it.image.is_file():
            raise InputError(f"{it.image}: image of id {it.id} not found; add it or remove the id from {listed_in}")
        checked = image_check(it.image)
        if isinstance(checked, str):
            skipped[str(it.image)] = checked
        else:
            kept.append(it)
            sizes.append(checked)
    if not kept:
        path, problem = next(iter(skipped.items()))
        raise InputError(f"{listed_in}: none of its {len(items)} images can be read ({path}: {problem}); "
                         "replace them")
    return kept, sizes, skipped


def checked_label(path, hw, classes, class_source):
    """A label PNG whose size is the image's and whose values are classes or 255 (void)."""
    label = load_label_png(path)
    if label.shape != tuple(hw):
        raise InputError(f"{path}: label is {label.shape[1]}x{label.shape[0]} (WxH), its image "
                         f"{hw[1]}x{hw[0]}; fix the PNG (EXIF-rotated images count as displayed)")
    bad = np.setdiff1d(np.unique(label), np.r_[np.arange(len(classes)), IGNORE])
    if bad.size:
        raise InputError(f"{path}: label values {bad.tolist()} outside the {len(classes)} classes of "
                         f"{class_source}; fix the PNG or the class list (255 = void)")
    return label


def present_classes(label):
    """Foreground classes of a label map (1-based class values, increasing)."""
    return [int(v) for v in np.unique(label) if 0 < v < IGNORE]


class ImageList:
    """`items` and their images."""

    @property
    def ids(self):
        return [it.id for it in self.items]

    def __len__(self):
        return len(self.items)

    def image(self, i):
        return load_image(self.items[i].image)


class Labelled(ImageList):
    """A dataset of classes: subclasses give `classes`, label(i) and image_classes(i)."""

    @property
    def num_classes(self):
        return len(self.classes)

    def class_vector(self, i):
        vec = np.zeros(self.num_classes - 1, np.float32)
        vec[np.array(self.image_classes(i), int) - 1] = 1
        return vec


class VOCDataset(Labelled):
    """Ids, files and image-level labels (from the label PNGs) of one split of a VOC-layout folder."""

    has_labels = True

    def __init__(self, root, split, datatype="Segmentation"):
        self.root = Path(root)
        self.split = split
        self.classes = read_classes(self.root)
        listed = self._read_list(datatype)
        for it in listed:
            if not it.label.is_file():
                raise InputError(f"{it.label}: label of id {it.id} not found; add it or remove the id from "
                                 f"{self._list_path(datatype)}")
        self.items, self.sizes, self.skipped = readable_items(listed, self._list_path(datatype))
        self._present = [present_classes(self.label(i)) for i in range(len(self.items))]

    def _label_dir(self):
        aug = self.root / "SegmentationClassAug"
        return aug if self.split.endswith("_aug") and aug.is_dir() else self.root / "SegmentationClass"

    def _list_path(self, datatype):
        return self.root / "ImageSets" / datatype / f"{self.split}.txt"

    def _read_list(self, datatype):
        path = self._list_path(datatype)
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

    def label(self, i):
        return checked_label(self.items[i].label, self.sizes[i], self.classes, self.root / "classes.txt")

    def image_classes(self, i):
        """Foreground classes present (1-based class values, increasing)."""
        return self._present[i]


@dataclass(frozen=True)
class TagRow:
    line: int
    image: str
    tags: tuple
    split: str | None


def read_tags(path):
    """Rows of a tags CSV: header `image,tags` (optionally `,split`), tags separated by spaces or ';'."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: tags file not found; pass --tags with a CSV whose header is image,tags")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file; save the tags as CSV (header image,tags)") from None
    reader = csv.reader(lines)
    header = [h.strip().lower() for h in next(reader, [])]
    if header not in (["image", "tags"], ["image", "tags", "split"]):
        raise InputError(f"{path}: header {','.join(header) or '(empty file)'} is not image,tags (or "
                         "image,tags,split); the first line must name these columns")
    rows = []
    for fields in reader:
        if not any(f.strip() for f in fields):
            continue
        line = reader.line_num
        if len(fields) != len(header) or not fields[0].strip():
            raise InputError(f"{path}, line {line}: expected {len(header)} fields ({','.join(header)}), got "
                             f"{fields}; separate tags by spaces or ';', not commas")
        tags = tuple(sorted({t for t in re.split(r"[;\s]+", fields[1]) if t}))
        if "background" in tags:
            raise InputError(f"{path}, line {line}: 'background' is not a tag (it is class 0); remove it")
        rows.append(TagRow(line, fields[0].strip(), tags, fields[2].strip() if len(header) == 3 else None))
    if not rows:
        raise InputError(f"{path}: no image rows below the header")
    return rows


def hash_split(image_id, val_percent):
    """'val' for about val_percent of the ids, the same on every machine: sha1 of the id, mod 100."""
    return "val" if int(hashlib.sha1(image_id.encode()).hexdigest(), 16) % 100 < val_percent else "train"


class OwnDataset(Labelled):
    """Your own images with image-level tags: a folder of images and a CSV `image,tags[,split]`.

    `image` is a file name in the folder (with or without its extension); the id is its stem. Classes:
    background, then the sorted tag names of the whole CSV. A row belongs to the split its `split`
    column names, else to val when hash_split says so (val_percent of the ids), else to train. The
    VOC presets' training split name train_aug means train. Masks (optional, for evaluation) are label
    PNGs <masks>/<id>.png with the class indices above and 255 for void.
    """

    def __init__(self, images, tags, masks=None, split="train", val_percent=20):
        self.root, self.tags_file = Path(images), Path(tags)
        self.split = "train" if split == "train_aug" else split
        self.has_labels = bool(masks)
        if not self.root.is_dir():
            raise InputError(f"{self.root}: image folder not found; pass --images with your images' folder")
        if masks and not Path(masks).is_dir():
            raise InputError(f"{masks}: masks folder not found; pass --masks with a folder of <id>.png or "
                             "leave it out")
        rows = read_tags(self.tags_file)
        self.classes = ["background"] + sorted({t for r in rows for t in r.tags})
        if len(self.classes) < 2:
            raise InputError(f"{self.tags_file}: no tags at all; tag each image with the classes it shows")
        listed, tag_classes = self._split_items(rows, masks, val_percent)
        self.items, self.sizes, self.skipped = readable_items(listed, self.tags_file)
        self._present = [tag_classes[it.id] for it in self.items]
        if self.has_labels:
            for i in range(len(self.items)):
                self.label(i)  # checks every mask now, before a stage writes anything

    def _split_items(self, rows, masks, val_percent):
        """Items of this split, and {id: its tags' class indices}."""
        files = self._match_files(rows)
        items, tag_classes = [], {}
        for r in rows:
            image = files[r.line]
            if (r.split or hash_split(image.stem, val_percent)) != self.split:
                continue
            label = Path(masks) / f"{image.stem}.png" if masks else None
            if label is not None and not label.is_file():
                raise InputError(f"{label}: mask of {image.name} not found; add it, or leave out --masks to "
                                 "run without evaluation")
            items.append(Item(image.stem, image, label))
            tag_classes[image.stem] = [self.classes.index(t) for t in r.tags]
        if not items:
            raise InputError(f"{self.tags_file}: no images in split {self.split}; add a split column "
                             "(train/val) or more images")
        return items, tag_classes

    def _match_files(self, rows):
        """{CSV line: image file}; each row names one file of the folder, each file is named once."""
        by_stem = {}
        for p in sorted(self.root.iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                by_stem.setdefault(p.stem, []).append(p)
        files, seen = {}, {}
        for r in rows:
            exact = self.root / r.image
            found = [exact] if exact.is_file() else by_stem.get(r.image, [])
            where = f"{self.tags_file}, line {r.line}"
            if not found:
                raise InputError(f"{where}: image {r.image!r} is not in {self.root}; add it or remove the row")
            if len(found) > 1:
                raise InputError(f"{where}: {r.image!r} matches {[p.name for p in found]}; name the file with "
                                 "its extension")
            stem = found[0].stem
            if stem in seen:
                raise InputError(f"{where}: image id {stem!r} already on line {seen[stem]}; outputs are named "
                                 "by id, so each image may appear once (rename one file)")
            seen[stem], files[r.line] = r.line, found[0]
        return files

    def label(self, i):
        if not self.has_labels:
            raise InputError(f"{self.tags_file}: this needs ground-truth masks; pass --masks with a folder of "
                             "label PNGs named like the images")
        source = f"{self.tags_file} (background + its sorted tags)"
        return checked_label(self.items[i].label, self.sizes[i], self.classes, source)

    def image_classes(self, i):
        """Foreground classes the tags name (1-based class values, increasing)."""
        return self._present[i]


class ImageFiles(ImageList):
    """Image files to predict on: files named directly, and the images (jpg, jpeg, png) of folders named."""

    def __init__(self, inputs):
        paths = []
        for name in map(Path, inputs):
            if name.is_dir():
                found = sorted(p for p in name.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                if not found:
                    raise InputError(f"{name}: no .jpg, .jpeg or .png images in this folder; name another")
                paths += found
            elif not name.is_file():
                raise InputError(f"{name}: not found; name image files or folders of images")
            else:
                paths.append(name)
        first = {}
        for p in paths:
            if first.setdefault(p.stem, p) != p:
                raise InputError(f"{p}: same name as {first[p.stem]}; outputs are named by it, so rename one")
        listed = [Item(p.stem, p, None) for p in paths]
        self.items, self.sizes, self.skipped = readable_items(listed, "the images named")


class MaskFolder(ImageList):
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
                      for p in sorted(images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        if len(self.items) <= holdout:
            raise InputError(f"{images}: {len(self.items)} images, not enough to hold out {holdout}")
        cut = len(self.items) - holdout
        self.items = self.items[:cut] if part == "train" else self.items[cut:]

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
