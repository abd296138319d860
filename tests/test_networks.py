"""Topology of the paper's networks (docs/method.md sections 1 and 6)."""
import pytest
import torch

from guidedlabelling.networks import DeepLabLargeFOV, GAPNet, build_seg_net, names

MAP = {"GAP-HighRes": 41, "GAP-LowRes": 21, "GAP-DeepLab": 41}


@pytest.mark.parametrize("net", ["GAP-HighRes", "GAP-LowRes", "GAP-DeepLab"])
def test_seed_net_shapes_at_321(net):
    model = GAPNet(net, num_classes=20, width=1 / 16).eval()
    with torch.no_grad():
        scores, feat = model(torch.zeros(2, 3, 321, 321))
    assert scores.shape == (2, 20)
    assert feat.shape[-2:] == (MAP[net], MAP[net]) and model.output_size(321) == MAP[net]
    assert model.cams(feat).shape == (2, 20, MAP[net], MAP[net])


def test_all_seed_nets_listed():
    assert set(MAP) <= set(names("seed"))


def test_deeplab_shapes():
    model = DeepLabLargeFOV(21, width=1 / 16).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 321, 321)).shape == (1, 21, 41, 41)
        # 531 -> 266 -> 134 -> 68 through the three 3x3/2 pad-1 ceil-mode pools
        assert model(torch.zeros(1, 3, 531, 531)).shape[-1] == model.output_size(531) == 68
    assert model.trunk.fc6.dilation == (12, 12) and model.trunk.vgg.conv5_1.dilation == (2, 2)


def test_full_width_parameter_counts_match_vgg16():
    # conv1_1..conv5_3 of VGG-16 hold 14,714,688 parameters
    trunk = sum(p.numel() for n, p in GAPNet("GAP-HighRes", 20, 1.0).named_parameters() if n.startswith("trunk."))
    assert trunk == 14_714_688
    model = build_seg_net("DeepLab-LargeFOV", 21, 1.0)
    assert model.trunk.fc6.weight.shape == (1024, 512, 3, 3) and model.fc8.weight.shape == (21, 1024, 1, 1)


def test_gap_score_has_no_bias_and_cam_is_linear_in_features():
    model = GAPNet("GAP-HighRes", 5, 1 / 16).eval()
    assert model.score.bias is None
    with torch.no_grad():
        scores, feat = model(torch.randn(1, 3, 65, 65))
        # GAP then score == mean of the CAMs
        torch.testing.assert_close(model.cams(feat).mean((2, 3)), scores)


def test_fc6_dilation_is_a_setting_and_travels_with_the_checkpoint(tmp_path):
    """LargeFOV's fc6 is dilated by 12 (for its 41x41 output); smaller outputs may take less, and a model
    saved with another dilation is rebuilt with it."""
    from guidedlabelling.inference import load_model
    from guidedlabelling.io import save_checkpoint
    model = build_seg_net("DeepLab-LargeFOV", 3, 1 / 16, fc6_dilation=4)
    assert model.trunk.fc6.dilation == (4, 4) and model.trunk.fc6.padding == (4, 4)
    assert build_seg_net("DeepLab-LargeFOV", 3, 1 / 16).trunk.fc6.dilation == (12, 12)
    assert model(torch.zeros(1, 3, 65, 65)).shape == (1, 3, 9, 9)
    save_checkpoint(tmp_path / "m.pth", model, {"kind": "segmentation", "net": "DeepLab-LargeFOV", "width": 1 / 16,
                                                "fc6_dilation": 4, "classes": ["bg", "a", "b"]})
    loaded, _ = load_model(tmp_path / "m.pth", "segmentation")
    assert loaded.trunk.fc6.dilation == (4, 4)


def test_init_from_scratch_takes_convolutions_without_a_bias():
    """--init none on a network whose convolutions have no bias (those before BatchNorm) used to stop with an
    AttributeError; every conv gets the msra filler, the biases there are zero."""
    from guidedlabelling.networks import build_seed_net, init_from_scratch
    net = build_seed_net("GAP-EffNet-HighRes", 3, 0.25)
    torch.nn.init.ones_(net.fc6_gap.bias)
    init_from_scratch(net)
    assert not net.fc6_gap.bias.any() and net.backbone._conv_stem.bias is None
    assert abs(net.fc6_gap.weight.std().item() - (2 / (40 * 9)) ** 0.5) < 0.01
