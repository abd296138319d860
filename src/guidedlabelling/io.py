"""Files between stages: atomic writes, label PNGs, heatmap .mat files, checkpoints, configs."""
import contextlib
import fcntl
import io
import json
import math
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.io
import torch
import yaml
from PIL import Image

from .errors import InputError
from .pipeline import TRAINERS, command

Image.MAX_IMAGE_PIXELS = None  # a user's panorama or scan is no attack, and the work size shrinks it (max_image_side)
IGNORE = 255  # label value of void pixels (object borders, unlabelled): neither trained on nor evaluated
EXIF_ORIENTATION = 0x0112
LABEL_MODES = ("P", "L", "1", "I", "I;16", "I;16B", "I;16L")  # modes whose pixel values are class indices
WIDE_GREY_MODES = ("I", "I;16", "I;16B", "I;16L")  # 16- and 32-bit greyscale (Pillow 10.3+ opens 16-bit PNGs as
# I;16, so "I" is 32-bit: a TIFF's)


def text_lines(path, fix):
    """The lines of a text file (a byte-order mark dropped); one that is not UTF-8 is an error naming it and `fix`."""
    try:
        return Path(path).read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not a UTF-8 text file ({not_utf8(e)}); {fix}") from None


def not_utf8(error):
    """Where text stops being UTF-8: 'line 3, byte 0xe9' (a Windows spreadsheet's é), or that it is UTF-16 (its
    byte-order mark: Excel's 'Unicode text', Notepad's 'Unicode')."""
    if error.object[:4] in (b"\xff\xfe\0\0", b"\0\0\xfe\xff"):
        return "UTF-32, by its first four bytes"
    if error.object[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "UTF-16, by its first two bytes"
    before = error.object[:error.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")   # the bytes after a BOM
    line = before.count(b"\n") + 1
    return f"line {line}, byte 0x{error.object[error.start]:02x}"


TEMPORARY = ".*.tmp*"  # atomic_path's files (a glob): one being written, or one a run killed while writing left
ROOT = Path(__file__).resolve().parents[2]   # the project folder (config.ROOT: weights reads it too)
NAME_MAX = 255  # bytes of one file or folder name on the usual file systems
UMASK = os.umask(0o022)  # read by setting it (the only way), then set back before any file is made
os.umask(UMASK)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temp path beside `path`; rename it into place only if the block succeeds. A file-system error
    (disk full, read-only) names `path`, whatever step of the write it hit."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=aside_name(path.name, ".", 8 + len(f".tmp{path.suffix}".encode())),
                                   suffix=".tmp" + path.suffix, dir=path.parent)   # (8: mkstemp's random letters)
        os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes files private; outputs are ordinary files, as open() makes
        os.replace(tmp, path)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from e
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def aside_name(name, tail, after=0):
    """`.<name><tail>`, the hidden name of a file or folder set aside beside `name` (a temp file, a folder being
    cleared), the name cut so that it and `after` more bytes (what follows: a process id, random letters) fit in
    NAME_MAX: an output named with 245 bytes (valid) could not be written, its temp name 'File name too long'."""
    return "." + cut_to_bytes(name, NAME_MAX - 1 - len(tail.encode()) - after) + tail


def cut_to_bytes(text, size):
    """`text` cut to at most `size` bytes of UTF-8, no character cut in two."""
    return text.encode()[:size].decode(errors="ignore")


@contextlib.contextmanager
def flocked(path, waiting, shared=False):
    """Hold a lock on the file `path` for the block, waiting while another process holds it (shared: only while
    one holds it alone); waiting() is called once before waiting, and may raise instead. Yields the seconds
    waited, None if it did not wait. The system releases the lock of a process that dies (flock), so none is
    ever left stale."""
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    with open(path, "a+") as f:  # readable too: NFS refuses a shared lock on a file open for writing only
        waited = None
        try:
            fcntl.flock(f, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            waiting()
            start = time.monotonic()
            fcntl.flock(f, mode)
            waited = time.monotonic() - start
        try:
            yield waited
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def lock_of(folder):
    """A stage folder's lock file: <parent>/.<name>.lock beside it, which stays in place when the folder is
    cleared (renamed aside)."""
    folder = Path(folder).resolve()   # `--out_dir .` has a name, and one folder one lock however it is written
    return folder.parent / f".{folder.name}.lock"


class Busy(Exception):
    """writing(wait=False) found the folder's lock held by another process."""


@contextlib.contextmanager
def writing(folder, who, shared=False, lock=None, wait=True):
    """Hold folder's lock for the block: one process at a time writes it, and another waits (then, for a stage,
    finds it up to date), or with wait=False raises Busy; the fragments of one run share it, as do the steps that
    read it (reading). The lock file: `lock`, else lock_of(folder). A folder this user cannot write goes unlocked:
    what it holds can be read, and a write to it names it."""
    folder = Path(folder).resolve()
    users = "writing" if shared or lock else "writing or reading"  # a stage folder's readers hold its lock too
    lock = Path(lock) if lock else lock_of(folder)

    def waiting():
        if not wait:
            raise Busy(f"another process is {users} {folder}")
        print(f"{who}: another process is {users} {folder}; waiting for it to finish (Ctrl-C stops this one)",
              flush=True)
    with contextlib.ExitStack() as stack:
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(flocked(lock, waiting, shared))
        except OSError:
            if not lock.parent.is_dir():   # nothing can be written there: why (a read-only parent), not a later ENOENT
                raise
        yield


def being_written(folder):
    """Whether another process holds the stage folder's lock alone (it writes the folder now; readers share it)."""
    try:
        with open(lock_of(folder), "r") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
    except OSError:   # no lock file (never locked), or one this user cannot open
        pass
    return False


@contextlib.contextmanager
def reading(folders, who):
    """Hold a shared lock on each stage folder that `who` reads, for the block: a process that writes one of them
    (--overridecache clears it) waits until the step is done, and the step waits for a writer. Yields whether it
    waited (what it checked of them before may be stale: unfinished, say). A lock file this user cannot open
    goes unlocked, as in writing."""
    waited = False
    with contextlib.ExitStack() as stack:
        for folder in folders:
            folder = Path(folder).resolve()

            def waiting(folder=folder):
                print(f"{who}: another process is writing {folder}, which it reads; waiting for it to finish "
                      "(Ctrl-C stops this one)", flush=True)
            try:
                waited |= stack.enter_context(flocked(lock_of(folder), waiting, shared=True)) is not None
            except OSError:
                pass
        yield waited


def voc_palette():
    """The PASCAL VOC colour map (bit-interleaved label index), 256 RGB entries."""
    pal = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal.flatten().tolist()


VOC_PALETTE = voc_palette()


def save_label_png(path, label):
    img = Image.fromarray(label.astype(np.uint8), mode="P")
    img.putpalette(VOC_PALETTE)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def save_gray_png(path, array):
    with atomic_path(path) as tmp:
        Image.fromarray(array.astype(np.uint8), mode="L").save(tmp, format="PNG")


def label_values(path):
    """The exact values of a label PNG: palette indices, or grey values at any bit depth (a 16-bit PNG's 256 stays
    256); uint8 where the PNG is 8-bit, else int64."""
    try:
        with Image.open(path) as img:
            return label_array(img, path)
    except (OSError, SyntaxError) as e:
        raise InputError(f"{path}: unreadable label PNG ({e}); re-create or remove this file") from None


def as_displayed(img):
    """An opened image turned as its EXIF orientation says, as viewers show it and as its photo is read (a mask
    saved with the tag, as an editor may, was read as stored: misaligned, without a word); else img itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # Pillow's on a corrupt EXIF block, which names no file
        try:
            turned = img.getexif().get(EXIF_ORIENTATION, 1) != 1
        except (OSError, SyntaxError, ValueError):   # an EXIF block that does not parse: no orientation
            return img
        return upright(img) if turned else img


TRANSPOSES = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}   # EXIF orientation: the turn that shows the image upright


def upright(img):
    """An opened image turned as its EXIF orientation says (read once it is loaded: Pillow's TIFF reader turns it
    itself and drops the tag), as ImageOps.exif_transpose turns it, without writing the EXIF block again, which
    raised (struct.error) on a camera's tag of an odd type, in a photo that decodes whole: a bare traceback ended
    predict and the pipeline at that photo."""
    img.load()
    method = TRANSPOSES.get(img.getexif().get(EXIF_ORIENTATION, 1))
    return img.transpose(method) if method is not None else img


def label_array(img, path):
    """label_values of the label PNG `img`, opened from `path` (as displayed: as_displayed)."""
    if img.format != "PNG":  # a lossy JPEG's values are no class indices
        raise InputError(f"{path}: a {img.format} file, not a PNG; save the labels as PNG (lossless)")
    if img.mode not in LABEL_MODES:
        colour = " (colours are not read as classes)" if img.mode in ("RGB", "RGBA") else ""
        raise InputError(f"{path}: label PNG has mode {img.mode}{colour}; save it as an index (palette) or "
                         "single-channel PNG whose values are the classes 0..C-1, and 255 for void")
    values = np.asarray(as_displayed(img))
    return values if values.dtype == np.uint8 else values.astype(np.int64)   # a 12-megapixel mask: 96 MB as int64,
    # whose checks (datasets.base.checked_label) took as long as its decoding, in every stage that opens the masks


def load_label_png(path):
    """Label indices of a label PNG as uint8; a value above 255 (16-bit PNGs) is an error naming it."""
    values = label_values(path)
    if values.size and (values.max() > IGNORE or values.min() < 0):
        bad = np.unique(values[(values > IGNORE) | (values < 0)])
        raise InputError(f"{path}: label values {bad[:5].tolist()} outside 0..255; label PNGs hold class indices "
                         "and 255 for void")
    return values.astype(np.uint8)


def eight_bit(img):
    """A 16-bit greyscale PIL image scaled to 8 bits (v / 257, rounded: 65535 -> 255); other modes unchanged. A
    32-bit one ("I", a TIFF's) whose values all fit 0..255 is taken as 8-bit (an 8-bit image saved as 32-bit
    integers was black)."""
    if img.mode not in WIDE_GREY_MODES:
        return img
    values = np.asarray(img).astype(np.float64)
    scale = 1 if img.mode == "I" and values.max(initial=0) <= 255 else 257
    return Image.fromarray(np.clip(np.round(values / scale), 0, 255).astype(np.uint8), "L")


def upright_rgb(img):
    """An opened image as load_image decodes it: EXIF orientation applied, 16-bit greyscale scaled to 8 bits, RGB."""
    return eight_bit(upright(img)).convert("RGB")


def load_image(path, hw=None):
    """RGB uint8 HxWx3, EXIF orientation applied, greyscale expanded (16-bit greyscale scaled to 8 bits); with hw
    (height, width, as displayed), shrunk to that size (bilinear, averaging), a JPEG decoded at the smallest of 1/2,
    1/4, 1/8 scale that still covers it (a 12-megapixel photo then decodes several times faster)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # Pillow's on the file (corrupt EXIF, say) name no file
            # and came from every loader worker: the dataset check names them once (datasets.base.readable_items)
            with Image.open(path) as img:
                if hw is not None and max(hw) < max(img.size):
                    scale = max(hw) / max(img.size)
                    img.draft(None, (math.ceil(img.width * scale), math.ceil(img.height * scale)))
                img = upright_rgb(img)
                if hw is not None and img.size != (hw[1], hw[0]):
                    img = img.resize((hw[1], hw[0]), Image.BILINEAR)
                return np.array(img)
    except (OSError, SyntaxError) as e:
        raise InputError(f"{path}: unreadable image ({e}); re-create or remove this file") from None


def alpha_unlike_grey(img):
    """Whether over 1% of the pixels are transparent where the grey does not say the same: a map whose alpha copies
    its grey (some tools save saliency so) reads right without it."""
    alpha = np.asarray(img.getchannel("A")).astype(np.int16)
    grey = np.asarray(img.convert("L")).astype(np.int16)
    return ((alpha < 255) & (np.abs(alpha - grey) > 8)).mean() > 0.01


def grey_map_problem(img):
    """Why a saliency map would not read as grey 0..255 (floats, colour, transparency, 16-bit values of 0..255, a 0/1
    mask), else None. Colour: over 1% of the pixels with channels apart by more than 8 levels (a grey map saved with
    rounding passes); transparency (alpha is dropped: a white cutout read all salient; alpha_unlike_grey), a 0/1
    mask, or 8-bit values in 16 bits: on 1% of the pixels or more (a faint network map has a few)."""
    if img.mode == "F":
        return "floating-point values"
    if img.mode in ("RGB", "RGBA", "P", "PA"):
        rgb = np.asarray(img.convert("RGB")).astype(np.int16)
        if ((rgb.max(-1) - rgb.min(-1)) > 8).mean() > 0.01:
            return "colour (its channels differ)"
    if "A" in img.getbands() and alpha_unlike_grey(img):
        return "transparent pixels (its alpha channel is not read: a cutout's mask?)"
    values = np.asarray(img if img.mode in WIDE_GREY_MODES else img.convert("L"))
    top = int(values.max(initial=0))
    sixteen = img.mode in WIDE_GREY_MODES and img.mode != "I"   # "I" (32 bits): 0..255 read as they are (eight_bit)
    if sixteen and 1 < top <= 255 and (values > 1).mean() >= 0.01:
        return f"16-bit values of at most {top}, which read as 0..1 (a 16-bit map runs to 65535)"
    return "values of 0..1 only (a 0/1 mask?)" if top == 1 and (values == 1).mean() >= 0.01 else None


def grey_values(img):
    """Grey uint8 HxW of a decoded map, as the guide labels read it: 16-bit scaled to 8 bits, colour's luminance."""
    return np.asarray(eight_bit(img).convert("L"))


def load_gray_png(path, refuse=None):
    """Grey uint8 HxW (as displayed: as_displayed); 16-bit greyscale scaled to 8 bits, colour converted to
    luminance. refuse: the fix, where a map that would not read as it looks (grey_map_problem) is an error."""
    try:
        with Image.open(path) as img:
            shown = as_displayed(img)
            kind = refuse and grey_map_problem(shown)
            if kind:
                raise InputError(f"{path}: {kind}; {refuse}")
            return grey_values(shown)
    except (OSError, SyntaxError) as e:
        raise InputError(f"{path}: unreadable grey PNG ({e}); rerun the stage that made it") from None


MAT_HEADER = 116  # bytes of a MAT-file's descriptive text, which scipy fills with the time of writing
MAT_DESCRIPTION = b"MATLAB 5.0 MAT-file Platform: posix, written by GuidedLabelling".ljust(MAT_HEADER, b"\0")


def save_mat(path, variables):
    """scipy.io.savemat with a fixed descriptive text instead of the time: the same variables make the same bytes
    (later stages record a digest of the outputs they read: fingerprint.outputs_digest)."""
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables)
    with atomic_path(path) as tmp:
        tmp.write_bytes(MAT_DESCRIPTION + buffer.getvalue()[MAT_HEADER:])


def save_heatmap_mat(path, heatmap, imshape, scores=None):
    """Seed heatmaps: `heatmap` float32 [n_present, H, W] and `imshape_original` [H, W]; the image's class
    `scores` [C-1] in the same file when given, so that both are written, or neither."""
    extra = {} if scores is None else {"scores": np.asarray(scores, np.float32)}
    save_mat(path, {"heatmap": heatmap.astype(np.float32), "imshape_original": np.asarray(imshape, np.int32)} | extra)


def read_heatmap_file(path, names):
    """The named variables of a seed heatmap file; a damaged file is an error naming it."""
    try:
        m = scipy.io.loadmat(path, variable_names=names)
        return {name: m[name] for name in names}
    except Exception as e:  # scipy's reader raises many kinds (IndexError, ValueError, zlib.error) on damaged files
        raise InputError(f"{path}: unreadable heatmap file ({type(e).__name__}: {e}); remove it and rerun "
                         f"{command('seed_heatmaps')}") from None


CLASS_SCORES = "cls_res.mat"  # seed_heatmaps' file of every image's class scores, beside the heatmaps (the release's)


def load_heatmap_mat(path):
    """([C-1, H, W] heatmaps, (H, W)) of a seed heatmap file."""
    m = read_heatmap_file(path, ["heatmap", "imshape_original"])
    shape = tuple(int(v) for v in m["imshape_original"].ravel())
    heatmap = m["heatmap"]
    if len(shape) != 2 or min(shape) < 1 or heatmap.size % (shape[0] * shape[1]):  # none: an image without tags
        raise InputError(f"{path}: its heatmap holds {heatmap.size} values, no whole number of maps of its "
                         f"imshape_original {list(shape)}; remove it and rerun {command('seed_heatmaps')}")
    return heatmap.astype(np.float32).reshape((-1,) + shape), shape


def load_heatmap_scores(path):
    """The image's class scores [C-1] that save_heatmap_mat wrote beside its heatmap."""
    return read_heatmap_file(path, ["scores"])["scores"].ravel()


def finite_json(data):
    """`data` with every number a plain int or float and every NaN or infinity None (JSON has no NaN)."""
    if isinstance(data, dict):
        return {k: finite_json(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_json(v) for v in data]
    if isinstance(data, (bool, np.bool_)):
        return bool(data)
    if isinstance(data, (int, np.integer)):
        return int(data)
    if isinstance(data, (float, np.floating)):
        return float(data) if np.isfinite(data) else None
    return data


def save_json(path, data):
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(finite_json(data), indent=2, sort_keys=True, allow_nan=False) + "\n")


def save_yaml(path, data):
    with atomic_path(path) as tmp:
        Path(tmp).write_text(yaml.safe_dump(data, sort_keys=False))


def save_checkpoint(path, model, meta, optimizer=None, iteration=None):
    """A checkpoint loadable with torch.load(weights_only=True): tensors, numbers and strings only."""
    state = {"model": model.state_dict(), "meta": meta}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
        state["iteration"] = iteration
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        try:
            torch.save(state, f)  # to a file object, so that a refused write is a Python OSError...
        except RuntimeError as e:  # ...which torch may hide behind "unexpected pos": raise the OSError
            if isinstance(e.__context__, OSError):
                raise e.__context__ from None
            raise


SNAPSHOT = "snapshot_iter_"  # Caffe's name of a training's snapshot files: snapshot_iter_<N>.pth


def snapshots(folder):
    """A training folder's snapshot_iter_<N>.pth files, by iteration."""
    found = [p for p in Path(folder).glob(f"{SNAPSHOT}*.pth") if p.stem[len(SNAPSHOT):].isdigit()]
    return sorted(found, key=snapshot_iteration)


def snapshot_path(folder, iteration):
    return Path(folder) / f"{SNAPSHOT}{iteration}.pth"


def snapshot_iteration(path):
    return int(Path(path).stem[len(SNAPSHOT):])


def load_checkpoint(path, model=None, expect=None, unreadable_fix="retrain or re-download it"):
    """Load a checkpoint; `expect` (dict of meta fields) guards against a checkpoint of another network."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: checkpoint not found; run the training stage that makes it first")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files
        raise InputError(f"{path}: unreadable checkpoint ({type(e).__name__}); {unreadable_fix}") from None
    if not (isinstance(state, dict) and "model" in state and "meta" in state):
        raise InputError(f"{path}: not a checkpoint of this project (no model and meta entries); pass a "
                         "model.pth written by a training command")
    meta = state["meta"]
    for key, value in (expect or {}).items():
        if meta.get(key) != value:
            fix = f"pass a model.pth of {command(TRAINERS[value])}" if key == "kind" else f"pass the matching --{key}"
            raise InputError(f"{path}: checkpoint is for {key}={meta.get(key)!r} ({network(meta)}), not "
                             f"{key}={value!r} as asked; {fix}")
    if model is not None:
        apply_state(path, model, state)
    return state


def network(meta):
    """'a seed network GAP-HighRes, width 0.0625': what a checkpoint's meta says it holds."""
    return f"a {meta.get('kind', 'unknown')} network {meta.get('net', '')}, width {meta.get('width', '?')}"


def apply_state(path, model, state):
    """Load a checkpoint's weights into `model`; a mismatch is a one-line error naming the file."""
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise InputError(f"{path}: checkpoint does not fit this network ({first}); the file holds "
                         f"{network(state['meta'])}; check --net and --width") from None
