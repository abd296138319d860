"""Your own data: a folder of images and a CSV of image-level tags, optionally label PNGs to evaluate with."""
import os
from pathlib import Path

from ..io import InputError
from ..tags import hash_split, read_tags
from .base import IMAGE_SUFFIXES, Item, Labelled, case_hint, check_class_count, checked_label, inside, \
    readable_items
from .voc import split_name

class OwnDataset(Labelled):
    """Your own images with image-level tags: a folder of images and a CSV `image,tags[,split]`.

    `image` is a file name in the folder (with or without its extension); the id is its stem. Classes:
    background, then the sorted tag names of the whole CSV. A row belongs to the split its `split`
    column names, else to val when hash_split says so (val_percent of the ids), else to train. The
    VOC presets' training split name train_aug means train. Masks (optional, for evaluation) are label
    PNGs <masks>/<id>.png with the class indices above and 255 for void.
    """

    @classmethod
    def open(cls, d, split, follow_symlinks=False):
        if not (d["images"] and d["tags"]):
            raise InputError("--images and --tags go together: a folder of images and a CSV `image,tags` "
                             "naming their classes")
        return cls(d["images"], d["tags"], d["masks"], split, d["val_percent"], follow_symlinks)

    ground_truth_hint = "pass --masks DIR"

    @classmethod
    def has_ground_truth(cls, d):
        return bool(d["masks"])

    def needs_labels(self, what):
        return f"{self.tags_file}: {what} needs ground-truth masks; pass --masks with a folder of label PNGs named " \
            "like the images"

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
                self.full_label(i)  # checks every mask now, before a stage writes anything

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

    def full_label(self, i):
        if not self.has_labels:
            return super().full_label(i)  # the error of a layout without label maps
        source = f"{self.tags_file} (background + its sorted tags)"
        return checked_label(self.items[i].label, self.sizes[i], self.classes, source)

    def image_classes(self, i):
        """Foreground classes the tags name (1-based class values, increasing)."""
        return self._present[i]


