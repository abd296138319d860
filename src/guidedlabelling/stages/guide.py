"""Guide labels: seeds and saliency fused by rule G2 (docs/method.md section 4)."""
from multiprocessing import Pool

import torch

from ..checks import PERCENT, one_of
from ..guide_rules import RULES, guide_labels
from ..inference import all_done, evaluate_folder, measurable, todo
from ..io import InputError, load_gray_png, load_heatmap_mat, save_label_png
from ..pipeline import command
from ..progress import progress
from ..reads import Reads
from ..seeds import seed_labels
from ..visualize import colour, grey, panel_tiles, save_panel

OPTIONS = {
    "guiderule": ("G2", "G2, salor (GT-foreground oracle), seed (seeds only), sal (saliency only)"),
    "seedthres": (20, "seed threshold on the normalised heatmap, percent"),
    "salthres": (50, "saliency threshold, percent of 255"),
    "saliency_maps": (None, "folder of your own saliency maps <id>.png (8-bit grey, image size) "
                            "instead of the saliency stages' output"),
}
CHECKS = {"guiderule": one_of(*RULES), "seedthres": PERCENT, "salthres": PERCENT}


def add_arguments(parser):
    parser.add_argument("--seed_dir", help="folder of <id>.mat seed heatmaps (default: the seed test output)")
    parser.add_argument("--saliency_dir", help="folder of <id>.png saliency maps (default: the saliency output)")


def reads(cfg, given):
    """The training split; seeds and saliency, from the upstream stages or the folders given instead."""
    g = cfg["guide"]
    return Reads(splits=(cfg["data"]["dataset"],), ground_truth=g["guiderule"] == "salor", evaluates=True,
                 upstream={"seed_test": given.get("seed_dir"),
                           "saliency_test": given.get("saliency_dir") or g["saliency_maps"]})


class GuideJob:
    """One image's guide labels; a picklable callable for the process pool."""

    def __init__(self, data, seed_dir, sal_dir, out, g, vis=False, crf_backend="torch"):
        self.data, self.seed_dir, self.sal_dir, self.out, self.g, self.vis = data, seed_dir, sal_dir, out, g, vis
        self.crf_backend = crf_backend

    def __call__(self, i):
        it = self.data.items[i]
        heat_path, sal_path = self.seed_dir / f"{it.id}.mat", self.sal_dir / f"{it.id}.png"
        for path, maker in ((heat_path, "seed_test"), (sal_path, "saliency_test")):
            if not path.exists():
                raise InputError(f"{path}: missing; run {command(maker)} for this dataset first")
        heat, hw = load_heatmap_mat(heat_path)
        classes = self.data.image_classes(i)
        if heat.shape[0] != len(classes):
            raise InputError(f"{heat_path}: {heat.shape[0]} maps for {len(classes)} classes; rerun "
                             f"{command('seed_test')}")
        image = self.data.image(i)
        sal = load_gray_png(sal_path)
        if hw != image.shape[:2]:
            raise InputError(f"{heat_path}: heatmaps of size {hw}, the image is {image.shape[:2]}; rerun "
                             f"{command('seed_test')}")
        if sal.shape != hw:
            raise InputError(f"{sal_path}: size {sal.shape} differs from the image {hw}; rerun "
                             f"{command('saliency_test')} (own maps: give each its image's size)")
        seed = seed_labels(heat, classes, self.g["seedthres"])
        salient = sal >= self.g["salthres"] / 100 * 255
        gt = self.data.label(i) if self.g["guiderule"] == "salor" else None
        guide = guide_labels(self.g["guiderule"], image, seed, salient, heat, classes, gt, self.crf_backend)
        if self.vis:
            save_panel(self.out / "vis" / f"{it.id}.png", panel_tiles(self.data, i, [
                ("seeds", colour(seed)), ("saliency", grey(sal)), ("guide labels", colour(guide))]))
        save_label_png(self.out / f"{it.id}.png", guide)


def run_jobs(job, indices, workers):
    """job(i) for every index; with workers > 1 in a pool of that many processes of one thread each."""
    if workers > 1:
        with Pool(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            # one image per task: CRF times vary, the load balances
            for _ in progress(pool.imap_unordered(job, indices), "guide labels", len(indices)):
                pass
    else:
        for i in progress(indices, "guide labels"):
            job(i)


def run(stage):
    cfg, out = stage.cfg, stage.out
    data = stage.dataset(cfg["data"]["dataset"])
    job = GuideJob(data, stage.input_dir("seed_test"), stage.input_dir("saliency_test"), out, cfg["guide"],
                   cfg["run"]["vis"], cfg["run"]["crf_backend"])
    indices = todo(stage, data, ".png")
    stage.log.info("guide labels (%s): %d of %d images to do", cfg["guide"]["guiderule"], len(indices), len(data))
    run_jobs(job, indices, cfg["run"]["workers"])
    if not all_done(stage, data, ".png"):
        return
    if not measurable(stage, data, "seed and guide label mIoU"):
        stage.finish({"images": len(data)})
        return
    summary = {"seeds": evaluate_folder(data, job.seed_dir, cfg["guide"]["seedthres"]),
               "guide": evaluate_folder(data, out)}
    for name, rep in summary.items():
        stage.log.info("%s vs ground truth on %s: mIoU %.1f", name, data.split, rep["mIoU"])
    stage.finish(summary)
