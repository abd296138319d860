"""--vis: one captioned PNG panel per image with every stage output that exists for it (image, seeds,
saliency, guide labels, prediction, ground truth); the release showed interactive windows instead."""
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .io import VOC_PALETTE, atomic_path, load_gray_png, load_heatmap_mat, load_label_png
from .pipeline import BY_NAME

PALETTE = np.array(VOC_PALETTE, np.uint8).reshape(256, 3)
STAGE_FILES = (("seeds", "seed_heatmaps"), ("saliency", "saliency"), ("guide labels", "guide_labels"),
               ("prediction", "segmentations"))  # (caption, stage): its files' suffix is the stage table's
MIN_TILE_HEIGHT = 160  # small images are enlarged (nearest neighbour, whole factors) to at least this
MAX_TILE_WIDTH = 1024  # ... but no wider than this (the presets' max_image_side): an 800x3 strip made panels
# 129608 px wide, which the report embeds
CAPTION_HEIGHT, GAP = 22, 4


def colour(label):
    return PALETTE[label]


def grey(values):
    return np.repeat(np.asarray(values, np.uint8)[..., None], 3, axis=2)


def stage_files(folder_of, item_id, captions=("seeds", "saliency", "guide labels", "prediction")):
    """(caption, path) of the per-image outputs of the stages for one image (folder_of(stage): the stage's
    output folder); they may not exist."""
    return [(caption, folder_of(stage) / f"{item_id}{BY_NAME[stage].per_image}")
            for caption, stage in STAGE_FILES if caption in captions]


def file_tiles(files, classes, rule):
    """(caption, RGB tile) of each (caption, path) whose file exists: heatmaps (.mat) as the seeds of `rule`
    (seeds.SeedRule), grey PNGs (saliency) in grey, label PNGs in the VOC colours."""
    return [(caption, read_tile(path, classes, rule, caption == "saliency")) for caption, path in files
            if path.exists()]


def read_tile(path, classes, rule, is_grey):
    """is_grey by the stage, not the file's mode: your own saliency maps may be RGB, 16-bit or 1-bit (read as labels,
    the report failed on them at the end of a finished run, or showed them in class colours)."""
    if path.suffix == ".mat":
        heat, _ = load_heatmap_mat(path)
        return colour(rule.labels(heat, classes))
    return grey(load_gray_png(path)) if is_grey else colour(load_label_png(path))


def panel_tiles(data, i, outputs):
    """The image, the stage outputs ((caption, tile) list), and the ground truth when the image has it."""
    truth = [("ground truth", colour(data.label(i)))] if data.annotated_at(i) else []
    return [("image", data.image(i))] + list(outputs) + truth


def panel_image(tiles, most=None):
    """Tiles (HxWx3 uint8, same size) side by side, enlarged to a readable size (MIN_TILE_HEIGHT high where that
    keeps them within MAX_TILE_WIDTH), each under its caption; with
    `most`, tiles higher than that shrunk to it (the photo with a box filter, the maps by nearest neighbour)."""
    h, w = tiles[0][1].shape[:2]
    times = max(1, min(-(-MIN_TILE_HEIGHT // h), MAX_TILE_WIDTH // w))   # enlarged by a whole factor
    th, tw = (h * times, w * times) if most is None or h <= most else (most, max(1, round(w * most / h)))
    canvas = Image.new("RGB", (len(tiles) * (tw + GAP) - GAP, CAPTION_HEIGHT + th), "white")
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default(size=14)
    for k, (caption, tile) in enumerate(tiles):
        x = k * (tw + GAP)
        draw.text((x + 2, 3), caption, fill="black", font=font)
        smooth = caption == "image" and th < h
        canvas.paste(Image.fromarray(tile).resize((tw, th), Image.BOX if smooth else Image.NEAREST),
                     (x, CAPTION_HEIGHT))
    return canvas


def save_panel(path, tiles):
    with atomic_path(path) as tmp:
        panel_image(tiles).save(tmp, format="PNG")
