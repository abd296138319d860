"""Image files to predict on."""
from pathlib import Path

from ..io import InputError
from .base import IMAGE_SUFFIXES, ImageList, Item, readable_items

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
        unique = {}  # a file named twice (alone and in its folder) is predicted once
        for p in paths:
            unique.setdefault(p.resolve(), p)
        paths = list(unique.values())
        first = {}
        for p in paths:
            if first.setdefault(p.stem, p) != p:
                raise InputError(f"{p}: same name as {first[p.stem]}; outputs are named by it, so rename one")
        listed = [Item(p.stem, p, None) for p in paths]
        self.items, self.sizes, self.skipped = readable_items(listed, "the images named")


