"""Benchmark: BIMT on a transformer (the paper's in-context linear regression).

Two measurements:

``step`` (default)
    The cost of one training step at the paper's size (d = 1, T = 2, n_embed 32, 2 layers,
    batch 64): a plain PyTorch transformer of the same shape (``nn.Linear``, ``nn.LayerNorm``,
    torch's AdamW, last-token MSE, no penalty, no swaps) against bimt's autograd engine
    (BioTransformer, the connection cost's gradient, FlatAdamW, and a swap pass every 200
    steps, its time spread over those steps). Blocks of steps alternate between the two in
    one process, so both see the same machine load; the table shows medians over blocks of
    the process's CPU time (one thread), which a machine shared with other jobs inflates
    far less than wall time (the wall-time medians are printed too).
``--runs BIMT_DIR BASELINE_DIR``
    The table of two finished ``bimt train in-context`` / ``bimt train in-context-baseline``
    runs (``--full`` trains them first, ``--steps`` long) beside the reference figures.

The reference figures for the research code's transformer (748 s and test MSE 5.7e-4 for
40000 steps, swaps off) were measured by an earlier attempt on this kind of machine and
passed on in the task description; they are not in the shared reference README.

Run:  .venv/bin/python benchmarks/bench_transformer.py [--blocks 5] [--block-steps 200]
      .venv/bin/python benchmarks/bench_transformer.py --full --steps 40000 --out runs/ic
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import bimt
import traincore
from bimt.data import Loss
from bimt.incontext import incontext_data, incontext_model, last_token_mse

RESEARCH_S, RESEARCH_MSE = 748.0, 5.7e-4  # earlier attempt, research code, 40000 steps


class PlainTransformer(nn.Module):
    """The same architecture as the in-context BioTransformer, from stock torch layers."""

    def __init__(self, d_in: int = 2, d_out: int = 1, e: int = 32, layers: int = 2,
                 max_len: int = 3) -> None:
        super().__init__()
        self.embed, self.unembed = nn.Linear(d_in, e), nn.Linear(e, d_out)
        self.pos = nn.Parameter(0.1 * torch.randn(max_len, e))
        self.blocks = nn.ModuleList(nn.ModuleDict({
            "ln1": nn.LayerNorm(e), "qk": nn.Linear(e, 2 * e), "v": nn.Linear(e, e),
            "proj": nn.Linear(e, e), "ln2": nn.LayerNorm(e), "fc1": nn.Linear(e, 4 * e),
            "fc2": nn.Linear(4 * e, e)}) for _ in range(layers))
        self.ln_f = nn.LayerNorm(e)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.pos[: x.shape[1]]
        for b in self.blocks:
            a = b["ln1"](h)
            q, k = b["qk"](a).chunk(2, -1)
            o = F.scaled_dot_product_attention(q[:, None], k[:, None], b["v"](a)[:, None],
                                               is_causal=True)[:, 0]
            h = h + b["proj"](o)
            h = h + b["fc2"](F.gelu(b["fc1"](b["ln2"](h))))
        return self.unembed(self.ln_f(h))


def step_costs(blocks: int, block_steps: int, lam: float = 1e-3) -> dict[str, float]:
    """Median milliseconds per step of the plain loop and of bimt's autograd engine."""
    x, y, _, _ = incontext_data(0)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(len(x), (64,), generator=g) for _ in range(block_steps)]
    plain = PlainTransformer()
    opt = torch.optim.AdamW(plain.parameters(), lr=2e-3, weight_decay=0.0)
    model = incontext_model(0)
    flat = traincore.FlatAdamW(model, lr=2e-3)
    engine = bimt.AutogradEngine(model, flat, Loss("custom", last_token_mse),
                                 bimt.Penalty(model, flat))
    swapper = bimt.Swapper(model, flat, every=200)
    times: dict[str, list[float]] = {k: [] for k in ("plain", "bimt", "swap", "plain_wall",
                                                     "bimt_wall")}
    clocks = {"": time.process_time, "_wall": time.perf_counter}
    for _ in range(blocks):
        start = {c: f() for c, f in clocks.items()}
        for idx in batches:
            loss = last_token_mse(plain(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        for c, f in clocks.items():
            times["plain" + c].append((f() - start[c]) / block_steps * 1e3)
        start = {c: f() for c, f in clocks.items()}
        for idx in batches:
            engine.step(x[idx], y[idx], lam, 0.0, False)
        mid = {c: f() for c, f in clocks.items()}
        swapper.relocate()  # one pass per 200 steps, spread over them
        for c, f in clocks.items():
            swap_ms = (f() - mid[c]) * 1e3
            times["bimt" + c].append(((mid[c] - start[c]) * 1e3
                                      + swap_ms * block_steps / 200) / block_steps)
            if not c:
                times["swap"].append(swap_ms / 200)
    return {k: statistics.median(v) for k, v in times.items()}


def run_table(bimt_dir: Path, base_dir: Path) -> str:
    """The in-context table of two finished runs beside the research code's figures."""
    m = json.loads((bimt_dir / "metrics.json").read_text())
    b = json.loads((base_dir / "metrics.json").read_text())
    rows = ["| job | steps | training time | last-token test MSE | connection cost | swaps |",
            "|---|---|---|---|---|---|"]
    for name, r in (("bimt, BIMT (lambda 1e-4, swaps on)", m), ("bimt, baseline (lambda 0)", b)):
        rows.append(f"| {name} | {r['steps']} | {r['seconds']:.0f} s | {r['test_loss']:.2e} | "
                    f"{r['connection_cost']:.1f} | {r['swaps']} |")
    rows.append(f"| research code (swaps off) | 40000 | {RESEARCH_S:.0f} s | {RESEARCH_MSE:.1e} "
                "| | 0 |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--block-steps", type=int, default=200)
    ap.add_argument("--runs", nargs=2, type=Path, metavar=("BIMT_DIR", "BASELINE_DIR"))
    ap.add_argument("--full", action="store_true", help="train both runs first (slow)")
    ap.add_argument("--steps", type=int, default=40000)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-in-context"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.full:
        for task in ("in-context", "in-context-baseline"):
            bimt.run_task(task, args.out / task, steps=args.steps, progress=True)
        args.runs = [args.out / "in-context", args.out / "in-context-baseline"]
    if args.runs:
        print(run_table(*args.runs))
        return
    c = step_costs(args.blocks, args.block_steps)
    print("| per step (batch 64, 1 thread) | CPU ms | wall ms |\n|---|---|---|")
    print(f"| plain PyTorch transformer, AdamW | {c['plain']:.2f} | {c['plain_wall']:.1f} |")
    print(f"| bimt autograd engine: penalty + FlatAdamW + swaps | {c['bimt']:.2f} "
          f"({100 * (c['bimt'] / c['plain'] - 1):+.0f}%) | {c['bimt_wall']:.1f} |")
    print(f"| of which the swap pass, per step | {c['swap']:.2f} | |")


if __name__ == "__main__":
    main()
