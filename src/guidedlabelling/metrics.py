"""Confusion matrix and IoU (spec section 7)."""
import numpy as np

IGNORE = 255


def confusion(gt, pred, num_classes):
    """Confusion matrix [gt, pred] over pixels whose ground truth is not void (255)."""
    valid = gt != IGNORE
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
    """Mean over the classes that occur (in GT or prediction); all 21 on VOC val."""
    return float(np.nanmean(iou_table(conf)))


def report(conf, class_names):
    """The JSON-able evaluation: confusion matrix, per-class IoU and mIoU (percent)."""
    ious = iou_table(conf)
    return {"mIoU": 100 * mean_iou(conf),
            "per_class_IoU": {n: (None if np.isnan(v) else 100 * float(v)) for n, v in zip(class_names, ious)},
            "pixel_accuracy": 100 * float(np.trace(conf) / max(1, np.sum(conf))),
            "confusion": np.asarray(conf).tolist(), "classes": list(class_names)}


def format_table(rep):
    lines = [f"{'class':<16}{'IoU':>8}"]
    for name, v in rep["per_class_IoU"].items():
        lines.append(f"{name:<16}{'  n/a' if v is None else f'{v:8.1f}'}")
    lines.append(f"{'mIoU':<16}{rep['mIoU']:8.1f}")
    return "\n".join(lines)
