"""Seed network training: a GAP classifier on image-level labels (docs/method.md section 1)."""
import numpy as np

from .. import sampling
from .. import transforms as T
from ..checks import one_of
from ..networks import SEED_NETS, build_seed_net
from ..reads import Reads
from ..training import classification_loss, initialise, prepare, run_training, solver_checks, solver_options

OPTIONS = solver_options("GAP-HighRes", "models/VGG_ILSVRC_16_layers.caffemodel", SEED_NETS) | {
    "balbatch": ("none", "batch order: none (shuffle) or clsbal"),
}
CHECKS = solver_checks(SEED_NETS) | {"balbatch": one_of("none", "clsbal")}
MULTS = {"score": (10, 1, 0, 0)}  # score: weights only, lr_mult 10


def reads(cfg, given):
    c = cfg["seed_train"]
    return Reads(splits=(cfg["data"]["dataset"],), init=c["init"], net=c["net"])


class SeedSample:
    def __init__(self, data, size):
        self.data, self.size = data, size

    def __call__(self, i, rng):
        return T.seed_train_sample(self.data.image(i), rng, self.size), self.data.class_vector(i)


def batch_order(data, c, length, rng):
    """Images of the training stream: class-balanced runs (clsbal) or plain shuffling (none)."""
    if c["balbatch"] == "clsbal":
        return sampling.clsbal_order([data.image_classes(i) for i in range(len(data))], data.num_classes - 1,
                                     length, rng)
    return sampling.shuffled_order(len(data), length, rng)


def run(stage):
    solver = prepare(stage)
    c = stage.cfg["seed_train"]
    data = stage.dataset(stage.cfg["data"]["dataset"])
    model = build_seed_net(c["net"], data.num_classes - 1, c["width"])
    initialise(model, c["init"], stage.log, c["freeze_trunk"])
    order = batch_order(data, c, solver.max_iter * solver.batch_size, np.random.default_rng(solver.seed))
    meta = {"kind": "seed", "net": c["net"], "width": c["width"], "classes": data.classes}
    run_training(stage, model, sampling.TrainStream(order, SeedSample(data, c["input_size"]), solver.seed),
                 classification_loss, solver, MULTS, meta)
