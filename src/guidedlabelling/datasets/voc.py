"""PASCAL VOC layout: JPEGImages/, SegmentationClass/ or SegmentationClassAug/ (index PNGs, 255 = void),
ImageSets/<datatype>/<split>.txt and optionally classes.txt (background first; VOC's 20 classes when absent).
Image-level labels are the values of the label PNG other than 0 and 255, as in the release."""
from pathlib import Path
from xml.etree import ElementTree

from ..errors import counted, raise_all, some
from ..io import InputError, text_lines
from .base import IMAGE_SUFFIXES, Item, Labelled, check_class_count, checked_label, missing_image, present_classes

VOC_CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor"]


def split_name(dataset):
    """'voc12train_aug' -> 'train_aug'; other names are split names already."""
    return dataset[len("voc12"):] if dataset.startswith("voc12") else dataset


def dataset_root(pascalroot=None, dataset_dir=None):
    """--dataset_dir names a VOC-layout folder; --pascalroot keeps the release's meaning (holds VOC2012/)."""
    root = Path(dataset_dir) if dataset_dir else Path(pascalroot) / "VOC2012"
    if not dataset_dir and not root.is_dir() and (Path(pascalroot) / "JPEGImages").is_dir():
        up = Path(pascalroot).parent
        parent = f"--pascalroot {up} (./script.py: --set pascalroot={up}) or " if Path(pascalroot).name == "VOC2012" \
            else ""
        raise InputError(f"{root}: dataset folder not found; --pascalroot names the folder that holds VOC2012/, and "
                         f"{pascalroot} is a VOC-layout folder itself: pass {parent}--dataset_dir {pascalroot}")
    below = sorted(Path(pascalroot).glob("*/VOC2012/JPEGImages")) if not dataset_dir and not root.is_dir() else []
    if below:   # --pascalroot data for data/VOCdevkit, or VOCdevkit/VOCdevkit/VOC2012 from a tar unpacked into it
        raise InputError(f"{root}: dataset folder not found; {below[0].parent} is there: pass --pascalroot "
                         f"{below[0].parent.parent} (./script.py: --set pascalroot={below[0].parent.parent}), the "
                         "folder that holds VOC2012/")
    if not root.is_dir():
        name = ("--dataset_dir naming a VOC-layout folder" if dataset_dir else
                "--pascalroot (./script.py: --set pascalroot=DIR) naming the folder that holds VOC2012/")
        raise InputError(f"{root}: dataset folder not found; pass {name}, or fetch VOC 2012 and SBD's train_aug with "
                         "./downloads.sh --voc --sbd (into data/VOCdevkit, the default --pascalroot; "
                         "DATA=DIR ./downloads.sh --voc --sbd: into DIR/VOCdevkit)")
    return root


def read_classes(root):
    path = Path(root) / "classes.txt"
    if not path.exists():
        return list(VOC_CLASSES)
    names = [line.strip() for line in text_lines(path, "re-encode it as UTF-8")]
    while names and not names[-1]:   # blank lines at the end name nothing
        names.pop()
    if len(names) < 2:
        raise InputError(f"{path}: needs background plus at least one class, one name per line")
    check_class_count(names, path, "merge classes")
    check_class_names(names, path)
    return names


def check_class_names(names, path):
    """The line of a name is its label value (line 1 = 0 = background): a blank line before the last name (it was
    dropped, so every later class took the label value of the one before it), a name on two lines (the tables,
    keyed by name, merged them) and background on a line other than the first (class 0 was taught as background
    whatever its name) are errors naming the line."""
    first = {}
    for n, name in enumerate(names, 1):
        if not name:
            raise InputError(f"{path}, line {n}: blank, while each line names the class of label value line - 1; "
                             f"name the class of value {n - 1} there, or remove the line if the labels number the "
                             "classes without it")
        if name.casefold() == "background" and n > 1:
            raise InputError(f"{path}, line {n}: {name!r} on line {n}, while label value 0, the first line's class "
                             f"({names[0]!r}), is background; put background on line 1 (each line names the class of "
                             "label value line - 1)")
        if first.setdefault(name.casefold(), n) != n:
            raise InputError(f"{path}, line {n}: class {name!r} already on line {first[name.casefold()]}; give each "
                             "class one name (merge their label values into one class, or rename one)")


class VOCDataset(Labelled):
    """Ids, files and image-level labels (from the label PNGs) of one split of a VOC-layout folder."""

    tags_in_labels = True
    settings = ("dataset_dir", "pascalroot", "datatype")   # (the built-in data's settings also choose its saliency set)
    described = "VOC-layout data (--dataset_dir, --pascalroot, or the built-in data)"
    refused = ("masks",)   # --masks without --images and --tags is a slip

    @classmethod
    def open(cls, d, split, follow_symlinks=False):
        if d.get("masks"):  # else ignored: a run on the built-in data in folders named for the masks
            raise InputError(f"--masks {d['masks']} goes with --images and --tags (your own data); a VOC-layout "
                             "folder's masks are its SegmentationClass/")
        data = cls(dataset_root(d["pascalroot"], d["dataset_dir"]), split_name(split), d["datatype"])
        data.trains = split == d.get("dataset")
        return data

    def __init__(self, root, split, datatype="Segmentation"):
        self.root = Path(root)
        self.split, self.datatype = split, datatype
        self.trains = False   # the run's training split (open() sets it): notes() speaks of it
        self.classes = read_classes(self.root)
        listed = self._read_list(datatype)
        listing = self._list_path(datatype)
        images = self.root / "JPEGImages"
        if not images.is_dir() and any(it.image.parent == images for it in listed):
            raise InputError(f"{images}: folder not found, and {listing} names images in it; a VOC-layout folder "
                             "keeps its images there (./downloads.sh --voc unpacks VOC 2012 so)")
        raise_all([problem for problem in self._missing_files(listed, listing) if problem], listing)
        self.keep_readable(listed, listing)
        self._present = [present_classes(self.full_label(i)) for i in range(len(self.items))]
        self.sources = [listing, self.root / "classes.txt"] + [it.image for it in listed] + \
            self._class_lists(listed)
        self.labels = [it.label for it in listed]

    def notes(self):
        """Of the training split: the classes that no label PNG of it holds. Nothing learns them, so their IoU is 0
        wherever val shows them, which the run's warnings put down to small objects or few images."""
        taught = {c for present in self._present for c in present}
        absent = [name for c, name in enumerate(self.classes[1:], 1) if c not in taught] if self.trains else []
        if not absent:
            return []
        is_, it, its = ("is", "it", "its") if len(absent) == 1 else ("are", "them", "their")
        source = self.root / "classes.txt" if (self.root / "classes.txt").exists() else "PASCAL VOC's classes"
        return [f"note: {some(absent, 5)} ({len(absent)} of the {len(self.classes)} classes of {source}) {is_} in "
                f"no label PNG of {self.split} ({self._list_path(self.datatype)}, {counted(len(self), 'image')}), so "
                f"nothing learns {it}: {its} IoU is 0 wherever the test images show {it}, lowering the mIoU; list "
                f"training images that show {it}"]

    def _class_lists(self, listed):
        """Where the folder has them, VOC's Annotations/<id>.xml (class-balanced batches read them) and its
        ImageSets/Main/<class>_<split>.txt lists (the classifier's AP)."""
        notes = self.root / "Annotations"
        return ([notes / f"{it.id}.xml" for it in listed] if notes.is_dir() else []) + \
            [self.root / "ImageSets" / "Main" / f"{name}_{self.split}.txt" for name in self.classes[1:]]

    def _label_dir(self):
        aug = self.root / "SegmentationClassAug"
        return aug if self.split.endswith("_aug") and aug.is_dir() else self.root / "SegmentationClass"

    def _missing_files(self, listed, listing):
        """The problem of every missing image and label of the list, in its order (None where a file is there)."""
        fix = (f"{self.split}'s labels are SBD's, in {self.root / 'SegmentationClassAug'}, which does not exist: "
               "./downloads.sh --sbd makes it") if self._sbd_missing() else f"add it or remove the id from {listing}"
        names = {}   # folder -> {file stem, casefolded: file names}, listed once a file of the folder is missing
        for it in listed:
            image = missing_image(it, listing)
            if image:
                hint = self._stand_in(it, it.image, names, listing)
                image = f"{it.image}: image of id {it.id} not found; {hint}" if hint else image
            yield image
            if not it.label.is_file():
                hint = self._stand_in(it, it.label, names, listing)
                yield f"{it.label}: label of id {it.id} not found; {hint or fix}"

    def _stand_in(self, it, path, names, listing):
        """The fix for a missing file of item `it` where something else stands in its place: the id written with an
        extension, a file of another case or extension (a.JPG), SBD's .mat label; else ''."""
        if Path(it.id).suffix.lower() in IMAGE_SUFFIXES + (".mat",):
            return f"the list names ids without extension: write {Path(it.id).stem} in {listing}"
        folder = path.parent
        if folder not in names:
            names[folder] = {}
            for p in (folder.iterdir() if folder.is_dir() else []):
                names[folder].setdefault(p.stem.casefold(), []).append(p.name)
        there = sorted(n for n in names[folder].get(path.stem.casefold(), []) if n != path.name)
        mat = next((n for n in there if n.lower().endswith(".mat")), None)
        if mat and path.suffix == ".png":
            return (f"{mat} is there, an SBD label: python -m guidedlabelling.datasets.sbd SBD_DATASET {self.root} "
                    "converts SBD's labels to PNGs (./downloads.sh --sbd runs it)")
        if there:
            case = " (names are case-sensitive)" if there[0].casefold() == path.name.casefold() else ""
            return f"{there[0]} is there{case}: rename it {path.name}, or remove the id from {listing}"
        return ""

    def _sbd_missing(self):
        return self.split.endswith("_aug") and not (self.root / "SegmentationClassAug").is_dir()

    def _list_path(self, datatype):
        return self.root / "ImageSets" / datatype / f"{self.split}.txt"

    def _no_list(self, path, datatype):
        """The error of a split whose image list `path` is not there, with where the list may be or how to make it."""
        sbd = self.split == "train_aug"   # SBD's arranger writes SegmentationClassAug/, then this list last
        make = "make it with ./downloads.sh --sbd" if sbd or self._sbd_missing() else "create it (one id per line)"
        sets = self.root / "ImageSets"
        other = next((d.name for d in sorted(sets.iterdir()) if d.name != datatype and (d / path.name).is_file()),
                     None) if sets.is_dir() else None
        if other and not sbd:
            return f"{path}: image list not found, while ImageSets/{other}/{path.name} is there; --set " \
                f"datatype={other} reads the lists of ImageSets/{other}"
        lists = sorted(f.stem for f in path.parent.glob("*.txt")) if path.parent.is_dir() else []
        there = f" ({path.parent} holds {', '.join(lists)})" if lists else ""
        return f"{path}: image list not found; {make} or choose another split with --dataset/--test_dataset{there}"

    def _read_list(self, datatype):
        path = self._list_path(datatype)
        if not path.exists():
            raise InputError(self._no_list(path, datatype))
        label_dir = self._label_dir()
        items, seen = [], {}
        for number, line in enumerate(text_lines(path, "re-encode it as UTF-8"), 1):
            parts = line.split()
            if len(parts) > 2:
                raise InputError(f"{path}, line {number}: {line.strip()!r} is neither '<id>' nor '<image> <label>'; "
                                 "fix the line")
            if len(parts) == 2:  # "/JPEGImages/x.jpg /SegmentationClassAug/x.png"
                if any(".." in Path(p).parts for p in parts):
                    raise InputError(f"{path}, line {number}: {line.strip()!r} leads out of {self.root}; name files "
                                     "inside the dataset folder")
                items.append(Item(Path(parts[0]).stem, self.root / parts[0].lstrip("/"),
                                  self.root / parts[1].lstrip("/")))
            elif len(parts) == 1:
                items.append(Item(parts[0], self.root / "JPEGImages" / f"{parts[0]}.jpg",
                                  label_dir / f"{parts[0]}.png"))
            if parts and seen.setdefault(items[-1].id, number) != number:
                raise InputError(f"{path}, line {number}: image id {items[-1].id!r} already on line "
                                 f"{seen[items[-1].id]}; outputs are named by id, so each image may appear once "
                                 "(remove one line)")
        if not items:
            raise InputError(f"{path}: image list is empty")
        return items

    def balancing_classes(self):
        """As the release: the object names of Annotations/<id>.xml (difficult objects included) where the folder
        has them, else the image classes."""
        folder = self.root / "Annotations"
        if not folder.is_dir():
            return super().balancing_classes()
        return [xml_classes(folder / f"{it.id}.xml", self.classes) for it in self.items]

    def classification_labels(self):
        """ImageSets/Main/<class>_<split>.txt, as the release's eval_cls reads them, where the folder has them; every
        id of the split must be in every list."""
        paths = [self.root / "ImageSets" / "Main" / f"{name}_{self.split}.txt" for name in self.classes[1:]]
        there = [p.is_file() for p in paths]
        if not all(there):
            if any(there):   # some lists only (a partly unpacked tar): not the PNGs' labels in silence
                absent, present = paths[there.index(False)], paths[there.index(True)]
                raise InputError(f"{absent}: missing, while {'/'.join(present.parts[-2:])} is there; restore it (the "
                                 "VOC tar has every class's list) or remove ImageSets/Main to use the label PNGs")
            return None
        return [main_list(path, self.ids, self.split) for path in paths]

    def full_label(self, i):
        listed = self.root / "classes.txt"
        source = listed if listed.exists() else f"PASCAL VOC (no {listed}, which would name others)"
        return checked_label(self.items[i].label, self.sizes[i], self.classes, source)

    def image_classes(self, i):
        """Foreground classes present (1-based class values, increasing)."""
        return self._present[i]


def xml_classes(path, classes):
    """Sorted class indices of the objects a VOC annotation file names."""
    try:
        names = {obj.findtext("name", "").strip() for obj in ElementTree.parse(path).getroot().iter("object")}
    except (OSError, ElementTree.ParseError) as e:
        raise InputError(f"{path}: unreadable annotation ({e}); restore it or remove Annotations/ to balance "
                         "by the label PNGs") from None
    unknown = names - set(classes[1:])
    if unknown:
        raise InputError(f"{path}: objects {sorted(unknown)} are not classes of the dataset; fix the file")
    return sorted(classes.index(n) for n in names)


def main_list(path, ids, split):
    """{id: 1, -1 or 0} of one ImageSets/Main/<class>_<split>.txt, which must name every id of the split."""
    entries = {}
    for n, line in enumerate(text_lines(path, "re-encode it as UTF-8"), 1):
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ("1", "-1", "0"):
            if parts:
                raise InputError(f"{path}, line {n}: expected '<id> 1|-1|0', got {line!r}; fix the list")
            continue
        entries[parts[0]] = int(parts[1])
    absent = [i for i in ids if i not in entries]
    if absent:
        raise InputError(f"{path}: no entry for image {absent[0]} of split {split}; complete the list or "
                         "remove ImageSets/Main to use the label PNGs")
    return entries
