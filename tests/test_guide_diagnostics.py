"""What the guide labels keep of each tagged class (guide_diagnostics.py), the warnings on a class the rule drops and
on a class whose seed cores saliency rarely marks, and the options that keep its seeds (guide_labels.dropped seeds)
and leave its weakly salient seed cores void (guide_labels.unsure void), and the option that keeps the rule's unused
seed components only for a class saliency missed (guide_labels.unused absent): by hand, and through the guide command
on own data whose saliency misses one class."""
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from guidedlabelling.driver import print_guide_classes
from guidedlabelling.inference import tags_marked
from guidedlabelling.results import unmarked_classes, unscored_classes, weak_reference
from guidedlabelling.guide_diagnostics import alike_classes, alike_warnings, class_report, dropped_often, \
    format_report, rarely_salient, table_title, taker, unsure_warnings, warnings
from guidedlabelling.guide_rules import drop_unused, dropped, keep_dropped, void_unsure
from guidedlabelling.io import load_label_png, save_gray_png, save_heatmap_mat, save_label_png
from guidedlabelling.seeds import SeedRule
from guidedlabelling.visualize import CAPTION_HEIGHT, GAP, MIN_TILE_HEIGHT

ROOT = Path(__file__).resolve().parents[1]


def test_dropped_counts_the_seed_pixels_the_guide_keeps():
    seed = np.zeros((6, 6), np.uint8)
    seed[:3, :3] = 1                      # 9 seed pixels of class 1
    guide = np.zeros_like(seed)
    guide[0, 0] = 1                       # keeps 1 of them
    assert not dropped(seed, guide, 1, 0.1)   # 1 >= 0.9
    assert dropped(seed, guide, 1, 0.2)       # 1 < 1.8
    assert not dropped(seed, guide, 3, 0.5)   # no seeds: nothing to drop


def test_keep_dropped_gives_back_seeds_on_background_only():
    seed = np.array([[1, 1, 1, 0],
                     [1, 1, 1, 0],
                     [2, 2, 0, 0]], np.uint8)
    guide = np.array([[0, 0, 3, 0],
                      [0, 0, 0, 0],
                      [2, 2, 0, 3]], np.uint8)
    out = keep_dropped(guide, seed, [1, 2], 0.1)
    expected = np.array([[1, 1, 3, 0],          # class 1 kept none of its 6 seeds: they come back, but not
                         [1, 1, 1, 0],          # where the rule gave another class (3)
                         [2, 2, 0, 3]], np.uint8)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(keep_dropped(guide, seed, [2], 0.1), guide)  # class 2 kept all its seeds


def test_void_unsure_voids_weakly_salient_cores_on_background_only():
    guide = np.array([[0, 0, 0, 3],
                      [0, 0, 0, 0],
                      [2, 0, 0, 0]], np.uint8)
    core = np.array([[1, 1, 0, 1],
                     [1, 1, 0, 0],
                     [2, 2, 0, 0]], np.uint8)
    weak = np.array([[1, 0, 1, 1],
                     [1, 1, 1, 1],
                     [1, 1, 1, 1]], bool)
    expected = np.array([[255, 0, 0, 3],        # class 1's core: void where weakly salient and background; (0, 1)
                         [255, 255, 0, 0],      # is not salient, (0, 3) is another class's label
                         [2, 0, 0, 0]], np.uint8)   # class 2 is not among the classes
    np.testing.assert_array_equal(void_unsure(guide, core, weak, [1]), expected)
    np.testing.assert_array_equal(void_unsure(guide, core, weak, []), guide)


def test_drop_unused_keeps_stray_pixels_only_of_classes_saliency_missed():
    """20x20: saliency components need 4 px (1%); a single salient pixel is none."""
    guide = np.zeros((20, 20), np.uint8)
    salient = np.zeros((20, 20), bool)
    guide[0:4, 0:4], salient[0:4, 0:4] = 1, True      # class 1 holds a saliency component ...
    guide[10:12, 10:12] = 1                            # ... so its 4 stray px become background
    guide[15:18, 0:3] = 2                              # class 2: no saliency at all, kept
    guide[17:20, 17:20], salient[19, 19] = 3, True     # class 3: one salient pixel is no component, kept
    guide[5:7, 5:7], salient[5:7, 5:9] = 4, True       # class 4 holds a component but is in `kept` ...
    guide[12:14, 0:2] = 4                              # ... so its stray pixels stay
    guide[10, 0], guide[1, 1] = 255, 255               # void stays void, outside and inside a component
    guide[3, 3] = 5                                    # class 5 has one pixel of class 1's component ...
    guide[8:10, 15:17] = 5                             # ... so its stray pixels become background too
    expected = guide.copy()
    expected[10:12, 10:12] = 0
    expected[8:10, 15:17] = 0
    np.testing.assert_array_equal(drop_unused(guide, salient, [4]), expected)
    expected[12:14, 0:2] = 0
    np.testing.assert_array_equal(drop_unused(guide, salient), expected)


def box_map(hw, boxes):
    """One heatmap per box: 1 inside, 0 outside (seed at any threshold = the box)."""
    maps = np.zeros((len(boxes),) + hw, np.float32)
    for k, (y0, y1, x0, x1) in enumerate(boxes):
        maps[k, y0:y1, x0:x1] = 1
    return maps


def test_classes_always_tagged_together_with_alike_maps_are_named(tmp_path):
    """face is tagged with body in all of its 5 images, and its map is body's plus one pixel: Pearson correlation
    (16/64 - 16*17/64**2) / sqrt(16/64 * 48/64 * 17/64 * 47/64) = 0.95998. cat and body share 5 images too, with
    disjoint maps (negative correlation); a flat map has none to measure. dog's map is body's in the 5 images tagged
    with both, but 6 more images have dog alone: under half of its 11 are together, so tags tell them apart."""
    hw = (8, 8)
    body, face, cat = (0, 4, 0, 4), (0, 4, 0, 4), (4, 8, 4, 8)
    items, tags = [], []
    for k in range(5):
        maps = box_map(hw, [body, face])
        maps[1, 5, 5] = 1                               # face: body's box and one pixel more
        save_heatmap_mat(tmp_path / f"f{k}.mat", maps, hw)
        save_heatmap_mat(tmp_path / f"c{k}.mat", box_map(hw, [body, cat]), hw)
        items += [SimpleNamespace(id=f"f{k}"), SimpleNamespace(id=f"c{k}")]
        tags += [[1, 2], [1, 3]]
    save_heatmap_mat(tmp_path / "b.mat", box_map(hw, [body]), hw)
    save_heatmap_mat(tmp_path / "flat.mat", np.zeros((2,) + hw, np.float32), hw)
    items += [SimpleNamespace(id="b"), SimpleNamespace(id="flat")]
    tags += [[1], [1, 2]]
    for k in range(11):
        save_heatmap_mat(tmp_path / f"d{k}.mat", box_map(hw, [body, body] if k < 5 else [cat]), hw)
        items.append(SimpleNamespace(id=f"d{k}"))
        tags.append([1, 4] if k < 5 else [4])
    data = SimpleNamespace(num_classes=5, classes=["background", "body", "face", "cat", "dog"], items=items)
    data.image_classes = lambda i: tags[i]
    alike = alike_classes(data, tmp_path)
    assert alike == [{"classes": ["body", "face"], "together": 6, "images_a": 17, "images_b": 6,
                      "correlation": pytest.approx(0.95998, abs=1e-5)}]   # the flat image counts as together only
    line, = alike_warnings(alike)
    assert line.startswith("body and face: tagged together in 6 of body's 17 images and of face's 6, where their class "
                           "maps correlate 0.96: tags alone do not tell them apart")
    tags[8] = [2]                                       # one face image without body: 4 measured, under 5
    assert alike_classes(data, tmp_path) == []


def test_class_report_by_hand(tmp_path):
    hw = (8, 8)
    data = SimpleNamespace(num_classes=3, classes=["background", "cat", "dog"],
                           items=[SimpleNamespace(id="a"), SimpleNamespace(id="b")])
    data.image_classes = lambda i: [[1, 2], [1]][i]
    data.at_work_size = lambda i, grey: grey   # the images are within the work size
    # a: cat seeds 16 px (rows 0-3, cols 0-3), dog seeds 4 px; the guide keeps 8 cat seed px + 8 others, no dog
    maps = box_map(hw, [(0, 4, 0, 4), (6, 8, 6, 8)])
    maps[0, :2, :4] = 0.4                     # cat's core (score >= 50%): rows 2-3, 8 px; dog's core: its 4 px
    save_heatmap_mat(tmp_path / "a.mat", maps, hw)
    guide = np.zeros(hw, np.uint8)
    guide[2:6, 0:4] = 1
    save_label_png(tmp_path / "guide" / "a.png", guide)
    sal = np.zeros(hw, np.uint8)
    sal[3:8, 0:8] = 200                       # salient: 4 of cat's 8 core px, all 4 of dog's
    save_gray_png(tmp_path / "sal" / "a.png", sal)
    # b: cat seeds 16 px, all core, 0 salient; the guide keeps 1 of them
    save_heatmap_mat(tmp_path / "b.mat", box_map(hw, [(0, 4, 0, 4)]), hw)
    guide = np.zeros(hw, np.uint8)
    guide[0, 0] = 1
    save_label_png(tmp_path / "guide" / "b.png", guide)
    save_gray_png(tmp_path / "sal" / "b.png", np.full(hw, 127, np.uint8))
    report = class_report(data, tmp_path, tmp_path / "guide", SeedRule(20), 0.1, tmp_path / "sal", 128, 50)
    # the rule labels cat's 24 core px: 8 + 1 cat, 15 background; dog's 4: background
    assert report["cat"].pop("cores_taken") == {"by": "background", "share": pytest.approx(15 / 24)}
    assert report["dog"].pop("cores_taken") == {"by": "background", "share": 1.0}
    assert report["cat"] == pytest.approx({"images": 2, "seed_kept": 9 / 32, "guide_area": (16 + 1) / 128,
                                           "dropped": 0.5, "core_salient": 4 / 24})
    assert report["dog"] == pytest.approx({"images": 1, "seed_kept": 0.0, "guide_area": 0.0, "dropped": 1.0,
                                           "core_salient": 1.0})
    assert dropped_often(report, 0.5) == ["cat", "dog"] and dropped_often(report, 0.6) == ["dog"]
    line, = warnings(report, ["cat"], "G2", 10)
    assert line.startswith("cat: the G2 rule drops it (keeps under 10% of its seed pixels) in 1 of its 2 images, "
                           "and keeps 28% of its seed pixels overall (saliency rarely marks it)")   # no cores_taken
    assert "--set guide_labels.dropped=seeds" in line
    # median of 4/24 and 1: 7/12; cat's 1/6 is 0.286 of it
    assert rarely_salient(report, 0.3) == ["cat"] and rarely_salient(report, 0.28) == []
    line, = unsure_warnings(report, ["cat"], 50, voided=False)
    assert line.startswith("cat: saliency marks 17% of its seed cores (seed score 50% or more; the median class 58%)")
    assert "--set guide_labels.unsure=void" in line


@pytest.mark.parametrize("cow", [1, 19])   # 19: classes past 12, whose pair index overflowed 8 bits
def test_a_dropped_class_says_which_label_takes_its_seed_cores(tmp_path, cow):
    """Where the rule labels a class's seed cores: another class tagged in its images (grass taking the cows it
    touches), or background where saliency does not mark them."""
    hw, grass = (8, 8), cow + 1
    data = SimpleNamespace(num_classes=cow + 2, classes=["background"] + [f"c{k}" for k in range(1, cow)] +
                           ["cow", "grass"], items=[SimpleNamespace(id=name) for name in "abc"])
    data.image_classes = lambda i: [[cow, grass], [cow, grass], [grass]][i]
    data.at_work_size = lambda i, grey: grey
    for name in "abc":   # cow's seeds (rows 0-3) and grass's (rows 4-7) all core; the rule labels the cow grass
        save_heatmap_mat(tmp_path / f"{name}.mat", box_map(hw, [(0, 4, 0, 8), (4, 8, 0, 8)][name == "c":]), hw)
        guide = np.full(hw, grass, np.uint8)
        guide[0, :] = cow if name == "a" else 0          # a: 8 cow core px kept; b: 8 background
        save_label_png(tmp_path / "guide" / f"{name}.png", guide)
        save_gray_png(tmp_path / "sal" / f"{name}.png", np.full(hw, 255, np.uint8))
    report = class_report(data, tmp_path, tmp_path / "guide", SeedRule(20), 0.1, tmp_path / "sal", 128, 50)
    # cow: 64 core px, 8 cow, 8 background, 48 grass, which is tagged in both of its images
    assert report["cow"]["cores_taken"] == {"by": "grass", "share": 48 / 64, "tagged_together": 2}
    assert report["grass"]["cores_taken"] == {"by": "background", "share": 0.0}   # all its cores kept
    line, = warnings(report, ["cow"], "G2", 10)
    assert "overall (it labels 75% of its seed cores grass, which is tagged in 2 of its 2 images and takes the " \
        "salient regions they share);" in line
    report["cow"]["cores_taken"] = {"by": "background", "share": 0.5}
    assert "overall (it labels 50% of its seed cores background: saliency marks 100% of them);" in \
        warnings(report, ["cow"], "G2", 10)[0]
    assert "overall (its seed cores are kept, the seed pixels around them are not);" in \
        warnings(report, ["grass"], "G2", 10)[0]
    report["cow"]["cores_taken"] = None
    assert "overall (it has no seed cores);" in warnings(report, ["cow"], "G2", 10)[0]


def test_a_class_that_takes_a_share_of_the_cores_is_named_beside_background():
    """traffic's 100 seed core px: 6 kept, 49 background, 45 sign, which is tagged in both of its images ('traffic
    sign' written with a space): the warning names background, the first, and sign; under 10%, no class."""
    classes = ["background", "traffic", "sign"]
    taken = taker(1, np.array([49, 6, 45, 0]), np.array([0, 2, 2]), classes)
    assert taken == {"by": "background", "share": 0.49, "class": {"by": "sign", "share": 0.45, "tagged_together": 2}}
    row = {"images": 2, "seed_kept": 0.3, "guide_area": 0.1, "dropped": 0.5, "core_salient": 0.51,
           "cores_taken": taken}
    assert "overall (it labels 49% of its seed cores background: saliency marks 51% of them; and 45% of its seed " \
        "cores sign, which is tagged in 2 of its 2 images and takes the salient regions they share);" in \
        warnings({"traffic": row}, ["traffic"], "G2", 10)[0]
    assert taker(1, np.array([85, 6, 9, 0]), np.array([0, 2, 2]), classes) == {"by": "background", "share": 0.85}


def test_report_of_a_guide_folder_made_before_core_salient_prints_n_a():
    row = {"images": 3, "seed_kept": 0.25, "guide_area": 0.1, "dropped": 0.0}   # done.json before 4c09083
    lines = format_report({"cat": row, "dog": row | {"core_salient": 0.5}})
    assert lines[1].split() == ["cat", "3", "25.0", "10.0", "0.0", "n/a"]
    assert lines[2].split() == ["dog", "3", "25.0", "10.0", "0.0", "50.0"]
    final = {"final_area": 0.125, "cores_void": None}   # a class without seed cores
    lines = format_report({"cat": row | {"core_salient": 0.5} | final, "dog": row | final | {"cores_void": 0.2}})
    assert lines[0].split()[-6:] == ["final", "area", "%", "cores", "void", "%"]
    assert lines[1].split()[-2:] == ["12.5", "n/a"] and lines[2].split()[-2:] == ["12.5", "20.0"]
    paper, msrc = {"dropped": "none", "unsure": "none", "unused": "keep"}, {"dropped": "seeds", "unsure": "void",
                                                                          "unused": "absent"}
    assert table_title({"cat": row}, paper) == "what the rule's guide labels keep of each class (train; no ground " \
        "truth needed)"
    assert table_title({"cat": row | final}, msrc).endswith("; before guide_labels.dropped, unsure and unused, which "
                                                            "the final columns follow)")
    assert table_title({"cat": row}, msrc).endswith("; before guide_labels.dropped, unsure and unused)")   # made by
    # an earlier version: no final columns, and its figures are still the rule's


# ---- through the guide command: own data whose saliency marks only a small part of every cat ----

H, W = 48, 64
CAT, DOG = (4, 28, 4, 28), (20, 44, 36, 60)   # boxes (y0, y1, x0, x1): 576 px each
CAT_SALIENT = (8, 14, 8, 14)                   # 36 px of the cat, over 1% of the image: G2 keeps only these
CAT_WEAK = (14, 20, 4, 28)                     # 144 px of the cat that saliency marks weakly (40 of 255)


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    base = tmp_path_factory.mktemp("saliency_misses_cat")
    rng = np.random.default_rng(0)
    rows = []
    for k in range(6):
        tags = ["cat", "dog"] if k % 2 == 0 else ["cat"]
        img = rng.integers(90, 160, (H, W, 3)).astype(np.uint8)
        mask, sal = np.zeros((H, W), np.uint8), np.zeros((H, W), np.uint8)
        boxes = [CAT, DOG][:len(tags)]
        for value, (y0, y1, x0, x1) in enumerate(boxes, 1):
            img[y0:y1, x0:x1] = (200, 60 * value, 40)
            mask[y0:y1, x0:x1] = value
        y0, y1, x0, x1 = CAT_SALIENT
        sal[y0:y1, x0:x1] = 255
        y0, y1, x0, x1 = CAT_WEAK
        sal[y0:y1, x0:x1] = 40
        if "dog" in tags:
            y0, y1, x0, x1 = DOG
            sal[y0:y1, x0:x1] = 255
        save_own_image(base, f"im{k}", img, mask, sal, box_map((H, W), boxes))
        rows.append(f"im{k}.png,{' '.join(tags)},train")
    (base / "tags.csv").write_text("image,tags,split\n" + "\n".join(rows) + "\n")
    return base


def save_own_image(base, name, img, mask, sal, maps):
    """One image of an own-data fixture: the photo, its mask and saliency map (PNG), its seed heatmaps (.mat)."""
    for sub, array in (("images", img), ("masks", mask), ("saliency", sal)):
        (base / sub).mkdir(exist_ok=True)
        Image.fromarray(array).save(base / sub / f"{name}.png")
    save_heatmap_mat(base / "seeds" / f"{name}.mat", maps, (H, W))


def generate(own, out_dir, *extra):
    cmd = [sys.executable, str(ROOT / "src/guide_generation/generate.py"), "--config", "smoke",
           "--images", str(own / "images"), "--tags", str(own / "tags.csv"), "--masks", str(own / "masks"),
           "--seed_dir", str(own / "seeds"), "--saliency_dir", str(own / "saliency"), "--out_dir", str(out_dir),
           "--out_root", str(own / "runs"), *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out_dir / "done.json").read_text()), proc.stdout + proc.stderr


def cat_pixels(folder):
    return [int((load_label_png(folder / f"im{k}.png") == 1).sum()) for k in range(6)]


def test_the_rule_dropping_a_class_is_reported(own, capsys):
    done, log = generate(own, own / "paper")
    assert cat_pixels(own / "paper") == [36] * 6            # the paper's rule: only the salient part of each cat
    assert done["classes"]["cat"].pop("cores_taken") == {"by": "background", "share": pytest.approx(540 / 576)}
    assert done["classes"]["cat"] == pytest.approx({"images": 6, "seed_kept": 36 / 576, "guide_area": 36 / (H * W),
                                                    "dropped": 1.0, "core_salient": 36 / 576})
    assert done["classes"]["dog"]["dropped"] == 0 and done["classes"]["dog"]["seed_kept"] == 1
    assert done["classes"]["dog"]["core_salient"] == 1
    assert len(done["warnings"]) == 2 and done["warnings"][0].startswith("cat: the G2 rule drops it")
    assert done["warnings"][1].startswith("cat: saliency marks 6% of its seed cores")
    assert "in 6 of its 6 images, and keeps 6% of its seed pixels overall (it labels 94% of its seed cores " \
        "background: saliency marks 6% of them)" in done["warnings"][0]
    assert all(line in log for line in done["warnings"])
    assert "dropped_seeds_kept" not in done and "unsure_void" not in done and done["guide"]["void"] == 0
    assert "final_area" not in done["classes"]["cat"]          # no option after the rule: its labels are the final ones
    print_guide_classes(done, {"dropped": "none", "unsure": "none", "unused": "keep"})
    printed = capsys.readouterr().out
    assert f"warning: {done['warnings'][0]}" in printed
    assert [line.split()[:2] for line in printed.splitlines()[3:5]] == [["cat", "6"], ["dog", "3"]]


def test_dropped_seeds_keeps_the_class(own):
    done, _ = generate(own, own / "kept", "--dropped", "seeds")
    assert cat_pixels(own / "kept") == [576] * 6              # the cat's seeds, where the rule left background
    assert cat_pixels(own / "kept" / "rule") == [36] * 6      # the rule's labels, kept beside them
    assert done["dropped_seeds_kept"] == ["cat"] and done["warnings"][0].endswith(
        "its seeds are kept there (guide_labels.dropped seeds: 19% of its images' area, the rule's 1%); if its "
        "objects are smaller than that and saliency outlines them (the guide panels, --set vis=true), its seeds "
        "spill beyond them: --set guide_labels.dropped=none keeps the rule's labels")   # 576 and 36 of 3072 px
    cat = done["classes"]["cat"]
    assert cat["final_area"] == 576 / (H * W) and cat["guide_area"] == 36 / (H * W)
    assert done["guide"]["per_class_IoU"]["cat"] == pytest.approx(100)
    paper, _ = generate(own, own / "paper")
    assert paper["guide"]["per_class_IoU"]["cat"] == pytest.approx(100 * 36 / 576)


def test_panels_show_the_final_labels(own):
    generate(own, own / "panels", "--dropped", "seeds", "--vis")
    assert sorted(p.name for p in (own / "panels" / "vis").iterdir()) == [f"im{k}.png" for k in range(6)]
    assert not (own / "panels" / "rule" / "vis").exists()
    scale = -(-MIN_TILE_HEIGHT // H)             # tiles enlarged to at least 160 px high: 4x, under 22-px captions
    panel = np.asarray(Image.open(own / "panels" / "vis" / "im0.png").convert("RGB"))
    x = 3 * (W * scale + GAP)                    # image, seeds, saliency, then the guide labels
    guide_tile = panel[CAPTION_HEIGHT:CAPTION_HEIGHT + H * scale, x:x + W * scale]
    assert (guide_tile == (128, 0, 0)).all(-1).sum() == 576 * scale ** 2   # the kept seeds, not the rule's 36


def test_a_class_dropped_rarely_keeps_the_rule(own):
    done, _ = generate(own, own / "rarely", "--dropped", "seeds", "--dropped_share", "5",   # 36/576 = 6.25% kept
                       "--unsure_share", "10")       # cat: 6.25% of its cores salient, the median 53.1%
    assert done["dropped_seeds_kept"] == [] and done["warnings"] == []
    assert cat_pixels(own / "rarely") == [36] * 6


def test_unsure_void_leaves_the_weakly_salient_cores_void(own):
    done, log = generate(own, own / "unsure", "--unsure", "void")
    assert cat_pixels(own / "unsure") == [36] * 6
    assert [int((load_label_png(own / "unsure" / f"im{k}.png") == 255).sum()) for k in range(6)] == [144] * 6
    assert cat_pixels(own / "unsure" / "rule") == [36] * 6
    assert done["unsure_void"] == ["cat"] and done["warnings"][1].endswith(
        "so the rule gives much of it to background; guide_labels.unsure void leaves 25% of its seed cores void "
        "(those weakly salient)")                          # 144 of its 576 core px
    assert done["classes"]["cat"]["cores_void"] == 144 / 576 and done["classes"]["cat"]["final_area"] == 36 / (H * W)
    assert done["classes"]["dog"]["cores_void"] == 0 and done["classes"]["dog"]["final_area"] == 576 / (H * W)
    assert done["guide"]["void"] == pytest.approx(100 * 144 / (H * W))
    assert done["guide"]["per_class_IoU"]["cat"] == pytest.approx(100 * 36 / (576 - 144))   # void not counted
    both, _ = generate(own, own / "both", "--unsure", "void", "--dropped", "seeds")
    assert cat_pixels(own / "both") == [576] * 6 and both["guide"]["void"] == 0   # the seeds came back first
    assert both["classes"]["cat"]["cores_void"] == 0 and both["classes"]["cat"]["final_area"] == 576 / (H * W)
    assert "guide_labels.unsure void leaves 0% of its seed cores void" in both["warnings"][1]


STRAY = (34, 44, 4, 20)                        # 160 px of dog seeds off the dog, where saliency is weak


@pytest.fixture(scope="module")
def stray(tmp_path_factory):
    """Own data whose dog seeds spill onto a second component that saliency does not mark (the dog itself is
    salient), and whose cat saliency misses entirely."""
    base = tmp_path_factory.mktemp("stray_dog_seeds")
    rng = np.random.default_rng(1)
    rows = []
    for k in range(4):
        img = rng.integers(90, 160, (H, W, 3)).astype(np.uint8)
        mask, sal = np.zeros((H, W), np.uint8), np.zeros((H, W), np.uint8)
        for value, (y0, y1, x0, x1) in enumerate([CAT, DOG], 1):
            mask[y0:y1, x0:x1] = value
        y0, y1, x0, x1 = DOG
        sal[y0:y1, x0:x1] = 255
        y0, y1, x0, x1 = STRAY
        sal[y0:y1, x0:x1] = 100                    # under salthres (50% of 255): no saliency component
        maps = box_map((H, W), [CAT, DOG])
        maps[1, y0:y1, x0:x1] = 1                  # the dog's seeds spill onto STRAY too
        save_own_image(base, f"im{k}", img, mask, sal, maps)
        rows.append(f"im{k}.png,cat dog,train")
    (base / "tags.csv").write_text("image,tags,split\n" + "\n".join(rows) + "\n")
    return base


def test_unused_absent_drops_the_stray_seeds_of_a_found_class(stray):
    def pixels(folder, value):
        return [int((load_label_png(folder / f"im{k}.png") == value).sum()) for k in range(4)]

    done, _ = generate(stray, stray / "absent", "--unused", "absent")
    assert pixels(stray / "absent" / "rule", 2) == [576 + 160] * 4    # the paper's rule: the stray seeds keep dog
    assert pixels(stray / "absent", 2) == [576] * 4                   # saliency found the dog: they are background
    assert pixels(stray / "absent", 1) == [576] * 4                   # saliency missed the cat: its seeds stay
    assert done["guide"]["per_class_IoU"]["dog"] == pytest.approx(100)
    paper, _ = generate(stray, stray / "paper")
    assert pixels(stray / "paper", 2) == [576 + 160] * 4 and not (stray / "paper" / "rule").exists()
    assert paper["guide"]["per_class_IoU"]["dog"] == pytest.approx(100 * 576 / (576 + 160))


def test_a_class_saliency_misses_entirely_is_said_to_be_labelled_by_its_seeds(stray):
    """The probe's case: saliency marks none of the cat, so G2 labels the cat's seed component cat, all of it; the
    warning said 'the rule gives much of it to background', and unsure void, which voids nothing of it, was said to
    void its weakly salient cores."""
    done, _ = generate(stray, stray / "missed", "--unsure", "void")
    cat = done["classes"]["cat"]
    assert (cat["seed_kept"], cat["core_salient"], cat["cores_void"]) == (1, 0, 0)
    line, = [w for w in done["warnings"] if w.startswith("cat: saliency marks 0% of its seed cores")]
    assert line.endswith("and the rule labels it where its seeds are, salient or not (it keeps 100% of its seed "
                         "pixels): its guide labels are its seeds, whose spread is not checked; look at the guide "
                         "panels (--set vis=true); guide_labels.unsure void leaves 0% of its seed cores void (those "
                         "weakly salient)")


def test_tags_marked_counts_the_images_whose_predictions_mark_a_tagged_class(tmp_path):
    """Four predictions of a cat / dog dataset, by hand: cat tagged in a, b, c and marked in a (one pixel; d marks it
    untagged); dog tagged in b and d, marked in both; void and background mark nothing."""
    tags = {"a": [1], "b": [1, 2], "c": [1], "d": [2]}
    marked = {"a": [1], "b": [2, 255], "c": [255], "d": [1, 2]}
    for image_id, values in marked.items():
        pred = np.zeros((4, 4), np.uint8)
        pred.flat[:len(values)] = values
        save_label_png(tmp_path / f"{image_id}.png", pred)
    data = SimpleNamespace(items=[SimpleNamespace(id=k) for k in tags], image_classes=lambda i: list(tags.values())[i],
                           num_classes=3, classes=["background", "cat", "dog"])
    assert tags_marked(data, tmp_path) == {"cat": {"tagged": 3, "marked": 1}, "dog": {"tagged": 2, "marked": 2}}


def marks(**counts):
    return {"tags_marked": {name: {"tagged": t, "marked": m} for name, (t, m) in counts.items()}, "split": "val"}


def test_unmarked_classes_names_those_marked_in_under_a_quarter_of_their_tagged_images():
    seg = marks(bird=(20, 4), cat=(8, 2), dog=(23, 0), fox=(2, 0))   # 20%, 25% (not under it), 0%, too few images
    ref = marks(bird=(20, 11), cat=(8, 7), dog=(23, 14), fox=(2, 2))
    line, = unmarked_classes(seg, ref)
    assert line == ("the guided segmenter marks few of the val images tagged with bird (4 of 20; the fully "
                    "supervised reference: 11) and dog (0 of 23; the fully supervised reference: 14): it learns "
                    "little of them; the guide labels' table of classes shows whether they had already lost them (see "
                    "README, 'Your own data')")
    line, = unmarked_classes(marks(dog=(23, 5)))   # no reference (own data without masks)
    assert line.startswith("the guided segmenter marks few of the val images tagged with dog (5 of 23): it learns "
                           "little of it;")
    line, = unmarked_classes(marks(dog=(23, 5)), marks(bird=(20, 11)))   # a reference without the class
    assert "dog (5 of 23):" in line
    assert unmarked_classes(marks(dog=(23, 6))) == [] and unmarked_classes({"mIoU": 50.0}) == []


def test_classes_without_a_ground_truth_pixel_in_val_are_named(tmp_path):
    results = tmp_path / "results.json"
    confusion = [[90, 5, 5], [0, 0, 0], [3, 0, 7]]   # rows: ground truth; cat has no pixel, only false positives
    results.write_text(json.dumps({"classes": ["background", "cat", "dog"], "confusion": confusion}))
    line, = unscored_classes({"results": str(results)})
    assert line.startswith("no scored val image shows cat (no ground-truth pixel): the segmenters' IoU of it counts "
                           "false positives alone")
    train, = unscored_classes({"results": str(results), "split": "train"})
    assert train.startswith("no scored train image shows") and train.endswith("give train images that show them, "
                                                                              "with masks")
    confusion[1] = [1, 0, 0]
    results.write_text(json.dumps({"classes": ["background", "cat", "dog"], "confusion": confusion}))
    assert unscored_classes({"results": str(results)}) == []
    assert unscored_classes({"mIoU": 50.0}) == []
    results.write_text(json.dumps({"classes": ["background", "cat", "dog"], "confusion": [[0, 0, 0]] * 3}))
    assert unscored_classes({"results": str(results)}) == []   # masks of training images alone: nothing scored,
    # no false positive either (it named every class, background too, as 'counting false positives alone')


def test_weak_reference_names_the_classes_it_learned_little_of(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"per_class_IoU": {"background": 94.0, "bird": 7.9, "cat": 0.0, "dog": 20.0,
                                                      "horse": None}}))
    line, = weak_reference({"results": str(results), "mIoU": 30.5})
    assert line.startswith("the fully supervised reference itself learns little of bird (7.9), cat (0.0) "
                           "(IoU under 20): the ratio compares with a weak reference;")
    line, = weak_reference({"results": str(results), "mIoU": 19.9})
    assert "(IoU under 20): its mIoU is under 20 too, so no ratio is given;" in line
    results.write_text(json.dumps({"per_class_IoU": {"background": 94.0, "dog": 20.0}}))
    assert weak_reference({"results": str(results)}) == []
    assert weak_reference({"mIoU": 50.0}) == []   # a reference with no per-class file: nothing to say
