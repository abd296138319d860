"""A stage's output folder: <out_root>/<preset>/<stage>/<name>, where <name> lists the settings of the
stage and its upstream stages that differ from the preset (readable tokens like `seedthres-30`; a path is its last
part and a hash of it, `images-photos-1f0c2a`), so variants coexist and each stage finds its inputs; and whether a
folder's stored settings (its config.yaml, paths absolute) are the current ones."""
import copy
import hashlib
import itertools
import shlex
from pathlib import Path

import yaml

from . import pipeline
from .config import absolute_paths, builtin_moved, builtin_paths, resolve
from .datasets import LAYOUTS, data_settings_unread, layout
from .errors import InputError
from .guide_rules import RULES
from .io import cut_to_bytes
from .settings import NOT_PATHS, OWNERS, PATH_SETTINGS, STAGE_MODULES, defaults, locate
from .tags import read_rows, tag_names

MAX_NAME = 120
MAX_BYTES = 249  # of a folder name: its lock file, .<name>.lock, takes 6 more of the 255 a name holds
NAMING_EXCLUDED = {"builtin", "builtin_size", "builtin_train", "builtin_val"}  # the data folder names them


def token(sec, key, value, section_names=None):
    """`key-value` of a setting in a folder name; a path is its last part and a hash of the whole (two
    projects' folders both called images/ get two folders). section_names: how a section is written, when
    not by its name."""
    name = set_key((section_names or {}).get(sec, sec), key)
    if key in PATH_SETTINGS and isinstance(value, str) and value not in NOT_PATHS:
        raw = value.encode(errors="surrogateescape")   # a name not UTF-8 (caf\xe9/) is read with surrogates
        last = Path(value.split(',')[0]).name.encode(errors="surrogateescape").decode(errors="replace")   # caf\ufffd
        return f"{name}-{last}-{hashlib.sha1(raw).hexdigest()[:6]}"
    return f"{name}-{value}"


def set_key(sec, key):
    """A setting as --set names it: bare where one section has it, else SECTION.KEY."""
    return key if len(OWNERS[key]) == 1 else f"{sec}.{key}"


def rerun_command(stage, cfg, preset):
    """The command that makes `stage`'s output of these settings, for messages: its --set of the settings of its
    sections (and out_root) that differ from the preset."""
    derived = dict(zip((("data", "dataset_dir"), ("saliency_train", "saliency_data")),
                       builtin_paths(cfg["data"]))) if cfg["data"]["builtin"] else {}  # the builtin_* settings give
    differ = [(sec, k, v) for sec in pipeline.sections(stage, cfg) for k, v in cfg[sec].items()
              if v != preset[sec][k] and derived.get((sec, k)) != v]
    if cfg["run"]["out_root"] != preset["run"]["out_root"]:
        differ.append(("run", "out_root", cfg["run"]["out_root"]))
    sets = "".join(f" --set {shlex.quote(f'{set_key(sec, k)}={v}')}" for sec, k, v in differ)
    return f"{pipeline.command(stage)}{sets} with the same --config"


def stage_name(cfg, preset, stage, section_names=None, cut_midway=False, masks_named=False):
    """Readable folder name from the settings that differ from the preset. A long one keeps the settings that fit
    whole, then a hash of them all (file systems allow 255 bytes; the full settings are in config.yaml).
    cut_midway: as versions up to cce8fdd cut it (`..._max_iter-2_<hash>` of max_iter 20), for their folders;
    masks_named: with --masks, as versions up to eda7e05 named every folder of your own data."""
    unread = unread_data({sec: cfg[sec] for sec in pipeline.sections(stage, cfg)})
    unread -= {"masks"} if masks_named else set()
    tokens = [token(sec, k, v, section_names) for sec in pipeline.sections(stage, cfg) for k, v in cfg[sec].items()
              if k not in NAMING_EXCLUDED and v != preset[sec][k] and not (sec == "data" and k in unread)]
    name = "_".join(tokens) or "default"
    if fits(name, MAX_NAME):
        return name
    room, kept = MAX_NAME - 11, []
    for t in tokens if not cut_midway else []:
        if not fits("_".join(kept + [t]), room):
            break
        kept.append(t)
    return ("_".join(kept) or cut_to_bytes(name[:room], MAX_BYTES - 11)) + "_" + \
        hashlib.sha1(name.encode()).hexdigest()[:10]


def fits(name, chars):
    """Whether a folder name of at most `chars` characters (of MAX_NAME) also fits in as many bytes as are left of
    MAX_BYTES: a path's last part of 80 Chinese characters was 240 bytes, and its folder 'File name too long'."""
    return len(name) <= chars and len(name.encode()) <= MAX_BYTES - (MAX_NAME - chars)


def run_dir(cfg):
    """<out_root>/<preset>: the folder of a run's stage folders, summary.json and report.html."""
    return Path(cfg["run"]["out_root"]) / cfg["name"]


def step_folders(config, overrides, skip=()):
    """{step: its stage folder} of the driver's steps (pipeline.STEPS, each with the settings it adds) under the run's
    settings, in step order, but the steps in `skip` (with a global --set labels=gt two steps share one folder)."""
    return {step: stage_dir(*resolve(config, list(overrides) + list(extra)), stage)
            for step, stage, extra in pipeline.STEPS if step not in skip}


def stage_dir(cfg, preset, stage):
    """The stage's folder; one that an older version made under the stage's former folder and section names, with
    its name cut midway, named by your own data's --masks, or several of these at once (the versions up to 41e8e02
    did all three), while there is no current one (the settings and inputs it was made with are checked as any
    folder's)."""
    run = run_dir(cfg)
    current = run / stage / stage_name(cfg, preset, stage)
    former = run / pipeline.FORMER_FOLDERS.get(stage, stage)
    formers = (folder / stage_name(cfg, preset, stage, names, cut_midway=cut, masks_named=masks)
               for folder, names in ((run / stage, None), (former, pipeline.FORMER_OF))
               for cut, masks in itertools.product((False, True), repeat=2))
    return current if current.exists() else next((f for f in formers if f.is_dir()), current)


def relevant(cfg, stage):
    """The part of the config that determines a stage's outputs (stored and compared for caching)."""
    return without_unread({sec: dict(cfg[sec]) for sec in pipeline.sections(stage, cfg)})


def without_unread(settings):
    """Settings (a stage's sections) with the data settings that its outputs do not depend on at their defaults,
    paths blank (unread_data)."""
    d = settings.get("data")
    if d is None:
        return settings
    default = defaults()["data"]
    settings["data"] = d | {k: None if k in PATH_SETTINGS else default[k] for k in unread_data(settings) if k in d}
    return settings


def unread_data(settings):
    """The data settings that outputs of these settings (a stage's sections) do not depend on: another layout's
    (--dataset_dir beside your own data), --pascalroot where --dataset_dir replaces it (its default is a path inside
    the project, and would make another clone's folders 'made with other settings'), and your own data's --masks
    where the outputs are only scored with them (a run given --masks after one without scores what that one made)."""
    if "data" not in settings:   # the saliency training reads its own set
        return set()
    return set(data_settings_unread(settings["data"])) | ({"masks"} if masks_scored_only(settings) else set())


def masks_scored_only(settings):
    """Whether outputs of these settings (a stage's sections) read your own data's --masks only to be scored with
    them: not a layout without --masks (VOC's), nor one whose tags come from them, nor outputs made from them."""
    d = settings.get("data")
    return d is not None and "masks" not in data_settings_unread(d) and not LAYOUTS[layout(d)].tags_in_labels \
        and not learns_from_masks(settings)


def scored_with(cfg, stage):
    """{"scored_with": the masks folder} for the done.json of a stage whose folder --masks does not name (its
    outputs are only scored with them), else {}: a table must not show scores of other masks (other_masks)."""
    scored_only = masks_scored_only({sec: cfg[sec] for sec in pipeline.sections(stage, cfg)})
    return {"scored_with": cfg["data"]["masks"]} if scored_only else {}


def other_masks(done, cfg):
    """The masks folder a finished stage's scores were made with where it is not this run's (None: without masks;
    False where they are this run's, or the folder did not record them)."""
    if "scored_with" not in (done or {}) or done["scored_with"] == cfg["data"]["masks"]:
        return False
    return done["scored_with"]


def learns_from_masks(settings):
    """Whether outputs of these settings (a stage's sections) are made from the ground-truth masks, not only scored
    with them: the fully supervised reference's (seg_train.labels gt), an oracle's guide labels' (guiderule salor),
    and what is made from those."""
    rule = RULES.get(settings.get("guide_labels", {}).get("guiderule"))
    return settings.get("seg_train", {}).get("labels") == "gt" or bool(rule and rule.oracle)


def stored_settings(out):
    """The settings a folder was made with (its config.yaml), or None."""
    path = out / "config.yaml"
    if not path.exists():
        return None
    try:
        stored = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError):
        stored = None
    if not isinstance(stored, dict):  # config.yaml is written whole (atomically): this one was damaged since
        raise InputError(f"{path}: unreadable; remove this folder, or rerun with --overridecache")
    return lineage_only({pipeline.current_name(sec): values for sec, values in stored.items()})


def lineage_only(stored):
    """A stored config without the sections of stages its folder's outputs do not read by the current rules
    (pipeline.parents): guide labels made from your own saliency maps kept the saliency settings up to ca9f5ca."""
    stage = next((s.name for s in reversed(pipeline.STAGES) if isinstance(stored.get(s.name), dict)), None)
    if stage is None:
        return stored
    full = {sec: defaults().get(sec, {}) | values for sec, values in stored.items() if isinstance(values, dict)}
    read = pipeline.sections(stage, full)
    return {sec: values for sec, values in stored.items() if sec not in pipeline.BY_NAME or sec in read}


def made_by(out):
    """The stage whose output folder `out` is, by its config.yaml: of the stages it holds the settings of (the stage
    and those upstream of it), the last in the table; None for none."""
    try:
        stored = stored_settings(out) or {}
    except InputError:   # damaged: check_cache says so, and --overridecache replaces it
        return None
    stages = [s.name for s in pipeline.STAGES if s.name in stored]
    return stages[-1] if stages else None


def same_settings(stored, current):
    """A folder's stored config matches the current one; settings added to the project since the folder
    was made count as equal when they have their default value, so old run folders stay valid."""
    if stored is None or set(stored) != set(current) or gone_settings(stored, current):
        return False
    return not differences(stored, current)


def gone_settings(stored, current):
    """The sections and settings (SECTION.KEY) of a stored config that the current one does not have."""
    return [f"{sec}.{k}" for sec, old in stored.items() if isinstance(old, dict) for k in old
            if k not in current.get(sec, {})] + [sec for sec in stored if sec not in current]


FOLDER_FLAGS = ("seed_dir", "saliency_dir", "model_dir", "guide_dir")  # the flags that give an upstream folder
VOC_DATA, BUILTIN_DATA = ("datatype", "builtin"), ("builtin_size", "builtin_train", "builtin_val")  # with the
# layout and max_image_side, which data per-image outputs are of (their paths may have moved since)


def with_given_folders(stage, cfg, given, overrides):
    """(cfg, notes): cfg with, for each folder given by a flag instead of an upstream stage's output (--model_dir,
    --seed_dir, ...) that is that stage's folder (its config.yaml), the settings its outputs were made with in place
    of the command's (but the data settings), said in a note: a model trained at 96 px is then tested at 96 px, as
    the driver tests it, and the folder made records the settings that made it. A setting the command is given (a
    flag, --set) that the folder was made otherwise with is an error, and so is a folder of per-image outputs made
    from other data (its images share ids with this run's: the stage would take them for theirs)."""
    explicit = {locate(item.split("=", 1)[0].strip()) for item in overrides}
    flagged = {given[flag] for flag in FOLDER_FLAGS if given.get(flag)}
    notes = []
    for parent, folder in STAGE_MODULES[stage].reads(cfg, given).upstream.items():
        path = Path(folder).expanduser() if folder in flagged else None
        if path is None or made_by(path) != parent:   # a user's folder of files, or none given
            continue
        stored = stored_settings(path)
        if pipeline.BY_NAME[parent].per_image and \
                (other := other_data(stored.get("data"), relevant(cfg, parent).get("data"))):
            raise InputError(f"{path}: {parent}'s outputs made from other data than this command's ({other}); pass a "
                             f"folder of {parent} made from these images")
        taken = take_settings(cfg, parent, stored, explicit, path)
        if taken:
            said = ", ".join(f"{key} {there!r} (this command's: {here!r})" for key, (there, here) in taken.items())
            notes.append(f"{path}: its {parent} outputs were made with {said}; this command uses those settings")
    return cfg, notes


def other_data(stored, current):
    """'builtin_size 128 there, 96 here; ...' where the data settings a folder stored name other data than the
    current ones (both as relevant() gives them): the layout they resolve to, the work size, and for a VOC-layout
    folder the datatype and the built-in set (your own data's builtin settings give the saliency set only), else
    ''."""
    if stored is None or current is None:
        return ""
    stored = defaults()["data"] | stored   # settings added since: their defaults
    there, here = layout(stored), layout(current)
    keys = ["max_image_side"]
    if there == here == "voc":
        keys += VOC_DATA + (BUILTIN_DATA if stored["builtin"] and current["builtin"] else ())
    pairs = [("layout", there, here)] + [(k, stored[k], current[k]) for k in keys]
    if there == here == "own" and stored["tags"] != current["tags"]:   # another CSV: its classes, in the outputs'
        classes = [csv_classes(stored["tags"]), csv_classes(current["tags"])]   # order
        pairs += [("the classes of tags", *classes)] if None not in classes else []
    return "; ".join(f"{key} {there!r} there, {here!r} here" for key, there, here in pairs if there != here)


def csv_classes(path):
    """The classes a tags CSV names (own data's, after background), or None where it does not read (gone since)."""
    try:
        return tag_names(read_rows(path)[0])
    except InputError:
        return None


def take_settings(cfg, parent, stored, explicit, path):
    """{setting: (the folder's value, the command's)} of the settings of `parent`'s sections, but data, that a
    folder's stored config has otherwise, each set in cfg; one the command was given (`explicit`) is an error."""
    taken = {}
    for _ in pipeline.STAGES:   # a setting taken (seg_train.labels) may bring sections of its own to compare
        current = {sec: values for sec, values in relevant(cfg, parent).items() if sec in stored and sec != "data"}
        differ = differences(stored, current)
        conflicts = [f"{key} {there!r} there, {here!r} given here" for key, there, here in differ
                     if locate(key) in explicit]
        if conflicts:
            raise InputError(f"{path}: {parent}'s outputs made with other settings than those given ("
                             f"{'; '.join(conflicts)}); pass a folder made with them, or leave them out to use the "
                             "folder's")
        if not differ:
            break
        for key, there, here in differ:
            sec, bare = locate(key)
            cfg[sec][bare] = there
            taken.setdefault(key, (there, here))
    return taken


def said_differences(stored, current, most=3):
    """'seedthres 20 there, 30 here; ...' of the settings in which a stored config differs from the current one (at
    most `most`, then how many more), or the sections and settings it has that the current one does not."""
    said = [f"{key} {old!r} there, {new!r} here" for key, old, new in differences(stored, current)] + \
        [f"{key} there, not a setting here" for key in gone_settings(stored, current)]
    return "; ".join(said[:most]) + (f" and {len(said) - most} more" if len(said) > most else "")


def differences(stored, current):
    """[(the setting as --set writes it, its value in a folder's stored config, its current value)] where they
    differ; a setting added to the project since the folder was made counts as its default there. Stored configs
    are read as the project reads them now: paths made absolute (folders of a version before they were stored so,
    relative to the current folder), settings not read blank (naming.without_unread), the built-in data of the project
    since moved as this one's (config.builtin_moved)."""
    stored = without_unread(absolute_paths(copy.deepcopy(stored)))
    defaults_ = defaults()

    def there(sec, k):
        return stored.get(sec, {}).get(k, defaults_.get(sec, {}).get(k))
    return [(set_key(sec, k), there(sec, k), v) for sec, values in current.items() for k, v in values.items()
            if there(sec, k) != v and not builtin_moved(there(sec, k), v)]
