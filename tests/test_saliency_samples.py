"""Saliency training on real masks: several folders, scenes held out whole, augmentation, copy-paste, the
loss; the network settings it shares with the segmenter."""
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import stage_folders
from guidedlabelling import config as C
from guidedlabelling import settings as S
from guidedlabelling import transforms as T
from guidedlabelling.datasets import MaskFolder, scene_of
from guidedlabelling.io import InputError
from guidedlabelling.networks import DeepLabEffNet, build_seg_net
from guidedlabelling.saliency_samples import SaliencySample, paste, photometric, remove_object, scale_crop, texture, \
    zoom_crop
from guidedlabelling.stages.saliency import ZOOM_SHARES, ZoomedMasks, holdout_quality
from guidedlabelling.stages.saliency_train import SaliencyLoss
from guidedlabelling.inference import load_model
from guidedlabelling.model_setup import DEEPLAB_CHECKS, DEEPLAB_OPTIONS, build_deeplab, label_size, \
    train_last_blocks, trunk_mults
from guidedlabelling.training import segmentation_loss


def make_folder(root, ids, size=(40, 60)):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in ids:
        Image.fromarray(rng.integers(0, 255, size + (3,), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        mask = np.zeros(size, np.uint8)
        mask[10:30, 20:40] = 255
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    return root


def test_a_scene_is_the_id_up_to_its_last_underscore():
    assert scene_of("car-roundabout_00012") == "car-roundabout" and scene_of("horse001") == "horse001"


def test_scenes_are_held_out_whole_and_other_folders_keep_their_last_images(tmp_path):
    video = make_folder(tmp_path / "v", ["a_0", "a_1", "b_0", "b_1", "c_0"])
    stills = make_folder(tmp_path / "s", ["x1", "x2", "x3"])
    roots = f"{video},{stills}"
    assert MaskFolder(roots, 1, "train", "b").ids == ["a_0", "a_1", "c_0", "x1", "x2"]
    assert MaskFolder(roots, 1, "holdout", "b").ids == ["b_0", "b_1", "x3"]
    assert MaskFolder(roots, 1, "holdout").ids == ["c_0", "x3"]          # no scenes: the last image of each
    assert MaskFolder(str(stills), 1).ids == ["x1", "x2"]
    with pytest.raises(InputError, match="zebra"):
        MaskFolder(roots, 0, "train", "zebra")
    other = make_folder(tmp_path / "o", ["x1"])
    with pytest.raises(InputError, match="same name"):
        MaskFolder(f"{stills},{other}")


def test_holdout_quality_per_folder(tmp_path):
    video = make_folder(tmp_path / "v", ["a_0", "b_0"])
    stills = make_folder(tmp_path / "s", ["x1", "x2"])
    held = MaskFolder(f"{video},{stills}", 1, "holdout", "b")
    out = tmp_path / "maps"
    out.mkdir()
    for i, it in enumerate(held.items):   # b_0 exact, x2 all background
        Image.fromarray((held.label(i) * 255 if it.id == "b_0" else held.label(i) * 0).astype(np.uint8)).save(
            out / f"{it.id}.png")
    q = holdout_quality(held, out)
    assert q["holdout/v"]["foreground_IoU"]["50"] == 100 and q["holdout/v"]["MAE"] == 0
    assert q["holdout/s"]["foreground_IoU"]["50"] == 0
    assert q["holdout"]["foreground_IoU"]["50"] == pytest.approx(50)   # 400 of 800 object pixels found
    by_area = q["holdout"]["by_area"]   # each object covers 400 of 2400 pixels
    assert {k: v["images"] for k, v in by_area.items()} == {"00-05%": 0, "05-15%": 0, "15-35%": 2, "35-60%": 0,
                                                            "60-100%": 0}
    assert by_area["15-35%"]["MAE"] == q["holdout"]["MAE"] and by_area["00-05%"]["max_F"] is None


def test_held_out_zoom_crops_are_fixed_per_image_and_filled_by_their_object(tmp_path):
    held = MaskFolder(str(make_folder(tmp_path / "s", ["x0", "x1", "x2", "x3", "x4"], size=(90, 120))), 4, "holdout")
    zoomed = ZoomedMasks(held, 50)
    assert zoomed.boxes == ZoomedMasks(held, 50).boxes and len(set(zoomed.boxes)) > 1   # per image id
    for i in range(len(zoomed)):
        label = zoomed.label(i)
        assert max(label.shape) == 50 and zoomed.image(i).shape == label.shape + (3,)
        top, left, h, w = zoomed.boxes[i]
        share = held.label(i)[top:top + h, left:left + w].mean()
        assert ZOOM_SHARES[0] <= share <= ZOOM_SHARES[1] + 0.05 and abs(label.mean() - share) < 0.05


def ellipse(hw, centre, axes, angle=0):
    return cv2.ellipse(np.zeros(hw, np.uint8), centre, axes, angle, 0, 360, 1, -1)


@pytest.mark.parametrize("shares", [(0.5, 0.8), (0.9, 1.0)])
def test_zoom_crops_give_their_object_the_requested_share_of_the_frame(shares):
    """The object's share of each crop, counted on the returned mask, is in the requested range (up to a row's
    worth); an ellipse covers pi/4 of its box, so shares above that cut it at the crop's borders."""
    img, mask = np.zeros((120, 160, 3), np.uint8), ellipse((120, 160), (60, 50), (30, 18), 20)
    for k in range(100):
        crop, m = zoom_crop(img, mask, np.random.default_rng(k), shares)
        assert crop.shape[:2] == m.shape and shares[0] <= m.mean() <= shares[1] + 0.05
        assert m.sum() < mask.sum() or shares[0] < np.pi / 4


def test_zoom_samples_are_mostly_object(tmp_path):
    data = MaskFolder(str(make_folder(tmp_path / "s", ["x1", "x2"], size=(90, 120))))
    zoomed = SaliencySample(data, 33, 33, min_area=0.3, zoom=1.0, zoom_min_share=0.6)
    shares = [zoomed(k % 2, np.random.default_rng(k))[1].mean() for k in range(20)]
    assert min(shares) > 0.4 and np.mean(shares) > 0.6  # the square sample reflects a crop of other aspect


def test_without_augmentation_samples_are_the_segmenters(tmp_path):
    data = MaskFolder(str(make_folder(tmp_path / "s", ["x1", "x2"])))
    sample = SaliencySample(data, 33, 5)
    for k in range(4):
        x, y = sample(k % 2, np.random.default_rng([0, k]))
        x0, y0 = T.seg_train_sample(data.image(k % 2), data.label(k % 2), np.random.default_rng([0, k]), 33, 5,
                                    "tight")
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(y, y0)


@pytest.mark.parametrize("paste_bg", ["keep", "inpaint", "texture", "mix"])
def test_augmented_samples_have_the_input_size_binary_labels_and_are_reproducible(tmp_path, paste_bg):
    data = MaskFolder(str(make_folder(tmp_path / "s", ["x1", "x2", "x3"])))
    sample = SaliencySample(data, 33, 33, paste=1.0, paste_bg=paste_bg, min_area=0.3, colour=1.0)
    for k in range(6):
        x, y = sample(k % 3, np.random.default_rng(k))
        assert x.shape == (3, 33, 33) and x.dtype == np.float32 and y.shape == (33, 33)
        assert set(np.unique(y)) <= {0, 1}
        np.testing.assert_array_equal(x, sample(k % 3, np.random.default_rng(k))[0])


def test_images_kept_in_memory_give_the_samples_of_images_read_again(tmp_path):
    """SaliencySample keeps each shrunk image and mask (read-only: no sample may change them); samples drawn
    from memory equal those of a fresh instance that reads the files, paste partners included."""
    data = MaskFolder(str(make_folder(tmp_path / "s", ["x1", "x2", "x3"], size=(90, 120))))
    kept = SaliencySample(data, 20, 20, paste=0.7, paste_bg="mix", min_area=0.3, colour=1.0)
    draws = [(k % 3, k) for k in range(12)]
    first = [kept(i, np.random.default_rng(k)) for i, k in draws]
    assert sorted(kept.loaded) == [0, 1, 2] and not kept.loaded[0][0].flags.writeable
    assert max(kept.loaded[0][0].shape) == 40  # shrunk to twice the input side
    for (i, k), (x, y) in zip(draws, first):
        fresh = SaliencySample(data, 20, 20, paste=0.7, paste_bg="mix", min_area=0.3, colour=1.0)
        for again in (kept(i, np.random.default_rng(k)), fresh(i, np.random.default_rng(k))):
            np.testing.assert_array_equal(again[0], x)
            np.testing.assert_array_equal(again[1], y)


def test_paste_puts_the_object_on_top_and_keeps_the_background_mask():
    bg, bg_mask = np.zeros((50, 50, 3), np.uint8), np.zeros((50, 50), np.uint8)
    bg_mask[:5, :5] = 1
    obj = np.full((20, 20, 3), 200, np.uint8)
    obj_mask = np.zeros((20, 20), np.uint8)
    obj_mask[5:15, 5:15] = 1
    out, label = paste(bg, bg_mask, obj, obj_mask, np.random.default_rng(0))
    assert label[:5, :5].all() and label.sum() > 25
    new = label.astype(bool) & (bg_mask == 0)
    assert out[new].mean() > 100 and out[~label.astype(bool)].max() < 100   # object pixels only where labelled


def test_crop_area_aspect_colour_texture_and_inpainting():
    rng = np.random.default_rng(0)
    img, mask = np.zeros((90, 160, 3), np.uint8), np.zeros((90, 160), np.uint8)
    aspects = []
    for _ in range(50):
        c, m = scale_crop(img, mask, rng, 0.3)
        assert c.shape[:2] == m.shape and 0.25 * 90 * 160 <= m.size <= 90 * 160
        if m.shape[0] < 90 and m.shape[1] < 160:          # not clipped to the image: its drawn aspect, rounded
            aspects.append(m.shape[1] / m.shape[0])
    assert len(aspects) > 10 and all(1 / 1.6 - 0.05 <= a <= 1.6 + 0.05 for a in aspects)
    assert min(aspects) < 0.9 < 1.1 < max(aspects)      # both ways, not a fixed shape
    grey = np.full((8, 8, 3), 128, np.uint8)
    assert photometric(grey, rng, 0) is grey
    colourful = np.zeros((8, 8, 3), np.uint8)
    colourful[..., 0], colourful[:4, :, 1] = 200, 90
    draws = [photometric(colourful, rng) for _ in range(10)]
    assert all(d.dtype == np.uint8 and d.shape == colourful.shape for d in draws)
    assert sum(not np.array_equal(d, colourful) for d in draws) >= 9 and len({d.tobytes() for d in draws}) >= 9
    a, b = texture((20, 30), rng), texture((20, 30), rng)
    assert a.shape == (20, 30, 3) and a.dtype == np.uint8 and a.std() > 1 and not np.array_equal(a, b)
    filled = remove_object(np.full((40, 40, 3), 50, np.uint8), np.pad(np.ones((10, 10), np.uint8), 15))
    assert abs(int(filled[20, 20, 0]) - 50) < 5


def test_balanced_loss_weighs_both_classes_equally():
    torch.manual_seed(0)
    scores = torch.randn(2, 2, 6, 6)
    y = torch.zeros(2, 6, 6, dtype=torch.long)
    y[:, :2, :3] = 1                       # 12 of 71 labelled pixels are foreground
    y[0, 5, 5] = 255
    total, count = SaliencyLoss("batch")(lambda x: x, (scores, y))
    per = F.cross_entropy(scores, y, ignore_index=255, reduction="none")
    torch.testing.assert_close(total / count, 0.5 * per[y == 1].mean() + 0.5 * per[y == 0].mean())
    total, count = SaliencyLoss()(lambda x: x, (scores, y))
    torch.testing.assert_close(total / count, per[y != 255].mean())


def test_input_resolution_loss_upsamples_the_scores():
    scores = torch.randn(1, 2, 3, 3)
    y = torch.ones(1, 9, 9, dtype=torch.long)
    total, count = SaliencyLoss()(lambda x: x, (scores, y))
    up = F.interpolate(scores, size=(9, 9), mode="bilinear", align_corners=False)
    torch.testing.assert_close(total, F.cross_entropy(up, y, reduction="sum"))
    assert count == 81


def test_output_stride_16_and_the_trunks_multipliers_and_blocks():
    model = build_seg_net("DeepLab-EffNet", 2, 0.05, 6, 16)
    assert model.output_size(161) == 11 and model(torch.zeros(1, 3, 161, 161)).shape == (1, 2, 11, 11)
    assert DeepLabEffNet(2, 0.05, pretrained=False).output_size(161) == 21
    with pytest.raises(ValueError, match="stride 8 only"):
        build_seg_net("DeepLab-LargeFOV", 2, 0.05, 12, 16)
    mults = trunk_mults(model, 0.1)
    assert mults["_project_conv"] == (0.1, 1, 0.2, 0) and "fc6" not in mults and trunk_mults(model, 1) == {}
    train_last_blocks(model, 2, logging.getLogger("t"))
    trained = {n.split(".")[1] for n, p in model.backbone.named_parameters() if p.requires_grad}
    assert trained == {"14", "15"}
    assert all(p.requires_grad for n, p in model.named_parameters() if n.split(".")[0] in model.new_layers)


def deeplab_section(**settings):
    base = {"net": "DeepLab-EffNet", "init": "imagenet", "init_partial": False, "width": 0.05, "input_size": 64,
            "freeze_trunk": False}
    return base | {key: default for key, (default, _) in DEEPLAB_OPTIONS.items()} | settings


@pytest.mark.parametrize("stage", ["seg_train", "saliency_train"])
def test_the_segmenter_and_the_saliency_net_share_the_network_settings(stage):
    module = S.STAGE_MODULES[stage]
    assert set(DEEPLAB_OPTIONS) <= set(module.OPTIONS) and set(DEEPLAB_CHECKS) <= set(module.CHECKS)
    assert module.CONFLICTS(deeplab_section(freeze_trunk=True, trunk_lr_mult=0.1))


def test_build_deeplab_chooses_the_trained_layers_and_their_multipliers():
    log = logging.getLogger("t")
    model, mults = build_deeplab(deeplab_section(output_stride=16, fc6_dilation=1, train_blocks=1,
                                                 trunk_lr_mult=0.1, loss_res="input"), 3, log)
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 4, 4)
    assert {n.split(".")[1] for n, p in model.backbone.named_parameters() if p.requires_grad} == {"15"}
    assert mults["fc8"] == (10, 1, 20, 0) and mults["_depthwise_conv"] == (0.1, 1, 0.2, 0)
    assert label_size(model, {"loss_res": "input", "input_size": 64}) == 64
    assert label_size(model, {"loss_res": "output", "input_size": 64}) == 4
    with pytest.raises(InputError, match="freeze_trunk trains no trunk layer"):
        build_deeplab(deeplab_section(freeze_trunk=True, train_blocks=3), 3, log)
    with pytest.raises(InputError, match="stride 8 only"):
        build_deeplab(deeplab_section(net="DeepLab-LargeFOV", init="none", output_stride=16), 3, log)
    with pytest.raises(InputError, match="DeepLab-LargeFOV does not split its trunk into blocks; use -1 or "
                                         "DeepLab-EffNet"):
        build_deeplab(deeplab_section(net="DeepLab-LargeFOV", init="none", output_stride=8, train_blocks=2), 3, log)


@pytest.mark.parametrize("net", ["GAP-EffNet", "GAP-EffNet-HighRes", "DeepLab-EffNet"])
def test_every_trainable_parameter_of_an_effnet_gets_a_gradient(net):
    """DDP (without find_unused_parameters) fails on a trainable parameter that the forward pass never uses."""
    from guidedlabelling.networks import build_seed_net
    seed = net.startswith("GAP")
    model = build_seed_net(net, 3, 0.05) if seed else build_seg_net(net, 3, 0.05, 1, 16)
    out = model(torch.zeros(1, 3, 64, 64))
    (out[0] if seed else out).sum().backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []


def test_the_segmenter_trains_at_output_stride_16_and_its_checkpoint_rebuilds_it(tmp_path, command):
    sets = ["net=DeepLab-EffNet", "init=imagenet", "output_stride=16", "fc6_dilation=1", "train_blocks=1",
            "trunk_lr_mult=0.1", "loss_res=input", "max_iter=2"]
    code, _, err = command("seg_train", "--config", "smoke", "--labels", "gt", "--set", f"out_root={tmp_path}",
                           *[a for item in sets for a in ("--set", "seg_train." + item)])
    assert code == 0, err
    folder, = stage_folders(tmp_path / "smoke" / "seg_train")
    model, meta = load_model(folder / "model.pth", "segmentation")
    assert meta["output_stride"] == 16 and model(torch.zeros(1, 3, 64, 64)).shape == (1, 6, 4, 4)
    start = build_seg_net("DeepLab-EffNet", 6, 0.0625, 1, 16)
    assert torch.equal(projection(model, 14), projection(start, 14))  # frozen
    assert not torch.equal(projection(model, 15), projection(start, 15))  # fine-tuned


def projection(net, block):
    return net.backbone._blocks[block]._project_conv.weight


def test_the_segmenters_loss_at_input_resolution_is_the_upsampled_scores_cross_entropy():
    scores = torch.randn(2, 3, 4, 4)
    y = torch.randint(0, 3, (2, 16, 16))
    y[0, 0, :5] = 255
    total, count = segmentation_loss(lambda x: x, (scores, y))
    up = F.interpolate(scores, size=(16, 16), mode="bilinear", align_corners=False)
    torch.testing.assert_close(total, F.cross_entropy(up, y, ignore_index=255, reduction="sum"))
    assert count == 2 * 256 - 5


@pytest.mark.parametrize("preset", sorted(p.stem for p in (Path(__file__).parents[1] / "configs").glob("*.yaml")))
def test_every_preset_resolves_with_its_settings_in_range(preset):
    cfg, _ = C.resolve(preset)
    assert cfg["name"] == preset


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.skipif(not (SHARED / "davis_saliency").is_dir(), reason="../shared/data is absent")
def test_the_msrc_presets_saliency_set_holds_out_four_whole_videos_and_50_horses():
    c = C.resolve("msrc")[0]["saliency_train"]
    roots = ",".join(str(SHARED / Path(r).name) for r in c["saliency_data"].split(","))
    held = MaskFolder(roots, c["holdout"], "holdout", c["holdout_scenes"])
    train = MaskFolder(roots, c["holdout"], "train", c["holdout_scenes"])
    videos = [scene for scene in held.scenes() if not scene.startswith("horse")]
    assert videos == ["blackswan", "car-roundabout", "dance-twirl", "soapbox"]
    assert sum(it.id.startswith("horse") for it in held.items) == 50 and len(held) == 158 + 50
    assert not set(held.scenes()) & set(train.scenes()) and len(train) + len(held) == 690 + 328


def test_a_saliency_set_too_small_to_hold_out_or_without_the_scenes_says_which_setting_fixes_it(tmp_path):
    """The README tells users of their own saliency set to clear holdout_scenes: the errors name both settings."""
    (tmp_path / "set" / "images").mkdir(parents=True)
    for k in range(3):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "set" / "images" / f"x_{k}.jpg")
    with pytest.raises(InputError) as small:
        MaskFolder(str(tmp_path / "set"), 3)
    assert list(small.value.messages) == [f"{tmp_path / 'set' / 'images'}: 3 images, not enough to hold out 3; "
                                          "hold out fewer (--set saliency_train.holdout=N, under 3) or add images"]
    with pytest.raises(InputError) as scenes:
        MaskFolder(str(tmp_path / "set"), 0, holdout_scenes="blackswan")
    assert scenes.value.messages[0].endswith("name scenes that are there, or none "
                                             "(--set saliency_train.holdout_scenes=)")


def test_balanced_loss_stays_finite_when_the_scores_are_float16():
    scores = torch.zeros(15, 2, 161, 161, dtype=torch.float16)
    y = torch.zeros(15, 161, 161, dtype=torch.long)
    y[:, :40] = 1
    total, count = SaliencyLoss("batch")(lambda x: x, (scores, y))
    assert torch.isfinite(count) and count.dtype == torch.float32
    torch.testing.assert_close(total / count, torch.tensor(float(np.log(2))), rtol=1e-3, atol=1e-3)


def test_resuming_another_solvers_snapshot_is_a_one_line_error(tmp_path):
    from guidedlabelling.io import save_checkpoint
    from guidedlabelling.solver import CaffeAdam, CaffeSGD
    from guidedlabelling.precision import grad_scaler
    from guidedlabelling.training import resume
    scaler = grad_scaler(torch.device("cpu"), "none")
    model = torch.nn.Linear(2, 2)
    sgd = CaffeSGD(model.parameters(), lr=0.1)
    model(torch.ones(1, 2)).sum().backward()
    sgd.step()
    save_checkpoint(tmp_path / "snapshot_iter_1.pth", model, {"losses": []}, sgd, 1)
    with pytest.raises(InputError, match="solver_type"):
        resume(tmp_path, model, CaffeAdam(model.parameters(), lr=0.1), scaler, logging.getLogger("t"))
    assert resume(tmp_path, model, CaffeSGD(model.parameters(), lr=0.1), scaler, logging.getLogger("t"))[0] == 1
    # a damaged latest snapshot is told which one a resume would start from without it ("re-download it" before)
    (tmp_path / "snapshot_iter_1.pth").write_bytes(b"torn")
    with pytest.raises(InputError, match=r"snapshot_iter_1.pth: unreadable checkpoint \(\w+\); delete it to train "
                                         "from the start$"):
        resume(tmp_path, model, CaffeSGD(model.parameters(), lr=0.1), scaler, logging.getLogger("t"))
    save_checkpoint(tmp_path / "snapshot_iter_2.pth", model, {"losses": []}, sgd, 2)
    (tmp_path / "snapshot_iter_2.pth").write_bytes((tmp_path / "snapshot_iter_2.pth").read_bytes()[:100])
    with pytest.raises(InputError, match=r"snapshot_iter_2.pth: unreadable checkpoint \(\w+\); delete it to resume "
                                         "from snapshot_iter_1.pth$"):
        resume(tmp_path, model, CaffeSGD(model.parameters(), lr=0.1), scaler, logging.getLogger("t"))


@pytest.mark.parametrize("mult", [1.0, 10.0])
def test_the_classifier_multiplier_scales_its_adam_steps(mult):
    """Adam's first step moves every weight by lr x its multiplier (its direction: the gradient's sign), so
    fc8_lr_mult and the seed network's score_lr_mult set that step directly."""
    from guidedlabelling.networks import build_seed_net
    from guidedlabelling.solver import CaffeAdam, param_groups
    from guidedlabelling.stages import seed_train
    torch.manual_seed(0)
    seg, seg_mults = build_deeplab(deeplab_section(fc8_lr_mult=mult, train_blocks=0), 3, logging.getLogger("t"))
    seed = build_seed_net("GAP-EffNet", 3, 1)
    for model, mults, name in ((seg, seg_mults, "fc8"), (seed, seed_train.mults({"score_lr_mult": mult}), "score")):
        layer = getattr(model, name)
        assert mults[name][0] == mult
        before = layer.weight.detach().clone()
        solver = CaffeAdam(param_groups(model, mults), lr=1e-3, weight_decay=0)
        out = model(torch.randn(2, 3, 64, 64) * 50)
        (out[0] if isinstance(out, tuple) else out).square().mean().backward()
        solver.step()
        moved = (layer.weight.detach() - before).abs()
        torch.testing.assert_close(moved.max(), torch.tensor(1e-3 * mult), rtol=1e-3, atol=0)
