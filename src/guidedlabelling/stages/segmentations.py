"""Segmentation test and evaluation: predictions, confusion matrix, per-class IoU, mIoU (docs/method.md
section 7)."""
from .. import precision as P
from ..checks import NON_NEGATIVE, SIDE, one_of
from ..crf import TEST_CRFS
from ..inference import TEST_GEOMETRIES, all_done, check_classes, evaluate_folder, forward_all, geometry, \
    label_map, load_model, measurable, tags_marked, todo, trained, without_panel
from ..io import load_label_png, save_json, save_label_png
from ..metrics import format_table
from ..progress import progress
from ..reads import Reads
from ..seeds import SeedRule
from ..visualize import colour, file_tiles, panel_tiles, save_panel, stage_files

BATCH = 4  # images per forward pass (inference.forward_all)
OPTIONS = {
    "test_iter": (0, "test the snapshot of this iteration (0: the final model)"),
    "test_pcrf": ("none", "test-time CRF: none or deeplab"),
    "test_resize": ("none", "none: the release's, a centred reflect pad to test_size whose canvas is resized to "
                            "the training input_size for the forward pass; fullscale: the canvas at full scale "
                            "(padded bottom/right); tight: the image's longer side to test_size, padded "
                            "bottom/right only up to sides of 32k + 1 (one image per pass)"),
    "test_size": (531, "test input side"),
}
CHECKS = {"test_iter": NON_NEGATIVE, "test_pcrf": one_of(*TEST_CRFS), "test_resize": one_of(*TEST_GEOMETRIES),
          "test_size": SIDE}


def add_arguments(parser):
    parser.add_argument("--model_dir", help="segmentation training folder holding model.pth")


def reads(cfg, given):
    # tags=False: the predictions do not depend on tags; tags_marked, like the scores, is recounted on a rerun
    return Reads(splits=(cfg["data"]["test_dataset"],), evaluates=True, tags=False,
                 upstream={"seg_train": given.get("model_dir")})


def run(stage):
    cfg, out = stage.cfg, stage.out
    data = stage.dataset(cfg["data"]["test_dataset"])
    model, meta = load_model(trained(stage.input_dir("seg_train"), cfg["segmentations"]["test_iter"]), "segmentation")
    check_classes(meta, data)
    t, seeds = cfg["segmentations"], SeedRule.of(cfg)
    indices = todo(stage, data, ".png", block=BATCH)
    stage.log.info("segmentation test on %s: %d of %d images to do", data.split, len(indices), len(data))
    for i, scores, frame in progress(forward_all(
            model, data, indices, t["test_size"], geometry(t["test_resize"]), stage.device, BATCH,
            cfg["run"]["workers"], **P.options(cfg["run"]), net_size=cfg["seg_train"]["input_size"]),
            "segmentation test", len(indices)):
        image = data.image(i) if t["test_pcrf"] != "none" else None   # decoded again for the CRF alone
        pred = label_map(scores, image, frame, t["test_pcrf"], cfg["run"]["crf_backend"])
        if cfg["run"]["vis"]:
            save_test_panel(stage, data, i, seeds, pred)
        save_label_png(out / f"{data.items[i].id}.png", pred)
    if cfg["run"]["vis"]:  # images predicted by an earlier run without --vis
        draw_panels(stage)
    if not all_done(stage, data, ".png"):
        return
    marks = {"tags_marked": tags_marked(data, out), "split": data.split}
    if not measurable(stage, data, "segmentation mIoU"):
        (out / "results.json").unlink(missing_ok=True)   # scores of masks an earlier run was given
        stage.finish({"images": len(data)} | marks)
        return
    rep = evaluate_folder(data, out)
    save_json(out / "results.json", rep)
    stage.log.info("segmentation on %s:\n%s", data.split, format_table(rep))
    stage.finish({"mIoU": rep["mIoU"], "results": str(out / "results.json")} | marks)


def save_test_panel(stage, data, i, seeds, pred):
    """The image's panel: the prediction beside the upstream outputs it has (saliency; on training images all)."""
    upstream = stage_files(stage.output_dir, data.items[i].id, ("seeds", "saliency", "guide labels"))
    save_panel(stage.out / "vis" / f"{data.items[i].id}.png", panel_tiles(data, i, file_tiles(
        upstream, data.image_classes(i), seeds) + [("prediction", colour(pred))]))


def draw_panels(stage):
    """--vis on predictions made without it: the panels of this fragment's predicted images that have none, drawn
    from the files (nothing is predicted again). Returns how many it drew."""
    data, seeds = stage.dataset(stage.cfg["data"]["test_dataset"]), SeedRule.of(stage.cfg)
    indices = without_panel(stage, data)
    for i in progress(indices, "panels"):
        save_test_panel(stage, data, i, seeds, load_label_png(stage.out / f"{data.items[i].id}.png"))
    return len(indices)
