"""Benchmark: a batched BIMT sweep against sequential ``bimt.train`` runs, on this CPU.

64 members of the ``independence`` task (seeds 0-63, lambda 1e-3, 20000 steps):

- *sequential*: ``bimt.train`` once per seed, one after another, with its defaults (one
  thread, test loss every 200 steps, modules every 2000, snapshots), followed by the same
  analysis a sweep row holds. ``--sample K`` times only seeds 0..K-1 and scales to all
  members (the table says so);
- *batched, 1 process*: ``bimt.sweep(..., workers=0)``, one chunk of all members in this
  process, one thread;
- *batched, N workers* (``--workers N``, default: the cores): the same sweep on a local Dask
  cluster of N single-threaded worker processes, in chunks of members / N (the default
  chunk size; the cluster's start-up and shutdown included);
- *batched, N threads*: the same on a local cluster of N worker threads of this process
  (``processes=False``: nothing to start, but Python's interpreter lock is shared);
- *batched, 1 process, N torch threads*: one chunk of all members in this process, each
  tensor operation on N threads (``threads=N``).

Throughput is networks x steps per second of wall time; the CPU seconds of this process
are shown too (they do not depend on what else loads the machine as much as wall time).
The goal (issue 11) is at least 20x the sequential throughput.

Run:  .venv/bin/python benchmarks/bench_sweep.py [--members 64] [--steps 20000] [--sample 4]
      [--workers 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

import bimt


def sequential(seeds: list[int], steps: int) -> tuple[float, float]:
    """Wall and CPU seconds of one bimt.train (plus the row's analysis) per seed in turn."""
    task = bimt.get_task("independence")
    w0, c0 = time.perf_counter(), time.process_time()
    for seed in seeds:
        data = task.make(seed)
        model = bimt.build_model(task, seed)
        bimt.train(model, data.x_train, data.y_train, steps=steps, seed=seed,
                   x_test=data.x_test, y_test=data.y_test, progress=False)
        bimt.analyse(model, 0.05)
    return time.perf_counter() - w0, time.process_time() - c0


def batched(members: int, steps: int, workers: int, chunk: int | None,
            processes: bool = True, threads: int = 1) -> tuple[float, float]:
    """Wall and CPU seconds (of this process) of one sweep."""
    w0, c0 = time.perf_counter(), time.process_time()
    rows = bimt.sweep("independence", seeds=range(members), lam=[1e-3], steps=steps,
                      workers=workers, processes=processes, chunk=chunk, threads=threads,
                      progress=False)
    assert len(rows) == members
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--sample", type=int, default=None,
                    help="time this many sequential runs and scale (default: all members)")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                    help="worker processes of the Dask run (0: skip it)")
    ap.add_argument("--chunk", type=int, default=None, help="members per chunk (1 process)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    m, steps = args.members, args.steps
    sample = min(args.sample or m, m)
    load = os.getloadavg()[0]
    results = {"members": m, "steps": steps, "sample": sample, "load_before": load}
    wall, cpu = batched(m, steps, 0, args.chunk or m)
    results["batched"] = {"wall": wall, "cpu": cpu}
    if args.workers > 0:
        w, _ = batched(m, steps, args.workers, None)
        results["workers"] = {"n": args.workers, "wall": w}
        w, c = batched(m, steps, args.workers, None, processes=False)
        results["threads"] = {"n": args.workers, "wall": w, "cpu": c}
        w, c = batched(m, steps, 0, args.chunk or m, threads=args.workers)
        results["intra_op"] = {"n": args.workers, "wall": w, "cpu": c}
    sw, sc = sequential(list(range(sample)), steps)
    scale = m / sample
    results["sequential"] = {"wall": sw * scale, "cpu": sc * scale, "measured_wall": sw}
    results["load_after"] = os.getloadavg()[0]
    seq = results["sequential"]["wall"]
    print(f"independence, {m} networks x {steps} steps, this CPU "
          f"(load average {load:.1f} before, {results['load_after']:.1f} after)\n")
    print(f"{'job':44s} {'wall s':>9s} {'CPU s':>9s} {'net*steps/s':>12s} {'vs seq':>7s}")
    lines = [(f"sequential bimt.train x {m}" + (f" (from {sample} runs x {scale:g})"
                                                 if sample < m else ""),
              seq, results["sequential"]["cpu"]),
             (f"bimt.sweep, 1 process, chunks of {args.chunk or m}", wall, cpu)]
    if "workers" in results:
        lines.append((f"bimt.sweep, local cluster of {args.workers} processes",
                      results["workers"]["wall"], float("nan")))
        lines.append((f"bimt.sweep, local cluster of {args.workers} threads",
                      results["threads"]["wall"], results["threads"]["cpu"]))
        lines.append((f"bimt.sweep, 1 process, {args.workers} torch threads",
                      results["intra_op"]["wall"], results["intra_op"]["cpu"]))
    for name, w, c in lines:
        print(f"{name:44s} {w:9.1f} {c:9.1f} {m * steps / w:12.0f} {seq / w:6.1f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
