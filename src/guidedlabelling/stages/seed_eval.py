"""Seed evaluation: precision and recall of the seeds over confidence thresholds, and mIoU (docs/method.md
section 2, the paper's seed table). Reads seed_heatmaps' output of the split --seed_split names."""
import numpy as np

from ..checks import PERCENT, between, one_of
from ..io import InputError, atomic_path, load_heatmap_mat, save_json
from ..metrics import cell, release_seed_table, seed_curve, seed_histogram
from ..pipeline import command
from ..reads import Reads
from ..seeds import SeedRule, heatmap2segconf
from .seed_heatmaps import add_split_flag, heatmap_split

OPTIONS = {
    "eval_thresholds": ("release", "release: the release's confidence thresholds (-10..-2 in steps of 1, then -1 "
                                   "to 0.99 in steps of 0.01) and the table it prints; percent: 0..100 percent in "
                                   "steps of eval_thres_step"),
    "eval_seedthres": (20, "threshold (percent) whose precision, recall and mIoU are reported (the paper's "
                           "seedthres)"),
    "eval_thres_step": (1, "percent: the curve's thresholds, 0..100 percent in steps of this"),
}
CHECKS = {"eval_thresholds": one_of("release", "percent"), "eval_seedthres": PERCENT,
          "eval_thres_step": between(1, 100)}
# src/seed/config.py of the release (thresrange), and 1.0, above every clipped confidence: its last row.
RELEASE_THRESHOLDS = np.hstack([np.linspace(-10, -2, 9), np.linspace(-1, -0.01, 100), np.linspace(0, 0.99, 100), 1])


def add_arguments(parser):
    parser.add_argument("--seed_dir", help="folder of <id>.mat seed heatmaps (default: seed_heatmaps' output)")
    add_split_flag(parser)


def reads(cfg, given):
    return Reads(splits=(heatmap_split(cfg),), ground_truth=True, upstream={"seed_heatmaps": given.get("seed_dir")})


def threshold_grid(c):
    """(thresholds, their unit in percent) of the curve: the release's in confidence units (with the reported
    threshold added if it is not one of them), or 0..100 percent in steps plus the reported threshold."""
    reported = c["eval_seedthres"]
    if c["eval_thresholds"] == "release":
        grid = RELEASE_THRESHOLDS
        return (grid if np.isclose(grid, reported / 100).any() else np.union1d(grid, [reported / 100])), 100
    return np.union1d(np.arange(0, 100, c["eval_thres_step"]), [100, reported]), 1


def scores(heat, classes, unit, grid):
    """(label, score) of each pixel in the grid's unit: percent, the scores seeds.SeedRule thresholds (NaN passes
    nothing), or, as the release's eval.py, confidences clipped to the grid's range with NaN at its bottom."""
    if unit == 1:
        return SeedRule.scores(heat, classes)
    label, conf = heatmap2segconf(heat, classes)
    low, high = grid[0], RELEASE_THRESHOLDS[-2]
    return label, np.clip(np.nan_to_num(conf, nan=low), low, high)


def image_histogram(data, i, folder, grid, unit):
    """One image's seed histogram (metrics.seed_histogram) from its heatmap file."""
    path = folder / f"{data.items[i].id}.mat"
    if not path.exists():
        raise InputError(f"{path}: missing; run {command('seed_heatmaps')} for split {data.split} first "
                         "(--seed_split names the split)")
    heat, hw = load_heatmap_mat(path)
    classes, gt = data.image_classes(i), data.label(i)
    if heat.shape[0] != len(classes) or hw != gt.shape:
        raise InputError(f"{path}: {heat.shape[0]} maps of size {hw} for {len(classes)} classes of size {gt.shape}; "
                         f"rerun {command('seed_heatmaps')} for split {data.split}")
    label, value = scores(heat, classes, unit, grid)
    return seed_histogram(gt, label, value, grid, data.num_classes)


def run(stage):
    """results.json (the whole curve, per class), pr_curve.png, and the table in the log."""
    cfg, out = stage.cfg, stage.out
    folder = stage.input_dir("seed_heatmaps")
    data = stage.dataset(heatmap_split(cfg))
    c = cfg["seed_eval"]
    reported = c["eval_seedthres"]
    grid, unit = threshold_grid(c)
    stage.log.info("seed evaluation on %s: %d images, %d thresholds", data.split, len(data), len(grid))
    hist = sum(image_histogram(data, i, folder, grid, unit) for i in range(len(data)))
    curve = seed_curve(hist, grid, data.classes, unit)
    at = curve[int(np.argmin([abs(p["threshold"] - reported) for p in curve]))]
    best = max(curve, key=lambda p: p["mIoU"])
    summary = {"split": data.split, "images": len(data), "heatmaps": str(folder), "threshold": reported,
               **{k: at[k] for k in ("fg_precision", "fg_recall", "bg_precision", "bg_recall", "mIoU")},
               "best_mIoU": best["mIoU"], "best_threshold": best["threshold"],
               "results": str(out / "results.json"), "plot": str(out / "pr_curve.png")}
    if c["eval_thresholds"] == "release":
        summary["release_table"] = release_seed_table(hist)
    save_json(out / "results.json", dict(summary, at_threshold=at, curve=curve))
    plot_seed_curve(out / "pr_curve.png", curve, at)
    stage.log.info("seeds vs ground truth on %s (* = threshold %s):\n%s\n\nper class at threshold %s:\n%s%s",
                   data.split, reported, format_curve(curve, reported), reported, format_classes(at),
                   format_release_table(summary.get("release_table")))
    stage.finish(summary)


def format_release_table(table):
    """The release's printed figures (percent), when its thresholds were used."""
    if not table:
        return ""
    return ("\n\nas the release's eval.py prints them: FG PREC/REC at threshold -8 (its third threshold, where "
            "practically every pixel of a tagged class seeds) " + cell(table["fg_precision"], 0)
            + " /" + cell(table["fg_recall"], 0) + ", BG PREC/REC " + cell(table["bg_precision"], 0) + " /"
            + cell(table["bg_recall"], 0) + ", maximal mIoU " + cell(table["max_mIoU"], 0) + ", mean precision "
            + cell(table["mean_precision"], 0))


def format_curve(curve, reported):
    """Every 10th percent from 0 and the reported threshold."""
    lines = [f"{'thres %':>8}{'fg prec':>9}{'fg rec':>9}{'bg prec':>9}{'bg rec':>9}{'mIoU':>9}"]
    for p in curve:
        t = round(p["threshold"], 6)
        if (t % 10 == 0 and t >= 0) or t == reported:
            mark = "*" if t == reported else " "
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
            ax.plot(*zip(*points), "k.-", ms=3, label="over the thresholds")
        if at[f"{part}_precision"] is not None and at[f"{part}_recall"] is not None:  # None: nothing to measure
            ax.plot(at[f"{part}_recall"], at[f"{part}_precision"], "ro", label=f"threshold {at['threshold']:g}%")
        ax.set(xlim=(0, 100), ylim=(0, 100), xlabel="recall %", ylabel="precision %", title=title)
        ax.grid(True)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
