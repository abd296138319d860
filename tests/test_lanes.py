"""./script.py on lanes (lanes.py): which steps run together, what a lane's failure, a Ctrl-C, a SIGTERM or the
driver's death do to the others, and that lanes change no output."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from guidedlabelling import driver, lanes
from guidedlabelling.store import ENV as STORE_ENV

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ["seed_train", "seed_heatmaps", "seed_eval_heatmaps", "seed_eval", "cls_eval"]
SALIENCY = ["saliency_train", "saliency"]
METHOD = ["guide_labels", "seg_train", "segmentations"]
REFERENCE = ["reference_train", "reference_segmentations"]
ORDER = SEEDS[:5] + SALIENCY + METHOD[:2] + REFERENCE[:1] + METHOD[2:] + REFERENCE[1:]  # the driver's order

# A stand-in for a lane's process (the driver on --steps): each step sleeps, and may fail, as FAKE_PLAN says;
# it logs its start, end and any SIGTERM to FAKE_LOG, and reports its seconds as the driver does.
FAKE_LANE = textwrap.dedent("""
    import json, os, signal, sys, time
    args = sys.argv[1:]
    steps = args[args.index("--steps") + 1].split(",")
    log, plan = os.environ["FAKE_LOG"], json.loads(os.environ["FAKE_PLAN"])
    def note(what):
        with open(log, "a") as f:
            f.write(f"{what} {','.join(steps)} {time.monotonic()}\\n")
    def on_signal(signum, frame):  # a lane's command saves a snapshot, which takes a while
        note(signal.Signals(signum).name)
        time.sleep(float(os.environ.get("FAKE_STOP_S", "0")))
        note("stopped")
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from guidedlabelling import lanes
    lanes.follow_parent()
    lane = os.getpid()
    if os.environ.get("FAKE_WORKER") and os.fork() == 0:  # a worker of the lane, deaf to SIGTERM as a data loader's
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with open(log, "a") as f:
            f.write(f"worker {','.join(steps)} {os.getpid()}\\n")
        while os.getppid() == lane:  # it ends with the lane
            time.sleep(0.05)
        os._exit(0)
    note("start")
    with open(log, "a") as f:
        f.write(f"pid {','.join(steps)} {os.getpid()}\\n")
    for step in steps:
        # in slices, as a lane's main thread returns to Python between operations: a signal taken as Linux restarts
        # a sleep that a stop interrupted (Ctrl-Z, then fg or kill) lets it run on, and Python's handler waits
        until = time.monotonic() + plan[step][0]
        while (left := until - time.monotonic()) > 0:
            time.sleep(min(left, 0.25))
        if plan[step][1]:
            print(f"error: {step} failed", file=sys.stderr)
            sys.exit(plan[step][1])
    note("end")
    print(lanes.REPORT + json.dumps({step: plan[step][0] for step in steps}))
""")


def demo_needs():
    args = driver.parse(["--config", "demo"])
    steps, _ = driver.planned_steps(args, driver.settings(args))
    return driver.needed_steps(args, [], steps)


def test_steps_need_what_they_read():
    needs = demo_needs()
    assert needs["seed_eval"] == {"seed_train", "seed_eval_heatmaps"}
    assert needs["guide_labels"] == {"seed_train", "seed_heatmaps", "saliency_train", "saliency"}
    assert needs["segmentations"] == {"seed_train", "seed_heatmaps", "saliency_train", "saliency", "guide_labels",
                                      "seg_train"}
    assert needs["reference_segmentations"] == {"reference_train"}
    assert needs["saliency_train"] == needs["reference_train"] == needs["seed_train"] == set()


def test_chains_of_the_demo():
    """A free lane takes the first step whose inputs are made, and the steps that read only it and what is made."""
    needs = demo_needs()
    chain = lanes.next_chain(ORDER, needs, set(), set())
    assert chain == SEEDS
    assert lanes.next_chain(ORDER, needs, set(), set(SEEDS)) == SALIENCY
    # seeds made, saliency still running: the reference, not the guide labels, which wait for the saliency maps
    assert lanes.next_chain(ORDER, needs, set(SEEDS), set(SEEDS + SALIENCY)) == REFERENCE
    assert lanes.next_chain(ORDER, needs, set(SEEDS), set(SEEDS + SALIENCY + REFERENCE)) == []
    assert lanes.next_chain(ORDER, needs, set(SEEDS + SALIENCY), set(SEEDS + SALIENCY + REFERENCE)) == METHOD


@pytest.fixture
def fake_lanes(tmp_path, monkeypatch):
    log = tmp_path / "log.txt"
    log.touch()
    monkeypatch.setattr(lanes, "CHILD", FAKE_LANE)
    monkeypatch.setenv("FAKE_LOG", str(log))

    def run(plan, order=ORDER):
        monkeypatch.setenv("FAKE_PLAN", json.dumps(plan))
        ran_here = []

        def run_here(chain):
            ran_here.append(chain)
            return dict.fromkeys(chain, -1.0)
        needs = {step: needed & set(order) for step, needed in demo_needs().items() if step in order}
        result = lanes.run_chains(order, needs, 2, [], run_here, poll_s=0.05)
        events = [line.split() for line in log.read_text().splitlines()]
        return result, {e[1]: float(e[2]) for e in events if e[0] == "start"}, \
            {e[1]: float(e[2]) for e in events if e[0] == "end"}, ran_here
    return run


def test_lanes_run_side_by_side_as_inputs_are_made(fake_lanes):
    plan = {step: [0.0, 0] for step in ORDER} | {"seed_train": [1.0, 0], "saliency_train": [2.0, 0],
                                                  "reference_train": [2.0, 0]}
    (seconds, lane_of), started, ended, ran_here = fake_lanes(plan)
    seeds, saliency, reference, method = (",".join(c) for c in (SEEDS, SALIENCY, REFERENCE, METHOD))
    assert set(started) == {seeds, saliency, reference, method} and not ran_here
    assert started[saliency] < ended[seeds]  # side by side
    assert ended[seeds] <= started[reference] < ended[saliency]  # lane 1 took the reference once the seeds were
    assert ended[saliency] <= started[method] < ended[reference]  # made; lane 2 the guide labels after the saliency
    assert lane_of == dict.fromkeys(SEEDS + REFERENCE, 1) | dict.fromkeys(SALIENCY + METHOD, 2)
    assert seconds == {step: plan[step][0] for step in ORDER}


def test_the_last_chain_runs_here_when_no_lane_is_busy(fake_lanes):
    """Without the reference's steps, the method's chain is all that is left once the saliency is made: it runs in
    the driver's process, not in a process of its own."""
    order = [step for step in ORDER if step not in REFERENCE]
    plan = {step: [0.0, 0] for step in order} | {"seed_train": [0.5, 0], "saliency_train": [1.0, 0]}
    (seconds, lane_of), started, _, ran_here = fake_lanes(plan, order)
    assert set(started) == {",".join(SEEDS), ",".join(SALIENCY)} and ran_here == [METHOD]
    assert seconds == {step: plan[step][0] for step in SEEDS + SALIENCY} | dict.fromkeys(METHOD, -1.0)
    assert lane_of == dict.fromkeys(SEEDS + METHOD, 1) | dict.fromkeys(SALIENCY, 2)


def test_a_failed_lane_stops_the_others(fake_lanes, tmp_path, capfd):
    plan = {step: [0.0, 0] for step in ORDER} | {"seed_train": [0.3, 2], "saliency_train": [60.0, 0]}
    start = time.monotonic()
    with pytest.raises(SystemExit) as e:
        fake_lanes(plan)
    assert e.value.code == 2 and time.monotonic() - start < 30
    events = [line.split()[:2] for line in (tmp_path / "log.txt").read_text().splitlines()]
    assert ["SIGTERM", ",".join(SALIENCY)] in events and ["end", ",".join(SALIENCY)] not in events
    err = capfd.readouterr().err
    assert "[1] error: seed_train failed" in err
    assert "lane 1 failed (seed_train, seed_heatmaps, seed_eval_heatmaps, seed_eval, cls_eval)" in err
    assert err.splitlines()[-1] == "error: seed_train failed"  # the lane's error line ends the command


def test_a_lane_killed_by_a_signal_ends_in_one_error_line(fake_lanes, tmp_path, capfd):
    plan = {step: [0.0, 0] for step in ORDER} | {"seed_train": [60.0, 0], "saliency_train": [60.0, 0]}
    log = tmp_path / "log.txt"

    def kill_lane_1():
        deadline = time.monotonic() + 30
        while log.read_text().count("pid") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = next(e[2] for e in map(str.split, log.read_text().splitlines()) if e[:2] == ["pid", ",".join(SEEDS)])
        os.kill(int(pid), signal.SIGKILL)
    killer = threading.Thread(target=kill_lane_1)
    killer.start()
    with pytest.raises(SystemExit) as e:
        fake_lanes(plan)
    killer.join()
    assert e.value.code == 137
    assert capfd.readouterr().err.splitlines()[-1] == (
        "error: lane 1 (seed_train, seed_heatmaps, seed_eval_heatmaps, seed_eval, cls_eval) was ended by SIGKILL "
        "(killed for memory?); rerun the same command to resume")


DRIVER = textwrap.dedent("""
    import json, os, signal, sys
    from guidedlabelling import cli, lanes
    from test_lanes import FAKE_LANE, ORDER, demo_needs
    lanes.CHILD = FAKE_LANE
    signal.signal(signal.SIGINT, cli.interrupt)               # as cli.run sets them: a test run in the background
    signal.signal(signal.SIGTERM, cli.terminate)               # (`pytest &`) would pass on SIGINT ignored
    try:
        lanes.run_chains(ORDER, demo_needs(), 2, [], lambda chain: {}, poll_s=0.05)
    except KeyboardInterrupt as e:
        sys.exit(143 if isinstance(e, cli.Terminated) else 130)
""")


@pytest.mark.parametrize("signals, code, passed_on", [((signal.SIGTERM,), 143, "SIGTERM"),
                                                      ((signal.SIGINT,), 130, "SIGINT"),
                                                      ((signal.SIGINT, signal.SIGINT), 130, "SIGINT"),
                                                      ((signal.SIGKILL,), -9, "SIGTERM")])
def test_signals_reach_every_lane(tmp_path, signals, code, passed_on):
    """A SIGTERM or Ctrl-C of the driver is passed on to both lanes once, and the driver waits for them to save
    their snapshots, a second Ctrl-C included; when the driver is killed outright, each lane finds it gone and
    sends itself a SIGTERM (lanes.follow_parent)."""
    log = tmp_path / "log.txt"
    log.touch()
    plan = {step: [0.0, 0] for step in ORDER} | {"seed_train": [60.0, 0], "saliency_train": [60.0, 0]}
    env = dict(os.environ, FAKE_LOG=str(log), FAKE_PLAN=json.dumps(plan), FAKE_STOP_S="1.5",
               PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", DRIVER], cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while log.read_text().count("start") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    for signum in signals:
        proc.send_signal(signum)
        time.sleep(0.5)
    assert proc.wait(60) == code
    if signals[0] != signal.SIGKILL:
        assert log.read_text().count("stopped") == 2  # the driver ended after its lanes
    while log.read_text().count("stopped") < 2 and time.monotonic() < deadline:  # a killed driver's lanes end later
        time.sleep(0.1)
    events = [tuple(line.split()[:2]) for line in log.read_text().splitlines() if not line.startswith("pid")]
    assert set(events) == {(what, ",".join(chain)) for what in ("start", passed_on, "stopped")
                           for chain in (SEEDS, SALIENCY)}
    assert len(events) == 6  # once each


def process_state(pid):
    """The one-letter state of a process (T: stopped), from /proc; '' once it has ended."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:  # gone, or going (ESRCH)
        return ""


def wait_until(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def logged_pids(log, what):
    return [int(e[2]) for e in map(str.split, log.read_text().splitlines()) if e[0] == what]


def ours(pid):
    """Whether a pid is still one of this test's lanes or their workers (not a pid used again since)."""
    try:
        return b"--lane" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
@pytest.mark.parametrize("then, code, lanes_end", [((signal.SIGCONT,), 0, "end"),                 # fg
                                                   ((signal.SIGTERM, signal.SIGCONT), 143, "SIGTERM"),  # kill %1
                                                   ((signal.SIGKILL,), -9, "SIGTERM")])          # kill -9 %1
def test_ctrl_z_stops_the_lanes_with_the_driver(tmp_path, then, code, lanes_end):
    """SIGTSTP to the driver stops both lanes (sessions of their own, which the terminal's Ctrl-Z does not reach),
    with their workers, then the driver. fg continues them all, and the run ends as it would have; a kill of the
    stopped job (SIGTERM and SIGCONT, as the shell sends them) passes the SIGTERM on to lanes that can answer it; a
    SIGKILL of the stopped driver continues its lanes, which end as a killed driver's do, on a SIGTERM. No worker
    is left stopped."""
    log = tmp_path / "log.txt"
    log.touch()
    busy = 6.0 if lanes_end == "end" else 60.0  # a killed job's lanes are still at work when continued
    plan = {step: [0.0, 0] for step in ORDER} | {"seed_train": [busy, 0], "saliency_train": [busy, 0]}
    env = dict(os.environ, FAKE_LOG=str(log), FAKE_PLAN=json.dumps(plan), FAKE_WORKER="1",
               PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", DRIVER], cwd=ROOT, env=env)
    try:
        assert wait_until(lambda: len(logged_pids(log, "pid")) == len(logged_pids(log, "worker")) == 2, 60)
        pids, workers = logged_pids(log, "pid"), logged_pids(log, "worker")
        proc.send_signal(signal.SIGTSTP)
        _, status = os.waitpid(proc.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        # a signal takes effect once its process next enters the kernel
        assert wait_until(lambda: {process_state(pid) for pid in pids + workers} == {"T"}, 5)
        time.sleep(2)
        assert {process_state(pid) for pid in pids + workers} == {"T"} and log.read_text().count("end") == 0
        for signum in then:
            proc.send_signal(signum)
        assert proc.wait(60 if lanes_end == "end" else 20) == code  # a lane answers at once, not after its 60 s step
        if lanes_end == "end":  # every lane ended its chain: three or four, as the two busy ones end in either order
            chains = {what: [e[1] for e in map(str.split, log.read_text().splitlines()) if e[0] == what]
                      for what in ("start", "end")}
            assert sorted(chains["end"]) == sorted(chains["start"]) and {",".join(SEEDS), ",".join(SALIENCY)} <= \
                set(chains["end"]) and len(chains["end"]) >= 3
        else:
            assert wait_until(lambda: log.read_text().count("SIGTERM") == 2, 30)
            assert wait_until(lambda: log.read_text().count("stopped") == 2, 30)
        assert "T" not in {process_state(pid) for pid in workers}
    finally:  # nothing left behind, stopped or not, by a failed assertion or by the workers of the fake lanes
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
            os.kill(proc.pid, signal.SIGCONT)
        proc.wait()
        for pid in (p for what in ("pid", "worker") for p in logged_pids(log, what)):
            if ours(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_global_setting_that_makes_two_steps_one_folder_orders_them():
    """With --set labels=gt, seg_train and reference_train write one folder: the second waits for the first (then
    finds it up to date) instead of training into it at the same time."""
    args = driver.parse(["--config", "demo", "--set", "labels=gt"])
    steps, _ = driver.planned_steps(args, driver.settings(args))
    needs = driver.needed_steps(args, driver.settings(args), steps)
    assert needs["reference_train"] == {"seg_train"} and needs["seg_train"] == set()
    assert needs["reference_segmentations"] == {"reference_train", "segmentations"}
    assert lanes.next_chain(ORDER, needs, set(), {"seed_train", "saliency_train"}) == [
        "seg_train", "reference_train", "segmentations", "reference_segmentations"]


def run_smoke(out, *settings):
    env = dict(os.environ, **{STORE_ENV: str(out / "store")})
    proc = subprocess.run([sys.executable, str(ROOT / "script.py"), "--config", "smoke", "--out_root", str(out),
                           *[a for s in settings for a in ("--set", s)]],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_lanes_write_what_one_lane_writes_on_as_many_threads(tmp_path):
    """Two lanes on one thread each, and one lane on one thread: the same label PNGs and the same table. A rerun is
    up to date without starting a lane."""
    on_lanes = run_smoke(tmp_path / "lanes", "lanes=2", "threads=1")
    run_smoke(tmp_path / "one", "threads=1")
    assert "==> lane 1: seed_train," in on_lanes and "==> lane 2: saliency_train, saliency" in on_lanes
    assert "[2] ==> saliency_train:" in on_lanes
    for folder in ("saliency/default", "guide_labels/default", "segmentations/default", "segmentations/labels-gt"):
        ours, theirs = (sorted((tmp_path / run / "smoke" / folder).glob("*.png")) for run in ("lanes", "one"))
        assert len(ours) >= 10 and [p.name for p in ours] == [p.name for p in theirs]
        assert all(a.read_bytes() == b.read_bytes() for a, b in zip(ours, theirs)), folder
    summaries = [json.loads((tmp_path / run / "smoke" / "summary.json").read_text()) for run in ("lanes", "one")]
    figures = [{k: v for k, v in s.items() if isinstance(v, float)} for s in summaries]
    assert figures[0] == figures[1] and len(figures[0]) >= 4   # the four mIoU (the ratio: None under a weak reference)
    assert list(summaries[0]["step_seconds"]) == list(summaries[1]["step_seconds"])  # every step, in driver order
    rerun = run_smoke(tmp_path / "lanes", "lanes=2", "threads=1")
    assert "==> lane" not in rerun and rerun.count("up to date in") == 12


def test_a_fragment_runs_its_steps_on_a_lanes_threads(monkeypatch):
    """A fragment of a run on lanes (--n/--N) takes one lane, and runs its steps on a lane's share of the cores as
    the whole run does (it ran them on every core: other float sums, so other maps than the whole run's)."""
    monkeypatch.setattr(lanes, "cores", lambda: 4)
    monkeypatch.setattr(lanes, "run_chains", lambda *a, **k: pytest.fail("a fragment started lanes"))
    seen = []
    monkeypatch.setattr(driver, "run_in_order", lambda args, overrides, *rest: seen.append(overrides) or {})
    args = driver.parse(["--config", "demo", "--set", "lanes=2", "--set", "n=1", "--set", "N=2"])
    driver.run_steps(args, driver.settings(args), [("saliency", "saliency", ())], {})
    assert seen == [driver.settings(args) + ["threads=2"]]


def test_only_the_steps_asked_for_are_said_to_be_skipped(monkeypatch, tmp_path, capsys):
    """--steps seed_train on data without masks said '==> reference_train: skipped, ...' of steps it was not
    asked for, where it ran on lanes (one after the other, it did not)."""
    monkeypatch.setattr(lanes, "cores", lambda: 2)
    monkeypatch.setattr(lanes, "run_chains", lambda order, *a, **k: (dict.fromkeys(order, 1.0), {}))
    args = driver.parse(["--config", "demo", "--set", f"out_root={tmp_path}", "--steps", "seed_train,seed_eval"])
    steps, _ = driver.planned_steps(args, driver.settings(args))
    skip = {"seed_eval": "no ground-truth masks", "reference_train": "no ground-truth masks"}
    driver.run_steps(args, driver.settings(args), steps, skip)
    out = capsys.readouterr().out
    assert "==> seed_eval: skipped, no ground-truth masks" in out and "reference_train" not in out
