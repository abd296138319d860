"""Predicting on new images: a trained segmenter (model.pth of src/segmentation/train.py) on image files.

For each image <id>: <out_dir>/<id>.png, the class per pixel as an index PNG in the VOC colours (as
seg_test writes), and <out_dir>/overlay/<id>.png, the image with every non-background pixel blended
with its class colour. Both are written atomically; images that do not decode are skipped and listed.
"""
from pathlib import Path

import numpy as np
from PIL import Image

from .datasets import ImageFiles
from .inference import forward_all, geometry, label_map, load_model, pick_device, trained
from .io import InputError, atomic_path, save_label_png
from .visualize import colour


def overlay(image, label, alpha=0.5):
    """The image with each non-background pixel mixed with its class colour: (1 - alpha) image + alpha colour."""
    mixed = np.round((1 - alpha) * image.astype(np.float32) + alpha * colour(label).astype(np.float32))
    return np.where(label[..., None] > 0, mixed.astype(np.uint8), image)


def model_file(path):
    """A model.pth, or a segmentation training folder holding one."""
    path = Path(path)
    return trained(path) if path.is_dir() else path


def predict(model_path, inputs, out_dir, size, resize="none", pcrf="none", device="cpu", alpha=0.5, net_size=321,
            crf_backend="torch"):
    """Label PNGs and overlays of every image in `inputs` (files or folders); returns a summary dict.

    Geometry as seg_test (its test_resize, test_size and the training input_size net_size): 'none' pads
    images to a `size` canvas (fitting larger ones into it) that is resized to net_size, 'fullscale' pads
    without the resize, 'tight'
    fits every image into size x size.
    """
    if pcrf not in ("none", "deeplab"):
        raise InputError(f"--pcrf {pcrf}: none or deeplab")
    images = ImageFiles(inputs)
    model, meta = load_model(model_file(model_path), "segmentation")
    out_dir = Path(out_dir)
    for i, scores, frame in forward_all(model, images, range(len(images)), size, geometry(resize), pick_device(device),
                                        4, net_size=net_size):
        image = images.image(i)
        label = label_map(scores, image, size, frame, pcrf, crf_backend)
        save_label_png(out_dir / f"{images.items[i].id}.png", label)
        with atomic_path(out_dir / "overlay" / f"{images.items[i].id}.png") as tmp:
            Image.fromarray(overlay(image, label, alpha)).save(tmp, format="PNG")
    return {"images": len(images), "classes": list(meta["classes"]), "out_dir": str(out_dir),
            "skipped_images": images.skipped}
