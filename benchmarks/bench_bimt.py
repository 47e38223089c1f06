"""Benchmark: BIMT on the "independence" formula, 20000 steps on the CPU.

Prints a table  job | ours | reference  with the time spent in swaps separately. The
references are the research code (34 s on an idle 2-core machine) and a bare eager PyTorch
loop (MSE + connection cost + AdamW on the same MLP, 1 thread: 12 s there), which is also
measured here so the numbers can be compared on the same machine and load.

Run:  .venv/bin/python benchmarks/bench_bimt.py [--steps 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import bimt
from bimt.tasks import TASKS, build_model

RESEARCH_CODE_S = 34.0   # reference/README.md: research code, idle machine
BARE_LOOP_REF_S = 12.0   # reference/README.md: bare eager loop, 1 thread


def bare_loop(steps: int, data: bimt.TaskData) -> float:
    """The floor of plain eager PyTorch: forward, MSE + connection cost, backward, AdamW."""
    torch.manual_seed(0)
    layers = [torch.nn.Linear(a, b) for a, b in ((4, 20), (20, 20), (20, 2))]
    net = torch.nn.Sequential(layers[0], torch.nn.SiLU(), layers[1], torch.nn.SiLU(), layers[2])
    ref = bimt.BioMLP([4, 20, 20, 2])
    costs = bimt.cost_matrices(ref)
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


def ours(steps: int, data: bimt.TaskData, engine: str) -> bimt.TrainingHistory:
    model = build_model("independence", 0)
    return bimt.train(model, data.x_train, data.y_train, steps=steps, x_test=data.x_test,
                      y_test=data.y_test, engine=engine, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = TASKS["independence"].make(0)
    load = os.getloadavg()[0]
    runs: dict[str, list[bimt.TrainingHistory]] = {"analytic": [], "autograd": []}
    bare: list[float] = []
    for _ in range(args.repeat):
        for engine in runs:
            runs[engine].append(ours(args.steps, data, engine))
        torch.set_num_threads(1)
        bare.append(bare_loop(args.steps, data))
    scale = args.steps / 20000

    def med(values: list[float]) -> float:
        return statistics.median(values)

    rows = [
        ("job", "ours (median, s)", "reference (s)"),
        (f"independence {args.steps} steps, analytic engine (default)",
         f"{med([h.seconds for h in runs['analytic']]):.2f}",
         f"{RESEARCH_CODE_S * scale:.0f} research code / {BARE_LOOP_REF_S * scale:.0f} bare loop"),
        ("  of which swaps (every 200 steps, top-5 per layer)",
         f"{med([h.swap_seconds for h in runs['analytic']]):.3f}", "-"),
        ("independence, autograd engine (any model)",
         f"{med([h.seconds for h in runs['autograd']]):.2f}", "-"),
        ("  of which swaps", f"{med([h.swap_seconds for h in runs['autograd']]):.3f}", "-"),
        ("bare eager PyTorch loop, measured now (1 thread)", f"{med(bare):.2f}",
         f"{BARE_LOOP_REF_S * scale:.0f}"),
    ]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    for i, r in enumerate(rows):
        print(" | ".join(c.ljust(w) for c, w in zip(r, width, strict=True)))
        if i == 0:
            print("-|-".join("-" * w for w in width))
    h = runs["analytic"][0]
    print(f"\ntest MSE {h.test_loss:.2e} (paper 7.4e-3), swaps made {h.swaps}, "
          f"runs {args.repeat}, load average at start {load:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
