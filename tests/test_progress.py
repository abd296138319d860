"""Stage-loop progress: plain lines with count, rate and ETA when stderr is not a terminal; a bar on one."""
import io

from tqdm import tqdm

from guidedlabelling.progress import progress


class Clock:
    """A fake monotonic clock: each call returns the next of the given times."""

    def __init__(self, times):
        self.times = iter(times)

    def __call__(self):
        return next(self.times)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run(items, clock_times, **kwargs):
    out = io.StringIO()
    seen = list(progress(items, "heatmaps", stream=out, clock=Clock(clock_times), **kwargs))
    return seen, out.getvalue().splitlines()


def test_a_line_every_tenth_with_rate_and_eta():
    # 20 items of 2 s each: a line every 2 items; after item n, 2n s elapsed, 0.5 it/s, (20 - n) * 2 s left
    seen, lines = run(range(20), [0.0] + [2.0 * k for k in range(1, 21)], min_s=0)
    assert seen == list(range(20))
    assert lines[0] == "heatmaps: 2/20 (10%), 0.5 it/s, elapsed 00:04, ETA 00:36"
    assert lines[4] == "heatmaps: 10/20 (50%), 0.5 it/s, elapsed 00:20, ETA 00:20"
    assert lines[-1] == "heatmaps: 20/20 (100%), 0.5 it/s, elapsed 00:40, ETA 00:00"
    assert len(lines) == 10


def test_a_tenth_sooner_than_5_seconds_after_the_last_line_is_not_said():
    """A lane's per-image stage of 1.5 s printed ten lines; now a tenth is said 5 s or more after the previous line,
    and the last item always. 20 items of 2 s: lines after items 4, 8, 12, 16 and 20 (each tenth is 4 s)."""
    _, lines = run(range(20), [0.0] + [2.0 * k for k in range(1, 21)])
    assert [line.split(":")[1].split()[0] for line in lines] == ["4/20", "8/20", "12/20", "16/20", "20/20"]
    _, lines = run(range(10), [0.0] + [0.1 * k for k in range(1, 11)])
    assert lines == ["heatmaps: 10/10 (100%), 10 it/s, elapsed 00:01, ETA 00:00"]


def test_slow_items_report_every_30_seconds_between_tenths():
    # 3 items of 40 s with a line only at the end by count: the 30-s rule adds the first two
    _, lines = run(["a", "b", "c"], [0.0, 40.0, 80.0, 120.0], every_frac=1.0)
    assert lines == ["heatmaps: 1/3 (33%), 0.025 it/s, elapsed 00:40, ETA 01:20",
                     "heatmaps: 2/3 (67%), 0.025 it/s, elapsed 01:20, ETA 00:40",
                     "heatmaps: 3/3 (100%), 0.025 it/s, elapsed 02:00, ETA 00:00"]


def test_resumed_loop_counts_from_initial_and_rates_this_run():
    # iterations 6..10 of 10 after a resume, 1 s each: counts 6..10, rate over the 5 done here
    _, lines = run(range(5), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], total=10, initial=5, min_s=0)
    assert lines == [f"heatmaps: {n}/10 ({10 * n}%), 1 it/s, elapsed 00:0{n - 5}, ETA 00:{10 - n:02d}"
                     for n in range(6, 11)]


def test_a_delayed_loop_says_nothing_before_its_delay():
    """The image checks: mostly kept or quick, nothing said; 3000 photos checked for 15 s said nothing either."""
    _, lines = run(range(10), [0.0] + [0.5 * k for k in range(1, 11)], delay=10, min_s=0)
    assert lines == []
    _, lines = run(range(10), [0.0] + [3.0 * k for k in range(1, 11)], delay=10, min_s=0)
    assert [line.split(":")[1].split()[0] for line in lines] == ["4/10", "5/10", "6/10", "7/10", "8/10", "9/10",
                                                                  "10/10"]


def test_terminal_gets_a_tqdm_bar_and_other_ranks_nothing(monkeypatch):
    bar = progress([1, 2], "train", stream=Terminal())
    assert isinstance(bar, tqdm) and bar.total == 2 and list(bar) == [1, 2]
    monkeypatch.setenv("RANK", "1")
    items = [1, 2]
    assert progress(items, "train", stream=Terminal()) is items


def test_a_training_of_days_is_said_once_with_what_shortens_it():
    """8000 iterations at 0.05 it/s: 7999 / 0.05 s = 44.4 hours; 0.01 it/s: 9.3 days; 6 hours or less: nothing."""
    import torch
    from guidedlabelling.training import long_run_line
    line = long_run_line("seed_train", 0.05, 7999, torch.device("cpu"))
    assert line.startswith("seed_train: 0.05 iterations/s on cpu, so its 7999 remaining iterations take about "
                           "44 hours; a GPU (--device cuda)") and "Ctrl-C stops it with a snapshot" in line
    assert "about 9.3 days; more GPUs (torchrun)" in long_run_line("x", 0.01, 7999, torch.device("cuda"))
    assert long_run_line("x", 1.0, 6 * 3600 - 1, torch.device("cpu")) is None
    assert long_run_line("x", None, 10, torch.device("cpu")) is None


def test_a_training_projected_past_the_limit_says_so_in_its_log(own, command, monkeypatch):
    """The tiny training, with the limit lowered to 0 s: one warning line, after the third iteration, in the
    command's output and its log; with the limit kept, none."""
    from conftest import own_args
    from guidedlabelling import training
    args = ["--out_root", own["out_root"], "--set", "seed_train.max_iter=5"] + own_args(own)
    code, out, _ = command("seed_train", *args)
    assert code == 0 and "remaining iterations take about" not in out
    monkeypatch.setattr(training, "LONG_RUN_S", 0)
    code, out, _ = command("seed_train", *args, "--set", "seed_train.max_iter=6")
    lines = [line for line in out.splitlines() if "remaining iterations take about" in line]
    assert code == 0 and len(lines) == 1 and "its 3 remaining iterations take about 0 hours" in lines[0]
    log = next(own["out_root"].glob("*/seed_train/*max_iter-6/log.txt")).read_text()
    assert lines[0] in log.splitlines()
