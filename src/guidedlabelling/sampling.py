"""The order and randomness of training samples: a deterministic sample stream, the release's batch orders, and
the segmentation samples."""
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import transforms as T
from .io import InputError, load_label_png
from .pipeline import command


class TrainStream(torch.utils.data.Dataset):
    """Sample k of a training stream: image order[k], augmented with a generator seeded by (seed, k).

    Deterministic whatever the number of DataLoader workers, and resumable at any k.
    """

    def __init__(self, order, make_sample, seed):
        self.order, self.make_sample, self.seed = order, make_sample, seed

    def __len__(self):
        return len(self.order)

    def __getitem__(self, k):
        return self.make_sample(int(self.order[k]), np.random.default_rng([self.seed, k]))


def shuffled_order(n_images, length, rng):
    """The release's 'none': plain shuffling, one permutation per epoch."""
    reps = -(-length // n_images)
    return np.concatenate([rng.permutation(n_images) for _ in range(reps)])[:length]


def clsbal_order(image_classes, num_fg, length, rng):
    """'clsbal': balanced epochs (balanced_epoch) one after the other, `length` images in all."""
    missing = [c for c in range(1, num_fg + 1) if not any(c in cls for cls in image_classes)]
    if missing:
        raise InputError(f"--balbatch clsbal: classes {missing} occur in no training image; use --balbatch none")
    order = []
    while len(order) < length:
        order += balanced_epoch(image_classes, num_fg, rng)
    return np.array(order[:length])


def balanced_epoch(image_classes, num_fg, rng):
    """One epoch of the release's class-balanced order (pascal_balancedbatch, lib/caffetools/datalayers.py):
    rounds in which every class, in shuffled order, is covered once. The first uncovered class picks an image
    uniformly among its images not yet picked for it, rejecting those holding a class the round has covered;
    the image covers all its classes. The epoch ends when a class has no image left, or none fits its round."""
    pools = [np.flatnonzero([c in cls for cls in image_classes]) for c in range(1, num_fg + 1)]
    order = []
    while all(len(pool) for pool in pools):
        uncovered = list(range(1, num_fg + 1))
        rng.shuffle(uncovered)
        while uncovered:
            pick = uncovered[0]
            fitting = pools[pick - 1]
            while True:
                if not len(fitting):
                    return order
                image = fitting[rng.integers(len(fitting))]
                if all(c in uncovered for c in image_classes[image]):
                    break
                fitting = fitting[fitting != image]
            uncovered = [c for c in uncovered if c not in image_classes[image]]
            pools[pick - 1] = pools[pick - 1][pools[pick - 1] != image]
            order.append(int(image))
            if not len(pools[pick - 1]):
                break
    return order


class SegSample:
    """Image + label: the dataset's own, or a PNG of `label_dir` (guide labels), at the work size; with max_side,
    both shrunk to that longer side first where it is smaller (the label by nearest neighbour), the scale a test at
    test_size max_side sees."""

    def __init__(self, data, size, out_size, resize, label_dir=None, max_side=0):
        self.data, self.size, self.out_size, self.resize, self.label_dir = data, size, out_size, resize, label_dir
        self.max_side = max_side

    def label(self, i):
        if self.label_dir is None:
            return self.data.label(i)
        path = Path(self.label_dir) / f"{self.data.items[i].id}.png"
        if not path.exists():
            raise InputError(f"{path}: guide label missing; rerun {command('guide_labels')}")
        return self.data.at_work_size(i, load_label_png(path), Image.NEAREST)

    def __call__(self, i, rng):
        img, label = self.data.image(i, self.max_side), self.label(i)  # a large JPEG decodes at a reduced scale
        if label.shape != img.shape[:2]:
            label = T.resize(label, img.shape[:2], Image.NEAREST)
        return T.seg_train_sample(img, label, rng, self.size, self.out_size, self.resize)


def segmentation_stream(data, size, out_size, resize, solver, label_dir=None, max_side=0):
    return shuffled_stream(SegSample(data, size, out_size, resize, label_dir, max_side), solver)


def shuffled_stream(make_sample, solver):
    """The samples of a training over make_sample.data in the release's plain shuffled order."""
    n = len(make_sample.data)
    order = shuffled_order(n, solver.max_iter * solver.batch_size, np.random.default_rng(solver.seed))
    return TrainStream(order, make_sample, solver.seed)
