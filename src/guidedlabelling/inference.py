"""What the per-image stages (seed heatmaps, saliency maps, guide labels, segmentation test) and predict share:
trained models, batched forward passes, which images are left to do, and the evaluation of their files.

Each per-image stage writes one file per image (atomically) and skips images already done, so an interrupted run
resumes; evaluations are recomputed from the files at the end.
"""
import signal
from typing import NamedTuple

import numpy as np
import torch

from . import precision as P
from . import transforms as T
from .checks import device as device_syntax
from .cli import handling, quiet_loader_worker, workers_starting
from .crf import crf_from_probs
from .datasets.base import label_classes
from .errors import resume_hint
from .io import IGNORE, InputError, apply_state, load_checkpoint, load_heatmap_mat, load_label_png, \
    snapshot_iteration, snapshot_path, snapshots
from .metrics import confusion, report
from .networks import build_seed_net, build_seg_net
from .training import loader_worker_gone


class Frame(NamedTuple):
    """Where a network input came from: the image's offset and size (inner) in the canvas, the canvas's (h, w)
    before any resize to the net's input, and the image's original (h, w)."""
    offset: tuple
    inner: tuple
    canvas: tuple
    hw: tuple


class Inputs(torch.utils.data.Dataset):
    def __init__(self, data, indices, size, mode, net_size=None):
        self.data, self.indices, self.size, self.mode, self.net_size = data, indices, size, mode, net_size

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, k):
        i = self.indices[k]
        img = self.data.image(i)
        x, offset, inner = T.fit_input(img, self.size, self.mode, self.net_size)
        canvas = (self.size, self.size) if self.mode == "canvas" else x.shape[:2]
        return torch.from_numpy(T.to_caffe_input(x)), (i, Frame(offset, inner, canvas, img.shape[:2]))


def collate(batch):
    return torch.stack([b[0] for b in batch]), [b[1] for b in batch]


def forward_all(model, data, indices, size, mode, device, batch_size=8, workers=0, amp="none",
                channels_last=False, net_size=None):
    """Yield (index, output, Frame) for the images `indices` of `data` (geometry: see transforms.fit_input);
    outputs are float32 whatever --amp the network ran in. The batches are fixed blocks of batch_size consecutive
    images of `data` (one image for the tight geometry, whose canvases differ in shape), each computed whole when
    it holds any of `indices`: on some CPUs a batch's float sums depend on its size, and an image's output must not
    depend on which images a resumed run or a fragment (todo) has left to do."""
    batch_size = 1 if mode == "tight" else batch_size
    wanted = set(indices)
    blocks = [range(b * batch_size, min((b + 1) * batch_size, len(data)))
              for b in sorted({i // batch_size for i in wanted})]
    loader = torch.utils.data.DataLoader(Inputs(data, range(len(data)), size, mode, net_size),
                                         batch_sampler=[list(block) for block in blocks], num_workers=workers,
                                         collate_fn=collate, worker_init_fn=quiet_loader_worker)
    fmt = P.memory_format(channels_last)
    model.to(device, memory_format=fmt).eval()
    with workers_starting():
        batches = iter(loader)
    # a worker's end is found by the loader while it waits for a batch, inside this block: torch's SIGCHLD handler
    # raised it wherever the command was, also in the caller's code between two outputs, where nothing caught it
    try:
        with torch.inference_mode(), handling((signal.SIGCHLD,) if workers else (), signal.SIG_DFL):
            for x, metas in batches:
                with P.autocast(device, amp):
                    out = model(x.to(device, memory_format=fmt))
                out = tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()
                for b, (i, frame) in enumerate(metas):
                    if i in wanted:
                        yield i, (out[0][b], out[1][b]) if isinstance(out, tuple) else out[b], frame
    except (RuntimeError, OSError, EOFError) as e:
        gone = loader_worker_gone(e) if workers else None
        if gone is None:
            raise
        why = (str(gone).splitlines() or [""])[0].strip().rstrip(".")
        raise InputError(f"a data-loading worker process ended midway ({why}); the outputs written are kept; "
                         f"{resume_hint()}") from None
    finally:
        # the other workers end now: left to the interpreter's exit (a traceback holds the loader), they ignore the
        # SIGTERM multiprocessing sends its daemonic children (quiet_loader_worker) and its join waited for good
        shutdown = getattr(batches, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


def forward_sizes(model, data, indices, sizes, mode, device, batch_size=8, workers=0, **options):
    """Yield, per image of `indices`, forward_all's (index, output, geometry) at each of `sizes`, in that order. The
    passes run inside one inference_mode of this generator's own: each pass restores the mode it found on its exit,
    and the first pass ends before the others are closed, so without it the mode would stay on after the loop (and
    so would SIGCHLD's default, which each pass sets while it runs, in place of torch's handler)."""
    passes = [forward_all(model, data, indices, size, mode, device, batch_size, workers, **options) for size in sizes]
    with torch.inference_mode(), handling((signal.SIGCHLD,) if workers else (), signal.SIG_DFL):
        try:
            yield from zip(*passes)
        finally:
            for p in passes:
                p.close()


def todo(stage, data, suffix, folder=None, block=1):
    """Images of this fragment whose output file (in `folder`, default the stage's) does not exist yet or is empty
    (a rerun resumes). A fragment holds whole blocks of `block` consecutive images (forward_all's batches)."""
    n, N, folder = *stage.fragment, folder or stage.out
    return [i for i, it in enumerate(data.items)
            if (i // block) % N == n and not made(folder / f"{it.id}{suffix}")]


def made(path):
    """Whether an output file is there with content: an empty one is what a power cut can leave of a file renamed
    into place before its data reached the disk (atomic_path does not fsync), so a rerun makes it again."""
    return path.is_file() and path.stat().st_size > 0


def without_panel(stage, data):
    """Images of this fragment whose .png output exists and its --vis panel (vis/<id>.png) does not."""
    return [i for i in todo(stage, data, ".png", stage.out / "vis") if (stage.out / f"{data.items[i].id}.png").exists()]


def all_done(stage, data, suffix, folder=None):
    """True when every image has its output; a fragment that finishes early leaves the summary to the last."""
    folder = folder or stage.out
    missing = sum(not made(folder / f"{it.id}{suffix}") for it in data.items)
    if missing:
        stage.log.info("%s finished, writing into %s; %d images left to other fragments", stage.fragment_name, folder,
                       missing)
    return missing == 0


def trained(folder, iteration=0):
    """The final model of a training folder, or its snapshot at `iteration` (the release's --test_iter)."""
    path = snapshot_path(folder, iteration) if iteration else folder / "model.pth"
    if iteration and not path.exists():
        held = [snapshot_iteration(p) for p in snapshots(folder)]
        raise InputError(f"{path}: no snapshot of iteration {iteration} (this folder holds "
                         f"{', '.join(map(str, held)) or 'none'}); test one of those, or train again with "
                         "--set snapshot=N --overridecache (and --set store=none for a saliency network, whose "
                         "stored copy has no snapshots)")
    if not iteration and not path.exists() and folder.is_dir():
        held = sorted(snapshot_iteration(p) for p in snapshots(folder))
        raise InputError(f"{path}: no final model" + (
            f"; the folder holds snapshots of a training that stopped midway (iterations {', '.join(map(str, held))}): "
            f"rerun that training command with --out_dir {folder} to resume it, or test a snapshot with --test_iter "
            f"{held[-1]}" if held else "; pass the folder a training command wrote (its model.pth)"))
    return path


def load_model(path, kind):
    """The network a checkpoint describes (its meta), with the checkpoint's weights; the file is read once."""
    state = load_checkpoint(path, expect={"kind": kind})
    meta = state["meta"]
    n = len(meta["classes"])
    model = build_seed_net(meta["net"], n - 1, meta["width"]) if kind == "seed" else \
        build_seg_net(meta["net"], n, meta["width"], meta.get("fc6_dilation", 12), meta.get("output_stride", 8))
    apply_state(path, model, state)
    return model, meta


def check_classes(meta, data):
    if list(meta["classes"]) != list(data.classes):
        raise InputError(f"{data.root}: the model was trained on classes {meta['classes']}, this dataset has "
                         f"{data.classes}; use the matching dataset or retrain")


TEST_GEOMETRIES = {"none": "canvas", "fullscale": "fullscale", "tight": "tight"}  # test_resize: fit_input's mode


def geometry(test_resize):
    """transforms.fit_input's mode for a test_resize setting (segmentation test, predict)."""
    if test_resize not in TEST_GEOMETRIES:
        raise InputError(f"--test_resize {test_resize}: choose {', '.join(TEST_GEOMETRIES)}")
    return TEST_GEOMETRIES[test_resize]


def label_map(scores, image, frame, pcrf="none", crf_backend="torch"):
    """Class per pixel of the image from the network's scores (forward_all's Frame): softmax in the image frame,
    then the argmax, or the test-time CRF's labels (pcrf: none or a parameter set of crf.PARAMS), on the scores'
    device."""
    probs = torch.softmax(T.unfit(scores.float(), frame.canvas, frame.offset, frame.inner, frame.hw), 0).cpu().numpy()
    if pcrf == "none":
        return probs.argmax(0).astype(np.uint8)
    return crf_from_probs(image, probs, pcrf, crf_backend, scores.device)


def pick_device(name, given=None):
    """cpu, cuda, cuda:N, or auto (cuda when there is one). `given`: the flag the errors name, --device NAME unless
    the device came from another (--gpu N)."""
    given = given or f"--device {name}"
    problem = device_syntax(name)
    if problem:
        raise InputError(f"{given}: {problem}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"{given}: no CUDA device here; use --device cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"{given}: this machine has {torch.cuda.device_count()} CUDA devices (cuda:0 to "
                         f"cuda:{torch.cuda.device_count() - 1})")
    return device


def run_device(run):
    """The device of the settings' run section (pick_device), its errors naming --gpu N where that set it."""
    return pick_device(run["device"], None if run["gpu"] is None else f"--gpu {run['gpu']}")


def measurable(stage, data, what):
    """Whether `data` has ground truth to measure `what` against; says so in the log when not."""
    if not data.has_labels:
        stage.log.info("%s on %s: not measured, no ground-truth masks (%s to measure)", what, data.split,
                       data.ground_truth_hint)
    return data.has_labels


def tags_marked(data, folder):
    """{class: {tagged, marked}} of a folder of label PNGs: how many images are tagged with the class, and in how
    many of them the labels mark it (a pixel or more). Tags alone: it needs no masks."""
    counts = np.zeros((data.num_classes, 2), np.int64)
    for i, it in enumerate(data.items):
        marked = set(label_classes(load_label_png(folder / f"{it.id}.png")))
        for c in data.image_classes(i):
            counts[c] += (1, c in marked)
    return {data.classes[c]: dict(zip(("tagged", "marked"), counts[c].tolist())) for c in range(1, data.num_classes)}


def evaluate_folder(data, folder, rule=None):
    """mIoU of label PNGs (or of the seeds a seeds.SeedRule makes of heatmaps) against the ground truth, over the
    pixels they label; `void`: the percent of the ground truth's (non-void) pixels they leave void (None where the
    ground truth has none: no image annotated)."""
    conf, void, counted = np.zeros((data.num_classes,) * 2, np.int64), 0, 0
    for i, it in enumerate(data.items):
        if not data.annotated_at(i):   # all void, scored with nothing: its file is not read (own data's train
            continue                   # images without masks, thousands of heatmaps and seed rules)
        if rule is None:
            pred = load_label_png(folder / f"{it.id}.png")
        else:
            heat, _ = load_heatmap_mat(folder / f"{it.id}.mat")
            pred = rule.labels(heat, data.image_classes(i))
        gt = data.label(i)
        conf = conf + confusion(gt, pred, data.num_classes)
        void += np.count_nonzero((pred == IGNORE) & (gt != IGNORE))
        counted += np.count_nonzero(gt != IGNORE)
    return report(conf, data.classes) | {"void": 100 * void / counted if counted else None}
