"""Segmentation training: DeepLab-LargeFOV on guide labels, or on the true masks with --labels gt
(docs/method.md section 6)."""
from ..checks import one_of, side_or_zero
from ..networks import names
from ..reads import Reads
from ..model_setup import DEEPLAB_CHECKS, DEEPLAB_OPTIONS, build_deeplab, deeplab_conflicts, deeplab_meta, \
    deeplab_network, label_size
from ..sampling import segmentation_stream
from ..solver import solver_checks, training_options
from ..training import prepare, run_training, segmentation_loss

INIT = "models/VGG_ILSVRC_16_layers-deeplab.caffemodel"
OPTIONS = training_options("DeepLab-LargeFOV", INIT, names("segmentation")) | DEEPLAB_OPTIONS | {
    "resize": ("none", "training geometry: none (crop/pad) or tight (crop+fit)"),
    "labels": ("guide", "training labels: guide (the method) or gt (fully supervised reference)"),
    "max_side": (0, "images whose longer side exceeds this are shrunk to it before the crop (0: never, the "
                    "release); equal to segmentations.test_size (test_resize tight), training and test see photos "
                    "at least that large at one scale"),
}
CHECKS = solver_checks(names("segmentation")) | DEEPLAB_CHECKS | {
    "resize": one_of("none", "tight"), "labels": one_of("guide", "gt"), "max_side": side_or_zero}
CONFLICTS = deeplab_conflicts


def add_arguments(parser):
    parser.add_argument("--guide_dir", help="folder of <id>.png training labels (default: the guide labels)")


def reads(cfg, given):
    """The training split with the guide labels, or with its own masks (labels gt, the reference)."""
    c = cfg["seg_train"]
    gt = c["labels"] == "gt"
    return Reads(splits=(cfg["data"]["dataset"],), ground_truth=gt, tags=not gt, classes=gt, init=c["init"],
                 network=deeplab_network(c), init_partial=c["init_partial"],
                 upstream={} if gt else {"guide_labels": given.get("guide_dir")})


def run(stage):
    solver = prepare(stage)
    c = stage.cfg["seg_train"]
    data = stage.dataset(stage.cfg["data"]["dataset"])
    label_dir = None if c["labels"] == "gt" else stage.input_dir("guide_labels")
    model, mults = build_deeplab(c, data.num_classes, stage.log)
    stream = segmentation_stream(data, c["input_size"], label_size(model, c), c["resize"], solver, label_dir,
                                 c["max_side"])
    meta = deeplab_meta(c, "segmentation", data.classes) | {"preset": stage.cfg["name"],  # predict's test geometry
                                                            "input_size": c["input_size"], "max_side": c["max_side"]}
    run_training(stage, model, stream, segmentation_loss, solver, mults, meta)
