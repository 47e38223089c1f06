"""Benchmark of ``aipoincare.discover`` on the shipped examples, beside the research code.

Each job runs in a fresh subprocess (so peak memory is that job's alone), end to end
including certificates; "seconds" excludes interpreter start-up and imports, which are
reported separately. Peak memory is ``ru_maxrss`` of the subprocess. "cpu" is the process's
CPU time (all threads), which a machine loaded by other jobs inflates less than the wall
time; the share columns split it into float (sampling and spectrum), exact (ranks, lifting,
independence) and certificates.

    python benchmarks/bench_aipoincare.py [--device cpu|cuda|auto] [--repeat N] [--only NAME]
                                          [--large] [--workers N]

``--large`` adds the exact-first jobs of issue 14: the 3D fluid at degree 4 (20,474
functions) and the 2D fluid at degree 5 (6,187).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

#: name, degree, figures of the research code measured on this kind of machine (README)
JOBS = [
    ("lotka_volterra_3", 3, "1.4 s, finds 2"),
    ("atmospheric_chemistry", 1, "finds 3 (published)"),
    ("fluid_2d", 4, "34 s, finds 8 (confidence 0.98)"),
    ("fluid_3d", 3, "40 s / 5.2 GB at 4000 points (OOM at 20000), finds 14 (conf. 0.94)"),
]
#: the exact-first jobs (issue 14): name, degree, research code's figures
LARGE = [
    ("fluid_2d", 5, "not run by the paper"),
    ("fluid_3d", 4, "not run by the paper (out of memory at degree 3 with 20000 points)"),
]
GOALS = {("lotka_volterra_3", 3): "< 1 s", ("fluid_2d", 4): "<= 5 s",
         ("fluid_3d", 3): "<= 3 s of compute", ("fluid_3d", 4): "<= 2 min, <= 6 GB"}
#: stages whose CPU time counts as float, exact or certificates
SHARES = {"float": ("sample", "numerical"), "exact": ("exact", "sparsify", "independence"),
          "cert": ("certify",)}

CHILD = r"""
import contextlib, json, resource, sys, time
t0 = time.perf_counter()
import aipoincare
from aipoincare import stages
t_import = time.perf_counter() - t0
name, degree, device = sys.argv[1], int(sys.argv[2]), sys.argv[3]
points, workers, save = int(sys.argv[4]) or None, int(sys.argv[5]), sys.argv[6]
cpu = {}
stage = stages.Run.stage

@contextlib.contextmanager
def timed(self, what):  # CPU seconds per stage beside the wall seconds the Run keeps
    c = time.process_time()
    with stage(self, what):
        yield
    cpu[what] = cpu.get(what, 0.0) + time.process_time() - c

stages.Run.stage = timed
import pathlib
path = pathlib.Path(aipoincare.__file__).parent / "examples" / f"{name}.toml"
system = aipoincare.load_system(str(path))
t1, c1 = time.perf_counter(), time.process_time()
d = aipoincare.discover(system, degree=degree, seed=0, device=device, points=points,
                        workers=workers, progress=False)
seconds, cpu_total = time.perf_counter() - t1, time.process_time() - c1
if save:  # the result document, e.g. for the notebook's degree-4 section
    pathlib.Path(save).write_text(d.to_json() + "\n")
print(json.dumps({"seconds": seconds, "cpu": cpu_total, "cpu_stages": cpu,
                  "import": t_import, "nullity": d.nullity,
                  "independent": d.independent, "exact": d.exact,
                  "verified": sum(i.verified for i in d.invariants),
                  "expected": {k: system.expected[k] for k in ("nullity", "independent")},
                  "basis": d.basis_size,
                  "points": d.points, "timings": d.timings,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(name: str, degree: int, device: str, points: int = 0, workers: int = 1,
        save: str = "") -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, name, str(degree), device, str(points),
                          str(workers), save], capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _shares(result: dict) -> str:
    """float / exact / certificates as percentages of the summed stage CPU times."""
    cpu = result["cpu_stages"]
    total = sum(cpu.values()) or 1.0
    parts = {k: sum(cpu.get(s, 0.0) for s in stages) / total for k, stages in SHARES.items()}
    return " / ".join(f"{100 * v:.0f}%" for v in parts.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", default=None)
    ap.add_argument("--workers", type=int, default=2,
                    help="worker threads for the exact ranks (default 2: both cores)")
    ap.add_argument("--published", action="store_true",
                    help="also run the 3D fluid with the research code's 4000 and 20000 points")
    ap.add_argument("--large", action="store_true",
                    help="also run the 3D fluid at degree 4 and the 2D fluid at degree 5")
    ap.add_argument("--save", metavar="DIR",
                    help="write each job's result JSON into DIR (<name>_degree<N>.json)")
    args = ap.parse_args(argv)
    try:
        load = open("/proc/loadavg").read().split()[0]
    except OSError:
        load = "?"
    print(f"device {args.device}; {args.workers} worker thread(s) for the exact ranks; load "
          f"average at start {load}; best of {args.repeat}\n")
    print("| job | basis | points | nullity | independent | verified | seconds | cpu s "
          "| float / exact / cert. | peak RSS | goal | research code |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    jobs = [(name, degree, ref, 0) for name, degree, ref in JOBS]
    if args.published:
        jobs += [("fluid_3d", 3, "40 s, 5.2 GB", 4000),
                 ("fluid_3d", 3, "out of memory past 24 GiB", 20000)]
    if args.large:
        jobs += [(name, degree, ref, 0) for name, degree, ref in LARGE]
    for name, degree, ref, points in jobs:
        if args.only and args.only != name:
            continue
        save = "" if not args.save else str(Path(args.save) / f"{name}_degree{degree}.json")
        runs = [run(name, degree, args.device, points, args.workers, save)
                for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["cpu"])
        exp = best["expected"]
        pinned = degree == aipoincare_degree(name)
        ok = (not pinned or (best["nullity"] == exp.get("nullity") and
                             best["independent"] == exp.get("independent")))
        how = "exact" if best["exact"] else "numerical"
        print(f"| {name} (deg {degree}{', ' + str(points) + ' points' if points else ''}) | "
              f"{best['basis']} | {best['points']} | "
              f"{best['nullity']} ({how}) | {best['independent']}"
              f"{'' if ok else ' (expected ' + str(exp) + ')'} | "
              f"{best['verified']}/{best['independent']} | {best['seconds']:.2f} | "
              f"{best['cpu']:.2f} | {_shares(best)} | {best['rss_mb']:.0f} MB | "
              f"{GOALS.get((name, degree), '')} | {ref} |", flush=True)
        stages = ", ".join(f"{k} {v:.2f}" for k, v in best["cpu_stages"].items())
        print(f"|  CPU s per stage: {stages}; imports {best['import']:.1f} s "
              f"||||||||||||", flush=True)
    print(f"\nfinished {time.strftime('%H:%M:%S')}")
    return 0


def aipoincare_degree(name: str) -> int | None:
    """The degree the example file pins its expected counts to (its [basis] degree)."""
    import aipoincare

    path = __import__("pathlib").Path(aipoincare.__file__).parent / "examples" / f"{name}.toml"
    system = aipoincare.load_system(str(path))
    return system.basis.degree if system.basis is not None else 3


if __name__ == "__main__":
    raise SystemExit(main())
