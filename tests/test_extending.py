"""The three examples of docs/reference.md, "Extending", run verbatim in a copy of the package: a stage is one
module and one row of the stage table, a network one module and one line of NETWORKS, a dataset layout one module
and one line of LAYOUTS (each line with its import)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from guidedlabelling.datasets import VOCDataset
from guidedlabelling.datasets.builtin import ensure_builtin
from guidedlabelling.tags import hash_split

ROOT = Path(__file__).resolve().parents[1]


def example(title):
    """The code blocks of an example of docs/reference.md: (the module, the lines to add elsewhere)."""
    text = (ROOT / "docs" / "reference.md").read_text()
    section = text[text.index(f"**{title}**"):]
    module, lines = [b.split("```", 1)[0] for b in section.split("```python\n")[1:3]]
    return module, lines.splitlines()[1:]


def package_copy(tmp_path, module_path, module, edits):
    """The package copied with the example's module written and its lines added after the anchors `edits` names:
    {file: [anchor, ...]}, one anchor per added line, in order."""
    shutil.copytree(ROOT / "src" / "guidedlabelling", tmp_path / "src" / "guidedlabelling")
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    package = tmp_path / "src" / "guidedlabelling"
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
    for stage in ("seed_train", "seed_heatmaps", "seed_crf"):
        run(tmp_path, env, "-m", "guidedlabelling", stage, *out, "--set", "seed_crf.crf_params=deeplab")
    folder = tmp_path / "runs" / "smoke" / "seed_crf" / "crf_params-deeplab"
    assert len(list(folder.glob("*.png"))) == 20 and (folder / "done.json").exists()
    assert "seed_crf" in subprocess.run([sys.executable, str(ROOT / "script.py"), "--steps", "help"], cwd=tmp_path,
                                        env=env, capture_output=True, text=True).stderr


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
