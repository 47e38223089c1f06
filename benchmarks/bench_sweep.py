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
  tensor operation on N threads (``threads=N``; the native gradient runs on one);
- *PyTorch path, N threads*: the N-thread sweep with ``TRAINCORE_NATIVE=0``, the batched
  tensor operations in place of the native gradient (``bimt/native_step.c``).

``--scaling 64,256,1024 --device cuda`` instead times one chunk of each size on that device
(members x steps per second, the GPU figures of issue 11) and nothing else.

Throughput is networks x steps per second of wall time; the CPU seconds of this process
are shown too (they do not depend on what else loads the machine as much as wall time).
The goal (issue 11) is at least 20x the sequential throughput.

Run:  .venv/bin/python benchmarks/bench_sweep.py [--members 64] [--steps 20000] [--sample 4]
      [--workers 2] [--json PATH]
      .venv/bin/python benchmarks/bench_sweep.py --scaling 64,256,1024 --device cuda --steps 2000
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

import bimt
from traincore.native import NATIVE_ENV


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
            processes: bool = True, threads: int = 1, device: str = "cpu"
            ) -> tuple[float, float]:
    """Wall and CPU seconds (of this process) of one sweep."""
    w0, c0 = time.perf_counter(), time.process_time()
    rows = bimt.sweep("independence", seeds=range(members), lam=[1e-3], steps=steps,
                      workers=workers, processes=processes, chunk=chunk, threads=threads,
                      device=device, progress=False)
    assert len(rows) == members
    return time.perf_counter() - w0, time.process_time() - c0


def scaling(args: argparse.Namespace) -> None:
    """One chunk of each size on ``args.device``: members x steps per second."""
    sizes = [int(v) for v in args.scaling.split(",")]
    print(f"independence, {args.steps} steps, one chunk on {args.device}\n")
    print(f"{'members':>8s} {'wall s':>9s} {'net*steps/s':>12s}")
    found = []
    for m in sizes:
        wall, _ = batched(m, args.steps, 0, m, device=args.device)
        found.append({"members": m, "wall": wall, "rate": m * args.steps / wall})
        print(f"{m:8d} {wall:9.1f} {m * args.steps / wall:12.0f}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": args.device, "steps": args.steps, "runs": found}, fh, indent=2)


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
    ap.add_argument("--scaling", default=None,
                    help="comma-separated chunk sizes: time one chunk of each on --device")
    ap.add_argument("--device", default="cpu", help="the device of --scaling (cpu)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.scaling:
        scaling(args)
        return
    results = run_jobs(args)
    report(results, args)


def _without_native(fn):  # type: ignore[no-untyped-def]
    before = os.environ.get(NATIVE_ENV)
    os.environ[NATIVE_ENV] = "0"
    try:
        return fn()
    finally:
        os.environ.pop(NATIVE_ENV)
        if before is not None:
            os.environ[NATIVE_ENV] = before


def run_jobs(args: argparse.Namespace) -> dict:
    """Every job in one run; the sequential sample split, half before the batched jobs and
    half after, so that a drift of this machine's speed touches both sides alike."""
    m, steps, n = args.members, args.steps, args.workers
    sample = min(args.sample or m, m)
    first, second = list(range(sample // 2)), list(range(sample // 2, sample))
    results: dict = {"members": m, "steps": steps, "sample": sample,
                     "load_before": os.getloadavg()[0]}
    seq_before = sequential(first, steps) if first else (0.0, 0.0)
    w, c = batched(m, steps, 0, args.chunk or m)
    results["batched"] = {"wall": w, "cpu": c}
    if n > 0:
        results["workers"] = {"n": n, "wall": batched(m, steps, n, None)[0]}
        w, c = batched(m, steps, n, None, processes=False)
        results["threads"] = {"n": n, "wall": w, "cpu": c}
        w, c = batched(m, steps, 0, args.chunk or m, threads=n)
        results["intra_op"] = {"n": n, "wall": w, "cpu": c}
        w, c = _without_native(lambda: batched(m, steps, n, None, processes=False))
        results["torch_threads"] = {"n": n, "wall": w, "cpu": c}
    seq_after = sequential(second, steps)
    scale = m / sample
    sw, sc = seq_before[0] + seq_after[0], seq_before[1] + seq_after[1]
    results["sequential"] = {"wall": sw * scale, "cpu": sc * scale, "measured_wall": sw,
                             "per_run_before": seq_before[0] / max(len(first), 1),
                             "per_run_after": seq_after[0] / len(second)}
    results["load_after"] = os.getloadavg()[0]
    return results


def report(results: dict, args: argparse.Namespace) -> None:
    m, steps, n, sample = args.members, args.steps, args.workers, results["sample"]
    seq = results["sequential"]["wall"]
    scale = m / sample
    print(f"independence, {m} networks x {steps} steps, this CPU (load average "
          f"{results['load_before']:.1f} before, {results['load_after']:.1f} after)")
    print(f"sequential runs: {results['sequential']['per_run_before']:.1f} s each before the "
          f"batched jobs, {results['sequential']['per_run_after']:.1f} s after\n")
    print(f"{'job':44s} {'wall s':>9s} {'CPU s':>9s} {'net*steps/s':>12s} {'vs seq':>7s}")
    lines = [(f"sequential bimt.train x {m}" + (f" (from {sample} runs x {scale:g})"
                                                 if sample < m else ""),
              seq, results["sequential"]["cpu"]),
             (f"bimt.sweep, 1 process, chunks of {args.chunk or m}",
              results["batched"]["wall"], results["batched"]["cpu"])]
    if "workers" in results:
        lines += [(f"bimt.sweep, local cluster of {n} processes", results["workers"]["wall"],
                   float("nan")),
                  (f"bimt.sweep, local cluster of {n} threads", results["threads"]["wall"],
                   results["threads"]["cpu"]),
                  (f"bimt.sweep, 1 process, {n} torch threads", results["intra_op"]["wall"],
                   results["intra_op"]["cpu"]),
                  (f"the same {n} threads, PyTorch path", results["torch_threads"]["wall"],
                   results["torch_threads"]["cpu"])]
    for name, w, c in lines:
        print(f"{name:44s} {w:9.1f} {c:9.1f} {m * steps / w:12.0f} {seq / w:6.1f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
