"""./script.py's steps side by side (run.lanes N > 1): up to N chains of steps at once, each in a process of its
own (this driver on the chain's steps); the driver only schedules.

A free lane takes the first step, in driver order, whose inputs are made (the chains that make them have ended),
then every later step that reads that chain's outputs and nothing else still to make (seed training and its
heatmaps; saliency training and its maps). Every
step runs on the same number of threads (cores / lanes, or run.threads) wherever and whenever it runs, so the
outputs do not depend on the schedule; they do differ from a one-lane run on all cores in the last bits of its
sums, as on another CPU. Two lanes of one thread do more on two cores than one lane of two threads, whose steps
are not twice as fast (docs/speed.md).
"""
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

from .cli import ENDING, Terminated, handling
from .errors import resume_hint

POLL_S = 0.2        # how often the scheduler looks at its lanes
STOP_WAIT_S = 120   # how long stopped lanes get to save a snapshot and end
CHILD = "from guidedlabelling.cli import run; run('guidedlabelling.driver')"
REPORT = "guidedlabelling-lane-seconds: "  # a lane's last line of output: {step: wall seconds} as JSON


def cores():
    """CPU cores this process may use (its affinity, e.g. under taskset or a container's cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_step(lanes, threads):
    """run.threads, or an equal share of the cores for each lane."""
    return threads or max(1, cores() // lanes)


def next_chain(order, needs, finished, taken):
    """The steps a free lane runs next (empty: none can start now). order: the steps in driver order; needs:
    {step: the steps of this run it reads the outputs of, directly or not}; finished, taken: sets of steps."""
    start = next((s for s in order if s not in taken and needs[s] <= finished), None)
    if start is None:
        return []
    chain = [start]
    for step in order:
        if step not in taken and step not in chain and needs[step] & set(chain) \
                and needs[step] <= finished | set(chain):
            chain.append(step)
    return chain


class Lane:
    """One chain running in its own process (a session of its own: signals reach it through the driver). Its
    output lines go to ours, each prefixed with the lane's number, but for the last, which reports the steps'
    seconds (REPORT); its `error:` lines are kept, to be repeated as the command's last lines if it fails."""

    def __init__(self, number, chain, argv, debug):
        self.number, self.chain, self.reported, self.errors = number, chain, {}, []
        command = [sys.executable, "-c", CHILD, *argv, "--steps", ",".join(chain), "--lane"]
        env = dict(os.environ, PYTHONUNBUFFERED="1", GUIDEDLABELLING_LANE_OF=str(os.getpid()))
        self.process = subprocess.Popen(command + (["--debug"] if debug else []), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                                        env=env, start_new_session=True)
        self.pumps = [threading.Thread(target=self.pump, args=(source, sink), daemon=True)
                      for source, sink in ((self.process.stdout, sys.stdout), (self.process.stderr, sys.stderr))]
        for pump in self.pumps:
            pump.start()

    def pump(self, source, sink):
        for line in source:
            if line.startswith(REPORT):
                self.reported = json.loads(line[len(REPORT):])
                continue
            if line.startswith("error: "):
                self.errors.append(line)
            try:
                sink.write(f"[{self.number}] {line}")
                sink.flush()
            except (OSError, ValueError):  # our output is gone (a closed pipe): keep draining the lane's
                pass

    def seconds(self):
        """{step: wall seconds} the chain's process reported, once it has ended."""
        for pump in self.pumps:
            pump.join(STOP_WAIT_S)
        return self.reported

    def failure(self, code):
        """The lines that end the command when this lane failed with exit code `code`, and its exit code."""
        if code < 0:
            name = signal.Signals(-code).name
            return [f"error: lane {self.number} ({', '.join(self.chain)}) was ended by {name} (killed for memory?); "
                    f"{resume_hint()}\n"], 128 - code
        return self.errors or [f"error: lane {self.number} ({', '.join(self.chain)}) failed, exit code {code} (its "
                               f"output is above); {resume_hint()}\n"], code


def run_chains(order, needs, lanes, argv, run_here, debug=False, poll_s=POLL_S):
    """Run every step of `order` on up to `lanes` processes, each started with argv (the driver's flags, less
    --steps); run_here(chain) -> {step: seconds} runs a chain in this process instead when it is all that is left
    and no lane is busy. Returns ({step: wall seconds}, {step: lane}). A failed chain stops the others (they save
    a snapshot), then its error lines end the command with its exit code; Ctrl-C and SIGTERM are passed on to every
    lane, and Ctrl-Z stops them with the driver."""
    finished, taken, running, seconds, lane_of = set(), set(), {}, {}, {}
    ctrl_z = CtrlZ(running)
    previous = signal.signal(signal.SIGTSTP, ctrl_z)
    try:
        while len(finished) < len(order):
            free = [k for k in range(1, lanes + 1) if k not in running]
            while free and (chain := next_chain(order, needs, finished, taken)):
                taken |= set(chain)
                number = free.pop(0)
                if not running and taken == set(order):  # no lane to stop: the system's own Ctrl-Z, at once
                    with handling((signal.SIGTSTP,), signal.SIG_DFL):  # (a handler waits for a long computation)
                        seconds |= run_here(chain)
                    finished |= set(chain)
                    lane_of |= dict.fromkeys(chain, number)
                    continue
                print(f"==> lane {number}: {', '.join(chain)}", flush=True)
                with ctrl_z.lane_starting():
                    running[number] = Lane(number, chain, argv, debug)
            if not running and len(finished) < len(order):
                raise RuntimeError(f"steps {sorted(set(order) - taken)} wait for steps that no lane runs")
            if running:
                time.sleep(poll_s)
            for number, lane in list(running.items()):
                code = lane.process.poll()
                if code is None:
                    continue
                del running[number]
                seconds |= lane.seconds()
                lane_of |= dict.fromkeys(lane.chain, number)
                if code:
                    print(f"lane {number} failed ({', '.join(lane.chain)}); stopping the other lanes",
                          file=sys.stderr, flush=True)
                    end(running.values(), signal.SIGTERM)
                    lines, status = lane.failure(code)
                    sys.stderr.writelines(lines)
                    raise SystemExit(status)
                finished |= set(lane.chain)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM (Terminated): passed on
        end(running.values(), signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT)
        raise
    except BaseException:
        end(running.values(), signal.SIGTERM)
        raise
    finally:
        signal.signal(signal.SIGTSTP, previous)
    return seconds, lane_of


def stop_with(lanes):
    """Ctrl-Z (SIGTSTP): stop the lanes, whose sessions of their own keep them out of the terminal's reach, with
    their workers, then this process; fg or bg continues this process, then them (also when a kill of the stopped
    job, a SIGTERM and a SIGCONT, ends this process as it continues: end() then reaches running lanes)."""
    groups = [lane.process.pid for lane in lanes]  # a lane leads its session's only process group
    signal_groups(groups, signal.SIGSTOP)
    try:
        os.kill(os.getpid(), signal.SIGSTOP)
    finally:
        signal_groups(groups, signal.SIGCONT)


class CtrlZ:
    """The driver's SIGTSTP handler (Python runs it in the main thread): stop_with the lanes of `running`. One that
    comes while a lane starts waits until the lane is in `running` (a signal mask would not hold it back: the
    driver's other threads take the signal)."""

    def __init__(self, running):
        self.running, self.starting, self.pending = running, False, False

    def __call__(self, signum, frame):
        if self.starting:
            self.pending = True
        else:
            stop_with(self.running.values())

    @contextlib.contextmanager
    def lane_starting(self):
        self.starting = True
        try:
            yield
        finally:
            self.starting = False
        if self.pending:
            self.pending = False
            stop_with(self.running.values())


def signal_groups(groups, signum):
    for group in groups:
        with contextlib.suppress(ProcessLookupError):  # the lane has ended meanwhile
            os.killpg(group, signum)


def end(lanes, signum):
    """Send the lanes still running `signum` (they save a snapshot and end, as their commands do) and wait for
    them, deaf to a second Ctrl-C meanwhile; kill those that take longer than STOP_WAIT_S, with their workers."""
    lanes = [lane for lane in lanes if lane.process.returncode is None]
    if not lanes:
        return
    with handling((signal.SIGINT, signal.SIGTSTP, *ENDING), signal.SIG_IGN):
        # a stopped lane continues first: a signal taken as its threads resume lets the system call a stop
        # interrupted run on (follow_parent), and its command would answer at the call's end
        signal_groups([lane.process.pid for lane in lanes], signal.SIGCONT)
        time.sleep(POLL_S)
        for lane in lanes:
            if lane.process.poll() is None:
                lane.process.send_signal(signum)
        deadline = time.monotonic() + STOP_WAIT_S
        for lane in lanes:
            try:
                lane.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(lane.process.pid, signal.SIGKILL)
                lane.process.wait()
            lane.seconds()


FOLLOWING = []  # the parent a watcher follows: one per process


def follow_parent(parent=None):
    """In a lane's process (parent: the driver, which names itself in GUIDEDLABELLING_LANE_OF) or a torchrun worker
    (parent: torchrun): end with a SIGTERM (saving a snapshot) when that parent dies, even by SIGKILL, and even
    while Ctrl-Z has stopped both. A thread watches the parent; Linux continues a stopped process when its parent
    dies (prctl PR_SET_PDEATHSIG with SIGCONT, through ctypes: no library of ours wraps it; a SIGTERM would wait for
    a SIGCONT that nothing sends), and the thread then continues the process's workers too."""
    parent = parent or os.environ.pop("GUIDEDLABELLING_LANE_OF", None)
    if parent is None or FOLLOWING:
        return
    if os.getppid() != int(parent):   # gone already: end now, where the watcher's SIGTERM could land in a wait that
        raise Terminated              # takes no signal (torch's for the store of a torchrun killed: 30 minutes)
    FOLLOWING.append(parent)

    def watch():
        while os.getppid() == int(parent):
            time.sleep(POLL_S)
        os.killpg(0, signal.SIGCONT)  # the lane's workers, stopped with it by a Ctrl-Z
        # a signal taken as Linux restarts the system call a stop interrupted lets the call run on (a sleep, a
        # wait: Python's handler waits for its end), so the SIGTERM comes once the continued threads are back in it
        time.sleep(POLL_S)
        os.kill(os.getpid(), signal.SIGTERM)
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGCONT)  # 1: PR_SET_PDEATHSIG
    # the thread takes no signal (it starts with them blocked): one it took would not wake the main thread from a
    # sleep or a wait, where Python runs the handler, so a lane answered a SIGTERM only at the end of its step
    unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        threading.Thread(target=watch, daemon=True).start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
