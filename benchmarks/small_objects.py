#!/usr/bin/env python
"""A check set of photos whose objects are small: MSRC objects pasted, at a few percent of the frame, into DAVIS
scenes whose own object is inpainted away. Written as own data (images/, tags.csv with a split column, masks/)
for `./script.py --config msrc --images DIR/images --tags DIR/tags.csv --masks DIR/masks`.

Objects of the check set's train split come from MSRC train, those of its val split from MSRC val; backgrounds
from the DAVIS scenes the msrc preset holds out of saliency training (so its saliency net never saw them).
"""
import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage

from guidedlabelling.datasets import VOCDataset
from guidedlabelling.io import IGNORE
from guidedlabelling.saliency_samples import remove_object

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
    """The object scaled to `share` of the frame's area, at a random place fully inside the frame."""
    scale = np.sqrt(share * img.shape[0] * img.shape[1] / obj_mask.sum())
    h, w = (max(2, round(n * scale)) for n in obj_mask.shape)
    obj = cv2.resize(obj, (w, h), interpolation=cv2.INTER_AREA)
    obj_mask = cv2.resize(obj_mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    y, x = rng.integers(0, img.shape[0] - h + 1), rng.integers(0, img.shape[1] - w + 1)
    img[y:y + h, x:x + w][obj_mask] = obj[obj_mask]
    label[y:y + h, x:x + w][obj_mask] = value


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--msrc", type=Path, default=SHARED / "msrc_things")
    p.add_argument("--davis", type=Path, default=SHARED / "davis_saliency")
    p.add_argument("--classes", default="cow,car,bird,sheep")
    p.add_argument("--train", type=int, default=160)
    p.add_argument("--val", type=int, default=60)
    p.add_argument("--share", default="0.01,0.08", help="object area as a share of the frame: uniform in [lo, hi]")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    lo, hi = map(float, args.share.split(","))
    names = sorted(args.classes.split(","))  # own data's class values: the sorted tag names (datasets.OwnDataset)
    scenes = list(backgrounds(args.davis))
    rows = []
    for split, count in (("train", args.train), ("val", args.val)):
        data = VOCDataset(args.msrc, split)
        values = [data.classes.index(n) for n in names]
        pool = objects(data, values)
        for k in range(count):
            img, label = scenes[rng.integers(len(scenes))].copy(), np.zeros(SIZE, np.uint8)
            for _ in range(rng.integers(1, 3)):
                c, obj, mask = pool[rng.integers(len(pool))]
                paste(img, label, obj, mask, names.index(data.classes[c]) + 1, rng.uniform(lo, hi), rng)
            image_id = f"{split}{k:03d}"
            for sub, array in (("images", img), ("masks", label)):
                (args.out / sub).mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(args.out / sub / f"{image_id}.png")
            tags = " ".join(names[v - 1] for v in sorted(set(np.unique(label)) - {0, IGNORE}))
            rows.append(f"{image_id}.png,{tags},{split}")
    missing = set(names) - {t for r in rows if r.endswith(",train") for t in r.split(",")[1].split()}
    if missing:  # own data numbers the tags that occur, and needs each in a training image
        raise SystemExit(f"no training image shows {', '.join(sorted(missing))}; make more images (--train)")
    (args.out / "tags.csv").write_text("image,tags,split\n" + "\n".join(rows) + "\n")
    print(f"wrote {len(rows)} images to {args.out}")


if __name__ == "__main__":
    main()
