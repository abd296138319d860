"""The paper's networks: VGG-16 GAP seed classifiers and DeepLab-LargeFOV (docs/method.md sections 1 and 6).

Layer names follow the Caffe prototxts (conv1_1 .. conv5_3, fc6_gap, fc7_gap,
score; fc6, fc7, fc8) so Caffe weights map by name. `width` scales every
channel count (1.0 = the paper) so the same topology trains on a CPU.
Caffe pooling rounds output sizes up: ceil_mode=True everywhere.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# The input convention of the release's Caffe models, which every network here takes: BGR, 0..255 minus the channel
# means (B, G, R) of Caffe's python/caffe/imagenet/ilsvrc_2012_mean.npy (BVLC/caffe c0597b1), a 3x256x256 image
# averaged over its pixels as the release does (np.load(path).mean(1).mean(1)).
MEAN_BGR = np.array([104.0069879317889, 116.66876761696767, 122.6789143406786])
VGG_BLOCKS = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
VGG_SEED_NETS = ("GAP-HighRes", "GAP-LowRes", "GAP-DeepLab")
PIXEL_SCALE = 60.0


def scaled(channels, width):
    return max(1, int(round(channels * width)))


def conv_names():
    return [f"conv{b + 1}_{i + 1}" for b, (_, n) in enumerate(VGG_BLOCKS) for i in range(n)]


class VGGTrunk(nn.Module):
    """conv1_1..conv5_3 with the pools of one of the paper's variants.

    pools: list of 5 entries, one after each block: None or (kernel, stride, pad).
    dilation5: dilation of the conv5 block (DeepLab: 2).
    """

    def __init__(self, width, pools, dilation5=1):
        super().__init__()
        self.pools = pools
        in_ch = 3
        for b, (ch, n) in enumerate(VGG_BLOCKS):
            dil = dilation5 if b == 4 else 1
            for i in range(n):
                out = scaled(ch, width)
                setattr(self, f"conv{b + 1}_{i + 1}", nn.Conv2d(in_ch, out, 3, padding=dil, dilation=dil))
                in_ch = out
        self.out_channels = in_ch

    def forward(self, x):
        for b, (_, n) in enumerate(VGG_BLOCKS):
            for i in range(n):
                x = F.relu(getattr(self, f"conv{b + 1}_{i + 1}")(x), inplace=True)
            if self.pools[b] is not None:
                k, s, p = self.pools[b]
                x = F.max_pool2d(x, k, s, p, ceil_mode=True)
        return x

    def output_size(self, size):
        for pool in self.pools:
            if pool is not None:
                k, s, p = pool
                out = math.ceil((size + 2 * p - k) / s) + 1
                if (out - 1) * s >= size + p:  # Caffe drops a window that starts in the padding
                    out -= 1
                size = out
        return size


HIGHRES_POOLS = [(2, 2, 0), (2, 2, 0), (2, 2, 0), None, None]
LOWRES_POOLS = [(2, 2, 0)] * 4 + [None]
DEEPLAB_POOLS = [(3, 2, 1)] * 3 + [(3, 1, 1), (3, 1, 1)]


class ClassMaps:
    """A GAP classifier's class activation maps: its 1x1 `score` layer applied to its features (the CAM)."""

    def cams(self, feat, classes=None):
        """Class activation maps [B, C, h, w] (or only `classes`)."""
        w = self.score.weight if classes is None else self.score.weight[classes]
        return torch.einsum("ck,bkhw->bchw", w, feat)


class GAPNet(ClassMaps, nn.Module):
    """Seed classifier: trunk + fc6_gap(+fc7_gap) + global average pooling + score (no bias).

    forward returns (scores [B, C], cam_features [B, K, h, w]); CAM of class c is
    sum_k score.weight[c, k] * cam_features[:, k].
    """

    def __init__(self, net="GAP-HighRes", num_classes=20, width=1.0):
        super().__init__()
        if net not in VGG_SEED_NETS:
            raise ValueError(f"unknown VGG seed network {net!r}; choose one of {VGG_SEED_NETS}")
        self.net = net
        fc = scaled(1024, width)
        if net == "GAP-DeepLab":
            self.trunk = DeepLabTrunk(width)
            self.fc_layers = ["fc6", "fc7"]
            feat = self.trunk.out_channels
        else:
            pools = HIGHRES_POOLS if net == "GAP-HighRes" else LOWRES_POOLS
            self.trunk = VGGTrunk(width, pools)
            self.fc6_gap = nn.Conv2d(self.trunk.out_channels, fc, 3, padding=1)
            self.fc_layers = ["fc6_gap"]
            if net == "GAP-HighRes":
                self.fc7_gap = nn.Conv2d(fc, fc, 3, padding=1)
                self.fc_layers.append("fc7_gap")
            feat = fc
        self.score = nn.Linear(feat, num_classes, bias=False)
        self.new_layers = [n for n in self.fc_layers if n.endswith("_gap")] + ["score"]
        for name in self.new_layers:
            layer = getattr(self, name)
            nn.init.normal_(layer.weight, std=0.005)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def features(self, x):
        if self.net == "GAP-DeepLab":
            return self.trunk(x)
        x = self.trunk(x)
        for name in self.fc_layers:
            x = F.dropout(F.relu(getattr(self, name)(x)), 0.5, self.training)
        return x

    def forward(self, x):
        feat = self.features(x)
        return self.score(feat.mean((2, 3))), feat

    def output_size(self, size):
        return self.trunk.output_size(size)


class DeepLabTrunk(nn.Module):
    """DeepLab-LargeFOV up to relu7 (dropout after fc6 and fc7); fc6 dilated by 12 (LargeFOV's) unless given."""

    def __init__(self, width, fc6_dilation=12):
        super().__init__()
        self.vgg = VGGTrunk(width, DEEPLAB_POOLS, dilation5=2)
        fc = scaled(1024, width)
        self.fc6 = nn.Conv2d(self.vgg.out_channels, fc, 3, padding=fc6_dilation, dilation=fc6_dilation)
        self.fc7 = nn.Conv2d(fc, fc, 1)
        self.out_channels = fc

    def forward(self, x):
        x = self.vgg(x)
        x = F.dropout(F.relu(self.fc6(x)), 0.5, self.training)
        return F.dropout(F.relu(self.fc7(x)), 0.5, self.training)

    def output_size(self, size):
        return self.vgg.output_size(size)


class DeepLabLargeFOV(nn.Module):
    """DeepLab-LargeFOV (VGG-16); also the class-agnostic saliency net with num_classes=2. Its output stride is 8,
    the only one it has (networks.build_seg_net refuses others)."""

    def __init__(self, num_classes=21, width=1.0, fc6_dilation=12, output_stride=8):
        super().__init__()
        assert output_stride == 8
        self.trunk = DeepLabTrunk(width, fc6_dilation)
        self.fc8 = nn.Conv2d(self.trunk.out_channels, num_classes, 1)
        self.new_layers = ["fc8"]
        nn.init.normal_(self.fc8.weight, std=0.01)
        nn.init.zeros_(self.fc8.bias)

    def forward(self, x):
        return self.fc8(self.trunk(x))

    def output_size(self, size):
        return self.trunk.output_size(size)


def init_from_scratch(model):
    """Caffe 'msra' filler for every conv layer when no ImageNet init is given.

    The paper's Gaussian std 0.005 for fc6_gap/fc7_gap assumes a pretrained trunk; from
    scratch it shrinks the signal ~100x per layer and the net barely learns. conv1_1 is
    further divided by the pixel scale (inputs are 0..255 minus the mean, std ~60) so the
    first activations have unit scale; without it training diverges.
    """
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
            if name.endswith("conv1_1"):
                m.weight.data /= PIXEL_SCALE
