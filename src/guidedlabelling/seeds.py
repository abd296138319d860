"""Seeds from class heatmaps (the release's heatmap2segconf, docs/method.md section 2)."""
import numpy as np


def heatmap2segconf(heatmap, classes):
    """Per-pixel (label, confidence): each class map divided by its own maximum, max over classes.

    heatmap [n, H, W] holds one map per present class, in the order of `classes` (1-based ids). As the
    release's lib/seedtools/heatmap.py, a maximum <= 0 is not guarded against: a negative maximum turns its map
    over (values >= 1: that class wins wherever the others are below 1), a zero one gives NaN, which wins the
    argmax and passes no threshold.
    """
    h, w = heatmap.shape[1:]
    if len(classes) == 0:
        return np.zeros((h, w), np.uint8), np.zeros((h, w), np.float32)
    maxima = heatmap.reshape(len(classes), -1).max(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        normed = heatmap / maxima[:, None, None]
    best = normed.argmax(0)
    return np.asarray(classes, np.uint8)[best], normed.max(0).astype(np.float32)


def seed_labels(heatmap, classes, seedthres=20):
    """Seed = class where confidence*100 >= seedthres, background 0 elsewhere (NaN confidence: background)."""
    label, conf = heatmap2segconf(heatmap, classes)
    with np.errstate(invalid="ignore"):
        return np.where(conf * 100 >= seedthres, label, 0).astype(np.uint8)
