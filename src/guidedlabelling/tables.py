"""The paper's tables from finished runs, beside the published numbers (docs/method.md section 8).

Each row is one run: settings on top of the preset (and the user's --set), read from the done.json of the
stage that measures it. A run that is not finished shows "—" and the ./script.py command that makes it
(finished steps are skipped, so the command may list steps that are done).
"""
import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import config as C
from . import naming
from . import settings as S
from .datasets import has_ground_truth
from .errors import Parser
from .io import InputError, atomic_path
from .metrics import ratio_of
from .networks import names
from .networks.vgg import VGG_SEED_NETS
from .pipeline import STEPS, steps_needed
from .fingerprint import Digests
from .results import WEAK_IOU, finished, out_of_date
from .stages.guide_labels import unused_conflicts

# docs/method.md section 8: val and test mIoU, and the re-run of the release's code on val (its README).
PUBLISHED = {
    "guided_crf": {"val": 55.7, "test": 56.7, "rerun": 56.2, "source": "Oh et al., CVPR 2017"},
    "guided": {"val": 51.2, "test": None, "rerun": 51.4, "source": "the release's README"},
    "full_crf": {"val": 67.6, "test": 70.3, "rerun": None, "source": "Chen et al., ICLR 2015"},
    "full": {"val": 62.3, "test": None, "rerun": None, "source": "Chen et al., ICLR 2015"},
}

GUIDE_RULES = ["G2", "seed", "sal", "salor"]   # the paper's ablation (a rule added to guide_rules.RULES is not in it)
MISSING = "—"


@dataclass
class Context:
    """The preset and the user's settings every row starts from; the inputs' digests and the folders' staleness,
    each worked out once for every row."""
    config: str
    sets: list
    digests: Digests = field(default_factory=Digests)
    checked: dict = field(default_factory=dict)
    found: int = 0   # rows whose runs are finished
    varied: set = field(default_factory=set)   # the (section, key) of the settings the rows set themselves

    def resolve(self, sets=()):
        return C.resolve(self.config, self.sets + list(sets))


@dataclass
class Run:
    """The output of one script.py step with some settings; the runs of one table row share their settings."""
    step: str
    sets: tuple = ()

    def folder(self, ctx):
        _, stage, extra = next(s for s in STEPS if s[0] == self.step)
        cfg, preset = ctx.resolve(list(self.sets) + list(extra))
        return naming.stage_dir(cfg, preset, stage)

    def done(self, ctx):
        """Its done.json, or None: unfinished, or out of date (results.out_of_date: a run to make)."""
        folder = self.folder(ctx)
        ctx.varied.update(S.locate(C.split_override(item)[0]) for item in self.sets)
        done = finished(folder)
        stale = done and out_of_date(folder, ctx.resolve(self.sets)[0], ctx.digests, ctx.checked)
        return None if stale else done

    def command(self, ctx, steps):
        """The ./script.py line that makes this run; settings the user's config already has are left out."""
        cfg, _ = ctx.resolve()
        sets = ctx.sets + [item for item in self.sets if not already_set(cfg, item)]
        return " ".join(["./script.py --config", ctx.config] + [f"--set {s}" for s in sets] + ["--steps", steps])


def already_set(cfg, item):
    sec, key = S.locate(item.split("=", 1)[0])
    return str(cfg[sec][key]) == item.split("=", 1)[1]


def number(value, unit=""):
    return MISSING if value is None else f"{value:.1f}{unit}"


def where(ctx, runs, done):
    """The folder of a finished row (relative to the preset's folder), else the command that makes it."""
    cfg, _ = ctx.resolve()
    if all(d is not None for d in done):
        ctx.found += 1
        base = naming.run_dir(cfg)
        return ", ".join(f"`{r.folder(ctx).relative_to(base)}`" for r in runs)
    steps = ",".join(dict.fromkeys(s for r in runs for s in steps_needed(r.step, lambda sets: ctx.resolve(sets)[0])))
    return f"missing; make it with `{runs[0].command(ctx, steps)}`"


def markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main_table(ctx):
    """docs/method.md section 8: the segmenter on guide labels and the fully supervised one, with and without CRF."""
    cfg, _ = ctx.resolve()
    runs = {"guided_crf": Run("segmentations", ("guiderule=G2", "test_pcrf=deeplab")),
            "guided": Run("segmentations", ("guiderule=G2", "test_pcrf=none")),
            "full_crf": Run("reference_segmentations", ("test_pcrf=deeplab",)),
            "full": Run("reference_segmentations", ("test_pcrf=none",))}
    labels = {"guided_crf": "Guided labelling (seeds + saliency, G2), test-time CRF", "guided": "same, no CRF",
              "full_crf": "Fully supervised (true masks), test-time CRF", "full": "same, no CRF"}
    ours, rows = {}, []
    for key, run in runs.items():
        done = run.done(ctx)
        ours[key] = done["mIoU"] if done else None
        pub = PUBLISHED[key]
        rows.append([labels[key], pub["source"], number(pub["val"]), number(pub["test"]), number(pub["rerun"]),
                     number(ours[key]), where(ctx, [run], [done])])
    for guided, full, label in (("guided_crf", "full_crf", "guided / fully supervised, CRF"),
                                ("guided", "full", "guided / fully supervised, no CRF")):
        pub = [ratio(PUBLISHED[guided][k], PUBLISHED[full][k]) for k in ("val", "test", "rerun")]
        share, note = our_ratio(ours[guided], ours[full])
        rows.append([label, ""] + [number(v, "%") for v in pub + [share]] + [note])
    header = ["method (segmenter: published DeepLab-LargeFOV, ours " + cfg["seg_train"]["net"] + ")", "published in",
              "published val", "published test", "release re-run (val)", f"ours ({cfg['data']['test_dataset']})",
              "run"]
    return "### Segmentation, mIoU % (docs/method.md section 8)\n\n" + markdown(header, rows)


def our_ratio(guided, full):
    """(our runs' guided / fully supervised ratio in percent or None, the row's run cell): none where the reference's
    mIoU is under WEAK_IOU, as ./script.py gives none (results.method_table; such ratios read as 679%)."""
    if full is not None and full < WEAK_IOU:
        return None, f"the two rows above; no ratio: the fully supervised mIoU is under {WEAK_IOU} (it learned little)"
    return ratio(guided, full), "the two rows above"


def ratio(a, b):
    """a / b in percent (metrics.ratio_of), or None."""
    share = ratio_of(a, b)
    return None if share is None else 100 * share


def seed_table(ctx):
    """The paper's seed-network comparison: classifier mAP, seed precision/recall and mIoU on the test split."""
    cfg, _ = ctx.resolve()
    rows = []
    for net in dict.fromkeys([cfg["seed_train"]["net"], *VGG_SEED_NETS]):
        sets = (f"seed_train.net={net}",) + seed_init(cfg, net)
        runs = [Run("seed_eval", sets), Run("cls_eval", sets)]
        seeds, cls = done = [r.done(ctx) for r in runs]
        s = seeds or {}
        rows.append([net, number(cls and cls["mAP"]), number(s.get("fg_precision")), number(s.get("fg_recall")),
                     number(s.get("mIoU")), f"{number(s.get('best_mIoU'))} at {s['best_threshold']:g}%" if seeds
                     else MISSING, where(ctx, runs, done)])
    header = ["seed network", "classifier mAP", "seed precision (fg)", "seed recall (fg)",
              f"seed mIoU at {cfg['seed_eval']['eval_seedthres']}%", "best seed mIoU", "run"]
    return (f"### Seed networks, on {cfg['data']['test_dataset']} (%)\n\nThe paper compares the seed networks by "
            "these measures; the paper lists no figures for them, so compare the ordering.\n\n" + markdown(header, rows))


def seed_init(cfg, net):
    """The init setting a seed network needs beside the preset's: the release's VGG-16 file (./downloads.sh --models)
    for a network without built-in ImageNet weights where the preset's init is those (demo's, msrc's)."""
    if cfg["seed_train"]["init"] != "imagenet" or net in names("seed", imagenet=True):
        return ()
    return (f"seed_train.init={S.OPTIONS['seed_train']['init'][0]}",)


def guide_table(ctx):
    """The paper's guide-rule ablation: guide-label mIoU on the training set and the segmenter's on val."""
    cfg, _ = ctx.resolve()
    rows = []
    for rule in GUIDE_RULES:
        sets = rule_sets(cfg, rule)
        runs = [Run("guide_labels", sets), Run("segmentations", sets)]
        guide, seg = done = [r.done(ctx) for r in runs]
        rows.append([rule, number(guide and guide["guide"]["mIoU"]), number(seg and seg["mIoU"]),
                     where(ctx, runs, done)])
    header = ["guide rule", f"guide labels mIoU ({cfg['data']['dataset']})",
              f"segmenter mIoU ({cfg['data']['test_dataset']})", "run"]
    return ("### Guide rules, mIoU %\n\nthe paper lists no figures for this ablation; compare the ordering "
            "(salor uses the true foreground: an upper bound).\n\n" + markdown(header, rows))


def rule_sets(cfg, rule):
    """The settings of a guide-rule row: the rule, and guide_labels.unused keep where the preset's unused absent
    (about G2's seed components) does not apply to it (guide_labels.unused_conflicts)."""
    sets = (f"guiderule={rule}",)
    if unused_conflicts(cfg["guide_labels"] | {"guiderule": rule}):
        sets += ("guide_labels.unused=keep",)
    return sets


def paper_tables(ctx):
    cfg, _ = ctx.resolve()
    title = f"## Paper tables: preset `{ctx.config}`, runs under `{naming.run_dir(cfg)}`"
    return "\n\n".join([title, main_table(ctx), seed_table(ctx), guide_table(ctx)]) + "\n"


def main(argv=None):
    p = Parser(prog="./src/paper_tables.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="demo", help=C.CONFIG_HELP)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="settings every run shares")
    p.add_argument("--out_root", help="shortcut for --set out_root=...")
    p.add_argument("--out", help="markdown file to write (default: <out_root>/<preset>/paper_tables.md)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    args = p.parse_args(argv)
    ctx = Context(args.config, args.set + ([f"out_root={args.out_root}"] if args.out_root else []))
    cfg, _ = ctx.resolve()
    if not has_ground_truth(cfg["data"]):  # the tables hold mIoU against the masks (the mAP column alone needs none)
        raise InputError("the paper's tables compare mIoU, which needs ground-truth masks: pass --set masks=DIR "
                         "(this command takes your data's settings by --set)")
    if not naming.run_dir(cfg).is_dir():   # a mistyped --out_root: a table of dashes otherwise
        raise InputError(f"{naming.run_dir(cfg)}: no runs of preset {args.config} there; pass the --out_root of your "
                         f"runs, or make them first (./script.py --config {args.config})")
    out = Path(args.out) if args.out else naming.run_dir(cfg) / "paper_tables.md"
    if out.exists() and out.suffix.lower() not in (".md", ".markdown", ".txt"):
        raise InputError(f"--out {out}: a file that is not markdown (.md) is there; name a .md file")
    text = paper_tables(ctx)
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    print(text + f"\nwritten to {out}")
    left_out = [] if ctx.found else last_run_sets(naming.run_dir(cfg), ctx.sets, ctx.varied)
    if left_out:   # rows of 'missing' whose runs are there, made with settings not given here
        print(f"note: no finished run under {naming.run_dir(cfg)} has these settings; its last ./script.py run had "
              f"{' '.join(f'--set {s}' for s in left_out)}: give this command the same --set", file=sys.stderr)


def last_run_sets(run_dir, given, varied):
    """The settings of the last ./script.py run in run_dir (its summary.json) that `given` lacks, but out_root (given
    already) and those the rows set themselves (`varied`: their (section, key))."""
    try:
        overrides = json.loads((run_dir / "summary.json").read_text()).get("overrides", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [s for s in overrides if isinstance(s, str) and s not in given and suggested(s, varied)]


def suggested(item, varied):
    """Whether --set `item` is one to suggest: KEY=VALUE of a setting of this version, neither out_root nor one in
    `varied`."""
    try:
        sec, key = S.locate(C.split_override(item)[0])
    except (InputError, KeyError, ValueError):
        return False   # not KEY=VALUE, or a setting of an older version
    return key != "out_root" and (sec, key) not in varied
