"""benchmarks/small_objects.py writes own data whose masks hold the class values its tags give (the sorted tag
names, as datasets.OwnDataset numbers them): it once numbered them in --classes order, so that bird and cow were
swapped in the masks and every guided figure of those two classes read 0."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from guidedlabelling.datasets import OwnDataset

SHARED = ROOT.parent / "shared" / "data"


@pytest.mark.skipif(not (SHARED / "msrc_things").is_dir(), reason="../shared/data is absent")
def test_the_check_sets_masks_hold_the_classes_its_tags_name(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "small_objects.py"), str(tmp_path),
                           "--msrc", str(SHARED / "msrc_things"), "--davis", str(SHARED / "davis_saliency"),
                           "--train", "8", "--val", "2"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for split in ("train", "val"):
        data = OwnDataset(tmp_path / "images", tmp_path / "tags.csv", tmp_path / "masks", split)
        assert data.classes == ["background", "bird", "car", "cow", "sheep"]
        for i in range(len(data)):
            in_mask = sorted(set(np.unique(data.label(i)).tolist()) - {0, 255})
            assert in_mask == sorted(data.image_classes(i)), data.items[i].id
