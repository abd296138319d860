"""benchmarks/bench.py --training: a figure for every network a preset trains and every option asked for."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_training_figures_of_every_network_and_option():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/bench.py"), "--training", "--presets", "smoke",
                           "--options", "base,channels_last,frozen-backward", "--steps", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    networks = re.findall(r"^smoke (\w+): .*samples (\d+) ms/batch$", proc.stdout, re.M)
    assert [n for n, _ in networks] == ["seed_train", "saliency_train", "seg_train"]
    rows = re.findall(r"^  (\S+) +([\d.]+) it/s +([\d.]+) GFLOP/step +([\d.]+)% of peak", proc.stdout, re.M)
    assert [r[0] for r in rows] == ["base", "channels_last", "frozen-backward"] * 3
    assert all(float(rate) > 0 and float(gflop) > 0 for _, rate, gflop, _ in rows)
