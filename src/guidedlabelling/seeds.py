"""Seeds from class heatmaps (the release's heatmap2segconf, docs/method.md section 2).

SeedRule is the one place the rule lives: guide generation, seed evaluation (the scores its threshold grid
thresholds; the threshold it reports is its own eval_seedthres, the paper's 20), the pictures, the report and the
per-class diagnostics all take the rule a run's settings build (SeedRule.of), so a change to it, or a setting added
to it, reaches every one of them.
"""
from dataclasses import dataclass

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


@dataclass(frozen=True)
class SeedRule:
    """The paper's seed rule: a pixel is a seed of its heatmap2segconf label where its confidence, in percent,
    is at least `seedthres` (guide_labels.seedthres, 20); background 0 elsewhere (a NaN confidence passes nothing)."""
    seedthres: float = 20

    @classmethod
    def of(cls, cfg):
        """The rule of a run's settings."""
        return cls(cfg["guide_labels"]["seedthres"])

    @staticmethod
    def scores(heatmap, classes):
        """(label, score) per pixel: the score in percent, the unit thresholds are given in."""
        label, conf = heatmap2segconf(heatmap, classes)
        return label, conf * 100

    def labels(self, heatmap, classes):
        """The seed label map at seedthres."""
        return self.labels_at(heatmap, classes, self.seedthres)[0]

    def labels_at(self, heatmap, classes, *thresholds):
        """The seed label maps at each of these thresholds (percent), from one computation of the scores."""
        label, score = self.scores(heatmap, classes)
        with np.errstate(invalid="ignore"):
            return [np.where(score >= t, label, 0).astype(np.uint8) for t in thresholds]
