"""The figures of finished runs, read in one place: a stage folder's done.json (or another of its JSON files),
and the method's table of one run's settings (seeds and guide labels on the training images, the segmenter and
the fully supervised reference on val, the ratio of the two). The driver's table and summary.json, report.html
and paper_tables.md all read them here."""
from pathlib import Path

import numpy as np

from . import naming
from .errors import listed
from .fingerprint import DONE, describe, read_json, scored_with_changed, staleness
from .metrics import ratio_of

# (row of the printed table, key in summary.json) of the method's table
METHOD_ROWS = (("seeds (train)", "seeds_mIoU_train"), ("guide labels (train)", "guide_labels_mIoU_train"),
               ("segmenter on guide labels (val)", "segmenter_mIoU_val"),
               ("fully supervised reference (val)", "fully_supervised_mIoU_val"))
RATIO_ROW = ("ratio guided / fully supervised", "ratio_to_fully_supervised")
WEAK_IOU = 20  # a class under this IoU in the fully supervised reference: the reference itself learned little
UNMARKED_SHARE = 0.25  # a class the guided segmenter marks in under this share of the val images tagged with it
MIN_TAGGED = 3         # ... of at least this many: it learnt little of it (fewer images say too little)


def finished(folder, name=DONE):
    """A stage folder's done.json (written when it finishes) or another JSON file of it, or None (absent, or
    damaged since: the preflight counts such a folder unfinished too)."""
    return read_json(Path(folder) / name)


def out_of_date(folder, cfg, digests, checked):
    """Why a finished folder's figures are not this run's, else None: scored with other masks (your own data's
    --masks names no folder that only scores with them) or with label files since edited, or no longer what its
    inputs make (fingerprint.staleness: an input edited, an upstream output made again since)."""
    masks = naming.other_masks(finished(folder), cfg)
    if masks is not False:
        return f"scored {f'with the masks of {masks}' if masks else 'without masks'}"
    if edited := scored_with_changed(folder, digests):
        return f"scored before {describe(edited)} changed"
    return staleness(folder, digests, checked)


def guide_classes(guide):
    """The guide step's per-class diagnostics ({class: figures}, from its done.json) in class order, as the IoU
    tables list them, where its seeds were scored (done.json sorts them by name)."""
    order = guide.get("seeds", {}).get("classes") or []
    rank = {name: k for k, name in enumerate(order)}
    return dict(sorted(guide["classes"].items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def made_seconds(folder):
    """Seconds a finished stage folder took in the run that finished it (a resumed training: since it resumed): from
    its config.yaml (written as the stage starts) to its DONE; None where either is missing."""
    start, end = Path(folder) / "config.yaml", Path(folder) / DONE
    return end.stat().st_mtime - start.stat().st_mtime if start.is_file() and end.is_file() else None


def stage_result(cfg, preset, stage, name=DONE):
    """finished() of the stage folder these settings name."""
    return finished(naming.stage_dir(cfg, preset, stage), name)


def skipped_images(*finished_, key="skipped_images"):
    """{image: why} of the unreadable images that stages left out, from their done.json (None: not finished);
    key="warned_images": {image: Pillow's warnings} of those they read as decoded."""
    return {path: why for d in finished_ if d for path, why in d.get(key, {}).items()}


def method_table(guide, seg, ref):
    """{key: mIoU or None} of METHOD_ROWS and RATIO_ROW from the done.json of the guide step, the segmenter's test
    and the reference's test (each may be None; a figure nothing measured is None). The ratio is None too where the
    reference's mIoU is under WEAK_IOU: a reference that learned nothing gave ratios such as 679% (weak_reference's
    line says which classes it missed)."""
    guide, seg, ref = guide or {}, seg or {}, ref or {}
    values = [guide.get("seeds", {}).get("mIoU"), guide.get("guide", {}).get("mIoU"), seg.get("mIoU"),
              ref.get("mIoU")]
    learned = ref.get("mIoU") is not None and ref["mIoU"] >= WEAK_IOU
    return {key: value for (_, key), value in zip(METHOD_ROWS, values)} | \
        {RATIO_ROW[1]: ratio_of(seg.get("mIoU"), ref.get("mIoU")) if learned else None}


def tested_split(seg):
    """The split the segmenters were tested on, which the test's done.json `seg` names (val before it did)."""
    return (seg or {}).get("split", "val")


def method_rows(seg):
    """METHOD_ROWS with tested_split(seg) in place of val: a run given --set test_dataset=train printed its scores of
    the training images as val's."""
    return [(name.replace("(val)", f"({tested_split(seg)})"), key) for name, key in METHOD_ROWS]


def scores(test):
    """The results.json that a test's done.json names (per-class IoU, confusion), or {}."""
    path = Path((test or {}).get("results", ""))
    return finished(path.parent, path.name) if path.is_file() else {}


def unscored_classes(seg):
    """A line naming the classes of which no scored val image has a ground-truth pixel: their IoU counts false
    positives alone, so the mIoU and the ratio say nothing of how they are segmented. None where no pixel was scored
    at all (no val image has a mask): no IoU is measured then, the table says n/a and the run says why."""
    results = scores(seg)
    if "confusion" not in results or not np.sum(results["confusion"]):
        return []
    absent = [name for name, pixels in zip(results["classes"], np.sum(results["confusion"], axis=1)) if not pixels]
    if not absent:
        return []
    return [f"no scored {tested_split(seg)} image shows {', '.join(absent)} (no ground-truth pixel): the segmenters' "
            f"IoU of {'it' if len(absent) == 1 else 'them'} counts false positives alone, and the mIoU and the ratio "
            f"say nothing of how they are segmented; give {tested_split(seg)} images that show them, with masks"]


def weak_reference(ref, floor=WEAK_IOU):
    """A line naming the classes the fully supervised reference learned almost nothing of (IoU under `floor`):
    the ratio then compares against a weak reference."""
    per_class = scores(ref).get("per_class_IoU", {})
    weak = {name: iou for name, iou in per_class.items() if iou is not None and iou < floor}
    if not weak:
        return []
    names = ", ".join(f"{n} ({v:.1f})" for n, v in weak.items())
    ratio = f"its mIoU is under {floor} too, so no ratio is given" if (ref.get("mIoU") or 0) < floor else \
        "the ratio compares with a weak reference"
    return [f"the fully supervised reference itself learns little of {names} (IoU under {floor}): {ratio}; "
            "the usual causes are objects a few pixels wide at the preset's input "
            "size, and classes in few images (see README, 'Your own data')"]


def void_guide(guide):
    """A line saying what share of the ground truth's pixels the guide labels leave void (255: guide_labels.unsure
    void), which their mIoU does not count, or none: the table compared such labels with G2's as if both were
    scored on every pixel."""
    void = ((guide or {}).get("guide") or {}).get("void")
    if not void:
        return []
    return [f"the guide labels leave {void:.1f}% of the training images' annotated pixels void; their mIoU counts "
            "the others"]


def missing_reference(why):
    """The line saying that the run has no fully supervised reference, and why (the driver's reason for skipping
    reference_train, e.g. no training image has a mask), or none."""
    return [f"no fully supervised reference: {why}"] if why else []


def unmarked_classes(seg, ref=None):
    """A line naming the classes the guided segmenter marks in few of the test images tagged with them (the test's
    tags_marked: tags alone, so it also warns a user without masks), each with the reference's count beside."""
    ref_marks = (ref or {}).get("tags_marked", {})
    few = {name: m for name, m in (seg or {}).get("tags_marked", {}).items()
           if m["tagged"] >= MIN_TAGGED and m["marked"] < UNMARKED_SHARE * m["tagged"]}
    if not few:
        return []

    def counts(name, m):
        return f"{name} ({m['marked']} of {m['tagged']}" + \
            (f"; the fully supervised reference: {ref_marks[name]['marked']})" if name in ref_marks else ")")
    named = [counts(name, m) for name, m in few.items()]
    them = "it" if len(few) == 1 else "them"
    return [f"the guided segmenter marks few of the {seg.get('split', 'val')} images tagged with "
            f"{listed(named)}: it learns little of {them}; the "
            f"guide labels' table of classes shows whether they had already lost {them} (see README, 'Your own data')"]
