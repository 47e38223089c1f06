"""BIMT in a plain PyTorch loop: from_torch, connection_cost, Swapper and relocate."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import bimt

F64 = torch.float64


def _mlp(*layers: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(*layers)


@pytest.mark.parametrize("net", [
    lambda: _mlp(nn.Linear(4, 20), nn.SiLU(), nn.Linear(20, 20), nn.SiLU(), nn.Linear(20, 2)),
    lambda: _mlp(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1)),
    lambda: _mlp(nn.Linear(3, 5, bias=False), nn.Tanh(), nn.Linear(5, 2, bias=False)),
    lambda: _mlp(nn.Sequential(nn.Linear(3, 6), nn.GELU()), nn.Linear(6, 4)),
    lambda: _mlp(nn.Linear(3, 6), nn.Identity(), nn.Linear(6, 2)),
    lambda: _mlp(nn.Linear(5, 3)),
    lambda: _mlp(nn.Linear(4, 7), nn.SiLU(), nn.Linear(7, 3)).to(F64),
])
def test_from_torch_gives_identical_outputs(net) -> None:
    module = net()
    bio = bimt.from_torch(module)
    x = torch.randn(17, module[0].in_features if isinstance(module[0], nn.Linear) else 3,
                    dtype=next(module.parameters()).dtype)
    assert isinstance(bio, bimt.BioMLP)
    assert torch.equal(bio(x), module(x))
    assert bio.layers[0].weight.dtype == next(module.parameters()).dtype
    assert bio.layers[0].weight.data_ptr() != next(module.parameters()).data_ptr()  # a copy


def test_from_torch_does_not_touch_the_global_rng() -> None:
    net = nn.Sequential(nn.Linear(4, 8), nn.SiLU(), nn.Linear(8, 2))
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    bimt.from_torch(net)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("net,error,message", [
    (nn.Linear(3, 2), TypeError, "takes an nn.Sequential of nn.Linear .* got Linear"),
    (nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.1), nn.Linear(4, 2)), TypeError,
     "layer 1 is Dropout"),
    (nn.Sequential(nn.Linear(3, 4), nn.SiLU()), ValueError,
     r"Layer 1 \(SiLU\) stands where the last nn.Linear should be"),
    (nn.Sequential(nn.ReLU(), nn.Linear(3, 4)), ValueError, "where the first nn.Linear"),
    (nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)), ValueError,
     "Layers 0 and 1 are both nn.Linear"),
    (nn.Sequential(nn.Linear(3, 4), nn.SiLU(), nn.Linear(5, 2)), ValueError,
     "Linear layer 2 takes 5 inputs but the one before gives 4"),
    (nn.Sequential(nn.Linear(3, 4), nn.SiLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1)),
     ValueError, r"mixes activations \(silu at layer 1, relu at layer 3\)"),
    (nn.Sequential(nn.Linear(3, 4), nn.SiLU(), nn.Linear(4, 1, bias=False)), ValueError,
     "Some nn.Linear layers have a bias and some do not"),
    (nn.Sequential(nn.Linear(3, 4), nn.GELU(approximate="tanh"), nn.Linear(4, 1)), ValueError,
     "exact GELU only"),
    (nn.Sequential(), ValueError, "at least one nn.Linear"),
])
def test_from_torch_explains_what_it_cannot_convert(net, error, message) -> None:
    with pytest.raises(error, match=message):
        bimt.from_torch(net)


def test_from_torch_network_trains_with_bimt() -> None:
    x = torch.rand(50, 3) * 2 - 1
    y = x[:, :1] * x[:, 1:2]
    bio = bimt.from_torch(_mlp(nn.Linear(3, 8), nn.GELU(), nn.Linear(8, 1)))
    h = bimt.train(bio, x, y, steps=400, x_test=x, y_test=y, progress=False, swap_every=100)
    assert h.engine == "analytic" and h.test_loss < 0.05


# --------------------------------------------------------------------------- Swapper
def _residual_perms(model, pairs) -> dict[str, list[int]]:
    """Compose the swaps of a report into one permutation per group (slot k holds old
    neuron perm[k])."""
    sizes = {"input": 3, "residual": model.width, "output": 2,
             **{f"mlp{k}": model.hidden for k in range(model.blocks)}}
    perms = {g: list(range(n)) for g, n in sizes.items()}
    for g, i, j in pairs:
        perms[g][i], perms[g][j] = perms[g][j], perms[g][i]
    return perms


def _permute_by_hand(name: str, t: torch.Tensor, p: dict[str, list[int]]) -> torch.Tensor:
    """Where each tensor of the test ResidualNet keeps its neurons, written out by hand
    (independently of the spatial description the swaps use)."""
    r = p["residual"]
    if name.startswith(("norms.", "final_norm.")):
        return t[r]
    part, *rest = name.split(".")
    kind = rest[-1]
    if part == "embed":
        return t[r][:, p["input"]] if kind == "weight" else t[r]
    if part == "unembed":
        return t[p["output"]][:, r] if kind == "weight" else t[p["output"]]
    k = rest[0]
    if part == "up":
        return t[p[f"mlp{k}"]][:, r] if kind == "weight" else t[p[f"mlp{k}"]]
    return t[r][:, p[f"mlp{k}"]] if kind == "weight" else t[r]  # down


OPTIMIZERS = {
    "AdamW": lambda params: torch.optim.AdamW(params, lr=1e-2, weight_decay=0.01),
    "Adam": lambda params: torch.optim.Adam(params, lr=1e-2),
    "SGD-momentum": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9),
}


def _data(n: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    x = torch.randn(n, 3, dtype=F64, generator=g)
    return x, torch.stack([x[:, 0] * x[:, 2], torch.sin(x[:, 1])], 1)


def _step(model, opt, x, y) -> None:
    loss = (model(x) - y).pow(2).mean() + 1e-2 * bimt.connection_cost(model)
    opt.zero_grad()
    loss.backward()
    opt.step()


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_swapper_keeps_torch_optimizer_state_consistent(residual_net, kind) -> None:
    """Training after a swap pass equals training a twin built already swapped (weights and
    optimizer state permuted by hand), for the residual network and torch's optimizers."""
    x, y = _data()
    model = residual_net(seed=0).double()
    opt = OPTIMIZERS[kind](model.parameters())
    for _ in range(15):
        _step(model, opt, x, y)
    before, state = copy.deepcopy(model), copy.deepcopy(opt.state_dict())
    swapper = bimt.Swapper(model, opt, every=5)
    assert swapper.step(3) is None
    out = model(x).detach()
    report = swapper.step(4)
    assert report is not None and report.swaps > 0 and swapper.swaps == report.swaps
    assert {g for g, *_ in report.pairs} >= {"residual"}
    assert torch.allclose(model(x), out, atol=1e-12, rtol=0)  # swaps never change model(x)
    perms = _residual_perms(model, report.pairs)
    twin = copy.deepcopy(before)
    names = [n for n, _ in twin.named_parameters()]
    with torch.no_grad():
        for name, p in twin.named_parameters():
            p.copy_(_permute_by_hand(name, p, perms))
        twin.in_perm.copy_(before.in_perm[perms["input"]])
        twin.out_perm.copy_(before.out_perm[perms["output"]])
    twin_opt = OPTIMIZERS[kind](twin.parameters())
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if value.ndim:
                entry[key] = _permute_by_hand(names[idx], value, perms)
    twin_opt.load_state_dict(state)
    for _ in range(20):
        _step(model, opt, x, y)
        _step(twin, twin_opt, x, y)
    for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-10, rtol=0), name
    assert torch.allclose(model(x), twin(x), atol=1e-10, rtol=0)


def test_swapper_without_the_optimizer_leaves_stale_moments(residual_net) -> None:
    """Control: the same pass without permuting AdamW's state diverges from the twin path."""
    x, y = _data()
    runs = []
    for permute in (True, False):
        model = residual_net(seed=0).double()
        opt = OPTIMIZERS["AdamW"](model.parameters())
        for _ in range(15):
            _step(model, opt, x, y)
        report = bimt.relocate(model, opt if permute else None)
        for _ in range(10):
            _step(model, opt, x, y)
        runs.append((report.swaps, model(x).detach()))
    assert runs[0][0] == runs[1][0] > 0
    assert not torch.allclose(runs[0][1], runs[1][1], atol=1e-6)


def test_swapper_in_a_training_loop_never_changes_outputs() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 4, generator=g) * 2 - 1
    y = torch.stack([(x[:, 0] + x[:, 2]) ** 3, x[:, 1] ** 2], 1)
    model = bimt.from_torch(_mlp(nn.Linear(4, 12), nn.SiLU(), nn.Linear(12, 2)))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    swapper = bimt.Swapper(model, opt, every=25)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16,
                                         shuffle=True, generator=torch.Generator().manual_seed(1))
    step, passes = 0, 0
    for _ in range(25):  # 4 batches per epoch: 100 steps, a pass after 25, 50, 75, 100
        for xb, yb in loader:
            loss = (model(xb) - yb).pow(2).mean() + 1e-2 * bimt.connection_cost(model)
            opt.zero_grad()
            loss.backward()
            opt.step()
            before = model(x).detach()
            if swapper.step(step) is not None:
                passes += 1
                assert torch.allclose(model(x), before, atol=1e-6)
            step += 1
    assert passes == 4 and swapper.swaps > 0
    assert "swaps=" in repr(swapper)


def test_swapper_options_and_errors() -> None:
    model = bimt.BioMLP([3, 6, 2], seed=0)
    with pytest.raises(ValueError, match="'every' must be a positive integer; got 0"):
        bimt.Swapper(model, None, every=0)
    with pytest.raises(TypeError, match="'optimizer' must be a torch.optim optimizer .* got str"):
        bimt.Swapper(model, "adam")
    with pytest.raises(ValueError, match="'step' must be the 0-based number"):
        bimt.Swapper(model).step(-1)
    with pytest.raises(TypeError, match="no BioLinear layer"):
        bimt.Swapper(nn.Linear(3, 2))
    assert bimt.Swapper(model, io=False).groups == ["hidden1"]
    opt = torch.optim.Adam(model.parameters())
    (model(torch.randn(4, 3)) ** 2).sum().backward()
    opt.step()
    opt.state[model.layers[0].weight]["exp_avg_sq"] = torch.zeros(6)  # a factored state
    with pytest.raises(ValueError, match="state 'exp_avg_sq' of parameter 'layers.0.weight' has "
                                         r"shape \(6,\)"):
        bimt.relocate(model, opt)


def test_swapper_follows_the_model_to_another_dtype() -> None:
    model = bimt.BioMLP([3, 8, 2], seed=0)
    swapper = bimt.Swapper(model)
    model.double()
    report = swapper.relocate()
    assert report.cost_change <= 0
    assert next(iter(swapper._mats.values())).dtype == F64
