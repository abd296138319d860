"""The figures of finished runs, read in one place: a stage folder's done.json (or another of its JSON files),
and the method's table of one run's settings (seeds and guide labels on the training images, the segmenter and
the fully supervised reference on val, the ratio of the two). The driver's table and summary.json, report.html
and paper_tables.md all read them here."""
import json
from pathlib import Path

from . import naming
from .metrics import ratio_of

# (row of the printed table, key in summary.json) of the method's table
METHOD_ROWS = (("seeds (train)", "seeds_mIoU_train"), ("guide labels (train)", "guide_labels_mIoU_train"),
               ("segmenter on guide labels (val)", "segmenter_mIoU_val"),
               ("fully supervised reference (val)", "fully_supervised_mIoU_val"))
RATIO_ROW = ("ratio guided / fully supervised", "ratio_to_fully_supervised")


def finished(folder, name="done.json"):
    """A stage folder's done.json (written when it finishes) or another JSON file of it, or None."""
    path = Path(folder) / name
    return json.loads(path.read_text()) if path.exists() else None


def stage_result(cfg, preset, stage, name="done.json"):
    """finished() of the stage folder these settings name."""
    return finished(naming.stage_dir(cfg, preset, stage), name)


def method_table(guide, seg, ref):
    """{key: mIoU or None} of METHOD_ROWS and RATIO_ROW from the done.json of the guide step, the segmenter's test
    and the reference's test (each may be None; a figure nothing measured is None)."""
    guide, seg, ref = guide or {}, seg or {}, ref or {}
    values = [guide.get("seeds", {}).get("mIoU"), guide.get("guide", {}).get("mIoU"), seg.get("mIoU"),
              ref.get("mIoU")]
    return {key: value for (_, key), value in zip(METHOD_ROWS, values)} | \
        {RATIO_ROW[1]: ratio_of(seg.get("mIoU"), ref.get("mIoU"))}
