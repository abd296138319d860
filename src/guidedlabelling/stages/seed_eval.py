"""Seed evaluation: precision and recall of the seeds over confidence thresholds, and mIoU (docs/method.md
section 2, the paper's seed table). Reads the seed test's heatmaps of the split --seed_split names."""
import numpy as np

from ..checks import PERCENT, between
from ..io import InputError, atomic_path, load_heatmap_mat, save_json
from ..metrics import cell, seed_curve, seed_histogram
from ..pipeline import command
from ..reads import Reads
from ..seeds import heatmap2segconf
from .seed_test import split_of

OPTIONS = {
    "eval_seedthres": (20, "threshold (percent) whose precision, recall and mIoU are reported (the paper's "
                           "seedthres)"),
    "eval_thres_step": (1, "the curve's thresholds: 0..100 percent in steps of this"),
}
CHECKS = {"eval_seedthres": PERCENT, "eval_thres_step": between(1, 100)}


def add_arguments(parser):
    parser.add_argument("--seed_dir", help="folder of <id>.mat seed heatmaps (default: the seed test output)")


def reads(cfg, given):
    return Reads(splits=(split_of(cfg),), ground_truth=True, upstream={"seed_test": given.get("seed_dir")})


def threshold_grid(step, reported):
    """0..100 percent in `step`s, plus the reported threshold (the paper's seedthres) wherever it falls.

    The release's grid also ran below 0 (CAMs can be negative); here such pixels are background at every
    threshold, as they are in the seeds at seedthres >= 0.
    """
    return np.union1d(np.arange(0, 100, step), [100, reported])


def image_histogram(data, i, folder, grid):
    """One image's seed histogram (metrics.seed_histogram) from its heatmap file."""
    path = folder / f"{data.items[i].id}.mat"
    if not path.exists():
        raise InputError(f"{path}: missing; run {command('seed_test')} for split {data.split} first "
                         "(--seed_split names the split)")
    heat, hw = load_heatmap_mat(path)
    classes, gt = data.image_classes(i), data.label(i)
    if heat.shape[0] != len(classes) or hw != gt.shape:
        raise InputError(f"{path}: {heat.shape[0]} maps of size {hw} for {len(classes)} classes of size {gt.shape}; "
                         f"rerun {command('seed_test')} for split {data.split}")
    label, conf = heatmap2segconf(heat, classes)
    return seed_histogram(gt, label, conf, grid, data.num_classes)


def run(stage):
    """results.json (the whole curve, per class), pr_curve.png, and the table in the log."""
    cfg, out = stage.cfg, stage.out
    folder = stage.input_dir("seed_test")
    data = stage.dataset(split_of(cfg))
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


def format_curve(curve, reported):
    """Every 10th percent and the reported threshold."""
    lines = [f"{'thres %':>8}{'fg prec':>9}{'fg rec':>9}{'bg prec':>9}{'bg rec':>9}{'mIoU':>9}"]
    for p in curve:
        if p["threshold"] % 10 == 0 or p["threshold"] == reported:
            mark = "*" if p["threshold"] == reported else " "
            lines.append(f"{p['threshold']:7g}{mark}" + "".join(
                cell(p[k]) for k in ("fg_precision", "fg_recall", "bg_precision", "bg_recall", "mIoU")))
    return "\n".join(lines)


def format_classes(point):
    lines = [f"{'class':<16}{'prec':>9}{'rec':>9}{'IoU':>9}"]
    for name, v in point["per_class"].items():
        lines.append(f"{name:<16}" + "".join(cell(v[k]) for k in ("precision", "recall", "IoU")))
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
