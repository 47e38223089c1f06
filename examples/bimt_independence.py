"""BIMT on the paper's "independence" formulas, with the public API only.

Trains [4, 20, 20, 2] on y = [(x1+x3)^3, x2^2 + sin(pi x4)], prints the modules it finds
and writes the network picture and a training animation to out/bimt-example/.

Run:  .venv/bin/python examples/bimt_independence.py [steps]
"""

from __future__ import annotations

import sys
from pathlib import Path

import bimt

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
out = Path("out/bimt-example")
out.mkdir(parents=True, exist_ok=True)

data = bimt.TASKS["independence"].make(seed=0)
model = bimt.BioMLP([4, 20, 20, 2], seed=0)
history = bimt.train(model, data.x_train, data.y_train, steps=steps, seed=0,
                     x_test=data.x_test, y_test=data.y_test)
print(f"test MSE {history.test_loss:.2e} (paper: 7.4e-3) in {history.seconds:.1f} s, "
      f"{history.swaps} swaps taking {history.swap_seconds:.2f} s")
for module in bimt.modules(model):
    print(" ", module)
pruned = bimt.prune(model, 0.05, data.x_test, data.y_test)
print(f"pruning weights below 5% of the largest: test MSE {pruned.loss_before:.2e} -> "
      f"{pruned.loss_after:.2e}, {pruned.kept} weights kept")
bimt.draw(model, out / "network.png", color_modules=True)
bimt.animate(model, history.snapshots, out / "training.gif")
print(f"pictures in {out}/")
