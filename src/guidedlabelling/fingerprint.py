"""Reuse of a stage's outputs only when it would read the same content again.

A stage's manifest lists everything it reads, by content: a hash of every file of its dataset splits (image list or
tags CSV, the latter by the classes and the rows of the splits it reads, or where a stage reads no tags by the images
it lists in those splits and, where its outputs depend on them, its classes; classes.txt, images, labels or masks),
of its saliency set, of its initial weights and of user folders it reads instead of an upstream output, plus the
fingerprint of each upstream output it reads (which covers that stage's own inputs in turn), or, of a per-image
stage's, the digest of the files of it that the stage reads (files_read_digest: the guide labels read the training
images' maps, and a val image's map added leaves them as they are). The fingerprint is the hash of the manifest.
The runner writes the manifest to <folder>/inputs.json when the stage starts, before any output, and the fingerprint
into done.json when it ends: a finished folder is reused only while its fingerprint is the current one, and a
folder started with other inputs (per-image files, training snapshots) is cleared rather than resumed. inputs.json
also records the digest of each upstream output's content (done.json's outputs_digest) beside the manifest: outputs
made again to other bytes (a training rerun with --overridecache on another thread count) make the stages that read
them stale (remade). Records of a version before the digests have none: the fingerprint alone decides for them,
until their stage runs again. Label files a stage only scores its outputs with are in the manifest too, marked
EVALUATED: a later stage records the upstream's outputs_fingerprint, which leaves them out, so an edited val mask
re-scores the stages that read it (runner.check_cache keeps their per-image files) and retrains nothing downstream;
so does a tags CSV's rows where a stage reads no tags and scores with them (the saliency maps, the test).

Files are hashed whole (BLAKE2b): an in-place edit that keeps the size and the time stamp still shows.
Measured on MSRC (591 JPEGs, 591 label PNGs and the lists, 24.6 MB) on the project's 2-core machine: 0.25 s
with the files evicted from the page cache, 0.09 s cached; opening the two splits, which decodes every image
and label to check it, takes 1.9 s.
"""
import hashlib
import json
from fnmatch import fnmatch
from pathlib import Path

from . import pipeline
from .errors import InputError, listed
from .datasets.own import image_id
from .io import CLASS_SCORES, SNAPSHOT, TEMPORARY
from .tags import read_rows, split_of, tag_names

MANIFEST = "inputs.json"
DONE = "done.json"  # a finished folder's record: its summary, fingerprints and outputs (runner.Stage.finish)
BOOKKEEPING = ("config.yaml", "log.txt", MANIFEST)  # what a stage folder holds besides outputs and DONE
ABSENT = "absent"
UNREADABLE = "unreadable"  # a manifest's digest of a file this user may not read (a photo the dataset skips)
UPSTREAM = "upstream "  # manifest key prefix of an upstream output: "upstream seed_heatmaps"
EVALUATED = "evaluated "  # manifest key prefix of a label file a stage only compares its outputs with
SETTINGS = " settings"  # UPSTREAM + stage + SETTINGS: the settings of an upstream folder given by the user, which
# its outputs_fingerprint leaves out (two trainings of the same inputs with other seeds share it)
WORK_SIZE = "work size of "  # manifest key prefix of a split some of whose images are worked on shrunk (as versions
# up to fbe18ef keyed it), or of such an image (IMAGE_WORK_SIZE): its max_image_side, so that outputs made at another
# work size, or at the file's (before the setting), are remade; per image, a photo grown past it remakes its own alone
IMAGE_WORK_SIZE = WORK_SIZE + "image "
TAG_ROWS = "rows of "  # manifest key prefix of a tags CSV hashed by what it says (rows_digest), not by its bytes
TAG_CLASSES = "classes of "  # manifest key prefix of a tags CSV hashed by its classes alone (classes_digest): what
# the fully supervised reference takes from it (the saliency maps and the tests, which read no tags either, count its
# rows as EVALUATED: they score with it)
TAG_IMAGES = "images of "  # manifest key prefix of a tags CSV hashed by the images it lists and their split column
# alone (images_digest): which images a split of a stage that reads no tags holds
TAG_SPLIT = "split rows of "  # manifest key prefix of a tags CSV hashed by the rows of one split and the classes
# (split_rows_digest): what a stage that reads the tags of that split takes from it; then JSON of [split,
# val_percent, images folder, CSV] (split_rows_key): a val row's tags do not make the training steps stale
TAG_SPLIT_IMAGES = "split images of "  # manifest key prefix of a tags CSV hashed by the images of one split alone
# (split_images_digest), then the JSON of split_rows_key: which images the split of a stage that reads no tags holds
# (a val row added leaves the fully supervised reference as it is)
CHUNK = 1 << 20
OUTPUT_DIGESTS = "output_digests"  # done.json's {name: digest} of each output (outputs_digest hashes them together)
SPLIT_ROWS = "split_rows"  # inputs.json's {TAG_SPLIT key: [classes, [[id, row], ...]]} beside the manifest of a
# per-image stage that reads tags (split_rows_record): which rows of its split came or went (rows_came_or_went)
READ_IDS = "read_ids"  # inputs.json's {upstream stage: the images whose files of it the stage reads}, beside the
# manifest, of the upstream outputs it keys by those files (files_read_digest) rather than by their fingerprint


def file_digest(path):
    """BLAKE2b-128 of a file's bytes, or ABSENT."""
    path = Path(path)
    if not path.is_file():
        return ABSENT
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def rows_digest(path):
    """BLAKE2b-128 of a tags CSV's rows as read (image, tags, split, in order): a spreadsheet saving it again with
    other line ends, quotes or spaces does not change it. A CSV that does not read whole: its bytes' digest."""
    rows = whole_rows(path)
    if rows is None:
        return file_digest(path)
    return text_digest(json.dumps([row_said(r) for r in rows]))


def classes_digest(path):
    """BLAKE2b-128 of the classes a tags CSV names (its sorted tags): a tag added to or taken from a row changes it
    only where a class comes or goes. A CSV that does not read whole: its bytes' digest."""
    rows = whole_rows(path)
    return file_digest(path) if rows is None else text_digest(json.dumps(tag_names(rows)))


def images_digest(path):
    """BLAKE2b-128 of the images a tags CSV names with their split column (order and tags left out): with the
    val_percent setting, which images each split holds."""
    rows = whole_rows(path)
    return file_digest(path) if rows is None else text_digest(json.dumps(sorted({(r.image, r.split or "")
                                                                                  for r in rows})))


def row_said(r):
    """What a row of a tags CSV says, as its digests count it: image, tags, split column (an empty cell: none)."""
    return r.image, list(r.tags), r.split or None


def split_rows_key(split, val_percent, images, csv, prefix=TAG_SPLIT):
    """The manifest key of a tags CSV counted by the rows of one split of own data (TAG_SPLIT), or by its images
    (TAG_SPLIT_IMAGES)."""
    return prefix + json.dumps([split, val_percent, str(images), str(csv)])


def split_rows_digest(described, rows_of=None):
    """BLAKE2b-128 of the classes a tags CSV names and of its rows (image, tags, split column) that fall in one split
    as own data splits them (its split column, else a hash of the image's id at val_percent); `described`: the JSON
    of split_rows_key. A CSV that does not read whole: its bytes' digest."""
    return split_digest(described, lambda classes, kept: [classes, [row for _, row in kept]], rows_of)


def split_images_digest(described, rows_of=None):
    """BLAKE2b-128 of the images of a tags CSV's rows that fall in one split (split_rows), order left out;
    `described`: the JSON of split_rows_key. A CSV that does not read whole: its bytes' digest."""
    return split_digest(described, lambda classes, kept: sorted(i for i, _ in kept), rows_of)


def split_digest(described, counted, rows_of=None):
    """BLAKE2b-128 of what `counted(classes, kept)` takes from split_rows of a split of a tags CSV (`rows_of`: where
    they are read, split_rows itself by default), or of the CSV's bytes where it does not read whole."""
    said = (rows_of or split_rows)(described)
    return file_digest(json.loads(described)[3]) if said is None else text_digest(json.dumps(counted(*said)))


def split_rows(described):
    """(the classes a tags CSV names, [id, what its row says] of its rows in one split, in order) as
    split_rows_digest counts them, or None where it does not read whole; `described`: the JSON of split_rows_key."""
    split, val_percent, images, csv = json.loads(described)
    rows = whole_rows(csv)
    if rows is None:
        return None
    listings, kept = {}, []
    for r in rows:
        if split_of(r, i := image_id(Path(images), r.image, listings), val_percent) == split:
            kept.append([i, list(row_said(r))])
    return tag_names(rows), kept


def split_rows_record(inputs, digests):
    """inputs.json's SPLIT_ROWS of a per-image stage's manifest `inputs`: split_rows of each tags CSV it counts by the
    rows of a split, as `digests` (a Digests) read them."""
    return {k: digests.split_rows(k[len(TAG_SPLIT):]) for k in inputs if k.startswith(TAG_SPLIT)}


def rows_came_or_went(keys, record, manifest):
    """The changed manifest keys less the tags CSVs counted by the rows of a split (TAG_SPLIT) of which rows only came
    or went: the classes and the rows of the other images are what the record's SPLIT_ROWS has (a val row added keeps
    the other val images' heatmaps, which hold the maps of their own tags); the images of those rows came or went with
    them, keys of their own."""
    then, now = record.get(SPLIT_ROWS) or {}, manifest.get(SPLIT_ROWS) or {}

    def only_came_or_went(key):
        if not (then.get(key) and now.get(key)):
            return False
        (classes, rows), (classes_now, rows_now) = then[key], now[key]
        rows, rows_now = dict(rows), dict(rows_now)   # (an id of two rows: counted changed)
        return classes == classes_now and len(rows) == len(then[key][1]) and len(rows_now) == len(now[key][1]) and \
            all(rows[i] == rows_now[i] for i in rows.keys() & rows_now.keys())
    return [k for k in keys if not (k.startswith(TAG_SPLIT) and only_came_or_went(k))]


TAG_DIGESTS = {TAG_ROWS: rows_digest, TAG_CLASSES: classes_digest, TAG_IMAGES: images_digest,
               TAG_SPLIT: split_rows_digest, TAG_SPLIT_IMAGES: split_images_digest}
BY_SPLIT = (TAG_SPLIT, TAG_SPLIT_IMAGES)   # the prefixes of keys that name a split of a tags CSV (split_rows_key)


def whole_rows(path):
    """The rows of a tags CSV, or None where it does not read whole."""
    try:
        rows, problems = read_rows(path)
    except InputError:
        return None
    return None if problems else rows


def text_digest(text):
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class Digests:
    """The digests of one command: each file is hashed once however many stages' manifests list it."""

    def __init__(self):
        self.known, self.rows = {}, {}

    def manifest(self, keys):
        """{key: digest} of files: a path, or a TAG_DIGESTS prefix and the path of a tags CSV."""
        for k in map(str, keys):
            if k not in self.known:
                self.known[k] = tag_digest(k, self.split_rows) or readable_digest(k)
        return {str(k): self.known[str(k)] for k in keys}

    def split_rows(self, described):
        """split_rows of a split of a tags CSV, read once: each row's image is looked up in the folder (1.5 s for
        10,000 rows), and every per-image stage records them beside the digests of both splits' keys."""
        if described not in self.rows:
            self.rows[described] = split_rows(described)
        return self.rows[described]


def readable_digest(path):
    """file_digest, or UNREADABLE for a file this user may not read: the dataset skips such a photo, counted, and the
    step that hashed it ended in 'Permission denied'; the outputs are remade once it can be read."""
    try:
        return file_digest(path)
    except PermissionError:
        return UNREADABLE


def tag_digest(key, rows_of=None):
    """The digest of a manifest key of a tags CSV (a TAG_DIGESTS prefix and its path), None for another key;
    rows_of: where the rows of a split are read (split_digest)."""
    return next((digest(key[len(prefix):], *[rows_of] if prefix in BY_SPLIT else []) for prefix, digest in
                 TAG_DIGESTS.items() if key.startswith(prefix)), None)


def folder_files(folder):
    """The plain files of a user's folder (its maps or models), hidden files left out."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))


def read_files(folder, suffix, ids, every=False):
    """The files of a user's folder that a stage reads: of a folder of per-image files <id><suffix>, those of the
    images `ids` (as the stage opens them) and the class scores, so that maps of images it does not read (another
    split's, images added later) do not make its outputs stale; else, or with `every` (as versions up to cce8fdd
    hashed them), all of them."""
    files = folder_files(folder)
    if not suffix or every:
        return files
    scores = Path(folder) / CLASS_SCORES   # as cls_eval opens it
    return [Path(folder) / f"{i}{suffix}" for i in ids] + ([scores] if scores.is_file() else [])


def fingerprint(manifest):
    """The hash of a manifest ({key: digest}), its upstream stages under their former names (pipeline.FORMER_NAMES):
    a folder's fingerprints do not depend on which version wrote its manifest, so an older version's folders, and
    the stages downstream of them, stay valid however they are resumed or rescored."""
    manifest = renamed_upstream(manifest, pipeline.FORMER_OF)
    return hashlib.sha256(json.dumps(sorted(manifest.items())).encode()).hexdigest()[:32]


def renamed_upstream(manifest, names):
    """A manifest with its upstream stages renamed by `names` (former <-> current stage names)."""
    return {UPSTREAM + names.get(k[len(UPSTREAM):], k[len(UPSTREAM):]) if k.startswith(UPSTREAM) else k: v
            for k, v in manifest.items()}


def outputs_fingerprint(manifest):
    """The hash of the part of a manifest that the outputs depend on: what later stages record of them (an
    edited val mask changes a stage's scores, not the maps that the next stage reads)."""
    return fingerprint({k: v for k, v in manifest.items() if not k.startswith(EVALUATED)})


def read_json(path):
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def done_record(folder):
    """A finished folder's DONE record, or None (unfinished, or damaged since)."""
    return read_json(Path(folder) / DONE)


def recorded(folder):
    """The manifest recorded in a folder ({"inputs", "upstream", "fingerprint"}), or None."""
    data = read_json(Path(folder) / MANIFEST)
    return data if data and isinstance(data.get("inputs"), dict) else None


def finished_fingerprint(folder):
    """The fingerprint in a finished folder's done.json, or None (unfinished, or made before fingerprints)."""
    done = done_record(folder)
    return done.get("fingerprint") if done else None


def settings_digest(folder):
    """The digest of the settings a stage folder was made with: its config.yaml, which the runner writes whenever
    the stage runs there."""
    return file_digest(Path(folder) / "config.yaml")


def output_fingerprint(folder):
    """The outputs_fingerprint in a finished folder's done.json (its fingerprint in folders made before there
    was one), or None."""
    done = done_record(folder)
    return done.get("output_fingerprint", done.get("fingerprint")) if done else None


def made_digest(folder):
    """The digest of a finished folder's outputs in its done.json (outputs_digest), or None."""
    return (done_record(folder) or {}).get("outputs_digest")


def upstream_digests(upstream, by_files=()):
    """{stage: made_digest} of the upstream folders ({stage: folder}) that have one, recorded in inputs.json; not of
    those keyed `by_files` (files_read_digest), whose key is their content already."""
    made = {stage: made_digest(folder) for stage, folder in upstream.items() if stage not in by_files}
    return {stage: digest for stage, digest in made.items() if digest}


def remade(record, reads=None):
    """The upstream stages of a recorded manifest whose outputs are not the bytes it recorded (their folders made
    again since), under their current names. reads: {stage: folder} it reads now, else the recorded ones; a folder
    no longer there (the run moved: its records name the former paths) is not compared, its fingerprint decides."""
    reads = reads or record["upstream"]
    return [pipeline.current_name(stage) for stage, digest in record.get("upstream_digests", {}).items()
            if Path(folder := reads.get(stage, record["upstream"][stage])).is_dir() and made_digest(folder) != digest]


def keyed_otherwise(key, record, manifest):
    """Whether a manifest key that changed between a folder's record and today's manifest is an upstream output that
    the record keyed by its fingerprint (made before files_read_digest), still that of the folder read now, and today's
    by the files of it read: the same output, counted otherwise, which no message calls changed."""
    stage, folder = key.removeprefix(UPSTREAM), manifest["upstream"].get(key.removeprefix(UPSTREAM))
    return key.startswith(UPSTREAM) and stage in manifest.get(READ_IDS, {}) and folder is not None and \
        record["upstream"].get(stage) == folder and (record["inputs"].get(key) == output_fingerprint(folder) or
                                                     bytes_as_recorded(stage, folder, record))


def bytes_as_recorded(stage, folder, record):
    """Whether a recorded manifest keyed an upstream stage's output by its fingerprint (made before
    files_read_digest), of the folder read now, whose outputs are still the bytes it recorded (upstream_digests),
    though made again since from inputs counted otherwise (the guide labels made again, to the same bytes, once the
    saliency folder they read was keyed by the training images' maps): the same output. Only a per-image stage's
    output is keyed by its files."""
    made = made_digest(folder)
    return pipeline.BY_NAME[pipeline.current_name(stage)].per_image and stage not in (record.get(READ_IDS) or {}) \
        and (record.get("upstream") or {}).get(stage) == str(folder) and UPSTREAM + stage in record.get("inputs", {}) \
        and made is not None and (record.get("upstream_digests") or {}).get(stage) == made


def scored_with_changed(folder, digests):
    """The files a finished folder scored its outputs with (its EVALUATED inputs: masks, label PNGs) that are no
    longer what they were then (edited, gone, or there where they were absent), from its recorded manifest; digests:
    a Digests, so that each file is hashed once over the folders checked."""
    inputs = (recorded(folder) or {}).get("inputs") or {}
    then = {k.removeprefix(EVALUATED): v for k, v in inputs.items() if k.startswith(EVALUATED)}
    now = digests.manifest(then)
    return sorted(path for path, digest in then.items() if now[path] != digest)


def outputs_record(folder, names):
    """done.json's record of the named outputs of a folder: the digest of each (OUTPUT_DIGESTS) and of them all
    (outputs_digest); 0.5 s for all of an MSRC run's (267 MB, cached)."""
    digests = {name: file_digest(Path(folder) / name) for name in sorted(names)}
    return {"outputs_digest": outputs_digest(digests), OUTPUT_DIGESTS: digests}


def outputs_digest(digests):
    """BLAKE2b-128 of a folder's outputs, each by name and content ({name: digest}: output_digests)."""
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(digests):
        h.update(f"{name} {digests[name]}\n".encode())
    return h.hexdigest()


def files_read_digest(folder, suffix, ids):
    """The digest of the outputs of a finished per-image stage's folder (its files <id><suffix>) that a stage reading
    the images `ids` reads: their files and every output that is not an image's (the class scores), from the
    digests its done.json records (OUTPUT_DIGESTS), or None where it records none (made before them). Maps of images
    it does not read (the other split's, one added to val) leave it as it was."""
    made = (done_record(folder) or {}).get(OUTPUT_DIGESTS)
    if not isinstance(made, dict):
        return None
    ids = set(ids)
    read = {name: digest for name, digest in made.items()
            if not name.endswith(suffix) or name == CLASS_SCORES or name[:-len(suffix)] in ids}
    return text_digest(json.dumps(sorted(read.items())))


def upstream_made(folder, stage, record):
    """What a recorded manifest keys the output of an upstream stage by, as that folder is now: the digest of the
    files of it that the stage read where the record says which images those were (READ_IDS), else its
    outputs_fingerprint."""
    ids = (record.get(READ_IDS) or {}).get(stage)
    if ids is None:
        return output_fingerprint(folder)
    return files_read_digest(folder, pipeline.BY_NAME[pipeline.current_name(stage)].per_image, ids)


NOT_OUTPUTS = BOOKKEEPING + (DONE,)


def output_sizes(folder):
    """{name: size} of the outputs of a stage folder that later runs read: its top-level files (subfolders such as
    vis/ and rule/, snapshots, bookkeeping and hidden files left out, so deleting them to free space damages
    nothing); recorded in done.json so that a missing or truncated output is seen (damage)."""
    return {p.name: p.stat().st_size for p in sorted(Path(folder).iterdir())
            if p.is_file() and p.name not in NOT_OUTPUTS and not p.name.startswith((".", SNAPSHOT))}


def damage(folder):
    """None when every output a finished folder's done.json lists is there with its size, else which is not."""
    listed = (done_record(folder) or {}).get("outputs", {})
    for name, size in listed.items():
        path = Path(folder) / name
        if not path.is_file():
            return f"its output {name} is missing"
        if path.stat().st_size != size:
            return f"its output {name} is damaged ({path.stat().st_size} bytes, {size} when made)"
    return None


def changes(old, new):
    """Keys of two manifests whose digests differ, that were added or that went (upstream stages of an older
    version's manifest under their current names)."""
    old = renamed_upstream(old, pipeline.FORMER_NAMES)
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def key_name(key):
    """A manifest key as a message names it: a file, "<stage>'s output", or the settings of a given folder."""
    if key.startswith(TAG_CLASSES):
        return f"the classes of {key[len(TAG_CLASSES):]}"
    if key.startswith(TAG_IMAGES):
        return f"the images {key[len(TAG_IMAGES):]} lists"
    if key.startswith(TAG_SPLIT):
        split, _, _, csv = json.loads(key[len(TAG_SPLIT):])
        return f"the {split} rows of {csv}"
    if key.startswith(TAG_SPLIT_IMAGES):
        split, _, _, csv = json.loads(key[len(TAG_SPLIT_IMAGES):])
        return f"the {split} images {csv} lists"
    if key.startswith(IMAGE_WORK_SIZE):
        return f"the work size of {key[len(IMAGE_WORK_SIZE):]}"
    if not key.startswith(UPSTREAM):
        return key.removeprefix(EVALUATED).removeprefix(TAG_ROWS)
    stage = key[len(UPSTREAM):]
    if stage.endswith(SETTINGS):
        return f"the settings of the given {stage.removesuffix(SETTINGS)} folder"
    return f"{stage}'s output"


def describe(keys, limit=3):
    """'tags.csv, JPEGImages/a.jpg and 4 more' for changed manifest keys."""
    names = [key_name(k) for k in keys[:limit]]
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(names) + more


def rekeyed_work_sizes(keys, old, new):
    """The changed keys less those that only key the work size otherwise: where the recorded manifest `old` keyed it
    per split (versions up to fbe18ef: the split's keys, all gone today) at the max_image_side that today's `new`
    keys per image, an image whose file is what it was is worked on at the size it was (only the work size keys of
    images whose files changed, came or went stay). Else the keys as they are."""
    splits = [k for k in keys if k.startswith(WORK_SIZE) and not k.startswith(IMAGE_WORK_SIZE)]
    sides = {v for k, v in new.items() if k.startswith(IMAGE_WORK_SIZE)}
    if not splits or any(k in new or k not in old for k in splits) or len(sides) != 1 or \
            {old[k] for k in splits} != sides:
        return keys
    named = set(keys)   # (thousands of photos: a list made it quadratic)
    return [k for k in keys if k not in splits and
            not (k.startswith(IMAGE_WORK_SIZE) and k[len(IMAGE_WORK_SIZE):] not in named)]


def since_made(keys, old, new):
    """Why a folder is stale, from the keys of its recorded manifest `old` and of today's `new` that differ
    (changes): 'a.jpg changed, b.jpg was added, c.jpg went since it was made' (files added or gone said so, and
    files recorded that are there and not read)."""
    old = renamed_upstream(old, pipeline.FORMER_NAMES)
    keys = rekeyed_work_sizes(keys, old, new)
    missing = [k for k in keys if k.startswith(EVALUATED) and old.get(k, ABSENT) == new.get(k, ABSENT) == ABSENT]
    if missing and len(missing) == len(keys):
        return "the masks or labels it would score with, none of them there, are other files since it was made"
    keys = worth_telling(keys, old, new)
    resaved, keys = tags_counted_otherwise(keys, old, new)
    added, went, unread = file_changes(keys, old, new)
    told = set(added + went + unread)
    return changes_said(resaved + [k for k in keys if k not in told], added, went, unread)


def worth_telling(keys, old, new):
    """The changed keys less those that tell nothing of their own: a file absent then and now (the mask of a row
    added without one), neither added nor changed, unless every key is one; the work size of a photo changed, which
    comes with it."""
    nowhere = {k for k in keys if old.get(k, ABSENT) == new.get(k, ABSENT) == ABSENT}   # (a list: quadratic)
    keys = [k for k in keys if k not in nowhere] if len(nowhere) < len(keys) else keys
    named = set(keys)
    return [k for k in keys if not k.startswith(IMAGE_WORK_SIZE) or k[len(IMAGE_WORK_SIZE):] not in named]


def changes_said(changed, added, went, unread):
    """'a.jpg changed, b.jpg was added, c.jpg went since it was made' of the keys changed, added, gone and no
    longer read."""
    sized = {k for k in changed if k.startswith(IMAGE_WORK_SIZE)}
    if len(sized) > 1:   # (max_image_side set lower: every image over it)
        changed = [k for k in changed if k not in sized] + [f"the {WORK_SIZE}{len(sized)} images"]
    parts = [f"{describe(changed)} changed"] if changed else []
    if added:
        parts.append(f"{describe(added)} {'was' if len(added) == 1 else 'were'} added")
    if went:
        parts.append(f"{describe(went)} went")
    if unread:
        parts.append(f"{describe(unread)} {'is' if len(unread) == 1 else 'are'} no longer read")
    return (", ".join(parts) or "its inputs are counted otherwise") + " since it was made"


def tags_counted_otherwise(keys, old, new):
    """(the tags CSVs that changed, the other keys) of the changed keys, where an earlier version counted a tags CSV
    otherwise than this one (by its bytes, or by its rows where this one counts it by its images, its classes or as
    a file scored with): changed only where it says other things now, as it was counted then."""
    paths = {csv_of(k) for k in keys} - {None}
    changed, told = [], set()
    for path in sorted(paths):
        forms = [prefix + path for prefix in (TAG_ROWS, "", EVALUATED + TAG_ROWS, TAG_IMAGES, TAG_CLASSES)] + \
            sorted(k for k in old.keys() | new.keys() if k.startswith(BY_SPLIT) and csv_of(k) == path)
        if [f in old for f in forms] == [f in new for f in forms] or not any(f in old for f in forms) or \
                not any(f in new for f in forms):
            continue   # counted alike, or another CSV: its keys say what changed
        told.update(forms)
        was = next(f for f in forms if f in old)   # the first recorded decides
        if old[was] != (tag_digest(was.removeprefix(EVALUATED)) or file_digest(path)):
            changed.append(path)
    return changed, [k for k in keys if k not in told]


def csv_of(key):
    """The tags CSV a manifest key counts in a TAG_DIGESTS form (or EVALUATED rows), else None."""
    key = key.removeprefix(EVALUATED)
    by_split = next((prefix for prefix in BY_SPLIT if key.startswith(prefix)), None)
    if by_split:
        return json.loads(key[len(by_split):])[3]
    return next((key[len(prefix):] for prefix in TAG_DIGESTS if key.startswith(prefix)), None)


def file_changes(keys, old, new):
    """(added, gone, no longer read) of the changed keys that are files (an upstream or setting key only changes).
    No longer read: recorded and there, such as a map of a user's folder that a version hashed with the others, or
    recorded absent, such as the mask of a row removed. Added: recorded absent or not at all."""
    files = [k for k in keys if not k.startswith((UPSTREAM, WORK_SIZE))]
    unread = [k for k in files if k in old and k not in new and (Path(key_name(k)).is_file() or old[k] == ABSENT)]
    read = set(files) - set(unread)
    files = [k for k in files if k in read]
    added = [k for k in files if old.get(k, ABSENT) == ABSENT]
    went = [k for k in files if old.get(k, ABSENT) != ABSENT and new.get(k, ABSENT) == ABSENT]
    return added, went, unread


def images_come_or_go(keys, old, new, own=lambda key: False):
    """The files added, gone, no longer read or edited where the manifest keys that changed between a recorded
    manifest `old` and today's `new` only say which images the splits hold and which of them are other files now
    (image files added, gone, no longer read, or edited where own(key): that file is one image's own, its output
    is there under its id; the work size of an image (IMAGE_WORK_SIZE); the tags CSV counted by its images
    (TAG_IMAGES, TAG_SPLIT_IMAGES); files only scored with), else None. Every other image's per-image output is then
    what it was (its file, its upstream outputs and its settings are): a row added, or a photo edited, keeps the other
    images' saliency maps."""
    old = renamed_upstream(old, pipeline.FORMER_NAMES)
    keys = rekeyed_work_sizes(keys, old, new)
    rest = [k for k in keys if not k.startswith((EVALUATED, TAG_IMAGES, TAG_SPLIT_IMAGES))]
    if not keys or any(csv_of(k) for k in rest):   # the tags CSV counted otherwise (its rows, its classes)
        return None
    files = [k for changed in file_changes(rest, old, new) for k in changed]
    named = set(files)   # (thousands of photos added: a list made it quadratic)
    edited = [k for k in rest if k not in named and not k.startswith((UPSTREAM, WORK_SIZE)) and
              old.get(k, ABSENT) != ABSENT != new.get(k, ABSENT) and own(k)]   # (a file edited in place)
    sized = [k for k in rest if k.startswith(IMAGE_WORK_SIZE)]   # (its stem is the image's id too)
    return files + edited + sized if set(rest) <= set(files + edited + sized) else None


def staleness(folder, digests, checked=None):
    """None when a finished stage folder's outputs are still what its recorded inputs make, else why not: a
    recorded file changed (files it only evaluates with do not count), an upstream output it read changed, or one
    is itself stale (stale_upstream: remade_in_order says which to remake first). `checked` memoizes folders."""
    checked = {} if checked is None else checked
    folder = Path(folder)
    if folder in checked:
        return checked[folder]
    checked[folder] = None   # (a cycle of folders, which no stage makes, ends here)
    record, done = recorded(folder), finished_fingerprint(folder)
    if record is None or done is None or record.get("fingerprint") != done:
        why = "no record of the inputs it was made from (made by an older version)"
    else:
        files = {k: v for k, v in record["inputs"].items() if not k.startswith((UPSTREAM, EVALUATED, WORK_SIZE))}
        changed = changes(files, digests.manifest(files))
        for stage, path in still_there(record.get("upstream", {})).items():
            given = record["inputs"].get(UPSTREAM + stage + SETTINGS)  # a folder given: retrained in place?
            if upstream_made(path, stage, record) != record["inputs"].get(UPSTREAM + stage) and \
                    not bytes_as_recorded(stage, path, record) or (given and settings_digest(path) != given):
                changed.append(UPSTREAM + pipeline.current_name(stage))
        changed += [UPSTREAM + stage for stage in remade(record) if UPSTREAM + stage not in changed]
        stale = [(stage, path) for stage, path in stale_upstream(record, digests, checked)
                 if UPSTREAM + stage not in changed]
        why = f"{describe(changed)} changed since it was made" if changed else stale_inputs(stale) if stale else \
            damage(folder)
    checked[folder] = why
    return why


def still_there(upstream):
    """The recorded upstream folders ({stage: folder}) that are still there: those of a run folder moved since
    (their paths the former ones) cannot be compared, and the folder's fingerprint was current when it was made."""
    return {stage: path for stage, path in upstream.items() if Path(path).is_dir()}


def stale_inputs(stale):
    """'the seed_heatmaps output it reads, <folder>, is itself out of date' of [(stage, folder)]."""
    if len(stale) == 1:
        return f"the {stale[0][0]} output it reads, {stale[0][1]}, is itself out of date"
    return f"the {listed([s for s, _ in stale])} outputs it reads ({', '.join(str(f) for _, f in stale)}) are " \
        "themselves out of date"


def stale_upstream(record, digests, checked):
    """[(stage, folder)] of the upstream folders of a recorded manifest that are themselves out of date."""
    upstream = still_there(record.get("upstream", {}))
    return [(pipeline.current_name(stage), Path(path)) for stage, path in upstream.items()
            if staleness(path, digests, checked)]


def remade_in_order(stage, folder, digests, checked=None):
    """[(stage, folder)] of a stale folder and of the stale folders upstream of it, in the order that remakes them
    (each after those it reads)."""
    order, seen = [], set()

    def visit(stage, folder):
        if folder in seen:
            return
        seen.add(folder)
        for parent in stale_upstream(recorded(folder) or {}, digests, checked):
            visit(*parent)
        order.append((stage, folder))
    visit(stage, Path(folder))
    return order


def has_outputs(folder):
    """Whether a stage folder holds anything besides its bookkeeping (finished or not; a DONE alone counts: it
    records outputs that went) and temp files: another fragment's config.yaml being written is not an output."""
    return folder.is_dir() and any(p.name not in BOOKKEEPING and not fnmatch(p.name, TEMPORARY)
                                   for p in folder.iterdir())
