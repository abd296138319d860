"""Datasets by layout (LAYOUTS), and the contract that every stage uses instead of naming a layout.

Layouts: voc.py (a PASCAL VOC folder; sbd.py builds VOC's train_aug from SBD; builtin.py generates the built-in
data in this layout), own.py (a folder of images and a CSV of tags). Saliency sets: masks.py (folders of images/
and masks/; saliency_sets.py arranges MSRA-B and DUTS-TR so). files.py: images to predict on. Adding a layout is
one module here and one line in LAYOUTS (docs/reference.md, "Adding a dataset layout"); `--set layout=NAME` then
chooses it. A layout is a subclass of base.Labelled that
- opens one split of the data that the data settings name with the classmethod open(d, split, follow_symlinks),
  checking its files then, before a stage writes anything: a missing file, a label value outside the classes or a
  label of another size is an InputError naming the file; an image that does not decode is left out (base.py:
  keep_readable) and listed in `skipped`, one that decodes with Pillow's warnings in `warned`;
- has `root` (a folder to name in messages), `split`, `classes` (background first), `items` (base.Item: id, image
  path, label path or None; the outputs are named by id, so two items of one id are an error), `sizes` ((height,
  width) of each image file), `skipped`, `warned`;
- image_classes(i): the image's foreground classes (1-based, increasing), its tags;
- full_label(i): its label map ([H, W] uint8, 255 = void) at the file's size when `has_labels` (the stages read
  image(i) and label(i), both at the work size hw(i) that open_dataset's max_side sets); has_ground_truth(d) and
  annotated_splits(d) say so before opening, annotated_at(i) and `annotated` of each image, needs_labels(what) is
  the message when a step needs them, and `ground_truth_hint` says how to give them (own data: pass --masks DIR);
- for reuse, `sources`: the files that determine its images and classes, `labels`: its label files (inputs when
  `tags_in_labels`, as VOC's tags come from them; otherwise only read to score outputs), `tags_file`: a file of
  tags apart from them (own data's CSV);
- notes(): lines the run prints before its steps on what in the data may be a slip (base.Labelled keeps none);
- `settings`: the data settings that name its files (split names and max_image_side aside), `described`: what
  messages call such data: the settings of other layouts it does not read are then left out of its folders' names
  and stored settings, and noted where given (base.Labelled's None: it reads them all).
The defaults of base.Labelled serve a layout whose every image has a label map.
"""
from ..io import InputError
from .base import IMAGE_SUFFIXES, ImageList, Item, Labelled
from .files import ImageFiles
from .masks import MaskFolder, names, scene_of
from .own import OwnDataset, own_split
from .voc import VOC_CLASSES, VOCDataset, dataset_root, read_classes, split_name

LAYOUTS = {
    "voc": VOCDataset,
    "own": OwnDataset,
}

__all__ = ["IMAGE_SUFFIXES", "LAYOUTS", "VOC_CLASSES", "ImageFiles", "ImageList", "Item", "Labelled", "MaskFolder",
           "OwnDataset", "VOCDataset", "annotated_splits", "dataset_root", "ground_truth_hint", "has_ground_truth",
           "data_settings_unread", "layout", "names", "open_dataset", "own_split", "read_classes", "scene_of",
           "shown_settings", "split_name", "unread_notes"]


def layout(d):
    """The layout the data settings name: `layout`, or for auto your own data when --images or --tags is given,
    else a VOC-layout folder (--dataset_dir, --pascalroot or the built-in data). Settings a folder recorded before
    `layout` was one count as auto."""
    if d.get("layout", "auto") != "auto":
        return d["layout"]
    return "own" if d.get("images") or d.get("tags") else "voc"


def open_dataset(d, split, follow_symlinks=False):
    """One split of the dataset that the data settings name, at its work size (max_image_side)."""
    data = LAYOUTS[layout(d)].open(d, split, follow_symlinks)
    refuse_shared_ids(data.items)
    return data.work_at(d["max_image_side"])


def refuse_shared_ids(items):
    """Two items of one id would write one output file, the second image never made (voc.py and own.py refuse
    them as they list them; a layout of one's own may not)."""
    first = {}
    for it in items:
        if it.id in first:
            raise InputError(f"{first[it.id]} and {it.image}: one image id, {it.id!r}, while the outputs are named "
                             "by id; rename one of them")
        first[it.id] = it.image


def has_ground_truth(d):
    """Whether the data has label maps to evaluate against (VOC always; own data with --masks)."""
    return LAYOUTS[layout(d)].has_ground_truth(d)


def annotated_splits(d):
    """The splits (of train, val) that hold an image with a label map, known before opening them."""
    return LAYOUTS[layout(d)].annotated_splits(d)


def data_settings_unread(d):
    """{setting: why it is not read} of the data settings that the dataset these data settings name leaves unread:
    those only other layouts name (their `settings`), and --pascalroot where --dataset_dir replaces it. They name no
    folder, are blank in stored settings (naming.without_unread) and are noted where given."""
    mine = LAYOUTS[layout(d)]
    owners = {}
    for other in LAYOUTS.values() if mine.settings is not None else ():   # None: it reads them all
        for k in other.settings or ():
            if k not in mine.settings:
                owners.setdefault(k, []).append(other.described)
    why = {k: f"a setting of {' or '.join(o)}, and this run's dataset is {mine.described}" for k, o in owners.items()}
    if d.get("dataset_dir") and "dataset_dir" not in why and "pascalroot" not in why:
        why["pascalroot"] = "--dataset_dir replaces it"
    return why


def unread_notes(d, given):
    """A note per data setting of `given` (the keys given on the command line) that the dataset does not read
    (--dataset_dir beside --images, whose own data replaces the VOC-layout folder), but those its layout refuses."""
    return [f"{k} {d[k]} changes nothing: {why}" for k, why in sorted(data_settings_unread(d).items())
            if k in given and k not in LAYOUTS[layout(d)].refused]


def shown_settings(d):
    """The data settings of the dataset the run reads, as a report lists them."""
    unread = data_settings_unread(d)
    return {k: v for k, v in d.items() if k not in unread}


def ground_truth_hint(d):
    """How to give the data label maps, for the messages of steps skipped without them."""
    return LAYOUTS[layout(d)].ground_truth_hint
