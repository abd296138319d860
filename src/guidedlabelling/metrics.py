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


def saliency_scores(pairs, beta2=0.3):
    """MAE and max F-measure (beta^2 = 0.3, the saliency benchmarks' choice) of 8-bit maps vs binary masks.

    Precision and recall are averaged over images at each of the 256 thresholds, then F is maximised.
    """
    prec, rec, mae = np.zeros(256), np.zeros(256), 0.0
    for sal, mask in pairs:
        pos = np.bincount(sal[mask].ravel(), minlength=256)[::-1].cumsum()[::-1]     # fg pixels >= t
        allp = np.bincount(sal.ravel(), minlength=256)[::-1].cumsum()[::-1]          # pixels >= t
        prec += pos / np.maximum(allp, 1)
        rec += pos / max(mask.sum(), 1)
        mae += np.abs(sal / 255.0 - mask).mean()
    n = max(len(pairs), 1)
    prec, rec = prec / n, rec / n
    f = (1 + beta2) * prec * rec / np.maximum(beta2 * prec + rec, 1e-12)
    return {"MAE": mae / n, "max_F": float(f.max()), "images": len(pairs)}
