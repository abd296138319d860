"""What a stage reads with given settings, as its stage module declares it (reads(cfg, given), `given` the
command's folder flags): the preflight checks these inputs before anything runs, and the fingerprint that
decides whether outputs can be reused is computed from them."""
from dataclasses import dataclass, field

NO_INIT = (None, "", "none")  # init values of a training from scratch


@dataclass(frozen=True)
class Reads:
    splits: tuple = ()            # dataset splits, named as --dataset / --test_dataset name them
    ground_truth: bool = False    # needs label PNGs (own data: --masks)
    every_mask: bool = False      # needs the label of every image, not only of some (an oracle: guiderule salor)
    evaluates: bool = False       # compares with the label PNGs or masks when there are any
    tags: bool = True             # reads the images' tags (a VOC folder's come from its label PNGs); else a tags
    # CSV counts as a file it scores with where it evaluates, and by its classes where `classes`
    classes: bool = False         # reads no tags, but its outputs depend on the classes they name (a training's)
    upstream: dict = field(default_factory=dict)  # upstream stage -> folder given instead of its output (or None)
    saliency_set: tuple = ()      # (roots, holdout, part, holdout_scenes) of the saliency set, when read
    init: str | None = None       # initial weights: a file, imagenet, or none
    network: tuple = ()           # the network they are for: (kind, net, width, ...), model_setup.untrained's
    init_partial: bool = False    # trunk layers the weights leave out may stay random

    @property
    def net(self):
        """The name of the network the initial weights are for, or None."""
        return self.network[1] if self.network else None

    def init_file(self):
        """The initial weights file, or None (from scratch, or the network's built-in ImageNet weights)."""
        return None if self.init in NO_INIT or self.init == "imagenet" else self.init
