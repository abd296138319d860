"""Image files to predict on."""
import os
from pathlib import Path

from ..errors import raise_all
from ..io import InputError
from .base import IMAGE_SUFFIXES, ImageList, Item


class ImageFiles(ImageList):
    """Image files to predict on: files named directly, and the images (jpg, jpeg, png) of folders named."""

    def __init__(self, inputs):
        paths, self.ignored, self.subfolders, broken = [], [], [], []  # ignored, subfolders: reported by predict
        named = {Path(p).resolve() for p in inputs}
        for name in map(Path, inputs):
            if name.is_dir():
                images, others, inner, links = folder_contents(name, named)
                paths += images
                self.ignored += others
                self.subfolders += inner
                broken += links   # skipped, as unreadable images
            elif not name.is_file():
                raise InputError(f"{name}: not found; name image files or folders of images")
            else:
                paths.append(name)
        paths = named_once(paths)
        if not paths:
            raise InputError(f"{broken[0]}: {no_file_said(broken[0])[0]}; no .jpg, .jpeg or .png of the folders named "
                             "is a file: name image files")
        listed = [Item(p.stem, p, None) for p in paths]
        self.keep_readable(listed, "the images named")
        self.skipped |= {str(p): not_a_file(p) for p in broken}


def not_a_file(path):
    """Why an image name of a folder that is no file is skipped, and what to do: the skip line said 'a link to
    nothing' alone, where every other names a fix."""
    return "; ".join(no_file_said(path))


def no_file_said(path):
    """(what an image name of a folder that is no file is, what to do): a link to nothing, or a named pipe, a socket
    or a device, also through a link (a link to /dev/null was told as a link to nothing)."""
    link = f"a link to {os.readlink(path)}" if path.is_symlink() else None
    if link and not path.exists():
        return f"{link}, which does not exist", "mend the link, or remove it"
    return ", ".join(filter(None, [link, "a named pipe, a socket or a device, not a file"])), \
        "put the image in its place, or remove it"


def folder_contents(folder, named):
    """(its images, its other files, its folders, its image names that are links to nothing) of a folder named to
    predict on; files and folders also named themselves (`named`, resolved) are read as such, not listed here."""
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    found = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir()]
    inner = [p for p in entries if p.is_dir() and p.resolve() not in named]
    if not found:
        raise InputError(f"{folder}: no .jpg, .jpeg or .png images in this folder" +
                         (f" (its folders are not read: name them, such as {inner[0]})" if inner else "; name another"))
    others = [p for p in entries if p.suffix.lower() not in IMAGE_SUFFIXES and p.is_file() and p.resolve() not in named]
    return [p for p in found if p.is_file()], others, inner, [p for p in found if not p.is_file()]


def named_once(paths):
    """The image paths, a file named twice (alone and in its folder) once; two files of one name are an error, since
    outputs are named by it."""
    unique = {}
    for p in paths:
        unique.setdefault(p.resolve(), p)
    first = {}
    raise_all([f"{p}: same name as {first[p.stem]}; outputs are named by it, so rename one" for p in unique.values()
               if first.setdefault(p.stem, p) != p], "the images named")
    return list(unique.values())
