"""Saliency training sets from their archives (MSRA-B, DUTS-TR) in the layout the saliency stage reads:
<dst>/images/<id>.jpg and <dst>/masks/<id>.png (0 background, 255 salient object).

    python -m guidedlabelling.datasets.saliency_sets SRC DST   (what downloads.sh --saliency-data runs)

SRC is the unpacked archive: images (.jpg) and masks (.png) anywhere below it, paired by file name
(MSRA-B keeps both in one folder; DUTS-TR in DUTS-TR-Image/ and DUTS-TR-Mask/).
"""
import shutil
import sys
from pathlib import Path

import numpy as np

from ..io import InputError, load_gray_png, load_image, save_gray_png


def archived_files(src):
    """The files below src, without the hidden ones and those of macOS's archive metadata (__MACOSX/, ._<name>)."""
    return [p for p in sorted(src.rglob("*")) if p.is_file()
            and not any(part.startswith((".", "__MACOSX")) for part in p.relative_to(src).parts)]


def pairs(src):
    """{id: (image, mask)} of the images with a mask of the same name below src; the ids without one."""
    src = Path(src)
    files = archived_files(src)
    images = {p.stem: p for p in files if p.suffix.lower() in (".jpg", ".jpeg")}
    masks = {p.stem: p for p in files if p.suffix.lower() == ".png"}
    if not images:
        raise InputError(f"{src}: no .jpg images below this folder; unpack the saliency archive there")
    return {i: (images[i], masks[i]) for i in images if i in masks}, sorted(set(images) - set(masks))


def arrange(src, dst):
    """Copy the paired images and binarised masks (> 127 is salient) into dst; returns (pairs copied, ids left
    out: without a mask, or whose mask has another size, ids of the pairs that do not decode). Pairs already in
    place are kept (a rerun resumes); none copied is an error."""
    found, left_out = pairs(src)
    if not found:
        raise InputError(f"{src}: no image has a mask of the same name (.png); is this a saliency archive?")
    dst = Path(dst)
    copied, unreadable, misfit = 0, [], []
    for i, (image, mask) in found.items():
        target = dst / "masks" / f"{i}.png"
        if not target.exists():
            try:
                label, hw = load_gray_png(mask), load_image(image).shape[:2]
            except InputError:
                unreadable.append(i)
                continue
            if label.shape != hw:
                misfit.append(i)
                continue
            (dst / "images").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image, dst / "images" / f"{i}.jpg")
            save_gray_png(target, np.where(label > 127, 255, 0))
        copied += 1
    if not copied:
        raise InputError(f"{src}: none of its {len(found)} image/mask pairs is usable ({len(unreadable)} do not "
                         f"decode, {len(misfit)} have a mask of another size than the image); is this the archive?")
    return copied, left_out + misfit, unreadable


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.exit("usage: python -m guidedlabelling.datasets.saliency_sets SRC DST")
    try:
        n, unpaired, unreadable = arrange(*args)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"{args[1]}: {n} images with masks" + (f"; left out {len(unpaired)} images without a fitting mask: "
                                                  f"{', '.join(unpaired[:5])}" if unpaired else ""))
    if unreadable:
        print(f"left out {len(unreadable)} image/mask pairs that do not decode: {', '.join(unreadable[:5])}")


if __name__ == "__main__":
    main()
