"""Saliency network training: class-agnostic foreground/background DeepLab (docs/method.md section 3)."""
from ..checks import NON_NEGATIVE, POSITIVE
from ..networks import SEG_NETS, build_seg_net
from ..reads import Reads
from ..training import FC6_DILATION, SEG_MULTS, initialise, prepare, run_training, segmentation_loss, \
    segmentation_stream, solver_checks, training_options

OPTIONS = {"saliency_data": ("data/builtin_saliency", "class-agnostic saliency training set: images/ + masks/")} \
    | training_options("DeepLab-LargeFOV", "none", SEG_NETS) | FC6_DILATION | {
        "holdout": (0, "last N images of the saliency set held out to measure MAE and max F-measure"),
    }
CHECKS = solver_checks(SEG_NETS) | {"fc6_dilation": POSITIVE, "holdout": NON_NEGATIVE}


def reads(cfg, given):
    c = cfg["saliency_train"]
    return Reads(saliency_set=(c["saliency_data"], c["holdout"], "train"), init=c["init"], net=c["net"])


def run(stage):
    solver = prepare(stage)
    c = stage.cfg["saliency_train"]
    data = stage.saliency_set
    model = build_seg_net(c["net"], 2, c["width"], c["fc6_dilation"])
    initialise(model, c["init"], stage.log, c["freeze_trunk"], c["init_partial"])
    stream = segmentation_stream(data, model, c["input_size"], "tight", solver)
    meta = {"kind": "saliency", "net": c["net"], "width": c["width"], "fc6_dilation": c["fc6_dilation"],
            "classes": ["bg", "fg"]}
    run_training(stage, model, stream, segmentation_loss, solver, SEG_MULTS, meta)
