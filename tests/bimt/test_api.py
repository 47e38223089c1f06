"""The public API: every ``__all__`` name exists and the contract's snippet runs."""

from __future__ import annotations

import math

import networkx as nx

import bimt


def test_all_names_exist() -> None:
    for name in bimt.__all__:
        assert hasattr(bimt, name), name
    for name in ("BioMLP", "BioLinear", "train", "modules", "to_networkx", "draw", "animate",
                 "prune", "BIMTConfig", "Module", "TASKS", "from_torch", "connection_cost",
                 "Swapper", "relocate", "Spatial", "describe", "analyse", "run_task"):
        assert name in bimt.__all__
    import traincore

    assert bimt.FlatAdamW is traincore.FlatAdamW  # moved to traincore, still importable


def test_contract_snippet(tmp_path) -> None:
    data = bimt.TASKS["independence"].make(0)
    model = bimt.BioMLP([4, 20, 20, 2])
    history = bimt.train(model, data.x_train, data.y_train, steps=600, seed=0,
                         x_test=data.x_test, y_test=data.y_test)
    assert isinstance(history.test_loss, float) and math.isfinite(history.test_loss)
    found = bimt.modules(model)
    assert all(isinstance(m, bimt.Module) and isinstance(m.inputs, frozenset) for m in found)
    assert isinstance(bimt.to_networkx(model), nx.DiGraph)
    bimt.draw(model, tmp_path / "net.png")
    assert (tmp_path / "net.png").stat().st_size > 1000


def test_contract_own_loop_snippet() -> None:
    """CONTRACT.md's own-loop names: from_torch, connection_cost, Swapper, relocate, and
    train(batch_size=, loss=) on any spatial network."""
    import torch

    data = bimt.TASKS["independence"].make(0)
    mlp = bimt.from_torch(torch.nn.Sequential(torch.nn.Linear(4, 20), torch.nn.SiLU(),
                                              torch.nn.Linear(20, 2)))
    assert isinstance(mlp, bimt.BioMLP)
    cost = bimt.connection_cost(mlp)
    assert cost.ndim == 0 and cost.requires_grad
    optimizer = torch.optim.AdamW(mlp.parameters(), lr=2e-3)
    swapper = bimt.Swapper(mlp, optimizer, every=200)
    before = mlp(data.x_test).detach()
    for step in range(200):
        loss = (mlp(data.x_train) - data.y_train).pow(2).mean() + 1e-3 * bimt.connection_cost(mlp)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == 199:
            before = mlp(data.x_test).detach()
        report = swapper.step(step)
    assert report is not None and torch.allclose(mlp(data.x_test), before, atol=1e-6)
    before = mlp(data.x_test).detach()
    bimt.relocate(mlp, optimizer=None)
    assert torch.allclose(mlp(data.x_test), before, atol=1e-6)
    history = bimt.train(mlp, data.x_train, data.y_train, steps=100, batch_size=64, loss=None,
                         progress=False)
    assert math.isfinite(history.train_loss)
