#!/usr/bin/env python3
"""Segment new images with a trained segmenter: a label PNG (VOC colours) and a colour overlay per image.

  ./src/predict.py --model data/runs/demo/seg_train/default/model.pth --out_dir preds photos/ extra.jpg

Writes <out_dir>/<name>.png and <out_dir>/overlay/<name>.png. The test geometry (--size, --resize,
--input_size) defaults to the settings of --config, the preset the model was trained with.
"""
import argparse
import sys

from guidedlabelling.config import load_preset
from guidedlabelling.io import InputError
from guidedlabelling.prediction import predict


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="image files (jpg, png) and folders of images")
    p.add_argument("--model", required=True, help="model.pth of src/segmentation/train.py, or its folder")
    p.add_argument("--out_dir", required=True, help="folder for the label PNGs and overlay/")
    p.add_argument("--pcrf", choices=("none", "deeplab"), help="test-time dense CRF (default: the preset's test_pcrf)")
    p.add_argument("--config", default="demo", help="preset whose seg_test settings give --size/--resize (demo)")
    p.add_argument("--size", type=int, help="test input side (default: the preset's test_size)")
    p.add_argument("--resize", choices=("none", "fullscale", "tight"),
                   help="none: the release's, a padded canvas resized to --input_size; fullscale: the padded canvas "
                        "at full scale; tight: every image fit into --size (default: the preset's test_resize)")
    p.add_argument("--input_size", type=int, help="the network's input side for --resize none (default: the "
                                                  "preset's seg_train input_size)")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the class colour in the overlay (0.5)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--crf_backend", choices=("torch", "pydensecrf"), default="torch",
                   help="dense CRF: torch (default) or pydensecrf (the optional C++ package pydensecrf2)")
    return p.parse_args()


def main():
    args = parse()
    try:
        preset = load_preset(args.config)
        test = preset["seg_test"]
        summary = predict(args.model, args.inputs, args.out_dir, args.size or test["test_size"],
                          args.resize or test["test_resize"], args.pcrf or test["test_pcrf"], args.device, args.alpha,
                          args.input_size or preset["seg_train"]["input_size"], args.crf_backend)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"predicted {summary['images']} images ({', '.join(summary['classes'])}) into {summary['out_dir']}")
    skipped = summary["skipped_images"]
    if skipped:
        print(f"skipped {len(skipped)} unreadable images:\n" + "\n".join(f"  {p}: {why}" for p, why in skipped.items()))


if __name__ == "__main__":
    main()
