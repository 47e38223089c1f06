"""Benchmark of the data mode: conserved quantities from trajectories, without equations.

Four systems with invariants and five without (``benchmarks/systems/``), 50 trajectories
each (200 samples), Gaussian noise 0, 1e-3, 1e-2 and 1e-1 relative to each variable's
spread; the discovery sees only the data (no equations). Each reported independent
invariant is then judged against the equations: *exact* when it is certified
(``aipoincare.certify``), *approximate* when its relative Lie derivative
rms(grad H . f) / rms(|grad H| |f|) on the clean states is at most 5% (float coefficients
fitted to noisy data), *false* otherwise.

* detection rate: correct independent invariants found / known, mean over the systems
  with invariants (per noise level);
* false discovery rate: false invariants / reported invariants, over all nine systems;
* seconds: the discovery alone (not the simulation), summed over the nine systems.

    python benchmarks/bench_datamode.py [--trajectories N] [--samples N] [--only NAME]
                                        [--json PATH] [--tol RATIO]

References: Liu & Tegmark, PRL 126, 180604 (2021) (AI Poincare 1.0); the positives and
negatives follow the benchmark of "From Data to Laws ... Without False Positives"
(arXiv 2603.20474).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np
import sympy
import torch

import aipoincare
from aipoincare.evaluate import compile_torch
from aipoincare.simulate import add_noise, simulate

HERE = pathlib.Path(__file__).resolve().parent / "systems"
#: file stem, duration, known independent invariants
SYSTEMS = [
    ("harmonic_oscillator", 10.0, 1),
    ("lotka_volterra_log", 15.0, 1),
    ("kepler", 10.0, 3),
    ("euler_rigid_body", 10.0, 2),
    ("lorenz", 5.0, 0),
    ("rossler", 20.0, 0),
    ("damped_oscillator", 15.0, 0),
    ("van_der_pol", 15.0, 0),
    ("duffing_driven", 30.0, 0),
]
NOISES = (0.0, 1e-3, 1e-2, 1e-1)
APPROXIMATE = 0.05  # largest relative Lie derivative of a float invariant judged correct


def lie_residual(expr: sympy.Expr, system: aipoincare.System, states: np.ndarray) -> float:
    """rms(grad H . f) / rms(|grad H| |f|) at the states (0 for an invariant)."""
    grads = [sympy.diff(expr, v) for v in system.variables]
    x = torch.as_tensor(states, dtype=torch.float64)
    g = compile_torch(grads, system.variables)(x)
    f = compile_torch(system.equations, system.variables)(x)
    lie = (g * f).sum(1)
    den = ((g ** 2).sum(1) * (f ** 2).sum(1)).mean()
    return float(torch.sqrt((lie ** 2).mean() / den.clamp_min(1e-300)))


def judge(expr: sympy.Expr, system: aipoincare.System, states: np.ndarray) -> str:
    if aipoincare.certify(expr, system).verified:
        return "exact"
    return "approximate" if lie_residual(expr, system, states) <= APPROXIMATE else "false"


def run_system(stem: str, duration: float, known: int, args: argparse.Namespace) -> list[dict]:
    system = aipoincare.load_system(HERE / f"{stem}.toml")
    t0 = time.perf_counter()
    clean = simulate(system, args.trajectories, duration, samples=args.samples, seed=0)
    t_sim = time.perf_counter() - t0
    rows = []
    for noise in NOISES:
        data = add_noise(clean, noise, seed=1) if noise else clean
        t1 = time.perf_counter()
        d = aipoincare.discover_from_trajectories(data, basis=system.basis, seed=0, tol=args.tol,
                                                  device="cpu", name=system.name)
        seconds = time.perf_counter() - t1
        verdicts = [judge(inv.expr, system, clean.states) for inv in d.invariants]
        rows.append({"system": stem, "noise": noise, "known": known, "nullity": d.nullity,
                     "reported": len(verdicts), "exact": verdicts.count("exact"),
                     "approximate": verdicts.count("approximate"),
                     "false": verdicts.count("false"), "seconds": seconds,
                     "simulate_seconds": t_sim,
                     "invariants": [sympy.sstr(i.expr) for i in d.invariants]})
        r = rows[-1]
        print(f"  {stem:<22} noise {noise:<6g} reported {r['reported']} (exact {r['exact']}, "
              f"approx {r['approximate']}, false {r['false']}) of {known}  "
              f"{seconds:6.2f} s", file=sys.stderr, flush=True)
    return rows


def summary(rows: list[dict]) -> str:
    lines = ["| noise | detection (4 with laws) | exact | false discovery rate | "
             "false on the 5 without | seconds (9 systems) |",
             "|---|---|---|---|---|---|"]
    for noise in NOISES:
        at = [r for r in rows if r["noise"] == noise]
        pos = [r for r in at if r["known"]]
        det = np.mean([min(1.0, (r["exact"] + r["approximate"]) / r["known"]) for r in pos]) \
            if pos else float("nan")
        exact = np.mean([min(1.0, r["exact"] / r["known"]) for r in pos]) if pos else float("nan")
        reported = sum(r["reported"] for r in at)
        false = sum(r["false"] for r in at)
        neg_false = sum(r["reported"] for r in at if not r["known"])
        fdr = false / reported if reported else 0.0
        lines.append(f"| {noise:g} | {det:.2f} | {exact:.2f} | {fdr:.2f} ({false}/{reported}) "
                     f"| {neg_false} | {sum(r['seconds'] for r in at):.1f} |")
    lines += ["", "| system | known | found at noise 0 / 1e-3 / 1e-2 / 1e-1 (false) |",
              "|---|---|---|"]
    for stem, _, known in SYSTEMS:
        mine = [r for r in rows if r["system"] == stem]
        if mine:
            cells = " / ".join(f"{r['exact'] + r['approximate']}"
                               + (f" ({r['false']})" if r["false"] else "") for r in mine)
            lines.append(f"| {stem} | {known} | {cells} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=int, default=50)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--only", help="one system (file stem)")
    parser.add_argument("--json", help="write the rows as JSON lines")
    parser.add_argument("--tol", type=float, help="largest held-out along/across variance "
                        "ratio (default aipoincare.datastats.RATIO)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    rows = []
    for stem, duration, known in SYSTEMS:
        if args.only in (None, stem):
            rows.extend(run_system(stem, duration, known, args))
    print(summary(rows))
    if args.json:
        pathlib.Path(args.json).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
