"""Benchmark: BIMT on the "independence" formula, 20000 steps on the CPU.

Prints a table  job | ours | reference  with the time spent in swaps separately. The
references are the research code (34 s on an idle 2-core machine) and a bare eager PyTorch
loop (MSE + connection cost + AdamW on the same MLP, 1 thread: 12 s there), which is also
measured here so the numbers can be compared on the same machine and load.

``--baseline DIR`` also times the bimt of another checkout (for instance the previous
version: ``git worktree add --detach /tmp/bimt-old main``) on the same job, each run in a
fresh process, alternating with ours, so both see the same machine load; the table then
shows the ratio, and whether both produced the same weights bit for bit.

Run:  .venv/bin/python benchmarks/bench_bimt.py [--steps 20000] [--repeat 3] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import bimt
from bimt.tasks import TASKS

RESEARCH_CODE_S = 34.0   # reference/README.md: research code, idle machine
BARE_LOOP_REF_S = 12.0   # reference/README.md: bare eager loop, 1 thread
ROOT = Path(__file__).resolve().parents[1]


def bare_loop(steps: int, data: bimt.TaskData) -> float:
    """The floor of plain eager PyTorch: forward, MSE + connection cost, backward, AdamW."""
    torch.manual_seed(0)
    layers = [torch.nn.Linear(a, b) for a, b in ((4, 20), (20, 20), (20, 2))]
    net = torch.nn.Sequential(layers[0], torch.nn.SiLU(), layers[1], torch.nn.SiLU(), layers[2])
    costs = list(bimt.cost_matrices(bimt.BioMLP([4, 20, 20, 2])).values())
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=0.0)
    x, y = data.x_train, data.y_train
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = (net(x) - y).pow(2).mean()
        cost = sum((lin.weight.abs() * c).sum() for lin, c in zip(layers, costs, strict=True))
        loss = loss + 1e-3 * cost
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def worker(steps: int, engine: str) -> None:
    """One training run of the bimt that is first on sys.path; prints one JSON line."""
    import bimt as here  # the checkout PYTHONPATH points at

    task = here.get_task("independence")
    data = task.make(0)
    model = here.build_model(task, 0)
    h = here.train(model, data.x_train, data.y_train, steps=steps, x_test=data.x_test,
                   y_test=data.y_test, engine=engine, progress=False)
    digest = hashlib.sha256(b"".join(t.detach().numpy().tobytes()
                                     for t in model.state_dict().values())).hexdigest()
    print(json.dumps({"seconds": h.seconds, "swap_seconds": h.swap_seconds, "swaps": h.swaps,
                      "test_loss": h.test_loss, "weights": digest[:16],
                      "module": here.__file__}))


def in_process(code: Path, steps: int, engine: str) -> dict:
    """Run :func:`worker` in a fresh interpreter with ``code`` first on the path."""
    env = {**os.environ, "PYTHONPATH": f"{code}{os.pathsep}{ROOT}"}
    out = subprocess.run([sys.executable, __file__, "--worker", "--steps", str(steps),
                          "--engine", engine], env=env, capture_output=True, text=True,
                         check=True, timeout=3600)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["module"].startswith(str(code)):
        raise RuntimeError(f"the run imported {result['module']}, not the code in {code}")
    return result


def table(rows: list[tuple[str, str, str]]) -> None:
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    for i, r in enumerate(rows):
        print(" | ".join(c.ljust(w) for c, w in zip(r, width, strict=True)))
        if i == 0:
            print("-|-".join("-" * w for w in width))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout to time beside this one (e.g. /tmp/bimt-old)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="analytic", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.steps, args.engine)
        return
    data = TASKS["independence"].make(0)
    load = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {"analytic": [], "autograd": [], "baseline": []}
    bare: list[float] = []
    for _ in range(args.repeat):  # interleaved, so a change of load hits every job alike
        runs["analytic"].append(in_process(ROOT, args.steps, "analytic"))
        if args.baseline is not None:
            runs["baseline"].append(in_process(args.baseline.resolve(), args.steps, "analytic"))
        runs["autograd"].append(in_process(ROOT, args.steps, "autograd"))
        torch.set_num_threads(1)
        bare.append(bare_loop(args.steps, data))
    scale = args.steps / 20000

    def med(job: str, key: str = "seconds") -> float:
        return statistics.median(r[key] for r in runs[job])

    rows = [
        ("job", "ours (median, s)", "reference (s)"),
        (f"independence {args.steps} steps, analytic engine (default)",
         f"{med('analytic'):.2f}",
         f"{RESEARCH_CODE_S * scale:.0f} research code / {BARE_LOOP_REF_S * scale:.0f} bare loop"),
        ("  of which swaps (every 200 steps, top-5 per layer)",
         f"{med('analytic', 'swap_seconds'):.3f}", "-"),
        ("independence, autograd engine (any model)", f"{med('autograd'):.2f}", "-"),
        ("  of which swaps", f"{med('autograd', 'swap_seconds'):.3f}", "-"),
        ("bare eager PyTorch loop, measured now (1 thread)", f"{statistics.median(bare):.2f}",
         f"{BARE_LOOP_REF_S * scale:.0f}"),
    ]
    if runs["baseline"]:
        same = {r["weights"] for r in runs["analytic"] + runs["baseline"]}
        rows.append((f"baseline {args.baseline}, analytic engine", f"{med('baseline'):.2f}",
                     f"ours / baseline = {med('analytic') / med('baseline'):.3f}; weights "
                     f"{'bit-identical' if len(same) == 1 else 'DIFFER'}"))
    table(rows)
    h = runs["analytic"][0]
    print(f"\ntest MSE {h['test_loss']:.2e} (paper 7.4e-3), swaps made {h['swaps']}, "
          f"runs {args.repeat}, each in a fresh process; load average at start {load:.2f} "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
