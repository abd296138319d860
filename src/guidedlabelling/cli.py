"""How every command ends, from its first import on: its work done, or one line per problem `error: ...` and
exit code 2 (bad input, a file the system would not read or write), or one line `interrupted` and exit code
130 on Ctrl-C, one line `error: out of memory` and exit code 2 when memory runs out, or one line `terminated`
and exit code 143 on SIGTERM (a plain `kill`) or SIGHUP (its terminal closed), worker processes ended with it.
--debug shows the traceback of an error instead of its line, and before the line of an interruption (whose exit
code stays)."""
import contextlib
import errno
import gc
import importlib
import multiprocessing.util
import os
import signal
import sys
import threading
import time
import traceback
import warnings

from .errors import OVERRIDDEN, InputError, os_error_message, resume_hint


ENDING = (signal.SIGTERM, signal.SIGHUP)  # a `kill`, a closed terminal: the command ends as on SIGTERM
STARTED_BY = os.getppid()  # the process that started this command, read as it starts (before torch's import): a
# torchrun worker follows it (runner.main); read there, a second later, it was init once torchrun had died meanwhile


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, so that it unwinds as on Ctrl-C: process pools and data loader
    workers are ended by their context managers, and temporary files are removed."""


def interrupt(signum, frame):
    """Ctrl-C: KeyboardInterrupt where the command is (as signal.default_int_handler), unless deferred."""
    if not deferred(signum, frame):
        raise stopping(KeyboardInterrupt())


def terminate(signum, frame, command_pid=os.getpid()):
    if os.getpid() != command_pid:  # a forked worker inherited the handler: end as SIGTERM would
        os._exit(143)
    if not deferred(signum, frame):
        raise stopping(Terminated())


STOPPING = []  # not empty once a stop is raised: run's unraisable hook is then silent (quiet_once_stopping)


def stopping(stop):
    """`stop`, to be raised: the command unwinds to its one line from here, and what the unwinding reports as
    ignored (the __del__ of an object the stop left half made, as torch's StorageWeakRef) is not printed."""
    STOPPING.append(stop)
    return stop


def quiet_once_stopping(report):
    """The unraisable hook of a command (not with --debug): `report` until a stop is raised, then nothing."""
    def hook(unraisable):
        if not STOPPING:
            report(unraisable)
    return hook


def drop_tracebacks(e):
    """What the frames of a stop (and of the exceptions it was raised while handling) hold goes now, while the
    command's unraisable hook is still in place, not after run has restored the former one."""
    while e is not None:
        e.__traceback__, e = None, e.__context__
    gc.collect()


DEFERRED = {}             # the stop signals put off (deferred): when each first landed where it would be lost
DEFER_AT_MOST_S = 2.0     # ... and how long one is put off before the command ends at once (a finalizer that hangs)
LOST_IN = ("weakref.py", "_weakrefset.py", os.path.join("multiprocessing", "util.py"))  # their callbacks, finalizers


def deferred(signum, frame):
    """Whether a stop signal is put off: it landed where Python would print its exception as ignored, the command
    running on (lost_there). SIGALRM brings it back 10 ms later to whichever handler the command has then; after
    DEFER_AT_MOST_S of that the command ends at once, as during start-up."""
    if not lost_there(frame):
        DEFERRED.pop(signum, None)
        return False
    if time.monotonic() - DEFERRED.setdefault(signum, time.monotonic()) > DEFER_AT_MOST_S:
        leave_at_once(signum, frame)
    signal.signal(signal.SIGALRM, bring_back)
    signal.setitimer(signal.ITIMER_REAL, 0.01)
    return True


def lost_there(frame):
    """Whether an exception raised in `frame` would be printed as ignored: inside a weak reference's callback or a
    __del__, which run whenever an object goes (multiprocessing's registries drop a data loader's queues as its
    workers end: a Ctrl-C landed there once in CI, and the command went on for good). Those of the standard
    library's weak containers and finalizers (and any other frame of their modules: put off 10 ms for nothing);
    a bare weakref.ref's own callback is not seen."""
    while frame is not None:
        if frame.f_code.co_name == "__del__" or frame.f_code.co_filename.endswith(LOST_IN):
            return True
        frame = frame.f_back
    return False


def bring_back(_, frame):
    """SIGALRM: each deferred signal to the handler it has now (ours raise or put it off again, keeping when it
    first landed; a training's sets its flag, hold holds it; SIG_IGN: the command is ending)."""
    for signum in list(DEFERRED):
        handler = signal.getsignal(signum)
        if handler not in (interrupt, terminate):
            del DEFERRED[signum]
        deliver(signum, handler, frame)


def deliver(signum, handler, frame):
    """A signal that came earlier, to `handler` now: called, or for SIG_DFL its action (SIG_IGN: nothing)."""
    if callable(handler):
        handler(signum, frame)
    else:
        signal.raise_signal(signum)


STARTING = {}  # the command's handlers, replaced by hold while worker processes start (workers_starting)
HELD = []      # the signals that came meanwhile


def hold(signum, frame):
    HELD.append(signum)


@contextlib.contextmanager
def workers_starting():
    """Ctrl-C and the ending signals held while worker processes start (a DataLoader's iterator, a Pool): one that
    came there was raised inside a callback (the fork's, a weak reference's), printed as ignored and lost, the
    command running on. A signal mask did not hold it: another thread of the command takes it, and Python's
    handler still runs in the main thread. Held, the first is raised here once the workers run; a forked worker
    starts with the command's handlers (in_forked_worker); they share the command's temp folder (share_temp_folder)."""
    share_temp_folder()
    # Python runs handlers in the main thread only; STARTING: an outer call holds them already
    if threading.current_thread() is not threading.main_thread() or STARTING:
        yield
        return
    try:
        for sig in (signal.SIGINT, *ENDING):
            if signal.getsignal(sig) is not None:  # (None: a handler not set from Python)
                STARTING[sig] = signal.signal(sig, hold)
        yield
    finally:
        handlers = dict(STARTING)
        try:
            take_back_handlers()
        finally:
            take_back_handlers()  # what is left where a handler taken back raised first, for a signal then pending
            held, HELD[:] = HELD[:1], []
        for signum in held:
            deliver(signum, handlers[signum], None)


def share_temp_folder():
    """Made before worker processes fork, the command's multiprocessing temp folder is theirs too, and only the
    command removes it, once they ended: each made its own for its tensor sharer's socket and removed it at its end
    while its queue's thread could still be making the socket there (rmtree's traceback after Ctrl-C)."""
    multiprocessing.util.get_temp_dir()


def take_back_handlers():
    """The command's handlers again. signal.signal first runs the handler of a signal pending, which may raise: the
    handlers not yet taken back stay in STARTING."""
    for sig in list(STARTING):
        signal.signal(sig, STARTING[sig])
        del STARTING[sig]


def in_forked_worker():
    """A worker forked while workers start takes the command's handlers back (hold would keep a SIGTERM, a pool's
    end, from ending it)."""
    take_back_handlers()
    HELD.clear()


os.register_at_fork(after_in_child=in_forked_worker)


@contextlib.contextmanager
def handling(signals, handler):
    """`handler` (a function, SIG_IGN or SIG_DFL) for each of `signals` during the block; the former ones after.
    Python sets handlers from the main thread only (signal.signal raises ValueError elsewhere): a block entered in
    another thread (a DataLoader's forward_all there) runs with the handlers in place."""
    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, handler) for sig in signals} if main else {}
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            for sig, former in previous.items():
                signal.signal(sig, former)


def quiet_loader_worker(worker_id=None):
    """A data loader worker (worker_init_fn): Ctrl-C and a `kill` of the whole process group reach it too, but
    only the command answers them, ending its workers in order (killed by a signal, a worker made torch print
    a traceback)."""
    for sig in (signal.SIGINT, *ENDING):
        signal.signal(sig, signal.SIG_IGN)
    sys.excepthook = silent_when_the_receiver_is_gone(sys.excepthook)


def silent_when_the_receiver_is_gone(report):
    """An excepthook that drops the connection errors a worker's multiprocessing resource sharer thread reports
    (through sys.excepthook) when the command it hands tensors to ended in the middle of one; `report` the rest."""
    def excepthook(kind, value, traceback):
        if not issubclass(kind, (ConnectionError, EOFError)):
            report(kind, value, traceback)
    return excepthook


def leave_at_once(signum, frame):
    """Ctrl-C or SIGTERM during start-up: nothing is written yet, and a KeyboardInterrupt inside a library's import
    can leave it half made (numpy then fails in ways that hide the Ctrl-C), so leave now."""
    print(f"{'terminated' if signum in ENDING else 'interrupted'}; {resume_hint()}", file=sys.stderr, flush=True)
    os._exit(128 + signum)


def null_stream():
    """/dev/null for a stream closed from the start (`2>&-`, a daemon's), on the lowest free descriptor, its own
    (which the stages' processes inherit): writes to None, the progress lines', raised an AttributeError no stream
    could show (exit code 1, nothing said or made)."""
    return open(os.devnull, "w")


class ReaderGone:
    """stdout or stderr that falls silent once its reader is gone (`| head`) instead of failing every print, log
    and progress line (a traceback each, or the command stopped): the command runs on, and its folders' log.txt
    keep every line."""

    def __init__(self, stream):
        self.stream, self.gone = stream, False

    def write(self, text):
        if not self.gone:
            try:
                try:
                    return self.stream.write(text)
                except UnicodeEncodeError:   # a file name whose bytes are not UTF-8 (an old camera's, a zip's), on a
                    # stdout whose encoding is strict (LANG=en_US.UTF-8): escaped, as Python writes stderr, where a
                    # traceback ended predict after its work, at its summary
                    encoding = getattr(self.stream, "encoding", None) or "utf-8"
                    return self.stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
            except OSError:   # EPIPE (| head), EIO (a terminal closed)
                self.silence()
        return len(text)

    def flush(self):
        if not self.gone:
            try:
                self.stream.flush()
            except OSError:
                self.silence()

    def silence(self):
        """Point the descriptor at /dev/null, so what is left in the buffer, flushed at exit, fails no more."""
        self.gone = True
        with contextlib.suppress(OSError, ValueError, AttributeError):   # no descriptor: nothing left to flush
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())

    def __getattr__(self, name):
        return getattr(self.stream, name)


def run(module, function="main", *args):
    """guidedlabelling's `module`.`function`(*args) as a command; the import happens inside the guard, so a
    Ctrl-C during start-up ends in one line too, and after OpenMP's threads are told to sleep."""
    sleeping_openmp_threads()
    no_worker_count_warning()
    current_folder_there()
    debug = "--debug" in sys.argv
    if not debug:
        for sig in (signal.SIGINT, *ENDING):
            signal.signal(sig, leave_at_once)
    OVERRIDDEN.clear()   # a command's own record (tests run several in one process)
    STOPPING.clear()
    streams, unraisable, alarm = (sys.stdout, sys.stderr), sys.unraisablehook, signal.getsignal(signal.SIGALRM)
    sys.stdout, sys.stderr = (ReaderGone(stream if stream is not None else null_stream()) for stream in streams)
    if not debug:
        sys.unraisablehook = quiet_once_stopping(unraisable)
    try:
        entry = getattr(importlib.import_module(module), function)
        signal.signal(signal.SIGINT, interrupt)
        for sig in ENDING:
            signal.signal(sig, terminate)
        with errors_end_in_one_line(debug):
            return entry(*args)
    except KeyboardInterrupt as e:
        ending()
        if debug:
            traceback.print_exc()
        hint = getattr(e, "hint", None) or resume_hint()   # a command may say better what a rerun does (the driver)
        say(f"{'terminated' if isinstance(e, Terminated) else 'interrupted'}; {hint}")   # (RANK k: which process)
        drop_tracebacks(e)
        sys.exit(143 if isinstance(e, Terminated) else 130)
    except SystemExit:   # an error's line said, or argparse's
        ending()
        raise
    finally:
        for wrapped in (sys.stdout, sys.stderr):
            if isinstance(wrapped, ReaderGone):
                wrapped.flush()   # what is left in the buffer, while a reader gone is still silenced
        sys.stdout, sys.stderr = streams
        signal.setitimer(signal.ITIMER_REAL, 0)   # a signal deferred as the command returned is not brought back
        signal.signal(signal.SIGALRM, alarm)
        sys.unraisablehook = unraisable
        DEFERRED.clear()
        STOPPING.clear()


@contextlib.contextmanager
def errors_end_in_one_line(debug=False):
    """Bad input (InputError) and files the system would not read or write (OSError) raised in the block end
    the command: one line `error: ...` per problem and exit code 2 (SystemExit), or the traceback with --debug."""
    try:
        yield
    except InputError as e:
        if debug:
            raise
        for message in e.messages:
            say(f"error: {message}")
        sys.exit(2)
    except OSError as e:
        if debug:
            raise
        say(f"error: {os_error_message(e)}")
        sys.exit(2)
    except (MemoryError, RuntimeError) as e:
        loop = symlink_loop(e)
        if debug or not (loop or out_of_memory(e)):
            raise
        if loop:
            say(f"error: {os_error_message(loop)}")
        else:
            say(f"error: out of memory ({(str(e).splitlines() or [type(e).__name__])[0][:160]}); use smaller inputs "
                "(test_size, input_size, batch_size, smaller images) or a machine with more memory")
        sys.exit(2)


def ending():
    """The command (run) has said why it ends: a further Ctrl-C or SIGTERM (torchrun sends one to every worker once
    one fails or is interrupted) is ignored while it exits, where raising again printed 'Exception ignored in ...'
    with a traceback from whatever was being torn down. Their handlers stay so: a test running commands in its own
    process restores them."""
    for sig in (signal.SIGINT, *ENDING):
        signal.signal(sig, signal.SIG_IGN)


def say(line):
    """A line to stderr in one write: print writes the text and its newline apart, and the processes of a torchrun
    launch (unbuffered) that print the same error ran their lines together."""
    sys.stderr.write(whose() + line + "\n")


def whose():
    """'RANK 3: ' before the error lines of a torchrun process other than the first: it may have met its error alone
    (a file its machine cannot read, its GPU's memory), as what every process meets alike only the first says
    (distributed.said_once); '' elsewhere."""
    distributed = sys.modules.get(f"{__package__}.distributed")   # the commands that torchrun runs imported it (cli
    # imports no torch: it guards their start-up)
    return "" if distributed is None or distributed.says_for_all() else f"RANK {distributed.rank()}: "


def symlink_loop(e):
    """The OSError (ELOOP) behind Python 3.11's RuntimeError 'Symlink loop from ...' of Path.resolve, else None: a
    path through a link that leads back to itself was a traceback."""
    loop = e.__context__
    return loop if isinstance(loop, OSError) and loop.errno == errno.ELOOP else None


def out_of_memory(e):
    """Whether an exception is an allocation failure: Python's MemoryError, or torch's CPU or CUDA allocator."""
    text = str(e)
    return isinstance(e, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower()


def sleeping_openmp_threads():
    """OMP_WAIT_POLICY=PASSIVE unless the user set a policy, before torch starts OpenMP (every command, through
    run): threads that spin while waiting ran 5-10x slower on the project's 2-core machine whenever another
    process shared it (a stage command 6.5x beside one busy core); sleeping threads cost little when it is quiet."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def current_folder_there():
    """One line where the current folder was removed (a shell left in a folder another deleted): torch's import
    ended the command with 'Intel oneMKL FATAL ERROR: Cannot load .../libtorch_cpu.so'."""
    try:
        os.getcwd()
    except FileNotFoundError:
        say("error: the current folder no longer exists (removed since the shell entered it); cd to another folder "
            "and rerun")
        sys.exit(2)


def no_worker_count_warning():
    """Off: torch's warning on DataLoader workers above the cores, four lines at each of the steps' loaders (eight
    times in a run of voc12_paper on two cores), where notes.machine_notes says it once before them."""
    warnings.filterwarnings("ignore", message="This DataLoader will create", category=UserWarning)


def run_stage(stage):
    """A stage of pipeline.py's table as a command (runner.main)."""
    return run("guidedlabelling.runner", "main", stage)
