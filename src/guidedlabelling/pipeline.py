"""The table of stages: what each stage is called, where it writes, what it reads, and the command that runs it.

Everything else about the order of the method is derived from it: the config sections that name a stage's
output folder (its own and its ancestors'), the driver's steps (script.py --steps), the error messages that
say which command makes a missing input. A stage's logic and settings live in guidedlabelling/stages/<name>.py.

Adding a stage: write stages/<name>.py (a docstring, OPTIONS and CHECKS of its settings, reads(cfg, given) for
the preflight, run(stage)) and add its row here; it then runs as
`python -m guidedlabelling <name>` and as a step of ./script.py.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class StageRow:
    """One stage of the method (runner.Stage is one run of it)."""
    name: str               # output folder <out_root>/<preset>/<name>/<settings>, config section, module
                            # stages/<name>.py, and the driver's step
    parents: tuple = ()     # stages whose outputs it reads
    command: str = ""       # the release-style command that runs it alone ("" : python -m guidedlabelling <name>)
    reads_dataset: bool = True  # whether the data section names its outputs (saliency training reads its own set)
    variants: tuple = ()    # extra driver steps: (step, settings it adds), e.g. the fully supervised reference
    step_settings: tuple = ()  # settings the driver adds when it runs the stage itself
    per_image: str = ""     # suffix of its one output file per image (<id><suffix>), if it writes such files


STAGES = (
    StageRow("seed_train", (), "src/seed/train.py"),
    StageRow("seed_heatmaps", ("seed_train",), "src/seed/test.py", per_image=".mat",
             variants=(("seed_eval_heatmaps", ("seed_split=test",)),)),
    StageRow("seed_eval", ("seed_heatmaps",), "src/seed/eval.py", step_settings=("seed_split=test",)),
    StageRow("cls_eval", ("seed_heatmaps",), "src/seed/eval_cls.py", step_settings=("seed_split=test",)),
    StageRow("saliency_train", (), "src/saliency/train.py", reads_dataset=False),
    StageRow("saliency", ("saliency_train",), "src/saliency/test.py", per_image=".png"),
    StageRow("guide_labels", ("seed_heatmaps", "saliency"), "src/guide_generation/generate.py",
             per_image=".png"),
    StageRow("seg_train", ("guide_labels",), "src/segmentation/train.py",
             variants=(("reference_train", ("labels=gt",)),)),
    StageRow("segmentations", ("seg_train",), "src/segmentation/test.py", per_image=".png",
             variants=(("reference_segmentations", ("labels=gt",)),)),
)
BY_NAME = {s.name: s for s in STAGES}
# script.py's steps in the order it runs them: (step, stage, settings the step adds)
STEPS = tuple(step for s in STAGES for step in ((s.name, s.name, s.step_settings),
                                                 *((v, s.name, settings) for v, settings in s.variants)))
TRAINERS = {"seed": "seed_train", "saliency": "saliency_train", "segmentation": "seg_train"}  # checkpoint kinds
# Names from before the stages were named for their folders (version 41e8e02 and older): presets, --set, --steps,
# `python -m guidedlabelling STAGE`, the config.yaml and inputs.json of run folders, and the one folder renamed.
FORMER_NAMES = {"seed_test": "seed_heatmaps", "saliency_test": "saliency", "guide": "guide_labels",
                "seg_test": "segmentations", "reference_test": "reference_segmentations"}
FORMER_OF = {new: old for old, new in FORMER_NAMES.items()}
FORMER_FOLDERS = {"segmentations": "seg_test"}


def current_name(name):
    """A stage, step or config section by its name, a former one included."""
    return FORMER_NAMES.get(name, name)


def command(stage):
    """How a user runs a stage alone, for messages."""
    row = BY_NAME[stage]
    return f"./{row.command}" if row.command else f"python -m guidedlabelling {stage}"


def parents(stage, cfg):
    """The stages whose outputs `stage` reads with these settings: a segmenter trained on the true masks
    (labels gt, the fully supervised reference) reads no guide labels, guide labels made from your own saliency
    maps (guide_labels.saliency_maps) no saliency output, so the saliency settings name none of their folders."""
    if stage == "seg_train" and cfg["seg_train"]["labels"] == "gt":
        return ()
    if stage == "guide_labels" and cfg["guide_labels"]["saliency_maps"]:
        return tuple(p for p in BY_NAME[stage].parents if p != "saliency")
    return BY_NAME[stage].parents


def runs_networks(stage, cfg):
    """Whether a stage trains a network or runs a trained one (and so uses run.device)."""
    return any(s in TRAINERS.values() for s in (stage, *parents(stage, cfg)))


def ancestors(stage, cfg):
    """Every stage upstream of `stage`, in table order."""
    found, todo = set(), list(parents(stage, cfg))
    while todo:
        s = todo.pop()
        if s not in found:
            found.add(s)
            todo += parents(s, cfg)
    return [s.name for s in STAGES if s.name in found]


def sections(stage, cfg):
    """The config sections that determine a stage's outputs: data (where the stage reads the dataset, or
    an ancestor does), its ancestors' and its own."""
    lineage = ancestors(stage, cfg) + [stage]
    return (["data"] if any(BY_NAME[s].reads_dataset for s in lineage) else []) + lineage


def steps_needed(step, cfg_of):
    """The driver steps that make `step`'s output, in driver order: for every stage upstream, its step whose
    settings are the most specific subset of this step's. cfg_of(settings) resolves the config of settings."""
    _, stage, settings = next(s for s in STEPS if s[0] == step)

    def best(st):
        fitting = [s for s in STEPS if s[1] == st and set(s[2]) <= set(settings)]
        return max(fitting, key=lambda s: len(s[2]))[0]

    chosen = {best(st) for st in ancestors(stage, cfg_of(settings)) + [stage]}
    return [name for name, _, _ in STEPS if name in chosen]
