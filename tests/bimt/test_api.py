"""The public API: every ``__all__`` name exists and the contract's snippet runs."""

from __future__ import annotations

import math

import networkx as nx

import bimt


def test_all_names_exist() -> None:
    for name in bimt.__all__:
        assert hasattr(bimt, name), name
    for name in ("BioMLP", "BioLinear", "train", "modules", "to_networkx", "draw", "animate",
                 "prune", "BIMTConfig", "Module", "TASKS"):
        assert name in bimt.__all__


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
