"""GuidedLabelling: the whole method, stage after stage (Oh et al., CVPR 2017).

seed training -> seed heatmaps -> saliency training -> saliency maps -> guide labels
-> segmentation training -> test; then the fully supervised reference (the same
segmenter on the true masks) and one table. Each step is a command of its own in
src/; this driver (./script.py) checks every input of every step it is asked for,
then runs them in order with the same settings.
"""
import argparse
import contextlib
import difflib
import json
import os
import shlex
import time

from . import config as C
from . import naming
from . import distributed, flags, guide_diagnostics, lanes, notes, preflight, runner
from .cli import errors_end_in_one_line, say
from .fingerprint import DONE, MANIFEST, read_json
from . import errors
from .errors import LANES, OVERRIDDEN, Parser, os_error_message
from .datasets.base import warned_line
from .datasets import Labelled, annotated_splits, ground_truth_hint, has_ground_truth, own_split
from .inference import trained
from .io import InputError, flocked, save_json
from .results import RATIO_ROW, guide_classes, made_seconds, method_rows, method_table, missing_reference, \
    out_of_date, skipped_images, stage_result, unmarked_classes, unscored_classes, void_guide, weak_reference
from .pipeline import BY_NAME, STEPS, command, current_name, sections, steps_needed
from .provenance import provenance
from .report import write_report
from .runner import ensure_data

OWN_DATA_FLAGS = {  # flag: (setting, help)
    "images": ("images", "folder of your own images (with --tags): the whole method on them"),
    "tags": ("tags", "CSV of their tags: header image,tags[,split]; tags separated by spaces, ';' or ','"),
    "masks": ("masks", "optional folder of label PNGs <id>.png: evaluation and the fully supervised reference"),
    "saliency": ("saliency_maps", "folder of your own saliency maps <id>.png; skips the saliency steps"),
}
GROUND_TRUTH_STEPS = ("reference_train", "reference_segmentations", "seed_eval")  # they need label PNGs
REFERENCE_STEPS = ("reference_train", "reference_segmentations")
SALIENCY_STEPS = ("saliency_train", "saliency")


def parse(argv=None):
    p = Parser(prog="./script.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="demo", help=C.CONFIG_HELP)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting: KEY where one section has it (seedthres=30), else SECTION.KEY "
                        "(seg_train.max_iter=500); the sections and keys are in configs/ and each stage's -h")
    p.add_argument("--steps", default="all", type=step_list,
                   help="comma-separated steps to run (default: all): " + ", ".join(s for s, _, _ in STEPS))
    for flag in ("device", "workers", "gpu", "out_root", "dataset_dir"):
        p.add_argument(f"--{flag}", help=f"shortcut for --set {flag}=...")
    for flag, (_, help_text) in OWN_DATA_FLAGS.items():
        p.add_argument(f"--{flag}", metavar="PATH", help=help_text)
    p.add_argument("--overridecache", action="store_true", help="recompute every step")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    p.add_argument("--lane", action="store_true", help=argparse.SUPPRESS)  # a lane's process (lanes.py): run the
    # steps, then print their seconds (lanes.REPORT), no table
    return flags.parse_or_suggest_set(p, argv, "./script.py")


def step_list(text):
    """--steps as the driver reads it: names without the spaces around them ('seed_train, seed_heatmaps' was an
    unknown step ' seed_heatmaps'), 'all' for every step."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    return ",".join(s for s, _, _ in STEPS) if names == ["all"] else ",".join(names)


def settings(args):
    given = [(flag, flag) for flag in ("device", "workers", "gpu", "out_root", "dataset_dir")
             if getattr(args, flag) is not None]
    given += [(flag, key) for flag, (key, _) in OWN_DATA_FLAGS.items()
              if getattr(args, flag) is not None]   # an empty one is an error of its setting (an unset variable)
    flags = [(f"--{flag} {getattr(args, flag)}", f"{key}={getattr(args, flag)}") for flag, key in given]
    C.refuse_conflicts(args.set, flags)
    return args.set + [item for _, item in flags] + (["overridecache=true"] if args.overridecache else [])


def skipped_steps(args, overrides):
    """{step: why} of the steps the data makes impossible or needless."""
    cfg, _ = C.resolve(args.config, overrides)
    skip = {}
    if not has_ground_truth(cfg["data"]):
        why = f"no ground-truth masks; {ground_truth_hint(cfg['data'])} to run it"
        skip |= dict.fromkeys(GROUND_TRUTH_STEPS, why)
    else:
        annotated = annotated_or_all(cfg["data"])
        if "train" not in annotated:
            skip |= dict.fromkeys(REFERENCE_STEPS, "no training image has a mask (the reference learns from them); "
                                                   "the segmenter is scored on the val images that have one")
        if "val" not in annotated:
            skip["seed_eval"] = "no val image has a mask (it scores the seeds of val)"
            skip |= dict.fromkeys(REFERENCE_STEPS, "no val image has a mask (the reference is only there to be "
                                                   "scored on them beside the segmenter)")
    if cfg["saliency"]["source"] == "imagenet-cam":
        skip["saliency_train"] = "saliency from ImageNet class activation maps (saliency.source imagenet-cam)"
    if cfg["guide_labels"]["saliency_maps"]:
        skip |= dict.fromkeys(SALIENCY_STEPS, f"saliency maps given ({cfg['guide_labels']['saliency_maps']})")
    return skip


def annotated_or_all(d):
    """datasets.annotated_splits, or both splits where the tags cannot be read or no mask matches (the preflight
    reports why)."""
    try:
        return annotated_splits(d) or {"train", "val"}   # none: a wrong folder, which the preflight names
    except InputError:
        return {"train", "val"}


def planned_steps(args, overrides):
    """[(step, stage, the settings it adds)] of the steps asked for, in driver order, and {step: why} of
    those the data makes impossible or needless."""
    wanted = [current_name(step) for step in args.steps.split(",")]
    unknown = set(wanted) - {s for s, _, _ in STEPS}
    if unknown:
        names = [s for s, _, _ in STEPS]
        meant = [m[0] for u in sorted(unknown) for m in [difflib.get_close_matches(u, names, n=1, cutoff=0.7)] if m]
        raise InputError(f"--steps: unknown steps {sorted(unknown)}" + (f" (did you mean {', '.join(meant)}?)" if meant
                                                                        else "") + f"; choose from {', '.join(names)}")
    return [s for s in STEPS if s[0] in wanted], skipped_steps(args, overrides)


def check_inputs(args, overrides, steps, skip):
    """The preflight of every step to run (built-in data generated first): all problems, before any step.
    Returns what it opened, for the steps to reuse."""
    _, preset = C.resolve(args.config, overrides)
    plan = []
    for step, stage, extra in steps:
        if step not in skip:
            cfg, _ = C.resolve(args.config, overrides + list(extra))
            ensure_data(cfg)
            plan.append((stage, cfg))
    return preflight.check_steps(plan, preset)


def run_steps(args, overrides, steps, skip, opened=None):
    """The steps on run.lanes lanes (lanes.py), or else one after the other in this process. Returns
    ({step: wall seconds}, {step: lane} where lanes ran them)."""
    cfg, _ = C.resolve(args.config, overrides)
    count, share = lane_count(cfg["run"]), lanes_wanted(cfg["run"])
    if share > 1:  # a lane's threads for every step, a fragment's too: the outputs do not depend on the schedule
        overrides = overrides + [f"threads={lanes.threads_per_step(share, cfg['run']['threads'])}"]
    if count == 1:
        return run_in_order(args, overrides, steps, skip, opened), {}
    for step in (s for s, _, _ in steps if s in skip):   # of the steps asked for
        print(f"==> {step}: skipped, {skip[step]}", flush=True)
    todo = [s for s in steps if s[0] not in skip]
    needs = needed_steps(args, overrides, todo)
    made = made_already(args, overrides, todo, needs, opened)
    order = [step for step, _, _ in todo if step not in made]
    argv = command_flags(args, overrides + ["lanes=1"])
    if cfg["run"]["overridecache"] and order:
        OVERRIDDEN.add(LANES)   # they clear what they recompute, and say so when stopped

    def run_here(chain):
        return run_in_order(args, overrides, [s for s in todo if s[0] in chain], {}, opened)
    seconds, lane_of = lanes.run_chains(order, {s: needs[s] - made for s in order}, count, argv, run_here,
                                        args.debug)
    seconds = dict.fromkeys(made, 0.0) | seconds
    return {step: seconds[step] for step, _, _ in todo}, lane_of


def command_flags(args, settings):
    """The flags of a stage command, or of a lane's driver, with this run's preset and these settings."""
    return ["--config", args.config] + [a for s in settings for a in ("--set", s)]


def lanes_wanted(run):
    """run.lanes, at most one per core."""
    return max(1, min(run["lanes"], lanes.cores()))


def lanes_note(run):
    """A note where run.lanes is more than the cores, which lanes_wanted takes instead (threads and workers above
    them get theirs: notes.machine_notes); None otherwise, and in a fragment, which runs one lane."""
    if run["lanes"] <= lanes.cores() or runner.fragment_of(run)[1] > 1:
        return None
    return f"lanes {run['lanes']} is more than the {lanes.cores()} cores this process may use: it runs " \
           f"{lanes_wanted(run)} at most, one per core"


def lane_count(run):
    """The lanes a run takes: lanes_wanted, one for a fragment of a run (--n/--N, torchrun)."""
    return 1 if runner.fragment_of(run)[1] > 1 else lanes_wanted(run)


def refuse_whole_steps_in_fragments(args, overrides, steps, skip, run):
    """A fragment of ./script.py (--set n/N, torchrun; `run`: the run settings) runs per-image steps that read no
    other step of the run: the others would run whole in each fragment (every network trained N times), and a step
    reading another per-image step would find it unfinished where the other fragments have not finished their
    images."""
    if runner.fragment_of(run)[1] == 1:
        return
    how = "under torchrun" if run["N"] == 1 else f"as {runner.fragment_name(run)}"
    todo = [s for s in steps if s[0] not in skip]
    whole = [step for step, stage, _ in todo if not BY_NAME[stage].per_image]
    if whole:
        raise InputError(f"./script.py {how}: only per-image steps split into fragments, not {', '.join(whole)}; "
                         "run those in one process first (a training may run data-parallel under torchrun as its "
                         "stage command), then the fragments with --steps and the per-image steps (docs/reference.md, "
                         "'Several processes or GPUs')")
    extra_of = {step: (stage, extra) for step, stage, extra in todo}

    def unfinished(step):
        stage, extra = extra_of[step]
        try:
            return runner.up_to_date_line(stage, command_flags(args, overrides + list(extra))) is None
        except InputError:  # its own inputs are missing: the fragments' preflight names them
            return True
    needing = {step: sorted(filter(unfinished, needs)) for step, needs in needed_steps(args, overrides, todo).items()}
    needing = {step: needs for step, needs in sorted(needing.items()) if needs}
    if needing:
        step, needs = next(iter(needing.items()))
        raise InputError(f"./script.py {how}: {step} needs {', '.join(needs)} finished, whose images the other "
                         f"fragments write too; run the fragments of {', '.join(needs)} first, then those of {step} "
                         "(one --steps each)")


def needed_steps(args, overrides, steps):
    """{step: the other steps of `steps` whose outputs it reads, directly or through others, and the earlier ones
    that write its folder (with a global --set labels=gt, seg_train and reference_train are one folder: one runs,
    then the other finds it up to date)}."""
    names = {step for step, _, _ in steps}

    def cfg_of(settings):
        return C.resolve(args.config, overrides + list(settings))[0]
    needs = {step: set(steps_needed(step, cfg_of)) & names - {step} for step in names}
    _, preset = C.resolve(args.config, overrides)
    folders = [(step, naming.stage_dir(cfg_of(extra), preset, stage)) for step, stage, extra in steps]
    for k, (step, folder) in enumerate(folders):
        needs[step] |= {earlier for earlier, other in folders[:k] if other == folder}
    return needs


def made_already(args, overrides, steps, needs, opened):
    """The steps whose outputs are up to date, as are those of every step they read: nothing to run."""
    made = set()
    for step, stage, extra in steps:
        argv = command_flags(args, overrides + list(extra))
        if needs[step] <= made:
            line = runner.up_to_date_line(stage, argv, opened)
            if line is not None:
                print(f"==> {step}: {line}", flush=True)
                made.add(step)
    return made


def run_in_order(args, overrides, steps, skip, opened=None):
    """Each step as its command runs it, in this process: one start-up for all, and the datasets opened (and
    checked) once. Returns {step: wall seconds}."""
    seconds = {}
    for step, stage, extra in steps:
        if step in skip:
            if distributed.says_for_all():
                print(f"==> {step}: skipped, {skip[step]}", flush=True)
            continue
        settings = overrides + list(extra)
        if distributed.says_for_all():   # (under torchrun: process 0)
            print(f"==> {step}: {command(stage)}" + "".join(f" --set {s}" for s in extra), flush=True)
        argv = command_flags(args, settings)
        start = time.monotonic()
        try:
            with errors_end_in_one_line(args.debug):
                runner.main(stage, argv + (["--debug"] if args.debug else []), opened, by_driver=True)
        except SystemExit as e:  # the step printed why; 2 (bad input) and 130 (Ctrl-C) pass through
            if e.code not in (0, None, 130, 143) and not isinstance(e, distributed.EndedSilently):  # a stop is no
                # failure: its line says how to resume; nor is an end for another torchrun process's error
                say(f"step {step} failed: {command(stage)} {shlex.join(argv)}")   # (RANK k: which process)
            raise
        seconds[step] = time.monotonic() - start
    return seconds


def steps_made_seconds(args, overrides, skip=()):
    """{step: results.made_seconds of its folder} of the finished steps: a rerun that reuses a step takes little
    (step_seconds), and this keeps what it cost. Not of the steps in `skip`: their folders are other runs' (seed_eval
    scored with masks a run without them does not have)."""
    made = {step: made_seconds(folder) for step, folder in naming.step_folders(args.config, overrides, skip).items()}
    return {step: round(seconds, 1) for step, seconds in made.items() if seconds is not None}


TABLED = ("seed_eval", "saliency", "guide_labels", "segmentations", "reference_segmentations")  # the steps whose
# figures the table and the report show


def stale_results(args, overrides, steps, skip, digests):
    """{step: why} of the steps (but those skipped) whose figures the table and the report show but that are out of
    date (results.out_of_date), after some --steps. digests: the preflight's, which hashed the inputs."""
    if len(steps) == len(STEPS):  # every step ran just now
        return {}
    stale, checked = {}, {}
    for step, stage, extra in STEPS:
        if step not in TABLED or step in skip:
            continue
        cfg, preset = C.resolve(args.config, overrides + list(extra))
        folder = naming.stage_dir(cfg, preset, stage)
        if (folder / DONE).exists() and (why := out_of_date(folder, cfg, digests, checked)):   # else: no figure
            stale[step] = why
    return stale


def summarise(args, overrides, skip, seconds=None, stale=(), notes_said=()):
    """One table of the method's stages against the fully supervised reference, also as JSON (with each step's
    wall seconds in this run and the notes it began with); returns whether summary.json was written (not while steps
    have no results, nor while some are out of date: `stale`)."""
    if stale:
        print(f"summary: out of date: {'; '.join(f'{step}, {why}' for step, why in stale.items())}; run all steps "
              "for the table")
        return False
    cfg, preset = C.resolve(args.config, overrides)
    ref_cfg, _ = C.resolve(args.config, overrides + ["labels=gt"])
    guide, seg = stage_result(cfg, preset, "guide_labels"), stage_result(cfg, preset, "segmentations")
    ref = stage_result(ref_cfg, preset, "segmentations")
    diagnostics = print_skipped(guide, seg) | print_guide_classes(guide, cfg["guide_labels"]) \
        | print_shapes_saliency(cfg, guide)
    outputs = {"guide_labels": str(naming.stage_dir(cfg, preset, "guide_labels")),
               "predictions": str(naming.stage_dir(cfg, preset, "segmentations")),
               "model": seg and tested_model(cfg, preset),
               **summary_settings(args, overrides), "step_seconds": seconds or {},
               "made_seconds": steps_made_seconds(args, overrides, skip), "notes": list(notes_said)} | diagnostics
    if guide and seg and "mIoU" not in seg:  # own data without masks: nothing to measure against
        print_outputs_without_masks(cfg, outputs, seg, ref)
        return True
    no_reference = skip.get("reference_train")  # why, where it cannot be trained (skip: skipped_steps)
    ref = None if no_reference else ref   # not a folder of earlier masks
    if not (guide and seg and (ref or no_reference)):
        print("summary: some steps have no results yet; run all steps for the table")
        return False
    print_table(cfg, method_table(guide, seg, ref) | outputs | {
        "reference_predictions": ref and str(naming.stage_dir(ref_cfg, preset, "segmentations"))}, seg, ref,
        no_reference, void_guide(guide))
    return True


def summary_settings(args, overrides):
    """The settings of summary.json: --config and the overrides as given, and the folder the command ran in, which
    a relative path of theirs (a preset file, out_root=../runs) is relative to: without it they named no folder."""
    return {"config": args.config, "overrides": overrides, "ran_in": os.getcwd()}


def run_notes(args, cfg, said, overrides=()):
    """The notes of the run for summary.json: those said now, and after a run of some steps (--steps), which opens
    only their data and says only their notes, those the earlier summary.json holds where it is of the same run (its
    preset and settings: the run folder is the preset's, and a variant's or other data's summary.json there says
    another run's notes)."""
    partial = set(args.steps.split(",")) != {s for s, _, _ in STEPS}
    earlier = (read_json(naming.run_dir(cfg) / "summary.json") if partial else None) or {}
    same = same_run(args, overrides, earlier)
    return list(dict.fromkeys(list(said) + ((earlier.get("notes") or []) if same else [])))


def same_run(args, overrides, earlier):
    """Whether an earlier summary.json is of this run: the same preset and settings as given, and the same folders
    of guide labels and predictions, which settings as given do not fix where they name relative paths and the
    earlier run ran in another folder (`ran_in`: its images=photos were other photos). A summary.json written
    before it named those folders is judged by the settings alone."""
    def given(settings):
        return [s for s in settings or [] if not s.startswith("overridecache=")]
    if earlier.get("config") != args.config or given(earlier.get("overrides")) != given(overrides):
        return False
    cfg, preset = C.resolve(args.config, overrides)
    now = {key: str(naming.stage_dir(cfg, preset, stage))
           for key, stage in (("guide_labels", "guide_labels"), ("predictions", "segmentations"))}
    return all(earlier.get(key, folder) == folder for key, folder in now.items())


def print_outputs_without_masks(cfg, outputs, seg, ref):
    """Own data without masks: where the guide labels, predictions and model are, the classes the segmenter never
    marks, and summary.json."""
    path = naming.run_dir(cfg) / "summary.json"
    marks = print_marked_classes(seg)
    unmarked = unmarked_classes(seg, ref)  # a reference where the training images have masks
    for line in unmarked:
        print(f"warning: {line}")
    hint = ground_truth_hint(cfg["data"])
    splits = {key: own_split(cfg["data"][key]) for key in ("dataset", "test_dataset")}   # no masks: own data
    print(f"\nno ground-truth masks, so no mIoU table ({hint} for one)\nguide labels: "
          f"{outputs['guide_labels']} (the {splits['dataset']} images)\npredictions: {outputs['predictions']} "
          f"(the {splits['test_dataset']} images; ./src/predict.py IMAGES --model MODEL segments any others)\n"
          f"model: {outputs['model']} (./src/predict.py --model)\n"
          f"{saved_summary(path, outputs | marks | {'segmenter_warnings': unmarked})}")


def print_table(cfg, table, seg, ref, no_reference, notes=()):
    """The mIoU table, the ratio, `notes` on its figures (void_guide's), the warnings on the reference and the
    segmenter's classes, and summary.json."""
    print(f"\n{'stage':<36}{'mIoU %':>8}")
    for name, key in method_rows(seg):   # None: nothing to measure (every mask pixel void)
        print(f"{name:<36}" + (f"{table[key]:8.1f}" if table[key] is not None else "     n/a"))
    ratio = table[RATIO_ROW[1]]
    print(f"{RATIO_ROW[0]:<36}" + (f"{100 * ratio:7.1f}%" if ratio is not None else "    n/a"))
    for line in notes:
        print(f"note: {line}")
    marks = print_marked_classes(seg) if seg.get("mIoU") is None else {}   # no val mask: what it marks, from tags
    weak, unscored, unmarked = weak_reference(ref or {}), unscored_classes(seg), unmarked_classes(seg, ref)
    weak += missing_reference(no_reference)
    for line in unscored + unmarked + weak:
        print(f"warning: {line}")
    summary = table | marks | {"table_notes": list(notes), "reference_warnings": weak, "score_warnings": unscored,
                               "segmenter_warnings": unmarked}
    print(f"\nmodel: {table['model']} (./src/predict.py --model)\n"
          f"{saved_summary(naming.run_dir(cfg) / 'summary.json', summary)}")


def tested_model(cfg, preset):
    """The model the guided segmenter's test used, for ./src/predict.py (the snapshot tested, where test_iter names
    one); None where it has gone since."""
    try:
        return str(trained(naming.stage_dir(cfg, preset, "seg_train"), cfg["segmentations"]["test_iter"]))
    except InputError:
        return None


def saved_summary(path, summary):
    """'summary: <path>' once summary.json is written; where the run's folder cannot be written (a finished run
    on a read-only disk) a warning, not an error: the table printed is the run's result."""
    try:
        save_json(path, summary | {"made": provenance()})
    except OSError as e:
        return f"warning: summary.json not written: {os_error_message(e)}"
    return f"summary: {path}"


def print_data_notes(opened):
    """The notes of the datasets the preflight opened (their notes()), each line once: a tags file's are the same for
    its two splits; returned."""
    lines = list(dict.fromkeys(line for data in opened if isinstance(data, Labelled) for line in data.notes()))
    for line in lines:
        print(line, flush=True)
    return lines


def print_start_notes(cfg, args, overrides, steps, skip, opened):
    """The notes on the settings and the data, before the steps run; returned for summary.json and the report."""
    lines = [f"note: {note}" for note in notes.setting_notes(cfg, overrides)]
    for line in lines:
        print(line, flush=True)
    lines += print_data_notes(opened.found.values())
    for note in filter(None, (lanes_note(cfg["run"]), shapes_saliency_note(args, overrides, steps, skip),
                              folder_config_note(args, overrides, steps, skip))):
        lines.append(f"note: {note}")
        print(lines[-1], flush=True)
    return lines


def checked_inputs(args, overrides, steps, skip):
    """check_inputs; where a check fails and --config is a run folder's config.yaml, with folder_config_note, which
    says why the steps whose sections it lacks take the paper's defaults: fed a reference's, ./script.py said only
    that VGG-16's weights were not found, its note coming after the checks."""
    try:
        return check_inputs(args, overrides, steps, skip)
    except InputError as e:
        note = folder_config_note(args, overrides, steps, skip)
        if not note:
            raise
        raise InputError(*e.messages, note) from e


def folder_config_note(args, overrides, steps, skip):
    """Where --config is a run folder's config.yaml, which holds the settings of its stage and of those upstream of
    it: the steps asked for that read sections it does not hold, which take the code's defaults (the paper's: VGG-16
    networks of 8000 iterations) there, said before they run; else None."""
    path = C.preset_path(args.config)
    if path.name != "config.yaml" or not (path.parent / MANIFEST).is_file():
        return None
    held = {current_name(str(k)) for k, v in C.read_preset_file(path).items() if isinstance(v, dict)}
    cfg, _ = C.resolve(args.config, overrides)
    lacking = {step: [sec for sec in sections(stage, cfg) if sec not in held]
               for step, stage, _ in steps if step not in skip}
    lacking = {step: secs for step, secs in lacking.items() if secs}
    if not lacking:
        return None
    missing = list(dict.fromkeys(sec for secs in lacking.values() for sec in secs))
    several = len(lacking) > 1
    return (f"{path} is the config.yaml of a {naming.made_by(path.parent) or 'run'} folder, with the settings of "
            f"{', '.join(sec for sec in C.OPTIONS if sec in held)} only: {'steps' if several else 'step'} "
            f"{', '.join(lacking)} take{'' if several else 's'} the defaults (the paper's) of {', '.join(missing)}; to "
            "reproduce that folder give --steps of its own, or add those sections from the preset it was made with")


def shapes_saliency_note(args, overrides, steps, skip):
    """config.shapes_saliency_warning where the steps asked for make or read the saliency maps, else None."""
    cfg, _ = C.resolve(args.config, overrides)
    uses_maps = {"saliency_train", "saliency", "guide_labels"} & {s for s, _, _ in steps if s not in skip}
    return C.shapes_saliency_warning(cfg) if uses_maps else None


def print_shapes_saliency(cfg, guide):
    """config.shapes_saliency_warning under the guide labels' diagnostics; returned for summary.json."""
    line = C.shapes_saliency_warning(cfg) if guide else None
    if not line:
        return {}
    print(f"warning: {line}")
    return {"saliency_warning": line}


def print_skipped(*finished):
    """The unreadable images the stages left out, and those they read with Pillow's warnings (each stage lists them
    in its done.json); returned for summary.json."""
    skipped, warned = skipped_images(*finished), skipped_images(*finished, key="warned_images")
    if skipped:
        print(f"\nskipped {errors.counted(len(skipped), 'unreadable image')}:\n{errors.image_lines(skipped)}")
    if warned:   # harmless, and maybe thousands: the first ten
        print(f"\n{warned_line(len(warned))}:\n{errors.image_lines(warned, 10, 'summary.json')}")
    return ({"skipped_images": skipped} if skipped else {}) | ({"warned_images": warned} if warned else {})


def print_guide_classes(guide, g):
    """What the guide labels keep of each tagged class, and the warnings of the guide step (guide_diagnostics.py),
    under the guide_labels settings `g`; returned for summary.json."""
    if not guide or "classes" not in guide:
        return {}
    classes = guide_classes(guide)
    print(f"\n{guide_diagnostics.table_title(classes, g)}:")
    print("\n".join(guide_diagnostics.format_report(classes)))
    for line in guide["warnings"]:
        print(f"warning: {line}")
    return {"guide_classes": guide["classes"], "guide_warnings": guide["warnings"]}


def print_marked_classes(seg):
    """Without masks (or without any of a val image), what the guided segmenter learnt of each class: the test images
    tagged with it and those whose prediction marks it (the test's tags_marked); returned for summary.json."""
    marks = seg.get("tags_marked")   # absent where an earlier version finished the test
    if not marks:
        return {}
    print(f"\nwhat the guided segmenter marks of each class ({seg.get('split', 'val')} images; from their tags):")
    print(f"{'class':<16}{'tagged':>8}{'marked':>8}")
    for name, m in marks.items():
        print(f"{name:<16}{m['tagged']:>8}{m['marked']:>8}")
    return {"segmenter_classes": marks}


def print_profile(seconds, total, lane_of=None):
    """Each step's wall time in this run (steps that were up to date take little), and its lane."""
    if not seconds:
        return
    lane_of = lane_of or {}
    print(f"\n{'step':<25}{'wall s':>8}" + ("  lane" if lane_of else ""))
    for step, wall in seconds.items():
        print(f"{step:<25}{wall:8.1f}" + (f"  {lane_of[step]:>4}" if step in lane_of else ""))
    print(f"{'total (with checks)':<25}{total:8.1f}")


RUN_FILES = ("summary.json", "report.html")  # what the driver writes in the run's folder, beside the stage folders
RUN_LOCK = ".run_files.lock"   # held while it writes them


@contextlib.contextmanager
def run_files_written(folder):
    """Hold the run folder's lock while the block writes summary.json and report.html, after removing the temp
    files of those that runs killed while writing them left (atomic_path's; no other run writes them meanwhile, so
    none is being written). A folder that cannot be locked (not there, read-only) is written without it: each
    write then says why it failed."""
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(OSError):
            stack.enter_context(flocked(folder / RUN_LOCK, lambda: None))
            for name in RUN_FILES:
                for stale in folder.glob(f".{name}.*.tmp*"):
                    with contextlib.suppress(FileNotFoundError):
                        stale.unlink()
        yield


def main(argv=None):
    """./script.py (errors end in one line: cli.py)."""
    start = time.monotonic()
    with distributed.said_once():   # under torchrun, what every process meets alike is said by process 0
        args = parse(argv)
        if args.lane:
            lanes.follow_parent()
        overrides = settings(args)
        steps, skip = planned_steps(args, overrides)
        cfg = C.resolve(args.config, overrides)[0]
        run = cfg["run"]
        refuse_whole_steps_in_fragments(args, overrides, steps, skip, run)
    with distributed.said_once(distributed.says_for_its_machine):
        opened = checked_inputs(args, overrides, steps, skip)
    with distributed.said_once():
        said = [] if args.lane else print_start_notes(cfg, args, overrides, steps, skip, opened)   # (a lane's
        # parent checked and said them)
    seconds, lane_of = run_steps(args, overrides, steps, skip, opened)
    if args.lane:
        print(lanes.REPORT + json.dumps(seconds), flush=True)
        return
    if runner.fragment_of(run)[1] > 1:  # the other fragments' images are not all written yet: no table
        print(f"{runner.fragment_name(run)} done; the last fragment to finish a step completes it, and ./script.py "
              "without n/N then prints the table")
        print_profile(seconds, time.monotonic() - start, lane_of)
        return
    said = run_notes(args, cfg, said, overrides)
    run_dir = naming.run_dir(cfg)
    stale = stale_results(args, overrides, steps, skip, opened.digests)
    with run_files_written(run_dir):
        if summarise(args, overrides, skip, seconds, stale, said):
            try:
                path = write_report(args.config, overrides, notes=said, opened=opened, skipped=skip)
                print(f"report: {path}")
            except OSError as e:
                print(f"warning: report.html not written: {os_error_message(e)}")
            except KeyboardInterrupt as e:
                again = errors.resume_hint("write the report (nothing is computed again)")
                e.hint = f"every step had finished; {again}"
                raise
        else:
            earlier = [name for name in RUN_FILES[::-1] if (run_dir / name).exists()]
            print(f"report: not written until every step {'is up to date' if stale else 'has results'}" +
                  (f" (an earlier run's {errors.listed(earlier)} stay{'s' if len(earlier) == 1 else ''})"
                   if earlier else ""))
    print_profile(seconds, time.monotonic() - start, lane_of)
