"""PASCAL VOC 2012 + SBD: SegmentationClassAug and the train_aug list, as the release uses them.

    python -m guidedlabelling.datasets.sbd SBD_DATASET VOC2012   (what downloads.sh --sbd runs)
"""
import os
import sys
from pathlib import Path

import numpy as np
import scipy.io

from ..io import InputError, atomic_path, load_label_png, save_gray_png, text_lines


def sbd_label(mat_path):
    """Class indices of an SBD cls/<id>.mat file (GTcls.Segmentation)."""
    if not Path(mat_path).is_file():
        raise InputError(f"{mat_path}: missing (SBD's lists name it); the download is incomplete: delete the "
                         "unpacked benchmark_RELEASE/ and benchmark.tgz, and rerun ./downloads.sh --sbd")
    try:
        gt = scipy.io.loadmat(mat_path, squeeze_me=True, struct_as_record=False)["GTcls"]
        return np.asarray(gt.Segmentation, np.uint8)
    except (OSError, KeyError, ValueError, AttributeError, IndexError, TypeError, NotImplementedError,
            scipy.io.matlab.MatReadError) as e:   # a file cut short raises MatReadError or IndexError in scipy
        raise InputError(f"{mat_path}: not an SBD cls file ({e or type(e).__name__}); rerun "
                         "./downloads.sh --sbd, which unpacks benchmark.tgz again") from None


def read_ids(path, part):
    """The image ids of a list file; a missing or empty one is an error (train_aug would silently lack its
    images) naming the downloads.sh part that makes it."""
    ids = " ".join(text_lines(path, "re-download it")).split() if path.is_file() else []
    below = path.parent / "dataset" / path.name   # benchmark_RELEASE/ given for benchmark_RELEASE/dataset/
    if not path.exists() and below.is_file():
        raise InputError(f"{path}: missing; SBD's lists are in {below.parent}: pass that folder")
    if not ids:
        raise InputError(f"{path}: {'empty' if path.is_file() else 'missing'}; run ./downloads.sh {part} first (SBD "
                         "needs VOC 2012's lists and labels: --voc, then --sbd)")
    return ids


def build_train_aug(sbd_root, voc_root):
    """Write SegmentationClassAug/<id>.png (single channel, SBD labels, VOC's own where it has one)
    and ImageSets/Segmentation/train_aug.txt = (VOC train + SBD train + SBD val) minus VOC val."""
    sbd_root, voc_root = Path(sbd_root), Path(voc_root)
    lists = voc_root / "ImageSets" / "Segmentation"
    val, voc_train = set(read_ids(lists / "val.txt", "--voc")), read_ids(lists / "train.txt", "--voc")
    sbd_ids = read_ids(sbd_root / "train.txt", "--sbd") + read_ids(sbd_root / "val.txt", "--sbd")
    ids = sorted(set(voc_train + sbd_ids) - val)
    out = voc_root / "SegmentationClassAug"
    for i in ids + sorted(val):
        target, voc_png = out / f"{i}.png", voc_root / "SegmentationClass" / f"{i}.png"
        source = voc_png if voc_png.exists() else sbd_root / "cls" / f"{i}.mat"
        made = source.stat() if source.exists() else None
        if made and target.exists() and target.stat().st_mtime_ns == made.st_mtime_ns:
            continue   # made from it: stamped with its time (a label edited, or put back by tar, since: made again)
        save_gray_png(target, load_label_png(voc_png) if source == voc_png else sbd_label(source))
        os.utime(target, ns=(made.st_atime_ns, made.st_mtime_ns))
    with atomic_path(lists / "train_aug.txt") as tmp:  # a half-written list would read as a shorter train_aug
        tmp.write_text("\n".join(ids) + "\n")
    return ids


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m guidedlabelling.datasets.sbd SBD_DATASET_FOLDER VOC2012_FOLDER")
    try:
        print(f"train_aug: {len(build_train_aug(*sys.argv[1:]))} images")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
