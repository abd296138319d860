"""Guide labels: fusion of seeds and saliency (docs/method.md section 4).

The rules are RULES, name: Rule (a new rule is one entry there; `--set guiderule=NAME` then chooses it). G2 works on
label images and bincounts, so its cost is the pixels times the saliency components (a handful: each covers
SALIENCY_MIN_FRACTION of the image or more), not (#saliency components x #seed components x pixels) as in the
release.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage

from .crf import dense_crf
from .io import IGNORE
from .seeds import heatmap2segconf

DROPPED = ("none", "seeds")
UNSURE = ("none", "void")
UNUSED = ("keep", "absent")
EIGHT = np.ones((3, 3), bool)
SEED_MIN_PIXELS = 25
SALIENCY_MIN_FRACTION = 0.01


def components(mask, min_size):
    """8-connected components of `mask` with at least min_size pixels, labelled 1..n (0 elsewhere). As the
    release's ResearchTools image/cc.py, a component within one row or one column (a bounding box of zero
    area) is dropped too, whatever its size."""
    lab, n = ndimage.label(mask, structure=EIGHT)
    keep = np.bincount(lab.ravel(), minlength=n + 1) >= min_size
    boxes = ndimage.find_objects(lab, n)
    keep[1:] &= np.array([box[0].stop - box[0].start > 1 and box[1].stop - box[1].start > 1 for box in boxes], bool)
    keep[0] = False
    remap = np.zeros(n + 1, np.int32)
    remap[keep] = np.arange(1, keep.sum() + 1)
    return remap[lab], int(keep.sum())


def seed_components(seed):
    """Components of every seed class (background 0 included) in one label image + each one's class."""
    out = np.zeros(seed.shape, np.int32)
    comp_class = [0]
    for value in np.unique(seed):
        lab, n = components(seed == value, SEED_MIN_PIXELS)
        out[lab > 0] = lab[lab > 0] + len(comp_class) - 1
        comp_class += [int(value)] * n
    return out, np.array(comp_class)


def split_energy(seed, classes):
    """The unary energy [len(classes), H, W] by which G2's CRF splits a component among `classes`: minus the blurred
    seed masks."""
    return -np.stack([ndimage.gaussian_filter(np.clip((seed == c).astype(np.float32), 0.001, 0.999), 10)
                      for c in classes])


def split_by_crf(image, seed, classes, crf_backend="torch"):
    """Per-pixel argmax over `classes` of a dense CRF of split_energy."""
    return np.asarray(classes)[dense_crf(image, split_energy(seed, classes), "deeplab", backend=crf_backend).argmax(0)]


def grey_level(percent):
    """A saliency threshold given in percent of 255 (salthres, unsure_saliency) as a level of the 8-bit maps."""
    return percent / 100 * 255


def g2(image, seed, salient, crf_backend="torch"):
    """Rule G2: each saliency component takes the one class whose seeds touch it, is split by a CRF
    among several, or stays unassigned; unused seed components keep their class; the rest is background."""
    h, w = seed.shape
    sal, n_sal = components(salient, SALIENCY_MIN_FRACTION * h * w)
    comp, comp_class = seed_components(seed)
    touch = np.bincount(sal.ravel().astype(np.int64) * len(comp_class) + comp.ravel(),
                        minlength=(n_sal + 1) * len(comp_class)).reshape(n_sal + 1, len(comp_class)) > 0
    touch[0, :] = False
    touch[:, 0] = False
    out = np.full((h, w), -1, np.int32)
    splits = {}  # the CRF runs on the whole image: components touched by the same classes share its labels
    for s in range(1, n_sal + 1):
        classes = tuple(sorted({int(c) for c in comp_class[touch[s]] if c != 0}))
        region = sal == s
        if len(classes) == 1:
            out[region] = classes[0]
        elif len(classes) > 1:
            if classes not in splits:
                splits[classes] = split_by_crf(image, seed, classes, crf_backend)
            out[region] = splits[classes][region]
    unused = ~touch.any(0)
    unused[0] = False
    keep = unused[comp] & (out < 0)
    out[keep] = comp_class[comp[keep]]
    out[out < 0] = 0
    return out.astype(np.uint8)


def saliency_only(heatmap, classes, salient):
    """Rule 'sal': salient pixels take the class of the heatmap argmax (the image's class when it has one)."""
    label, _ = heatmap2segconf(heatmap, classes)
    return np.where(salient, label, 0).astype(np.uint8)


def after_rule(g):
    """Whether an option of the guide_labels settings `g` changes the rule's labels (they are then kept in rule/)."""
    return g["dropped"] == "seeds" or g["unsure"] == "void" or g["unused"] == "absent"


def dropped(seed, guide, c, share):
    """Whether the guide labels keep under `share` of class c's seed pixels (c has seeds)."""
    mask = seed == c
    return mask.any() and np.count_nonzero(guide[mask] == c) < share * np.count_nonzero(mask)


def keep_dropped(guide, seed, classes, share):
    """Option 'dropped seeds' (not the paper's): a tagged class the fusion dropped, keeping under `share` of its
    seed pixels, gets its seed pixels back where the guide labels have background."""
    out = guide.copy()
    for c in classes:
        if dropped(seed, guide, c, share):
            out[(seed == c) & (guide == 0)] = c
    return out


def void_unsure(guide, core_label, weakly_salient, classes):
    """Option 'unsure void' (not the paper's): a pixel the labels give to background is void (255, the segmenter is
    not taught it) where it lies in the seed core of one of `classes` (core_label: the seeds at a higher threshold)
    and saliency marks it at least weakly."""
    unsure = (guide == 0) & np.isin(core_label, classes) & weakly_salient
    return np.where(unsure, IGNORE, guide).astype(np.uint8)


def drop_unused(guide, salient, kept=()):
    """Option 'unused absent' (not the paper's): a class that any pixel of a saliency component (G2's: at least
    SALIENCY_MIN_FRACTION of the image) has, however small its share of a CRF split, loses its pixels outside the
    saliency components, so G2's unused seed components keep their class only for a class saliency missed in the
    image. The classes `kept` (those dropped seeds applies to) keep theirs in every image."""
    h, w = guide.shape
    inside = components(salient, SALIENCY_MIN_FRACTION * h * w)[0] > 0
    found = np.setdiff1d(guide[inside], [0, IGNORE, *kept])
    return np.where(np.isin(guide, found) & ~inside, 0, guide).astype(np.uint8)


def oracle_foreground(gt):
    """Rule 'salor''s saliency mask: the ground truth's foreground (neither background nor void)."""
    return (gt > 0) & (gt != IGNORE)


@dataclass(frozen=True)
class Rule:
    """A guide rule: labels(image, seed, salient, heatmap, classes, gt, crf_backend) -> uint8 label map (each rule
    takes the inputs it needs by keyword; gt only where `oracle`), what -h says of it, whether it leaves G2's unused
    seed components (guide_labels.unused applies to them) and whether it reads the ground truth."""
    labels: Callable
    about: str
    seed_components: bool = False
    oracle: bool = False


RULES = {
    "G2": Rule(lambda image, seed, salient, crf_backend, **_: g2(image, seed, salient, crf_backend),
               "the paper's rule", seed_components=True),
    "salor": Rule(lambda image, seed, gt, crf_backend, **_: g2(image, seed, oracle_foreground(gt), crf_backend),
                  "G2 with the ground truth's foreground for saliency: an oracle", seed_components=True, oracle=True),
    "seed": Rule(lambda seed, **_: seed, "seeds only"),
    "sal": Rule(lambda heatmap, classes, salient, **_: saliency_only(heatmap, classes, salient), "saliency only"),
}


def guide_labels(rule, image, seed, salient, heatmap=None, classes=None, gt=None, crf_backend="torch"):
    """The labels of rule `rule` (a name of RULES)."""
    return RULES[rule].labels(image=image, seed=seed, salient=salient, heatmap=heatmap, classes=classes, gt=gt,
                              crf_backend=crf_backend)
