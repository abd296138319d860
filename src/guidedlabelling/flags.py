"""Flags a command lacks, told how to give them instead of argparse's bare 'unrecognized arguments': a setting
of another stage or of the driver (through --set), the release's names of upstream stages' settings (--s_seedthres),
its flags with no use here (--test_gtcls) and its type=bool switches given a value (--overridecache False)."""
import sys

from . import naming
from . import settings as S
from .errors import InputError, listed


def parse_or_suggest_set(parser, argv, command):
    """parser.parse_args(argv); flags it lacks that are settings (--max_iter on a test command, --guiderule on
    ./script.py) end in one line each saying how --set gives them."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        after = values_after_switches(parser, sys.argv[1:] if argv is None else argv, unknown)
        problems = settings_as_flags(unknown, command) + release_only(unknown) + after
        if not problems or len(problems) - len(after) < sum(token.startswith("--") for token in unknown):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        raise InputError(*problems)
    return args


RELEASE_ONLY = {   # the release's flags that have no counterpart here, and why
    **dict.fromkeys(("save", "save_cls", "save_heat"), "every output is saved"),
    "imagenetmeanloc": "each network's input preprocessing is built in (docs/method.md)",
    **dict.fromkeys(("gtcls", "test_gtcls"), "the heatmaps are always those of each image's tags, as the release's "
                                             "'use' made them"),
    "test_ranking": "its one value in the release, none, is what this port does",
    "test_datatype": "--datatype names the ImageSets folder of every split",
    "shuffle": "the images are worked on in the split's order, which --n/--N fragments split",
    "visconf": "--vis draws the panels",
    "plot": "report.html draws the figures",
    "parallel": "--n/--N fragments and torchrun split the per-image work",
}
RELEASE_UPSTREAM_DATA = {   # the release's names of upstream stages' data, which are not the run's data here
    **dict.fromkeys(("s_dataset", "s_s_dataset", "s_datatype", "s_s_datatype"),
                    "the saliency network's training set, MSRA, and its type, NP: here --set saliency_data=DIR, or "
                    "the built-in saliency set"),
    **dict.fromkeys(("g_test_dataset", "s_g_test_dataset", "s_test_dataset", "s_s_test_dataset"),
                    "the split an upstream stage worked on: here it is the training split, --dataset"),
}
SEED, SALIENCY = ("seed_train", "seed_heatmaps"), ("saliency_train", "saliency")
RELEASE_PREFIXES = {"s_g_": SEED, "s_s_": SALIENCY, "g_": SEED, "s_": SALIENCY + ("guide_labels",)}   # the release's
# names of upstream stages' settings: the seed's and saliency's in generate.py (g_, s_), seed's, saliency's and the
# guide's in the segmentation scripts (s_g_, s_s_, s_)
BOOL_WORDS = ("True", "False", "true", "false")


def release_only(unknown):
    """For each of the release's flags that `unknown` holds, with no counterpart here: why, in one line."""
    return [f"{token}: a flag of the release with no use here ({why}); leave it out"
            for token in unknown if token.startswith("--") and (why := release_reason(token[2:].partition("=")[0]))]


def release_reason(key):
    """Why the release's flag `key` (its prefixed names of upstream stages' ones too: --g_test_gtcls) has no use
    here, or None."""
    bare = next((key[len(p):] for p in RELEASE_PREFIXES if key.startswith(p) and key[len(p):] in RELEASE_ONLY), key)
    return RELEASE_UPSTREAM_DATA.get(key) or RELEASE_ONLY.get(bare)


def values_after_switches(parser, argv, unknown):
    """For each True/False of `unknown` given after a switch (--overridecache False): that the switch takes none.
    The release's switches were argparse's type=bool, which turns any value, False included, into True."""
    switches = {s: a for a in parser._actions if a.nargs == 0 for s in a.option_strings}
    return [f"{argv[k - 1]} {token}: {argv[k - 1]} takes no value (the release's type=bool flags took one, and "
            f"turned even False into True); {switch_use(argv[k - 1], switches[argv[k - 1]])}"
            for k, token in enumerate(argv) if token in BOOL_WORDS and token in unknown and k and
            argv[k - 1] in switches]


def switch_use(flag, action):
    """How to give a switch's setting either way: leaving the flag out keeps the --config's value, which may be
    the one the flag gives (demo turns freeze_trunk on)."""
    on = action.const is not False
    if "." not in action.dest:   # --debug: no setting, no preset
        return f"give {flag} alone to turn it on, or leave it out"
    where = naming.set_key(*action.dest.split("."))
    return f"give {flag} alone to turn it {'on' if on else 'off'}, or --set {where}={str(not on).lower()} to turn " \
           f"it {'off' if on else 'on'}"


def settings_as_flags(unknown, command):
    """For each flag of `unknown` that names a setting (or, as --no_KEY, turns off one that is on by default): how
    --set gives it; for --no_KEY of one off by default: that no such flag turns it off."""
    problems = []
    for k, token in enumerate(unknown):
        named = setting_named(token)
        if named:
            following = unknown[k + 1] if k + 1 < len(unknown) and not unknown[k + 1].startswith("--") else None
            problems.append(set_hint(*named, following, command))
        elif off := no_flag_of_off_setting(token):
            problems.append(off)
    return problems


def no_flag_of_off_setting(token):
    """The problem of --no_KEY for a setting off by default, which has no such flag (a preset may turn it on, and
    only --set turns it off again), else None."""
    key, _, value = token.removeprefix("--").partition("=")
    bare = key.removeprefix("no_")
    if not token.startswith("--no_") or value or not switch_default(bare, False):
        return None
    return (f"--{key}: no such flag ({bare}, a setting of {listed(S.OWNERS[bare])}, is off by default); --set "
            f"{set_written(bare, S.OWNERS[bare])}=false turns it off where --config turns it on")


def setting_named(token):
    """(key, value, the release's prefix, turned off, the sections that own it) of a flag that names a setting:
    --KEY or --KEY=VALUE, the release's --PREFIX_KEY (--s_seedthres: guide's seedthres), or --no_KEY of one on by
    default; else None."""
    if not token.startswith("--"):
        return None
    key, _, value = token.removeprefix("--").partition("=")
    if key in RELEASE_UPSTREAM_DATA:
        return None
    release = next((p for p in RELEASE_PREFIXES if key.startswith(p) and key[len(p):] in S.OWNERS), "")
    key = key[len(release):] if key not in S.OWNERS else key
    turned_off = key.startswith("no_") and not value and switch_default(key[3:], True)
    key = key[3:] if turned_off else key
    owners = S.OWNERS.get(key)
    owners = [o for o in owners if o in RELEASE_PREFIXES[release]] or owners if owners and release else owners
    return (key, value, release, turned_off, owners) if owners else None


def set_hint(key, value, release, turned_off, owners, following, command):
    """The problem of a setting given as a flag (setting_named), with how --set gives it; following: the token after
    it where that is not a flag (its value, given apart)."""
    where, sections = set_written(key, owners), listed(owners)
    switch = isinstance(S.OPTIONS[owners[0]][key][0], bool)   # a flag without a value turns it on
    if switch and not value and not turned_off and switch_default(key, True):
        return f"--{key}: a setting of {sections}, on by default; --set {where}=false turns it off"
    value = "false" if turned_off else value or (following if following is not None else
                                                 "true" if switch else "VALUE")
    flag = f"--no_{key}" if turned_off else f"--{release}{key}"
    named = "(the release's name of an upstream stage's setting) " if release else ""
    return (f"{flag}: not a flag of {command}, but {named}a setting of {sections}; give it as --set "
            f"{where}={value}" + ("" if len(owners) == 1 else f" (SECTION: {sections})"))


def switch_default(key, on):
    """Whether a setting is a switch whose default, in every section that has it, is `on` (True: its stage flag is
    --no_KEY; False: a preset may turn it on, as demo does freeze_trunk, and only --set turns it off again)."""
    return key in S.OWNERS and all(S.OPTIONS[sec][key][0] is on for sec in S.OWNERS[key])


def set_written(key, owners):
    """KEY as --set takes it: SECTION.KEY where several sections have it."""
    return naming.set_key(owners[0], key) if len(owners) == 1 else f"SECTION.{key}"
