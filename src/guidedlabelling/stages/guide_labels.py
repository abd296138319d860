"""Guide labels: seeds and saliency fused by rule G2 (docs/method.md section 4)."""
import math
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

import torch

from ..checks import PERCENT, filled, one_of
from .. import guide_diagnostics
from ..cli import workers_starting
from ..errors import resume_hint
from ..guide_rules import DROPPED, RULES, UNSURE, UNUSED, after_rule, drop_unused, grey_level, guide_labels, \
    keep_dropped, oracle_foreground, void_unsure
from ..inference import all_done, evaluate_folder, measurable, todo, without_panel
from ..fingerprint import read_json
from ..io import InputError, load_gray_png, load_heatmap_mat, load_label_png, save_json, save_label_png
from ..pipeline import command
from ..progress import progress
from ..reads import Reads
from ..seeds import SeedRule
from ..visualize import colour, grey, panel_tiles, save_panel

OPTIONS = {
    "guiderule": ("G2", ", ".join(f"{name} ({rule.about})" for name, rule in RULES.items())),
    "seedthres": (20, "seed threshold on the normalised heatmap, percent"),
    "salthres": (50, "saliency threshold, percent of 255"),
    "saliency_maps": (None, "folder of your own saliency maps <id>.png (grey, 255 = salient, 16-bit: 65535; the "
                            "image's size or its work size) instead of the saliency stages' output"),
    "dropped": ("none", "a class the rule drops often (in dropped_often % of its images or more): none (the paper) "
                        "or seeds (where the rule drops it, its seed pixels on background become that class)"),
    "dropped_share": (10, "the rule drops a tagged class in an image when its labels keep under this percent of the "
                          "class's seed pixels"),
    "dropped_often": (25, "percent of a class's images the rule must drop it in for a warning (and the dropped "
                          "option)"),
    "unsure": ("none", "a class whose seed cores saliency rarely marks (under unsure_share %): none (the paper) or "
                       "void (its seed cores the labels give to background and saliency marks at least "
                       "unsure_saliency % are void: the segmenter is not taught them)"),
    "unsure_core": (50, "a class's seed core: its seed score (percent of its map's maximum) at least this (not under "
                        "seedthres with unsure void: the cores are then within the seeds)"),
    "unsure_share": (70, "a class counts as rarely salient (a warning, and the unsure option) where saliency "
                         "(salthres) marks a share of its seed cores under this percent of the median class's share"),
    "unsure_saliency": (6, "unsure void: the saliency, percent of 255, a seed core pixel needs to be void"),
    "unused": ("keep", "G2's seed components that touch no saliency component: keep (their class; the paper) or "
                       "absent (their class only where no pixel of a saliency component has that class in the image; "
                       "elsewhere background: mostly seeds spilling beyond the object saliency found)"),
}
CHECKS = {"guiderule": one_of(*RULES), "seedthres": PERCENT, "salthres": PERCENT, "dropped": one_of(*DROPPED),
          "dropped_share": PERCENT, "dropped_often": PERCENT, "unsure": one_of(*UNSURE), "unsure_core": PERCENT,
          "unsure_share": PERCENT, "unsure_saliency": PERCENT, "unused": one_of(*UNUSED),
          "saliency_maps": filled("a folder of saliency maps")}


def unsure_conflicts(g):
    """unsure void with seed cores wider than the seeds would leave void pixels that are no class's seeds."""
    if g["unsure"] == "void" and g["unsure_core"] < g["seedthres"]:
        return [f"unsure_core {g['unsure_core']} is under seedthres {g['seedthres']}, so the seed cores that unsure "
                f"void leaves void would reach beyond the seeds; raise unsure_core to {g['seedthres']} or more"]
    return []


def unused_conflicts(g):
    """unused absent is about G2's unused seed components: the rules seed and sal have none (their Rule says)."""
    if g["unused"] == "absent" and not RULES[g["guiderule"]].seed_components:
        return [f"unused absent works on rule G2's unused seed components, and guiderule {g['guiderule']} has none; "
                "add --set guide_labels.unused=keep"]
    return []


def conflicts(g):
    return unsure_conflicts(g) + unused_conflicts(g)


CONFLICTS = conflicts


def add_arguments(parser):
    parser.add_argument("--seed_dir", help="folder of <id>.mat seed heatmaps (default: seed_heatmaps' output)")
    parser.add_argument("--saliency_dir", help="folder of <id>.png saliency maps (default: the saliency output)")


def reads(cfg, given):
    """The training split; seeds and saliency, from the upstream stages or the folders given instead."""
    g = cfg["guide_labels"]
    oracle = RULES[g["guiderule"]].oracle
    return Reads(splits=(cfg["data"]["dataset"],), ground_truth=oracle, every_mask=oracle, evaluates=True,
                 upstream={"seed_heatmaps": given.get("seed_dir"),
                           "saliency": given.get("saliency_dir") or g["saliency_maps"]})


class GuideJob:
    """One image's guide labels by the rule into `out`; a picklable callable for the process pool."""

    def __init__(self, data, seed_dir, sal_dir, out, g, seeds, vis=False, crf_backend="torch"):
        self.data, self.seed_dir, self.sal_dir, self.out, self.g, self.vis = data, seed_dir, sal_dir, out, g, vis
        self.seeds, self.crf_backend = seeds, crf_backend  # seeds: the seeds.SeedRule

    def __call__(self, i):
        it = self.data.items[i]
        heat_path, sal_path = self.seed_dir / f"{it.id}.mat", self.sal_dir / f"{it.id}.png"
        for path, maker in ((heat_path, "seed_heatmaps"), (sal_path, "saliency")):
            if not path.exists():
                raise InputError(f"{path}: missing; run {command(maker)} for this dataset first")
        heat, hw = load_heatmap_mat(heat_path)
        classes = self.data.image_classes(i)
        if heat.shape[0] != len(classes):
            raise InputError(f"{heat_path}: {heat.shape[0]} maps for {len(classes)} classes; rerun "
                             f"{command('seed_heatmaps')}")
        image = self.data.image(i)
        sal = self.data.at_work_size(i, load_gray_png(sal_path))
        if hw != image.shape[:2]:
            shrunk = f" (its file's, shrunk to max_image_side {self.data.max_side})" \
                if hw == tuple(self.data.sizes[i]) else ""
            raise InputError(f"{heat_path}: heatmaps of size {hw}, the image is {image.shape[:2]}{shrunk}; rerun "
                             f"{command('seed_heatmaps')}")
        if sal.shape != hw:
            raise InputError(f"{sal_path}: size {sal.shape} differs from the image {hw}; rerun "
                             f"{command('saliency')} (own maps: give each its image's size)")
        seed = self.seeds.labels(heat, classes)
        salient = sal >= grey_level(self.g["salthres"])
        gt = self.data.label(i) if RULES[self.g["guiderule"]].oracle else None
        guide = guide_labels(self.g["guiderule"], image, seed, salient, heat, classes, gt, self.crf_backend)
        if self.vis:
            save_guide_panel(self.out, self.data, i, seed, sal, guide)
        save_label_png(self.out / f"{it.id}.png", guide)


class AfterRuleJob:
    """The options after the rule, one image: the rule's labels (in `rule.out`) with the seeds of `kept` classes back
    where the rule dropped them (guide_rules.keep_dropped), then the weakly salient seed cores of `unsure` classes on
    background void (guide_rules.void_unsure), then, with unused absent, the pixels outside the rule's saliency
    components (at least 1% of the image) of the classes those components have, except the `kept` ones, as background
    (guide_rules.drop_unused), into `out` (with its panel when vis is on)."""

    def __init__(self, rule, out, kept, unsure, vis=False):
        self.rule, self.out, self.kept, self.unsure, self.vis = rule, out, kept, unsure, vis

    def __call__(self, i):
        rule, g = self.rule, self.rule.g
        it, classes = rule.data.items[i], rule.data.image_classes(i)
        heat = load_heatmap_mat(rule.seed_dir / f"{it.id}.mat")[0]
        sal = rule.data.at_work_size(i, load_gray_png(rule.sal_dir / f"{it.id}.png"))
        seed, core = rule.seeds.labels_at(heat, classes, rule.seeds.seedthres, g["unsure_core"])
        guide = keep_dropped(load_label_png(rule.out / f"{it.id}.png"), seed,
                             [c for c in classes if c in self.kept], g["dropped_share"] / 100)
        guide = void_unsure(guide, core, sal >= grey_level(g["unsure_saliency"]), self.unsure)
        if g["unused"] == "absent":
            guide = drop_unused(guide, rule_foreground(g, sal, rule.data, i), self.kept)
        if self.vis:
            save_guide_panel(self.out, rule.data, i, seed, sal, guide)
        save_label_png(self.out / f"{it.id}.png", guide)


def save_guide_panel(out, data, i, seed, sal, guide):
    save_panel(out / "vis" / f"{data.items[i].id}.png", panel_tiles(data, i, [
        ("seeds", colour(seed)), ("saliency", grey(sal)), ("guide labels", colour(guide))]))


def draw_panels(stage):
    """--vis on labels made without it: the panels of this fragment's labelled images that have none, drawn from
    the files (the labels are not made again). Returns how many it drew."""
    cfg, out = stage.cfg, stage.out
    data = stage.dataset(cfg["data"]["dataset"])
    seeds, seed_dir, sal_dir = SeedRule.of(cfg), stage.input_dir("seed_heatmaps"), stage.input_dir("saliency")
    indices = without_panel(stage, data)
    for i in progress(indices, "panels"):
        it = data.items[i]
        seed = seeds.labels(load_heatmap_mat(seed_dir / f"{it.id}.mat")[0], data.image_classes(i))
        sal = data.at_work_size(i, load_gray_png(sal_dir / f"{it.id}.png"))
        save_guide_panel(out, data, i, seed, sal, load_label_png(out / f"{it.id}.png"))
    return len(indices)


WORKER_JOB = []  # the pool process's job, sent once as it starts: a task would pickle it (and its dataset) each time


def start_worker(job):
    """A pool process: one thread; Ctrl-C reaches the whole process group, and only the command answers it (it
    ends the pool), so a worker does not print its own traceback. SIGTERM stays: it ends a worker at once, and the
    command, told too, says 'terminated'."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    WORKER_JOB[:] = [job]


def worker_job(i):
    return WORKER_JOB[0](i)


def run_jobs(job, indices, workers):
    """job(i) for every index; with workers > 1 in a pool of that many processes of one thread each. The pool is
    concurrent.futures': multiprocessing's replaced a worker killed midway (kill -9, the out-of-memory killer) and
    waited for its image forever, deaf to Ctrl-C."""
    if workers > 1:
        pool = ProcessPoolExecutor(workers, initializer=start_worker, initargs=(job,))
        try:
            with workers_starting():   # the workers start with the first task
                futures = [pool.submit(worker_job, i) for i in indices]   # one image per task: CRF times vary
            for done in progress(as_completed(futures), "guide labels", len(indices)):
                done.result()
        except BrokenProcessPool:
            raise InputError("a guide-label worker process ended midway (killed, or out of memory?); "
                             f"{resume_hint()}") from None
        finally:
            pool.shutdown(cancel_futures=True)   # the images the workers hold finish first (one or two each)
    else:
        for i in progress(indices, "guide labels"):
            job(i)


def run(stage):
    """The rule's labels; with dropped seeds, unsure void or unused absent, first into rule/, then the final labels
    from them."""
    cfg, out = stage.cfg, stage.out
    g, workers = cfg["guide_labels"], cfg["run"]["workers"]
    data = stage.dataset(cfg["data"]["dataset"])
    rule_dir = out / "rule" if after_rule(g) else out
    vis = cfg["run"]["vis"]
    job = GuideJob(data, stage.input_dir("seed_heatmaps"), stage.input_dir("saliency"), rule_dir, g,
                   SeedRule.of(cfg), vis and rule_dir == out, cfg["run"]["crf_backend"])
    indices = todo(stage, data, ".png", rule_dir)
    stage.log.info("guide labels (%s%s): %d of %d images to do", g["guiderule"],
                   ", the rule's own, into rule/" if after_rule(g) else "", len(indices), len(data))
    run_jobs(job, indices, workers)
    if not all_done(stage, data, ".png", rule_dir):
        return
    classes, often, rarely, alike = class_diagnostics(stage, data, job, rule_dir)
    if after_rule(g):
        kept, unsure = (often if g["dropped"] == "seeds" else []), (rarely if g["unsure"] == "void" else [])
        final_labels(stage, data, job, kept, unsure)
        for name, figures in guide_diagnostics.final_report(data, job.seed_dir, out, job.seeds,
                                                            g["unsure_core"]).items():
            classes[name] |= figures
    summary = {"images": len(data)} | diagnostics_said(stage, classes, often, rarely, alike)
    if vis:  # images labelled by an earlier run without --vis
        draw_panels(stage)
    if measurable(stage, data, "seed and guide label mIoU"):
        summary |= scored(stage, data, job)
    stage.finish(summary)


def final_labels(stage, data, job, kept, unsure):
    """The final labels from the rule's in rule/: the seeds of the classes `kept` where the rule drops them, the
    weakly salient seed cores on background of the classes `unsure` void."""
    out, g = stage.out, stage.cfg["guide_labels"]
    made_for(out, data, {"kept": kept, "unsure": unsure})
    missing = [i for i, it in enumerate(data.items) if not (out / f"{it.id}.png").exists()]
    stage.log.info("final guide labels, from the rule's: seeds kept where the rule drops %s, weakly salient "
                   "seed cores on background void for %s, unused seed components %s; %d of %d images to do",
                   ", ".join(kept) or "no class", ", ".join(unsure) or "no class",
                   "kept" if g["unused"] == "keep" else "background where saliency found their class",
                   len(missing), len(data))
    run_jobs(AfterRuleJob(job, out, *([data.classes.index(name) for name in names] for names in (kept, unsure)),
                          stage.cfg["run"]["vis"]), missing, stage.cfg["run"]["workers"])


def scored(stage, data, job):
    """The seeds' and the guide labels' scores against the ground truth, said in the log."""
    summary = {"seeds": evaluate_folder(data, job.seed_dir, job.seeds), "guide": evaluate_folder(data, stage.out)}
    for name in ("seeds", "guide"):
        miou = summary[name]["mIoU"]
        stage.log.info("%s vs ground truth on %s: mIoU %s", name, data.split,
                       "n/a (no annotated pixel)" if miou is None or math.isnan(miou) else f"{miou:.1f}")
    return summary


FINAL_CLASSES = "final_classes.json"   # the classes the final labels keep seeds of and void cores of


def made_for(out, data, lists):
    """The final labels of `out` made for these class lists, which come from all the images' rule labels: where they
    changed (an image added or edited made a class dropped often), every image's is removed to be made again; the
    lists are recorded first, so an interrupted run resumes with them."""
    if read_json(out / FINAL_CLASSES) != lists:
        for it in data.items:
            (out / f"{it.id}.png").unlink(missing_ok=True)
        save_json(out / FINAL_CLASSES, lists)


def rule_foreground(g, sal, data, i):
    """The mask whose components the rule took: the saliency map at salthres (G2), the ground-truth foreground
    (an oracle: salor)."""
    return oracle_foreground(data.label(i)) if RULES[g["guiderule"]].oracle else sal >= grey_level(g["salthres"])


def class_diagnostics(stage, data, job, rule_dir):
    """What the rule's labels keep of each tagged class (no ground truth needed; guide_diagnostics.py), the classes
    they drop often (those dropped seeds applies to), those whose seed cores saliency rarely marks (unsure void's)
    and the pairs of classes whose seeds are alike."""
    g = stage.cfg["guide_labels"]
    classes = guide_diagnostics.class_report(data, job.seed_dir, rule_dir, job.seeds, g["dropped_share"] / 100,
                                             job.sal_dir, grey_level(g["salthres"]), g["unsure_core"])
    return (classes, guide_diagnostics.dropped_often(classes, g["dropped_often"] / 100),
            guide_diagnostics.rarely_salient(classes, g["unsure_share"] / 100),
            guide_diagnostics.alike_classes(data, job.seed_dir))


def diagnostics_said(stage, classes, often, rarely, alike):
    """The per-class table and a warning per class dropped often, whose seed cores saliency rarely marks or whose
    seeds are alike another's, in the log and for done.json; with dropped seeds the classes whose seeds are kept
    where dropped, with unsure void the classes whose weakly salient seed cores on background are void."""
    g = stage.cfg["guide_labels"]
    warnings = guide_diagnostics.warnings(classes, often, g["guiderule"], g["dropped_share"], g["dropped"] == "seeds") \
        + guide_diagnostics.unsure_warnings(classes, rarely, g["unsure_core"], g["unsure"] == "void") \
        + guide_diagnostics.alike_warnings(alike)
    for line in guide_diagnostics.format_report(classes):
        stage.log.info("%s", line)
    for line in warnings:
        stage.log.warning("%s", line)
    kept = {"dropped_seeds_kept": often} if g["dropped"] == "seeds" else {}
    unsure = {"unsure_void": rarely} if g["unsure"] == "void" else {}
    return {"classes": classes, "alike": alike, "warnings": warnings} | kept | unsure
