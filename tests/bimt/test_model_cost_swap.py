"""Model structure, connection cost (against a brute-force loop) and swap moves."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch

import bimt
from bimt.cost import connection_cost, cost_matrices
from bimt.swap import placement_cost, swap_deltas, swap_neurons, swap_pass, torch_optimizer_moments

MODELS = [
    dict(widths=[4, 7, 5, 3]),
    dict(widths=[(3, 3), (2, 3), 4]),
    dict(widths=[6, 5, 3], in_fold=2),
    dict(widths=[6, 5, 4], in_fold=2, embedding=(7, 3)),
]


def _inputs(model: bimt.BioMLP, n: int = 11) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    if model.embedding is not None:
        return torch.randint(0, model.embedding.num_embeddings, (n, model.in_fold), generator=g)
    return torch.randn(n, model.widths[0], generator=g)


def _brute_cost(model: bimt.BioMLP, wf: float, l0: float, bias: bool, last: bool) -> float:
    total = 0.0
    for k, layer in enumerate(model.layers):
        if not last and k == model.depth - 1:
            continue
        w = layer.weight.detach().tolist()
        for i, j in itertools.product(range(layer.out_features), range(layer.in_features)):
            xo, zo = layer.out_coordinates[i].tolist()
            xi, zi = layer.in_coordinates[j].tolist()
            total += abs(w[i][j]) * (wf * math.hypot(xo - xi, zo - zi) + l0)
        if bias:
            total += l0 * sum(abs(b) for b in layer.bias.detach().tolist())
    return total


def test_coordinates_follow_paper_layout_and_device() -> None:
    model = bimt.BioMLP([4, 20, 2], seed=0)
    xs = model.layers[0].in_coordinates[:, 0]
    assert torch.allclose(xs, torch.tensor([0.125, 0.375, 0.625, 0.875]))
    assert "layers.0.in_coordinates" in dict(model.named_buffers())
    assert model.layers[0].distance.shape == (20, 4)
    half = model.to(torch.float64)
    assert half.layers[1].distance.dtype == torch.float64  # buffers follow .to()


@pytest.mark.parametrize("kw", MODELS)
@pytest.mark.parametrize("bias,last", [(False, True), (True, True), (True, False)])
def test_connection_cost_matches_brute_force(kw: dict, bias: bool, last: bool) -> None:
    model = bimt.BioMLP(seed=1, **kw)
    fast = float(connection_cost(model, 0.7, 0.1, bias=bias, last_layer=last).detach())
    assert fast == pytest.approx(_brute_cost(model, 0.7, 0.1, bias, last), rel=1e-5)


def test_connection_cost_follows_dtype_and_replaced_layers() -> None:
    """connection_cost caches its matrices per model; a change of dtype or a replaced weight
    must not serve stale ones."""
    model = bimt.BioMLP([3, 5, 2], seed=0)
    first = connection_cost(model)
    assert first.dtype == torch.float32
    model.double()
    again = connection_cost(model)
    assert again.dtype == torch.float64
    assert float(again.detach()) == pytest.approx(_brute_cost(model, 1.0, 0.1, False, True),
                                                  rel=1e-9)
    with torch.no_grad():
        model.layers[1].weight = torch.nn.Parameter(torch.ones(2, 5, dtype=torch.float64))
    assert float(connection_cost(model).detach()) == pytest.approx(
        _brute_cost(model, 1.0, 0.1, False, True), rel=1e-9)
    assert float(connection_cost(model, 0.5, 0.2).detach()) == pytest.approx(
        _brute_cost(model, 0.5, 0.2, False, True), rel=1e-9)


@pytest.mark.parametrize("kw", MODELS)
def test_every_swap_leaves_function_unchanged(kw: dict) -> None:
    model = bimt.BioMLP(seed=2, **kw)
    x = _inputs(model)
    before = model(x).detach()
    g = torch.Generator().manual_seed(5)
    for _ in range(30):
        layer = int(torch.randint(0, model.depth + 1, (1,), generator=g))
        n = len(model.in_perm) if layer == 0 else model.widths[layer]
        i, j = (int(v) for v in torch.randint(0, n, (2,), generator=g))
        swap_neurons(model, layer, i, j)
        assert torch.allclose(model(x), before, atol=1e-6)
    assert sorted(model.in_perm.tolist()) == list(range(len(model.in_perm)))


@pytest.mark.parametrize("kw", MODELS[:3])
def test_swap_deltas_equal_recomputed_cost(kw: dict) -> None:
    model = bimt.BioMLP(seed=4, **kw)
    mats = cost_matrices(model, 1.0, 0.1)
    for layer in range(model.depth + 1):
        m = placement_cost(model, layer, mats)
        deltas = swap_deltas(m, 1)
        base = float(connection_cost(model).detach())
        for j in range(len(deltas)):
            trial = copy.deepcopy(model)
            swap_neurons(trial, layer, 1, j)
            got = float(connection_cost(trial).detach()) - base
            assert got == pytest.approx(float(deltas[j]), abs=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_relocation_never_increases_cost(seed: int) -> None:
    model = bimt.BioMLP([(2, 3), 12, 12, 3], seed=seed)
    with torch.no_grad():  # sparse, uneven weights make many swaps worthwhile
        g = torch.Generator().manual_seed(seed)
        for layer in model.layers:
            layer.weight.mul_((torch.rand(layer.weight.shape, generator=g) < 0.3).float() * 3)
    mats = cost_matrices(model)
    x = torch.randn(7, 6)
    out = model(x).detach()
    for _ in range(4):
        before = float(connection_cost(model).detach())
        report = swap_pass(model, mats, top_k=5)
        after = float(connection_cost(model).detach())
        assert after <= before + 1e-5
        assert after - before == pytest.approx(report.cost_change, abs=1e-4)
    assert torch.allclose(model(x), out, atol=1e-5)


def _permuted_copy(model: bimt.BioMLP, layer: int, i: int, j: int,
                   state: dict[str, torch.Tensor]) -> tuple[bimt.BioMLP, dict]:
    """Build, by plain indexing, the network (and moments) that a swap should produce."""
    perm = list(range(model.widths[layer]))
    perm[i], perm[j] = perm[j], perm[i]
    fresh = bimt.BioMLP(model.config()["widths"], seed=99)
    new_state = {}
    with torch.no_grad():
        for name, t in {**dict(model.named_parameters()), **state}.items():
            key = name.split(":")[0]
            k, kind = int(key.split(".")[1]), key.split(".")[2]
            t = t.detach().clone()
            if k == layer - 1:
                t = t[perm]
            if k == layer and kind == "weight":
                t = t[:, perm]
            if ":" in name:
                new_state[name] = t
            else:
                dict(fresh.named_parameters())[name].copy_(t)
    return fresh, new_state


@pytest.mark.parametrize("optimizer", ["torch", "flat"])
def test_swap_then_train_equals_training_a_prebuilt_swapped_network(indep, optimizer) -> None:
    x, y, _, _ = indep

    def make_opt(model):
        if optimizer == "torch":
            return torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
        return bimt.FlatAdamW(model, lr=2e-3)

    def moments(model, opt):
        return torch_optimizer_moments(model, opt) if optimizer == "torch" else opt.moments()

    def step(model, opt):
        loss = (model(x) - y).pow(2).mean() + 1e-2 * connection_cost(model)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        if optimizer == "torch":
            for p, gr in zip(model.parameters(), grads, strict=True):
                p.grad = gr
        else:
            opt.grad.copy_(torch.cat([gr.reshape(-1) for gr in grads]))
        opt.step()

    model = bimt.BioMLP([4, 20, 20, 2], seed=0)
    opt = make_opt(model)
    for _ in range(20):
        step(model, opt)
    # B: an independent network built already swapped, with its optimizer state permuted
    mom = {f"{n}:{q}": t for q, d in enumerate(moments(model, opt)) for n, t in d.items()}
    twin, twin_mom = _permuted_copy(model, 1, 3, 17, mom)
    twin_opt = make_opt(twin)
    step(twin, twin_opt)  # creates state; then overwrite it with the permuted one
    with torch.no_grad():
        for p, q in zip(twin.parameters(), _permuted_copy(model, 1, 3, 17, {})[0].parameters(),
                        strict=True):
            p.copy_(q)
        for q, d in enumerate(moments(twin, twin_opt)):
            for n, t in d.items():
                t.copy_(twin_mom[f"{n}:{q}"])
    if optimizer == "torch":
        for group in twin_opt.param_groups:
            for p in group["params"]:
                twin_opt.state[p]["step"].copy_(opt.state[next(iter(opt.state))]["step"])
    else:
        twin_opt.t = opt.t
    # A: swap in place, with the moments
    swap_neurons(model, 1, 3, 17, moments(model, opt))
    for _ in range(30):
        step(model, opt)
        step(twin, twin_opt)
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)


def test_swap_errors_name_the_argument() -> None:
    model = bimt.BioMLP([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match=r"'group' must be a name \(input, hidden1, output\) "
                       r"or an index from 0 to 2; got 5"):
        swap_neurons(model, 5, 0, 1)
    with pytest.raises(ValueError, match="got 'hidden7'"):
        swap_neurons(model, "hidden7", 0, 1)
    with pytest.raises(ValueError, match="index 'j' must be an integer from 0 to 3 in group "
                       "'hidden1'"):
        swap_neurons(model, 1, 0, 4)


def test_model_errors() -> None:
    with pytest.raises(TypeError, match="'widths' must be a list"):
        bimt.BioMLP("4,2")
    with pytest.raises(ValueError, match="need at least an input and an output"):
        bimt.BioMLP([4])
    with pytest.raises(ValueError, match="'activation' must be one of"):
        bimt.BioMLP([4, 2], activation="gelu2")
    with pytest.raises(ValueError, match="multiple of 'in_fold'"):
        bimt.BioMLP([5, 2], in_fold=2)
    with pytest.raises(TypeError, match="width 1 of 'widths'"):
        bimt.BioMLP([4, 2.5, 2])


def test_flat_adamw_matches_torch_adamw() -> None:
    a = bimt.BioMLP([3, 5, 2], seed=0)
    b = copy.deepcopy(a)
    ta = torch.optim.AdamW(a.parameters(), lr=1e-2, weight_decay=0.05)
    fb = bimt.FlatAdamW(b, lr=1e-2, weight_decay=0.05)
    x = torch.randn(9, 3)
    for _ in range(5):
        ta.zero_grad()
        (a(x) ** 2).mean().backward()
        ta.step()
        grads = torch.autograd.grad((b(x) ** 2).mean(), list(b.parameters()))
        fb.grad.copy_(torch.cat([g.reshape(-1) for g in grads]))
        fb.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)
