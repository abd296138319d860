"""Notes a command prints before it runs, on settings it was given that change nothing or may slow it: a --set of a
stage it does not read, a split or folder flag it does not work on, a data setting of another layout, threads and
workers above the cores."""
import difflib

from . import settings as S
from . import distributed, lanes, naming, pipeline
from .config import read_item, split_override
from .datasets import unread_notes
from .errors import listed


def unread_settings(stage, cfg, items):
    """A note per --set item naming a setting of sections the stage does not read (`./src/seed/eval.py --set
    seedthres=30` ran at eval_seedthres 20 without a word), with the nearest setting it reads."""
    sections = pipeline.sections(stage, cfg)
    read = sections + ["run"]
    notes = []
    for item in items:
        key = item.split("=", 1)[0].strip()
        sec, _, name = key.rpartition(".")
        owners = [pipeline.current_name(sec)] if sec else S.OWNERS.get(name, [])
        if owners and not set(owners) & set(read):
            written = {k: naming.set_key(s, k) for s in sections for k in cfg[s]}   # as --set writes them (run's
            # keys left out: seedthres is not threads)
            near = difflib.get_close_matches(name, written, n=1, cutoff=0.7)
            notes.append(f"--set {key}: a setting of {' and '.join(owners)}, which {stage} does not read (it reads "
                         f"{', '.join(read)}), so it changes nothing here" + (f"; did you mean {written[near[0]]}?"
                                                                            if near else ""))
    return notes


def splits_read(stage, cfg):
    """The dataset splits that a stage and the stages upstream of it work on."""
    lineage = pipeline.ancestors(stage, cfg) + [stage]
    return {split for s in lineage for split in S.STAGE_MODULES[s].reads(cfg, {}).splits}


def unread_inputs(stage, cfg, preset, given):
    """A note per split flag given (--dataset, --test_dataset) that neither the stage nor a stage upstream of it
    works on, and per folder flag given (--guide_dir beside --labels gt) that it does not read (matched by value:
    each flag gives one upstream stage's folder). The release's --test_dataset named the split each command works on
    (seed/test.py --test_dataset voc12val: val's heatmaps); here it is the segmenter's test split, and the seeds'
    with seed_split test, which the note names where it would make the stage work on it."""
    reads = S.STAGE_MODULES[stage].reads(cfg, given)
    splits, upstream, lineage = reads.splits, reads.upstream.values(), splits_read(stage, cfg)
    notes = []
    for key in ("dataset", "test_dataset"):
        value = cfg["data"][key]
        if value == preset["data"][key] and given.get(f"data.{key}") is None:   # the preset's, not given as a flag
            continue
        if value in lineage:
            if key == "test_dataset" and training_split_only(stage, cfg, given):
                notes.append(f"--test_dataset {value}: {stage} works on the training split, {value}, without it (the "
                             "release's --test_dataset named the split each command works on; here it is the split "
                             "the segmenter is tested on, and names this stage's folder and its inputs'); leave it "
                             "out")
            continue
        works = f"works on {listed(splits)}, not on it" if splits else "reads no split of the dataset"
        on_test = "seed_split" in cfg.get("seed_heatmaps", {}) and value in S.STAGE_MODULES[stage].reads(
            cfg | {"seed_heatmaps": cfg["seed_heatmaps"] | {"seed_split": "test"}}, given).splits
        notes.append(f"--{key} {value}: {stage} {works}" + (
            " (the release's --test_dataset named the split each command works on; here it is the split the segmenter "
            "is tested on" + ("; --set seed_split=test makes this command work on it)" if on_test else ")")
            if key == "test_dataset" else ""))
    notes += [f"--{flag} {given[flag]}: {stage} does not read it with these settings"
              for flag in naming.FOLDER_FLAGS
              if given.get(flag) and given[flag] not in upstream]
    return notes + saliency_set_flags(stage, preset, given)


def saliency_set_flags(stage, preset, given):
    """A note per --dataset and --datatype given to saliency/test.py, whose release's flags of those names named the
    saliency network's training set (MSRA, NP): here they name the dataset's split and ImageSets folder. The
    preset's value given (--dataset train on the demo) is the command's own, and is not noted."""
    return [f"--{key} {given[f'data.{key}']}: {what} here, not the saliency set (the release's saliency/test.py "
            "--dataset and --datatype named the saliency network's training set, MSRA, of type NP); the saliency set "
            "is --set saliency_data=DIR"
            for key, what in (("dataset", "the dataset's training split"),
                              ("datatype", "the ImageSets folder of the dataset's splits"))
            if stage == "saliency" and given.get(f"data.{key}") not in (None, preset["data"][key])]


def training_split_only(stage, cfg, given):
    """Whether --test_dataset gives the training split to a stage that does not work on the test split: the
    release's meaning (its script.py gave seed/test.py and generate.py --test_dataset voc12train_aug)."""
    probe = cfg | {"data": cfg["data"] | {"test_dataset": "\0"}}   # the test split, told from the training one
    return (cfg["data"]["test_dataset"] == cfg["data"]["dataset"] and
            "\0" not in S.STAGE_MODULES[stage].reads(probe, given).splits)


TESTED = {"seed_heatmaps": "seed_train", "saliency": "saliency_train", "segmentations": "seg_train"}   # the
# training whose snapshot each test_iter names


def last_iteration(stage, cfg):
    """A note where test_iter names the training's last iteration: the final model, tested into a folder of its own
    (the release's --test_iter 8000, its default and script.py's value, was its max_iter)."""
    test_iter = cfg.get(stage, {}).get("test_iter", 0)
    if stage not in TESTED or not test_iter or test_iter != cfg[TESTED[stage]]["max_iter"]:
        return []
    return [f"--test_iter {test_iter}: {TESTED[stage]}'s last iteration, whose snapshot is the final model; the "
            "default, --test_iter 0, tests it in the folder ./script.py makes and the later stages read, where this "
            "one makes a folder of its own"]


def panels_not_drawn(stage, cfg):
    """A note where --vis is given to a stage that draws no panels: every stage command lists it (a run setting),
    and seed/test.py --vis wrote nothing without a word."""
    if not cfg["run"]["vis"] or hasattr(S.STAGE_MODULES[stage], "draw_panels"):
        return []
    drawing = [pipeline.command(name) for name, module in S.STAGE_MODULES.items() if hasattr(module, "draw_panels")]
    return [f"--vis: {stage} draws no panels (only {listed(drawing)} draw them), so it changes nothing here"]


def machine_notes(run):
    """Notes on run.threads and run.workers above this machine's cores (256 threads took a run 4x longer; 1000
    loading processes, hours): torch's threads then wait on each other, loading processes crowd the cores. Under
    torchrun, the first process's."""
    n = lanes.cores()
    return [f"{key} {run[key]} is more than the {n} cores this process may use: {why}, which may be slower than "
            f"{key} {n}" for key, why in (("threads", "torch's threads then wait on each other"),
                                          ("workers", "loading processes then share the cores with the network"))
            if run[key] > n and distributed.is_main()]


def setting_notes(cfg, items):
    """The notes on settings that any command prints: machine_notes, and those of the data settings given
    (`items`: the command line's KEY=VALUE overrides) that the dataset of the run does not read."""
    given = {bare for item in items for sec, bare in [S.locate(split_override(item)[0])] if sec == "data"}
    return machine_notes(cfg["run"]) + unread_notes(cfg["data"], given) + repeated(items)


def repeated(items):
    """A note per setting the command line gives several values (--set max_iter=6 --set max_iter=8): the last
    one is used, as a flag given twice would not be. Values are compared as read: --no_cudnn_benchmark beside --set
    cudnn_benchmark=no, or out_root=runs beside out_root=runs/, was 'given 2 values'."""
    values = {}
    for item in items:
        (key, value), (where, read) = split_override(item), read_item(item)
        values.setdefault(".".join(where) if where else key, []).append((value, repr(read)))
    return [f"{key} is given {len(said)} values ({', '.join(v for v, _ in said)}): the last, {said[-1][0]}, is used"
            for key, said in values.items() if len({read for _, read in said}) > 1]
