"""One configuration: the paper's defaults, YAML presets in configs/, overrides.

Sections: `data` and `run`, shared by every stage, then one per stage, whose options (the paper's settings as
defaults) are declared in stages/<stage>.py. A setting is written `key` where only one section has that key and
`section.key` everywhere (e.g. `seedthres=30`, `seg_train.base_lr=0.01`); a preset may also group keys under
their section. Every output folder is <out_root>/<preset>/<stage folder>/<name>, where <name> lists the settings
of the stage and its upstream stages that differ from the preset (readable tokens like `seedthres-30`; a path
is its last part and a hash of it, `images-photos-1f0c2a`), so variants coexist and each stage finds its
inputs; the stage's part of the config is stored in that folder, its paths absolute.
"""
import argparse
import copy
import difflib
import hashlib
import importlib
import math
import re
from pathlib import Path

import yaml

from . import pipeline
from .checks import NON_NEGATIVE, PERCENT, POSITIVE, at_least, device, one_of
from .errors import InputError
from .datasets import LAYOUTS
from .datasets.builtin import builtin_roots

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"

# (default, help) per key; data and run are shared by every stage.
SHARED = {
    "data": {
        "layout": ("auto", f"dataset layout: {', '.join(LAYOUTS)} (datasets/), or auto: own (--images, --tags, "
                           "--masks) when --images or --tags is given, else voc (--dataset_dir, --pascalroot, the "
                           "built-in data)"),
        "dataset_dir": (None, "VOC-layout dataset folder (overrides --pascalroot)"),
        "pascalroot": ("data/VOCdevkit", "folder holding VOC2012/ (the release's meaning)"),
        "datatype": ("Segmentation", "ImageSets subfolder holding the split lists"),
        "dataset": ("voc12train_aug", "training split (voc12 prefix optional)"),
        "test_dataset": ("voc12val", "evaluation split of the segmenter"),
        "builtin": (False, "use the built-in synthetic dataset (generated into data/ on first use)"),
        "builtin_size": (128, "image side of the built-in dataset"),
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
        "store": ("", "folder of the store of trained saliency networks that every run on this machine shares "
                      "(store.py); empty: $GUIDEDLABELLING_STORE, else $XDG_CACHE_HOME/guidedlabelling/saliency "
                      "(~/.cache/...); none: no store"),
        "follow_symlinks": (False, "own data: read images that are symbolic links to files outside --images "
                                   "(without it, such a link is an error)"),
    },
}
SHARED_CHECKS = {
    "data": {"layout": one_of("auto", *LAYOUTS), "builtin_size": at_least(16), "builtin_train": POSITIVE,
             "builtin_val": POSITIVE, "val_percent": PERCENT},
    "run": {"device": device, "gpu": NON_NEGATIVE, "workers": NON_NEGATIVE, "snapshot": POSITIVE,
            "n": NON_NEGATIVE, "N": POSITIVE, "amp": one_of("none", "bf16", "fp16"),
            "crf_backend": one_of("torch", "pydensecrf")},
}
STAGE_MODULES = {s.name: importlib.import_module(f".stages.{s.name}", __package__) for s in pipeline.STAGES}
OPTIONS = SHARED | {name: module.OPTIONS for name, module in STAGE_MODULES.items()}
CHECKS = SHARED_CHECKS | {name: module.CHECKS for name, module in STAGE_MODULES.items()}
OWNERS = {}  # key -> the sections that have it
for _section, _options in OPTIONS.items():
    for _key in _options:
        OWNERS.setdefault(_key, []).append(_section)
MAX_NAME = 120
NAMING_EXCLUDED = {"builtin", "builtin_size", "builtin_train", "builtin_val"}  # the data folder names them
TYPES_WITHOUT_DEFAULT = {"gpu": int}  # settings whose default is None; the others of them are text
BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
PATH_SETTINGS = ("dataset_dir", "pascalroot", "images", "tags", "masks", "saliency_data", "saliency_maps", "init")
LIST_SETTINGS = ("saliency_data",)  # several paths, comma-separated
NOT_PATHS = ("", "none", "imagenet")  # values of init that name no file
KIND_NAMES = {bool: "true or false (also yes/no, on/off, 1/0)", int: "a whole number", float: "a finite number",
              str: "one value (text)"}


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


def kind(sec, key):
    """The type of a setting: its default's; for settings without a default, TYPES_WITHOUT_DEFAULT's or text."""
    default = OPTIONS[sec][key][0]
    return TYPES_WITHOUT_DEFAULT.get(key, str) if default is None else type(default)


def typed(value, kind_):
    """`value` as `kind_` (text parsed: 8000, 0.01, true/false/yes/no/on/off/1/0), or None when it is not one."""
    text = value.strip() if isinstance(value, str) else None
    if kind_ is bool:
        return value if isinstance(value, bool) else BOOLEANS.get(str(value).lower() if text is None else text.lower())
    if isinstance(value, bool):
        return None
    if kind_ is int:
        return value if isinstance(value, int) else int(text) if text and re.fullmatch(r"[+-]?\d+", text) else None
    if kind_ is float:  # inf and nan are not numbers a setting can take
        try:
            number = float(value) if isinstance(value, (int, float)) else float(text)
        except (TypeError, ValueError):
            return None
        return number if math.isfinite(number) else None
    return value if isinstance(value, str) else str(value) if isinstance(value, (int, float)) else None


def set_value(cfg, key, value, source, origins):
    """Set a setting (`key` or `section.key`) to `value` as the setting's type; `source` (the preset file or
    the command line) is recorded in origins for messages."""
    try:
        sec, bare = locate(key)
    except InputError as e:
        raise InputError(f"{source}: {e}") from None
    default = OPTIONS[sec][bare][0]
    converted = None if value is None and default is None else typed(value, kind(sec, bare))
    if converted is None and not (value is None and default is None):
        example = "" if kind(sec, bare) in (bool, str) else f"; write e.g. {default or 0}"
        raise InputError(f"setting {sec}.{bare} = {value!r} ({source}): not {KIND_NAMES[kind(sec, bare)]}{example}")
    cfg[sec][bare] = converted
    origins[sec, bare] = source


def range_problems(cfg, origins):
    """What is wrong with the values of the settings (CHECKS), naming each setting and where it was set, and
    which settings of a stage contradict each other."""
    problems = []
    for sec, checks in CHECKS.items():
        for key, check in checks.items():
            value = cfg[sec][key]
            problem = None if value is None else check(value)
            if problem:
                source = origins.get((sec, key), "the default")
                problems.append(f"setting {sec}.{key} = {value!r} ({source}): {problem}")
    for sec, module in STAGE_MODULES.items():  # settings that contradict each other (a stage's CONFLICTS)
        conflicts = getattr(module, "CONFLICTS", lambda c: [])
        problems += [f"settings of {sec}: {problem}" for problem in conflicts(cfg[sec])]
    return problems


def read_preset_file(path):
    """The mapping a preset file holds; YAML errors, unknown tags and other shapes name the file."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        reason = getattr(e, "problem", None) or type(e).__name__
        raise InputError(f"{path}{where}: not a preset ({reason}); write `key: value` lines or "
                         "`section: {key: value}` groups") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file; a preset is YAML `key: value` lines") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: holds a {type(data).__name__}, not a mapping; write `key: value` lines or "
                         "`section: {key: value}` groups")
    return data


def preset_path(config):
    path = Path(config)
    if not path.exists() and (CONFIGS / f"{path}.yaml").exists():
        path = CONFIGS / f"{path}.yaml"
    if path.is_dir():
        raise InputError(f"{path}: a folder, not a config; name a YAML file or a preset in configs/ (demo, smoke, "
                         "msrc, voc12_paper)")
    if not path.is_file():
        raise InputError(f"{path}: config not found; use a file in configs/ (demo, smoke, msrc, voc12_paper)")
    return path


def load_preset(config, origins, problems):
    """The paper's defaults updated by a preset: a name in configs/ or a YAML file of `key: value` lines
    (key as in set_value) or `section: {key: value}` groups. Where each value came from goes to `origins`,
    what is wrong with any to `problems`."""
    path = preset_path(config)
    data = read_preset_file(path)
    cfg = defaults()
    for key, value in data.items():
        if key == "name":
            continue
        grouped = isinstance(value, dict) and key in OPTIONS
        for k, v in (value.items() if grouped else [(key, value)]):
            try:
                set_value(cfg, f"{key}.{k}" if grouped else str(k), v, str(path), origins)
            except InputError as e:
                problems.append(str(e))
    cfg["name"] = str(data.get("name", path.stem))
    if cfg["name"] in ("", ".", "..") or any(c in cfg["name"] for c in "/\\"):
        raise InputError(f"{path}: name {cfg['name']!r} is not a folder name (it names the run's folder under "
                         "out_root); write a plain name such as my_photos")
    return cfg


def split_override(item):
    """'KEY=VALUE' -> (KEY, VALUE)."""
    if "=" not in item:
        raise InputError(f"--set {item!r}: expected KEY=VALUE")
    return item.split("=", 1)


def resolve(config="demo", overrides=()):
    """(config, preset): the preset `config` with the overrides (KEY=VALUE, applied in order) applied, and
    the preset alone; both complete (the built-in dataset's folders filled in, --gpu N as the device).
    Every setting is checked (type, range, choices); all problems are raised together."""
    origins, problems = {}, []
    preset = load_preset(config, origins, problems)
    preset_origins = dict(origins)
    cfg = copy.deepcopy(preset)
    for item in overrides:
        try:
            set_value(cfg, *split_override(item), "command line", origins)
        except InputError as e:
            problems.append(str(e))
    problems += range_problems(cfg, origins)
    if problems:
        raise InputError(*problems)
    for c, where in ((cfg, origins), (preset, preset_origins)):
        complete(c)
        absolute_paths(c, lambda sec, key: base_folder(where.get((sec, key))))
    return cfg, preset


def base_folder(origin):
    """The folder a relative path is relative to: the project's for the defaults and the presets in configs/
    (data/VOCdevkit, ../shared/data/...), the current folder for the command line and other YAML files."""
    return ROOT if origin is None or Path(origin).resolve().parent == CONFIGS else Path.cwd()


def absolute_paths(cfg, base=lambda sec, key: Path.cwd()):
    """Every setting that names files or folders as resolved absolute paths (a relative one joined to
    base(section, key)), so that one folder has one name however it was written (relative, with a trailing
    slash, through a link): the cache compares these."""
    for sec, values in cfg.items():
        if isinstance(values, dict):
            for key in PATH_SETTINGS:
                if isinstance(values.get(key), str) and values[key] not in NOT_PATHS:
                    parts = values[key].split(",") if key in LIST_SETTINGS else [values[key]]
                    parts = [p for p in parts if p.strip()]  # 'a,b,' names a and b
                    values[key] = ",".join(str((base(sec, key) / Path(p.strip()).expanduser()).resolve())
                                           for p in parts)
    return cfg


def builtin_dir(d):
    """Where the built-in dataset of these data settings is generated."""
    return ROOT / "data" / f"builtin_{d['builtin_size']}px_{d['builtin_train']}_{d['builtin_val']}"


def complete(cfg):
    """The built-in dataset becomes the dataset of the run, and its saliency set the saliency set, unless the
    settings name others (--dataset_dir or --pascalroot, --saliency_data); --gpu N means --device cuda:N."""
    d, sal_train = cfg["data"], cfg["saliency_train"]
    if d["builtin"]:
        voc, sal = builtin_roots(builtin_dir(d))
        if d["dataset_dir"] is None and d["pascalroot"] == SHARED["data"]["pascalroot"][0]:
            d["dataset_dir"] = str(voc)
        if sal_train["saliency_data"] == OPTIONS["saliency_train"]["saliency_data"][0]:
            sal_train["saliency_data"] = str(sal)
    if cfg["run"]["gpu"] is not None:
        cfg["run"]["device"] = f"cuda:{cfg['run']['gpu']}"


def token(sec, key, value):
    """`key-value` of a setting in a folder name; a path is its last part and a hash of the whole (two
    projects' folders both called images/ get two folders)."""
    name = key if len(OWNERS[key]) == 1 else f"{sec}.{key}"
    if key in PATH_SETTINGS and isinstance(value, str) and value not in NOT_PATHS:
        return f"{name}-{Path(value.split(',')[0]).name}-{hashlib.sha1(value.encode()).hexdigest()[:6]}"
    return f"{name}-{value}"


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


def stored_settings(out):
    """The settings a folder was made with (its config.yaml), or None."""
    path = out / "config.yaml"
    if not path.exists():
        return None
    try:
        return yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError):
        raise InputError(f"{path}: unreadable; remove this folder, or rerun with --overridecache") from None


def same_settings(stored, current):
    """A folder's stored config matches the current one; settings added to the project since the folder
    was made count as equal when they have their default value, so old run folders stay valid."""
    if stored is None or set(stored) != set(current):
        return False
    stored = absolute_paths(copy.deepcopy(stored))  # folders made before paths were stored absolute: as they were
    # read then, relative to the current folder
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
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    for sec in (stage, "data", "run"):
        group = parser.add_argument_group(f"{sec} settings")
        for key, (default, help_text) in OPTIONS[sec].items():
            flag = dict(dest=f"{sec}.{key}", default=None)
            shown = "" if default is None or isinstance(default, bool) else f" (default: {default})"
            text = (help_text + shown).replace("%", "%%")  # argparse %-formats help texts
            if isinstance(default, bool):
                group.add_argument(f"--{key}", action="store_const", const=True, help=text, **flag)
            else:  # the value is read (and checked) as the setting's type by resolve
                group.add_argument(f"--{key}", metavar=key.upper(), help=text, **flag)
    return parser


def flag_overrides(args):
    """--set items, then the stage's explicit flags, as KEY=VALUE overrides in that order."""
    flags = [f"{key}={value}" for key, value in vars(args).items() if "." in key and value is not None]
    return list(args.set) + flags
