"""Evaluation measures: confusion, IoU (docs/method.md section 7), saliency scores, seed precision/recall curves and
classifier AP (docs/method.md section 2)."""
import numpy as np

from .io import IGNORE


def confusion(gt, pred, num_classes):
    """Confusion matrix [gt, pred] over pixels whose ground truth is not void (255), nor the prediction (guide labels
    may leave pixels void: guide_labels.unsure)."""
    valid = (gt != IGNORE) & (pred != IGNORE)
    idx = gt[valid].astype(np.int64) * num_classes + pred[valid].astype(np.int64)
    return np.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_table(conf):
    """Per-class IoU = TP / (TP + FP + FN); NaN for a class absent from both GT and prediction."""
    conf = np.asarray(conf, np.float64)
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(conf):
    """Mean over the classes that occur (in GT or prediction); all 21 on VOC val. NaN when none occurs (every
    label void), without numpy's empty-slice warning; JSON outputs write it as null."""
    ious = iou_table(conf)
    return float(np.nanmean(ious)) if not np.isnan(ious).all() else float("nan")


def ratio_of(guided, reference):
    """guided / reference mIoU, or None when either is unmeasured (None) or the reference is 0."""
    return guided / reference if guided is not None and reference else None


def report(conf, class_names):
    """The JSON-able evaluation: confusion matrix, per-class IoU, mIoU and pixel accuracy (percent); the accuracy is
    None where no pixel was scored (every mask void or absent), as the mIoU is n/a then, not 0."""
    ious = iou_table(conf)
    scored = np.sum(conf)
    return {"mIoU": 100 * mean_iou(conf),
            "per_class_IoU": {n: (None if np.isnan(v) else 100 * float(v)) for n, v in zip(class_names, ious)},
            "pixel_accuracy": 100 * float(np.trace(conf) / scored) if scored else None,
            "confusion": np.asarray(conf).tolist(), "classes": list(class_names)}


def cell(value, width=9):
    """A number with one decimal, right-aligned in `width`; n/a for None."""
    return f"{'n/a':>{width}}" if value is None else f"{value:{width}.1f}"


def format_table(rep):
    lines = [f"{'class':<16}{'IoU':>8}"]
    for name, v in rep["per_class_IoU"].items():
        lines.append(f"{name:<16}{'  n/a' if v is None else f'{v:8.1f}'}")
    lines.append(f"{'mIoU':<16}{rep['mIoU']:8.1f}")
    return "\n".join(lines)


def saliency_scores(pairs, beta2=0.3):
    """MAE, max F-measure (beta^2 = 0.3), S-measure and max E-measure of 8-bit maps vs boolean object masks,
    computed by pysodmetrics, the salient-object-detection field's reference code, with its conventions:
    each map is min-max normalised to 0..1 first (a map whose minimum is above 0 is stretched); F and E are
    computed per image at each of 256 thresholds, averaged over the images, then maximised. S and E need the
    image's 2-D layout, so they are None when a pair is a flat list of pixels (a split's non-void pixels). A pair
    without pixels (an image whose mask is all void) is left out.
    """
    return mean_scores([image_scores(sal, mask, beta2) for sal, mask in pairs if sal.size])


def image_scores(sal, mask, beta2=0.3):
    """One pair's pysodmetrics results, which saliency_scores averages over the images (as pysodmetrics does):
    MAE, the F curve, and, for a map with its 2-D layout, S and the E curve (else None). Each image scored once
    can then be averaged over several groups of images (mean_scores)."""
    import py_sod_metrics as sod   # here: its import (scikit-learn's) took 1.2 s of every command's start
    measures = {"MAE": sod.MAE(),
                "F": sod.FmeasureV2({"f": sod.FmeasureHandler(with_dynamic=True, with_adaptive=False, beta=beta2)})}
    if sal.ndim == 2:
        measures |= {"S": sod.Smeasure(), "E": sod.Emeasure()}
    for measure in measures.values():
        measure.step(sal, mask.astype(np.uint8) * 255)
    results = {name: measure.get_results() for name, measure in measures.items()}  # means of one image: its own
    return {"MAE": results["MAE"]["mae"], "F": results["F"]["f"]["dynamic"],
            "S": results["S"]["sm"] if "S" in results else None,
            "E": results["E"]["em"]["curve"] if "E" in results else None}


def mean_scores(scores):
    """saliency_scores of images' image_scores: each measure averaged over the images as pysodmetrics averages
    them (np.mean over float64), the curves' maxima taken after."""
    if not scores:
        return {"MAE": None, "max_F": None, "S_measure": None, "max_E": None, "images": 0}

    def mean(name):
        return np.mean(np.array([s[name] for s in scores], np.float64), axis=0)
    frames = all(s["S"] is not None for s in scores)
    return {"MAE": float(mean("MAE")), "max_F": float(mean("F").max()),
            "S_measure": float(mean("S")) if frames else None, "max_E": float(mean("E").max()) if frames else None,
            "images": len(scores)}


# ---- seeds: precision / recall over confidence thresholds (docs/method.md section 2, the paper's seed table) ----

def seed_histogram(gt, label, value, thresholds, num_classes):
    """Pixel counts [T+1, C, C]: (number of thresholds the pixel passes, GT class, seed class).

    A pixel passes threshold t when its confidence `value` >= t (the units are the caller's: percent, as
    seeds.SeedRule tests it, or the release's confidences); a NaN confidence passes none. Void GT pixels
    (255) are not counted, as in the segmentation metric.
    """
    valid = gt != IGNORE
    passed = np.searchsorted(np.asarray(thresholds), np.nan_to_num(value[valid], nan=-np.inf), side="right")
    idx = (passed * num_classes + gt[valid].astype(np.int64)) * num_classes + label[valid].astype(np.int64)
    bins = (len(thresholds) + 1) * num_classes ** 2
    return np.bincount(idx, minlength=bins).reshape(len(thresholds) + 1, num_classes, num_classes)


def confusions_over_thresholds(hist):
    """Confusion matrix at every threshold [T, C, C]: a seed pixel that fails the threshold becomes background."""
    kept = np.cumsum(hist[::-1], 0)[::-1][1:]     # kept[j]: pixels passing threshold j (more than j passed)
    confs = kept.copy()
    confs[:, :, 0] += (hist.sum(0) - kept).sum(2)
    return confs


def precision_recall(conf):
    """Per-class precision TP / predicted and recall TP / ground truth; NaN where the denominator is 0."""
    conf = np.asarray(conf, np.float64)
    tp = np.diag(conf)
    with np.errstate(invalid="ignore", divide="ignore"):
        return tp / conf.sum(0), tp / conf.sum(1)


def nan_to_none(values):
    """JSON-able list: NaN (undefined) becomes None."""
    return [None if np.isnan(v) else float(v) for v in values]


def mean_or_none(values):
    """Mean over the defined (non-NaN) values; None when there is none."""
    values = np.asarray(values, np.float64)
    return float(np.mean(values[~np.isnan(values)])) if (~np.isnan(values)).any() else None


def seed_point(conf, class_names):
    """Precision, recall (foreground = mean over the foreground classes where defined) and mIoU, percent."""
    prec, rec = (100 * v for v in precision_recall(conf))
    iou = 100 * iou_table(conf)
    return {"fg_precision": mean_or_none(prec[1:]), "fg_recall": mean_or_none(rec[1:]),
            "bg_precision": mean_or_none(prec[:1]), "bg_recall": mean_or_none(rec[:1]), "mIoU": 100 * mean_iou(conf),
            "per_class": {n: {"precision": p, "recall": r, "IoU": i} for n, p, r, i in
                          zip(class_names, nan_to_none(prec), nan_to_none(rec), nan_to_none(iou))}}


def seed_curve(hist, thresholds, class_names, percent=1):
    """One point (seed_point) per threshold, in the order of `thresholds` (reported in percent: thresholds
    times `percent`)."""
    return [dict(seed_point(conf, class_names), threshold=round(float(t) * percent, 9))
            for t, conf in zip(thresholds, confusions_over_thresholds(hist))]


def release_seed_table(hist):
    """What the release's src/seed/eval.py prints from the histogram of its thresholds (percent): foreground
    and background precision and recall at its third threshold (-8, practically unthresholded), the best
    mIoU over the thresholds, and its 'mean precision': half the foreground precision at the lowest foreground
    recall above 20% plus half the background precision at the lowest background recall above 80%. Means
    over classes are plain (a class without predictions makes them NaN, as in the release)."""
    prec, rec, iou = np.array([[100 * v for v in (*precision_recall(c), iou_table(c))]
                               for c in confusions_over_thresholds(hist)]).transpose(1, 0, 2)
    fg_prec, fg_rec = prec[:, 1:].mean(1), rec[:, 1:].mean(1)
    fg, bg = np.argsort(fg_rec), np.argsort(rec[:, 0])
    above = fg_prec[fg][fg_rec[fg] > 20], prec[bg, 0][rec[bg, 0] > 80]
    mean_precision = 0.5 * (above[0][0] + above[1][0]) if len(above[0]) and len(above[1]) else float("nan")
    table = {"fg_precision": fg_prec[2], "fg_recall": fg_rec[2], "bg_precision": prec[2, 0], "bg_recall": rec[2, 0],
             "max_mIoU": iou.mean(1).max(), "mean_precision": mean_precision}
    return {k: None if np.isnan(v) else float(v) for k, v in table.items()}


# ---- classifier: average precision per class ----

def average_precision(scores, positive, variant="voc"):
    """AP of one class over images ranked by score; images with equal scores enter the ranking together.

    variant "voc": the release's eval_cls (VOC 2010+): precision replaced by its maximum at any higher
    recall, area under that envelope. "plain": the non-interpolated sum of (R_n - R_{n-1}) P_n, what
    sklearn's average_precision_score computes. NaN when the class has no positive image.
    """
    positive = np.asarray(positive, bool)
    if not positive.any():
        return float("nan")
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    ranked = np.asarray(scores, np.float64)[order]
    group_end = np.r_[ranked[1:] != ranked[:-1], True]
    tp = np.cumsum(positive[order])[group_end]
    precision = tp / (np.flatnonzero(group_end) + 1)
    recall = tp / positive.sum()
    if variant == "voc":
        precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def classifier_report(scores, labels, class_names, variant="voc"):
    """Per-class AP and their mean over the classes with a positive image, percent. labels [N, C]: 1 present,
    -1 absent, 0 'difficult' (VOC's ImageSets/Main lists): as in the release's eval_cls, a difficult image
    counts neither as a true nor as a false positive, which is the AP without it."""
    labels = np.asarray(labels)
    aps = 100 * np.array([average_precision(scores[labels[:, c] != 0, c], labels[labels[:, c] != 0, c] > 0, variant)
                          for c in range(labels.shape[1])])
    return {"mAP": mean_or_none(aps), "per_class_AP": dict(zip(class_names, nan_to_none(aps))),
            "images": int(labels.shape[0]), "ap_variant": variant}
