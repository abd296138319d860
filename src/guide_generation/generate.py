#!/usr/bin/env python3
"""Guide labels: seeds and saliency fused by rule G2 (spec section 4)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # bootstrap: the library lives in src/
from guidedlabelling.inference import guide_generation  # noqa: E402
from guidedlabelling.runner import run_stage  # noqa: E402

if __name__ == "__main__":
    def dirs(p):
        p.add_argument("--seed_dir", help="folder of <id>.mat seed heatmaps (default: the seed test output)")
        p.add_argument("--saliency_dir", help="folder of <id>.png saliency maps (default: the saliency output)")
    run_stage("guide", __doc__, lambda s: guide_generation(s, s.args.seed_dir, s.args.saliency_dir), extra_args=dirs)
