"""The order and randomness of training samples: a deterministic sample stream and the release's batch orders."""
import numpy as np
import torch

from .io import InputError


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
    """'clsbal': each run of num_fg images covers every class once in random order,
    drawing for each class an image that contains it."""
    by_class = [[i for i, cls in enumerate(image_classes) if c in cls] for c in range(1, num_fg + 1)]
    missing = [c for c, ims in enumerate(by_class, 1) if not ims]
    if missing:
        raise InputError(f"--balbatch clsbal: classes {missing} occur in no training image; use --balbatch none")
    order = []
    while len(order) < length:
        for c in rng.permutation(num_fg):
            order.append(by_class[c][rng.integers(len(by_class[c]))])
    return np.array(order[:length])
