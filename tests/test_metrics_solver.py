"""mIoU from a known confusion matrix; one Caffe solver step and the seed loss by hand."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from guidedlabelling.metrics import confusion, image_scores, iou_table, mean_iou, mean_scores, \
    saliency_scores
from guidedlabelling.solver import CaffeAdam, CaffeSGD, param_groups, step_lr
from guidedlabelling.training import classification_loss


def test_confusion_ignores_void():
    gt = np.array([[0, 1, 1], [2, 255, 2]])
    pred = np.array([[0, 1, 2], [2, 0, 0]])
    np.testing.assert_array_equal(confusion(gt, pred, 3), [[1, 0, 0], [0, 1, 1], [1, 0, 1]])


def test_miou_from_known_confusion():
    conf = np.array([[50, 10, 0], [5, 20, 5], [0, 0, 10]])
    # IoU0 = 50/(50+5+10) ; IoU1 = 20/(20+10+10) ; IoU2 = 10/(10+5+0)
    expected = [50 / 65, 20 / 40, 10 / 15]
    np.testing.assert_allclose(iou_table(conf), expected)
    assert abs(mean_iou(conf) - np.mean(expected)) < 1e-12


def test_miou_skips_classes_absent_everywhere():
    conf = np.array([[3, 1, 0], [1, 3, 0], [0, 0, 0]])
    assert abs(mean_iou(conf) - 0.6) < 1e-12


def test_the_seed_loss_is_caffes_sigmoid_cross_entropy_summed_and_divided_by_the_batch_size():
    """By hand: score 0 of a present class costs ln 2, ln 3 of an absent one ln 4, -ln 3 of an absent one ln 4/3;
    Caffe's SigmoidCrossEntropyLoss sums over classes and images and divides by the number of images."""
    scores = torch.tensor([[0.0, np.log(3)], [-np.log(3), 0.0]])
    tags = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    total, images = classification_loss(lambda x: (scores, None), (torch.zeros(2, 3, 8, 8), tags))
    assert images == 2 and float(total / images) == pytest.approx(np.log(64 / 3) / 2)


def test_step_policy():
    assert step_lr(0.001, 1999, 2000, 0.1) == 0.001
    assert abs(step_lr(0.001, 2000, 2000, 0.1) - 1e-4) < 1e-15
    assert abs(step_lr(0.001, 7999, 2000, 0.1) - 1e-6) < 1e-18


class Tiny(torch.nn.Module):
    """A conv weight 2, its bias 1 and a score weight -1: one parameter of each Caffe multiplier kind."""

    def __init__(self):
        super().__init__()
        self.conv1_1 = torch.nn.Conv2d(1, 1, 1)
        self.score = torch.nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            self.conv1_1.weight.fill_(2.0)
            self.conv1_1.bias.fill_(1.0)
            self.score.weight.fill_(-1.0)


def test_caffe_sgd_matches_the_update_formula_across_an_lr_change():
    net = Tiny()
    groups = param_groups(net, {"score": (10, 1, 0, 0)})
    sgd = CaffeSGD(groups, lr=0.1, momentum=0.9, weight_decay=0.01)
    grads = {"w": 0.5, "b": -0.2, "s": 0.3}
    w, b, s = 2.0, 1.0, -1.0
    vw = vb = vs = 0.0
    for lr in (0.1, 0.01):   # Caffe keeps lr inside the history: v = m v + lr * lr_mult * (g + wd * decay_mult * w)
        sgd.set_lr(lr)
        net.conv1_1.weight.grad = torch.full_like(net.conv1_1.weight, grads["w"])
        net.conv1_1.bias.grad = torch.full_like(net.conv1_1.bias, grads["b"])
        net.score.weight.grad = torch.full_like(net.score.weight, grads["s"])
        sgd.step()
        vw = 0.9 * vw + lr * 1 * (grads["w"] + 0.01 * 1 * w)
        vb = 0.9 * vb + lr * 2 * (grads["b"] + 0.0)          # biases: lr_mult 2, decay_mult 0
        vs = 0.9 * vs + lr * 10 * (grads["s"] + 0.01 * 1 * s)  # score: lr_mult 10, decay_mult 1
        w, b, s = w - vw, b - vb, s - vs
    assert abs(net.conv1_1.weight.item() - w) < 1e-6
    assert abs(net.conv1_1.bias.item() - b) < 1e-6
    assert abs(net.score.weight.item() - s) < 1e-6


def test_caffe_adam_matches_the_update_formula_across_an_lr_change():
    """Caffe's Adam: bias-corrected rate lr * lr_mult * sqrt(1 - b2^t) / (1 - b1^t) on m / (sqrt(v) + delta)."""
    net = Tiny()
    adam = CaffeAdam(param_groups(net, {"score": (10, 1, 0, 0)}), lr=0.1, momentum=0.9, weight_decay=0.01,
                     momentum2=0.99, delta=1e-3)
    grads = [{"w": 0.5, "b": -0.2, "s": 0.3}, {"w": -1.0, "b": 0.4, "s": 0.1}]
    value = {"w": 2.0, "b": 1.0, "s": -1.0}
    mults = {"w": (1, 1), "b": (2, 0), "s": (10, 1)}  # (lr_mult, decay_mult): biases 2 / 0, score 10 / 1
    m, v = dict.fromkeys(value, 0.0), dict.fromkeys(value, 0.0)
    for t, (lr, g) in enumerate(zip((0.1, 0.01), grads), 1):
        adam.set_lr(lr)
        net.conv1_1.weight.grad = torch.full_like(net.conv1_1.weight, g["w"])
        net.conv1_1.bias.grad = torch.full_like(net.conv1_1.bias, g["b"])
        net.score.weight.grad = torch.full_like(net.score.weight, g["s"])
        adam.step()
        for k, (lr_mult, decay_mult) in mults.items():
            grad = g[k] + 0.01 * decay_mult * value[k]
            m[k] = 0.9 * m[k] + 0.1 * grad
            v[k] = 0.99 * v[k] + 0.01 * grad ** 2
            value[k] -= lr * lr_mult * (1 - 0.99 ** t) ** 0.5 / (1 - 0.9 ** t) * m[k] / (v[k] ** 0.5 + 1e-3)
    assert abs(net.conv1_1.weight.item() - value["w"]) < 1e-6
    assert abs(net.conv1_1.bias.item() - value["b"]) < 1e-6
    assert abs(net.score.weight.item() - value["s"]) < 1e-6


def test_clip_gradients_scales_by_global_norm():
    net = Tiny()
    with torch.no_grad():
        net.conv1_1.weight.zero_()
        net.conv1_1.bias.zero_()
        net.score.weight.zero_()
    sgd = CaffeSGD(param_groups(net, {}), lr=1.0, momentum=0.0, weight_decay=0.0, clip_gradients=1.0)
    net.conv1_1.weight.grad = torch.full_like(net.conv1_1.weight, 3.0)
    net.conv1_1.bias.grad = torch.full_like(net.conv1_1.bias, 0.0)
    net.score.weight.grad = torch.full_like(net.score.weight, 4.0)   # global norm 5 -> scale 1/5
    sgd.step()
    assert abs(net.conv1_1.weight.item() + 0.6) < 1e-6   # lr_mult 1
    assert abs(net.score.weight.item() + 0.8) < 1e-6


def test_saliency_scores_by_hand():
    """pysodmetrics' MAE and max F of tiny maps: a map spanning 0..255 is taken as it is, a map whose minimum is
    above 0 is min-max normalised first (the field's convention), a constant map is only scaled to 0..1."""
    mask = np.array([[True, False], [False, False]])
    s = saliency_scores([(np.array([[255, 128], [0, 0]], np.uint8), mask)])
    # MAE = (0 + 128/255 + 0 + 0) / 4 ; at t in (128, 255] precision = recall = 1 -> max F = 1
    assert s["MAE"] == pytest.approx(128 / 255 / 4) and s["max_F"] == pytest.approx(1.0)
    s = saliency_scores([(np.array([[200, 100], [50, 50]], np.uint8), mask)])
    # normalised (v - 50) / 150: [[1, 1/3], [0, 0]] -> MAE = (1/3) / 4
    assert s["MAE"] == pytest.approx(1 / 12) and s["max_F"] == pytest.approx(1.0)
    s = saliency_scores([(np.full((2, 2), 200, np.uint8), mask)])
    # MAE = (55 + 3 * 200) / 255 / 4; every threshold <= 200 selects all 4 pixels: P = 1/4, R = 1
    assert s["MAE"] == pytest.approx(655 / 255 / 4)
    assert s["max_F"] == pytest.approx(1.3 * 0.25 / (0.3 * 0.25 + 1))


def test_saliency_scores_of_a_perfect_map_and_of_flat_pixel_lists():
    mask = np.zeros((20, 30), bool)
    mask[5:15, 10:25] = True
    s = saliency_scores([(mask.astype(np.uint8) * 255, mask)])
    assert (s["MAE"], s["max_F"], s["S_measure"], s["images"]) == (0, pytest.approx(1), pytest.approx(1), 1)
    assert s["max_E"] == pytest.approx(600 / 599)  # the field's E sums over N pixels, divides by N - 1
    flat = saliency_scores([(mask.ravel().astype(np.uint8) * 255, mask.ravel())])
    assert flat["max_F"] == pytest.approx(1) and flat["S_measure"] is None and flat["max_E"] is None
    assert saliency_scores([])["images"] == 0


def pysodmetrics_over(pairs):
    """MAE, max F, S and max E of pairs by pysodmetrics' own accumulation over all of them (its README's use)."""
    import py_sod_metrics as sod
    mae, sm, em = sod.MAE(), sod.Smeasure(), sod.Emeasure()
    fm = sod.FmeasureV2({"f": sod.FmeasureHandler(with_dynamic=True, with_adaptive=False, beta=0.3)})
    for sal, mask in pairs:
        for measure in (mae, fm, sm, em):
            measure.step(sal, mask.astype(np.uint8) * 255)
    return (mae.get_results()["mae"], fm.get_results()["f"]["dynamic"].max(), sm.get_results()["sm"],
            em.get_results()["em"]["curve"].max())


def test_images_scored_once_average_to_pysodmetrics_over_each_group():
    """The held-out scores score each image once (image_scores) and average them per group (mean_scores): the
    same numbers, to the bit, as pysodmetrics accumulating each group itself."""
    rng = np.random.default_rng(0)
    pairs = []
    for k in range(7):
        h, w = rng.integers(20, 40, 2)
        mask = np.zeros((h, w), bool)
        top, left = rng.integers(0, h // 2), rng.integers(0, w // 2)
        mask[top:rng.integers(h // 2 + 1, h), left:rng.integers(w // 2 + 1, w)] = True
        pairs.append((np.clip(rng.normal(90 + 70 * mask, 60), 0, 255).astype(np.uint8), mask))
    scores = [image_scores(*p) for p in pairs]
    for group in ([0, 1, 2, 3, 4, 5, 6], [1, 4, 6], [3]):
        ours = mean_scores([scores[i] for i in group])
        assert (ours["MAE"], ours["max_F"], ours["S_measure"], ours["max_E"]) == \
            pysodmetrics_over([pairs[i] for i in group])
        assert ours["images"] == len(group)


def hand_max_f(sal, mask, beta2=0.3):
    """The project's former hand-written max F of one 8-bit map: precision and recall at each of the 256
    thresholds (pixels >= t), F maximised."""
    pos = np.bincount(sal[mask].ravel(), minlength=256)[::-1].cumsum()[::-1]
    allp = np.bincount(sal.ravel(), minlength=256)[::-1].cumsum()[::-1]
    prec, rec = pos / np.maximum(allp, 1), pos / max(mask.sum(), 1)
    return ((1 + beta2) * prec * rec / np.maximum(beta2 * prec + rec, 1e-12)).max()


@pytest.mark.parametrize("seed", range(5))
def test_max_f_agrees_with_the_former_hand_written_one_on_maps_spanning_0_to_255(seed):
    """One image at a time: over several, the former averaged precision and recall before F, the field averages
    each image's F."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((30, 40), bool)
    mask[rng.integers(0, 10):rng.integers(15, 30), rng.integers(0, 15):rng.integers(20, 40)] = True
    sal = np.clip(rng.normal(100 + 80 * mask, 50), 0, 255).astype(np.uint8)
    sal.flat[:2] = 0, 255
    assert saliency_scores([(sal, mask)])["max_F"] == pytest.approx(hand_max_f(sal, mask), abs=1e-12)


def test_saliency_quality_by_hand():
    """Two 1x4 maps: IoU at each threshold, MAE, and max F (metrics.saliency_scores) in one summary (no S or E
    measure of maps without their 2-D layout)."""
    from guidedlabelling.stages.saliency import saliency_quality
    pairs = [(np.array([255, 128, 26, 0], np.uint8), np.array([True, True, False, False])),
             (np.array([255, 255, 255, 255], np.uint8), np.array([True, False, False, False]))]
    q = saliency_quality(pairs)
    # at 10% (25.5): image 1 keeps 255,128,26 (3 px, 2 fg); image 2 all 4 (1 fg): IoU = (2+1)/(3+4) = 3/7
    assert q["foreground_IoU"]["10"] == pytest.approx(100 * 3 / 7)
    # at 50% (127.5): image 1 keeps 255,128 (both fg); image 2 all 4: IoU = (2+1)/(2+4) = 1/2
    assert q["foreground_IoU"]["50"] == pytest.approx(50.0)
    assert q["foreground_IoU"]["90"] == pytest.approx(100 * 2 / 6)      # 229.5: image 1 keeps 255 only
    assert q["MAE"] == pytest.approx(((0 + 127 / 255 + 26 / 255 + 0) / 4 + 3 / 4) / 2)
    assert q["images"] == 2 and 0 < q["max_F"] <= 1 and q["S_measure"] is None


def test_pixel_accuracy_and_void_share_are_none_where_no_pixel_was_scored(tmp_path):
    """Masks of val images alone: the guide labels of train are scored on no pixel. Their mIoU is n/a, and so are the
    pixel accuracy and void share, not 0 (done.json said 0% accurate, and the report's stage table showed it)."""
    from types import SimpleNamespace
    from guidedlabelling.inference import evaluate_folder
    from guidedlabelling.io import save_label_png
    from guidedlabelling.metrics import report
    assert report(np.zeros((2, 2), np.int64), ["background", "cat"])["pixel_accuracy"] is None
    assert report(np.array([[2, 1], [0, 1]]), ["background", "cat"])["pixel_accuracy"] == 75.0
    save_label_png(tmp_path / "a.png", np.array([[0, 1], [255, 1]], np.uint8))
    truth = {"void": np.full((2, 2), 255, np.uint8), "masked": np.array([[0, 1], [1, 0]], np.uint8)}
    for kind, (accuracy, void) in {"void": (None, None), "masked": (pytest.approx(200 / 3), 25.0)}.items():
        data = SimpleNamespace(items=[SimpleNamespace(id="a")], classes=["background", "cat"], num_classes=2,
                               label=lambda i, kind=kind: truth[kind], annotated_at=lambda i: True)   # (all void)
        scores = evaluate_folder(data, tmp_path)   # masked: 2 of the 3 labelled pixels right, 1 of the 4 left void
        assert (scores["pixel_accuracy"], scores["void"]) == (accuracy, void)


def test_commands_start_without_importing_the_saliency_measures():
    """pysodmetrics imports scikit-learn, 1.2 s of every command's start: only the saliency scores import it."""
    code = ("import sys, numpy as np, guidedlabelling.driver, guidedlabelling.prediction\n"
            "print(sorted({'py_sod_metrics', 'sklearn'} & set(sys.modules)))\n"
            "guidedlabelling.metrics.image_scores(np.zeros((4, 4), np.uint8), np.zeros((4, 4), bool))\n"
            "print('py_sod_metrics' in sys.modules)")   # in a process of its own: this one's tests imported it
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout == "[]\nTrue\n"
