"""Every network of the project by name (NETWORKS), and the contract that training and inference use instead of
naming a network.

vgg.py: the paper's VGG-16 networks (GAP seed classifiers, DeepLab-LargeFOV); efficientnet.py: the same roles on
an ImageNet EfficientNet-Lite0 backbone for CPUs (-Lite2: on the larger EfficientNet-Lite2). Adding a network is one
module here and one line in NETWORKS (docs/reference.md, "Adding a network"). A network is an nn.Module that
- is built as cls(num_classes, width) (seed networks) or cls(num_classes, width, fc6_dilation, output_stride)
  (segmentation networks: the segmenter, and with 2 classes the saliency net); `width` scales its channels;
- takes Caffe-convention inputs (transforms.py: BGR, 0..255 minus MEAN_BGR) and imports no data code;
- seed networks: forward -> (class scores [B, C], CAM features [B, K, h, w]), and cams(features, classes=None) ->
  class activation maps [B, C, h, w]; segmentation networks: forward -> class scores [B, C, h, w];
- output_size(side) -> the side of its output for an input of that side;
- new_layers: the names of the layers it adds to its trunk (its classifier: `score` for seed networks, `fc8`
  for segmentation networks, whose learning-rate multipliers are settings). A layer's name is the module name
  before a parameter's last dot, as Caffe names layers; every other layer is the trunk (freeze_trunk,
  trunk_lr_mult, an init file's layers);
- optionally trunk_blocks() -> its trunk's blocks in order from the input (train_blocks fine-tunes the last N);
- uses every trainable parameter in forward (DDP under torchrun runs without find_unused_parameters).
Its NETWORKS line says whether it is built with ImageNet weights of its own (--init imagenet) and which output
strides it has.
"""
from dataclasses import dataclass
from functools import partial

from .efficientnet import DeepLabEffNet, GAPEffNet, ImageNetObjectness, weights_path
from .vgg import DeepLabLargeFOV, GAPNet, init_from_scratch


@dataclass(frozen=True)
class Network:
    role: str                  # "seed" or "segmentation"
    build: object              # the class, or a functools.partial of it
    imagenet: bool = False     # built with ImageNet weights of its own (--init imagenet)
    output_strides: tuple = (8,)


NETWORKS = {
    "GAP-HighRes": Network("seed", partial(GAPNet, "GAP-HighRes")),
    "GAP-LowRes": Network("seed", partial(GAPNet, "GAP-LowRes")),
    "GAP-DeepLab": Network("seed", partial(GAPNet, "GAP-DeepLab")),
    "GAP-EffNet": Network("seed", GAPEffNet, imagenet=True),
    "GAP-EffNet-HighRes": Network("seed", partial(GAPEffNet, highres=True), imagenet=True),
    "GAP-EffNet-Lite2": Network("seed", partial(GAPEffNet, variant="lite2"), imagenet=True),
    "DeepLab-LargeFOV": Network("segmentation", DeepLabLargeFOV),
    "DeepLab-EffNet": Network("segmentation", DeepLabEffNet, imagenet=True, output_strides=(8, 16)),
    "DeepLab-EffNet-Lite2": Network("segmentation", partial(DeepLabEffNet, variant="lite2"), imagenet=True,
                                    output_strides=(8, 16)),
}

__all__ = ["NETWORKS", "DeepLabEffNet", "DeepLabLargeFOV", "GAPEffNet", "GAPNet", "ImageNetObjectness", "Network",
           "build_seed_net", "build_seg_net", "has_blocks", "imagenet_weights", "init_from_scratch", "names"]


def names(role, output_stride=None, imagenet=None, blocks=None):
    """The registered networks of a role ("seed" or "segmentation"), optionally only those with an output stride,
    with (imagenet=True) ImageNet weights of their own, or with (blocks=True) a trunk of blocks."""
    return tuple(name for name, n in NETWORKS.items() if n.role == role
                 and (output_stride is None or output_stride in n.output_strides)
                 and (imagenet is None or n.imagenet == imagenet)
                 and (blocks is None or has_blocks(name) == blocks))


def has_blocks(name):
    """Whether the network's trunk is a sequence of blocks (trunk_blocks(), for train_blocks)."""
    build = NETWORKS[name].build
    return hasattr(getattr(build, "func", build), "trunk_blocks")


def imagenet_weights(name):
    """The file of the ImageNet weights a network with weights of its own is built with (ImportError: the package
    that ships them is not installed)."""
    if not NETWORKS[name].imagenet:
        raise ValueError(f"network {name} has no ImageNet weights of its own")
    build = NETWORKS[name].build
    return weights_path(getattr(build, "keywords", {}).get("variant", "lite0"))


def network(name, role):
    """The registry entry of a network of this role."""
    if name not in names(role):
        raise ValueError(f"unknown {role} network {name!r}; choose one of {names(role)}")
    return NETWORKS[name]


def build_seed_net(name, num_classes, width):
    """A GAP classifier: forward -> (class scores [B, C], CAM features [B, K, h, w])."""
    model = network(name, "seed").build(num_classes, width)
    model.net = name
    return model


def build_seg_net(name, num_classes, width, fc6_dilation=12, output_stride=8):
    """A segmenter (or, with 2 classes, a saliency net): forward -> scores [B, C, h, w] at its output stride."""
    strides = network(name, "segmentation").output_strides
    if output_stride not in strides:
        raise ValueError(f"output stride {output_stride}: {name} has output stride "
                         f"{' or '.join(map(str, strides))} only")
    model = NETWORKS[name].build(num_classes, width, fc6_dilation=fc6_dilation, output_stride=output_stride)
    model.net = name
    return model
