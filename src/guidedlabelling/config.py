"""One configuration: the paper's defaults, YAML presets in configs/, command-line overrides.

Sections follow the stages. Every output folder is <out_root>/<preset>/<stage>/<name>,
where <name> lists the settings of the stage and its upstream stages that differ
from the preset (readable tokens like `seedthres-30`), so variants coexist and each
stage finds its inputs. The full config is written into every output folder.
"""
import argparse
import copy
import hashlib
from pathlib import Path

import yaml

from .io import InputError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"

# (default = the paper's setting, help). Sections: data/run are shared by every stage.
OPTIONS = {
    "data": {
        "dataset_dir": (None, "VOC-layout dataset folder (overrides --pascalroot)"),
        "pascalroot": ("data/VOCdevkit", "folder holding VOC2012/ (the release's meaning)"),
        "datatype": ("Segmentation", "ImageSets subfolder holding the split lists"),
        "dataset": ("voc12train_aug", "training split (voc12 prefix optional)"),
        "test_dataset": ("voc12val", "evaluation split of the segmenter"),
        "saliency_data": ("data/builtin_saliency", "class-agnostic saliency training set: images/ + masks/"),
        "builtin": (False, "use the built-in synthetic dataset (generated into data/ on first use)"),
        "builtin_size": (96, "image side of the built-in dataset"),
        "builtin_train": (300, "training images of the built-in dataset"),
        "builtin_val": (100, "validation images of the built-in dataset"),
        "images": (None, "your own images' folder (with --tags; replaces the VOC-layout dataset)"),
        "tags": (None, "CSV of your images' tags: header image,tags[,split]; tags separated by spaces or ';'"),
        "masks": (None, "optional folder of label PNGs <id>.png of your images, for evaluation"),
        "val_percent": (20, "own data without a split column: percent of the images (by a hash of the "
                            "name) in val"),
    },
    "run": {
        "out_root": ("data/runs", "where every stage writes its output folder"),
        "device": ("auto", "cpu, cuda, cuda:N or auto"),
        "gpu": (None, "GPU index (the release's flag; same as --device cuda:N)"),
        "workers": (0, "DataLoader / process-pool workers"),
        "vis": (False, "write a PNG panel per image beside the outputs"),
        "overridecache": (False, "recompute outputs that exist"),
        "snapshot": (2000, "training checkpoint every N iterations (a rerun resumes from it)"),
        "n": (0, "per-image stages: this fragment's index (the release's --n; RANK under torchrun)"),
        "N": (1, "per-image stages: number of fragments (the release's --N; WORLD_SIZE under torchrun)"),
        "amp": ("none", "mixed precision of training and inference: none (float32, the paper's numbers), "
                        "bf16 or fp16 (with loss scaling)"),
        "channels_last": (False, "NHWC memory layout for the networks (often faster convolutions)"),
    },
    "seed_train": {
        "net": ("GAP-HighRes", "seed network: GAP-HighRes, GAP-LowRes, GAP-DeepLab, GAP-EffNet"),
        "init": ("models/VGG_ILSVRC_16_layers.caffemodel", "initial weights (.caffemodel, .pth or 'none')"),
        "width": (1.0, "channel width multiplier (1 = VGG-16)"),
        "input_size": (321, "training crop side"),
        "base_lr": (0.001, "Caffe base_lr"),
        "momentum": (0.9, "Caffe momentum"),
        "weight_decay": (0.0005, "Caffe weight_decay"),
        "stepsize": (2000, "lr x gamma every stepsize iterations"),
        "gamma": (0.1, "lr step factor"),
        "max_iter": (8000, "training iterations"),
        "batch_size": (15, "images per iteration"),
        "balbatch": ("none", "batch order: none (shuffle) or clsbal"),
        "clip_gradients": (-1.0, "Caffe clip_gradients: cap on the global gradient L2 norm (-1: off)"),
        "freeze_trunk": (False, "train only the new layers (Caffe lr_mult 0 for the pretrained trunk)"),
        "seed": (0, "random seed"),
    },
    "seed_test": {
        "seed_test_iter": (0, "test the snapshot of this iteration (0: the final model)"),
        "test_gtcls": ("use", "heatmaps for the ground-truth image classes"),
        "test_interpord": (1, "interpolation order of the heatmap back-mapping (0 or 1)"),
        "test_batch": (8, "images per forward pass"),
        "seed_split": ("train", "heatmaps and class scores for: train (--dataset, the guides' input) or test "
                                "(--test_dataset, where the paper evaluates seeds and the classifier)"),
    },
    "seed_eval": {
        "eval_seedthres": (20, "threshold (percent) whose precision, recall and mIoU are reported (the paper's "
                               "seedthres)"),
        "eval_thres_step": (1, "the curve's thresholds: 0..100 percent in steps of this"),
    },
    "cls_eval": {
        "ap_variant": ("voc", "average precision: voc (the release's, area under the precision envelope) or "
                              "plain (non-interpolated, as sklearn's average_precision_score)"),
    },
    "saliency_train": {
        "sal_net": ("DeepLab-LargeFOV", "saliency network (2 outputs: background, foreground)"),
        "sal_init": ("none", "initial weights of the saliency net"),
        "sal_holdout": (0, "last N images of the saliency set held out to measure MAE and max F-measure"),
        "sal_freeze_trunk": (False, "train only the new layers"),
        "sal_width": (1.0, "channel width multiplier of the saliency net"),
        "sal_input_size": (321, "training crop side"),
        "sal_base_lr": (0.001, "base_lr"),
        "sal_max_iter": (8000, "training iterations"),
        "sal_stepsize": (2000, "lr step"),
        "sal_batch_size": (15, "images per iteration"),
        "sal_seed": (0, "random seed"),
        "sal_clip_gradients": (-1.0, "Caffe clip_gradients (-1: off)"),
    },
    "saliency_test": {
        "sal_test_size": (321, "images are fit (downscaled only) into this square"),
        "sal_source": ("model", "model: the saliency network of src/saliency/train.py; imagenet-cam: the "
                                "ImageNet EfficientNet-Lite0 classifier's class activation maps of its top-5 "
                                "classes (class-agnostic, no saliency training)"),
    },
    "guide": {
        "guiderule": ("G2", "G2, salor (GT-foreground oracle), seed (seeds only), sal (saliency only)"),
        "seedthres": (20, "seed threshold on the normalised heatmap, percent"),
        "salthres": (50, "saliency threshold, percent of 255"),
        "saliency_maps": (None, "folder of your own saliency maps <id>.png (8-bit grey, image size) "
                                "instead of the saliency stages' output"),
    },
    "seg_train": {
        "seg_net": ("DeepLab-LargeFOV", "segmentation network: DeepLab-LargeFOV or DeepLab-EffNet"),
        "seg_init": ("models/VGG_ILSVRC_16_layers-deeplab.caffemodel", "initial weights"),
        "seg_width": (1.0, "channel width multiplier"),
        "seg_input_size": (321, "training crop side"),
        "seg_base_lr": (0.001, "base_lr"),
        "seg_max_iter": (8000, "training iterations"),
        "seg_stepsize": (2000, "lr step"),
        "seg_batch_size": (15, "images per iteration"),
        "seg_resize": ("none", "training geometry: none (crop/pad) or tight (crop+fit)"),
        "seg_seed": (0, "random seed"),
        "seg_clip_gradients": (-1.0, "Caffe clip_gradients (-1: off)"),
        "seg_freeze_trunk": (False, "train only the new layers"),
        "labels": ("guide", "training labels: guide (the method) or gt (fully supervised reference)"),
    },
    "seg_test": {
        "test_iter": (0, "test the snapshot of this iteration (0: the final model)"),
        "test_pcrf": ("none", "test-time CRF: none or deeplab"),
        "test_resize": ("none", "none (reflect-pad to test_size) or tight (fit into test_size)"),
        "test_size": (531, "test input side"),
    },
}

UPSTREAM = {
    "seed_train": ["data", "seed_train"],
    "seed_test": ["data", "seed_train", "seed_test"],
    "seed_eval": ["data", "seed_train", "seed_test", "seed_eval"],
    "cls_eval": ["data", "seed_train", "seed_test", "cls_eval"],
    "saliency_train": ["saliency_train"],
    "saliency_test": ["data", "saliency_train", "saliency_test"],  # noqa: E241
    "guide": ["data", "seed_train", "seed_test", "saliency_train", "saliency_test", "guide"],
    "seg_train": ["data", "seed_train", "seed_test", "saliency_train", "saliency_test", "guide", "seg_train"],
    "seg_test": ["data", "seed_train", "seed_test", "saliency_train", "saliency_test", "guide", "seg_train",
                 "seg_test"],
}
FOLDERS = {"seed_train": "seed_train", "seed_test": "seed_heatmaps", "seed_eval": "seed_eval", "cls_eval": "cls_eval",
           "saliency_train": "saliency_train",
           "saliency_test": "saliency", "guide": "guide_labels", "seg_train": "seg_train",
           "seg_test": "seg_test"}
MAX_NAME = 120
NAMING_EXCLUDED = {"builtin", "builtin_size", "builtin_train", "builtin_val"}  # the data folder names them


def defaults():
    return {sec: {k: v[0] for k, v in opts.items()} for sec, opts in OPTIONS.items()}


def section_of(key):
    for sec, opts in OPTIONS.items():
        if key in opts:
            return sec
    raise InputError(f"unknown setting {key!r}; see -h for the settings")


def load_preset(path):
    """Paper defaults updated by a preset file (flat `key: value` or sections)."""
    cfg = defaults()
    path = Path(path)
    if not path.exists() and (CONFIGS / f"{path}.yaml").exists():
        path = CONFIGS / f"{path}.yaml"
    if not path.exists():
        raise InputError(f"{path}: config not found; use a file in configs/ (demo, smoke, msrc, voc12_paper)")
    data = yaml.safe_load(path.read_text()) or {}
    for key, value in data.items():
        if key == "name":
            continue
        if isinstance(value, dict) and key in OPTIONS:
            for k, v in value.items():
                set_value(cfg, k, v, path)
        else:
            set_value(cfg, key, value, path)
    cfg["name"] = data.get("name", path.stem)
    return cfg


def set_value(cfg, key, value, origin="command line"):
    sec = section_of(key)
    default = OPTIONS[sec][key][0]
    if isinstance(value, str) and default is not None and not isinstance(default, str):
        value = parse_scalar(value, type(default))
    cfg[sec][key] = value


def parse_scalar(text, kind):
    if kind is bool:
        return text.lower() in ("1", "true", "yes", "on")
    try:
        return kind(text)
    except ValueError:
        raise InputError(f"cannot read {text!r} as {kind.__name__}") from None


def add_arguments(parser, sections):
    """Flags for every key of `sections` (defaults come from the preset, so they are None here)."""
    parser.add_argument("--config", default="demo", help="preset name or YAML file (configs/)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any setting, including those of upstream stages")
    for sec in dict.fromkeys(sections + ["data", "run"]):
        group = parser.add_argument_group(sec)
        for key, (default, help_text) in OPTIONS[sec].items():
            if isinstance(default, bool):
                group.add_argument(f"--{key}", action="store_const", const=True, default=None,
                                   help=f"{help_text}")
            else:
                kind = str if default is None else type(default)
                group.add_argument(f"--{key}", type=kind, default=None, help=f"{help_text} (paper: {default})")
    return parser


def resolve(args):
    """Preset + --set overrides + explicit flags -> (config, preset config)."""
    preset = load_preset(args.config)
    cfg = copy.deepcopy(preset)
    for item in args.set:
        if "=" not in item:
            raise InputError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        set_value(cfg, key.split(".")[-1], value)
    for key, value in vars(args).items():
        if value is not None and key not in ("config", "set") and any(key in o for o in OPTIONS.values()):
            set_value(cfg, key, value)
    if cfg["run"]["gpu"] is not None:
        cfg["run"]["device"] = f"cuda:{cfg['run']['gpu']}"
    return cfg, preset


def token(key, value):
    text = Path(str(value)).name if isinstance(value, str) and "/" in value else str(value)
    return f"{key}-{text}"


def sections_of(cfg, stage):
    """Sections that determine a stage's outputs; the fully supervised segmenter has no guide upstream."""
    if stage in ("seg_train", "seg_test") and cfg["seg_train"]["labels"] == "gt":
        return ["data", "seg_train"] + (["seg_test"] if stage == "seg_test" else [])
    return UPSTREAM[stage]


def seed_test_split(cfg):
    """The dataset split the seed heatmaps and class scores are made for (--seed_split)."""
    choice = cfg["seed_test"]["seed_split"]
    if choice not in ("train", "test"):
        raise InputError(f"--seed_split {choice}: use train (--dataset) or test (--test_dataset)")
    return cfg["data"]["dataset" if choice == "train" else "test_dataset"]


def stage_name(cfg, preset, stage):
    """Readable folder name from the settings that differ from the preset."""
    tokens = [token(k, v) for sec in sections_of(cfg, stage) for k, v in cfg[sec].items()
              if k not in NAMING_EXCLUDED and v != preset[sec][k]]
    name = "_".join(tokens) or "default"
    if len(name) > MAX_NAME:  # file systems allow 255 bytes; the full settings are in config.yaml
        name = name[:MAX_NAME - 11] + "_" + hashlib.sha1(name.encode()).hexdigest()[:10]
    return name


def stage_dir(cfg, preset, stage):
    return Path(cfg["run"]["out_root"]) / cfg["name"] / FOLDERS[stage] / stage_name(cfg, preset, stage)


def relevant(cfg, stage):
    """The part of the config that determines a stage's outputs (stored and compared for caching)."""
    return {sec: dict(cfg[sec]) for sec in sections_of(cfg, stage)}


def same_settings(stored, current):
    """A folder's stored config matches the current one; settings added to the project since the folder
    was made count as equal when they have their default value, so old run folders stay valid."""
    if stored is None or set(stored) != set(current):
        return False
    defaults_ = defaults()
    for sec, values in current.items():
        old = stored[sec]
        if set(old) - set(values):
            return False
        if any(old.get(k, defaults_.get(sec, {}).get(k)) != v for k, v in values.items()):
            return False
    return True


def parser_for(stage, description):
    parser = argparse.ArgumentParser(description=description)
    return add_arguments(parser, UPSTREAM[stage])
