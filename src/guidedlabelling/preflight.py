"""One check of every input before the first stage writes anything, with all problems reported together.

Settings are checked when they are resolved (config.resolve). Here, for each stage to run, what its stage
module says it reads (reads(cfg, given)): the dataset splits (image lists or tags, images, labels or masks,
classes), ground-truth masks where the stage needs them, the saliency set, the initial weights, folders given
instead of upstream outputs, and the upstream outputs themselves, which must be finished and made from the
current inputs unless an earlier step of the same run makes them. ./script.py checks every step it is asked
for before the first runs; each stage command checks its own inputs before it writes.
"""
import glob
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from . import naming
from . import settings as S
from . import pipeline
from .datasets import MaskFolder, open_dataset
from .datasets.base import other_suffix
from .errors import InputError, capped, some
from .guide_rules import grey_level
from .inference import check_classes, run_device, trained
from .io import IGNORE, as_displayed, grey_map_problem, grey_values, label_array, load_checkpoint
from .model_setup import untrained
from .fingerprint import DONE, EVALUATED, IMAGE_WORK_SIZE, SETTINGS, TAG_CLASSES, TAG_IMAGES, TAG_ROWS, \
    TAG_SPLIT_IMAGES, UPSTREAM, WORK_SIZE, Digests, bytes_as_recorded, csv_of, files_read_digest, fingerprint, \
    has_outputs, output_fingerprint, outputs_fingerprint, read_files, remade_in_order, recorded, settings_digest, \
    split_rows_key, staleness
from .networks import NETWORKS, imagenet_weights, names
from .reads import Reads
from .weights import fitting, read_state


@dataclass
class Checked:
    """What the preflight opened for one stage, for the stage to use: its datasets by split, its saliency
    set, and the folder of each upstream output it reads."""
    reads: Reads
    datasets: dict
    saliency_set: object
    folders: dict
    digests: Digests

    def manifest(self, recorded=None):
        """(the stage's manifest {key: digest}, {upstream stage: folder} of the upstream outputs in it, {upstream
        stage: ids} of those keyed by the files of it that the stage reads, the images `ids`' and the others).
        Label PNGs and masks that the stage only compares its outputs with are keyed EVALUATED + path. recorded:
        the manifest of the stage's folder, if any: one that an earlier version made (FORMER_WAYS), whose outputs
        are still what those inputs make (files it only scores with may have changed), is kept so: its outputs stay
        valid, and an edited mask re-scores; an upstream folder read now as it was read then is keyed as then
        (given_as_recorded)."""
        inputs, upstream, by_files = self.made_manifest()
        inputs = given_as_recorded(inputs, upstream, recorded) if recorded else inputs
        if recorded and recorded.get("fingerprint") != fingerprint(inputs):
            for way, sized in [(w, sized) for w in (FOLDERS, IMAGES) for sized in ("image", "split")] + \
                    [(way, "split") for way in FORMER_WAYS]:
                former = as_recorded_bytes(self.made_manifest(way, sized)[0], upstream, recorded)
                covers = all(counted_in(former, k) for k in inputs if not k.startswith(WORK_SIZE))   # every file
                if former != inputs and covers and \
                        outputs_fingerprint(former) == outputs_fingerprint(recorded["inputs"]):
                    return former, upstream, {}
        return inputs, upstream, by_files

    def made_manifest(self, way="now", sized="image"):
        """manifest(): the tags CSV counted by the classes and the rows of the splits it reads where the stage reads
        tags (a val row's tags leave the trainings as they are), else by the images it lists, as a file it scores
        with where it scores, and by its classes where its outputs depend on them (Reads.classes); the user's folders
        of maps by the files read; the work size of each image worked on shrunk; or as an earlier version counted
        them (FORMER_WAYS; the work size per split: work_sizes)."""
        sources, evaluated = self.files_read(way)
        inputs = self.digests.manifest(sources)
        inputs |= {EVALUATED + path: digest for path, digest in self.digests.manifest(evaluated).items()}
        inputs |= work_sizes(self.datasets.values(), sized)
        read, upstream, by_files = self.upstream_read(way)
        inputs |= read
        return inputs, upstream, by_files

    def files_read(self, way):
        """(the files of made_manifest's inputs, those the stage only scores with), the tags CSV keyed as `way`
        counts it (tags_keyed)."""
        sources, evaluated = [], []
        for data in self.datasets.values():
            sources += data.sources
            if self.reads.ground_truth or (self.reads.tags and data.tags_in_labels):
                sources += data.labels
            elif self.reads.evaluates:
                evaluated += data.labels
        sources += self.saliency_set.sources if self.saliency_set else []
        sources += [self.reads.init_file()] if self.reads.init_file() else []
        return self.tags_keyed(sources, evaluated, way)

    def tags_keyed(self, sources, evaluated, way):
        """files_read's (sources, evaluated) with the tags CSV among them keyed as `way` counts it: by the rows of the
        splits the stage reads, by all its rows, or by the images it lists (and its classes, its rows as scored)."""
        tags = set() if way == "bytes" else {str(d.tags_file) for d in self.datasets.values() if d.tags_file}
        if self.reads.tags and way in ("now", FOLDERS, IMAGES):   # the rows of the splits it reads
            sources = [s for s in sources if str(s) not in tags] + sorted(
                {split_rows_key(d.split, d.val_percent, d.root, d.tags_file) for d in self.datasets.values()
                 if d.tags_file})
        elif self.reads.tags or way == "rows":
            sources = [TAG_ROWS + str(s) if str(s) in tags else s for s in sources]
        else:
            sources, evaluated = self.tags_untagged(sources, evaluated, sorted(tags), way)
        return sources, evaluated

    def tags_untagged(self, sources, evaluated, tags, way):
        """tags_keyed's keys of the tags CSVs `tags` for a stage that does not read the tags: which images each split
        it reads holds (or, as `way` IMAGES counts them, each split of the CSV), whatever their tags; their classes
        where the outputs depend on them, their rows where it scores."""
        held = [TAG_IMAGES + s for s in tags] if way == IMAGES else sorted(
            {split_rows_key(d.split, d.val_percent, d.root, d.tags_file, TAG_SPLIT_IMAGES)
             for d in self.datasets.values() if d.tags_file})
        sources = [s for s in sources if str(s) not in tags] + held + \
            ([TAG_CLASSES + s for s in tags] if self.reads.classes else [])
        return sources, evaluated + ([TAG_ROWS + s for s in tags] if self.reads.evaluates else [])

    def upstream_read(self, way):
        """({manifest key: digest}, {upstream stage: folder}, {upstream stage: ids} of those keyed by_files) of the
        upstream outputs the stage reads: a per-image stage's folder by the files of it that the stage reads (a map
        of a val image added leaves the guide labels as they are), another stage's, or one made before its done.json
        recorded its files' digests, by its output fingerprint (and its settings where the folder was given), a folder
        of the user's by the files of it that the stage reads."""
        inputs, upstream, by_files = {}, {}, {}
        ids = [it.id for data in self.datasets.values() for it in data.items]
        for stage, folder in self.folders.items():
            made = output_fingerprint(folder)
            files = files_read_digest(folder, pipeline.BY_NAME[stage].per_image, ids) \
                if made and way == "now" and pipeline.BY_NAME[stage].per_image else None
            if files:
                by_files[stage] = sorted(ids)
            if made:
                inputs[UPSTREAM + stage], upstream[stage] = files or made, str(folder)
                if self.reads.upstream.get(stage):  # given: another folder of the same inputs has other outputs
                    inputs[UPSTREAM + stage + SETTINGS] = settings_digest(folder)
            else:  # a folder of the user's: the files of it that the stage reads
                inputs |= self.digests.manifest(read_files(folder, pipeline.BY_NAME[stage].per_image, ids,
                                                           way == "bytes"))
        return inputs, upstream, by_files


def as_recorded_bytes(former, upstream, recorded):
    """A former way's manifest `former` with each per-image upstream output that the recorded manifest keyed by its
    fingerprint keyed as then, where its outputs are the bytes it recorded (bytes_as_recorded): guide labels made
    again to the same bytes leave the segmenter that a version before files_read_digest trained on them as it is."""
    return former | {UPSTREAM + stage: recorded["inputs"][UPSTREAM + stage] for stage, folder in upstream.items()
                     if UPSTREAM + stage in former and bytes_as_recorded(stage, folder, recorded)}


def given_as_recorded(inputs, upstream, recorded):
    """The manifest `inputs` with the settings key of each upstream folder given by flag (UPSTREAM + stage +
    SETTINGS) as the recorded manifest has it, where the stage reads the same folder as then, its settings the same
    (a given folder's settings digest checked): a folder that ./script.py made, remade by a stage command given its
    upstream folders by flag (as a message's hint says), was then made again by ./script.py, which finds them by
    their settings ('the settings of the given seed_train folder changed since it was made'), and the other way."""
    for stage, folder in upstream.items():
        key = UPSTREAM + stage + SETTINGS
        if (recorded.get("upstream") or {}).get(stage) != folder or (key in inputs) == (key in recorded["inputs"]):
            continue
        if key in inputs:
            inputs = {k: v for k, v in inputs.items() if k != key}
        elif recorded["inputs"][key] == settings_digest(folder):
            inputs = inputs | {key: recorded["inputs"][key]}
    return inputs


def work_sizes(datasets, sized="image"):
    """{manifest key: max_image_side} of each image of the datasets worked on shrunk (IMAGE_WORK_SIZE + its file),
    or with sized="split", as versions up to fbe18ef counted them, of each split that has any such image."""
    if sized == "split":
        return {WORK_SIZE + data.split: str(data.max_side) for data in datasets if data.shrunk}
    return {IMAGE_WORK_SIZE + str(image): str(data.max_side) for data in datasets for image in data.shrunk}


FOLDERS = "folders"  # the tags CSV counted as now, every upstream stage's output by its fingerprint (before
# files_read_digest)
IMAGES = "images"  # as FOLDERS, the tags CSV of a stage that reads no tags counted by the images of all its splits
# (TAG_IMAGES; before TAG_SPLIT_IMAGES)
FORMER_WAYS = ("rows", "bytes")  # how earlier versions counted the tags CSV: by all its rows for every stage (before
# the steps that read no tags counted it by its images, and those that read tags by the rows of their splits), by its
# bytes, with every file of a user's folder of maps (up to cce8fdd)


def counted_in(former, key):
    """Whether a former manifest counted the file of a manifest key of today: itself, or the tags CSV of a key in a
    TAG_DIGESTS form (or as a file it scores with), by its rows or its bytes."""
    path = csv_of(key) or key
    return key in former or path in former or TAG_ROWS + path in former or TAG_IMAGES + path in former


class Opened:
    """Datasets and saliency sets opened once for all the stages checked together; the problems found.
    `shared`: an earlier Opened whose datasets and file digests (not its problems, nor what it found stale:
    outputs change as steps run) are reused."""

    def __init__(self, shared=None):
        self.found, self.digests = (shared.found, shared.digests) if shared else ({}, Digests())
        self.problems, self.stale = {}, {}

    def get(self, key, make):
        """make() once per key; an InputError becomes problems (reported once) and the result None."""
        if key not in self.found:
            try:
                self.found[key] = make()
            except InputError as e:
                self.found[key] = None
                self.problems.update(dict.fromkeys(e.messages))
        return self.found[key]

    def add(self, *problems):
        self.problems.update(dict.fromkeys(problems))


def data_key(d, split, follow):
    """Opened's key of a dataset split opened with the data settings `d`."""
    return "data", json.dumps(d, sort_keys=True), split, follow


def reopened(opened, d, split, follow):
    """The split as `opened` (an Opened, or None) holds it, else opened anew (3.4 s for 3000 photos: it checks them)."""
    return (opened.found.get(data_key(d, split, follow)) if opened else None) or open_dataset(d, split, follow)


def check_stage(stage, cfg, preset, given, opened, made=()):
    """What `stage` reads with these settings, checked; problems go to `opened`. `made`: folders that earlier
    steps of the same run write, so need not be finished yet."""
    reads = S.STAGE_MODULES[stage].reads(cfg, given)
    if pipeline.runs_networks(stage, cfg):  # before anything is cleared
        opened.get(("device", cfg["run"]["device"]), lambda: run_device(cfg["run"]))
    follow = cfg["run"]["follow_symlinks"]
    datasets = {}
    for split in reads.splits:
        data = opened.get(data_key(cfg["data"], split, follow), lambda: open_dataset(cfg["data"], split, follow))
        if data is not None:
            datasets[split] = data
            if reads.ground_truth and not data.has_labels:
                opened.add(data.needs_labels(f"step {stage}"))
            elif reads.ground_truth and data.annotated == 0:  # own data: masks of other splits only
                opened.add(f"{cfg['data']['masks']}: no image of split {data.split} has a mask, and step {stage} "
                           "learns from or scores against them; add masks of that split's images")
            elif reads.every_mask and data.annotated < len(data):
                opened.add(f"{cfg['data']['masks']}: {len(data) - data.annotated} of the {len(data)} {data.split} "
                           f"images have no mask, and step {stage} takes every image's foreground from its mask "
                           f"(guiderule {cfg['guide_labels']['guiderule']}, an oracle); add their masks, or choose "
                           "another guiderule")
    seeds_of = S.STAGE_MODULES["seed_heatmaps"].heatmap_split(cfg)
    if "seed_heatmaps" in reads.upstream and seeds_of not in reads.splits:   # the guides' seeds, of the test split
        split, given_folder = cfg["seed_heatmaps"]["seed_split"], reads.upstream["seed_heatmaps"]
        opened.add(f"{given_folder}: the seed heatmaps of split {seeds_of} (seed_split {split} in its config.yaml); "
                   f"{stage} reads those of split {', '.join(reads.splits)}: pass a folder of theirs"
                   if given_folder else
                   f"setting seed_heatmaps.seed_split = {split!r}: {stage} reads the seed heatmaps of split "
                   f"{', '.join(reads.splits)}, and it names those of split {seeds_of} (seed_eval's and cls_eval's "
                   "input, which ./script.py makes for them itself); leave it "
                   f"{S.OPTIONS['seed_heatmaps']['seed_split'][0]}, its default")
    saliency_set = opened.get(("saliency",) + reads.saliency_set, lambda: MaskFolder(*reads.saliency_set)) \
        if reads.saliency_set else None
    key = ("init", reads.init, reads.network, reads.init_partial)  # parsed once per network of a run
    if key not in opened.found:
        opened.found[key] = init_problems(reads)
    opened.add(*(as_both_commands(problem, stage) for problem in opened.found[key]))
    folders = {}
    upstream = reads.upstream.items() if len(datasets) == len(reads.splits) else ()  # a dataset that does not open:
    for parent, given_folder in upstream:  # its errors first (the fix of a CSV may change which folders are read)
        folders[parent] = upstream_folder(parent, given_folder, cfg, preset, made, datasets, opened,
                                          cfg[stage].get("test_iter", 0))
    return Checked(reads, datasets, saliency_set, folders, opened.digests)


def as_both_commands(problem, stage):
    """An init problem whose fixes, written as the stage command's flags, also say how ./script.py takes them."""
    for flag, setting in ((r"--init (none|\S+\.caffemodel)\b", r"init=\1"), (r"--init_partial\b", "init_partial=true")):
        problem = re.sub(flag, lambda m: f"{m[0]} (./script.py: --set {stage}.{m.expand(setting)})", problem)
    return problem


def init_problems(reads):
    role = NETWORKS[reads.net].role if reads.net in NETWORKS else "segmentation"
    pretrained = names(role, imagenet=True)
    if reads.init == "imagenet" and reads.net not in pretrained:
        return [f"--init imagenet: network {reads.net} has no built-in ImageNet weights; use "
                f"{' or '.join(pretrained)}, pass a weights file, or --init none"]
    if reads.init == "imagenet":  # the weights' package: missing, say so before anything runs
        try:
            imagenet_weights(reads.net)
        except ImportError as e:
            return [f"--init imagenet: network {reads.net}: {e}"]
    path = reads.init_file()
    if path is None:
        return []
    try:  # read whole, Caffe models too (about a second for VGG-16's 528 MB): a bad file stops the run at once,
        state = read_state(path)  # and so does one that does not fit the network (it stopped its training only)
        if reads.network:
            fitting(untrained(reads.network), state, path, reads.init_partial)
    except InputError as e:
        return list(e.messages)
    return []


def upstream_folder(parent, given_folder, cfg, preset, made, datasets, opened, test_iter=0):
    """The folder `parent`'s output is read from: a folder given instead (which must exist, hold a file for
    every image when the parent writes per-image files, and for a training the model tested, of snapshot
    `test_iter` where it is not 0), or the parent's output folder of these settings (which must be finished and
    current, unless an earlier step of this run makes it)."""
    fix = f"{naming.rerun_command(parent, cfg, preset)} first (or ./script.py)"
    if given_folder:
        path = Path(given_folder).expanduser().resolve()  # one folder, one record however it is written
        if not path.is_dir():
            opened.add(f"{path}: a file, not a folder; pass the folder that holds it, {path.parent}" if path.is_file()
                       else f"{path}: folder not found; pass an existing folder")
            return path
        maker = naming.made_by(path)
        if maker not in (None, parent) and parent not in pipeline.TRAINERS.values():   # (a model: its kind says)
            opened.add(f"{path}: the output folder of {maker} (its config.yaml says so), not of {parent}; pass a "
                       f"folder of {parent}")
            return path
        opened.add(*given_model_problems(parent, path, datasets, test_iter))
        if (path / DONE).exists():
            why = staleness(path, opened.digests, opened.stale)
            if why:
                order = remade_in_order(parent, path, opened.digests, opened.stale)
                remake = in_order([remake_command(s, f, cfg) for s, f in order], given=True)
                opened.add(f"{path}: out of date, {why}; {remake}")
        else:
            problems = per_image_problems(path, pipeline.BY_NAME[parent].per_image, datasets, parent == "saliency",
                                          parent == "guide_labels", cfg["guide_labels"]["salthres"])
            unfinished = problems and maker == parent   # (a training's folder: given_model_problems says)
            opened.add(*[f"{path}: {parent} has not finished this folder{begun(path, parent, datasets)}; rerun the "
                         "command that made it (each of its --n/--N fragments) to finish it, or pass a finished "
                         "folder"] if unfinished else problems)
        return path
    path = naming.stage_dir(cfg, preset, parent)
    if path in made:
        return path
    if not (path / DONE).exists():
        opened.add(f"{path}: no finished output of stage {parent}{begun(path, parent, datasets)}; run {fix}"
                   + under_other_presets(path))
    elif not naming.same_settings(naming.stored_settings(path), naming.relevant(cfg, parent)):  # a preset edited since
        opened.add(f"{path}: the output of stage {parent} was made with other settings than these; rerun "
                   f"{pipeline.command(parent)} with --overridecache (or ./script.py --overridecache)")
    else:
        why = staleness(path, opened.digests, opened.stale)
        if why:
            order = remade_in_order(parent, path, opened.digests, opened.stale)
            remake = in_order([naming.rerun_command(s, cfg, preset) for s, _ in order], ahead=True)
            opened.add(f"{path}: the output of stage {parent} is out of date, {why}; {remake}")
    return path


def in_order(commands, ahead=False, given=False):
    """'rerun A' (with `ahead`: 'rerun A first (or ./script.py)'), or for a chain 'first rerun A, then B (or
    ./script.py, which remakes them in order)'. `given`: folders given by flags, which ./script.py does not make."""
    if given:
        return f"{'first ' if len(commands) > 1 else ''}rerun {', then '.join(commands)} (adding the flag of any " \
            "folder of your own files it read)"
    if len(commands) == 1:
        return f"rerun {commands[0]}" + (" first (or ./script.py)" if ahead else "")
    return f"first rerun {', then '.join(commands)} (or ./script.py, which remakes them in order)"


def remake_command(stage, folder, cfg):
    """The command that makes a folder given by a flag again as it was made: its config.yaml as --config, the folder
    as --out_dir, the stage folders it read (its inputs.json records them) by their flags and --overridecache (a
    folder given to it may bring other settings now)."""
    given = [f"--{flag} {path}" for parent, path in (recorded(folder) or {}).get("upstream", {}).items()
             if (flag := flag_of(stage, parent, cfg))]
    return " ".join([pipeline.command(stage), "--config", str(Path(folder) / "config.yaml"), "--out_dir", str(folder),
                     *given, "--overridecache"])


def flag_of(stage, parent, cfg):
    """The flag of `stage`'s command that gives a folder of `parent` (--model_dir, --seed_dir, ...), as the stage
    reads it; None for none."""
    return next((flag for flag in naming.FOLDER_FLAGS
                 if S.STAGE_MODULES[stage].reads(cfg, {flag: "?"}).upstream.get(parent) == "?"), None)


def given_model_problems(parent, folder, datasets, test_iter):
    """A folder given instead of a training's output (--model_dir): the model the stage tests (its model.pth, or
    the snapshot of test_iter) must be of that training's kind, and a seed or segmentation network must know the
    classes of the datasets read."""
    kind = {stage: kind for kind, stage in pipeline.TRAINERS.items()}.get(parent)
    if kind is None:
        return []
    try:
        meta = load_checkpoint(trained(folder, test_iter), expect={"kind": kind})["meta"]
        for data in datasets.values() if kind != "saliency" else ():
            check_classes(meta, data)
    except InputError as e:
        return list(e.messages)
    return []


def under_other_presets(path):
    """'; a finished folder of that name is under --config msrc (<folder>)' where a run of another preset in the same
    out_root made one: a stage command run without the --config of the run before it (the default is demo)."""
    preset_dir = path.parent.parent
    found = sorted(p for p in preset_dir.parent.glob(f"*/{glob.escape(path.parent.name)}/{glob.escape(path.name)}")
                   if p.parent.parent != preset_dir and (p / DONE).is_file())
    return "; a finished folder of that name is under " + ", ".join(
        f"--config {p.parent.parent.name} ({p})" for p in found) if found else ""


def begun(path, stage, datasets):
    """' (begun ...)' for a folder of `stage` that a run began and did not finish, with its per-image outputs of the
    images of `datasets` (the splits read here; the stage may write others too) counted; '' for none."""
    if not has_outputs(path):
        return ""
    suffix = pipeline.BY_NAME[stage].per_image
    if not suffix:  # a training: one process
        return " (begun: stopped midway)"
    ids = [it.id for data in datasets.values() for it in data.items]
    written = sum((path / f"{image_id}{suffix}").is_file() for image_id in ids)
    return f" (begun, with {written} of the {len(ids)} images read here: stopped midway, or fragments of --n/--N " \
        "still to run)"


def per_image_problems(folder, suffix, datasets, grey=False, labels=False, salthres=50):
    """A user's folder of per-image files: one <id><suffix> per image of each split, PNGs of the image's size
    (grey: saliency maps, 0..255, some of which reach salthres; labels: label maps of the split's classes and
    255)."""
    if not suffix:
        return []
    problems, tops = [], []
    for data in datasets.values():
        files = [(folder / f"{it.id}{suffix}", (data.sizes[i], data.hw(i))) for i, it in enumerate(data.items)]
        missing = [p for p, _ in files if not p.is_file()]
        absent = set(missing)   # (a list made the lookups quadratic: 9 s for VOC's 10582 images)
        photos = [p for (p, _), it in zip(files, data.items) if p not in absent and p.samefile(it.image)]
        if photos:   # PNG photos: --saliency given the images' folder (grey ones passed every check)
            problems.append(f"{folder}: {some([p.name for p in photos])}: the images themselves, not maps of them "
                            f"({len(photos)} of the {len(files)} of split {data.split}); pass the folder of the maps")
            continue
        if missing:
            problems.append(missing_files_line(folder, suffix, missing, len(files), data.split))
        if suffix == ".png":   # the files there too: every problem at once
            files = [(p, hw) for p, hw in files if p.is_file()]
            classes = len(data.classes) if labels else None
            problems += capped([problem for p, hw in files if (problem := png_problem(p, hw, grey, classes, tops))],
                               folder)
    return problems + (faint_maps(folder, tops, salthres) if grey and not problems else [])


def missing_files_line(folder, suffix, missing, count, split):
    """The line for the images of a split (`count`) that have no file in a user's folder (`missing`), naming a file
    of the first one's name there under another suffix (a map saved as JPEG, most often) or in a subfolder."""
    other = other_suffix(missing[0])
    deeper = next((q.relative_to(folder) for q in sorted(folder.rglob(glob.escape(missing[0].name)))), None)
    there = f"; {other} is there, and the files are named <id>{suffix}" if other else \
        f"; {deeper} is there, and the files lie in the folder itself, not in subfolders" if deeper else ""
    return (f"{folder}: no {some([p.name for p in missing])} ({len(missing)} of the {count} images of split {split} "
            f"have no {suffix} file here{there}); add them or pass another folder")


def faint_maps(folder, tops, salthres):
    """Maps of which none reaches salthres (3 or more): maps scaled to 0..100, or saliency kept in the alpha
    channel, marked nothing salient, and the guide labels were the seeds without a word."""
    if len(tops) < 3 or max(tops) >= grey_level(salthres):
        return []
    return [f"{folder}: none of its {len(tops)} maps reaches salthres {salthres}% of 255 (their highest value is "
            f"{max(tops)}), so nothing would be salient; save them grey 0..255 with 255 = salient, or lower --set "
            "guide_labels.salthres"]


def sizes_said(sizes):
    """'its image 640x480' of the (height, width) a map may have, with its work size where the image is shrunk."""
    (h, w), *shrunk = dict.fromkeys(map(tuple, sizes))
    return f"its image {w}x{h}" + "".join(f" (or {sw}x{sh}, the size it is worked on at)" for sh, sw in shrunk)


def png_problem(path, sizes, grey=False, classes=None, tops=None):
    """What is wrong with a user's PNG that should have the size of its image file or its work size (`sizes`: both
    (height, width)), or None. Decoded whole: a truncated map passes a header check and failed the step after it
    had written outputs. grey: a saliency map, whose colour would be read as its luminance and values of 0..1 as
    nothing salient. classes: a label map of that many classes, whose other values (but 255, void) stopped the
    training with a traceback. tops: a list that gets a grey map's highest value as the guide labels read it."""
    try:
        with Image.open(path) as img:
            img.load()
            shown = as_displayed(img)   # as it is read (label_array turns img itself)
            w, h = shown.size
            kind = grey and grey_map_problem(shown)
            if grey and tops is not None:
                tops.append(int(grey_values(shown).max(initial=0)))
            try:   # from the pixels decoded here (a guide label folder: thousands of them)
                label = label_array(img, path) if classes else None
            except InputError as e:   # colour, say
                label = e.messages[0]
    except (OSError, SyntaxError, ValueError) as e:
        return f"{path}: unreadable PNG ({e}); re-create or remove it"
    if (h, w) not in map(tuple, sizes):
        return f"{path}: {w}x{h} (WxH), {sizes_said(sizes)}; give each map its image's size"
    if isinstance(label, str):
        return label
    if classes:
        bad = np.unique(label[(label >= classes) & (label != IGNORE)])
        if len(bad):
            return f"{path}: values {bad[:10].tolist()} outside the {classes} classes (0..{classes - 1}, {IGNORE} = " \
                "void); guide labels are label maps of the dataset's classes (a saliency map is no guide label)"
    return f"{path}: {kind}; saliency maps are grey, 0..255 (255 = salient)" if kind else None


def check(stage, cfg, preset, given, shared=None):
    """A stage command's own preflight: its inputs checked, all problems raised together. shared: datasets
    opened by the driver's preflight (Opened), reused."""
    opened = Opened(shared)
    checked = check_stage(stage, cfg, preset, given, opened)
    if opened.problems:
        raise InputError(*opened.problems)
    return checked


def check_unraised(stage, cfg, preset, given, shared=None):
    """check's (Checked, the problems found), the problems not raised: the folders it reads are known even where
    one of them is unfinished (another process may be making it)."""
    opened = Opened(shared)
    return check_stage(stage, cfg, preset, given, opened), list(opened.problems)


def check_steps(steps, preset):
    """The driver's preflight: [(stage, cfg)] of the steps to run, in order; all problems raised together.
    Returns what it opened."""
    opened, made = Opened(), set()
    for stage, cfg in steps:
        check_stage(stage, cfg, preset, {}, opened, frozenset(made))
        made.add(naming.stage_dir(cfg, preset, stage))
    if opened.problems:
        raise InputError(*opened.problems)
    return opened
