"""Datasets: PASCAL VOC layout, your own images with tags, saliency mask folders, image files to predict on.

A VOC root holds JPEGImages/, SegmentationClass/ or SegmentationClassAug/ (index
PNGs, 255 = void), ImageSets/<datatype>/<split>.txt and optionally classes.txt
(background first; VOC's 20 classes when absent). Image-level labels are the
values of the label PNG other than 0 and 255, as in the release.

Own data (OwnDataset) is a folder of images plus a CSV of image-level tags.

Every dataset checks its files when opened, before a stage writes anything: a
missing image or label, a label value outside the class list or a label of
another size is an error naming the file; an image that does not decode
(truncated, not an image) is left out and listed in `skipped`. For the fingerprint
that decides reuse, `sources` lists the files that determine a dataset's images and
classes, `labels` its label PNGs or masks (a VOC folder's tags come from them; own
data's masks are read to score outputs only).
"""
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .io import IGNORE, InputError, label_values, load_gray_png, load_image
from .tags import hash_split, read_tags

VOC_CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MAX_CLASSES = IGNORE  # label PNGs hold 8-bit class indices 0..254; 255 is void
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


def open_dataset(d, split, follow_symlinks=False):
    """The dataset the data settings name: own images + tags, or a split of a VOC-layout folder."""
    if is_own_data(d):
        if not (d["images"] and d["tags"]):
            raise InputError("--images and --tags go together: a folder of images and a CSV `image,tags` "
                             "naming their classes")
        return OwnDataset(d["images"], d["tags"], d["masks"], split, d["val_percent"], follow_symlinks)
    return VOCDataset(dataset_root(d["pascalroot"], d["dataset_dir"]), split_name(split), d["datatype"])


def check_class_count(classes, source, fix):
    if len(classes) > MAX_CLASSES:
        raise InputError(f"{source}: {len(classes)} classes (background included); label PNGs hold at most "
                         f"{MAX_CLASSES} (values 0..{MAX_CLASSES - 1}, {IGNORE} = void); {fix}")


def read_classes(root):
    path = Path(root) / "classes.txt"
    if not path.exists():
        return list(VOC_CLASSES)
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(names) < 2:
        raise InputError(f"{path}: needs background plus at least one class, one name per line")
    check_class_count(names, path, "merge classes")
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
    """A label PNG whose size is the image's and whose values, read exactly at any bit depth, are classes
    or 255 (void)."""
    label = label_values(path)
    if label.shape != tuple(hw):
        raise InputError(f"{path}: label is {label.shape[1]}x{label.shape[0]} (WxH), its image "
                         f"{hw[1]}x{hw[0]}; fix the PNG (EXIF-rotated images count as displayed)")
    bad = np.setdiff1d(np.unique(label), np.r_[np.arange(len(classes)), IGNORE])
    if bad.size:
        raise InputError(f"{path}: label values {bad[:10].tolist()} outside the {len(classes)} classes of "
                         f"{class_source}; fix the PNG or the class list (255 = void)")
    return label.astype(np.uint8)


def case_hint(name, folder):
    """'a1.JPG is there, and names are case-sensitive: write it so, or ' when a file of `folder` matches `name` but
    for case; '' otherwise."""
    match = next((p.name for p in sorted(folder.iterdir()) if p.name.casefold() == name.casefold()
                  or p.stem.casefold() == name.casefold()), None)
    return f"{match} is there, and names are case-sensitive: write it so, or " if match else ""


def inside(path, folder):
    """Whether `path`, symlinks resolved, lies in `folder`."""
    return path.resolve().is_relative_to(folder.resolve())


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
    tags_in_labels = True

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
        self.sources = [self._list_path(datatype), self.root / "classes.txt"] + [it.image for it in listed] + \
            self._class_lists(listed)
        self.labels = [it.label for it in listed]

    def _class_lists(self, listed):
        """Where the folder has them, VOC's Annotations/<id>.xml (class-balanced batches read them) and its
        ImageSets/Main/<class>_<split>.txt lists (the classifier's AP)."""
        notes = self.root / "Annotations"
        return ([notes / f"{it.id}.xml" for it in listed] if notes.is_dir() else []) + \
            [self.root / "ImageSets" / "Main" / f"{name}_{self.split}.txt" for name in self.classes[1:]]

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
        for number, line in enumerate(path.read_text().splitlines(), 1):
            parts = line.split()
            if len(parts) == 2:  # "/JPEGImages/x.jpg /SegmentationClassAug/x.png"
                if any(".." in Path(p).parts for p in parts):
                    raise InputError(f"{path}, line {number}: {line.strip()!r} leads out of {self.root}; name files "
                                     "inside the dataset folder")
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


class OwnDataset(Labelled):
    """Your own images with image-level tags: a folder of images and a CSV `image,tags[,split]`.

    `image` is a file name in the folder (with or without its extension); the id is its stem. Classes:
    background, then the sorted tag names of the whole CSV. A row belongs to the split its `split`
    column names, else to val when hash_split says so (val_percent of the ids), else to train. The
    VOC presets' training split name train_aug means train. Masks (optional, for evaluation) are label
    PNGs <masks>/<id>.png with the class indices above and 255 for void.
    """

    tags_in_labels = False

    def __init__(self, images, tags, masks=None, split="train", val_percent=20, follow_symlinks=False):
        self.root, self.tags_file, self.follow_symlinks = Path(images), Path(tags), follow_symlinks
        self.split = "train" if split_name(split) == "train_aug" else split_name(split)
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
        check_class_count(self.classes, self.tags_file, "merge tags")
        listed, tag_classes = self._split_items(rows, masks, val_percent)
        self.sources = [self.tags_file] + [it.image for it in listed]
        self.labels = [it.label for it in listed if it.label is not None]
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
            where = f"{self.tags_file}, line {r.line}"
            exact = Path(os.path.normpath(self.root / r.image))  # sub/../a.jpg is a.jpg; links are judged below
            if Path(r.image).is_absolute() or \
                    not Path(os.path.abspath(exact)).is_relative_to(os.path.abspath(self.root)):
                raise InputError(f"{where}: image {r.image!r} is outside {self.root}; name a file of that folder")
            found = [exact] if exact.is_file() else by_stem.get(r.image, [])
            if not found:
                raise InputError(f"{where}: image {r.image!r} is not in {self.root}; "
                                 + case_hint(r.image, self.root) + "add it or remove the row")
            if not (self.follow_symlinks or inside(found[0], self.root)):
                raise InputError(f"{where}: image {r.image!r} links to {found[0].resolve()}, outside {self.root}; "
                                 "copy the file in, or pass --set follow_symlinks=true to read it there")
            if len(found) > 1:
                raise InputError(f"{where}: {r.image!r} matches {[p.name for p in found]}; name the file with "
                                 "its extension")
            stem = found[0].stem
            if stem in seen and files[seen[stem]].resolve() == found[0].resolve():
                raise InputError(f"{where}: image {r.image!r} is listed again (line {seen[stem]}); remove one row")
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


def names(text):
    """The entries of a comma-separated setting (folders, scenes), blanks dropped."""
    return [x.strip() for x in str(text or "").split(",") if x.strip()]


def scene_of(image_id):
    """The scene of a saliency image: its id up to the last '_' (DAVIS: <sequence>_<frame>), else the id."""
    return image_id.rsplit("_", 1)[0] if "_" in image_id else image_id


class MaskFolder(ImageList):
    """Class-agnostic saliency sets, each a folder of images/<id>.jpg|png and masks/<id>.png (0 / 255); `roots`
    names one or several (comma-separated).

    Held out ('holdout' part; the rest is 'train'): the images of the scenes named in `holdout_scenes`
    (scene_of; frames of one video are alike, so a video is held out whole), and, in each folder that has
    none of those scenes, its last `holdout` images (sorted by name).
    """

    def __init__(self, roots, holdout=0, part="train", holdout_scenes=""):
        self.roots = [Path(r) for r in names(roots)]
        scenes, found, listed = set(names(holdout_scenes)), set(), []
        if not self.roots:
            raise InputError("saliency_data is empty; name a folder of images/ and masks/ (--set saliency_data=DIR)")
        for root in self.roots:
            images = root / "images"
            if not images.is_dir():
                raise InputError(f"{images}: saliency training images not found; expected images/ and masks/ "
                                 "folders (set --saliency_data)")
            folder = [Item(p.stem, p, root / "masks" / f"{p.stem}.png")
                      for p in sorted(images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
            held = [scene_of(it.id) in scenes for it in folder]
            found |= {scene_of(it.id) for it, h in zip(folder, held) if h}
            if not any(held):
                if len(folder) <= holdout:
                    raise InputError(f"{images}: {len(folder)} images, not enough to hold out {holdout}")
                held = [k >= len(folder) - holdout for k in range(len(folder))]
            listed += [it for it, h in zip(folder, held) if h == (part == "holdout")]
        if scenes - found:
            raise InputError(f"holdout_scenes: no image of {', '.join(sorted(scenes - found))} in {roots} (a scene "
                             "is the image ids' part before their last '_'); name scenes that are there")
        if not listed:
            raise InputError(f"{roots}: no {part} images with holdout {holdout} and holdout_scenes "
                             f"{holdout_scenes!r}; hold out fewer")
        first = {}
        for it in listed:
            if first.setdefault(it.id, it.image) != it.image:
                raise InputError(f"{it.image}: same name as {first[it.id]}; held-out maps are named by it, so "
                                 "rename one")
            if not it.label.is_file():
                raise InputError(f"{it.label}: mask of {it.image.name} not found; add it or remove the image")
        self.sources = [p for it in listed for p in (it.image, it.label)]
        self.items, self.sizes, self.skipped = readable_items(listed, roots)
        for i in range(len(self.items)):
            self.label(i)  # checks every mask now, before a stage writes anything

    def scenes(self):
        return sorted({scene_of(it.id) for it in self.items})

    def label(self, i):
        """The foreground (grey value above 127 of 255; 16-bit masks scaled) of a mask of the image's size."""
        path, hw = self.items[i].label, self.sizes[i]
        mask = load_gray_png(path)
        if mask.shape != tuple(hw):
            raise InputError(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH), its image {hw[1]}x{hw[0]}; "
                             "fix the PNG")
        return (mask > 127).astype(np.uint8)
