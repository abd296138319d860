"""How commands end when the system, not the input, stops them: Ctrl-C during start-up, a file system that
refuses a write (full, or a file-size limit), and --debug for the traceback (cli.py)."""
import contextlib
import os
import re
import resource
import shlex
import signal
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import pytest

from conftest import ROOT, own_args, stage_folders
from guidedlabelling import cli


STARTED = []


def start(*cmd, **kwargs):
    STARTED.append(subprocess.Popen([sys.executable, *map(str, cmd)], cwd=ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, **kwargs))
    return STARTED[-1]


@pytest.fixture(autouse=True)
def no_command_left_running():
    """A command that a failed test left running (one that ignored its signal) is killed, not left to load the
    machine for the rest of the run (CI once ran on beside one that restarted workers forever)."""
    yield
    for proc in STARTED:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(proc.pid) == proc.pid:   # start_new_session: its workers too
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.kill()
            proc.communicate()
    STARTED.clear()


@pytest.mark.parametrize("sig, code, line", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
@pytest.mark.parametrize("script", ["script.py", "src/seed/train.py"])
def test_a_signal_during_start_up_is_one_line(script, own, sig, code, line):
    """SIGINT or SIGTERM 0.5 s after the start, while the command imports torch: one line, exit code 130 or 143
    (a SIGTERM then used to end the command silently)."""
    proc = start(script, *own_args(own))
    time.sleep(0.5)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == code, out + err
    assert err.strip() == f"{line}; rerun the same command to resume"
    assert not own["out_root"].exists()


def test_a_stop_with_overridecache_says_to_resume_without_it_once_it_cleared(own):
    """Rerun as it was, --overridecache would clear what the stopped training made; stopped during start-up,
    nothing was cleared, and the same command resumes (recomputes) as asked."""
    proc = start("src/seed/train.py", *own_args(own), "--overridecache")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and err.strip() == "interrupted; rerun the same command to resume", out + err
    proc = start("src/seed/train.py", *own_args(own), "--overridecache", "--set", "seed_train.max_iter=2000")
    while "iter 1/2000" not in proc.stdout.readline():
        pass
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "Traceback" not in err, out + err
    assert "interrupted: saved a snapshot at iteration" in out   # the training's own line says it
    assert out.strip().endswith("rerun the same command without --overridecache to resume")


def test_the_rerun_hint_says_what_the_rerun_does_and_to_leave_overridecache_once_it_cleared():
    from guidedlabelling.errors import LANES, OVERRIDDEN, resume_hint
    OVERRIDDEN.clear()
    try:
        assert resume_hint("write the report") == "rerun the same command to write the report"
        OVERRIDDEN.add(LANES)
        assert resume_hint("write the report") == ("rerun the same command to write the report, without "
                                                   "--overridecache where a lane's line above says so")
        OVERRIDDEN.add("seed_train")
        assert resume_hint("write the report") == "rerun the same command without --overridecache to write the report"
        assert resume_hint() == "rerun the same command without --overridecache to resume"
    finally:
        OVERRIDDEN.clear()


@pytest.mark.parametrize("sig, code, said", [(signal.SIGINT, 130, "interrupted: saved a snapshot"),
                                             (signal.SIGHUP, 143, "saved a snapshot")])
def test_a_training_stopped_under_script_py_saves_a_snapshot_and_is_no_failed_step(own, sig, code, said):
    """Ctrl-C, or the terminal closed (SIGHUP, which ended the command at once, its training since the last
    snapshot lost), during a training run by ./script.py: a snapshot, the line that says how to resume, and no
    'step ... failed' after it."""
    proc = start("script.py", *own_args(own), "--set", "lanes=1", "--set", "seed_train.max_iter=2000")
    while "iter 1/2000" not in proc.stdout.readline():
        pass
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == code and said in out, out + err
    assert "failed" not in err and "Traceback" not in err, err
    assert list((own["out_root"] / "tiny" / "seed_train").glob("*/snapshot_iter_*.pth"))
    log, = (own["out_root"] / "tiny" / "seed_train").glob("*/log.txt")   # says why the step ended unfinished
    last = log.read_text().splitlines()[-1]
    assert re.search(r"interrupted: saved a snapshot at iteration \d+; rerun the same command to resume$" if code == 130
                     else "terminated; rerun the same command to resume$", last), last
    assert "terminated; rerun" not in out   # the command's own line says it on the terminal (stderr)


def limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))  # Python ignores SIGXFSZ: writes fail EFBIG


def test_a_refused_write_names_the_file_not_torch_internals(own):
    """A checkpoint the file system refuses (here: over the process's file-size limit, as a full disk would)
    used to end in torch's 'unexpected pos' traceback."""
    proc = start("src/seed/train.py", *own_args(own), preexec_fn=limit_file_size)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, out + err
    folder = next(iter(stage_folders(own["out_root"] / "tiny" / "seed_train")), None) \
        if (own["out_root"] / "tiny" / "seed_train").exists() else None
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "snapshot_iter_1.pth: File too large; the file system, or the shell's file size limit (ulimit -f), " \
           "refuses files this large; raise the limit or choose another output folder (--out_root, --out_dir)" in err
    assert folder is None   # the fresh folder held only its bookkeeping: removed


def test_a_fragment_refused_a_write_leaves_the_folder_the_others_write(own, command):
    """Fragments (--n/--N, torchrun's per-image stages) share their folder, which the first to come makes: one that
    failed removed the folder it found missing, while another wrote its outputs there (torchrun: 'Directory not
    empty', said in place of the failure)."""
    assert command("seed_train", *own_args(own))[0] == 0
    out = own["out_root"] / "fragments"
    proc = start("src/seed/test.py", *own_args(own), "--out_dir", out, "--n", "1", "--N", "2",
                 preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024)))  # under inputs.json
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and f"{out / 'inputs.json'}: File too large" in err, err
    assert out.is_dir()   # the other fragment's, as much as this one's


def test_debug_shows_the_traceback(own):
    proc = start("src/seed/train.py", *own_args(own), "--batch_size", "0", "--debug")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "Traceback" in err
    assert "InputError: setting seed_train.batch_size = 0 (command line): must be at least 1" in err


def children(pid):
    """The pids of the processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_sigterm_during_a_step_is_one_line_and_ends_the_workers(own):
    """A plain `kill` of ./script.py while a training's data loader workers run: one line `terminated`, exit code
    143, and no worker left behind (the probe found the driver's child still running, orphaned)."""
    proc = start("script.py", *own_args(own), "--set", "workers=2", "--set", "seed_train.max_iter=400")
    deadline = time.monotonic() + 240
    while not children(proc.pid) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    workers = children(proc.pid)
    assert workers, "no worker process started"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, out + err
    assert err.strip().splitlines()[-1] == "terminated; rerun the same command to resume" and "Traceback" not in err
    time.sleep(1)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


POOL_COMMAND = """
import time
from guidedlabelling import cli
from guidedlabelling.stages.guide_labels import run_jobs

def main():
    print("started", flush=True)
    run_jobs(time.sleep, [0.1] * 600, 2)

cli.run("__main__")
"""
LOADER_COMMAND = """
import time
import numpy as np
import torch
from guidedlabelling import cli
from guidedlabelling.inference import forward_all

class SlowImages:
    def __len__(self):
        return 10 ** 5

    def image(self, i):
        time.sleep(0.05)
        return np.zeros((32, 32, 3), np.uint8)

def main():
    print("started", flush=True)
    for _ in forward_all(torch.nn.Identity(), SlowImages(), range(10 ** 5), 32, "fit", torch.device("cpu"), 1, 2):
        pass

cli.run("__main__")
"""


STARTS_COMMAND = """
import numpy as np
import torch
from guidedlabelling import cli
from guidedlabelling.inference import forward_all

class Images:
    def __len__(self):
        return 4

    def image(self, i):
        return np.zeros((8, 8, 3), np.uint8)

def main():
    print("started", flush=True)
    while True:   # worker processes started again and again: a signal mostly lands while they start
        for _ in forward_all(torch.nn.Identity(), Images(), range(4), 8, "fit", torch.device("cpu"), 1, 2):
            pass

cli.run("__main__")
"""


@pytest.mark.parametrize("delay", [1.0, 1.13, 1.26, 1.39, 1.52, 1.65])
def test_a_signal_while_workers_start_is_not_lost(delay):
    """Ctrl-C landing in the fork's callbacks was printed as ignored and lost, the command (a whole lane's chain)
    running on; held while the workers start (cli.workers_starting), it ends the command (a third of the tries
    failed before)."""
    proc = start("-c", STARTS_COMMAND)
    assert proc.stdout.readline() == "started\n"
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == "interrupted; rerun the same command to resume\n", err


TEMP_DIR_COMMAND = """
import multiprocessing.util
import os
import numpy as np
import torch
from guidedlabelling.inference import forward_all

class Images:
    def __len__(self):
        return 4

    def image(self, i):
        os.write(2, f"{multiprocessing.util.get_temp_dir()}\\n".encode())   # one write: the workers' lines whole
        return np.zeros((8, 8, 3), np.uint8)

for _ in forward_all(torch.nn.Identity(), Images(), range(4), 8, "fit", torch.device("cpu"), 1, 2):
    pass
print(multiprocessing.util.get_temp_dir())
"""


def test_data_loader_workers_share_the_commands_temp_folder_which_goes_with_it():
    """Each worker made its own multiprocessing temp folder (for the socket that hands its tensors over) and
    removed it as it ended, while its queue's thread could still be making the socket there: CI once printed
    rmtree's traceback after Ctrl-C. They use the command's, which it removes once they ended."""
    proc = start("-c", TEMP_DIR_COMMAND)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    workers = set(err.split())
    assert workers == {out.strip()} and not Path(out.strip()).exists(), (out, err)


TRAINING_TEMP_DIR_COMMAND = """
import multiprocessing.util
import os
import sys
from guidedlabelling.cli import run_stage

made = multiprocessing.util.get_temp_dir

def logged():   # each process that asks for its temp folder, and the folder
    folder = made()
    os.write(2, f"temp folder {folder}\\n".encode())
    return folder

multiprocessing.util.get_temp_dir = logged
sys.argv = ["train.py", *sys.argv[1:]]
run_stage("seed_train")
"""


def test_a_trainings_data_loader_workers_share_the_commands_temp_folder(own, tmp_path):
    """The training's workers too (the longest step: most Ctrl-Cs land there)."""
    proc = start("-c", TRAINING_TEMP_DIR_COMMAND, *own_args(own), "--workers", "2", "--out_dir", tmp_path / "model")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    folders = {line.split()[-1] for line in err.splitlines() if line.startswith("temp folder ")}
    assert len(folders) == 1, err


def test_a_signal_another_thread_takes_in_a_callback_while_workers_start_is_raised_after():
    """The case CI met: while workers start, Python's handler ran inside a weak reference's callback, where the
    KeyboardInterrupt is printed as ignored and lost. A signal mask did not keep it out: another thread of the
    command (torch's, a queue's) took the signal. Now the handler holds it, and it is raised once they started."""
    wake = threading.Event()
    other = threading.Thread(target=wake.wait)   # a thread started before, which would take the signal
    other.start()
    ran = []

    def callback(ref):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)   # the signal has been taken (by whichever thread); Python's handler runs next, in here
        ran.append("all of it")

    class Thing:
        pass
    thing = Thing()
    ref = weakref.ref(thing, callback)
    try:
        with cli.handling((signal.SIGINT,), signal.default_int_handler), pytest.raises(KeyboardInterrupt):
            with cli.workers_starting():
                del thing   # the callback runs
            ran.append("after the workers started")
    finally:
        wake.set()
        other.join()
    assert ref() is None and ran == ["all of it"]


class Thing:
    pass


@pytest.mark.parametrize("where", ["weakref.finalize", "multiprocessing's Finalize", "__del__"])
@pytest.mark.parametrize("sig, handler, raised", [(signal.SIGINT, cli.interrupt, KeyboardInterrupt),
                                                  (signal.SIGTERM, cli.terminate, cli.Terminated)])
def test_a_signal_where_python_would_ignore_its_exception_is_raised_a_moment_later(where, sig, handler, raised):
    """Ctrl-C or SIGTERM whose handler runs inside a finalizer or a __del__ (as a data loader's queues go, at any
    time): raised there, the KeyboardInterrupt was printed as ignored and the command went on. The handlers let the
    callback finish and have the signal come again."""
    import multiprocessing.util
    ran = []

    def callback():
        signal.raise_signal(sig)   # Python runs the handler at its next check: in here
        sum(range(10 ** 5))
        ran.append("all of it")

    class Deleted:
        def __del__(self):
            callback()
    thing = Deleted() if where == "__del__" else Thing()
    if where == "weakref.finalize":
        weakref.finalize(thing, callback)
    elif where == "multiprocessing's Finalize":
        multiprocessing.util.Finalize(thing, callback)
    with cli.handling((sig,), handler), cli.handling((signal.SIGALRM,), signal.getsignal(signal.SIGALRM)), \
            pytest.raises(raised):
        del thing
        ran.append("after it")
        time.sleep(5)    # the signal comes again 10 ms later
        ran.append("not reached")
    assert ran == ["all of it", "after it"] and not cli.DEFERRED


HANGS_COMMAND = """
import signal
import sys
import time
import weakref
from guidedlabelling import cli

class Thing:
    pass

def main():
    thing = Thing()
    weakref.finalize(thing, lambda: (signal.raise_signal(signal.SIGINT), time.sleep(float(sys.argv[1]))))
    del thing        # the signal lands inside the finalizer, which then takes sys.argv[1] seconds
    print("after the finalizer", flush=True)
    time.sleep(30)

cli.run("__main__")
print("went on", flush=True)
"""


@pytest.mark.parametrize("finalizer_s, code, stdout", [(0.1, 130, "after the finalizer\n"), (30, 130, "")])
def test_a_signal_put_off_comes_back_after_the_finalizer_or_ends_the_command_after_2_s(finalizer_s, code, stdout):
    """Put off while the finalizer runs: raised once it is done (the command then stops in its sleep), or, in a
    finalizer that would take 30 s, the command ends after DEFER_AT_MOST_S (2 s) with its one line."""
    began = time.monotonic()
    proc = start("-c", HANGS_COMMAND, finalizer_s)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code and out == stdout and err == "interrupted; rerun the same command to resume\n"
    assert time.monotonic() - began < 15


RETURNS_COMMAND = """
import signal
import time
import weakref
from guidedlabelling import cli

class Thing:
    pass

def main():
    thing = Thing()
    weakref.finalize(thing, signal.raise_signal, signal.SIGINT)
    del thing        # the signal lands inside the finalizer and is put off; the command then returns at once

cli.run("__main__")
time.sleep(0.5)
print("went on", flush=True)
"""


def test_a_signal_put_off_as_the_command_returns_is_not_brought_back_after_it():
    """The command had finished: the code after it (a test's, a lane's driver) is not interrupted 10 ms later."""
    proc = start("-c", RETURNS_COMMAND)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out == "went on\n" and err == ""


HALF_MADE_COMMAND = """
import signal
from guidedlabelling import cli

class HalfMade:   # as torch's StorageWeakRef: a stop inside its making leaves a __del__ that fails
    def __init__(self):
        signal.raise_signal(signal.SIGINT)
        sum(range(10 ** 5))
        self.ready = True

    def __del__(self):
        self.ready

def main():
    HalfMade()

cli.run("__main__")
"""


@pytest.mark.parametrize("debug", [False, True])
def test_what_a_stop_leaves_half_made_is_not_reported_as_ignored(debug):
    """Ctrl-C inside an object's making: its __del__ then fails as the command unwinds, and Python printed
    'Exception ignored in ... AttributeError' with a traceback after the command's one line (torch's, in CI)."""
    proc = start("-c", HALF_MADE_COMMAND, *["--debug"] * debug)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted; rerun the same command to resume\n" in err
    assert ("AttributeError" in err) == debug and (err == "interrupted; rerun the same command to resume\n") != debug


def test_workers_starting_nested_or_forked_leaves_the_command_s_handlers():
    """An inner workers_starting leaves the outer's hold in place, and the outer's end takes the command's handler
    back (the inner one had restored hold for good); a process forked meanwhile starts with the command's."""
    with cli.handling((signal.SIGINT,), signal.default_int_handler):
        with cli.workers_starting():
            with cli.workers_starting():
                pass
            assert signal.getsignal(signal.SIGINT) is cli.hold
            pid = os.fork()
            if pid == 0:
                os._exit(0 if signal.getsignal(signal.SIGINT) is signal.default_int_handler else 1)
            assert os.waitpid(pid, 0)[1] == 0
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler and not cli.STARTING


@pytest.mark.parametrize("command", [POOL_COMMAND, LOADER_COMMAND], ids=["pool", "data_loader"])
@pytest.mark.parametrize("sig, code, line", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_a_signal_to_the_process_group_during_workers_is_one_line(command, sig, code, line):
    """Ctrl-C in a terminal, or `kill` of the group, signals every process of it: the guide step's pool workers
    (run_jobs) printed lines of their own, and data loader workers killed by SIGTERM made torch print a
    traceback. Now: the command's one line and exit code, and no process of the group left."""
    proc = start("-c", command, start_new_session=True)
    assert proc.stdout.readline() == "started\n"
    time.sleep(1.5)
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code and err == f"{line}; rerun the same command to resume\n", err
    time.sleep(0.5)
    assert subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).stdout == b""


def test_a_pool_worker_killed_midway_ends_the_command_in_one_line():
    """A probe's kill -9 of a guide-label worker: multiprocessing's pool replaced it and waited for its image
    forever, deaf to Ctrl-C, and SIGTERM left the workers behind."""
    proc = start("-c", POOL_COMMAND, start_new_session=True)
    assert proc.stdout.readline() == "started\n"
    time.sleep(1.5)
    worker = int(subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()[0])
    os.kill(worker, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err == "error: a guide-label worker process ended midway (killed, or out of " \
        "memory?); rerun the same command to resume\n", err
    time.sleep(0.5)
    assert subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).stdout == b""


def test_a_training_whose_loader_worker_is_killed_saves_a_snapshot_and_ends_in_one_line(tmp_path):
    """A probe's kill -9 of a training's data-loading worker: torch's traceback, and no snapshot of the iterations
    done (the rerun trained from the start)."""
    proc = start("src/seed/train.py", "--config", "smoke", "--out_root", tmp_path, "--set", "workers=1", "--set",
                 "seed_train.max_iter=100000", "--set", "snapshot=100000", "--set", "store=none")
    deadline = time.monotonic() + 120
    while not list(tmp_path.rglob("log.txt")) or "iter 1/" not in next(tmp_path.rglob("log.txt")).read_text():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    time.sleep(1)
    worker = int(subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()[0])
    os.kill(worker, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    line = err.strip().splitlines()[-1]
    assert proc.returncode == 2 and "Traceback" not in err, err
    done = int(line.split("ended at iteration ")[1].split()[0]) - 1
    assert line.startswith("error: a data-loading worker process of this training ended at iteration ") and \
        line.endswith(f"; saved a snapshot at iteration {done}; rerun the same command to resume"), line
    assert [p.name for p in tmp_path.rglob("snapshot_iter_*.pth")] == [f"snapshot_iter_{done}.pth"]


PER_IMAGE_STEP = r"""
import os, signal, sys, time
import numpy as np, torch
from guidedlabelling.cli import run


class Images:   # 64 images, slow enough to read that the workers are still busy when one is killed
    def __len__(self):
        return 64

    def image(self, i):
        time.sleep(0.1)
        return np.full((32, 32, 3), i, np.uint8)


def main():
    from guidedlabelling.inference import forward_all
    outputs = forward_all(torch.nn.Conv2d(3, 2, 1), Images(), range(64), 32, "shrink", torch.device("cpu"),
                          batch_size=2, workers=2)
    for n, _ in enumerate(outputs):
        if n == 1:
            workers = open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read().split()
            print(len(workers), flush=True)
            os.kill(int(workers[0]), signal.SIGKILL)
            time.sleep(0.5)   # the caller's work on an output (writing it), where the worker's end is noticed


run("__main__")
"""


def test_a_per_image_step_whose_loader_worker_is_killed_ends_in_one_line_with_its_other_workers():
    """The stress test's kill -9 of a data-loading worker of the saliency maps (a lane of ./script.py --workers 2):
    torch's traceback (its SIGCHLD handler raised the worker's end wherever the command was, here in the caller's
    code between two outputs), then the command hung for good at its exit, waiting for the other worker, which
    ignores the SIGTERM multiprocessing sends it. Now one line, exit code 2, and no process left."""
    proc = start("-c", PER_IMAGE_STEP, start_new_session=True)
    out, err = proc.communicate(timeout=60)
    assert out == "2\n" and proc.returncode == 2 and "Traceback" not in err, err
    assert re.fullmatch(r"error: a data-loading worker process ended midway \(DataLoader worker \(pid.+\); "
                        r"the outputs written are kept; rerun the same command to resume\n", err), err
    time.sleep(0.5)
    assert subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).stdout == b""


def test_forward_all_with_workers_runs_in_a_thread():
    """torch's DataLoader runs its workers from any thread (its SIGCHLD handler is set from the main thread only);
    forward_all's SIGCHLD default (set with signal.signal, main thread only) made it raise 'signal only works in main
    thread' there. (A pass started in one thread and closed in another is not run: torch's inference mode, which the
    pass enters, is the thread's own, so the first thread would stay in it.)"""
    import numpy as np
    import torch
    from guidedlabelling.inference import forward_all

    class Images:
        def __len__(self):
            return 6

        def image(self, i):
            return np.full((16, 16, 3), i, np.uint8)

    def outputs():
        return forward_all(torch.nn.Conv2d(3, 2, 1), Images(), range(6), 16, "shrink", torch.device("cpu"),
                           batch_size=2, workers=1)

    done, errors = [], []

    def in_thread(work):
        def target():
            try:
                done.append(work())
            except Exception as e:   # the test's failure, said in the main thread
                errors.append(e)
        thread = threading.Thread(target=target)
        thread.start()
        thread.join(60)

    before = signal.getsignal(signal.SIGCHLD)
    in_thread(lambda: [i for i, _, _ in outputs()])
    assert not errors and done == [list(range(6))], errors
    assert signal.getsignal(signal.SIGCHLD) == before and torch.is_grad_enabled()


@pytest.mark.parametrize("error", [ConnectionResetError(104, "Connection reset by peer"), EOFError()])
def test_a_broken_connection_from_a_killed_loader_worker_is_told_as_the_worker_gone(error):
    """CI's race: a worker killed while it handed a batch over broke the connection first, so the loop ended in
    ConnectionResetError (and torch's SIGCHLD handler then raised during the clean-up), a traceback and no snapshot.
    loader_worker_gone names the worker from the connection's error, and says None while every worker lives."""
    import torch
    from guidedlabelling.training import LOADER_WORKER, loader_worker_gone
    batches = iter(torch.utils.data.DataLoader(range(1000), batch_size=2, num_workers=1))
    next(batches)
    assert loader_worker_gone(error, wait=0.3) is None
    assert loader_worker_gone(RuntimeError("CUDA out of memory")) is None
    worker = batches._workers[0].pid
    with cli.handling((signal.SIGCHLD,), signal.SIG_DFL):   # torch's handler would raise it in this test
        os.kill(worker, signal.SIGKILL)
        while Path(f"/proc/{worker}/stat").read_text().split(") ")[1][0] != "Z":
            time.sleep(0.01)
    assert str(loader_worker_gone(error)) == f"{LOADER_WORKER} {worker}) is killed by signal: Killed. "
    del batches


def test_debug_keeps_the_exit_code_of_a_termination():
    """--debug shows the traceback, and a SIGTERM still exits 143 (it used to be 130, Ctrl-C's)."""
    proc = start("-c", POOL_COMMAND, "--debug", start_new_session=True)
    assert proc.stdout.readline() == "started\n"
    time.sleep(1.5)
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" in err and "Terminated" in err
    assert err.splitlines()[-1] == "terminated; rerun the same command to resume"


EXITING_SLOWLY = """
import threading, time
from guidedlabelling import cli
def work():
    threading.Thread(target=time.sleep, args=(3,)).start()   # the interpreter waits for it as it exits
    raise KeyboardInterrupt
cli.run("__main__", "work")
"""


def test_a_second_signal_while_the_command_exits_is_not_a_traceback():
    """torchrun follows a Ctrl-C with SIGTERM to its workers; one that came while a worker exited after its Ctrl-C
    line raised there, printed as 'Exception ignored in: <module threading>' with a traceback."""
    proc = start("-c", EXITING_SLOWLY)
    assert proc.stderr.readline() == "interrupted; rerun the same command to resume\n"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == "", err


def test_out_of_memory_is_one_line_other_errors_are_not_hidden(capsys):
    from guidedlabelling.cli import errors_end_in_one_line
    message = "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to " \
              "allocate 3456000000 bytes. Error code 12 (Cannot allocate memory)"
    for error in (RuntimeError(message), MemoryError()):
        with pytest.raises(SystemExit) as stop, errors_end_in_one_line():
            raise error
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: out of memory (") and "smaller inputs" in err
    with pytest.raises(RuntimeError, match="shape mismatch"), errors_end_in_one_line():
        raise RuntimeError("shape mismatch")


def test_a_path_through_a_link_loop_is_one_line_naming_it(tmp_path, capsys):
    """Two links to each other given as --out_root, --images or predict's input: Path.resolve raises RuntimeError
    'Symlink loop from ...' on Python 3.11 (OSError on 3.13), and every command ended in a traceback (a probe)."""
    from guidedlabelling.cli import errors_end_in_one_line
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(SystemExit) as stop, errors_end_in_one_line():
        (tmp_path / "a" / "out").resolve()
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'a' / 'out'}: Too many levels of symbolic links; a link " \
                                      "on this path leads back to itself; point it at a real file or folder\n"


def test_a_file_name_of_bytes_a_strict_stdout_cannot_encode_is_printed_escaped():
    """A photo named in Latin-1 (caf\xe9.jpg, from an old camera or a zip) is a str with a surrogate: a stdout whose
    encoding is strict (LANG=en_US.UTF-8) raised UnicodeEncodeError at predict's summary, a traceback after its work
    (a probe). It is written escaped, as Python writes stderr; what encodes is written as it is."""
    import io
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    wrapped = cli.ReaderGone(stdout)
    print("  /photos/caf\udce9.jpg: cannot identify image file", file=wrapped)
    print("  /photos/猫.jpg", file=wrapped)
    assert raw.getvalue() == "  /photos/caf\\udce9.jpg: cannot identify image file\n  /photos/猫.jpg\n".encode()


def test_a_loader_worker_says_nothing_when_the_command_went_during_a_tensor_handover():
    """Seen once under load: a worker's multiprocessing resource sharer thread printed a ConnectionResetError
    traceback after the interrupted command had gone. The worker drops such reports, and only those."""
    command = """
import sys
from guidedlabelling.cli import quiet_loader_worker
quiet_loader_worker()
for error in (ConnectionResetError(104, "Connection reset by peer"), EOFError(), ValueError("a real one")):
    sys.excepthook(type(error), error, None)
"""
    proc = subprocess.run([sys.executable, "-c", command], capture_output=True, text=True, timeout=60)
    assert proc.stderr == "ValueError: a real one\n", proc.stderr


def test_image_lines_show_each_reason_and_count_the_rest():
    from guidedlabelling.errors import image_lines
    reasons = {f"/p/{k}.jpg": f"why {k}" for k in range(4)}
    assert image_lines(reasons) == "  /p/0.jpg: why 0\n  /p/1.jpg: why 1\n  /p/2.jpg: why 2\n  /p/3.jpg: why 3"
    assert image_lines(reasons, 2, "summary.json") == "  /p/0.jpg: why 0\n  /p/1.jpg: why 1\n  ... and 2 more " \
        "(summary.json)"
    assert image_lines(reasons, 4, "summary.json") == image_lines(reasons)   # nothing left to count


def test_a_command_run_in_a_folder_removed_since_is_one_line(tmp_path):
    """A shell left in a folder another removed: torch's import ended the command with 'Intel oneMKL FATAL ERROR:
    Cannot load .../libtorch_cpu.so'."""
    gone = tmp_path / "gone"
    gone.mkdir()
    proc = subprocess.run(["sh", "-c", 'cd "$1" && rmdir "$1" && exec "$2" "$3" -h', "sh", gone, sys.executable,
                           ROOT / "src/seed/train.py"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and proc.stderr == ("error: the current folder no longer exists (removed since the "
                                                    "shell entered it); cd to another folder and rerun\n")


@pytest.mark.parametrize("closed", ["2>&-", ">&- 2>&-"])
def test_a_command_whose_stderr_is_closed_runs_and_keeps_its_exit_codes(own, tmp_path, closed):
    """Started with stderr closed (`2>&-`, a daemon's): its progress line wrote to None, an AttributeError no
    stream could show, so the command ended with exit code 1, nothing said and nothing made."""
    train = shlex.join([sys.executable, str(ROOT / "src/seed/train.py"), *own_args(own)])
    proc = subprocess.run(["sh", "-c", f'{train} --out_dir {shlex.quote(str(tmp_path / "a"))} {closed}; echo $?; '
                                       f'{train} --set seed_train.max_iter=-1 {closed}; echo $?'],
                          capture_output=True, text=True, timeout=600)
    assert proc.stdout.split()[-2:] == ["0", "2"] and (tmp_path / "a" / "done.json").is_file()
