"""Segmentation training: DeepLab-LargeFOV on guide labels, or on the true masks with --labels gt
(docs/method.md section 6)."""
from ..io import InputError
from ..networks import SEG_NETS, build_seg_net
from ..training import SEG_MULTS, initialise, prepare, run_training, segmentation_loss, segmentation_stream, \
    training_options

OPTIONS = training_options("DeepLab-LargeFOV", "models/VGG_ILSVRC_16_layers-deeplab.caffemodel", SEG_NETS) | {
    "resize": ("none", "training geometry: none (crop/pad) or tight (crop+fit)"),
    "labels": ("guide", "training labels: guide (the method) or gt (fully supervised reference)"),
}


def add_arguments(parser):
    parser.add_argument("--guide_dir", help="folder of <id>.png training labels (default: the guide labels)")


def run(stage):
    solver = prepare(stage)
    c = stage.cfg["seg_train"]
    if c["labels"] not in ("gt", "guide"):
        raise InputError(f"--labels {c['labels']}: choose guide or gt")
    data = stage.dataset(stage.cfg["data"]["dataset"])
    label_dir = None if c["labels"] == "gt" else stage.input_dir("guide", stage.args.guide_dir)
    model = build_seg_net(c["net"], data.num_classes, c["width"])
    initialise(model, c["init"], stage.log, c["freeze_trunk"], c["init_partial"])
    stream = segmentation_stream(data, model, c["input_size"], c["resize"], solver, label_dir)
    meta = {"kind": "segmentation", "net": c["net"], "width": c["width"], "classes": data.classes}
    run_training(stage, model, stream, segmentation_loss, solver, SEG_MULTS, meta)
