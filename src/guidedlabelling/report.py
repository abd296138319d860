"""report.html: one self-contained page of a run (inline CSS, images as base64 PNG data URIs, nothing
fetched): the stages' figures from their done.json / results.json, per-class IoU, training loss curves,
evaluation plots, example panels of images and the config. ./script.py writes it at its end."""
import base64
import datetime
import html
import io
from pathlib import Path

import numpy as np
import yaml

from . import config as C
from . import naming
from .datasets import ground_truth_hint, shown_settings
from .datasets.base import warned_line
from .errors import counted
from .guide_diagnostics import has_final, table_title
from .io import IGNORE, atomic_path, load_heatmap_mat, load_label_png
from .preflight import reopened
from .results import RATIO_ROW, finished, guide_classes, made_seconds, method_rows, method_table, missing_reference, \
    skipped_images, stage_result, tested_split, unmarked_classes, unscored_classes, void_guide, weak_reference
from .seeds import SeedRule
from .visualize import PALETTE, STAGE_FILES, file_tiles, panel_image, panel_tiles, stage_files

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0; background: #f4f5f7; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 24px 48px; background: #fff; }
h1 { font-size: 24px; margin: 8px 0 4px; } h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 2px solid #dde; }
p.meta, p.note { color: #555; margin: 4px 0; } p.note { font-size: 12.5px; }
p.warn { color: #a33; margin: 4px 0; }
table { border-collapse: collapse; margin: 6px 0 10px; }
th, td { border: 1px solid #ccd; padding: 3px 9px; text-align: left; vertical-align: top; }
th { background: #eef0f5; } tr:nth-child(even) td { background: #fafafc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } tr.total td { font-weight: 600; }
table.stages td:nth-child(-n+3) { white-space: nowrap; }
span.kv { display: inline-block; margin-right: 14px; white-space: nowrap; } span.kv b { font-weight: 500; color: #556; }
span.sw { display: inline-block; width: 12px; height: 12px; margin-right: 6px; border: 1px solid #888;
          vertical-align: -1px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 12px; }
figure { margin: 0 0 12px; } figcaption { font-size: 12.5px; color: #444; margin-bottom: 3px; }
figure img { max-width: 100%; border: 1px solid #ddd; } img.panel { image-rendering: pixelated; }
pre { background: #f6f8fa; border: 1px solid #dde; padding: 10px; font-size: 12.5px; overflow-x: auto;
      column-width: 340px; white-space: pre-wrap; overflow-wrap: anywhere; }
"""
EXAMPLES = 4   # images of each split in the report's examples section
WARNED_SHOWN = 20   # images read with Pillow's warnings listed in the report (maybe thousands, and harmless)
RECORDS = ("outputs", "output_digests", "made_with")   # done.json's records of a folder, no figures (made_with:
# None where the stage runs no network)
SKIPPED_FIGURES = ("per_class", "confusion", "classes", "curve") + RECORDS   # long or shown in their own table


def write_report(config, overrides, notes=(), opened=None, skipped=None):
    """Resolve the run's config as every stage does; write <out_root>/<preset>/report.html and return its path.
    notes: the lines the run began with (on its settings and data); opened: the run's preflight.Opened, whose datasets
    it reuses; skipped: {step: why} of the driver's steps the run skipped (the data makes them impossible), whose
    folders it does not show; with reference_train among them the run has no fully supervised reference (own data
    without training masks), and the summary says why, as ./script.py prints it."""
    cfg, preset = C.resolve(config, overrides)
    skipped = skipped or {}
    ref = None if "reference_train" in skipped else C.resolve(config, list(overrides) + ["labels=gt"])[0]
    test_seeds = C.resolve(config, list(overrides) + ["seed_split=test"])[0]
    root = naming.run_dir(cfg)
    path = root / "report.html"
    page = render_page(cfg, preset, ref, test_seeds, root, overrides, notes, opened,
                       run_folders(config, overrides, skipped), skipped.get("reference_train"))
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8", errors="backslashreplace")  # a note's file name not UTF-8: as stdout
    return path


def render_page(cfg, preset, ref, test_seeds, root, overrides=(), notes=(), opened=None, folders=(),
                no_reference=None):
    """folders: the run's finished stage folders (run_folders), whose figures, loss curves and plots it shows;
    no_reference: why the run has no fully supervised reference, where it has none."""
    sections = [summary_section(cfg, preset, ref, no_reference), notes_section(notes), skipped_section(cfg, preset),
                class_section(cfg, preset, ref),
                guide_class_section(cfg, preset),
                saliency_section(cfg, preset), stages_section(folders), training_section(folders),
                evaluation_section(folders), examples_section(cfg, preset, ref, test_seeds, EXAMPLES, opened),
                f"<h2>Config</h2>\n<pre>{html.escape(yaml.safe_dump(shown_config(cfg), sort_keys=False))}</pre>"]
    now = datetime.datetime.now().isoformat(sep=" ", timespec="seconds")
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>GuidedLabelling report: {html.escape(cfg['name'])}</title><style>{CSS}</style></head>\n"
            f"<body><main>\n<h1>GuidedLabelling report: preset {html.escape(cfg['name'])}</h1>\n"
            f"<p class='meta'>Run folder <code>{html.escape(str(root))}</code>, written {now}.</p>\n"
            f"<p class='meta'>Settings given: {settings_given(overrides)}</p>\n"
            + "\n".join(s for s in sections if s) + "\n</main></body></html>\n")


def notes_section(notes):
    """The notes the run began with, on its settings and data (a class of one training image, ...)."""
    if not notes:
        return ""
    return "<h2>Notes on the settings and data</h2>\n" + "".join(f"<p class=warn>{html.escape(line)}</p>"
                                                                for line in notes)


def shown_config(cfg):
    """The run's settings, those of a dataset layout it does not read left out (own data's run names no
    --dataset_dir)."""
    return cfg | {"data": shown_settings(cfg["data"])}


def settings_given(overrides):
    """The --set settings (and flags as settings) of the run, which its numbers depend on beside the preset's."""
    shown = [o for o in overrides if not o.startswith("overridecache=")]
    return " ".join(f"<code>{html.escape(o)}</code>" for o in shown) or "none (the preset's)"


# ---- figures ----

def number(value, digits=None):
    """n/a for missing; `digits` decimals when given, else 4 significant digits for floats."""
    if value is None:
        return "n/a"
    if digits is not None:
        return f"{value:.{digits}f}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def table(header, rows, total_last=False, css_class=""):
    """An HTML table; cells are (text,) tuples (numbers, right-aligned) or HTML strings (already escaped)."""
    def cell(c):
        return f"<td class='num'>{c[0]}</td>" if isinstance(c, tuple) else f"<td>{c}</td>"
    body = [f"<tr{' class=total' if total_last and k == len(rows) - 1 else ''}>{''.join(cell(c) for c in row)}</tr>"
            for k, row in enumerate(rows)]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    return f"<table class='{css_class}'><tr>{head}</tr>\n" + "\n".join(body) + "</table>"


def summary_section(cfg, preset, ref, no_reference=None):
    """The method's table, and what makes its val figures say less (./script.py prints the same warnings: why it has
    no reference among them, `no_reference`); without masks, what the guided segmenter marks of each class instead."""
    seg, ref_seg = stage_result(cfg, preset, "segmentations"), ref and stage_result(ref, preset, "segmentations")
    if seg and "mIoU" not in seg:
        return unmeasured_summary(cfg, seg, ref_seg)
    guide = stage_result(cfg, preset, "guide_labels")
    figures = method_table(guide, seg, ref_seg)
    rows = [[html.escape(name), (number(figures[key], 1),)] for name, key in method_rows(seg)]
    ratio = figures[RATIO_ROW[1]]
    rows.append([RATIO_ROW[0], (number(ratio and 100 * ratio, 1) + ("%" if ratio else ""),)])
    warnings = "".join(f"<p class=note>{html.escape(line)}</p>" for line in void_guide(guide)) + \
        "".join(f"<p class=warn>{html.escape(line)}</p>"
                for line in unscored_classes(seg) + unmarked_classes(seg, ref_seg) + weak_reference(ref_seg or {})
                + missing_reference(no_reference))
    unscored = seg and seg.get("mIoU") is None and seg.get("tags_marked")   # masks of training images alone
    marks = (f"<p class=note>No {seg.get('split', 'val')} image has a mask; what the guided segmenter marks of each "
             f"class in them, from their tags:</p>\n{marks_table(seg)}") if unscored else ""
    return "<h2>Summary</h2>\n" + table(["stage", "mIoU %"], rows) + warnings + marks


def unmeasured_summary(cfg, seg, ref_seg):
    """Own data without masks: no mIoU, but per class the test images tagged with it and those whose prediction
    marks it (the test's tags_marked), and the warning ./script.py prints of the classes marked in few."""
    warnings = "".join(f"<p class=warn>{html.escape(line)}</p>" for line in unmarked_classes(seg, ref_seg))
    hint = html.escape(ground_truth_hint(cfg["data"]))
    return (f"<h2>Summary</h2>\n<p class=note>No ground-truth masks, so no mIoU ({hint} for "
            "it). What the guide labels keep of each class is below; what the guided segmenter marks of each class in "
            f"the {seg.get('split', 'val')} images, from their tags:</p>\n" + marks_table(seg) + warnings)


def marks_table(seg):
    """Per class, the test images tagged with it and those whose prediction marks it; '' where the test has no
    counts (an earlier version finished it)."""
    rows = [[html.escape(name), (m["tagged"],), (m["marked"],)] for name, m in seg.get("tags_marked", {}).items()]
    return table(["class", "images tagged", "images whose prediction marks it"], rows) if rows else ""


def swatch(k):
    r, g, b = PALETTE[k]
    return f"<span class=sw style='background:rgb({r},{g},{b})'></span>"


def class_section(cfg, preset, ref):
    """Per-class IoU of seeds, guide labels, segmenter and reference, with the classes' panel colours."""
    guide = stage_result(cfg, preset, "guide_labels") or {}
    split = tested_split(stage_result(cfg, preset, "segmentations"))
    columns = [("seeds (train)", guide.get("seeds")), ("guide labels (train)", guide.get("guide")),
               (f"segmenter ({split})", stage_result(cfg, preset, "segmentations", "results.json")),
               (f"fully supervised ({split})", ref and stage_result(ref, preset, "segmentations", "results.json"))]
    columns = [(name, rep) for name, rep in columns if rep]
    if not columns:
        return ""
    classes = columns[0][1]["classes"]
    rows = [[swatch(k) + html.escape(c)] + [(number(rep["per_class_IoU"].get(c), 1),) for _, rep in columns]
            for k, c in enumerate(classes)]
    rows.append(["mIoU"] + [(number(rep["mIoU"], 1),) for _, rep in columns])
    return "<h2>IoU per class (%)</h2>\n" + table(["class"] + [n for n, _ in columns], rows, total_last=True)


def skipped_section(cfg, preset, shown=WARNED_SHOWN):
    """The unreadable images that the guide labels and the segmenter's test left out, and the first `shown` of
    those they read with Pillow's warnings (./script.py prints the same; summary.json holds them all)."""
    finished_ = stage_result(cfg, preset, "guide_labels"), stage_result(cfg, preset, "segmentations")
    skipped, warned = skipped_images(*finished_), skipped_images(*finished_, key="warned_images")
    section = ""
    if skipped:
        rows = [[html.escape(path), html.escape(why)] for path, why in skipped.items()]
        section += f"<h2>{counted(len(skipped), 'unreadable image')} left out</h2>\n" + table(["image", "why"], rows)
    if warned:
        rows = [[html.escape(path), html.escape(said)] for path, said in list(warned.items())[:shown]]
        rest = f"<p class=note>and {len(warned) - shown} more (summary.json)</p>" if len(warned) > shown else ""
        section += f"<h2>{html.escape(warned_line(len(warned)))}</h2>\n" + table(["image", "Pillow's warnings"], rows) \
            + rest
    return section


def guide_class_section(cfg, preset):
    """What the guide labels keep of each tagged class, without ground truth (guide_diagnostics.py), the guide
    step's warnings and that of a saliency network of shapes on photos."""
    guide = stage_result(cfg, preset, "guide_labels") or {}
    if "classes" not in guide:
        return ""
    classes = guide_classes(guide)
    final = has_final(classes)
    rows = [[html.escape(name), (r["images"],), (number(r["seed_kept"] and 100 * r["seed_kept"], 1),),
             (number(100 * r["guide_area"], 1),), (number(100 * r["dropped"], 1),),
             (number(r.get("core_salient") and 100 * r["core_salient"], 1),)]  # absent before 4c09083
            + ([(number(100 * r["final_area"], 1),), (number(r["cores_void"] and 100 * r["cores_void"], 1),)]
               if final else [])
            for name, r in classes.items()]
    lines = guide["warnings"] + [line for line in [C.shapes_saliency_warning(cfg)] if line]
    warnings = "".join(f"<p class=warn>{html.escape(line)}</p>" for line in lines)
    g = cfg["guide_labels"]
    title = table_title(classes, g)
    return (f"<h2>{html.escape(title[0].upper() + title[1:])}</h2>\n"
            + table(["class", "images tagged", "seed pixels kept %", "mean guide area %",
                     f"images the rule drops it in % (keeps under {g['dropped_share']}% of its seeds)",
                     f"seed cores salient % (score {g['unsure_core']}% or more)"]
                    + (["final mean guide area %", "final seed cores void %"] if final else []), rows) + warnings)


def saliency_section(cfg, preset):
    """The saliency maps' scores; none where the guide labels read your own maps (guide_labels.saliency_maps): the
    saliency folder of these settings holds another run's."""
    if cfg["guide_labels"]["saliency_maps"]:
        return ""
    scores = {split: values for split, values in (stage_result(cfg, preset, "saliency") or {}).items()
              if isinstance(values, dict) and split not in ("skipped_images", "warned_images") + RECORDS}
    if not scores:
        return ""
    salthres = str(cfg["guide_labels"]["salthres"])
    measures = ("MAE", "max_F", "S_measure", "max_E")
    rows = [[html.escape(split), (number(values.get("foreground_IoU", {}).get(salthres), 1),)]
            + [(number(values.get(m), 3),) for m in measures] for split, values in scores.items()]
    areas = [[html.escape(f"{split} {bucket}"), (q["images"],)] + [(number(q.get(m), 3),) for m in measures]
             for split, values in scores.items() for bucket, q in values.get("by_area", {}).items() if q["images"]]
    header = ["MAE", "max F", "S-measure", "max E"]
    return ("<h2>Saliency</h2>\n" + table(["split", f"foreground IoU at salthres {salthres}%"] + header, rows)
            + "<p class=note>foreground IoU: % of the map thresholded at salthres against the objects (measured at "
              "10..90%). MAE, max F (beta&sup2; = 0.3), S-measure and max E-measure: pysodmetrics, each map min-max "
              "normalised; S and E need whole frames, so the splits' rows (void pixels left out) have none."
            + (" holdout: the saliency set's held-out images (holdout/&lt;folder&gt;: those of one of its folders); "
               "holdout_zoom: the same, each cropped so that its object covers 50-90% of the frame."
               if any(split.startswith("holdout") for split in scores) else "") + "</p>"
            + ("\n<h2>Saliency by the object's share of the frame (held-out images)</h2>\n"
               + table(["images, object's share", "images"] + header, areas) if areas else ""))


def scalars(data, prefix=""):
    """(dotted key, number or None) of every number in a done.json, nested dicts included; None where it could not
    be measured (seed_eval's bg_precision where nothing is predicted as background), shown as n/a."""
    for key, value in data.items():
        if key.startswith(SKIPPED_FIGURES):
            continue
        if isinstance(value, dict):
            yield from scalars(value, f"{prefix}{key}.")
        elif value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{prefix}{key}", value


def run_folders(config, overrides, skipped=()):
    """The finished folders of the run's steps (pipeline.STEPS under these settings, each with the settings it adds),
    in step order, once each, but those of the steps in `skipped`: the run folder also holds other settings' and
    other data's folders (a --set variant, another tags.csv, the reference of masks since removed), which are not
    this run's figures."""
    folders = naming.step_folders(config, overrides, skipped).values()
    return [folder for folder in dict.fromkeys(folders) if finished(folder) is not None]


def wall_time(folder):
    seconds = made_seconds(folder)
    return "n/a" if seconds is None else f"{seconds:.1f} s"


def stages_section(folders):
    rows = []
    for folder in folders:
        figures = " ".join(f"<span class=kv><b>{html.escape(k)}</b> {number(v)}</span>"
                           for k, v in scalars(finished(folder)))
        rows.append([html.escape(folder.parent.name), html.escape(folder.name), (wall_time(folder),), figures])
    if not rows:
        return ""
    return ("<h2>Every stage</h2>\n"
            + table(["stage", "settings", "wall time", "figures (done.json)"], rows, css_class="stages")
            + "<p class=note>wall time: from the folder's config.yaml (written when the stage starts) to its "
              "done.json (written when it finishes), i.e. the run that finished it.</p>")


# ---- pictures ----

def data_uri(png):
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure(png, caption, css_class="plot"):
    return (f"<figure><figcaption>{html.escape(caption)}</figcaption>"
            f"<img class={css_class} src='{data_uri(png)}' alt='{html.escape(caption)}'></figure>")


def loss_plot(losses):
    """PNG of a training's loss per iteration, with a moving average when the curve is long."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    fig = Figure(figsize=(4.0, 2.6), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    it, loss = np.asarray(losses, float).reshape(-1, 2).T
    ax.plot(it, loss, color="#7a9cc6", lw=0.8, marker="." if len(it) < 50 else None, label="loss")
    window = len(it) // 25
    if window > 1:
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax.plot(it[window - 1:], smooth, color="#c0392b", lw=1.6, label=f"mean of {window}")
        ax.legend(fontsize=8)
    ax.set(xlabel="iteration", ylabel="loss")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def training_section(folders):
    curves = [(f"{f.parent.name}/{f.name}", (finished(f, "loss.json") or {}).get("loss"))
              for f in folders if (f / "loss.json").exists()]
    figures = [figure(loss_plot(losses), name) for name, losses in curves if losses]
    return "<h2>Training loss</h2>\n<div class=grid>" + "".join(figures) + "</div>" if figures else ""


def evaluation_section(folders):
    """The plots that evaluation stages (folders named *_eval) leave, e.g. the seed precision/recall curve."""
    plots = sorted(p for f in folders if f.parent.name.endswith("_eval") for p in f.glob("*.png"))
    figures = [figure(p.read_bytes(), f"{p.parent.parent.name}/{p.parent.name}/{p.name}") for p in plots]
    return "<h2>Evaluation plots</h2>\n" + "".join(figures) if figures else ""


REPORT_TILE_HEIGHT = 320  # the report's panels show larger photos shrunk to it (at 1024 px, six panels: 12 MB)


def example_panel(data, i, files, rule):
    buffer = io.BytesIO()
    panel_image(panel_tiles(data, i, file_tiles(files, data.image_classes(i), rule)), REPORT_TILE_HEIGHT).save(
        buffer, "PNG")
    return buffer.getvalue()


def example_files(folders, item_id):
    """(caption, path) of the run's outputs for one image in example_folders' `folders`: each stage's, seeds also
    from the heatmaps made for the test split, and the fully supervised prediction where the run has one."""
    ours = stage_files(folders["ours"].__getitem__, item_id)
    test = stage_files(folders["test"].__getitem__, item_id)
    return [(caption, p if p.exists() else q) for (caption, p), (_, q) in zip(ours, test)] + (
        [("fully supervised", folders["ref"] / f"{item_id}.png")] if folders["ref"] else [])


def example_folders(cfg, preset, ref, test_seeds):
    """The stage folders example_files reads (test_seeds: the config with --seed_split test), found once for every
    image: naming.stage_dir derives a folder's name from every setting of the stage and its upstream ones, and looks
    for former names on disk. Saliency maps of your own (guide_labels.saliency_maps), which the guide labels read
    where no saliency folder is made, are read from their folder (the panels had no saliency tile)."""
    stages = [stage for _, stage in STAGE_FILES]
    maps = cfg["guide_labels"]["saliency_maps"]
    own = {"saliency": Path(maps)} if maps else {}
    return {"ours": {stage: naming.stage_dir(cfg, preset, stage) for stage in stages} | own,
            "test": {stage: naming.stage_dir(test_seeds, preset, stage) for stage in stages} | own,
            "ref": naming.stage_dir(ref, preset, "segmentations") if ref else None}


def spread(indices, k):
    """At most k of `indices`, spread evenly over them (the first and the last included)."""
    picks = np.linspace(0, len(indices) - 1, min(k, len(indices))).round().astype(int)
    return [indices[j] for j in dict.fromkeys(picks.tolist())]


def spread_indices(data, k):
    """k images spread evenly over the split, among those that hold an object (all if none do)."""
    return spread([i for i in range(len(data)) if len(data.image_classes(i))] or list(range(len(data))), k)


def coverage(label, truth):
    """Share of truth's object pixels (neither background nor void) that label gives their class."""
    objects = (truth > 0) & (truth != IGNORE)
    return float((label[objects] == truth[objects]).mean()) if objects.any() else 0.0


PART = 0.1  # the least share of its objects that an image's seeds must cover to count as marking a part


def part_to_whole(data, i, files, rule):
    """(whether image i's seeds cover at least PART of its objects, how much more of them its guide labels (else
    its prediction) cover than its seeds do): both large where seeds mark a part and saliency recovers the
    whole, the method's point. None without both."""
    paths = {caption: path for caption, path in files if path.exists()}
    later = paths.get("guide labels", paths.get("prediction"))
    if "seeds" not in paths or later is None:
        return None
    heat, _ = load_heatmap_mat(paths["seeds"])
    truth = data.label(i)
    seeds = coverage(rule.labels(heat, data.image_classes(i)), truth)
    return seeds >= PART, coverage(load_label_png(later), truth) - seeds


CANDIDATES = 200  # the annotated images, spread over a split, among which example_indices picks: each costs its
# mask, heatmap and labels read, on every report written (a no-op rerun's too: 3000 phone photos' masks, seconds)


def ranked_examples(data, k, files, rule):
    """The k images (in split order) whose seeds mark a part of their objects and whose labels gain most over
    them (part_to_whole; then the images whose seeds miss their objects), among CANDIDATES annotated ones spread
    evenly over the split; [] where none has ground truth or the run has no seeds and later labels."""
    candidates = spread([i for i in range(len(data)) if data.annotated_at(i)], CANDIDATES)
    keys = {i: part_to_whole(data, i, files[i], rule) for i in candidates}
    ranked = sorted((not key[0], -key[1], i) for i, key in keys.items() if key is not None)
    return sorted(i for _, _, i in ranked[:k])


def examples_note(ranked, spread_out):
    """How the examples of each split were chosen: by ranked_examples (the splits `ranked`), or spread evenly over
    the splits `spread_out`, which have no ground truth to rank them by (a run without masks was captioned as
    ranked)."""
    note = []
    if ranked:
        note.append(f"The {' and '.join(ranked)} images are those whose seeds mark a part of their objects (at least "
                    + number(100 * PART) + "%) and whose guide labels (test split: predictions) add the most of them "
                    f"to what the seeds cover, among up to {CANDIDATES} annotated images of the split spread over it.")
    if spread_out:
        note.append(f"The {' and '.join(spread_out)} images are spread evenly over the split: none has ground truth "
                    "(with the run's seeds and labels) to choose them by.")
    return " ".join(note)


def examples_section(cfg, preset, ref, test_seeds, examples, opened=None):
    """Images of the training and test splits with every stage output that exists for them (the splits as `opened`,
    the run's preflight.Opened, holds them)."""
    d, rule = cfg["data"], SeedRule.of(cfg)
    parts, folders, how = [], example_folders(cfg, preset, ref, test_seeds), {True: [], False: []}
    for split in dict.fromkeys([d["dataset"], d["test_dataset"]]):
        data = reopened(opened, d, split, cfg["run"]["follow_symlinks"])
        files = [example_files(folders, item.id) for item in data.items]
        picked = ranked_examples(data, examples, files, rule)
        how[bool(picked)].append(html.escape(data.split))
        for i in picked or spread_indices(data, examples):
            parts.append(figure(example_panel(data, i, files[i], rule), f"{data.split} image {data.items[i].id}",
                                "panel"))
    legend = " ".join(f"<span class=kv>{swatch(k)}{html.escape(c)}</span>" for k, c in enumerate(data.classes))
    return ("<h2>Examples</h2>\n<p class=note>" + examples_note(how[True], how[False]) + " Seeds at seedthres "
            + number(rule.seedthres) + "%; saliency in grey; labels in the VOC colours: " + legend
            + "</p>\n" + "".join(parts))
