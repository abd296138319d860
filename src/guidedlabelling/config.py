"""One configuration: the paper's defaults (settings.py), a YAML preset of configs/ or a file, and overrides from
the command line; a preset may also group keys under their section. Paths are made absolute here (relative to the
project for its presets and defaults, to the current folder otherwise). Also the stage commands' flags."""
import argparse
import contextlib
import copy
import datetime
import difflib
import os
import re
import sys
from pathlib import Path

import yaml

from .datasets import LAYOUTS, layout
from .datasets.builtin import builtin_roots
from .errors import InputError, Parser
from .io import NAME_MAX, ROOT
from .pipeline import command, current_name
from .settings import COMMA_LISTS, NOT_PATHS, OPTIONS, OWNERS, PATH_SETTINGS, SHARED, defaults, kind, \
    locate, path_parts, range_problems, set_value, typed

CONFIGS = ROOT / "configs"


class KeyTwice(yaml.constructor.ConstructorError):
    """A key given twice in one mapping of a preset."""


class PresetLoader(yaml.SafeLoader):
    """YAML's safe loader, for which a key given twice in one mapping is an error (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        lines = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":   # `<<: *anchor`: PyYAML merges it after
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if isinstance(key, str) and key in lines:
                raise KeyTwice(problem=f"{key!r} is given twice, on lines {lines[key]} and {line}: keep one",
                               problem_mark=key_node.start_mark)
            lines[key] = line
        return super().construct_mapping(node, deep)

    def construct_plain_int(self, node):
        """A whole number written in decimal digits; YAML 1.1's other forms (030 octal, 0x1e, 1_000, 12:30 base 60)
        as the text written, which a number setting reads in decimal as --set does: `seedthres: 030` was 24, where
        --set seedthres=030 is 30, `name: 007` named the folder 7 and `dataset: 010` read the split 8."""
        text = self.construct_scalar(node)
        return self.construct_yaml_int(node) if PLAIN_INT.fullmatch(text) else text


PLAIN_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
PresetLoader.add_constructor("tag:yaml.org,2002:int", PresetLoader.construct_plain_int)


def read_preset_file(path):
    """The mapping a preset file holds; YAML errors, unknown tags, keys given twice and other shapes name the
    file."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=PresetLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        reason = getattr(e, "problem", None) or type(e).__name__
        if isinstance(e, KeyTwice):
            raise InputError(f"{path}{where}: {reason}") from None
        fix = "YAML indents and separates with spaces only: replace the tabs with spaces" if "'\\t'" in reason else \
            "write `key: value` lines or `section: {key: value}` groups"   # (a tab: the lines were `key: value`)
        raise InputError(f"{path}{where}: not a preset ({reason}); {fix}") from None
    except UnicodeDecodeError:   # (UTF-16 or Latin-1 text, an editor's: 'not a text file')
        raise InputError(f"{path}: not UTF-8 text; a preset is YAML `key: value` lines: save it as UTF-8") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: holds a {type(data).__name__}, not a mapping; write `key: value` lines or "
                         "`section: {key: value}` groups")
    return data


def run_name(data, path):
    """The preset's `name:` (the file's name without one), which names the run's folder under out_root: any YAML
    scalar as text (`name: 2024-05-01` is a date to YAML), but empty, true/false or a list or mapping."""
    name = data.get("name", path.stem)
    if isinstance(name, bool) or not isinstance(name, (str, int, float, datetime.date)):
        raise InputError(f"{path}: name {name!r} is not a folder name (it names the run's folder under out_root); "
                         "write a plain name such as `name: my_photos` (in quotes where YAML reads it otherwise: "
                         "`name: 'yes'`), or leave the line out for the file's name")
    if str(name) in ("", ".", "..") or any(c in str(name) for c in "/\\\0"):   # (a NUL: a traceback)
        raise InputError(f"{path}: name {str(name)!r} is not a folder name (it names the run's folder under "
                         "out_root); write a plain name such as my_photos")
    longest = NAME_MAX - len(".yaml")   # it names a folder, and is looked up as configs/<name>.yaml
    if len(os.fsencode(str(name))) > longest:   # (that lookup failed: 'File name too long; check the file')
        raise InputError(f"{path}: name {str(name)[:20]!r}... is {len(os.fsencode(str(name)))} bytes long (it names "
                         f"the run's folder under out_root); write a name of at most {longest} bytes")
    return str(name)


def preset_names():
    """'demo, demo_vgg, msrc, ...': the presets of configs/."""
    return ", ".join(sorted(p.stem for p in CONFIGS.glob("*.yaml")))


CONFIG_HELP = f"a preset of configs/ ({preset_names()}) or a YAML file; default: demo"


def preset_path(config):
    """The YAML file `config` names: a file, else a preset of configs/ (also where a folder has its name, such as
    a run's own folder `msrc/` in the current folder: a folder is never a config)."""
    path = Path(config)
    if not path.is_file() and (CONFIGS / f"{path}.yaml").exists():
        path = CONFIGS / f"{path}.yaml"
    presets = preset_names()
    if path.is_dir():
        raise InputError(f"{path}: a folder, not a config; name a YAML file or a preset in configs/ ({presets})")
    if not path.is_file():
        near = [path.stem] if (CONFIGS / path.name).is_file() else \
            difflib.get_close_matches(str(config), preset_names().split(", "), 1)   # (a name mistyped: smok)
        meant = f" (did you mean {near[0]}, a preset of configs/?)" if near else ""
        raise InputError(f"{path}: config not found{meant}; use a file in configs/ ({presets})")
    return path


def load_preset(config, origins, problems):
    """The paper's defaults updated by a preset: a name in configs/ or a YAML file of `key: value` lines
    (key as in set_value) or `section: {key: value}` groups. Where each value came from goes to `origins`,
    what is wrong with any to `problems`."""
    path = preset_path(config)
    data = read_preset_file(path)
    if not data:   # it ran the code's defaults, the paper's on VOC, and then missed VOC's folder
        raise InputError(f"{path}: holds no settings; write `key: value` lines, or start from a copy of a preset in "
                         f"configs/ ({preset_names()})")
    cfg = defaults()
    written = {}   # (section, key) -> how the file wrote it: one setting written twice (flat and in its section,
    # or under a section's former name) kept the last without a word
    for as_written, value, said in preset_entries(data, path, problems):
        try:
            set_value(cfg, as_written, value, str(path), origins)
            where = locate(as_written)
        except InputError as e:
            problems.append(str(e))
            continue
        if where in written:
            problems.append(f"{path}: setting {'.'.join(where)} is given twice, as {written[where]} and as "
                            f"{said}; keep one")
        written[where] = said
    cfg["name"] = run_name(data, path)
    builtin = CONFIGS / f"{cfg['name']}.yaml"
    if builtin.is_file() and path.resolve() != builtin.resolve() and read_preset_file(builtin) != data:
        raise InputError(f"{path}: its runs would share <out_root>/{cfg['name']} with the preset {cfg['name']} of "
                         "configs/, whose folders hold other settings; rename the file, or add a line `name: "
                         f"my_{cfg['name']}`")
    return cfg


def preset_entries(data, path, problems):
    """(the key as set_value reads it, its value, how the file wrote it) of each setting of a preset file's
    `key: value` lines and `section: {key: value}` groups; what is wrong with a group's shape goes to `problems`."""
    for key, value in data.items():
        if key == "name":
            continue
        section = isinstance(key, str) and current_name(key) in OPTIONS
        if section and value is None:   # `seed_train:` with its lines commented out: no settings
            continue
        if section and not isinstance(value, dict):
            problems.append(f"{path}: {key!r} is a section, not a setting; write its settings under it, "
                            f"`{key}: {{KEY: VALUE}}` (-h lists them)")
            continue
        misspelt = isinstance(value, dict) and not section and str(key).rpartition(".")[2] not in OWNERS
        if misspelt:   # a section misspelt (a key's hint would name a setting; a setting given a mapping is told so)
            near = difflib.get_close_matches(str(key), OPTIONS, 1)
            problems.append(f"{path}: unknown section {key!r}; " + (f"did you mean {near[0]}?" if near else
                                                                    f"the sections are {', '.join(OPTIONS)}"))
            continue
        if not section and names_preset(key, value):
            problems.append(f"{path}: {key}: {value} names a preset, but presets do not include one another; copy "
                            f"{preset_path(value)} and edit it, or give it as --config with --set for the changes")
            continue
        for k, v in (value.items() if section else [(key, value)]):
            yield (f"{key}.{k}" if section else str(k)), v, (f"{k} under {key}" if section else str(k))


def names_preset(key, value):
    """Whether a top-level line of a preset that is no setting names a preset (`config: msrc`, `base: my.yaml`): an
    include, which said 'unknown setting 'base'; did you mean base_lr'."""
    if not isinstance(value, str) or str(key).rpartition(".")[2] in OWNERS:
        return False
    return (CONFIGS / f"{value}.yaml").is_file() or value.endswith((".yaml", ".yml")) and Path(value).is_file()


def split_override(item):
    """'KEY=VALUE' -> (KEY, VALUE), spaces around either dropped ('init= none' named a file ' none') and one pair of
    quotes around VALUE, as a preset reads them (--set 'dataset_dir="/x y"' named a folder '"' inside '.')."""
    if "=" not in item:
        raise InputError(f"--set {item!r}: expected KEY=VALUE")
    key, value = (part.strip() for part in item.split("=", 1))
    quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
    return key, value[1:-1] if quoted else value


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
    problems += range_problems(cfg, origins) + layout_problems(cfg["data"]) + misplaced_paths(cfg, origins)
    if problems:
        raise InputError(*problems)
    for c, where in ((cfg, origins), (preset, preset_origins)):
        complete(c)
        absolute_paths(c, lambda sec, key: base_folder(where.get((sec, key))))
        canonical_lists(c)
    return cfg, preset


def misplaced_paths(cfg, origins):
    """A relative path of one's own preset file (not out_root, which a run makes) that is not there from the current
    folder, whose it is, but is from the project's, as in configs/' presets, or the preset's folder: a copy of
    configs/msrc.yaml run elsewhere said only '/tmp/shared/data/msrc_things: dataset folder not found'."""
    problems = []
    for (sec, key), origin in origins.items():
        value = cfg[sec][key]
        if key not in PATH_SETTINGS or key == "out_root" or not isinstance(value, str) or value in NOT_PATHS or \
                origin == "command line" or Path(origin).resolve().parent == CONFIGS:
            continue
        for part in path_parts(key, value):
            path = Path(part).expanduser()
            there = [base / path for base in (ROOT, Path(origin).parent) if (base / path).exists()]
            if not path.is_absolute() and not path.exists() and there:
                problems.append(f"setting {sec}.{key} = {value!r} ({origin}): {Path.cwd() / path} is not there (a "
                                f"relative path of your own preset is the current folder's); {there[0].resolve()} is: "
                                "write that")
    return problems


def layout_problems(d):
    """A dataset layout whose `settings` name what is no data setting (a slip in a module added to LAYOUTS: its
    folders would leave that setting out of their names, so two datasets would share them)."""
    name = layout(d)
    unknown = [k for k in getattr(LAYOUTS.get(name), "settings", None) or () if k not in OPTIONS["data"]]   # (a
    # layout that is none is range_problems')
    return [f"layout {name}: its `settings` name {', '.join(map(repr, unknown))}, which no data setting is (the data "
            f"settings: {', '.join(OPTIONS['data'])}); correct {LAYOUTS[name].__module__}"] if unknown else []


def canonical_lists(cfg):
    """Comma-separated settings written one way ('96,' and ' 096 ' are '96'; each is a set: '481,321,321' is
    '321,481'), so that one value names one folder; a value the checks would refuse stays as written (a preset's,
    replaced on the command line, is not checked). Returns cfg."""
    for (sec, key), item in COMMA_LISTS.items():
        with contextlib.suppress(ValueError):
            cfg[sec][key] = ",".join(map(str, sorted({item(x.strip()) for x in cfg[sec][key].split(",") if x.strip()})))
    return cfg


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
                    values[key] = ",".join(str((base(sec, key) / Path(p).expanduser()).resolve())
                                           for p in path_parts(key, values[key]))
    return cfg


def builtin_dir(d):
    """Where the built-in dataset of these data settings is generated."""
    return ROOT / "data" / f"builtin_{d['builtin_size']}px_{d['builtin_train']}_{d['builtin_val']}"


def builtin_moved(there, here):
    """Whether a stored path setting `there` names the built-in data `here` names (generated inside the project)
    where the project folder was since moved or cloned elsewhere: the same generated folders under another project
    folder, the others the same (a comma-separated list: --saliency_data beside the built-in set)."""
    if not (isinstance(there, str) and isinstance(here, str)) or there == here:
        return False
    pairs = list(zip(there.split(","), here.split(",")))
    return len(pairs) == len(here.split(",")) == len(there.split(",")) and \
        all(old == new or generated_moved(Path(old), Path(new)) for old, new in pairs)


def generated_moved(there, here):
    """Whether `there` is the built-in data folder `here` of a project folder since moved (builtin_moved)."""
    generated = here.parent.parent == (ROOT / "data").resolve() and here.name in ("builtin", "builtin_saliency") \
        and re.fullmatch(r"builtin_\d+px_\d+_\d+", here.parent.name)
    return bool(generated) and there.parts[-2:] == here.parts[-2:]


def complete(cfg):
    """The built-in dataset becomes the dataset of the run, and its saliency set the saliency set, unless the
    settings name others (--dataset_dir or --pascalroot, --saliency_data); --gpu N means --device cuda:N."""
    d, sal_train = cfg["data"], cfg["saliency_train"]
    if d["builtin"]:
        voc, sal = builtin_roots(builtin_dir(d))
        default_root = d["dataset_dir"] is None and d["pascalroot"] == SHARED["data"]["pascalroot"][0]
        if d["layout"] in ("auto", "voc") and default_root:
            d["dataset_dir"] = str(voc)
        if sal_train["saliency_data"] == OPTIONS["saliency_train"]["saliency_data"][0]:
            sal_train["saliency_data"] = str(sal)
    if cfg["run"]["gpu"] is not None:
        cfg["run"]["device"] = f"cuda:{cfg['run']['gpu']}"


SHAPES_SALIENCY = ("if these images are photos: the saliency network learns from the built-in data's synthetic shapes "
                   "(saliency_data), which marks little of a photo's objects (on MSRC's photos the guide labels "
                   "reached 34.4 mIoU, no more than the seeds, against 63.7 with --config msrc); for photos use "
                   "--config msrc, or name a saliency set of photos with --set saliency_data=DIR (./downloads.sh "
                   "--saliency-data fetches MSRA-B and DUTS-TR), or bring saliency maps with --saliency DIR (README, "
                   "own data)")


def builtin_paths(d):
    """(dataset_dir, saliency_data) of the built-in data these data settings generate, resolved."""
    return tuple(str(p.resolve()) for p in builtin_roots(builtin_dir(d)))


def shapes_saliency_warning(cfg):
    """SHAPES_SALIENCY where the saliency network learns from the built-in data's synthetic shapes while the images
    are others (the demo preset on your photos), where it marks little of the objects; else None."""
    d, sal_train = cfg["data"], cfg["saliency_train"]
    voc, shapes = builtin_paths(d)
    builtin_images = layout(d) == "voc" and d["dataset_dir"] == voc
    holds = (cfg["saliency"]["source"] == "model" and not cfg["guide_labels"]["saliency_maps"]
             and sal_train["saliency_data"] == shapes and not builtin_images)
    return SHAPES_SALIENCY if holds else None


UPSTREAM_HELP = ("Settings of the other stages (the upstream ones name this stage's input folders) are set with "
                 "--set SECTION.KEY=VALUE, or --set KEY=VALUE where only one section has KEY; see ./script.py -h "
                 "and configs/ for the sections.")


def stage_parser(stage, description, argv=None):
    """Flags of one stage command: its own settings, data and run; everything else through --set. Each flag's help
    shows its default (the release's number, where the release has the setting) and the value of the --config that
    `argv` gives (demo's without one) where it differs: what the command runs with."""
    invoked = sys.argv[0] if sys.argv[0].startswith("python -m ") else command(stage)  # __main__ names itself
    parser = Parser(prog=invoked, description=description, epilog=UPSTREAM_HELP,
                    formatter_class=argparse.RawDescriptionHelpFormatter)  # ./src/seed/train.py, not train.py
    config, preset, problems = preset_of(argv)
    slips = "" if not problems else f"; {config} does not load: the command without -h says why" if not preset else \
        f"; {config} has {len(problems)} problem{'s' * (len(problems) > 1)}, which the command without -h names"
    parser.add_argument("--config", default="demo", help=f"{CONFIG_HELP}; its settings replace the defaults (each "
                                                        f"flag shows the preset's value where it differs){slips}")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any setting, upstream stages' included (KEY or SECTION.KEY)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    for sec in (stage, "data", "run"):
        group = parser.add_argument_group(f"{sec} settings")
        for key, (default, help_text) in OPTIONS[sec].items():
            flag = dict(dest=f"{sec}.{key}", default=None)
            shown = [] if default in (None, "") or isinstance(default, bool) else [f"default: {default}"]
            value = preset.get(sec, {}).get(key, default)
            shown += [f"{config}: {'on' if value is True else 'off' if value is False else value}"] \
                if value != default else []
            shown = f" ({'; '.join(shown)})" if shown else ""
            text = (help_text + shown).replace("%", "%%")  # argparse %-formats help texts
            if default is True:  # a setting on by default is turned off by its flag
                group.add_argument(f"--no_{key}", action="store_const", const=False,
                                   help=f"turn off (on by default): {text}", **flag)
            elif isinstance(default, bool):
                group.add_argument(f"--{key}", action="store_const", const=True, help=text, **flag)
            else:  # the value is read (and checked) as the setting's type by resolve
                group.add_argument(f"--{key}", metavar=key.upper(), help=text, **flag)
    return parser


def preset_of(argv):
    """(the --config that argv gives, demo without one; its settings, or {} where it does not load; what is wrong
    with any of them, which then keep the default: -h showed none of a preset with one slip)."""
    peek = argparse.ArgumentParser(add_help=False, exit_on_error=False, allow_abbrev=False)
    peek.add_argument("--config", default="demo")
    try:
        config = peek.parse_known_args(sys.argv[1:] if argv is None else argv)[0].config
    except argparse.ArgumentError:   # --config without its value: the command's own parser says so
        return "demo", {}, []
    problems = []
    try:
        preset = load_preset(config, {}, problems)   # as written: paths not yet resolved
    except InputError as e:   # the command's run says why
        return config, {}, list(e.messages)
    return config, preset, problems


def flag_overrides(args):
    """--set items, then the stage's explicit flags, as KEY=VALUE overrides in that order."""
    flags = [f"{key}={value}" for key, value in vars(args).items() if "." in key and value is not None]
    refuse_conflicts(args.set, [(flag_written(flag), flag) for flag in flags])
    return list(args.set) + flags


def flag_written(item):
    """'--max_iter 9' of 'seed_train.max_iter=9'; '--no_KEY' of a setting on by default turned off, '--KEY' of one
    off by default turned on."""
    key, _, value = item.partition("=")
    sec, bare = key.split(".")
    default = OPTIONS[sec][bare][0]
    return f"--no_{bare}" if default is True else f"--{bare}" if default is False else f"--{bare} {value}"


def read_item(item):
    """((section, key), value) of a KEY=VALUE override, the value as resolve reads it (a path absolute, a list written
    one way, no and false one value); (None, value) of an unknown key and the value as written of one not of the
    setting's type, which resolve names."""
    key, value = split_override(item)
    try:
        sec, bare = locate(key)
    except InputError:
        return None, value
    one = defaults()
    one[sec][bare] = typed(value, kind(sec, bare))
    if one[sec][bare] is None:
        return (sec, bare), value
    return (sec, bare), canonical_lists(absolute_paths(one))[sec][bare]


def refuse_conflicts(sets, flags):
    """A flag and a --set item that give one setting two values are an error (the flag won without a word). flags:
    [(the flag as written, its KEY=VALUE)]; values are compared as resolve reads them (read_item)."""
    given = {}
    for item in sets:
        where, value = read_item(item)
        given.setdefault(where, []).append((item, value))
    problems = [f"{shown} and --set {item}: two values of {where[0]}.{where[1]}; give one" for shown, flag in flags
                for where, value in [read_item(flag)] if where
                for item, other in given.get(where, []) if other != value]
    if problems:
        raise InputError(*problems)
