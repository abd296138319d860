"""Seconds per image of the dense CRF, pydensecrf2 against the torch backend, on a 500x375 MSRC photo, 10
mean-field iterations, 21 and 3 labels, 1 and 2 torch threads, and a batch.

    python benchmarks/bench_crf.py [--rounds 2] [--repeats 3] [--batch 4]   (needs pydensecrf2 and ../shared)

Each round times every configuration (median of --repeats runs) in turn, so that the backends see
the same machine load; ratios are pydensecrf2 seconds / crf_torch seconds (> 1: torch faster),
for wall-clock and for process CPU time (the CPU time of a 2-thread run is both threads' sum).
"""
import argparse
import os
import time

import numpy as np
import torch
from PIL import Image

import crf_cases
from guidedlabelling import cli, crf, crf_torch
from guidedlabelling.checks import POSITIVE, argument
from guidedlabelling.errors import Parser

SIZE = (500, 375)
OMP_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY", "(unset)")  # as OpenMP read it when torch loaded: cli.run sets
# it for the commands it starts, after this script's imports


def photo_and_unaries(labels):
    """A 500x375 MSRC photo and softmax-style unaries over `labels` labels built from its ground truth."""
    image, gt = crf_cases.load_msrc(1)[0]
    image = np.array(Image.fromarray(image).resize(SIZE, Image.BILINEAR))
    gt = np.array(Image.fromarray(gt).resize(SIZE, Image.NEAREST))
    if labels < crf_cases.MSRC_LABELS:  # keep the photo's own classes among the few labels
        gt = np.searchsorted(np.unique(gt), gt) % labels
    return image, crf_cases.softmax_unary(gt, np.random.default_rng(0), labels)


def seconds(fn, repeats):
    """Median wall-clock and process-CPU seconds of fn(). CPU time is the fairer figure for the
    single-threaded runs when other jobs share the cores (it leaves out time spent descheduled)."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return np.array([np.median(wall), np.median(cpu)])


def torch_run(image, unary, threads, batch=1):
    images = torch.from_numpy(np.stack([image] * batch))
    unaries = torch.from_numpy(np.stack([unary] * batch))

    def run():
        torch.set_num_threads(threads)
        crf_torch.mean_field(images, unaries, crf.kernels("deeplab"), crf.ITERATIONS)
    return run


def main(argv=None):
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=argument(int, POSITIVE), default=2)
    parser.add_argument("--repeats", type=argument(int, POSITIVE), default=3)
    parser.add_argument("--batch", type=argument(int, POSITIVE), default=4)
    args = parser.parse_args(argv)

    configs = {}
    for labels in (21, 3):
        image, unary = photo_and_unaries(labels)
        configs[(labels, "pydensecrf2")] = (lambda i=image, u=unary: crf.pydensecrf_marginals(i, u), 1)
        for threads in (1, 2):
            configs[(labels, f"torch {threads} thr")] = (torch_run(image, unary, threads), 1)
        configs[(labels, f"torch 1 thr, batch {args.batch}")] = (torch_run(image, unary, 1, args.batch), args.batch)
    for run, _ in configs.values():  # warm-up
        run()

    load_before = os.getloadavg()[0]
    results = {key: [] for key in configs}
    for _ in range(args.rounds):
        for key, (run, images) in configs.items():
            results[key].append(seconds(run, args.repeats) / images)

    print(f"OMP_WAIT_POLICY={OMP_WAIT_POLICY}, "
          f"load average before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
    rounds = " | ".join(f"round {r + 1} wall s/image | cpu s/image | ratio wall | ratio cpu"
                        for r in range(args.rounds))
    print(f"| labels | backend | {rounds} |")
    print("|---|---|" + "---|---|---|---|" * args.rounds)
    for (labels, backend), times in results.items():
        reference = results[(labels, "pydensecrf2")]
        cells = " | ".join(f"{t[0]:.3f} | {t[1]:.3f} | {ref[0] / t[0]:.2f} | {ref[1] / t[1]:.2f}"
                           for t, ref in zip(times, reference))
        print(f"| {labels} | {backend} | {cells} |")


if __name__ == "__main__":
    cli.run("__main__")  # bad input, Ctrl-C: one line
