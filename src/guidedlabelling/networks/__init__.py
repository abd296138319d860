"""Every network of the project and the two factories the stages build them with.

vgg.py: the paper's VGG-16 networks (GAP seed classifiers, DeepLab-LargeFOV); efficientnet.py: the same roles on
an ImageNet EfficientNet-Lite0 backbone for CPUs. Networks take Caffe-convention inputs (transforms.py) and
import no data code.
"""
from .efficientnet import DeepLabEffNet, GAPEffNet, ImageNetObjectness
from .vgg import VGG_SEED_NETS, DeepLabLargeFOV, GAPNet, init_from_scratch

SEED_NETS = VGG_SEED_NETS + ("GAP-EffNet",)
SEG_NETS = ("DeepLab-LargeFOV", "DeepLab-EffNet")
PRETRAINED_NETS = ("GAP-EffNet", "DeepLab-EffNet")  # those with built-in ImageNet weights (--init imagenet)

__all__ = ["DeepLabEffNet", "DeepLabLargeFOV", "GAPEffNet", "GAPNet", "ImageNetObjectness", "PRETRAINED_NETS",
           "SEED_NETS", "SEG_NETS", "build_seed_net", "build_seg_net", "init_from_scratch"]


def build_seed_net(net, num_classes, width):
    """A GAP classifier: forward -> (class scores [B, C], CAM features [B, K, h, w])."""
    if net == "GAP-EffNet":
        return GAPEffNet(num_classes, width)
    if net not in SEED_NETS:
        raise ValueError(f"unknown seed network {net!r}; choose one of {SEED_NETS}")
    return GAPNet(net, num_classes, width)


def build_seg_net(net, num_classes, width, fc6_dilation=12, output_stride=8):
    """A segmenter (or, with 2 classes, a saliency net): forward -> scores [B, C, h, w] at output stride 8 (16:
    DeepLab-EffNet only)."""
    if net not in SEG_NETS:
        raise ValueError(f"unknown segmentation network {net!r}; choose one of {SEG_NETS}")
    if net == "DeepLab-EffNet":
        return DeepLabEffNet(num_classes, width, fc6_dilation=fc6_dilation, output_stride=output_stride)
    if output_stride != 8:
        raise ValueError(f"output stride {output_stride}: DeepLab-LargeFOV has output stride 8 only")
    return DeepLabLargeFOV(num_classes, width, fc6_dilation)
