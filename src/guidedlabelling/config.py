"""One configuration: the paper's defaults, YAML presets in configs/, overrides.

Sections: `data` and `run`, shared by every stage, then one per stage, whose options (the paper's settings as
defaults) are declared in stages/<stage>.py. A setting is written `key` where only one section has that key and
`section.key` everywhere (e.g. `seedthres=30`, `seg_train.base_lr=0.01`); a preset may also group keys under
their section. Every output folder is <out_root>/<preset>/<stage folder>/<name>, where <name> lists the settings
of the stage and its upstream stages that differ from the preset (readable tokens like `seedthres-30`), so
variants coexist and each stage finds its inputs; the stage's part of the config is stored in that folder.
"""
import argparse
import copy
import difflib
import hashlib
import importlib
from pathlib import Path

import yaml

from . import pipeline
from .io import InputError
from .synthetic import builtin_roots

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"

# (default, help) per key; data and run are shared by every stage.
SHARED = {
    "data": {
        "dataset_dir": (None, "VOC-layout dataset folder (overrides --pascalroot)"),
        "pascalroot": ("data/VOCdevkit", "folder holding VOC2012/ (the release's meaning)"),
        "datatype": ("Segmentation", "ImageSets subfolder holding the split lists"),
        "dataset": ("voc12train_aug", "training split (voc12 prefix optional)"),
        "test_dataset": ("voc12val", "evaluation split of the segmenter"),
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
        "crf_backend": ("torch", "dense CRF: torch (crf_torch.py, CPU or CUDA; the same labels) or pydensecrf "
                                 "(the release's C++ package pydensecrf2, optional)"),
    },
}
OPTIONS = SHARED | {s.name: importlib.import_module(f".stages.{s.name}", __package__).OPTIONS
                    for s in pipeline.STAGES}
OWNERS = {}  # key -> the sections that have it
for _section, _options in OPTIONS.items():
    for _key in _options:
        OWNERS.setdefault(_key, []).append(_section)
MAX_NAME = 120
NAMING_EXCLUDED = {"builtin", "builtin_size", "builtin_train", "builtin_val"}  # the data folder names them


def defaults():
    return {sec: {k: v[0] for k, v in opts.items()} for sec, opts in OPTIONS.items()}


def locate(key):
    """(section, key) of a setting written `key` or `section.key`."""
    sec, _, bare = key.rpartition(".")
    if sec and bare in OPTIONS.get(sec, {}):
        return sec, bare
    owners = OWNERS.get(bare, [])
    if not sec and len(owners) == 1:
        return owners[0], bare
    if not sec and owners:
        raise InputError(f"setting {key!r} is in several sections; write " + " or ".join(f"{s}.{key}" for s in owners))
    close = difflib.get_close_matches(bare, OWNERS, 3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    where = f"; section {sec} has no {bare!r}" if sec in OPTIONS else ""
    raise InputError(f"unknown setting {key!r}{where}; {hint}see -h for the settings")


def set_value(cfg, key, value):
    """Set a setting (`key` or `section.key`); text is read as the type of the paper's default."""
    sec, key = locate(key)
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


def load_preset(config):
    """The paper's defaults updated by a preset: a name in configs/ or a YAML file of `key: value` lines
    (key as in set_value) or `section: {key: value}` groups."""
    path = Path(config)
    if not path.exists() and (CONFIGS / f"{path}.yaml").exists():
        path = CONFIGS / f"{path}.yaml"
    if not path.exists():
        raise InputError(f"{path}: config not found; use a file in configs/ (demo, smoke, msrc, voc12_paper)")
    data = yaml.safe_load(path.read_text()) or {}
    cfg = defaults()
    try:
        for key, value in data.items():
            if key == "name":
                continue
            if isinstance(value, dict) and key in OPTIONS:
                for k, v in value.items():
                    set_value(cfg, f"{key}.{k}", v)
            else:
                set_value(cfg, key, value)
    except InputError as e:
        raise InputError(f"{path}: {e}") from None
    cfg["name"] = data.get("name", path.stem)
    return cfg


def split_override(item):
    """'KEY=VALUE' -> (KEY, VALUE)."""
    if "=" not in item:
        raise InputError(f"--set {item!r}: expected KEY=VALUE")
    return item.split("=", 1)


def resolve(config="demo", overrides=()):
    """(config, preset): the preset `config` with the overrides (KEY=VALUE, applied in order) applied, and
    the preset alone; both complete (the built-in dataset's folders filled in, --gpu N as the device)."""
    preset = load_preset(config)
    cfg = copy.deepcopy(preset)
    for item in overrides:
        set_value(cfg, *split_override(item))
    for c in (cfg, preset):
        complete(c)
    return cfg, preset


def builtin_dir(d):
    """Where the built-in dataset of these data settings is generated."""
    return ROOT / "data" / f"builtin_{d['builtin_size']}px_{d['builtin_train']}_{d['builtin_val']}"


def complete(cfg):
    """The built-in dataset (and its saliency set) becomes the dataset of the run; --gpu N means --device cuda:N."""
    d = cfg["data"]
    if d["builtin"]:
        voc, sal = builtin_roots(builtin_dir(d))
        d["dataset_dir"], cfg["saliency_train"]["saliency_data"] = str(voc), str(sal)
    if cfg["run"]["gpu"] is not None:
        cfg["run"]["device"] = f"cuda:{cfg['run']['gpu']}"


def token(sec, key, value):
    name = key if len(OWNERS[key]) == 1 else f"{sec}.{key}"
    text = Path(str(value)).name if isinstance(value, str) and "/" in value else str(value)
    return f"{name}-{text}"


def stage_name(cfg, preset, stage):
    """Readable folder name from the settings that differ from the preset."""
    tokens = [token(sec, k, v) for sec in pipeline.sections(stage, cfg) for k, v in cfg[sec].items()
              if k not in NAMING_EXCLUDED and v != preset[sec][k]]
    name = "_".join(tokens) or "default"
    if len(name) > MAX_NAME:  # file systems allow 255 bytes; the full settings are in config.yaml
        name = name[:MAX_NAME - 11] + "_" + hashlib.sha1(name.encode()).hexdigest()[:10]
    return name


def stage_dir(cfg, preset, stage):
    return Path(cfg["run"]["out_root"]) / cfg["name"] / pipeline.BY_NAME[stage].folder / stage_name(cfg, preset, stage)


def relevant(cfg, stage):
    """The part of the config that determines a stage's outputs (stored and compared for caching)."""
    return {sec: dict(cfg[sec]) for sec in pipeline.sections(stage, cfg)}


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


UPSTREAM_HELP = ("Settings of the other stages (the upstream ones name this stage's input folders) are set with "
                 "--set SECTION.KEY=VALUE, or --set KEY=VALUE where only one section has KEY; see ./script.py -h "
                 "and configs/ for the sections.")


def stage_parser(stage, description):
    """Flags of one stage command: its own settings, data and run; everything else through --set."""
    parser = argparse.ArgumentParser(description=description, epilog=UPSTREAM_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="demo", help="preset name or YAML file (configs/)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any setting, upstream stages' included (KEY or SECTION.KEY)")
    for sec in (stage, "data", "run"):
        group = parser.add_argument_group(f"{sec} settings")
        for key, (default, help_text) in OPTIONS[sec].items():
            flag = dict(dest=f"{sec}.{key}", default=None)
            if isinstance(default, bool):
                group.add_argument(f"--{key}", action="store_const", const=True, help=help_text, **flag)
            else:
                kind = str if default is None else type(default)
                paper = "" if default is None else f" (paper: {default})"
                group.add_argument(f"--{key}", type=kind, metavar=key.upper(), help=help_text + paper, **flag)
    return parser


def flag_overrides(args):
    """--set items, then the stage's explicit flags, as KEY=VALUE overrides in that order."""
    flags = [f"{key}={value}" for key, value in vars(args).items() if "." in key and value is not None]
    return list(args.set) + flags
