"""The voc12_paper preset end to end on a tiny VOC-layout fixture, sizes shrunk by overrides only."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from guidedlabelling.io import save_gray_png, save_label_png

ROOT = Path(__file__).resolve().parents[1]
XML = "<annotation><filename>{id}.jpg</filename><object><name>{name}</name></object></annotation>"


def build_voc(root, rng):
    voc = root / "VOC2012"
    ids = {"train_aug": [f"2008_{i:06d}" for i in range(8)], "val": [f"2007_{i:06d}" for i in range(4)]}
    for split, names in ids.items():
        for k, i in enumerate(names):
            h, w = rng.integers(40, 70, 2)
            img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            label = np.zeros((h, w), np.uint8)
            cls = [1, 8, 12, 15][k % 4]                       # aeroplane, cat, dog, person
            label[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = cls
            label[h // 4, w // 4: 3 * w // 4] = 255
            img[label == cls] = (200, 30, 30)
            (voc / "JPEGImages").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(voc / "JPEGImages" / f"{i}.jpg")
            save_gray_png(voc / "SegmentationClassAug" / f"{i}.png", label)
            save_label_png(voc / "SegmentationClass" / f"{i}.png", label)
            (voc / "Annotations").mkdir(exist_ok=True)
            (voc / "Annotations" / f"{i}.xml").write_text(XML.format(id=i, name="cat"))
        lists = voc / "ImageSets" / "Segmentation"
        lists.mkdir(parents=True, exist_ok=True)
        (lists / f"{split}.txt").write_text("\n".join(names) + "\n")
    sal = root / "sal"
    for i in range(6):
        mask = np.zeros((48, 48), np.uint8)
        mask[10:30, 12:40] = 255
        (sal / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(sal / "images" / f"s{i}.jpg")
        save_gray_png(sal / "masks" / f"s{i}.png", mask)
    return root, sal


def test_voc12_paper_preset_runs_on_a_fixture(tmp_path):
    root, sal = build_voc(tmp_path / "VOCdevkit", np.random.default_rng(0))
    shrink = ["pascalroot=" + str(root), "saliency_data=" + str(sal), "device=cpu", "workers=0",
              "seed_train.init=none", "seed_train.width=0.0625", "seed_train.input_size=65", "seed_train.max_iter=2",
              "seed_train.batch_size=2", "seed_train.stepsize=1",
              "saliency_train.width=0.0625", "saliency_train.init=none", "saliency_train.input_size=65",
              "saliency_train.max_iter=2", "saliency_train.batch_size=2", "saliency_test.test_size=65",
              "seg_train.init=none", "seg_train.width=0.0625", "seg_train.input_size=65", "seg_train.max_iter=2",
              "seg_train.batch_size=2", "seg_test.test_size=81"]
    cmd = [sys.executable, str(ROOT / "script.py"), "--config", "voc12_paper", "--out_root", str(tmp_path / "runs")]
    proc = subprocess.run(cmd + [a for s in shrink for a in ("--set", s)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "runs" / "voc12_paper" / "summary.json").read_text())
    results = json.loads((Path(summary["predictions"]) / "results.json").read_text())
    assert len(results["per_class_IoU"]) == 21 and np.asarray(results["confusion"]).shape == (21, 21)
    assert len(list(Path(summary["guide_labels"]).glob("*.png"))) == 8
