"""What the guide labels keep of each tagged class, measured without ground truth (for users with no masks).

Per class over a split: the images tagged with it; the share of its seed pixels the guide labels keep (guide label =
that class where the seed is that class); its mean guide area (share of the image, over the images tagged with it);
the share of those images that drop it (keep under `dropped_share` of its seed pixels: guide_rules.dropped); the
share of its seed cores (seed score at least `core` percent) that saliency marks; and what the rule labels most of
the cores it does not label the class (background, or a class tagged with it). These are of the rule's labels; where
options after the rule change them, the final labels' mean area of the class and the share of its seed cores they
leave void follow (final_report). Seeds spill over the background, so every class keeps well under all its seed
pixels (on MSRC 19-51%, on the built-in data 22-24%); a class the rule drops in many images is one saliency rarely
marks (on MSRC book, 10 of 22 images, and chair, 7 of 22; others 0-20%, built-in classes 0-17%). Saliency marks
8-30% of the seed cores of book, chair, boat, sign and aeroplane on MSRC train (it misses part of the first four;
aeroplane seeds spill over the sky), 36-59% of the others'.

Classes whose seeds cannot be told apart: a pair of classes whose class maps correlate at least ALIKE on the images
tagged with both (at least TOGETHER_MIN of them, and at least TOGETHER_SHARE of the images of the rarer class).
Tags alone cannot separate classes that are nearly always tagged together: on MSRC face is tagged with body in all
40 of its images, and their maps correlate 0.98 there (other pairs at most 0.61 where they occur together).
"""
import itertools

import numpy as np

from .guide_rules import after_rule, dropped
from .io import IGNORE, load_gray_png, load_heatmap_mat, load_label_png

KEPT_MOSTLY = 0.5   # a class whose seed pixels the rule keeps this share of: labelled by its seeds


def class_report(data, seed_dir, guide_dir, rule, dropped_share, sal_dir, salient_level, core):
    """{class name: {images, seed_kept, guide_area, dropped, core_salient}} over `data`'s tagged classes (background
    left out); saliency maps in sal_dir mark a pixel at `salient_level` (0-255) or more."""
    n = data.num_classes
    images, drops, area = np.zeros(n, int), np.zeros(n, int), np.zeros(n)
    seeds, kept = np.zeros(n, np.int64), np.zeros(n, np.int64)
    cores, salient_cores = np.zeros(n, np.int64), np.zeros(n, np.int64)
    together, cores_to = np.zeros((n, n), int), np.zeros((n, n + 1), np.int64)  # cores_to[c, n]: void
    for i, it in enumerate(data.items):
        classes = data.image_classes(i)
        heat, _ = load_heatmap_mat(seed_dir / f"{it.id}.mat")
        guide = load_label_png(guide_dir / f"{it.id}.png")
        seed, core_label = rule.labels_at(heat, classes, rule.seedthres, core)
        seeds += np.bincount(seed.ravel(), minlength=n)[:n]
        kept += np.bincount(seed[seed == guide].ravel(), minlength=n)[:n]
        cores += np.bincount(core_label.ravel(), minlength=n)[:n]
        given = np.where(guide == IGNORE, n, guide).astype(np.int64)
        pairs = core_label.ravel().astype(np.int64) * (n + 1) + given.ravel()   # (int64: uint8 overflows)
        cores_to += np.bincount(pairs, minlength=n * (n + 1)).reshape(n, -1)
        salient = data.at_work_size(i, load_gray_png(sal_dir / f"{it.id}.png")) >= salient_level
        salient_cores += np.bincount(core_label[salient], minlength=n)[:n]
        area[classes] += (np.bincount(guide.ravel(), minlength=n)[:n] / guide.size)[classes]
        images[classes] += 1
        together[np.ix_(classes, classes)] += 1
        drops[[c for c in classes if dropped(seed, guide, c, dropped_share)]] += 1
    return {data.classes[c]: {"images": int(images[c]), "seed_kept": fraction(kept[c], seeds[c]),
                              "guide_area": float(area[c] / images[c]), "dropped": float(drops[c] / images[c]),
                              "core_salient": fraction(salient_cores[c], cores[c]),
                              "cores_taken": taker(c, cores_to[c], together[c], data.classes)}
            for c in range(1, n) if images[c]}


def final_report(data, seed_dir, guide_dir, rule, core):
    """{class name: {final_area, cores_void}} of the final guide labels in guide_dir (those the options after the
    rule made): the class's mean area over the images tagged with it, and the share of its seed cores left void."""
    n = data.num_classes
    images, area = np.zeros(n, int), np.zeros(n)
    cores, void = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for i, it in enumerate(data.items):
        classes = data.image_classes(i)
        guide = load_label_png(guide_dir / f"{it.id}.png")
        core_label, = rule.labels_at(load_heatmap_mat(seed_dir / f"{it.id}.mat")[0], classes, core)
        cores += np.bincount(core_label.ravel(), minlength=n)[:n]
        void += np.bincount(core_label[guide == IGNORE], minlength=n)[:n]
        area[classes] += (np.bincount(guide.ravel(), minlength=n)[:n] / guide.size)[classes]
        images[classes] += 1
    return {data.classes[c]: {"final_area": float(area[c] / images[c]), "cores_void": fraction(void[c], cores[c])}
            for c in range(1, n) if images[c]}


def taker(c, given, together, classes):
    """{by, share[, tagged_together][, class]} of what the rule labels most of class c's seed cores that it does
    not label c (`given`: c's seed core pixels per label, void last): background, void, or another class with the
    number of c's images also tagged with it; under `class`, where background or void takes more, the class that
    takes most of them if it takes CLASS_TAKES of them or more. None where c has no seed cores."""
    total = given.sum()
    if not total:
        return None
    others = given.copy()
    others[c] = 0

    def by_class(k):
        return {"by": classes[k], "share": fraction(others[k], total), "tagged_together": int(together[k])}

    k = int(others.argmax())
    if 0 < k < len(classes):
        return by_class(k)
    top = {"by": classes[0] if k == 0 else "void", "share": fraction(others[k], total)}
    others[[0, len(classes)]] = 0
    k = int(others.argmax())
    return top if others[k] < CLASS_TAKES * total else top | {"class": by_class(k)}


CLASS_TAKES = 0.1   # share of a class's seed cores from which the class that takes them is named beside background


def fraction(part, whole):
    return float(part / whole) if whole else None


ALIKE = 0.9         # mean Pearson correlation of two classes' maps on the images tagged with both
TOGETHER_MIN = 5    # images tagged with both, at least, for a pair to be judged
TOGETHER_SHARE = 0.5   # ... and this share of the rarer class's images: where most images of both classes have one
# without the other, tags do tell them apart (3000 photos: 12 pairs named, tagged together in 5 of 132 images)


def alike_classes(data, seed_dir):
    """[{classes: [a, b], together, images_a, images_b, correlation}] of the pairs of classes whose maps (seed
    heatmaps) correlate at least ALIKE on average over the images tagged with both where both maps vary (at least
    TOGETHER_MIN of them), where these are at least TOGETHER_SHARE of the rarer class's images."""
    images, pairs = np.zeros(data.num_classes, int), {}
    for i, it in enumerate(data.items):
        classes = data.image_classes(i)
        images[classes] += 1
        if len(classes) < 2:
            continue
        heat, _ = load_heatmap_mat(seed_dir / f"{it.id}.mat")  # one map per tagged class, in image_classes order
        for (j, a), (k, b) in itertools.combinations(enumerate(classes), 2):
            flat = heat[j].std() == 0 or heat[k].std() == 0  # no correlation to measure
            pairs.setdefault((min(a, b), max(a, b)), []).append(
                np.nan if flat else np.corrcoef(heat[j].ravel(), heat[k].ravel())[0, 1])
    alike = []
    for (a, b), r in sorted(pairs.items()):
        measured = np.asarray(r)[np.isfinite(r)]
        often = len(r) >= TOGETHER_SHARE * min(images[a], images[b])
        if len(measured) >= TOGETHER_MIN and often and measured.mean() >= ALIKE:
            alike.append({"classes": [data.classes[a], data.classes[b]], "together": len(r),
                          "images_a": int(images[a]), "images_b": int(images[b]),
                          "correlation": float(measured.mean())})
    return alike


def alike_warnings(alike):
    """One line per pair of classes whose seeds cannot be told apart."""
    lines = []
    for r in alike:
        a, b = r["classes"]
        lines.append(f"{a} and {b}: tagged together in {r['together']} of {a}'s {r['images_a']} images and of "
                     f"{b}'s {r['images_b']}, where their class maps correlate {r['correlation']:.2f}: tags alone do "
                     f"not tell them apart, so the seeds, the guide labels and the segmenter mix them (images with "
                     f"one of them without the other would; see README, 'Your own data')")
    return lines


def dropped_often(report, share):
    """The classes the rule drops in at least `share` of their images."""
    return [name for name, r in report.items() if r["dropped"] >= share]


def median_core_salient(report):
    """The median over classes of the share of their seed cores that saliency marks (None without cores)."""
    shares = [r["core_salient"] for r in report.values() if r["core_salient"] is not None]
    return float(np.median(shares)) if shares else None


def rarely_salient(report, share):
    """The classes whose seed cores saliency marks under `share` times the median class's share (a class without
    cores is not judged). Relative, since the share also falls where seeds spill far beyond their objects, alike for
    every class of a set: on the small-object set 24-32% for all four classes, against 36-59% for most MSRC classes
    and 8-30% for the five that saliency misses in part or whose seeds spill over the sky."""
    median = median_core_salient(report)
    return [name for name, r in report.items()
            if r["core_salient"] is not None and r["core_salient"] < share * median]


def unsure_warnings(report, rarely, core, voided):
    """One line per class whose seed cores saliency rarely marks: what the rule makes of them (background, or, where
    it keeps most of its seeds, the seeds' own components: saliency may miss the class) and, with unsure void, the
    share of its cores left void."""
    median = percent(median_core_salient(report))
    return [f"{name}: saliency marks {percent(report[name]['core_salient'])} of its seed cores (seed score {core:g}% "
            f"or more; the median class {median}), " + what_the_rule_makes(report[name], voided) for name in rarely]


def what_the_rule_makes(r, voided):
    """What the rule makes of a class whose seed cores saliency rarely marks, and what unsure void did or would do."""
    void = r.get("cores_void")   # absent where the final labels were made by an earlier version
    did = "its weakly salient seed cores there are void (guide_labels.unsure void)" if void is None else \
        f"guide_labels.unsure void leaves {percent(void)} of its seed cores void (those weakly salient)"
    if r["seed_kept"] is not None and r["seed_kept"] >= KEPT_MOSTLY:
        return (f"and the rule labels it where its seeds are, salient or not (it keeps {percent(r['seed_kept'])} of "
                "its seed pixels): its guide labels are its seeds, whose spread is not checked; look at the guide "
                "panels (--set vis=true)" + (f"; {did}" if voided else ""))
    return "so the rule gives much of it to background; " + (did if voided else "--set guide_labels.unsure=void "
                                                            "leaves its weakly salient seed cores there void; see "
                                                            "README, 'Your own data'")


def warnings(report, often, rule, dropped_share, seeds_kept=False):
    """One line per class the rule drops often, with where its seed cores go and what dropped seeds does: a class
    whose seeds spill far beyond small objects that saliency outlines is dropped as well, and its seeds are then
    the wrong labels."""
    return [f"{name}: the {rule} rule drops it (keeps under {dropped_share:g}% of its seed pixels) in "
            f"{round(report[name]['dropped'] * report[name]['images'])} of its {report[name]['images']} images, and "
            f"keeps {percent(report[name]['seed_kept'])} of its seed pixels overall ({where_cores_go(report[name])}); "
            + (seeds_kept_said(report[name]) if seeds_kept else
               "--set guide_labels.dropped=seeds keeps its seeds there, unless its objects are smaller than its seeds "
               "and saliency outlines them (the guide panels, --set vis=true); see README, 'Your own data'")
            for name in often]


def seeds_kept_said(r):
    """What dropped seeds did to a class: its area then and the rule's, with the caution on spilling seeds."""
    area = f": {percent(r['final_area'])} of its images' area, the rule's {percent(r['guide_area'])}" \
        if "final_area" in r else ""   # absent where the final labels were made by an earlier version
    return f"its seeds are kept there (guide_labels.dropped seeds{area}); if its objects are smaller than that and " \
        "saliency outlines them (the guide panels, --set vis=true), its seeds spill beyond them: --set " \
        "guide_labels.dropped=none keeps the rule's labels"


def where_cores_go(r):
    """Why a class is dropped, from the label the rule gives most of its seed cores: background where saliency
    does not mark them, another class tagged in the same images where that class's seeds take the salient region
    (a tag of what surrounds objects, grass beside cows, does)."""
    if "cores_taken" not in r:  # a guide folder finished by an earlier version
        return "saliency rarely marks it"
    taken = r["cores_taken"]
    if taken is None:
        return "it has no seed cores"
    if not taken["share"]:
        return "its seed cores are kept, the seed pixels around them are not"
    if "tagged_together" in taken:
        return f"it labels {cores_of_class(taken, r['images'])}"
    said = f"it leaves {percent(taken['share'])} of its seed cores void" if taken["by"] == "void" else \
        f"it labels {percent(taken['share'])} of its seed cores background: saliency marks " \
        f"{percent(r['core_salient'])} of them"
    return said + (f"; and {cores_of_class(taken['class'], r['images'])}" if "class" in taken else "")


def cores_of_class(taken, images):
    """'45% of its seed cores sign, which is tagged in ...': the share of the cores another class takes."""
    return f"{percent(taken['share'])} of its seed cores {taken['by']}, which is tagged in " \
        f"{taken['tagged_together']} of its {images} images and takes the salient regions they share"


def percent(share):
    return "n/a" if share is None else f"{100 * share:.0f}%"


def has_final(report):
    """Whether the report holds the final labels' columns (the options after the rule made them)."""
    return any("final_area" in r for r in report.values())


def table_title(report, g):
    """The table's title; where options after the rule (of the guide_labels settings `g`) changed the labels, that
    its figures are the rule's, and the final columns (absent where an earlier version made the folder) theirs."""
    before = "; before guide_labels.dropped, unsure and unused" + (", which the final columns follow" if
                                                                     has_final(report) else "")
    return "what the rule's guide labels keep of each class (train; no ground truth needed" + \
        (before if after_rule(g) else "") + ")"


def format_report(report):
    """The per-class table as text lines; the final labels' columns where the options after the rule made them."""
    final = has_final(report)
    lines = [f"{'class':<16}{'images':>8}{'seed kept %':>13}{'guide area %':>14}{'dropped in %':>14}"
             f"{'cores salient %':>17}" + (f"{'final area %':>14}{'cores void %':>14}" if final else "")]
    for name, r in report.items():
        # .get: a guide folder finished before core_salient existed is still up to date
        kept, salient, void = (("n/a" if r.get(k) is None else f"{100 * r[k]:.1f}")
                               for k in ("seed_kept", "core_salient", "cores_void"))
        lines.append(f"{name:<16}{r['images']:>8}{kept:>13}{100 * r['guide_area']:>14.1f}{100 * r['dropped']:>14.1f}"
                     f"{salient:>17}" + (f"{100 * r['final_area']:>14.1f}{void:>14}" if final else ""))
    return lines
