"""MSRC photos with unaries built from their ground truth, for comparing the CRF backends (tests/test_crf.py,
benchmarks/bench_crf.py): segmenter-like softmax unaries and G2-style split unaries."""
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from guidedlabelling import crf
from guidedlabelling.errors import InputError
from guidedlabelling.guide_rules import split_energy

MSRC = Path(__file__).resolve().parents[2] / "shared" / "data" / "msrc_things"
MSRC_LABELS = 16


def has_pydensecrf():
    try:
        import pydensecrf.densecrf  # noqa: F401
    except ImportError:
        return False
    return True


def agreement(images, unaries, params="deeplab"):
    """Compare the torch backend (on the CPU) with pydensecrf2, both at crf.ITERATIONS, on pairs (HxWx3 uint8
    image, [L, H, W] unary energy).

    Returns a dict: images, label_agreement (fraction of all pixels with the same argmax; 0 of no pixel), worst_image
    (lowest per-image agreement), differing_pixels, max_abs_diff and mean_abs_diff of the
    marginals, pixels.
    """
    same = pixels = 0
    worst, max_diff, sum_diff, n_values = 1.0, 0.0, 0.0, 0
    for image, unary in zip(images, unaries):
        ref = crf.pydensecrf_marginals(image, unary, params)
        ours = crf.dense_crf(image, unary, params)
        equal = ref.argmax(0) == ours.argmax(0)
        same, pixels = same + int(equal.sum()), pixels + equal.size
        worst = min(worst, float(equal.mean()))
        diff = np.abs(ref - ours)
        max_diff, sum_diff = max(max_diff, float(diff.max())), sum_diff + float(diff.sum())
        n_values += diff.size
    return dict(images=len(images), label_agreement=same / max(pixels, 1), differing_pixels=pixels - same,
                worst_image=worst, max_abs_diff=max_diff, mean_abs_diff=sum_diff / max(n_values, 1), pixels=pixels)


# ----------------------------------------------------------------------------- MSRC test material
def load_msrc(count, root=MSRC):
    """`count` MSRC photos evenly spaced in name order, as (HxWx3 uint8 RGB, HxW labels).

    Void (255) becomes background 0: in MSRC-things it is the unlabelled background of many photos
    and thin boundary strips in the others, where a segmenter would predict background too.
    """
    names = sorted((Path(root) / "JPEGImages").glob("*.jpg"))
    if not names:  # ../shared/data absent: no photo to pick (an IndexError in bench_crf.py)
        raise InputError(f"{Path(root) / 'JPEGImages'}: no MSRC photo (*.jpg); put ../shared/data beside the project")
    picked = [names[i] for i in np.linspace(0, len(names) - 1, min(count, len(names))).round().astype(int)]
    out = []
    for name in picked:
        image = np.array(Image.open(name).convert("RGB"))
        gt = np.array(Image.open(Path(root) / "SegmentationClass" / f"{name.stem}.png"))
        out.append((image, np.where(gt == 255, 0, gt).astype(np.uint8)))
    return out


def softmax_unary(gt, rng, n_labels=MSRC_LABELS):
    """-log p with p = softmax(3 * blurred one-hot(gt) + blob noise + pixel noise): a segmenter-like
    softmax, soft at boundaries and wrong in patches (its argmax is ~88% right on MSRC)."""
    onehot = (gt[None] == np.arange(n_labels)[:, None, None]).astype(np.float32)
    logits = 3 * ndimage.gaussian_filter(onehot, (0, 3, 3))
    blobs = ndimage.gaussian_filter(rng.normal(size=logits.shape), (0, 8, 8))
    logits += (0.8 / blobs.std() * blobs).astype(np.float32)
    logits += 0.5 * rng.normal(size=logits.shape).astype(np.float32)
    probs = np.exp(logits - logits.max(0))
    probs /= probs.sum(0)
    return -np.log(np.clip(probs, 1e-8, 1.0)).astype(np.float32)


def g2_unary(gt, rng):
    """The G2 split unary (guide_rules.split_by_crf): minus the blurred seed mask of each class.

    Seeds are partial pieces of each ground-truth class region: eroded, then cut by a random smooth
    field. Classes: those present (background included), at most 4. Returns None for single-class images.
    """
    classes = list(np.unique(gt))[:4]
    if len(classes) < 2:
        return None
    seed = np.full(gt.shape, 255, np.uint8)
    for c in classes:
        region = ndimage.binary_erosion(gt == c, iterations=int(rng.integers(3, 12)))
        cut = ndimage.gaussian_filter(rng.normal(size=gt.shape), 20) > rng.uniform(-0.02, 0.01)
        seed[region & cut] = c
    return split_energy(seed, classes)


def msrc_cases(kind, count, seed=0):
    """(images, unaries) of `kind` "softmax" or "g2" for the first `count` usable MSRC photos."""
    rng = np.random.default_rng(seed)
    images, unaries = [], []
    for image, gt in load_msrc(count if kind == "softmax" else count + count // 4 + 4):
        unary = softmax_unary(gt, rng) if kind == "softmax" else g2_unary(gt, rng)
        if unary is not None and len(images) < count:
            images.append(image)
            unaries.append(unary)
    return images, unaries


