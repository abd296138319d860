"""--vis: one PNG panel per image (the release showed interactive windows instead)."""
import numpy as np
from PIL import Image

from .io import atomic_path, voc_palette

PALETTE = np.array(voc_palette(), np.uint8).reshape(256, 3)


def colour(label):
    return PALETTE[label]


def grey(values):
    return np.repeat(np.asarray(values, np.uint8)[..., None], 3, axis=2)


def save_panel(path, tiles):
    """Tiles (HxWx3 uint8, same size) side by side with a 2-px white gap."""
    gap = np.full((tiles[0].shape[0], 2, 3), 255, np.uint8)
    row = np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1)
    with atomic_path(path) as tmp:
        Image.fromarray(row).save(tmp, format="PNG")
