"""What every stage command shares: config, preflight, output folder, cache check, log (its flags: flags.py; its
notes on the settings given: notes.py).

A stage command (`./src/seed/train.py ...` or `python -m guidedlabelling seed_train ...`) is main(stage): it
parses the stage's flags, resolves and checks the config, checks every input the stage reads (preflight.py),
owns the output folder the settings name (io.writing: one process at a time; io.reading keeps the folders it
reads from being rewritten meanwhile), and calls stages/<stage>.py's run(Stage). The folder's outputs are reused
only when its settings and the content of its inputs (fingerprint.py) are the ones it was made with.
Bad input ends in one line `error: ...` and exit code 2 (cli.py), before anything is written.
"""
import contextlib
import glob
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import torch

from . import config as C
from . import naming
from . import settings as S
from . import distributed, lanes, pipeline, preflight
from .flags import parse_or_suggest_set
from .notes import last_iteration, panels_not_drawn, setting_notes, unread_inputs, unread_settings
from .cli import STARTED_BY, Terminated
from .fingerprint import DONE, EVALUATED, MANIFEST, READ_IDS, SPLIT_ROWS, UPSTREAM, changes, damage, done_record, \
    finished_fingerprint, fingerprint, has_outputs, images_come_or_go, keyed_otherwise, output_sizes, \
    outputs_fingerprint, outputs_record, recorded, remade, rows_came_or_went, since_made, split_rows_record, \
    upstream_digests
from .inference import run_device
from .errors import OVERRIDDEN, counted, given_empty, image_lines, resume_hint
from .io import TEMPORARY, Busy, InputError, aside_name, flocked, lock_of, reading, save_json, save_yaml, writing
from .datasets.base import warned_line
from .datasets.builtin import ensure_builtin


@dataclass
class Stage:
    """One run of a stage: its settings, its output folder and log, and what it needs from the others."""
    name: str
    cfg: dict
    preset: dict
    out: Path
    log: logging.Logger
    checked: preflight.Checked  # the datasets, saliency set and upstream folders the preflight opened
    fingerprint: str            # of the inputs, written into done.json
    output_fingerprint: str     # of the inputs the outputs depend on (fingerprint.outputs_fingerprint)
    skipped: dict = field(default_factory=dict)  # {image: why} of unreadable images the datasets left out
    warned: dict = field(default_factory=dict)   # {image: Pillow's warnings} of images read as they decode

    @property
    def device(self):
        return run_device(self.cfg["run"])

    @property
    def made_with(self):
        """The device type and precision that made the outputs, for a stage that runs networks (made_with below):
        this run's, or the list of those of the runs that made them where a resumed run changed them."""
        made = (recorded(self.out) or {}).get("made_with") or [made_with(self.name, self.cfg)]
        return made[0] if len(made) == 1 else made

    def dataset(self, split):
        """A split the stage reads (reads(cfg, given) of its module), as the preflight opened it."""
        return self.kept_lists(self.checked.datasets[split])

    @property
    def saliency_set(self):
        return self.kept_lists(self.checked.saliency_set)

    def kept_lists(self, data):
        """`data`, its unreadable images and those that decode with warnings kept for done.json."""
        self.skipped.update(data.skipped)
        self.warned.update(data.warned)
        return data

    def output_dir(self, stage):
        """The folder of another stage's output with this run's settings (it may not exist)."""
        return naming.stage_dir(self.cfg, self.preset, stage)

    def input_dir(self, stage):
        """The folder an upstream stage's output is read from (the preflight found it finished and current),
        or the folder given instead."""
        return self.checked.folders[stage]

    @property
    def fragment(self):
        """(n, N): the release's --n/--N, or RANK/WORLD_SIZE where WORLD_SIZE is set (fragment_of)."""
        return fragment_of(self.cfg["run"])

    @property
    def fragment_name(self):
        return fragment_name(self.cfg["run"])

    def finish(self, summary):
        """Write done.json: the summary, what the outputs were made from and with (made_with: this run's, unless the
        summary says otherwise, as a network copied from the store does), the outputs' sizes and digest."""
        reads = self.checked.reads
        scored = naming.scored_with(self.cfg, self.name) if reads.evaluates or reads.ground_truth else {}
        summary = {"made_with": self.made_with} | summary | scored | {
            "fingerprint": self.fingerprint, "output_fingerprint": self.output_fingerprint}
        if self.skipped:
            summary = summary | {"skipped_images": self.skipped}
            self.log.info("skipped %s (listed in done.json):\n%s", counted(len(self.skipped), "unreadable image"),
                          image_lines(self.skipped))
        if self.warned:
            summary = summary | {"warned_images": self.warned}
            self.log.info("%s (listed in done.json):\n%s", warned_line(len(self.warned)), image_lines(self.warned))
        sizes = output_sizes(self.out)
        save_json(self.out / DONE, summary | {"outputs": sizes} | outputs_record(self.out, sizes))
        self.log.info("wrote %s", self.out)


def made_with(stage, cfg):
    """What the outputs of a stage that runs networks depend on that does not name its folder: the device type and
    the precision; None for the other stages."""
    if not pipeline.runs_networks(stage, cfg):
        return None
    return {"device": run_device(cfg["run"]).type, "amp": cfg["run"]["amp"]}


def made_otherwise(stage, out, cfg):
    """', made on cuda with amp bf16 (this run: cpu, amp none)' for a finished folder made with another device
    type or precision than these settings, which reuse it; '' otherwise (or where done.json does not say)."""
    made = (done_record(out) or {}).get("made_with")
    now = made_with(stage, cfg)
    if not made or made == now:
        return ""
    return f", made {described(made)} (this run: {now['device']}, amp {now['amp']})"


def described(made):
    """'on cpu with amp none' of a made_with, 'on cpu with amp none, then on cuda with amp bf16' of a list."""
    return ", then ".join(f"on {m['device']} with amp {m['amp']}" for m in (made if isinstance(made, list) else [made]))


def ensure_data(cfg):
    """Generate the built-in dataset on first use (complete() has made it the dataset of the run). A data/ folder the
    system will not write (a shared install read-only to this user, a full disk) is one line whose fix is not
    --out_root's, which does not move it."""
    d = cfg["data"]
    if d["builtin"]:
        try:
            ensure_builtin(C.builtin_dir(d), n_train=d["builtin_train"], n_val=d["builtin_val"],
                           size=d["builtin_size"], seed=0)
        except OSError as e:
            raise InputError(f"{C.builtin_dir(d)}: {e.strerror or e}; the built-in dataset of these settings is "
                             "generated there on first use: let this user write that folder (or free space there), or "
                             "have its owner run the same command once") from None


def make_logger(out):
    log = logging.getLogger(f"gl.{out}")
    log.setLevel(logging.INFO)
    log.propagate = False
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    for handler in (logging.StreamHandler(sys.stdout), logging.FileHandler(out / "log.txt")):
        handler.setFormatter(fmt)
        log.addHandler(handler)
    return log


def in_log_file(log, message):
    """A line for the stage's log.txt alone: the command prints it on the terminal itself. Not from a torchrun
    process that logs warnings only (training.prepare): the first process writes the training's log."""
    if not log.isEnabledFor(logging.INFO):
        return
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, message, None, None)
    for handler in log.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def remove_temporary(out, alone):
    """Remove the temp files that killed runs left in a stage folder (never outputs): all of them when this process
    writes the folder alone (a torchrun training's first process does), else those an hour old (a younger one may be
    another fragment's, being written)."""
    with contextlib.suppress(FileNotFoundError):   # (another fragment removed it, or its folder, meanwhile)
        for stale in list(out.rglob(TEMPORARY)):
            with contextlib.suppress(FileNotFoundError):
                if alone or time.time() - stale.stat().st_mtime >= 3600:
                    stale.unlink()


def up_to_date(out, stage_cfg, current, reads=None):
    """Whether a folder's outputs are finished, made with these settings and from inputs of the fingerprint
    `current`, and the upstream outputs it reads now (reads: {stage: folder}) are the bytes it recorded."""
    if not (out / DONE).exists() or not naming.same_settings(naming.stored_settings(out), stage_cfg):
        return False
    record = recorded(out)
    return record is not None and record["fingerprint"] == current and finished_fingerprint(out) == current \
        and damage(out) is None and not remade(record, reads)


def clear(out):
    """Remove a stage folder atomically: renamed aside first (a kill then leaves no half-cleared folder that
    passes for a new one), then deleted (remove_leftovers deletes what a killed clear left)."""
    if out.exists():
        aside = out.parent / f"{cleared_prefix(out)}{os.getpid()}"
        os.rename(out, aside)
        shutil.rmtree(aside, ignore_errors=True)


def cleared_prefix(out):
    """`.<name>.cleared-`, the name cut so that a process id (7 digits at most) after it fits in a name: a stage
    folder named with 249 bytes (naming.MAX_BYTES) could not be cleared, 'File name too long'."""
    return aside_name(out.name, ".cleared-", 7)


def remove_leftovers(out):
    """The hidden folders that clears of `out` killed midway left, unless their process still runs."""
    for leftover in out.parent.glob(glob.escape(cleared_prefix(out)) + "*"):   # ([ in a name is no pattern)
        pid = leftover.name.rsplit("-", 1)[1]
        if not (pid.isdigit() and Path(f"/proc/{pid}").exists()):
            shutil.rmtree(leftover, ignore_errors=True)


def check_cache(out, stage_cfg, override, manifest, alone=True, rescore="", folder_flag="--out_root", made=None,
                say=print):
    """An output folder belongs to one config and one content of its inputs (manifest: {"fingerprint",
    "inputs", "upstream"}), recorded in it before any output. Reruns with both resume; other settings must
    choose another folder; other inputs clear the folder's outputs, saying what changed (a folder shared by
    several fragments is not cleared: that is an error). With `rescore` (the suffix of a per-image stage's outputs
    <id><suffix>, where it draws no panels), a folder whose outputs are whole and whose only changed inputs are
    files it scores with keeps its per-image files and scores them again; where images came or went, it keeps
    those of the others and makes theirs. made: this run's made_with, recorded with the manifest beside those
    of the runs that began the outputs it resumes. say: where its notes go (the stage's log once it has one).
    Returns whether it removed the folder's contents."""
    remove_leftovers(out)
    cleared = override and out.exists()
    if override:
        OVERRIDDEN.add(str(out))
    if cleared:
        clear(out)
    settings = naming.stored_settings(out)
    refuse_other_settings(out, settings, stage_cfg, alone, folder_flag)
    record = recorded(out)
    why, changed = why_stale(out, settings, record, manifest)
    come_or_go, scored_only = kept_outputs(out, why, changed, record, manifest, rescore)
    rescored = come_or_go is not None and scored_only and finished_fingerprint(out) is not None  # none to make
    if come_or_go is not None:
        say(f"{out}: {why}; " + ("scoring its outputs again" if scored_only else
                                 "keeping the outputs of the images it had unchanged, making the others'"))
        remove_outputs_of(out, come_or_go, rescore)
    elif why:
        if not alone:
            raise InputError(f"{out}: {why}; run one process (no --n/--N, no torchrun) to recompute it, or remove "
                             "the folder first")
        say(f"{out}: {why}; recomputing it")
        clear(out)
        cleared = True
    out.mkdir(parents=True, exist_ok=True)
    save_yaml(out / "config.yaml", stage_cfg)
    save_json(out / MANIFEST, manifest | made_with_record(out, record, made, rescored, alone, say))
    return cleared


def refuse_other_settings(out, settings, stage_cfg, alone, folder_flag):
    """An error where the folder holds outputs that other settings made."""
    if settings is not None and not naming.same_settings(settings, stage_cfg) and has_outputs(out):
        replace = "rerun with --overridecache to replace it" if alone else "remove it to replace it"
        said = f" ({naming.said_differences(settings, stage_cfg)})"
        raise InputError(f"{out / 'config.yaml'}: this folder was made with other settings{said}; {replace}, or "
                         f"choose another {folder_flag}")


def kept_outputs(out, why, changed, record, manifest, rescore):
    """(the image keys whose per-image outputs are to be made again, None where the stale folder is cleared whole or
    is not stale; whether only files it scores with changed): a per-image stage (`rescore`: its outputs' suffix)
    keeps the outputs of the images it had unchanged where its outputs are whole."""
    scored_only = all(k.startswith(EVALUATED) for k in changed)
    unread = skipped_by(out, record)   # images it could not read have no output: one edited since is its own
    one_images = lambda key: bool(rescore) and ((out / f"{Path(key).stem}{rescore}").exists()  # noqa: E731
                                                 or key in unread)
    come_or_go = [] if scored_only else images_come_or_go(rows_came_or_went(changed, record, manifest),
                                                          record["inputs"], manifest["inputs"], one_images)
    kept = why and rescore and changed and damage(out) is None and come_or_go is not None
    return (come_or_go if kept else None), scored_only


def remove_outputs_of(out, keys, rescore):
    """The per-image outputs (suffix `rescore`) of the image keys, done.json and the panels, which are to be made
    again."""
    made_in = [out] + [p for p in out.iterdir() if p.is_dir()]   # guide_labels' rule/ too: the final labels
    for key in keys:   # an image gone or edited, or another file under its id (a.jpg for a.png), gets none
        for where in made_in:   # (a stale rule/<id>.png kept would make its final label again from the former)
            (where / f"{Path(key).stem}{rescore}").unlink(missing_ok=True)
    (out / DONE).unlink(missing_ok=True)
    shutil.rmtree(out / "vis", ignore_errors=True)  # panels of an earlier --vis run show the former mask


def skipped_by(out, record):
    """The image files that the finished run of a folder's recorded manifest could not read (done.json's
    skipped_images), which have no output: copied again whole, such an image's output alone is to be made (its
    absent output made every image's again)."""
    done = done_record(out)
    if not (done and record and done.get("fingerprint") == record.get("fingerprint")):
        return set()
    skipped = done.get("skipped_images")
    return set(skipped) if isinstance(skipped, dict) else set()


def why_stale(out, settings, record, manifest):
    """(why the outputs in `out` are not what its stored settings and `manifest` make, None when they are; the
    manifest keys that changed, where its inputs did): its config.yaml went, its inputs changed (or their record
    is damaged or missing), an upstream output it read was made again since, or an output is missing or damaged."""
    again = [UPSTREAM + stage for stage in remade(record, manifest["upstream"])] if record else []  # made again
    outputs = has_outputs(out)
    if outputs and settings is None:
        return "its config.yaml went, so the settings that made it are unknown", []
    if outputs and (record or {}).get("fingerprint") != manifest["fingerprint"]:
        if record is None:
            return (f"its record of the inputs it was made from, {MANIFEST}, is damaged" if (out / MANIFEST).exists()
                    else "no record of the inputs it was made from (made by an older version)"), []
        changed = sorted(set([k for k in changes(record["inputs"], manifest["inputs"])
                              if not keyed_otherwise(k, record, manifest)] + again))   # (made again: changed)
        return other_upstream(record["upstream"], manifest["upstream"], changed) or \
            since_made(changed, record["inputs"], manifest["inputs"]), changed
    if outputs and again:
        return since_made(again, record["inputs"], manifest["inputs"]), []
    return (damage(out) if finished_fingerprint(out) is not None else None), []


def made_with_record(out, record, made, rescored, alone, say):
    """{"made_with": [...]}: the device types and precisions of the runs that made the outputs this run resumes,
    and this run's `made` unless it only scores them again (`rescored`); {} for a stage that runs no network. A
    resume on another device or in another precision says that the folder will hold outputs of both."""
    if made is None:
        return {}
    before = ((record or {}).get("made_with") or []) if has_outputs(out) else []
    if made in before or rescored and before:
        return {"made_with": before}
    if before:
        remake = "--overridecache makes" if alone else "removing the folder first makes"  # (refused with several)
        say(f"{out}: resuming outputs made {described(before)}; this run makes the rest on {made['device']} with "
              f"amp {made['amp']} ({remake} them all so)")
    return {"made_with": before + [made]}


def stage_made(out):
    """Whether a folder holds a stage's bookkeeping: its log and a well-formed record of its inputs."""
    return (out / "log.txt").is_file() and recorded(out) is not None


def nearest_folder(out, stage_cfg, most=3):
    """Why a stage makes a new folder where finished ones of other settings stand beside it (a run with another
    max_iter, say), else None: the finished folder whose settings differ in the
    fewest (at most `most`) and how; not the folders of the driver's own variants (seed_split=test beside the
    training split's heatmaps: a first run makes both)."""
    variants = {item.split("=")[0] for _, _, settings in pipeline.STEPS for item in settings}
    best = None
    for other in folders_beside(out):
        try:
            stored = naming.stored_settings(other) if (other / DONE).is_file() else None
        except InputError:
            continue
        if stored is None or set(stored) != set(stage_cfg):
            continue
        differ = naming.differences(stored, stage_cfg)
        if differ and not any(key.split(".")[-1] in variants for key, _, _ in differ) and \
                (best is None or len(differ) < len(best[1])):
            best = other, differ, stored
    if best is None or len(best[1]) > most:
        return None
    said = naming.said_differences(best[2], stage_cfg)
    return f"a new folder for these settings: the nearest finished one, {best[0]}, was made with other values of " \
           f"{', '.join(key for key, _, _ in best[1])} ({said})"


def folders_beside(out):
    """The folders beside a stage folder, with those under its stage's former folder name (an older version's
    seg_test/ beside segmentations/), sorted."""
    parents = {out.parent, out.parent.parent / pipeline.FORMER_FOLDERS.get(out.parent.name, out.parent.name)}
    return sorted(p for parent in parents if parent.is_dir() for p in parent.iterdir()
                  if p.is_dir() and not p.name.startswith("."))


def refuse_foreign(out, stage):
    """A folder holding files but no config.yaml is not a stage's (a user's --out_dir), and one whose config.yaml
    ends with another stage's settings is that stage's (a trained model's, say): recomputing would remove it whole,
    --overridecache at once. One with a stage's record of its inputs lost its config.yaml: check_cache recomputes it."""
    if out.is_dir() and not (out / "config.yaml").exists() and not stage_made(out) and \
            any(not fnmatch(p.name, TEMPORARY) for p in out.iterdir()):
        raise InputError(f"{out}: holds files that no stage wrote (it has no config.yaml), and a stage removes its "
                         "folder whole when it recomputes; move them away, or choose a new or empty folder (--out_dir, "
                         "--out_root)")
    maker = naming.made_by(out)
    if maker not in (None, stage):
        raise InputError(f"{out}: the output folder of {maker} (its config.yaml says so), which {stage} would remove "
                         "whole to write its own; choose another --out_dir, or remove that folder first")


def other_upstream(made_from, reads, changed):
    """Why a folder is stale when it was made from other upstream folders ({stage: folder}) than it reads now
    (--model_dir, --seed_dir, ... given, or no longer given) whose content or settings differ (`changed`: the
    manifest keys that changed), else None. Older records hold relative paths: the same folder, resolved."""
    moved = {stage: folder for stage, folder in reads.items()
             if os.path.realpath(made_from.get(stage, folder)) != os.path.realpath(folder)
             and any(key.startswith(UPSTREAM + stage) for key in changed)}
    said = "; ".join(f"it was made from the {stage} folder {made_from[stage]}, and now reads {folder}"
                     for stage, folder in moved.items())
    return said + " (--out_dir keeps the outputs of each apart)" if said else None


def stage_module(stage):
    return S.STAGE_MODULES[stage]


def parse(stage, argv=None):
    module = stage_module(stage)
    parser = C.stage_parser(stage, module.__doc__, argv)
    parser.add_argument("--out_dir", help="write here instead of the folder named from the settings")
    if hasattr(module, "add_arguments"):
        module.add_arguments(parser)
    args = parse_or_suggest_set(parser, argv, parser.prog)
    refuse_empty_folders(args)
    return args


def refuse_empty_folders(args):
    """An --out_dir or folder flag given empty (an unset shell variable: --out_dir "$OUT") wrote or read the
    folder named from the settings without a word, as an empty data path ran the preset's data."""
    empty = given_empty(args, ("out_dir",) + naming.FOLDER_FLAGS)
    if empty:
        raise InputError(*[f"--{flag}: is empty (an unset variable?); write a folder, or leave the flag out to "
                           f"{'write' if flag == 'out_dir' else 'read'} the folder named from the settings"
                           for flag in empty])


def fragment_of(run):
    """(n, N) of a run section: the release's --n/--N, or RANK/WORLD_SIZE where WORLD_SIZE is set (by torchrun, or
    another launcher); not --n/--N under torchrun: every process would be fragment n, and the other fragments' images
    would never be made."""
    if distributed.under_torchrun() and (run["N"] != 1 or run["n"] != 0):
        raise InputError(f"--n {run['n']} --N {run['N']} under torchrun, whose processes already split the "
                         "images (RANK of WORLD_SIZE); leave out --n/--N, or run the fragments without torchrun")
    if run["N"] == 1 and "WORLD_SIZE" in os.environ:
        if "RANK" not in os.environ:   # else every such process would be fragment 0, the others' images never made
            raise InputError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} is set without RANK; start the processes with "
                             "torchrun, or unset WORLD_SIZE")
        return distributed.rank(), distributed.world_size()
    if not 0 <= run["n"] < run["N"]:
        raise InputError(f"--n {run['n']} --N {run['N']}: need 0 <= n < N")
    return run["n"], run["N"]


def fragment_name(run):
    """'fragment 2 of 2 (n=1)', 'torchrun process 2 of 2 (RANK 1)': counted from 1, as people count, with the
    release's 0-based --n (or torchrun's RANK) that the user gave."""
    n, count = fragment_of(run)
    given = f"n={n}" if run["N"] > 1 else f"RANK {n}"
    return f"{'fragment' if run['N'] > 1 else 'torchrun process'} {n + 1} of {count} ({given})"


def settings_of(stage, argv):
    """(flags, config, preset, output folder, notes) of a stage command. The settings of the upstream folders given
    (--model_dir, ...) replace the command's (naming.with_given_folders, whose notes these are)."""
    args = parse(stage, argv)
    overrides = C.flag_overrides(args)
    cfg, preset = C.resolve(args.config, overrides)
    cfg, notes = naming.with_given_folders(stage, cfg, vars(args), overrides)
    out = Path(os.path.abspath(args.out_dir)) if args.out_dir else naming.stage_dir(cfg, preset, stage)
    return args, cfg, preset, out, notes   # (absolute: `--out_dir .` has a name, which clearing it renames)


def use_threads(threads):
    """run.threads: the CPU threads of torch's operations (0: torch's default, one per core)."""
    if threads:
        torch.set_num_threads(threads)


def up_to_date_line(stage, argv=None, opened=None):
    """The line `up to date in <folder> ...` of a stage command whose output is up to date (it would do nothing),
    else None. Its inputs must exist."""
    args, cfg, preset, out, _ = settings_of(stage, argv)
    ensure_data(cfg)
    if cfg["run"]["overridecache"] or draws_panels(stage, cfg):  # main draws the panels a finished stage lacks
        return None
    inputs, upstream, _ = preflight.check(stage, cfg, preset, vars(args), opened).manifest(recorded(out))
    return reused(stage, out, cfg) if reusable(out, cfg, stage, fingerprint(inputs), upstream) else None


def reused(stage, out, cfg):
    """What a command says of a folder it reuses."""
    return f"up to date in {out}{made_otherwise(stage, out, cfg)} (--overridecache recomputes)"


def draws_panels(stage, cfg):
    """--vis on a stage that draws panels (stages/<stage>.py's draw_panels)."""
    return cfg["run"]["vis"] and hasattr(stage_module(stage), "draw_panels")


def reusable(out, cfg, stage, current, reads=None):
    """Whether a stage command keeps its folder's outputs: up to date with inputs of fingerprint `current` and the
    upstream folders `reads`, and no --overridecache."""
    return not cfg["run"]["overridecache"] and up_to_date(out, naming.relevant(cfg, stage), current, reads)


def main(stage, argv=None, opened=None, by_driver=False):
    """Run one stage as a command; returns its output folder. Errors propagate (cli.py reports them).
    opened: the datasets a driver's preflight opened (preflight.Opened), reused instead of opened again. A command
    a user runs (not by_driver, which gives every stage all the run's settings) notes the settings it does not read."""
    with distributed.said_once():   # the settings, alike in every process of a torchrun launch: said by the first
        args, cfg, preset, out, given = settings_of(stage, argv)
        if not by_driver:
            for note in given + unread_settings(stage, cfg, args.set) + \
                    unread_inputs(stage, cfg, preset, vars(args)) + panels_not_drawn(stage, cfg) + \
                    last_iteration(stage, cfg) + setting_notes(cfg, C.flag_overrides(args)):
                print(f"note: {note}", flush=True)
        processes = fragment_of(cfg["run"])[1]
        refuse_fragments_of(stage, cfg, out, processes)
    if distributed.under_torchrun():  # a torchrun worker: it ends with torchrun (a kill -9 left it training), also
        lanes.follow_parent(STARTED_BY)  # where torchrun was killed while this worker imported torch
    use_threads(cfg["run"]["threads"])
    with distributed.said_once(distributed.says_for_its_machine):   # the files, alike for the processes of a machine
        ensure_data(cfg)
        checked, problems = preflight.check_unraised(stage, cfg, preset, vars(args), opened)
        chain = chain_above(checked.folders.values())
        refuse_reading_own_folder(stage, out, checked.folders, chain, '--out_dir' if args.out_dir else '--out_root')
    alone = processes == 1
    with reading(chain, stage) as waited:
        if waited or problems:  # one being written meanwhile was waited for; else the problems stand
            with distributed.said_once(distributed.says_for_its_machine):
                checked = preflight.check(stage, cfg, preset, vars(args), opened)
        return reuse_or_make(stage, args, cfg, preset, out, checked, alone)


def refuse_fragments_of(stage, cfg, out, processes):
    """Errors for several processes (--n/--N, torchrun) where they cannot share a stage: a stage not per-image (a
    training: under torchrun alone), a batch that does not split among them, --overridecache."""
    if processes == 1:
        return
    trains = stage in pipeline.TRAINERS.values()
    if not pipeline.BY_NAME[stage].per_image and (cfg["run"]["N"] > 1 or not trains):
        whole = "a training runs in one process, or data-parallel under torchrun" if trains \
            else f"{stage} runs in one process"
        raise InputError(f"{'--n/--N' if cfg['run']['N'] > 1 else 'torchrun'} on {stage}: fragments split the images "
                         f"of per-image stages; {whole} (docs/reference.md, 'Several processes or GPUs')")
    if trains:
        distributed.local_batch(cfg[stage]["batch_size"])  # refused before the processes join their group
    if cfg["run"]["overridecache"]:
        stored = " with --set store=none (the store would give the network back)" if stage == "saliency_train" else ""
        raise InputError(f"--overridecache with {processes} processes (--n/--N or torchrun): each "
                         f"would clear what the others write; remove {out} first, then run them without it{stored}")


def refuse_reading_own_folder(stage, out, folders, chain, flag):
    """An error where the output folder is one the stage reads ({upstream stage: folder}; it would wait for its own
    lock) or one those were made from (chain_above)."""
    same = next((parent for parent, folder in folders.items() if Path(folder).resolve() == out.resolve()), None)
    if same:
        raise InputError(f"{out}: the output folder is the folder of {same} that {stage} reads; choose another {flag}")
    if any(folder.resolve() == out.resolve() for folder in chain):
        raise InputError(f"{out}: the output folder is one that the folders {stage} reads were made from; choose "
                         f"another {flag}")


def other_folder(args, cfg):
    """How to choose another output folder, for a folder made with other settings: --out_dir where one was given,
    else --out_root, or, for a YAML file of the user's (edited since its earlier run, or a run folder's config.yaml,
    all of which name <out_root>/config), a `name:` line of its own (in place of its line, where it has one: a
    second is an error)."""
    if args.out_dir:
        return "--out_dir"
    path = C.preset_path(args.config)
    if path.resolve().parent == C.CONFIGS.resolve():
        return "--out_root"
    name = f"`name: {cfg['name']}_2`"
    fix = f"write {name} in place of its line `name: {cfg['name']}` in" if "name" in C.read_preset_file(path) else \
        f"add a line {name} to"
    return f"--out_root, or {fix} {path} (it names the run's folder under out_root)"


def chain_above(folders):
    """The stage folders a step reads and, recursively, those they were made from (their inputs.json), that have a
    lock (a user's folder has none): the step checks that every one of them is up to date, so it holds them all, and
    waits for a process rewriting one (--overridecache further up), where it found that one 'changed'."""
    chain, seen, todo = [], set(), [Path(f) for f in folders]
    while todo:
        folder = todo.pop(0)
        if folder.resolve() in seen:
            continue
        seen.add(folder.resolve())
        if lock_of(folder).exists():
            chain.append(folder)
        todo += [Path(path) for path in ((recorded(folder) or {}).get("upstream") or {}).values()]
    return chain


def stage_manifest(stage, out, checked):
    """What inputs.json records of a stage's inputs: the manifest and its fingerprint, the upstream folders and the
    digests of their outputs, which images' files of a per-image upstream it reads (READ_IDS), and for a per-image
    stage the rows of its split (SPLIT_ROWS)."""
    inputs, upstream, by_files = checked.manifest(recorded(out))
    return {"fingerprint": fingerprint(inputs), "inputs": inputs, "upstream": upstream,
            "upstream_digests": upstream_digests(upstream, by_files)} | ({READ_IDS: by_files} if by_files else {}) \
        | ({SPLIT_ROWS: split_rows_record(inputs, checked.digests)} if pipeline.BY_NAME[stage].per_image else {})


def reuse_or_make(stage, args, cfg, preset, out, checked, alone):
    """The body of main, its upstream folders locked: reuse the stage's folder, or make it."""
    manifest = stage_manifest(stage, out, checked)
    inputs = manifest["inputs"]
    stage_cfg = naming.relevant(cfg, stage)
    trains = stage in pipeline.TRAINERS.values()
    one_writer = alone or trains   # a training under torchrun: its first process writes the folder, the others wait
    one_folder = one_launch(out, stage, cfg) if not alone and trains else \
        writing(out, stage, shared=not alone)  # another process making it: wait, then reuse it
    with one_folder as device:
        fresh, log, notes = False, None, []
        try:
            with distributed.first_then_others(device), distributed.said_once(distributed.says_for_its_machine), \
                    checked_in_turn(out, one_writer):  # each says alike; one checks at a time (and lets the others
                # check before it waits to be ended for an error that the machine's first process is to say)
                refuse_foreign(out, stage)   # under the lock: another process's folder is never seen half made
                up = reusable(out, cfg, stage, manifest["fingerprint"], manifest["upstream"])
                if up and distributed.says_for_all():   # every process of a torchrun launch finds it so
                    print(f"{stage}: {reused(stage, out, cfg)}")
                elif not up:
                    fresh = not out.exists()
                    if fresh and not args.out_dir and (nearest := nearest_folder(out, stage_cfg)):
                        notes.append(nearest)
                    rescore = "" if cfg["run"]["vis"] else pipeline.BY_NAME[stage].per_image  # panels show labels
                    fresh = check_cache(out, stage_cfg, cfg["run"]["overridecache"], manifest, alone, rescore,
                                        other_folder(args, cfg), made_with(stage, cfg), notes.append) or fresh
                    remove_temporary(out, one_writer and distributed.is_main())   # in its turn: a torchrun training's
                    # first process swept all, and the others, recording the folder after it, lost their temp files
            if up:
                draw_missing_panels(Stage(stage, cfg, preset, out, logging.getLogger(__name__), checked,
                                          manifest["fingerprint"], outputs_fingerprint(inputs)))
                return out
            log = make_logger(out)
            for note in notes:  # why the folder was cleared or is resumed, kept in its log.txt too
                log.info(note)
            current = Stage(stage, cfg, preset, out, log, checked, manifest["fingerprint"],
                            outputs_fingerprint(inputs))
            stage_module(stage).run(current)
        except (InputError, OSError, KeyboardInterrupt) as e:
            ended(e, log, out, fresh and one_writer)
            raise
        finally:
            if log is None and notes:   # stopped before the stage had its log: its notes said here at least
                print("\n".join(notes))
            close_logger(log)
    return out


def draw_missing_panels(finished):
    """--vis on a finished folder of a stage that draws panels: those its outputs lack (this fragment's), drawn from
    its files."""
    if draws_panels(finished.name, finished.cfg):
        drawn = stage_module(finished.name).draw_panels(finished)
        if drawn:
            print(f"{finished.name}: missing panels drawn into {finished.out / 'vis'}: {drawn}")


def ended(e, log, out, made_here):
    """What a stage stopped by `e` leaves: why, in its log.txt where it has one (Ctrl-C, a kill); no folder that this
    process alone made (`made_here`; not a fragment's, which the others may be writing) and left without outputs."""
    if isinstance(e, KeyboardInterrupt) and log is not None:
        in_log_file(log, f"{'terminated' if isinstance(e, Terminated) else 'interrupted'}; {resume_hint()}")
    if made_here and out.is_dir():
        discard_if_bare(out)


@contextlib.contextmanager
def checked_in_turn(out, one_writer):
    """Fragments sharing a folder check and record it one at a time (a lock of their own beside the folder's): one
    that checked a stale folder while another removed its stale outputs saw it half cleared and stopped ('run one
    process'), or removed an output the other had just made again. (A folder of `one_writer`, such as a training's
    under torchrun, whose processes take turns already: first_then_others, needs none.) A folder that cannot be
    locked goes unlocked."""
    folder = out.resolve()   # `--out_dir .` has a name: its lock went inside it, a file no stage wrote
    with contextlib.ExitStack() as stack:
        if not one_writer:
            with contextlib.suppress(OSError):
                stack.enter_context(flocked(folder.parent / aside_name(folder.name, ".checking.lock"), lambda: None))
        yield


@contextlib.contextmanager
def one_launch(out, stage, cfg):
    """A training under torchrun: its first process holds the folder's lock alone for the launch, so that no other
    launch or command writes the folder meanwhile; where another holds it, every process stops, the first with one
    line (the others could not wait for the first: the process group gives up on a process after minutes). Yields the
    process's device."""
    device = distributed.process_device(run_device(cfg["run"]))
    with distributed.process_group(device), contextlib.ExitStack() as stack:
        busy = False
        if distributed.is_main():
            try:
                stack.enter_context(writing(out, stage, wait=False))
            except Busy:
                busy = True
        if distributed.main_decides(busy, device):
            if not distributed.is_main():   # the first says why, for every process
                distributed.end_silently()
            raise InputError(f"{out}: another process is writing or reading it, and a training under torchrun does "
                             "not wait for it; run it again once that is done")
        try:
            yield device
            distributed.barrier()   # the first process lets the lock go once every process is done with the folder
        except RuntimeError as e:   # outside the training loop's own handling (training.lost_process)
            if not distributed.peer_lost(e):
                raise
            raise InputError(f"{out}: another torchrun process of this training ended; {resume_hint()}") from None


def close_logger(log):
    """Close the stage's log file: ./script.py runs every stage in one process."""
    for handler in log.handlers[:] if log else ():
        handler.close()
        log.removeHandler(handler)


def discard_if_bare(out):
    """A folder this run made and left with nothing but its bookkeeping holds no output: remove it (what cannot be
    removed stays: the error that ended the run is the one to say)."""
    if not has_outputs(out):
        shutil.rmtree(out, ignore_errors=True)
