"""Every setting: its default (the paper's) and help, its type and its range. Sections: `data` and `run`, shared
by every stage, then one per stage, whose options are declared in stages/<stage>.py. A setting is written `key`
where only one section has that key and `section.key` everywhere (e.g. `seedthres=30`, `seg_train.base_lr=0.01`)."""
import difflib
import importlib
import math
import os
import re

from . import pipeline
from .checks import MAX_BUILTIN, NON_NEGATIVE, PERCENT, POSITIVE, SIDE, between, device, filled, one_of, \
    side_or_zero
from .crf import BACKENDS
from .datasets import LAYOUTS
from .errors import InputError
from .precision import AMP_DTYPES
from .reads import NO_INIT

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
        "tags": (None, "CSV of your images' tags: header image,tags[,split]; tags separated by spaces, ';' or ','"),
        "masks": (None, "optional folder of label PNGs <id>.png of your images, for evaluation"),
        "val_percent": (20, "own data without a split column: percent of the images (by a hash of the "
                            "name) in val"),
        "max_image_side": (1024, "images whose longer side exceeds this are worked on shrunk to it: every stage "
                                 "reads them and their masks so, and writes its outputs at that size (0: never; "
                                 "VOC, MSRC and the built-in data are smaller)"),
    },
    "run": {
        "out_root": ("data/runs", "where every stage writes its output folder"),
        "device": ("auto", "cpu, cuda, cuda:N or auto"),
        "gpu": (None, "GPU index (the release's flag; same as --device cuda:N)"),
        "workers": (0, "DataLoader / process-pool workers"),
        "lanes": (1, "./script.py: how many chains of steps may run at once, each in a process of its own, once "
                     "the steps they read are made (lanes.py); at most one per CPU core"),
        "threads": (0, "CPU threads of each step's tensor operations; 0: one per core (./script.py with lanes > 1: "
                       "cores / lanes for every step; a stage command run alone keeps one per core)"),
        "vis": (False, "write a PNG panel per image beside the outputs"),
        "overridecache": (False, "recompute outputs that exist"),
        "snapshot": (2000, "training checkpoint every N iterations (a rerun resumes from it)"),
        "n": (0, "per-image stages: this fragment's index (the release's --n; RANK under torchrun)"),
        "N": (1, "per-image stages: number of fragments (the release's --N; WORLD_SIZE under torchrun)"),
        "amp": ("none", "mixed precision of training and inference: none (float32, the paper's numbers), "
                        "bf16 or fp16 (with loss scaling)"),
        "channels_last": (False, "NHWC memory layout for the networks (often faster convolutions)"),
        "cudnn_benchmark": (True, "cuDNN times its convolution algorithms at a CUDA training's first iteration and "
                                  "keeps the fastest (torch.backends.cudnn.benchmark; no effect on the CPU)"),
        "crf_backend": ("torch", "dense CRF: torch (crf_torch.py, CPU or CUDA; the same labels) or pydensecrf "
                                 "(the release's C++ package pydensecrf2, optional)"),
        "store": ("", "folder of the store of trained saliency networks that every run on this machine shares "
                      "(store.py); empty: $GUIDEDLABELLING_STORE, else $XDG_CACHE_HOME/guidedlabelling/saliency "
                      "(~/.cache/...); none: no store"),
        "follow_symlinks": (False, "own data: read images that are symbolic links to files outside --images "
                                   "(without it, such a link is an error)"),
    },
}
BUILTIN_COUNT = between(1, MAX_BUILTIN)
SHARED_CHECKS = {
    "data": {"layout": one_of("auto", *LAYOUTS), "builtin_size": SIDE, "builtin_train": BUILTIN_COUNT,
             "builtin_val": BUILTIN_COUNT, "val_percent": PERCENT, "max_image_side": side_or_zero,
             # an empty path (an unset shell variable: --images "$PHOTOS") ran the preset's data without a word
             "dataset_dir": filled("a folder"), "pascalroot": filled("a folder"), "images": filled("a folder"),
             "tags": filled("a CSV file"), "masks": filled("a folder")},
    "run": {"out_root": filled("a folder (. for the current one)"), "device": device, "gpu": NON_NEGATIVE,
            "workers": NON_NEGATIVE, "lanes": POSITIVE,
            "threads": NON_NEGATIVE, "snapshot": POSITIVE,
            "n": NON_NEGATIVE, "N": POSITIVE, "amp": one_of(*AMP_DTYPES), "crf_backend": one_of(*BACKENDS)},
}
STAGE_MODULES = {s.name: importlib.import_module(f".stages.{s.name}", __package__) for s in pipeline.STAGES}
OPTIONS = SHARED | {name: module.OPTIONS for name, module in STAGE_MODULES.items()}
CHECKS = SHARED_CHECKS | {name: module.CHECKS for name, module in STAGE_MODULES.items()}
OWNERS = {}  # key -> the sections that have it
for _section, _options in OPTIONS.items():
    for _key in _options:
        OWNERS.setdefault(_key, []).append(_section)
TYPES_WITHOUT_DEFAULT = {"gpu": int}  # settings whose default is None; the others of them are text
BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
PATH_SETTINGS = ("dataset_dir", "pascalroot", "images", "tags", "masks", "saliency_data", "saliency_maps", "init",
                 "out_root")
LIST_SETTINGS = ("saliency_data",)  # several paths, comma-separated
COMMA_LISTS = {("seed_heatmaps", "extra_sizes"): int, ("saliency_train", "holdout_scenes"): str}  # and their items
NOT_PATHS = tuple(v for v in NO_INIT if v is not None) + ("imagenet",)  # values of init that name no file
KIND_NAMES = {bool: "true or false (also yes/no, on/off, 1/0)", int: "a whole number", float: "a finite number",
              str: "one value (text)"}


def defaults():
    return {sec: {k: v[0] for k, v in opts.items()} for sec, opts in OPTIONS.items()}


def locate(key):
    """(section, key) of a setting written `key` or `section.key` (a stage's former name as the section too)."""
    sec, _, bare = key.rpartition(".")
    sec = pipeline.current_name(sec)
    if sec and bare in OPTIONS.get(sec, {}):
        return sec, bare
    owners = OWNERS.get(bare, [])
    if not sec and len(owners) == 1:
        return owners[0], bare
    if not sec and owners:
        raise InputError(f"setting {key!r} is in several sections; write " + " or ".join(f"{s}.{bare}" for s in owners))
    if not sec and pipeline.current_name(bare) in OPTIONS:
        raise InputError(f"{key!r} is a section, not a setting; write {key}.KEY=VALUE (see -h for its settings)")
    raise unknown_setting(key, sec, bare)


def unknown_setting(key, sec, bare):
    """The error for a setting `key` (section `sec`, key `bare`) that no section has, with the nearest names."""
    owners = OWNERS.get(bare, [])
    close = ([bare] if len(owners) == 1 else [f"{s}.{bare}" for s in owners]) if sec in OPTIONS and owners \
        else []   # a key of other sections, written as --set takes it
    close = close or lower_case_name(key)
    if sec in OPTIONS and not close:   # one like a key of this section, else of any
        close = [f"{sec}.{k}" for k in difflib.get_close_matches(bare, OPTIONS[sec], 3)]
    if not close:
        close = [k if len(OWNERS[k]) == 1 else f"{k} (of {', '.join(OWNERS[k])})"
                 for k in difflib.get_close_matches(bare, OWNERS, 3)]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    where = f"; section {sec} has no {bare!r}" if sec in OPTIONS else ""
    listed_by = f"{pipeline.command(sec)} -h lists its settings" if sec in STAGE_MODULES else \
        "each stage command's -h lists its settings (./src/seed/train.py -h, ...), and configs/*.yaml name them"
    return InputError(f"unknown setting {key!r}{where}; {hint}{listed_by}")


def lower_case_name(key):
    """[key in lower case] where that names a setting, as every setting is named (SEED_TRAIN.MAX_ITER got no
    suggestion), or the settings of the sections that have it; else []."""
    low = key.lower()
    sec, _, bare = low.rpartition(".")
    owners = OWNERS.get(bare, [])
    if low == key or not owners or sec and sec not in owners:
        return []
    return [low] if sec or len(owners) == 1 else [f"{s}.{bare}" for s in owners]


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
    if value is None and (sec, bare) == ("data", "pascalroot"):
        return  # a folder's config.yaml leaves it blank where it is not read (naming.without_unread): the default
    converted = None if value is None and default is None else typed(value, kind(sec, bare))
    if converted is None and not (value is None and default is None):
        example = "" if kind(sec, bare) in (bool, str) else f"; write e.g. {default or 0}"
        if isinstance(value, list) and ((sec, bare) in COMMA_LISTS or bare in LIST_SETTINGS):   # a YAML list
            example = f"; write its items in one value, comma-separated: {','.join(map(str, value))}"
        if isinstance(value, bool) and kind(sec, bare) is str:   # `test_pcrf: off` said 'False ...: not one value'
            example = "; YAML reads yes/no, on/off and true/false unquoted as a switch: write the value in quotes"
        raise InputError(f"setting {sec}.{bare} = {value!r} ({source}): not {KIND_NAMES[kind(sec, bare)]}{example}")
    if (bare in PATH_SETTINGS or (sec, bare) == ("run", "store")) and isinstance(converted, str):   # as a shell
        # would ('$HOME/x' named a folder '$HOME'); the store too, before range_problems looks for a variable left
        converted = os.path.expandvars(converted)
    cfg[sec][bare] = converted
    origins[sec, bare] = source


def path_parts(key, value):
    """The paths a path setting's value names: several, comma-separated, for LIST_SETTINGS ('a,b,' names a and b)."""
    parts = value.split(",") if key in LIST_SETTINGS else [value]
    return [p.strip() for p in parts if p.strip()]


def there_as_written(key, value):
    """Whether a path setting that holds a '$' names files that are there as written (a folder named a$x, where no
    variable x is set and expandvars left it so), not a variable left unset."""
    return all(os.path.exists(p) for p in path_parts(key, value))


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
    for sec, values in cfg.items():   # a variable left in a path setting, not set in the environment
        for key in PATH_SETTINGS + ("store",):   # store: a folder too, its variables expanded as theirs
            unset = isinstance(values, dict) and isinstance(values.get(key), str) and \
                not there_as_written(key, values[key]) and re.search(r"\$\{?\w+\}?", values[key])
            if unset:
                problems.append(f"setting {sec}.{key} = {values[key]!r} ({origins.get((sec, key), 'the default')}): "
                                f"{unset.group()} is not set in the environment; set it, or write the path out")
    run = cfg["run"]
    gpu, device = (origins.get(("run", key), "the default") for key in ("gpu", "device"))
    over_preset = gpu == "command line" != device   # --gpu 0 over a preset's device cpu: the command line's wins
    if run["gpu"] is not None and run["device"] not in ("auto", "cuda", f"cuda:{run['gpu']}") and not over_preset:
        problems.append(f"settings run.gpu = {run['gpu']} ({gpu}) and run.device = {run['device']!r} ({device}) name "
                        "two devices (--gpu N is --device cuda:N); give one")
    return problems
