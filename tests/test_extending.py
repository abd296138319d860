"""The four examples of docs/reference.md, "Extending", run verbatim in a copy of the package: a stage is one
module and one row of the stage table, a network one module and one line of NETWORKS, a dataset layout one module
and one line of LAYOUTS (each line with its import), a guide rule one entry of guide_rules.RULES."""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from guidedlabelling.datasets import VOCDataset
from guidedlabelling.datasets.builtin import ensure_builtin
from guidedlabelling.io import save_heatmap_mat
from guidedlabelling.tags import hash_split

ROOT = Path(__file__).resolve().parents[1]


def example(title):
    """The code blocks of an example of docs/reference.md: (the module, the lines to add elsewhere)."""
    text = (ROOT / "docs" / "reference.md").read_text()
    section = text[text.index(f"**{title}**"):]
    module, lines = [b.split("```", 1)[0] for b in section.split("```python\n")[1:3]]
    return module, lines.splitlines()[1:]


def package_copy(tmp_path, module_path, module, edits):
    """The package copied with the example's module written (none where module_path is None) and its lines added
    after the anchors `edits` names: {file: [anchor, ...]}, one anchor per added line, in order."""
    shutil.copytree(ROOT / "src" / "guidedlabelling", tmp_path / "src" / "guidedlabelling")
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    package = tmp_path / "src" / "guidedlabelling"
    if module_path:
        (package / module_path).write_text(module)
    for file, changes in edits.items():
        text = (package / file).read_text()
        for anchor, line in changes:
            assert text.count(anchor) == 1, anchor
            text = text.replace(anchor, anchor + line.strip("\n") + "\n")
        (package / file).write_text(text)
    return dict(os.environ, PYTHONPATH=str(tmp_path / "src"))


def run(tmp_path, env, *argv):
    proc = subprocess.run([sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout + proc.stderr


def test_the_readme_shows_the_lines_the_examples_add():
    readme = (ROOT / "README.md").read_text()
    for title in ("Adding a network", "Adding a dataset layout"):
        _, lines = example(title)
        assert "\n".join(lines) in readme, title


def test_adding_a_stage_is_one_module_and_one_row(tmp_path):
    module, (row,) = example("Adding a stage")
    anchor = '          variants=(("seed_eval_heatmaps", ("seed_split=test",)),)),\n'
    env = package_copy(tmp_path, "stages/seed_crf.py", module, {"pipeline.py": [(anchor, row)]})
    assert "--crf_params" in run(tmp_path, env, "-m", "guidedlabelling", "seed_crf", "-h")
    out = ["--config", "smoke", "--out_root", str(tmp_path / "runs")]
    for stage, *fragment in ("seed_train",), ("seed_heatmaps",), ("seed_crf", "0"), ("seed_crf", "1"):
        run(tmp_path, env, "-m", "guidedlabelling", stage, *out, "--set", "seed_crf.crf_params=deeplab",
            *(["--n", *fragment, "--N", "2"] if fragment else []))   # a per-image stage: in fragments too
    folder = tmp_path / "runs" / "smoke" / "seed_crf" / "crf_params-deeplab"
    assert len(list(folder.glob("*.png"))) == 20 and (folder / "done.json").exists()
    assert "seed_crf" in subprocess.run([sys.executable, str(ROOT / "script.py"), "--steps", "help"], cwd=tmp_path,
                                        env=env, capture_output=True, text=True).stderr


class BoxImages:
    """A dataset of 32 px images of a light box on grey, with these tags (the classes: background, 1, 2)."""
    num_classes = 3

    def __init__(self, tags):
        self.items, self.tags = [SimpleNamespace(id=str(k)) for k in range(len(tags))], tags

    def __len__(self):
        return len(self.items)

    def image_classes(self, i):
        return self.tags[i]

    def image(self, i):
        image = np.full((32, 32, 3), 100, np.uint8)
        image[8:24, 8:24] = 200
        return image


def test_the_stage_example_sharpens_the_seeds(tmp_path):
    """The example's run() on hand-made heatmaps, each tagged class's map 1 in a box and a tenth elsewhere: the
    first tagged class in the box, background around it (a tenth of the maximum is below the seed threshold)."""
    module, _ = example("Adding a stage")
    (tmp_path / "seed_crf.py").write_text(module)
    spec = importlib.util.spec_from_file_location("guidedlabelling.stages.seed_crf", tmp_path / "seed_crf.py")
    seed_crf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed_crf)
    box = np.full((32, 32), 0.1, np.float32)
    box[8:24, 8:24] = 1
    tags = [[1], [2, 1]]
    heatmaps, out = tmp_path / "heatmaps", tmp_path / "out"
    heatmaps.mkdir(), out.mkdir()
    for k, classes in enumerate(tags):
        save_heatmap_mat(heatmaps / f"{k}.mat", np.stack([box] * len(classes)), (32, 32))
    finished = []
    stage = SimpleNamespace(cfg={"data": {"dataset": "train"}, "seed_crf": {"crf_params": "seed"},
                                 "run": {"crf_backend": "torch"}}, out=out,
                            fragment=(0, 1), input_dir=lambda name: heatmaps, dataset=lambda split: BoxImages(tags),
                            finish=finished.append)
    seed_crf.run(stage)
    for k, classes in enumerate(tags):
        expected = np.zeros((32, 32), np.uint8)
        expected[8:24, 8:24] = classes[0]                 # equal maps: the first tagged class wins
        np.testing.assert_array_equal(np.asarray(Image.open(out / f"{k}.png")), expected)
    assert finished


def test_adding_a_network_is_one_module_and_one_line(tmp_path):
    module, (import_line, registry_line) = example("Adding a network")
    env = package_copy(tmp_path, "networks/tiny.py", module, {"networks/__init__.py": [
        ("from .vgg import DeepLabLargeFOV, GAPNet, init_from_scratch\n", import_line),
        ('    "DeepLab-EffNet": Network("segmentation", DeepLabEffNet, imagenet=True, output_strides=(8, 16)),\n',
         registry_line)]})
    assert "DeepLab-Tiny" in "".join(run(tmp_path, env, "-m", "guidedlabelling", "seg_train", "-h").split())
    out = ["--config", "smoke", "--out_root", str(tmp_path / "runs"), "--set", "labels=gt"]
    tiny = ["--set", "seg_train.net=DeepLab-Tiny", "--set", "seg_train.train_blocks=1", "--set",
            "seg_train.max_iter=10"]
    log = run(tmp_path, env, "-m", "guidedlabelling", "seg_train", *out, *tiny)
    assert "trunk: fine-tuning blocks 2..2 of 3" in log
    run(tmp_path, env, "-m", "guidedlabelling", "segmentations", *out, *tiny)
    folder = next((tmp_path / "runs" / "smoke" / "segmentations").glob("*DeepLab-Tiny*"))
    assert len(list(folder.glob("*.png"))) == 10 and (folder / "results.json").exists()
    refused = subprocess.run([sys.executable, "-m", "guidedlabelling", "seg_train", *out, *tiny, "--set",
                              "seg_train.output_stride=16"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "DeepLab-Tiny has output stride 8 only" in refused.stderr


def class_folders(root, voc):
    """The built-in data's images sorted into a folder per class (the class of each image's first object)."""
    for split in ("train", "val"):
        data = VOCDataset(voc, split)
        for i, it in enumerate(data.items):
            folder = root / data.classes[data.image_classes(i)[0]]
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(it.image, folder / it.image.name)
    return root


def test_adding_a_dataset_layout_is_one_module_and_one_line(tmp_path):
    module, (import_line, registry_line) = example("Adding a dataset layout")
    env = package_copy(tmp_path, "datasets/folders.py", module, {"datasets/__init__.py": [
        ("from .files import ImageFiles\n", import_line), ('    "own": OwnDataset,\n', registry_line)]})
    refused = subprocess.run([sys.executable, str(ROOT / "script.py"), "--config", "smoke", "--out_root",
                              str(tmp_path / "runs"), "--set", "layout=folders"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "layout folders: pass --dataset_dir" in refused.stderr, refused.stderr
    voc, _ = ensure_builtin(tmp_path / "builtin", n_train=20, n_val=10, size=64)
    animals = class_folders(tmp_path / "animals", voc)
    log = run(tmp_path, env, str(ROOT / "script.py"), "--config", "smoke", "--out_root", str(tmp_path / "runs"),
              "--set", "layout=folders", "--dataset_dir", str(animals))
    assert "no ground-truth masks, so no mIoU table (use a layout with label maps for one)" in log
    assert "==> seed_eval: skipped, no ground-truth masks; use a layout with label maps to run it" in log
    labels = next((tmp_path / "runs" / "smoke" / "guide_labels").glob("layout-folders*"))
    pngs = list(labels.glob("*.png"))
    train = sum(1 for p in animals.rglob("*.jpg") if hash_split(p.stem, 20) == "train")
    assert len(pngs) == train and all(p.stem.split("_")[0] in {f.name for f in animals.iterdir()} for p in pngs)


def test_adding_a_guide_rule_is_one_entry(tmp_path):
    """The example's rule, seeds where saliency marks them, on hand-made seeds and saliency maps of own data: each
    label map is the seeds (boxes) inside the salient half of the image."""
    section = (ROOT / "docs" / "reference.md").read_text().split("**Adding a guide rule**", 1)[1]
    entry = section.split("```python\n", 1)[1].split("```", 1)[0]
    anchor = '    "sal": Rule(lambda heatmap, classes, salient, **_: saliency_only(heatmap, classes, salient), ' \
        '"saliency only"),\n'
    env = package_copy(tmp_path, None, None, {"guide_rules.py": [(anchor, entry)]})
    assert "seedsal (seeds where saliency marks them)" in " ".join(
        run(tmp_path, env, "-m", "guidedlabelling", "guide_labels", "-h").split())
    data, hw = tmp_path / "own", (16, 20)
    boxes = {"cat": (2, 10, 2, 8), "dog": (6, 14, 10, 18)}
    rows = {"a.png": ["cat"], "b.png": ["cat", "dog"]}
    for sub in ("images", "seeds", "saliency"):
        (data / sub).mkdir(parents=True)
    salient = np.zeros(hw, np.uint8)
    salient[:, :12] = 255                                 # the left 12 columns
    for name, tags in rows.items():
        Image.fromarray(np.full(hw + (3,), 90, np.uint8)).save(data / "images" / name)
        maps = np.zeros((len(tags),) + hw, np.float32)
        for k, tag in enumerate(tags):
            y0, y1, x0, x1 = boxes[tag]
            maps[k, y0:y1, x0:x1] = 1
        save_heatmap_mat(data / "seeds" / f"{Path(name).stem}.mat", maps, hw)
        Image.fromarray(salient).save(data / "saliency" / name)
    (data / "tags.csv").write_text("image,tags,split\n" + "".join(f"{n},{' '.join(t)},train\n"
                                                                for n, t in rows.items()))
    out = tmp_path / "guides"
    run(tmp_path, env, "-m", "guidedlabelling", "guide_labels", "--config", "smoke", "--images", str(data / "images"),
        "--tags", str(data / "tags.csv"), "--seed_dir", str(data / "seeds"), "--saliency_dir", str(data / "saliency"),
        "--out_dir", str(out), "--out_root", str(tmp_path / "runs"), "--guiderule", "seedsal")
    for name, tags in rows.items():
        expected = np.zeros(hw, np.uint8)
        for tag in tags:
            y0, y1, x0, x1 = boxes[tag]
            expected[y0:y1, x0:min(x1, 12)] = ["background", "cat", "dog"].index(tag)
        np.testing.assert_array_equal(np.asarray(Image.open(out / name)), expected)
