"""Benchmark of ``aipoincare.discover`` on the shipped examples, beside the research code.

Each job runs in a fresh subprocess (so peak memory is that job's alone), end to end
including certificates; "seconds" excludes interpreter start-up and imports, which are
reported separately. Peak memory is ``ru_maxrss`` of the subprocess.

    python benchmarks/bench_aipoincare.py [--device cpu|cuda|auto] [--repeat N] [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

#: name, degree, figures of the research code measured on this kind of machine (README)
JOBS = [
    ("lotka_volterra_3", 3, "1.4 s, finds 2"),
    ("atmospheric_chemistry", 1, "finds 3 (published)"),
    ("fluid_2d", 4, "34 s, finds 8 (confidence 0.98)"),
    ("fluid_3d", 3, "40 s / 5.2 GB at 4000 points (OOM at 20000), finds 14 (conf. 0.94)"),
]
GOALS = {"lotka_volterra_3": "< 1 s", "fluid_2d": "<= 5 s", "fluid_3d": "<= 10 s, <= 1.5 GB"}

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import aipoincare
t_import = time.perf_counter() - t0
name, degree, device = sys.argv[1], int(sys.argv[2]), sys.argv[3]
points = int(sys.argv[4]) or None
import pathlib
path = pathlib.Path(aipoincare.__file__).parent / "examples" / f"{name}.toml"
system = aipoincare.load_system(str(path))
t1 = time.perf_counter()
d = aipoincare.discover(system, degree=degree, seed=0, device=device, points=points)
seconds = time.perf_counter() - t1
print(json.dumps({"seconds": seconds, "import": t_import, "nullity": d.nullity,
                  "independent": d.independent, "exact": d.exact,
                  "verified": sum(i.verified for i in d.invariants),
                  "expected": {k: system.expected[k] for k in ("nullity", "independent")},
                  "basis": d.basis_size,
                  "points": d.points, "timings": d.timings,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(name: str, degree: int, device: str, points: int = 0) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, name, str(degree), device, str(points)],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", default=None)
    ap.add_argument("--published", action="store_true",
                    help="also run the 3D fluid with the research code's 4000 and 20000 points")
    args = ap.parse_args(argv)
    try:
        load = open("/proc/loadavg").read().split()[0]
    except OSError:
        load = "?"
    print(f"device {args.device}; load average at start {load}; best of {args.repeat}\n")
    print("| job | basis | points | nullity | independent | verified | seconds | peak RSS "
          "| goal | research code |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    jobs = [(name, degree, ref, 0) for name, degree, ref in JOBS]
    if args.published:
        jobs += [("fluid_3d", 3, "40 s, 5.2 GB", 4000),
                 ("fluid_3d", 3, "out of memory past 24 GiB", 20000)]
    for name, degree, ref, points in jobs:
        if args.only and args.only != name:
            continue
        runs = [run(name, degree, args.device, points) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["seconds"])
        exp = best["expected"]
        ok = (best["nullity"] == exp.get("nullity") and
              best["independent"] == exp.get("independent"))
        how = "exact" if best["exact"] else "numerical"
        print(f"| {name} (deg {degree}{', ' + str(points) + ' points' if points else ''}) | "
              f"{best['basis']} | {best['points']} | "
              f"{best['nullity']} ({how}) | {best['independent']}"
              f"{'' if ok else ' (expected ' + str(exp) + ')'} | "
              f"{best['verified']}/{best['independent']} | {best['seconds']:.2f} | "
              f"{best['rss_mb']:.0f} MB | {GOALS.get(name, '')} | {ref} |", flush=True)
        stages = ", ".join(f"{k} {v:.2f}" for k, v in best["timings"].items())
        print(f"|  stages: {stages}; imports {best['import']:.1f} s |||||||||", flush=True)
    print(f"\nfinished {time.strftime('%H:%M:%S')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
