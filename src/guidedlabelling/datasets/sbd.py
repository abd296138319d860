"""PASCAL VOC 2012 + SBD: SegmentationClassAug and the train_aug list, as the release uses them.

    python -m guidedlabelling.datasets.sbd SBD_DATASET VOC2012   (what downloads.sh --sbd runs)
"""
import sys
from pathlib import Path

import numpy as np
import scipy.io

from ..io import InputError, load_label_png, save_gray_png


def sbd_label(mat_path):
    """Class indices of an SBD cls/<id>.mat file (GTcls.Segmentation)."""
    try:
        gt = scipy.io.loadmat(mat_path, squeeze_me=True, struct_as_record=False)["GTcls"]
        return np.asarray(gt.Segmentation, np.uint8)
    except (OSError, KeyError, ValueError, AttributeError) as e:
        raise InputError(f"{mat_path}: not an SBD cls file ({e}); re-download benchmark.tgz") from None


def build_train_aug(sbd_root, voc_root):
    """Write SegmentationClassAug/<id>.png (single channel, SBD labels, VOC's own where it has one)
    and ImageSets/Segmentation/train_aug.txt = (VOC train + SBD train + SBD val) minus VOC val."""
    sbd_root, voc_root = Path(sbd_root), Path(voc_root)
    lists = voc_root / "ImageSets" / "Segmentation"
    read = lambda p: [x for x in p.read_text().split() if x] if p.exists() else []  # noqa: E731
    val = set(read(lists / "val.txt"))
    voc_train = read(lists / "train.txt")
    sbd_ids = read(sbd_root / "train.txt") + read(sbd_root / "val.txt")
    ids = sorted(set(voc_train + sbd_ids) - val)
    if not ids:
        raise InputError(f"{lists}: no VOC or SBD ids found; run ./downloads.sh --voc --sbd")
    out = voc_root / "SegmentationClassAug"
    for i in ids + sorted(val):
        target = out / f"{i}.png"
        if target.exists():
            continue
        voc_png = voc_root / "SegmentationClass" / f"{i}.png"
        if voc_png.exists():
            save_gray_png(target, load_label_png(voc_png))
        else:
            save_gray_png(target, sbd_label(sbd_root / "cls" / f"{i}.mat"))
    (lists / "train_aug.txt").write_text("\n".join(ids) + "\n")
    return ids


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m guidedlabelling.datasets.sbd SBD_DATASET_FOLDER VOC2012_FOLDER")
    try:
        print(f"train_aug: {len(build_train_aug(*sys.argv[1:]))} images")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
