#!/usr/bin/env python3
"""Segment new images with a trained segmenter: a label PNG (VOC colours) and a colour overlay per image.

  ./src/predict.py --model data/runs/demo/seg_train/default/model.pth --out_dir preds photos/ extra.jpg

Writes <out_dir>/<name>.png and <out_dir>/overlay/<name>.png; -h says where each setting's default comes from.
"""
from guidedlabelling.cli import run

if __name__ == "__main__":
    run("guidedlabelling.prediction")
