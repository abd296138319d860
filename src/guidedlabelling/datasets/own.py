"""Your own data: a folder of images and a CSV of image-level tags, optionally label PNGs to evaluate with."""
import os
import unicodedata
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import InputError, counted, listed, raise_all, some
from ..io import CLASS_SCORES, IGNORE
from ..tags import read_rows, read_tags, split_of, tag_names
from .base import IMAGE_SUFFIXES, Item, Labelled, check_class_count, checked_label, inside, missing_hint, \
    value_counts
from .voc import split_name

RESERVED_IDS = {Path(CLASS_SCORES).stem: f"seed_heatmaps' class scores, {CLASS_SCORES}, as the release names them"}
MIN_VOID_OBJECTS = 3  # masks of 0 and 255 alone among their split's tagged ones from which they are an error
UNTAGGED = 0.01  # share of a mask's pixels from which a class its row does not tag is an error
MAX_ORDER = 12   # classes of the class order a mask error spells out


class OwnDataset(Labelled):
    """Your own images with image-level tags: a folder of images and a CSV `image,tags[,split]`.

    `image` is a file name in the folder (with or without its extension); the id is its stem. Classes:
    background, then the sorted tag names of the whole CSV. A row belongs to the split its `split`
    column names, else to val when hash_split says so (val_percent of the ids), else to train. The
    VOC presets' training split name train_aug means train. Masks (optional, for evaluation) are label
    PNGs <masks>/<id>.png with the class indices above and 255 for void.
    """

    settings = ("images", "tags", "masks", "val_percent")
    described = "your own data (--images, --tags)"

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
        self.split, self.val_percent = own_split(split), val_percent
        self.has_labels, self.masks_folder = bool(masks), Path(masks) if masks else None
        self._check_folders(masks)
        rows, problems = read_rows(self.tags_file)   # the rows that read well are checked on with them
        misread = bool(problems)   # the class list may lack a tag: the checks that use it wait
        self._read_classes(rows, misread)
        files = self._match_files(rows, problems)
        listings = {}   # the masks folder, listed once
        listed, self._rows = self._split_items(rows, files, masks, val_percent, problems, listings)
        if masks and files and not any(mask_file(Path(masks), f.stem, listings).is_file() for f in files.values()):
            problems.append(no_masks_problem(Path(masks), files))
        if not listed or misread:
            raise_all(problems, self.tags_file)
        self.sources = [self.tags_file] + [it.image for it in listed]
        self.labels = [it.label for it in listed if it.label is not None]
        try:
            self.keep_readable(listed, self.tags_file)
        except InputError as e:  # none readable: with the problems found before
            raise_all(problems + list(e.messages), self.tags_file)
        raise_all(problems + self._read_items(rows, files, val_percent, masks), self.tags_file)

    def _check_folders(self, masks):
        if not self.root.is_dir():
            raise InputError(f"{self.root}: {folder_problem(self.root, 'image')}; pass --images with your images' "
                             "folder")
        if masks and not Path(masks).is_dir():
            raise InputError(f"{masks}: {folder_problem(Path(masks), 'masks')}; pass --masks with a folder of <id>.png "
                             "or leave it out")

    def _read_classes(self, rows, misread):
        """The classes (background, then the sorted tags), and what the notes say of the rows' tags."""
        self.untagged = [r.line for r in rows if not r.tags]  # photos of background only
        self.classes = ["background"] + tag_names(rows)
        if len(self.classes) < 2 and not misread:
            raise InputError(f"{self.tags_file}: no tags at all; tag each image with the classes it shows")
        check_class_count(self.classes, self.tags_file, "merge tags")

    def _read_items(self, rows, files, val_percent, masks):
        """Of the readable items: their classes, what the notes say of them (classes in every training image, images
        without a mask), and the problems of the training split's tags and of the masks (every mask checked now,
        before a stage writes anything)."""
        self._present = [[self.classes.index(t) for t in self._rows[it.id].tags] for it in self.items]
        self._class_notes(rows, files, val_percent)
        problems = self._untaught(rows, files, val_percent) if self.split == "train" else []
        self.unannotated = [it.id for i, it in enumerate(self.items) if self.has_labels and not self.annotated_at(i)]
        self.not_masks = self._not_masks(masks) if self.unannotated else []
        return problems + (self._mask_problems(masks) if self.has_labels else [])

    def _class_notes(self, rows, files, val_percent):
        """What the notes say of the classes: those of one training image, rows alike, classes in every training
        image (nothing tells them from background) and classes no image of this test split shows."""
        training = [r for r in rows if r.line in files and split_of(r, files[r.line].stem, val_percent) == "train"]
        self.tagged_once, self.same_rows = tagged_once(training), same_rows(rows)
        foreground = list(enumerate(self.classes[1:], 1))
        self.always_tagged = [name for c, name in foreground
                              if self.split == "train" and all(c in present for present in self._present)]
        self.untested = [name for c, name in foreground
                         if self.split != "train" and self.items and not any(c in p for p in self._present)]

    def _not_masks(self, masks):
        """Files of the masks folder named like an image without a mask, such as x.jpg where x.png is not."""
        unannotated = set(self.unannotated)
        return sorted(p.name for p in Path(masks).iterdir() if p.stem in unannotated and p.suffix != ".png")

    def _split_items(self, rows, files, masks, val_percent, problems, listings):
        """Items of this split, and {id: its row}; `listings`: mask_file's memo of the folder's listing."""
        items, row_of = [], {}
        for r in rows:
            image = files.get(r.line)
            if image is None or split_of(r, image.stem, val_percent) != self.split:
                continue
            label = mask_file(Path(masks), image.stem, listings) if masks else None  # absent: not annotated
            if label is not None and label.is_file() and label.samefile(image):
                problems.append(f"{self.tags_file}, line {r.line}: image {r.image!r} is also its own mask, the masks "
                                "folder being the images folder; keep the masks in a folder of their own")
            items.append(Item(image.stem, image, label))
            row_of[image.stem] = r
        if not items and not problems:
            fix = f"give some rows split {self.split}" if rows[0].split is not None else \
                "add a split column (train/val) or more images"
            raise InputError(f"{self.tags_file}: no images in split {self.split}; {fix}")
        return items, row_of

    def _match_files(self, rows, problems):
        """{CSV line: image file}; each row names one file of the folder, each file is named once. A row that
        does not adds its problem to `problems` instead."""
        listings, files, seen = {}, {}, {}
        for r in rows:
            try:
                found = self._row_file(r, listings, files, seen)
            except InputError as e:
                problems += e.messages
                continue
            seen[found.stem], files[r.line] = r.line, found
        self._files, self.alike_ids = files, alike_ids(files)
        return files

    @cached_property
    def unlisted(self):
        """The images of the folder and its subfolders that no row names, for the notes alone: the folder's tree is
        walked only where they are printed."""
        named = set(self._files.values())
        if self.masks_folder:   # the masks, where their folder is the images' own
            named |= {self.masks_folder / f"{p.stem}.png" for p in self._files.values()}
        other = [p for p in self._tree if p not in named]   # (10,000 paths resolved: a second a split)
        real = {p.resolve() for p in named} if other else set()   # links, and paths written otherwise
        return [p.relative_to(self.root).as_posix() for p in other if p.resolve() not in real]

    @cached_property
    def _tree(self):
        """The image files of the folder and its subfolders (images_in_tree), walked once for the notes and hints."""
        return images_in_tree(self.root, self.masks_folder)

    @cached_property
    def _tree_index(self):
        return tree_index(self.root, self._tree)

    @cached_property
    def _roots(self):
        """(the images' folder as an absolute path, with its links resolved), found once for all the rows."""
        return Path(os.path.abspath(self.root)), self.root.resolve()

    def _row_file(self, r, listings, files, seen):
        """The image file row `r` names (InputError where it names none, or one named before)."""
        where = f"{self.tags_file}, line {r.line}"
        exact = named_path(self.root, r.image)
        at, root = Path(os.path.abspath(exact)), self._roots[0]
        if Path(r.image).is_absolute() and at.is_relative_to(root) and at != root:
            raise InputError(f"{where}: image {r.image!r} is an absolute path; names are relative to {self.root}: "
                             f"write {str(at.relative_to(root))!r}")
        if Path(r.image).is_absolute() or at == root or not at.is_relative_to(root):
            raise InputError(f"{where}: image {r.image!r} is outside {self.root}; name a file of that folder")
        found = [exact] if exact.is_file() else named_file(exact, listings)
        if not found:
            hint = missing_hint(r.image, self.root) or elsewhere_hint(at.relative_to(root).as_posix(), self.root,
                                                                      self._tree_index)
            raise InputError(f"{where}: image {r.image!r} is not in {self.root}; {hint}add it or remove the row")
        if not (self.follow_symlinks or inside(found[0], self._roots[1])):
            raise InputError(f"{where}: image {r.image!r} links to {found[0].resolve()}, outside {self.root}; "
                             "copy the file in, or pass --set follow_symlinks=true to read it there")
        if len(found) > 1:
            mask = self.masks_folder and os.path.realpath(self.masks_folder) == os.path.realpath(exact.parent)
            raise InputError(f"{where}: {r.image!r} matches {[p.name for p in found]}" + (
                " (the masks folder is this one: a .png is its mask)" if mask else "") + "; name the file with "
                "its extension")
        stem = found[0].stem
        if stem.casefold() in RESERVED_IDS:  # case-insensitive file systems: CLS_RES.mat is cls_res.mat
            raise InputError(f"{where}: image id {stem!r} is the name of a file the stages write beside the "
                             f"per-image files ({RESERVED_IDS[stem.casefold()]}); rename the image")
        if stem in seen and files[seen[stem]].resolve() == found[0].resolve():
            raise InputError(f"{where}: image {r.image!r} is listed again (line {seen[stem]}); remove one row")
        if stem in seen:
            raise InputError(f"{where}: image id {stem!r} already on line {seen[stem]}; outputs are named "
                             "by id, so each image may appear once (rename one file)")
        return found[0]

    def _untaught(self, rows, files, val_percent):
        """A problem per class that no readable training image is tagged with: nothing would learn it."""
        taught = {c for present in self._present for c in present}
        unmatched = {t for r in rows if r.line not in files for t in r.tags}  # their rows' problems tell
        problems = []
        for c, name in enumerate(self.classes[1:], 1):
            if c in taught or name in unmatched:
                continue
            where = [self._why_untaught(r, files[r.line], val_percent) for r in rows if name in r.tags]
            fix = "replace its unreadable images, " if any("unreadable" in w for w in where) else ""
            problems.append(f"{self.tags_file}: class {name!r} is tagged in no readable training image (only in "
                            f"{', '.join(where[:3])}{' ...' if len(where) > 3 else ''}), so nothing would learn it; "
                            f"{fix}give one of its images split train in a split column, add one, or remove the tag")
        return problems

    def _why_untaught(self, r, image, val_percent):
        """'a.jpg (line 2, val)', or for an image of the training split '(line 2, unreadable: an empty file (0
        bytes))': the error stops the run before the skipped images are listed, so it says why here."""
        if split_of(r, image.stem, val_percent) == "val":
            return f"{image.name} (line {r.line}, val)"
        why = self.skipped.get(str(image))
        return f"{image.name} (line {r.line}, unreadable{': ' + why.split('; ')[0] if why else ''})"

    def _mask_problems(self, masks):
        """Each mask's problem (_mask_problem), and one where most masks of tagged images hold none of the classes
        their rows tag but void instead: objects written as 255, which is void, in 0/255 masks (Weizmann's, DAVIS'),
        most often."""
        checked = [self._mask_problem(i) for i, it in enumerate(self.items) if it.label.is_file()]
        problems = [problem for problem, _ in checked if problem]
        tagged = [holds for problem, holds in checked if not problem and holds is not None]
        if tagged.count("void") >= MIN_VOID_OBJECTS and tagged.count("void") > len(tagged) / 2:
            problems.append(f"{masks}: most masks of tagged images hold no pixel of the classes their rows tag; "
                            f"objects take their class's value 1..{len(self.classes) - 1} in the order background + "
                            "the sorted tags, and 255 is void (a 0/255 mask of one class needs its 255 written as 1)")
        return problems

    def _mask_problem(self, i):
        """(What is wrong with item i's mask or None, what it holds of the classes its row tags: True for any pixel,
        'void' for none but background and void, each on UNTAGGED of its pixels or more, False for none, None for a
        row without tags).
        Wrong: unreadable, of another size, values outside the classes, or a class its row does not tag on at least
        UNTAGGED of its pixels (masks numbered in another class order than the tags', most often; fewer pixels are
        let pass: the seams of a mask resized with interpolation)."""
        try:
            label = self.full_label(i)
        except InputError as e:
            return e.messages[0], None
        counts = value_counts(label) / label.size
        share = counts[1:IGNORE]   # of classes 1, 2, ...
        void_objects = counts[0] >= UNTAGGED and UNTAGGED <= counts[IGNORE] < 1 - UNTAGGED  # 0/255, not all void
        holds = None if not self._present[i] else any(share[c - 1] > 0 for c in self._present[i]) or \
            ("void" if void_objects else False)
        untagged = [c for c in np.flatnonzero(share >= UNTAGGED) + 1 if c not in self._present[i]]
        if not untagged:
            return None, holds
        row = self._rows[self.items[i].id]
        held = ", ".join(f"{self.classes[c]} ({c}) on {100 * share[c - 1]:.0f}%" for c in untagged)
        shown = sorted(set(range(min(MAX_ORDER, len(self.classes)))) | set(untagged) | set(self._present[i]))
        order = ", ".join(("... " if k and k - 1 not in shown else "") + f"{k} {self.classes[k]}" for k in shown) + \
            (", ..." if shown[-1] < len(self.classes) - 1 else "")
        return (f"{self.items[i].label}: holds {held} of its pixels, which line {row.line} of {self.tags_file} does "
                f"not tag ({' '.join(row.tags) or 'no tags'}); mask values follow the classes background + the sorted "
                f"tags ({order}), and a tag new to the CSV moves up the classes sorted after it: fix the mask or the "
                "tags"), holds

    def annotated_at(self, i):
        return self.has_labels and self.items[i].label.is_file()

    @classmethod
    def annotated_splits(cls, d):
        """From the tags CSV and the file names alone (no image is decoded); own data without --masks has none."""
        if not d["masks"]:
            return set()
        rows, masks, listings, mask_listing = read_tags(d["tags"]), Path(d["masks"]), {}, {}
        ids = [image_id(Path(d["images"]), r.image, listings) for r in rows]
        return {split_of(r, i, d["val_percent"]) for r, i in zip(rows, ids)
                if mask_file(masks, i, mask_listing).is_file()}

    def notes(self):
        """Of its tags file (the same lines for each split, printed once): its classes (the values its masks hold),
        the tags of one row, the ids alike but for case or accents, the photos of its folder that no row names and
        the rows without tags (each legitimate, and each what a slip in the CSV looks like); of this split: the
        images without a mask, the classes tagged in every training image, and those in no image of a test split."""
        return [f"classes of {self.tags_file}: " + ", ".join(f"{k} {name}" for k, name in enumerate(self.classes))] \
            + self._tag_notes() + self._mask_note() + [
                f"note: {name} is tagged in every training image of {self.tags_file} ({len(self)}): with no image "
                "without it, the classifier is not taught what tells it from background, so its class maps and seeds "
                "are weak; add photos without it (rows of other tags or of none)" for name in self.always_tagged] \
            + self._untested_note()

    def _untested_note(self):
        if not self.untested:
            return []
        one = len(self.untested) == 1
        names = listed(self.untested) if len(self.untested) <= 5 else some(self.untested, 5)
        return [f"note: {names} {'is' if one else 'are'} tagged in no {self.split} image of "
                f"{self.tags_file} ({counted(len(self), self.split + ' image')}), so the test measures nothing of "
                f"{'it' if one else 'them'}; put some of {'its' if one else 'their'} rows in {self.split} (a split "
                "column: image,tags,split)"]

    def _tag_notes(self):
        notes = []
        if self.tagged_once:
            n = len(self.tagged_once)
            once = some([f"{t} (line {line})" for t, line in self.tagged_once.items()], 5)
            notes.append(f"note: {counted(n, 'tag')} of {self.tags_file} name{'s' if n == 1 else ''} one training "
                         f"image only: {once}; a class of one training image is hardly learnt, and a misspelt tag "
                         "makes one: correct any misspelling, or tag more training images with it")
        for tags, lines in self.same_rows:
            notes.append(f"note: {listed(tags)} are tagged in the same {len(lines)} rows of {self.tags_file} and in no "
                         f"other (lines {some(list(map(str, lines)), 5)}), so tags alone cannot tell them apart; if "
                         f"they are one class of {len(tags)} words, join them with _ (a space separates tags)")
        if self.alike_ids:
            pairs = some([f"{i} (line {line}) and {j} (line {k})" for line, i, k, j in self.alike_ids])
            n = len(self.alike_ids)
            notes.append(f"note: {counted(n, 'image id')} of {self.tags_file} differ{'s' if n == 1 else ''} from "
                         f"another only in case or in how an accent is encoded: {pairs}; outputs are named by id, so "
                         "on a disk that ignores case (macOS's, Windows') or accent encoding (macOS's) one overwrites "
                         "the other: rename one if the run's folder is on such a disk")
        if self.unlisted:
            one = len(self.unlisted) == 1
            notes.append(f"note: {counted(len(self.unlisted), 'image')} of {self.root} {'has' if one else 'have'} no "
                         f"row in {self.tags_file} and {'is' if one else 'are'} not used ({some(self.unlisted)}); add "
                         f"rows to use {'it' if one else 'them'}")
        if self.untagged:
            one = len(self.untagged) == 1
            notes.append(f"note: {counted(len(self.untagged), 'row')} of {self.tags_file} {'has' if one else 'have'} "
                         f"no tags, so {'its photo is' if one else 'their photos are'} trained as background only "
                         f"(line{'' if one else 's'} {some(list(map(str, self.untagged)), 5)})")
        return notes

    def _mask_note(self):
        if not self.has_labels or self.annotated == len(self):
            return []
        other = f"; {some(self.not_masks)} there: a mask is <id>.png" if self.not_masks else ""
        missing = len(self) - self.annotated
        has, are = ("has", "is") if missing == 1 else ("have", "are")
        return [f"note: {missing} of the {len(self)} {self.split} images {has} no mask in "
                f"{self.items[0].label.parent} and {are} left out of the scores ({some(self.unannotated)}{other})"]

    def full_label(self, i):
        if not self.has_labels:
            return super().full_label(i)  # the error of a layout without label maps
        if not self.annotated_at(i):  # not annotated: void, left out of every score and of the reference
            return np.full(self.sizes[i], IGNORE, np.uint8)
        source = f"{self.tags_file} (background + its sorted tags)"
        return checked_label(self.items[i].label, self.sizes[i], self.classes, source)

    def image_classes(self, i):
        """Foreground classes the tags name (1-based class values, increasing)."""
        return self._present[i]


def alike_ids(files):
    """[(line, id, line, earlier id)] of the image ids ({CSV line: file}) that differ from an earlier one only in case
    or in how an accent is encoded: outputs are named by id, and a disk that ignores case (macOS's, Windows') or
    accent encoding (macOS's) takes the two names for one file."""
    first, alike = {}, []
    for line, image in files.items():
        seen = first.setdefault(unicodedata.normalize("NFC", image.stem).casefold(), (line, image.stem))
        if seen[1] != image.stem:
            alike.append((line, image.stem) + seen)
    return alike


def tagged_once(rows):
    """{tag: its line} of the tags that one row alone names: a class of one image, or a misspelt tag."""
    lines = {}
    for r in rows:
        for t in r.tags:
            lines.setdefault(t, []).append(r.line)
    return {t: found[0] for t, found in sorted(lines.items()) if len(found) == 1}


def same_rows(rows, least=2):
    """[([tags], [lines])] of the groups of tags named by the same rows, at least `least` of them, and by no other:
    one class written with spaces ("Traffic sign", "New York City"), or classes that tags alone cannot tell apart."""
    lines = {}
    for r in rows:
        for t in r.tags:
            lines.setdefault(t, []).append(r.line)
    groups = {}
    for t in sorted(lines):
        groups.setdefault(tuple(lines[t]), []).append(t)
    return [(tags, list(at)) for at, tags in groups.items() if len(tags) > 1 and len(at) >= least]


def own_split(dataset):
    """The split of your own data that a dataset setting names: voc12train_aug (voc12_paper's) is train."""
    return "train" if split_name(dataset) == "train_aug" else split_name(dataset)


def mask_file(masks, image_id, listings):
    """<masks>/<id>.png, found as named_file finds images: in one Unicode form (a photo's name written by macOS, its
    mask's by another program)."""
    path = masks / f"{image_id}.png"
    if path.is_file():
        return path
    if masks not in listings:
        listings[masks] = {unicodedata.normalize("NFC", p.name): p for p in masks.iterdir() if p.suffix == ".png"} \
            if masks.is_dir() else {}
    return listings[masks].get(unicodedata.normalize("NFC", path.name), path)


def no_masks_problem(masks, files):
    """The problem of a masks folder holding no <id>.png of the CSV's images ({line: image file}), naming its files
    that an id names otherwise: a.PNG (a Windows tool's) or a.jpg passed for no mask at all, without a word of why."""
    ids, images = {f.stem for f in files.values()}, {f.resolve() for f in files.values()}
    other = sorted(p.name for p in masks.iterdir() if p.stem in ids and p.resolve() not in images)  # masks beside
    if not other:
        return f"{masks}: no mask of the CSV's images (<id>.png); name each as its image's id, or leave out --masks " \
            "to run without evaluation"
    return f"{masks}: no mask of the CSV's images (<id>.png), but {some(other)} there; save or rename each as a PNG " \
        "named <id>.png (its extension in lower case), or leave out --masks to run without evaluation"


def folder_problem(path, what):
    """Why `path` is no folder: 'image folder not found', or 'a file, not an image folder'."""
    return f"a file, not {'an' if what[0] in 'aeiou' else 'a'} {what} folder" if path.exists() else \
        f"{what} folder not found"


def images_by_stem(folder, listings):
    """{stem: [image files]} of a folder (a row's IMG_1 or sub/IMG_1 names IMG_1.jpg there), listed once:
    `listings` holds it by folder."""
    if folder not in listings:
        found = {}
        for p in sorted(folder.iterdir()) if folder.is_dir() else []:
            if image_name(p.name) and not p.is_dir():
                found.setdefault(p.stem, []).append(p)
        listings[folder] = found
    return listings[folder]


def images_in_tree(root, masks=None):
    """The image files under `root` and its subfolders (a row may name sub/a.jpg), sorted, but for hidden ones, a
    masks folder inside it and the outputs of runs there (--out_root inside the images' folder); links to folders
    are not followed."""
    found, skip = [], os.path.realpath(masks) if masks else None   # real paths: either may be given through a link
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and os.path.realpath(Path(folder, d)) != skip
                         and not made_by_a_run(Path(folder, d))]
        found += [Path(folder, n) for n in names if image_name(n)]
    return sorted(found)


def tree_index(root, paths):
    """{key: [paths relative to root]} of image files, for elsewhere_hint: by name and by stem, and by their path
    and its stem path, casefolded."""
    index = {}
    for p in paths:
        rel = p.relative_to(root)
        for key in {("name", rel.name), ("name", rel.stem), ("path", folded(rel.as_posix())),
                    ("path", folded(rel.with_suffix("").as_posix()))}:
            index.setdefault(key, []).append(rel.as_posix())
    return index


def folded(path):
    """A path in one case and one Unicode form."""
    return unicodedata.normalize("NFC", path).casefold()


def elsewhere_hint(name, root, index):
    """The start of the fix for a row's image `name` (its path from `root`) that its own folder does not explain
    (missing_hint): an image of that path in another case (Sub/a.jpg), or of that name in another folder (photos
    exported in folders by date, 2024/IMG_1.jpg, and a CSV of their names); '' otherwise."""
    case = index.get(("path", folded(name)))
    if case:
        return f"{case[0]} is there, and names are case-sensitive: write it so, or "
    other = index.get(("name", Path(name).name))
    if other:
        return f"{some(other)} {'is' if len(other) == 1 else 'are'} there: an image in a subfolder is named by its " \
            f"path from {root}: write it so, or "
    return ""


def made_by_a_run(folder):
    """Whether a folder holds a stage's outputs (its config.yaml and inputs.json) or predict.py's (predict.json)."""
    return (folder / "config.yaml").is_file() and (folder / "inputs.json").is_file() or \
        (folder / "predict.json").is_file()


def image_name(name):
    """Whether a file name of the images' folder is an image's: an image suffix, and not hidden (macOS's ._a.jpg)."""
    return Path(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith(".")


def named_file(path, listings):
    """The image files a row's `path` that is no file names: by its stem (IMG_1 names IMG_1.jpg), its letters
    compared in one Unicode form (macOS writes é in file names as e and an accent, a CSV as one letter), as are
    its folders' (folder_as_written)."""
    folder = folder_as_written(path.parent, listings)
    if folder != path.parent and (folder / path.name).is_file():
        return [folder / path.name]
    by_stem = images_by_stem(folder, listings)
    if path.name in by_stem:
        return by_stem[path.name]
    name = unicodedata.normalize("NFC", path.name)
    return [p for stem, files in by_stem.items() for p in files if path.name not in (p.name, stem)
            and name in (unicodedata.normalize("NFC", p.name), unicodedata.normalize("NFC", stem))]


def folder_as_written(folder, listings):
    """The folder a row's path names, where it is not there as written: its names and its parents' compared in one
    Unicode form (a folder Été/ copied from a Mac holds É and é as a letter and an accent, and a row of Été/a.jpg
    named no file); `folder` itself where none matches. `listings` keeps each parent's subfolders."""
    if folder.is_dir() or folder.parent == folder:
        return folder
    parent = folder_as_written(folder.parent, listings)
    if ("folders", parent) not in listings:
        listings["folders", parent] = {unicodedata.normalize("NFC", p.name): p for p in parent.iterdir()
                                       if p.is_dir()} if parent.is_dir() else {}
    return listings["folders", parent].get(unicodedata.normalize("NFC", folder.name), folder)


def named_path(root, name):
    """The path a row's image name gives: sub/../a.jpg is a.jpg, even without a folder sub (links are judged by
    _row_file)."""
    return Path(os.path.normpath(Path(root) / name))


def image_id(root, name, listings):
    """The id a row's image name gives, as _row_file finds it: the stem of the file it names (a.tif is a), else
    the name (IMG_1 names IMG_1.jpg; sub/IMG_1 gives IMG_1). listings: images_by_stem's, shared by the rows."""
    exact = named_path(root, name)
    found = [exact] if exact.is_file() else named_file(exact, listings)
    return found[0].stem if len(found) == 1 else Path(name).name
