"""The benchmark scripts: bench.py --training gives a figure for every network a preset trains and every option
asked for; bad input to any script ends in one line `error: ...` and exit code 2, before any slow setup."""
import re
import runpy
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from guidedlabelling import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def script(capsys):
    """script(name, *argv) -> (exit code, stderr) of benchmarks/<name>.py run in this process as its `__main__`
    block runs it."""
    def run(name, *argv):
        old_argv, sys.argv = sys.argv, [name, *map(str, argv)]
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, *cli.ENDING)}  # cli.run's ending ignores
        try:                                                                                # them
            runpy.run_path(str(ROOT / "benchmarks" / f"{name}.py"), run_name="__main__")
            code = 0
        except SystemExit as e:
            code = e.code
        finally:
            sys.argv = old_argv
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        return code, capsys.readouterr().err
    return run


@pytest.mark.parametrize("argv, error", [
    (["--training", "--presets", "nope"], "nope: config not found; use a file in configs/ (demo, demo_vgg, msrc, "
                                          "smoke, voc12_paper)"),
    (["--training", "--presets", "smoke", "--options", "base,nope"], "argument --options: base,nope: nope: no such "
     "option; choose among base, 1-thread, channels_last, compile, channels_last+compile, frozen-backward, bf16, "
     "bf16+channels_last; see bench.py -h"),
    (["--width", "0"], "argument --width: 0: must be above 0; see bench.py -h"),
    (["--batch", "0"], "argument --batch: 0: must be at least 1; see bench.py -h"),
    (["--size", "0"], "argument --size: 0: must be at least 16; see bench.py -h"),
])
def test_bench_refuses_bad_input_in_one_line(script, argv, error):
    assert script("bench", *argv) == (2, f"error: {error}\n")


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


@pytest.mark.parametrize("flag", ["--repeats", "--rounds", "--batch"])
def test_bench_crf_refuses_an_impossible_count(script, flag):
    error = f"error: argument {flag}: 0: must be at least 1; see bench_crf.py -h\n"
    assert script("bench_crf", flag, "0") == (2, error)
