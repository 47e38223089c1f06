"""BIMT on the paper's "independence" formulas, with the public API only.

Trains [4, 20, 20, 2] on y = [(x1+x3)^3, x2^2 + sin(pi x4)] through ``bimt.run_task`` (what
``bimt train independence`` runs), prints the modules it finds and what pruning costs, and
leaves metrics.json, network.png, training.gif and snapshots.pt in out/bimt-example/.

Run:  .venv/bin/python examples/bimt_independence.py [steps]
"""

from __future__ import annotations

import sys

import bimt

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
run = bimt.run_task("independence", "out/bimt-example", steps=steps, seed=0, resume=False)
history = run.history
print(f"test MSE {history.test_loss:.2e} (paper: 7.4e-3) in {history.seconds:.1f} s, "
      f"{history.swaps} swaps taking {history.swap_seconds:.2f} s")
for module in run.analysis.modules:
    print(" ", module)
data = bimt.get_task("independence").make(seed=0)
pruned = bimt.prune(run.model, 0.05, data.x_test, data.y_test)
print(f"pruning weights below 5% of the largest: test MSE {pruned.loss_before:.2e} -> "
      f"{pruned.loss_after:.2e}, {pruned.kept} weights kept")
print(f"metrics, pictures and snapshots in {run.out}/")
