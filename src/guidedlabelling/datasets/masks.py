"""Class-agnostic saliency sets: folders of images/ and masks/ (datasets/saliency_sets.py arranges MSRA-B and
DUTS-TR so; the built-in data has one)."""
from pathlib import Path

import numpy as np

from ..errors import raise_all
from ..io import InputError, load_gray_png
from .base import IMAGE_SUFFIXES, ImageList, Item, other_suffix


def names(text):
    """The entries of a comma-separated setting (folders, scenes), blanks dropped."""
    return [x.strip() for x in str(text or "").split(",") if x.strip()]


def scene_of(image_id):
    """The scene of a saliency image: its id up to the last '_' (DAVIS: <sequence>_<frame>), else the id."""
    return image_id.rsplit("_", 1)[0] if "_" in image_id else image_id


def held_out(folder, scenes, holdout, images):
    """Whether each item of a saliency folder is held out: those of the scenes named, or where it has none of them,
    its last `holdout` items."""
    held = [scene_of(it.id) in scenes for it in folder]
    if any(held):
        return held
    if len(folder) <= holdout:
        raise InputError(f"{images}: {len(folder)} images, not enough to hold out {holdout}; hold out "
                         f"fewer (--set saliency_train.holdout=N, under {len(folder)}) or add images")
    return [k >= len(folder) - holdout for k in range(len(folder))]


def check_names_and_masks(items, roots):
    """Errors for two images of one name (held-out maps are named by it) and for an image without its mask, all at
    once (the first alone was named: one rerun per file)."""
    first, problems = {}, []
    for it in items:
        if first.setdefault(it.id, it.image) != it.image:
            problems.append(f"{it.image}: same name as {first[it.id]}; held-out maps are named by it, so rename one")
        if not it.label.is_file():
            other = other_suffix(it.label)
            there = f" ({other} is there; masks are <id>.png, lossless)" if other else ""
            problems.append(f"{it.label}: mask of {it.image.name} not found{there}; add it or remove the image")
    raise_all(problems, roots)


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
        raise_all([f"{root / 'images'}: saliency training images not found; expected images/ and masks/ folders "
                   "there (--set saliency_data=DIR[,DIR...] names them; ./downloads.sh --saliency-data arranges MSRA-B "
                   "and DUTS-TR so; or give saliency maps: ./script.py --saliency DIR)"
                   for root in self.roots if not (root / "images").is_dir()], roots)
        for root in self.roots:
            images = root / "images"
            folder = [Item(p.stem, p, root / "masks" / f"{p.stem}.png")
                      for p in sorted(images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
            held = held_out(folder, scenes, holdout, images)
            found |= {scene_of(it.id) for it, h in zip(folder, held) if h}
            listed += [it for it, h in zip(folder, held) if h == (part == "holdout")]
        if scenes - found:
            raise InputError(f"holdout_scenes: no image of {', '.join(sorted(scenes - found))} in {roots} (a scene "
                             "is the image ids' part before their last '_'); name scenes that are there, or none "
                             "(--set saliency_train.holdout_scenes=)")
        if not listed:
            raise InputError(f"{roots}: no {part} images with holdout {holdout} and holdout_scenes "
                             f"{holdout_scenes!r}; hold out fewer")
        check_names_and_masks(listed, roots)
        self.sources = [p for it in listed for p in (it.image, it.label)]
        self.keep_readable(listed, roots)
        raise_all([problem for i in range(len(self.items)) for problem in self.mask_problems(i)], roots)

    def mask_problems(self, i):
        """Item i's mask's problems, checked now, before a stage writes anything: every bad mask is named at once
        (the first alone was: one rerun per file)."""
        try:
            self.label(i)
        except InputError as e:
            return list(e.messages)
        return []

    def scenes(self):
        return sorted({scene_of(it.id) for it in self.items})

    def label(self, i):
        """The foreground (grey value above 127 of 255; 16-bit masks scaled) of a mask of the image's size. A 0/1
        mask, or one drawn in colour (red: luminance 76), is refused: it read as all background, and trained the
        network on nothing salient without a word."""
        path, hw = self.items[i].label, self.sizes[i]
        mask = load_gray_png(path, "saliency training masks are grey, 0 background and 255 foreground: save it so")
        if mask.shape != tuple(hw):
            raise InputError(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH), its image {hw[1]}x{hw[0]}; "
                             "fix the PNG")
        return (mask > 127).astype(np.uint8)
