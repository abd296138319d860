#!/usr/bin/env python
"""A check set of photos whose objects are small: MSRC objects pasted, at a few percent of the frame, into DAVIS
scenes whose own object is inpainted away. Written as own data (images/, tags.csv with a split column, masks/)
for `./script.py --config msrc --images DIR/images --tags DIR/tags.csv --masks DIR/masks`.

Objects of the check set's train split come from MSRC train, those of its val split from MSRC val; backgrounds
from the DAVIS scenes the msrc preset holds out of saliency training (so its saliency net never saw them).
Written into a temporary folder beside DIR that becomes DIR once whole: a run cut short or refused leaves no DIR.
"""
import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage

from guidedlabelling.checks import POSITIVE, argument
from guidedlabelling.cli import run
from guidedlabelling.datasets import VOCDataset
from guidedlabelling.errors import InputError, Parser, listed
from guidedlabelling.io import IGNORE
from guidedlabelling.saliency_samples import remove_object

from script_errors import output_folder, whole_folder   # benchmarks/, this script's folder

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data beside the project, from anywhere

HOLDOUT_SCENES = ("blackswan", "car-roundabout", "dance-twirl", "soapbox")
SIZE = (360, 480)  # h, w: the photos of the set the issue describes


def objects(data, classes, min_pixels=400):
    """(class value, RGB crop, boolean mask crop) of every connected object of `classes` in `data`."""
    found = []
    for i in range(len(data)):
        label = data.label(i)
        for c in set(data.image_classes(i)) & set(classes):
            parts, n = ndimage.label(label == c)
            for k, box in enumerate(ndimage.find_objects(parts), 1):
                mask = parts[box] == k
                if mask.sum() >= min_pixels:
                    found.append((c, data.image(i)[box], mask))
    return found


def backgrounds(davis):
    """DAVIS frames of the held-out scenes, object inpainted away, centre-cropped to SIZE."""
    frames = sorted(p for p in (davis / "images").glob("*.jpg") if p.stem.rsplit("_", 1)[0] in HOLDOUT_SCENES)
    if not frames:
        raise InputError(f"{davis / 'images'}: no frame of the scenes {', '.join(HOLDOUT_SCENES)}; point --davis at "
                         "the davis_saliency folder of ../shared/data")
    for path in frames:
        img = np.asarray(Image.open(path).convert("RGB"))
        mask = (np.asarray(Image.open(davis / "masks" / f"{path.stem}.png")) > 127).astype(np.uint8)
        img = remove_object(img, mask)
        h, w = img.shape[:2]
        scale = max(SIZE[0] / h, SIZE[1] / w)
        img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        y, x = (img.shape[0] - SIZE[0]) // 2, (img.shape[1] - SIZE[1]) // 2
        yield img[y:y + SIZE[0], x:x + SIZE[1]]


def paste(img, label, obj, obj_mask, value, share, rng):
    """The object scaled to `share` of the frame's area (less where its box would not fit), at a random place
    fully inside the frame."""
    scale = min(np.sqrt(share * img.shape[0] * img.shape[1] / obj_mask.sum()),
                img.shape[0] / obj_mask.shape[0], img.shape[1] / obj_mask.shape[1])
    h, w = (max(2, round(n * scale)) for n in obj_mask.shape)
    obj = cv2.resize(obj, (w, h), interpolation=cv2.INTER_AREA)
    obj_mask = cv2.resize(obj_mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    y, x = rng.integers(0, img.shape[0] - h + 1), rng.integers(0, img.shape[1] - w + 1)
    img[y:y + h, x:x + w][obj_mask] = obj[obj_mask]
    label[y:y + h, x:x + w][obj_mask] = value


def shares(text):
    """'lo,hi': two shares of the frame's area, 0 < lo <= hi <= 1."""
    try:
        lo, hi = map(float, text.split(","))
        if 0 < lo <= hi <= 1:
            return lo, hi
    except ValueError:  # not two numbers
        pass
    raise argparse.ArgumentTypeError(f"{text}: write two shares lo,hi with 0 < lo <= hi <= 1, as 0.01,0.08")


def class_objects(msrc, split, names):
    """MSRC's `split` and its objects of the classes `names`, or the error that it has none of them."""
    if not (msrc / "ImageSets" / "Segmentation" / f"{split}.txt").is_file():
        raise InputError(f"{msrc}: no MSRC {split} split (ImageSets/Segmentation/{split}.txt); point --msrc at the "
                         "msrc_things folder of ../shared/data")
    data = VOCDataset(msrc, split)
    unknown = [name for name in names if name not in data.classes[1:]]
    if unknown:
        raise InputError(f"--classes {listed(unknown)}: not a class of {msrc}; choose among "
                         f"{', '.join(data.classes[1:])}")
    pool = objects(data, [data.classes.index(n) for n in names])
    if not pool:
        raise InputError(f"{msrc} {split}: no object of {listed(names, 'or')} of 400 pixels or more; choose other "
                         "--classes")
    return data, pool


def main(argv=None):
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--msrc", type=Path, default=SHARED / "msrc_things")
    p.add_argument("--davis", type=Path, default=SHARED / "davis_saliency")
    p.add_argument("--classes", default="cow,car,bird,sheep")
    p.add_argument("--train", type=argument(int, POSITIVE), default=160)
    p.add_argument("--val", type=argument(int, POSITIVE), default=60)
    p.add_argument("--share", type=shares, default="0.01,0.08",
                   help="object area as a share of the frame: uniform in [lo, hi]")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    names = sorted(args.classes.split(","))  # own data's class values: the sorted tag names (datasets.OwnDataset)
    splits = {split: class_objects(args.msrc, split, names) for split in ("train", "val")}
    scenes = list(backgrounds(args.davis))
    with output_folder("OUT"), whole_folder(args.out) as out:
        write(out, args, names, splits, scenes, rng)
    print(f"wrote {args.train + args.val} images to {args.out}")


def write(out, args, names, splits, scenes, rng):
    """The check set into `out`: images/, masks/ and tags.csv."""
    rows = []
    for split, count in (("train", args.train), ("val", args.val)):
        data, pool = splits[split]
        for k in range(count):
            img, label = scenes[rng.integers(len(scenes))].copy(), np.zeros(SIZE, np.uint8)
            for _ in range(rng.integers(1, 3)):
                c, obj, mask = pool[rng.integers(len(pool))]
                paste(img, label, obj, mask, names.index(data.classes[c]) + 1, rng.uniform(*args.share), rng)
            image_id = f"{split}{k:03d}"
            for sub, array in (("images", img), ("masks", label)):
                (out / sub).mkdir(exist_ok=True)
                Image.fromarray(array).save(out / sub / f"{image_id}.png")
            tags = " ".join(names[v - 1] for v in sorted(set(np.unique(label)) - {0, IGNORE}))
            rows.append(f"{image_id}.png,{tags},{split}")
    missing = set(names) - {t for r in rows if r.endswith(",train") for t in r.split(",")[1].split()}
    if missing:  # own data numbers the tags that occur, and needs each in a training image
        raise InputError(f"no training image shows {listed(sorted(missing))}; make more images (--train)")
    (out / "tags.csv").write_text("image,tags,split\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    run("__main__")  # bad input, Ctrl-C: one line
