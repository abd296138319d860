"""The development tools of issue 26: benchmarks/sibling_data.py writes a VOC-layout set whose every object carries
its class's emblem, and benchmarks/seed_maps.py measures where class maps fall with the built-in generator's
head masks."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy.io

from guidedlabelling.datasets import MaskFolder, VOCDataset
from guidedlabelling.datasets.builtin import _VAL, NUM_CLASSES, image_rng, render_scene

ROOT = Path(__file__).resolve().parents[1]
EMBLEMS = {"red": (220, 30, 30), "blue": (30, 60, 230), "yellow": (240, 210, 20), "cyan": (20, 200, 200)}


def test_the_sibling_set_opens_as_voc_and_every_object_shows_its_emblem(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sibling_data.py"), str(tmp_path), "--train",
                           "16", "--val", "8", "--saliency", "4"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    data = VOCDataset(tmp_path / "voc", "train")
    assert len(data) == 16 and len(data.classes) == 9 and len(VOCDataset(tmp_path / "voc", "val")) == 8
    assert len(MaskFolder(str(tmp_path / "saliency"))) == 4
    for i in range(len(data)):
        image, label = data.image(i).astype(int), data.label(i)
        for cls in data.image_classes(i):
            colour = EMBLEMS[next(c for c in EMBLEMS if data.classes[cls].startswith(c))]
            near = (np.abs(image - colour).max(-1) < 40) & (label == cls)
            assert near.sum() >= 4, (i, data.classes[cls])


def test_seed_maps_puts_a_map_on_the_head_at_the_head(tmp_path):
    """Maps that are 1 on each tagged class's head disc and 0 elsewhere: all of their mass, maximum and seeds
    lie on the head."""
    for i in range(3):
        scene = render_scene(image_rng(0, _VAL, i), 128, first_class=1 + i % NUM_CLASSES)
        classes = sorted({o.cls for o in scene.objects})
        heat = np.stack([np.any([o.part for o in scene.objects if o.cls == c], 0).astype(np.float32)
                         for c in classes])
        scipy.io.savemat(tmp_path / f"val_{i:04d}.mat", {"heatmap": heat, "imshape_original": np.array([128, 128])})
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "seed_maps.py"), "measure", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    head = proc.stdout.splitlines()[1].split()
    assert head[0] == "head" and head[2:] == ["100.0", "100.0", "100.0"], proc.stdout


def test_pair_maps_auc_counts_pairs_and_halves_ties():
    """benchmarks/pair_maps.py's AUC against the pairs counted by hand: of the 2 x 3 (first, second) pixel pairs,
    the first scores higher in 4, ties in 1 (counted half) and lower in 1."""
    from pair_maps import auc, scores   # benchmarks/ is on pytest's pythonpath (pyproject.toml)
    positive = np.array([True, False, True, False, False])
    assert auc(positive, np.array([0.9, 0.1, 0.4, 0.4, 0.5])) == 4.5 / 6
    # a first map high on the first class's pixels and a second map high on the second's: every score tells them apart
    first, second = np.array([4.0, 1.0, 3.0, 0.5]), np.array([1.0, 2.0, 0.5, 2.0])
    truth = np.array([True, False, True, False])
    assert {name: auc(truth, s) for name, s in scores(first, second).items()} == dict.fromkeys(
        ("first map / its max", "minus second map / its max", "difference of the two", "first's share of the raw maps"),
        1.0)
