"""BIMT inside a plain PyTorch training loop, on minibatches from a DataLoader.

A torch MLP becomes a BioMLP (same outputs), the loss gets ``lam * connection_cost``, and a
``Swapper`` moves neurons every 200 steps, permuting AdamW's moments with the weights. The
data are the paper's "independence" formulas; replace them with your own.

Run:  .venv/bin/python examples/bimt_own_loop.py [steps]
"""

from __future__ import annotations

import sys

import torch
from torch.utils.data import DataLoader, TensorDataset

import bimt

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
torch.manual_seed(0)
data = bimt.get_task("independence").make(seed=0)
loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=50, shuffle=True)

net = torch.nn.Sequential(torch.nn.Linear(4, 20), torch.nn.SiLU(), torch.nn.Linear(20, 20),
                          torch.nn.SiLU(), torch.nn.Linear(20, 2))
model = bimt.from_torch(net)                        # a BioMLP computing exactly what net does
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
swapper = bimt.Swapper(model, optimizer, every=200)
lam = 1e-3

step = 0
while step < steps:
    for x, y in loader:
        strength = lam * (10 if steps // 4 <= step < 3 * steps // 4 else 1)  # paper schedule
        loss = (model(x) - y).pow(2).mean() + strength * bimt.connection_cost(model)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        swapper.step(step)
        step += 1
        if step == steps:
            break

with torch.no_grad():
    test = (model(data.x_test) - data.y_test).pow(2).mean().item()
print(f"test MSE {test:.2e} after {steps} steps, {swapper.swaps} swaps")
for module in bimt.modules(model):
    print(" ", module)
