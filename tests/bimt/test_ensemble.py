"""Batched ensembles: every member equals its own bimt.train run (the oracle)."""

from __future__ import annotations

import pytest
import torch

import bimt
from bimt.config import BIMTConfig
from bimt.ensemble import Ensemble
from bimt.ensemble_train import connection_costs, fit_ensemble, swap_pass_batched


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _separate(model: bimt.BioMLP, data: tuple, seed: int, **settings: object
              ) -> bimt.TrainingHistory:
    x, y, xt, yt = data
    return bimt.train(model, x, y, seed=seed, x_test=xt, y_test=yt, progress=False,
                      snapshot_every=0, **settings)


def _check_members(ens: Ensemble, result, runs: list) -> None:
    for i, (model, hist) in enumerate(runs):
        member = ens.member(i)
        for (name, p), q in zip(member.named_parameters(), model.parameters(), strict=True):
            assert _rel(p, q) < 1e-6, (i, name)
        assert torch.equal(member.in_perm, model.in_perm), i
        assert torch.equal(member.out_perm, model.out_perm), i
        assert result.swaps[i] == hist.swaps > 0
        assert result.test_loss[i] == pytest.approx(hist.test_loss, rel=1e-6)
        assert result.train_loss[i] == pytest.approx(hist.train_loss, rel=1e-6)
        assert result.connection_cost[i] == pytest.approx(hist.connection_cost, rel=1e-6)
        if hist.test_accuracy is not None:
            assert result.test_accuracy[i] == pytest.approx(hist.test_accuracy, abs=1e-9)


def test_members_equal_separate_runs_regression():
    task = bimt.get_task("independence")
    seeds, lams, steps = [0, 1, 2], [1e-3, 3e-3, 1e-2], 600
    data = [tuple(t.double() for t in vars(task.make(s)).values()) for s in seeds]
    configs = [BIMTConfig(steps=steps, lam=lam) for lam in lams]
    ens = Ensemble([bimt.build_model(task, s).double() for s in seeds], configs)
    stack = [torch.stack([d[k] for d in data]) for k in range(4)]
    result = fit_ensemble(ens, *stack)
    runs = []
    for s, lam, d in zip(seeds, lams, data, strict=True):
        model = bimt.build_model(task, s).double()
        runs.append((model, _separate(model, d, s, steps=steps, lam=lam)))
    _check_members(ens, result, runs)
    assert len(set(result.test_loss)) == 3  # the members really differ


def test_members_equal_separate_runs_classification_folded_settings():
    # folded inputs (two copies per slot), cross-entropy, per-member lr and weight decay
    g = torch.Generator().manual_seed(5)
    x = torch.rand(3, 60, 6, generator=g, dtype=torch.float64) * 2 - 1
    y = (x[..., 0] * x[..., 4] > 0).long()
    settings = [dict(lam=1e-3, lr=2e-3), dict(lam=5e-3, lr=4e-3, weight_decay=0.1),
                dict(lam=2e-3, lr=1e-3)]
    common = dict(steps=400, swap_every=50, bias_cost_from=0.5)
    models = [bimt.BioMLP([6, 12, 2], in_fold=2, seed=s).double() for s in range(3)]
    ens = Ensemble(models, [BIMTConfig(**common, **st) for st in settings])
    result = fit_ensemble(ens, x, y, x, y, kind="classification")
    runs = []
    for s, st in enumerate(settings):
        model = bimt.BioMLP([6, 12, 2], in_fold=2, seed=s).double()
        runs.append((model, _separate(model, (x[s], y[s], x[s], y[s]), s, **common, **st)))
    _check_members(ens, result, runs)


@pytest.mark.parametrize("activation, bias", [("tanh", True), ("relu", False), ("gelu", True)])
def test_members_equal_separate_runs_other_activations(activation, bias):
    # the step's generic path (SiLU has its own), with and without biases
    g = torch.Generator().manual_seed(7)
    x = torch.rand(2, 40, 3, generator=g, dtype=torch.float64) * 2 - 1
    y = torch.stack([x[..., 0] * x[..., 1], x[..., 2] ** 2], -1)
    common = dict(steps=300, swap_every=50, lam=2e-3)

    def model(s: int) -> bimt.BioMLP:
        return bimt.BioMLP([3, 8, 8, 2], activation=activation, bias=bias, seed=s).double()

    ens = Ensemble([model(s) for s in range(2)], BIMTConfig(**common))
    result = fit_ensemble(ens, x, y, x, y)
    runs = []
    for s in range(2):
        m = model(s)
        runs.append((m, _separate(m, (x[s], y[s], x[s], y[s]), s, **common)))
    _check_members(ens, result, runs)


def test_swap_pass_keeps_functions_and_lowers_costs():
    models = [bimt.BioMLP([4, 10, 10, 3], seed=s).double() for s in range(4)]
    ens = Ensemble(models, BIMTConfig())
    x = torch.randn(4, 7, 4, dtype=torch.float64)
    before, cost = ens.forward(x), connection_costs(ens)
    made = swap_pass_batched(ens, top_k=5)
    assert int(made.sum()) > 0
    assert torch.allclose(ens.forward(x), before, atol=1e-12)
    assert bool((connection_costs(ens) <= cost + 1e-12).all())
    for i in range(4):  # each member's swaps are those of the one-network pass
        single = bimt.BioMLP([4, 10, 10, 3], seed=i).double()
        bimt.relocate(single)
        assert torch.allclose(ens.member(i).layers[1].weight, single.layers[1].weight)
        assert float(bimt.connection_cost(single).detach()) == pytest.approx(
            float(connection_costs(ens)[i]))


def test_ensemble_refuses_what_it_cannot_batch():
    a, b = bimt.BioMLP([2, 4, 1], seed=0), bimt.BioMLP([2, 5, 1], seed=1)
    with pytest.raises(ValueError, match="share one structure"):
        Ensemble([a, b], BIMTConfig())
    with pytest.raises(ValueError, match="may differ only in"):
        Ensemble([a, bimt.BioMLP([2, 4, 1], seed=1)],
                 [BIMTConfig(), BIMTConfig(swap_every=100)])
    with pytest.raises(ValueError, match="full batches"):
        Ensemble([a], BIMTConfig(batch_size=8))
    with pytest.raises(ValueError, match="constant learning rate; member 0 has lr_decay"):
        Ensemble([a], BIMTConfig(lr_decay="cosine"))
    with pytest.raises(ValueError, match="embeddings"):
        Ensemble([bimt.build_model("modular-addition", 0)], BIMTConfig())
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([], BIMTConfig())
    ens = Ensemble([a], BIMTConfig(steps=2))
    with pytest.raises(ValueError, match="x_train"):
        fit_ensemble(ens, torch.zeros(2, 5, 2), torch.zeros(2, 5, 1))
    with pytest.raises(ValueError, match="member index"):
        ens.member(1)
