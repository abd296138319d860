"""Seed network training: a GAP classifier on image-level labels (docs/method.md section 1)."""
from pathlib import Path

import numpy as np

from .. import sampling
from .. import transforms as T
from ..checks import above, one_of
from ..networks import build_seed_net, names
from ..reads import Reads
from ..model_setup import initialise
from ..solver import solver_checks, training_options
from ..training import classification_loss, prepare, run_training

OPTIONS = training_options("GAP-HighRes", "models/VGG_ILSVRC_16_layers.caffemodel", names("seed")) | {
    "balbatch": ("none", "batch order: none (shuffle) or clsbal"),
    "score_lr_mult": (10.0, "learning-rate multiplier of the score layer (Caffe lr_mult; 10 suits SGD, 1 Adam, whose "
                            "steps the multiplier scales directly)"),
}
CHECKS = solver_checks(names("seed")) | {"balbatch": one_of("none", "clsbal"), "score_lr_mult": above(0)}


def reads(cfg, given):
    c = cfg["seed_train"]
    return Reads(splits=(cfg["data"]["dataset"],), init=init_file(c["net"], c["init"]),
                 network=("seed", c["net"], c["width"]), init_partial=c["init_partial"])


class SeedSample:
    def __init__(self, data, size):
        self.data, self.size = data, size

    def __call__(self, i, rng):
        return T.seed_train_sample(self.data.image(i), rng, self.size), self.data.class_vector(i)


def batch_order(data, c, length, rng):
    """Images of the training stream: class-balanced epochs (clsbal) or plain shuffling (none)."""
    if c["balbatch"] == "clsbal":
        return sampling.clsbal_order(data.balancing_classes(), data.num_classes - 1, length, rng)
    return sampling.shuffled_order(len(data), length, rng)


def init_file(net, init):
    """As the release's get_initmodel: GAP-DeepLab starts from the '-deeplab' variant of a Caffe init (DeepLab's
    VGG-16, whose fc6/fc7 are those of DeepLab-LargeFOV), the other nets from the file itself."""
    path = Path(init)
    if net == "GAP-DeepLab" and path.suffix == ".caffemodel" and not path.stem.endswith("-deeplab"):
        return str(path.with_name(f"{path.stem}-deeplab.caffemodel"))
    return init


def run(stage):
    solver = prepare(stage)
    c = stage.cfg["seed_train"]
    data = stage.dataset(stage.cfg["data"]["dataset"])
    model = build_seed_net(c["net"], data.num_classes - 1, c["width"])
    initialise(model, init_file(c["net"], c["init"]), stage.log, c["freeze_trunk"], c["init_partial"])
    order = batch_order(data, c, solver.max_iter * solver.batch_size, np.random.default_rng(solver.seed))
    meta = {"kind": "seed", "net": c["net"], "width": c["width"], "classes": data.classes}
    run_training(stage, model, sampling.TrainStream(order, SeedSample(data, c["input_size"]), solver.seed),
                 classification_loss, solver, mults(c), meta)


def mults(c):
    """Caffe multipliers of the score layer (weights only; the release's lr_mult is 10)."""
    return {"score": (c["score_lr_mult"], 1, 0, 0)}
