"""Progress of a stage loop (training iterations, per-image stages) with rate and ETA.

On a terminal: a tqdm bar on stderr. Otherwise (CI logs, a redirected stderr, a lane of ./script.py): a plain line
each time another tenth of the work is done (5 s or more after the previous line: a loop of seconds says only its
end) or 30 s have passed, e.g.
`seed heatmaps: 10/20 (50%), 1.82 it/s, elapsed 00:05, ETA 00:05`.
Under torchrun only the first process reports; the others run the same loop unreported.
"""
import math
import sys
import time

from tqdm import tqdm

from . import distributed


def progress(iterable, desc, total=None, initial=0, stream=None, every_s=30.0, every_frac=0.1, min_s=5.0,
             clock=time.monotonic, delay=0.0):
    """`iterable`, reporting progress; `initial` items were done before (a resumed training); nothing is said
    before `delay` seconds have passed (a loop that is mostly quick, such as the image checks)."""
    stream = stream or sys.stderr
    total = initial + len(iterable) if total is None else total
    if not distributed.is_main():
        return iterable
    if stream.isatty():
        return tqdm(iterable, desc=desc, total=total, initial=initial, file=stream, dynamic_ncols=True, delay=delay)
    return plain_lines(iterable, desc, total, initial, stream, every_s, every_frac, min_s, clock, delay)


def plain_lines(iterable, desc, total, initial, stream, every_s, every_frac, min_s, clock, delay=0.0):
    """Yield the items; after an item's work, `delay` seconds or more after the start, write a line when its count
    is the last, or a multiple of `every_frac` of the total `min_s` seconds or more after the previous line, or
    `every_s` seconds passed since the previous line."""
    start = last = clock()
    step = max(1, math.ceil(total * every_frac))
    for n, item in enumerate(iterable, initial + 1):
        yield item
        now = clock()
        if now - start < delay:
            continue
        if n == total or (n % step == 0 and now - last >= min_s) or now - last >= every_s:
            stream.write(status_line(desc, n, total, n - initial, now - start) + "\n")
            stream.flush()
            last = now


def status_line(desc, n, total, done_here, elapsed):
    """`desc: n/total (p%), rate it/s, elapsed mm:ss, ETA mm:ss`; the rate counts this run's items only."""
    rate = done_here / elapsed if elapsed > 0 else None
    rate_text = f"{rate:.3g} it/s" if rate else "? it/s"
    eta = tqdm.format_interval((total - n) / rate) if rate else "?"
    percent = f" ({100 * n / total:.0f}%)" if total else ""
    return f"{desc}: {n}/{total}{percent}, {rate_text}, elapsed {tqdm.format_interval(elapsed)}, ETA {eta}"
