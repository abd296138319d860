"""The seed network's evaluations (spec section 2, the paper's seed table): seed precision/recall over
confidence thresholds with mIoU, and the classifier's mAP. Both read the seed test's output folder."""
import numpy as np
import scipy.io

from .config import seed_test_split
from .io import InputError, atomic_path, load_heatmap_mat, save_json
from .metrics import classifier_report, seed_curve, seed_histogram
from .seeds import heatmap2segconf

AP_VARIANTS = ("voc", "plain")


# ---- seeds ----

def threshold_grid(step, reported):
    """0..100 percent in `step`s, plus the reported threshold (the paper's seedthres) wherever it falls.

    The release's grid also ran below 0 (CAMs can be negative); here such pixels are background at every
    threshold, as they are in the seeds at seedthres >= 0.
    """
    if step <= 0:
        raise InputError(f"--eval_thres_step {step}: must be a positive percentage, e.g. 1")
    return np.union1d(np.arange(0, 100, step), [100, reported])


def image_histogram(data, i, folder, grid):
    """One image's seed histogram (metrics.seed_histogram) from its heatmap file."""
    path = folder / f"{data.items[i].id}.mat"
    if not path.exists():
        raise InputError(f"{path}: missing; run ./src/seed/test.py for split {data.split} first "
                         "(--seed_split names the split)")
    heat, hw = load_heatmap_mat(path)
    classes, gt = data.image_classes(i), data.label(i)
    if heat.shape[0] != len(classes) or hw != gt.shape:
        raise InputError(f"{path}: {heat.shape[0]} maps of size {hw} for {len(classes)} classes of size {gt.shape}; "
                         f"rerun ./src/seed/test.py for split {data.split}")
    label, conf = heatmap2segconf(heat, classes)
    return seed_histogram(gt, label, conf, grid, data.num_classes)


def seed_evaluation(stage, seed_dir=None):
    """results.json (the whole curve, per class), pr_curve.png, and the table in the log."""
    cfg, out = stage.cfg, stage.out
    folder = stage.input_dir("seed_test", seed_dir)
    data = stage.dataset(seed_test_split(cfg))
    reported = cfg["seed_eval"]["eval_seedthres"]
    grid = threshold_grid(cfg["seed_eval"]["eval_thres_step"], reported)
    stage.log.info("seed evaluation on %s: %d images, %d thresholds", data.split, len(data), len(grid))
    curve = seed_curve(sum(image_histogram(data, i, folder, grid) for i in range(len(data))), grid, data.classes)
    at = curve[int(np.searchsorted(grid, reported))]
    best = max(curve, key=lambda p: p["mIoU"])
    summary = {"split": data.split, "images": len(data), "heatmaps": str(folder), "threshold": reported,
               **{k: at[k] for k in ("fg_precision", "fg_recall", "bg_precision", "bg_recall", "mIoU")},
               "best_mIoU": best["mIoU"], "best_threshold": best["threshold"],
               "results": str(out / "results.json"), "plot": str(out / "pr_curve.png")}
    save_json(out / "results.json", dict(summary, at_threshold=at, curve=curve))
    plot_seed_curve(out / "pr_curve.png", curve, at)
    stage.log.info("seeds vs ground truth on %s (* = threshold %s):\n%s\n\nper class at threshold %s:\n%s",
                   data.split, reported, format_curve(curve, reported), reported, format_classes(at))
    stage.finish(summary)


def fmt(value, width=9):
    return f"{'n/a':>{width}}" if value is None else f"{value:{width}.1f}"


def format_curve(curve, reported):
    """Every 10th percent and the reported threshold."""
    lines = [f"{'thres %':>8}{'fg prec':>9}{'fg rec':>9}{'bg prec':>9}{'bg rec':>9}{'mIoU':>9}"]
    for p in curve:
        if p["threshold"] % 10 == 0 or p["threshold"] == reported:
            mark = "*" if p["threshold"] == reported else " "
            lines.append(f"{p['threshold']:7g}{mark}" + "".join(
                fmt(p[k]) for k in ("fg_precision", "fg_recall", "bg_precision", "bg_recall", "mIoU")))
    return "\n".join(lines)


def format_classes(point):
    lines = [f"{'class':<16}{'prec':>9}{'rec':>9}{'IoU':>9}"]
    for name, v in point["per_class"].items():
        lines.append(f"{name:<16}" + "".join(fmt(v[k]) for k in ("precision", "recall", "IoU")))
    return "\n".join(lines)


def plot_seed_curve(path, curve, at):
    """Precision against recall over the thresholds: foreground classes averaged, and background."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 4.6))
    FigureCanvasAgg(fig)
    for ax, part, title in zip(fig.subplots(1, 2), ("fg", "bg"), ("foreground classes, averaged", "background")):
        points = [(p[f"{part}_recall"], p[f"{part}_precision"]) for p in curve
                  if p[f"{part}_recall"] is not None and p[f"{part}_precision"] is not None]
        if points:
            ax.plot(*zip(*points), "k.-", ms=3, label="thresholds 0..100%")
        if at[f"{part}_precision"] is not None:
            ax.plot(at[f"{part}_recall"], at[f"{part}_precision"], "ro", label=f"threshold {at['threshold']:g}%")
        ax.set(xlim=(0, 100), ylim=(0, 100), xlabel="recall %", ylabel="precision %", title=title)
        ax.grid(True)
        ax.legend(loc="best")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


# ---- classifier ----

def load_class_scores(path):
    """cls_res.mat of the seed test: `scores` [N, C-1] and `ids` [N]."""
    if not path.exists():
        raise InputError(f"{path}: missing; run ./src/seed/test.py first (it writes cls_res.mat last)")
    try:
        m = scipy.io.loadmat(path)
        scores, ids = np.atleast_2d(m["scores"]).astype(np.float64), [str(np.ravel(v)[0]) for v in m["ids"].ravel()]
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise InputError(f"{path}: unreadable class scores ({e}); rerun ./src/seed/test.py") from None
    if scores.shape[0] != len(ids):
        raise InputError(f"{path}: {scores.shape[0]} score rows for {len(ids)} ids; rerun ./src/seed/test.py")
    return scores, ids


def image_labels(data, ids, path):
    """[N, C-1] 0/1 image-level labels (from the label PNGs, as in the release) in the order of `ids`."""
    index = {image_id: i for i, image_id in enumerate(data.ids)}
    missing = [image_id for image_id in ids if image_id not in index]
    if missing:
        raise InputError(f"{path}: image {missing[0]} is not in split {data.split} of {data.root}; evaluate with "
                         "the split the scores were made for (--seed_split)")
    return np.stack([data.class_vector(index[image_id]) for image_id in ids])


def classifier_evaluation(stage, seed_dir=None):
    """results.json (per-class AP, mAP) and the table in the log."""
    cfg, out = stage.cfg, stage.out
    variant = cfg["cls_eval"]["ap_variant"]
    if variant not in AP_VARIANTS:
        raise InputError(f"--ap_variant {variant}: use one of {', '.join(AP_VARIANTS)}")
    path = stage.input_dir("seed_test", seed_dir) / "cls_res.mat"
    data = stage.dataset(seed_test_split(cfg))
    scores, ids = load_class_scores(path)
    if scores.shape[1] != data.num_classes - 1:
        raise InputError(f"{path}: scores for {scores.shape[1]} classes, split {data.split} has "
                         f"{data.num_classes - 1}; evaluate with the dataset the scores were made for")
    rep = dict(classifier_report(scores, image_labels(data, ids, path), data.classes[1:], variant), split=data.split)
    save_json(out / "results.json", rep)
    stage.log.info("classifier on %s (%s AP):\n%s", data.split, variant, format_ap(rep))
    stage.finish({k: rep[k] for k in ("mAP", "images", "ap_variant", "split")} | {"results": str(out / "results.json")})


def format_ap(rep):
    lines = [f"{'class':<16}{'AP':>8}"]
    lines += [f"{name:<16}{fmt(ap, 8)}" for name, ap in rep["per_class_AP"].items()]
    return "\n".join(lines + [f"{'mAP':<16}{fmt(rep['mAP'], 8)}"])
