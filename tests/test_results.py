"""results.py: the one reader of finished runs' figures that the driver, the report and paper_tables share."""
import json

from guidedlabelling.results import METHOD_ROWS, RATIO_ROW, finished, guide_classes, method_rows, method_table, \
    void_guide


def test_the_method_table_of_hand_made_results():
    guide = {"seeds": {"mIoU": 20.0}, "guide": {"mIoU": 60.0}}
    table = method_table(guide, {"mIoU": 45.0}, {"mIoU": 90.0})
    assert [table[key] for _, key in METHOD_ROWS] == [20.0, 60.0, 45.0, 90.0] and table[RATIO_ROW[1]] == 0.5


def test_what_is_not_measured_is_none():
    """A stage not finished (None), own data without masks (no mIoU), a reference of 0: None, not a crash."""
    table = method_table(None, {"images": 10}, {"mIoU": 0.0})
    assert [table[key] for _, key in METHOD_ROWS] == [None, None, None, 0.0] and table[RATIO_ROW[1]] is None
    assert method_table(None, {"mIoU": 45.0}, {"mIoU": 0.0})[RATIO_ROW[1]] is None   # measured, over a 0
    assert method_table(None, {"mIoU": 45.0}, {"mIoU": 60.0})[RATIO_ROW[1]] == 0.75


def test_no_ratio_over_a_reference_that_learned_nothing():
    """A reference of 0.7 mIoU (a probe's smoke run on 3000 photos) gave 'ratio guided / fully supervised 678.8%'."""
    assert method_table(None, {"mIoU": 4.75}, {"mIoU": 0.7})[RATIO_ROW[1]] is None
    assert method_table(None, {"mIoU": 4.75}, {"mIoU": 19.9})[RATIO_ROW[1]] is None
    assert method_table(None, {"mIoU": 4.75}, {"mIoU": 20.0})[RATIO_ROW[1]] == 4.75 / 20


def test_the_rows_name_the_split_the_segmenters_were_tested_on():
    """./script.py --set test_dataset=train printed 'segmenter on guide labels (val)' over its scores of the train
    images (a probe), while its warnings said train; a test finished before done.json named its split: val."""
    names = [name for name, _ in method_rows({"mIoU": 47.4, "split": "train"})]
    assert names == ["seeds (train)", "guide labels (train)", "segmenter on guide labels (train)",
                     "fully supervised reference (train)"]
    assert [name for name, _ in method_rows({"mIoU": 47.4})] == [name for name, _ in METHOD_ROWS]
    assert [key for _, key in method_rows({"split": "train"})] == [key for _, key in METHOD_ROWS]   # summary.json's


def test_guide_labels_that_leave_pixels_void_say_their_miou_counts_the_others():
    """guide_labels.unsure void left 0.55% of the demo's training pixels void and its guide labels' mIoU, over the
    others, rose from 74.5 to 75.5: the table compared it with G2's as if both were scored on every pixel (a probe).
    done.json's "void" is in percent."""
    assert void_guide({"guide": {"mIoU": 75.5, "void": 0.5518}}) == [
        "the guide labels leave 0.6% of the training images' annotated pixels void; their mIoU counts the others"]
    assert void_guide({"guide": {"mIoU": 74.5, "void": 0.0}}) == [] and void_guide(None) == []
    assert void_guide({"seeds": {"mIoU": 40.0}}) == []   # own data without masks: no guide figures


def test_finished_reads_a_stage_folders_json_files(tmp_path):
    assert finished(tmp_path) is None
    (tmp_path / "done.json").write_text(json.dumps({"mIoU": 1.5}))
    (tmp_path / "loss.json").write_text(json.dumps({"loss": [1, 2]}))
    assert finished(tmp_path) == {"mIoU": 1.5} and finished(tmp_path, "loss.json") == {"loss": [1, 2]}
    (tmp_path / "done.json").write_text('{"mIoU": 1.')   # damaged since: unfinished, as the preflight counts it
    assert finished(tmp_path) is None                    # (json.loads raised: a traceback in the summary)


def test_guide_classes_follow_the_class_order_where_the_seeds_were_scored():
    """done.json sorts the per-class diagnostics by name; the tables list them as the IoU tables do (background,
    then the dataset's classes), and by name where nothing was scored (own data without masks)."""
    classes = {"aeroplane": {"images": 2}, "cow": {"images": 3}, "sheep": {"images": 1}}
    scored = {"classes": classes, "seeds": {"classes": ["background", "cow", "sheep", "aeroplane"]}}
    assert list(guide_classes(scored)) == ["cow", "sheep", "aeroplane"]
    assert list(guide_classes({"classes": classes})) == ["aeroplane", "cow", "sheep"]
    assert guide_classes(scored)["cow"] == {"images": 3}
