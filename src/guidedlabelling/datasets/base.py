"""What every dataset layout shares: items, image and label checks, and the Labelled base class whose contract
datasets/__init__.py describes."""
import glob
import os
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

import numpy as np
import PIL
from PIL import Image, UnidentifiedImageError

from ..errors import counted, raise_all
from ..io import EXIF_ORIENTATION, IGNORE, InputError, label_values, load_image
from . import image_checks

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MAX_CLASSES = IGNORE  # label PNGs hold 8-bit class indices 0..254; 255 is void
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx")   # an ISO file's ftyp brand of HEIC photos


def check_class_count(classes, source, fix):
    if len(classes) > MAX_CLASSES:
        raise InputError(f"{source}: {len(classes)} classes (background included); label PNGs hold at most "
                         f"{MAX_CLASSES} (values 0..{MAX_CLASSES - 1}, {IGNORE} = void); {fix}")


@dataclass(frozen=True)
class Item:
    id: str
    image: Path
    label: Path | None


def image_check(path):
    """(height, width) as load_image returns it (EXIF orientation applied, once), or the reason it does not decode.

    JPEGs decode at 1/8 scale: every byte of the file is still read, so truncation shows, at half the cost.
    """
    try:
        with Image.open(path) as img:
            w, h = img.size
            if img.mode == "F":  # converted to 8 bits, values of 0..1 would read as black
                return "floating-point pixels (mode F); save it as an 8-bit JPEG or PNG"
            img.draft(None, (1, 1))
            img.load()
            if img.mode == "P" and isinstance(img.info.get("transparency"), bytes):
                img.convert("RGB")   # Pillow warns of such a palette only as load_image converts it
            turned = img.getexif().get(EXIF_ORIENTATION) in TRANSPOSING_ORIENTATIONS   # after load: Pillow's TIFF
            # reader opens at the displayed size and drops the tag as it loads, turned already
    except UnidentifiedImageError as e:
        return unidentified(path, e)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        said = str(e) or type(e).__name__
        return f"{said}; copy it again from its source, or remove it" if "truncated" in said.lower() else said
    return (w, h) if turned else (h, w)


def unidentified(path, e):
    """Why Pillow identifies no image in a file, with the fix: by its bytes where they say more than its name (an
    empty file; an iPhone's HEIC photo renamed .jpg, which was told to be saved as JPEG), else by its extension."""
    kind = Path(path).suffix.lower()
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:   # gone or locked since Pillow read it: its name alone
        head = None
    if head == b"":
        return "an empty file (0 bytes); copy it again from its source, or remove it"
    heif = head is not None and head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS
    if heif and kind not in (".heic", ".heif"):
        return f"an HEIC photo (an iPhone's) named {Path(path).suffix or 'without extension'}; Pillow reads no HEIC " \
            "files: save it as JPEG or PNG"
    if kind in Image.registered_extensions():
        return f"{e}; re-create it, or save it as JPEG or PNG"
    photo = " (an iPhone's photos)" if kind in (".heic", ".heif") else ""
    return f"{e}; Pillow reads no {kind or 'extensionless'} files{photo}: save it as JPEG or PNG"


def missing_image(it, listed_in):
    """The problem of an item whose image file is not there, or None."""
    if not it.image.is_file():
        return f"{it.image}: image of id {it.id} not found; add it or remove the id from {listed_in}"
    return None


def pillow_warnings(path):
    """(image_check(path), Pillow's warnings as it decodes the file, joined; '' if none)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        checked = image_check(path)
    pillow = Path(PIL.__file__).parent   # not the warnings of other code that ran meanwhile
    said = [str(w.message) for w in caught if issubclass(w.category, UserWarning) and
            Path(w.filename).is_relative_to(pillow)]
    return checked, "; ".join(dict.fromkeys(said))


def lasting(result):
    """Whether an outcome of pillow_warnings is one of the file's bytes, which image_checks may keep while the file
    stays the same: a (height, width) or why it does not decode, and Pillow's warnings; not a failure of the system
    to read it (an OSError with an errno: permission denied, an I/O error, too many open files), which another user
    or a later run may not meet. Also refuses a kept outcome of another form (a damaged or foreign file)."""
    checked, said = result if isinstance(result, tuple) and len(result) == 2 else (None, None)
    size = isinstance(checked, tuple) and len(checked) == 2 and all(type(v) is int and v > 0 for v in checked)
    why = isinstance(checked, str) and not checked.startswith("[Errno ")
    return isinstance(said, str) and (size or why)


def readable_items(items, listed_in):
    """Items whose image decodes, their image sizes, {image path: problem} of those that do not (with Pillow's
    warnings on them, which may say why), and {image path: Pillow's warnings} of those that decode with warnings
    (a corrupt EXIF block, say), which io.load_image silences where the images are read for work."""
    raise_all([problem for it in items if (problem := missing_image(it, listed_in))], listed_in)
    kept, sizes, skipped, warned = [], [], {}, {}
    checks = image_checks.checked([it.image for it in items], pillow_warnings, lasting,
                                  f"checking the images of {listed_in}")
    for it, (checked, said) in zip(items, checks):
        if isinstance(checked, str):
            skipped[str(it.image)] = checked + (f" (Pillow: {said})" if said else "")
            continue
        if said:
            warned[str(it.image)] = said
        kept.append(it)
        sizes.append(checked)
    if not kept:
        path, problem = next(iter(skipped.items()))
        which = "its one image cannot" if len(items) == 1 else f"none of its {len(items)} images can"
        raise InputError(f"{listed_in}: {which} be read ({path}: {problem}); replace "
                         f"{'it' if len(items) == 1 else 'them'}")
    return kept, sizes, skipped, warned


def warned_line(n):
    """What a run says of the images that readable_items found to decode with Pillow's warnings."""
    return f"{counted(n, 'image')} decoded with warnings from Pillow and used as decoded (re-save a file to silence it)"


def value_counts(label):
    """How many pixels of a uint8 map hold each value 0..255: Pillow's histogram, several times faster than
    np.bincount, which counts in int64 (a 12-megapixel mask: 96 MB)."""
    return np.array(Image.fromarray(label, "L").histogram(), np.int64)


def label_classes(label):
    """The values a uint8 label map holds, increasing (value_counts: 4 ms for a 12-megapixel map, np.unique 26 ms)."""
    return np.flatnonzero(value_counts(label)).tolist()


def checked_label(path, hw, classes, class_source):
    """A label PNG whose size is the image's and whose values, read exactly at any bit depth, are classes
    or 255 (void)."""
    label = label_values(path)
    if label.shape != tuple(hw):
        raise InputError(f"{path}: label is {label.shape[1]}x{label.shape[0]} (WxH), its image "
                         f"{hw[1]}x{hw[0]}; fix the PNG (EXIF-rotated images count as displayed)")
    if label.dtype == np.uint8:   # an 8-bit PNG: its values counted, not compared pixel by pixel (12 megapixels)
        held = np.array(label_classes(label))
        bad = held[(held >= len(classes)) & (held != IGNORE)]
    else:
        valid = ((label >= 0) & (label < len(classes))) | (label == IGNORE)  # sorting only the bad values: faster
        bad = np.unique(label[~valid]) if not valid.all() else []
    if len(bad):
        raise InputError(f"{path}: label values {bad[:10].tolist()} outside the {len(classes)} classes of "
                         f"{class_source}; fix the PNG or the class list (255 = void)")
    return label.astype(np.uint8)


def other_suffix(path):
    """The name of a file beside a missing `path` with its stem and another suffix (a mask or map saved as JPEG, most
    often), or None."""
    return next((q.name for q in sorted(path.parent.glob(f"{glob.escape(path.stem)}.*")) if q.suffix != path.suffix),
                None)


def missing_hint(name, folder):
    """The start of the fix for a row's image `name` that is no image file of `folder`: what stands there instead
    (a folder, a broken link), or the file it likely means ('a1.JPG is there, and names are case-sensitive: write
    it so, or '; another extension); '' otherwise."""
    return standing_there(name, folder) or likely_meant(folder / name)


def standing_there(name, folder):
    """missing_hint's start where the name is written otherwise (a Windows path; a path where the file lies in
    `folder` itself) or names a folder, a broken link or a named pipe; '' otherwise."""
    forward = name.replace("\\", "/")   # a path written on Windows
    if forward != name and any((folder / f"{forward}{ext}").is_file() for ext in ("",) + IMAGE_SUFFIXES):
        return f"{forward} is there: write / between folders, or "
    path = folder / name
    if path.is_dir():
        return f"{name} is a folder there, not an image: name a file, or "
    if path.is_symlink() and not path.exists():
        return f"{name} is a link to {os.readlink(path)}, which does not exist: mend it, or "
    if path.exists():   # not a file, not a folder (a link to one too)
        return f"{name} is a named pipe, a socket or a device there, not a file: put the image in its place, or "
    if path.parent != folder and any((folder / f"{path.name}{ext}").is_file() for ext in ("",) + IMAGE_SUFFIXES):
        return f"{path.name} is there: names are relative to {folder}, so write it so, or "
    return ""


def likely_meant(path):
    """missing_hint's start naming the file beside `path` that it likely means: the same name with an extension
    Pillow reads or not, in another case, or with another image extension; '' where there is none."""
    base, stem = path.name.casefold(), path.stem.casefold()
    files = sorted(p for p in path.parent.iterdir() if p.is_file()) if path.parent.is_dir() else []
    same = next((p for p in files if p.stem == path.name), None)
    if same:   # IMG_1 is IMG_1.tif or IMG_1.HEIC, which a name without extension does not find
        fix = f"write {same.name} (Pillow reads it), or " if same.suffix.lower() in Image.registered_extensions() \
            else "save it as JPEG or PNG, or "
        return f"{same.name} is there, but a name without extension finds only .jpg, .jpeg and .png files: {fix}"
    match = next((p.name for p in files if base in (p.name.casefold(), p.stem.casefold())), None)
    if match:
        return f"{match} is there, and names are case-sensitive: write it so, or "
    other = next((p.name for p in files if p.stem.casefold() == stem and p.suffix.lower() in IMAGE_SUFFIXES), None)
    return f"{other} is there, with another extension: write it so, or " if other else ""


def inside(path, real_folder):
    """Whether `path`, symlinks resolved, lies in `real_folder` (resolved already: once for all the files of a
    folder, not once per file)."""
    return path.resolve().is_relative_to(real_folder)


def work_size(hw, max_side):
    """The (height, width) an image of size hw is worked on at: shrunk so that its longer side is max_side (the
    other rounded), or hw itself when its longer side is within max_side or max_side is 0."""
    h, w = hw
    if not max_side or max(h, w) <= max_side:
        return h, w
    scale = max_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def present_classes(label):
    """Foreground classes of a label map (1-based class values, increasing)."""
    return [int(v) for v in np.unique(label) if 0 < v < IGNORE]


class ImageList:
    """`items` and their images, at their work size: an image whose longer side exceeds max_side (open_dataset sets
    data.max_image_side, predict its --max_side) is shrunk to it, and so are its label map and every output made
    from it."""

    max_side = 0
    skipped = warned = MappingProxyType({})   # a layout that lists its items itself has none

    def keep_readable(self, listed, listed_in):
        """Sets `items` and `sizes` to those of the `listed` items whose image decodes, `skipped` and `warned`
        (readable_items)."""
        self.items, self.sizes, self.skipped, self.warned = readable_items(listed, listed_in)

    def work_at(self, max_side):
        self.max_side = max_side
        return self

    def hw(self, i):
        """(height, width) that image(i), label(i) and the outputs of item i have; `sizes` keeps the files' own."""
        return work_size(self.sizes[i], self.max_side)

    def at_work_size(self, i, plane, resample=Image.BILINEAR):
        """A map of item i of the image file's size (its label map, saliency maps and guide labels of yours: labels
        with resample NEAREST) at its work size; a map of any other size is returned as it is (the caller checks
        its size)."""
        h, w = self.hw(i)
        if plane.shape != tuple(self.sizes[i]) or plane.shape == (h, w):
            return plane
        return np.array(Image.fromarray(plane).resize((w, h), resample))

    @property
    def shrunk(self):
        """The image files worked on smaller than they are."""
        return [it.image for i, (it, hw) in enumerate(zip(self.items, self.sizes)) if self.hw(i) != tuple(hw)]

    @property
    def ids(self):
        return [it.id for it in self.items]

    def __len__(self):
        return len(self.items)

    def image(self, i, max_side=0):
        """Image i at its work size, or shrunk further to a longer side of max_side where that is smaller."""
        return load_image(self.items[i].image, work_size(self.hw(i), max_side))


class Labelled(ImageList):
    """A dataset of classes, one split of one layout: the contract of datasets/__init__.py."""

    has_labels = True        # label maps to evaluate against (label(i))
    ground_truth_hint = "use a layout with label maps"  # how to give them, for messages when has_labels is False
    tags_in_labels = False   # the image-level tags are read from the label maps (VOC), which are then inputs
    tags_file = None         # a file of tags apart from the images (own data's CSV), hashed by the rows it holds
    settings = None          # the data settings naming its files (None: it may read every data setting)
    described = ""           # what a message calls such data, with the flags that name it
    refused = ()             # settings of other layouts that open() refuses when given (no note that they are unread)

    @classmethod
    def open(cls, d, split, follow_symlinks=False):
        """One split of the dataset that the data settings `d` name."""
        raise NotImplementedError

    @classmethod
    def has_ground_truth(cls, d):
        """Whether the data these settings name has label maps (known before opening it)."""
        return cls.has_labels

    @classmethod
    def annotated_splits(cls, d):
        """The splits (of train, val) that hold an image with a label map, known before opening them."""
        return {"train", "val"} if cls.has_ground_truth(d) else set()

    @cached_property
    def annotated(self):
        """How many images have a label map."""
        return sum(map(self.annotated_at, range(len(self))))

    def notes(self):
        """Lines a run prints before its steps on what in the data may be a slip (own data's)."""
        return []

    def label(self, i):
        """The label map of item i ([H, W] uint8, 255 = void) at its work size (nearest neighbour)."""
        return self.at_work_size(i, self.full_label(i), Image.NEAREST)

    def annotated_at(self, i):
        """Whether item i has a label map (own data may leave some images without a mask)."""
        return self.has_labels

    def full_label(self, i):
        """The label map of item i at the file's size; a layout without label maps keeps this."""
        raise InputError(self.needs_labels(f"the label map of {self.items[i].id}"))

    def needs_labels(self, what):
        """The problem to report when `what` needs label maps that this dataset lacks."""
        return f"{self.root}: {what} needs ground-truth label maps, which this dataset does not have"

    @property
    def num_classes(self):
        return len(self.classes)

    def balancing_classes(self):
        """Every image's classes for class-balanced batches (seed_train balbatch clsbal): its image classes,
        unless the layout names others."""
        return [self.image_classes(i) for i in range(len(self))]

    def classification_labels(self):
        """[{id: 1, -1 or 0 (difficult)}] per foreground class, where the layout keeps image-level labels apart from
        the label maps (the classifier's AP reads them), else None."""
        return None

    def class_vector(self, i):
        vec = np.zeros(self.num_classes - 1, np.float32)
        vec[np.array(self.image_classes(i), int) - 1] = 1
        return vec


