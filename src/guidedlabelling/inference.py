"""Per-image stages: seed heatmaps, saliency maps, guide labels, segmentation test.

Each writes one file per image (atomically) and skips images already done, so an
interrupted run resumes; evaluations are recomputed from the files at the end.
"""
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import datasets as D
from . import precision as P
from .config import seed_test_split
from .crf import crf_from_probs
from .guide import guide_labels
from .io import (InputError, apply_state, load_checkpoint, load_gray_png, load_heatmap_mat, load_label_png,
                 save_gray_png, save_heatmap_mat, save_json, save_label_png, save_mat)
from .metrics import confusion, format_table, report, saliency_scores
from .networks import build_seed_net, build_seg_net
from .progress import progress
from .seeds import seed_labels
from .visualize import colour, file_tiles, grey, panel_tiles, save_panel, stage_files


def zoom(maps, hw, order=1):
    """scipy.ndimage.zoom semantics on [C, h, w] tensors: order 1 = bilinear with corners aligned."""
    if tuple(maps.shape[-2:]) == tuple(hw):
        return maps
    if order == 0:
        return F.interpolate(maps[None], size=tuple(hw), mode="nearest")[0]
    return F.interpolate(maps[None], size=tuple(hw), mode="bilinear", align_corners=True)[0]


def unfit(maps, size, offset, inner_hw, out_hw, order=1):
    """Network-output maps -> the original frame: zoom to the input square, cut the margins, zoom to HxW."""
    if maps.shape[0] == 0:  # an image without foreground classes has no heatmaps
        return maps.new_zeros((0,) + tuple(out_hw))
    full = zoom(maps, (size, size), order)
    (top, left), (ih, iw) = offset, inner_hw
    return zoom(full[:, top:top + ih, left:left + iw], out_hw, order)


def fit_input(img, size, mode):
    """Network input + geometry. fit: longer side to size; shrink: only if larger; pad: bottom/right padding."""
    h, w = img.shape[:2]
    if mode == "pad" and max(h, w) <= size:
        padded, offset = D.pad_reflect(img, (size, size), centre=False)
        return padded, offset, (h, w)
    if mode == "shrink" and max(h, w) <= size:
        padded, offset = D.pad_reflect(img, (size, size))
        return padded, offset, (h, w)
    return D.fit_reflect(img, size)


class Inputs(torch.utils.data.Dataset):
    def __init__(self, data, indices, size, mode):
        self.data, self.indices, self.size, self.mode = data, indices, size, mode

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, k):
        i = self.indices[k]
        img = self.data.image(i)
        x, offset, inner = fit_input(img, self.size, self.mode)
        return torch.from_numpy(D.to_caffe_input(x)), (i, offset, inner, img.shape[:2])


def collate(batch):
    return torch.stack([b[0] for b in batch]), [b[1] for b in batch]


def forward_all(model, data, indices, size, mode, device, batch_size=8, workers=0, amp="none",
                channels_last=False):
    """Yield (index, output, (offset, inner_hw, original_hw)) for every image, batched; outputs are float32
    whatever --amp the network ran in."""
    loader = torch.utils.data.DataLoader(Inputs(data, indices, size, mode), batch_size=batch_size,
                                         num_workers=workers, collate_fn=collate)
    fmt = P.memory_format(channels_last)
    model.to(device, memory_format=fmt).eval()
    with torch.inference_mode():
        for x, metas in loader:
            with P.autocast(device, amp):
                out = model(x.to(device, memory_format=fmt))
            out = tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()
            for b, (i, offset, inner, hw) in enumerate(metas):
                yield i, (out[0][b], out[1][b]) if isinstance(out, tuple) else out[b], (offset, inner, hw)


def todo(stage, data, suffix):
    """Images of this fragment whose output file does not exist yet (a rerun resumes)."""
    n, N = stage.fragment
    return [i for i, it in enumerate(data.items) if i % N == n and not (stage.out / f"{it.id}{suffix}").exists()]


def all_done(stage, data, suffix):
    """True when every image has its output; a fragment that finishes early leaves the summary to the last."""
    missing = sum(not (stage.out / f"{it.id}{suffix}").exists() for it in data.items)
    if missing:
        stage.log.info("fragment %d/%d finished; %d images left to other fragments", *stage.fragment, missing)
    return missing == 0


def trained(folder, iteration=0):
    """The final model of a training folder, or its snapshot at `iteration` (the release's --test_iter)."""
    return folder / ("model.pth" if not iteration else f"snapshot_iter_{iteration}.pth")


def load_model(path, kind):
    """The network a checkpoint describes (its meta), with the checkpoint's weights; the file is read once."""
    state = load_checkpoint(path, expect={"kind": kind})
    meta = state["meta"]
    n = len(meta["classes"])
    model = build_seed_net(meta["net"], n - 1, meta["width"]) if kind == "seed" else \
        build_seg_net(meta["net"], n, meta["width"])
    apply_state(path, model, state)
    return model, meta


# ---- seed heatmaps (spec section 2) ----

def seed_heatmaps(stage, model_dir=None):
    cfg, out = stage.cfg, stage.out
    data = stage.dataset(seed_test_split(cfg))
    model, meta = load_model(trained(stage.input_dir("seed_train", model_dir), cfg["seed_test"]["seed_test_iter"]),
                             "seed")
    check_classes(meta, data)
    size, order = cfg["seed_train"]["input_size"], cfg["seed_test"]["test_interpord"]
    indices = todo(stage, data, ".mat")
    stage.log.info("seed heatmaps: %d of %d images to do", len(indices), len(data))
    for i, (scores, feat), (offset, inner, hw) in progress(forward_all(
            model, data, indices, size, "fit", stage.device, cfg["seed_test"]["test_batch"], cfg["run"]["workers"],
            **P.options(cfg["run"])), "seed heatmaps", len(indices)):
        classes = data.image_classes(i)
        cams = model.cams(feat[None], torch.as_tensor(classes, dtype=torch.long) - 1)[0]
        heat = unfit(cams.float(), size, offset, inner, hw, order).cpu().numpy()
        save_heatmap_mat(out / f"{data.items[i].id}.mat", heat, hw)
        save_mat(out / "scores" / f"{data.items[i].id}.mat", {"scores": scores.float().cpu().numpy()})
    if not all_done(stage, data, ".mat"):
        return
    collect_scores(data, out)
    stage.finish({"images": len(data)})


def collect_scores(data, out):
    """cls_res.mat: every image's class scores [N, C-1], ids, and ground-truth labels."""
    from scipy.io import loadmat
    scores = np.stack([loadmat(out / "scores" / f"{it.id}.mat")["scores"].ravel() for it in data.items])
    gt = np.stack([data.class_vector(i) for i in range(len(data))])
    save_mat(out / "cls_res.mat", {"scores": scores.astype(np.float32), "ids": np.array(data.ids, dtype=object),
                                   "gt": gt, "classes": np.array(data.classes[1:], dtype=object)})


def check_classes(meta, data):
    if list(meta["classes"]) != list(data.classes):
        raise InputError(f"{data.root}: the model was trained on classes {meta['classes']}, this dataset has "
                         f"{data.classes}; use the matching dataset or retrain")


# ---- saliency maps (spec section 3) ----

def saliency_maps(stage, model_dir=None):
    """Maps for the training images (guides) and the test images (pictures, saliency quality)."""
    cfg, out = stage.cfg, stage.out
    model = saliency_model(stage, model_dir)
    splits = [stage.dataset(s) for s in dict.fromkeys([cfg["data"]["dataset"], cfg["data"]["test_dataset"]])]
    for data in splits:
        indices = todo(stage, data, ".png")
        stage.log.info("saliency %s: %d of %d images to do", data.split, len(indices), len(data))
        write_saliency(stage, model, data, indices, out)
    holdout = cfg["saliency_train"]["sal_holdout"]
    if holdout:
        held = D.MaskFolder(cfg["data"]["saliency_data"], holdout, "holdout")
        write_saliency(stage, model, held, range(len(held)), out / "holdout")
    if not all([all_done(stage, data, ".png") for data in splits]):
        return
    summary = {data.split: saliency_quality(data, out, cfg["guide"]["salthres"]) for data in splits
               if measurable(stage, data, "saliency quality")}
    if holdout:
        summary["holdout"] = saliency_scores([(load_gray_png(out / "holdout" / f"{it.id}.png"), held.label(i) > 0)
                                              for i, it in enumerate(held.items)])
    stage.log.info("saliency quality: %s", summary)
    stage.finish(summary)


def saliency_model(stage, model_dir):
    source = stage.cfg["saliency_test"]["sal_source"]
    if source == "imagenet-cam":
        from .efficientnet import ImageNetObjectness
        stage.log.info("saliency: ImageNet class activation maps (no saliency training)")
        return ImageNetObjectness()
    if source != "model":
        raise InputError(f"--sal_source {source}: choose model or imagenet-cam")
    return load_model(trained(stage.input_dir("saliency_train", model_dir)), "saliency")[0]


def foreground(scores):
    """Foreground map of a saliency output: softmax channel 1 of a 2-class net, a 1-channel map as it is."""
    return torch.softmax(scores, 0)[1:2] if scores.shape[0] == 2 else scores


def write_saliency(stage, model, data, indices, folder):
    """Foreground probability back in the image frame, stored as 8-bit with its maximum scaled to 255."""
    size = stage.cfg["saliency_test"]["sal_test_size"]
    for i, scores, (offset, inner, hw) in progress(forward_all(
            model, data, indices, size, "shrink", stage.device, 8, stage.cfg["run"]["workers"],
            **P.options(stage.cfg["run"])), "saliency maps", len(indices)):
        fg = unfit(foreground(scores), size, offset, inner, hw)[0].cpu().numpy()
        save_gray_png(folder / f"{data.items[i].id}.png", np.round(255 * fg / max(fg.max(), 1e-12)))


def saliency_quality(data, out, salthres):
    """Foreground IoU of the thresholded map and MAE against the ground-truth objects (void excluded)."""
    inter = union = err = count = 0
    for i, it in enumerate(data.items):
        gt = data.label(i)
        valid = gt != D.IGNORE
        sal = load_gray_png(out / f"{it.id}.png")[valid] / 255.0
        fg = gt[valid] > 0
        mask = sal >= salthres / 100
        inter += np.sum(mask & fg)
        union += np.sum(mask | fg)
        err += np.abs(sal - fg).sum()
        count += valid.sum()
    return {"foreground_IoU": float(100 * inter / max(union, 1)), "MAE": float(err / max(count, 1))}


# ---- guide labels (spec section 4) ----

class GuideJob:
    """One image's guide labels; a picklable callable for the process pool."""

    def __init__(self, data, seed_dir, sal_dir, out, g, vis=False):
        self.data, self.seed_dir, self.sal_dir, self.out, self.g, self.vis = data, seed_dir, sal_dir, out, g, vis

    def __call__(self, i):
        it = self.data.items[i]
        heat_path, sal_path = self.seed_dir / f"{it.id}.mat", self.sal_dir / f"{it.id}.png"
        for path, maker in ((heat_path, "./src/seed/test.py"), (sal_path, "./src/saliency/test.py")):
            if not path.exists():
                raise InputError(f"{path}: missing; run {maker} for this dataset first")
        heat, hw = load_heatmap_mat(heat_path)
        classes = self.data.image_classes(i)
        if heat.shape[0] != len(classes):
            raise InputError(f"{heat_path}: {heat.shape[0]} maps for {len(classes)} classes; rerun ./src/seed/test.py")
        image = self.data.image(i)
        sal = load_gray_png(sal_path)
        if sal.shape != hw or image.shape[:2] != hw:
            raise InputError(f"{sal_path}: size {sal.shape} differs from the image {image.shape[:2]}; "
                             "rerun ./src/saliency/test.py (own maps: give each its image's size)")
        seed = seed_labels(heat, classes, self.g["seedthres"])
        salient = sal >= self.g["salthres"] / 100 * 255
        gt = self.data.label(i) if self.g["guiderule"] == "salor" else None
        guide = guide_labels(self.g["guiderule"], image, seed, salient, heat, classes, gt)
        if self.vis:
            save_panel(self.out / "vis" / f"{it.id}.png", panel_tiles(self.data, i, [
                ("seeds", colour(seed)), ("saliency", grey(sal)), ("guide labels", colour(guide))]))
        save_label_png(self.out / f"{it.id}.png", guide)


def run_guide_jobs(job, indices, workers):
    """job(i) for every index; with workers > 1 in a pool of that many processes of one thread each."""
    if workers > 1:
        with Pool(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            # one image per task: CRF times vary, the load balances
            for _ in progress(pool.imap_unordered(job, indices), "guide labels", len(indices)):
                pass
    else:
        for i in progress(indices, "guide labels"):
            job(i)


def guide_generation(stage, seed_dir=None, saliency_dir=None):
    cfg, out = stage.cfg, stage.out
    data = stage.dataset(cfg["data"]["dataset"])
    saliency_dir = saliency_dir or cfg["guide"]["saliency_maps"]
    job = GuideJob(data, stage.input_dir("seed_test", seed_dir), stage.input_dir("saliency_test", saliency_dir),
                   out, cfg["guide"], cfg["run"]["vis"])
    indices = todo(stage, data, ".png")
    stage.log.info("guide labels (%s): %d of %d images to do", cfg["guide"]["guiderule"], len(indices), len(data))
    run_guide_jobs(job, indices, cfg["run"]["workers"])
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


def measurable(stage, data, what):
    """Whether `data` has ground truth to measure `what` against; says so in the log when not."""
    if not data.has_labels:
        stage.log.info("%s on %s: not measured, no ground-truth masks (pass --masks DIR to measure)",
                       what, data.split)
    return data.has_labels


def evaluate_folder(data, folder, seedthres=None):
    """mIoU of label PNGs (or of seeds from heatmaps when seedthres is given) against the ground truth."""
    conf = 0
    for i, it in enumerate(data.items):
        if seedthres is None:
            pred = load_label_png(folder / f"{it.id}.png")
        else:
            heat, _ = load_heatmap_mat(folder / f"{it.id}.mat")
            pred = seed_labels(heat, data.image_classes(i), seedthres)
        conf = conf + confusion(data.label(i), pred, data.num_classes)
    return report(conf, data.classes)


# ---- segmentation test (spec section 7) ----

def label_map(scores, image, size, geometry, pcrf="none"):
    """Class per pixel of the image from the network's scores: softmax in the image frame, then the
    argmax, or the test-time CRF's labels (pcrf: none or a parameter set of crf.PARAMS)."""
    offset, inner, hw = geometry
    probs = torch.softmax(unfit(scores.float(), size, offset, inner, hw), 0).cpu().numpy()
    return probs.argmax(0).astype(np.uint8) if pcrf == "none" else crf_from_probs(image, probs, pcrf)


def segmentation_test(stage, model_dir=None):
    cfg, out = stage.cfg, stage.out
    data = stage.dataset(cfg["data"]["test_dataset"])
    model, meta = load_model(trained(stage.input_dir("seg_train", model_dir), cfg["seg_test"]["test_iter"]),
                             "segmentation")
    check_classes(meta, data)
    t = cfg["seg_test"]
    mode = "pad" if t["test_resize"] == "none" else "fit"
    indices = todo(stage, data, ".png")
    stage.log.info("segmentation test on %s: %d of %d images to do", data.split, len(indices), len(data))
    for i, scores, (offset, inner, hw) in progress(forward_all(
            model, data, indices, t["test_size"], mode, stage.device, 4, cfg["run"]["workers"],
            **P.options(cfg["run"])), "segmentation test", len(indices)):
        image = data.image(i)
        pred = label_map(scores, image, t["test_size"], (offset, inner, hw), t["test_pcrf"])
        if cfg["run"]["vis"]:  # with the upstream outputs this image has (saliency; on training images all)
            upstream = stage_files(cfg, stage.preset, data.items[i].id, ("seeds", "saliency", "guide labels"))
            save_panel(out / "vis" / f"{data.items[i].id}.png", panel_tiles(data, i, file_tiles(
                upstream, data.image_classes(i), cfg["guide"]["seedthres"]) + [("prediction", colour(pred))]))
        save_label_png(out / f"{data.items[i].id}.png", pred)
    if not all_done(stage, data, ".png"):
        return
    if not measurable(stage, data, "segmentation mIoU"):
        stage.finish({"images": len(data)})
        return
    rep = evaluate_folder(data, out)
    save_json(out / "results.json", rep)
    stage.log.info("segmentation on %s:\n%s", data.split, format_table(rep))
    stage.finish({"mIoU": rep["mIoU"], "results": str(out / "results.json")})
