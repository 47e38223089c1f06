"""FlatAdamW: one flat parameter vector, same arithmetic as torch.optim.AdamW."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import traincore


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))


def test_flat_adamw_matches_torch_adamw() -> None:
    a = _net()
    b = copy.deepcopy(a)
    ta = torch.optim.AdamW(a.parameters(), lr=1e-2, weight_decay=0.05)
    fb = traincore.FlatAdamW(b, lr=1e-2, weight_decay=0.05)
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
    for key in ("exp_avg", "exp_avg_sq"):
        moments = fb.moments()[0 if key == "exp_avg" else 1]
        for (name, p) in a.named_parameters():
            assert torch.allclose(ta.state[p][key], moments[name], atol=1e-6), (key, name)


def test_parameters_live_in_the_flat_vector_and_state_round_trips() -> None:
    net = _net()
    opt = traincore.FlatAdamW(net)
    views = opt.views(opt.flat)
    assert views["0.weight"].data_ptr() == net[0].weight.data_ptr()
    with torch.no_grad():
        net[2].bias.fill_(3.0)
    assert float(opt.flat[-1]) == 3.0
    flat = opt.flat_like({"2.bias": torch.ones(2)})
    assert float(flat.sum()) == 2.0 and float(flat[-2:].sum()) == 2.0
    opt.grad.fill_(0.1)
    opt.step()
    state = opt.state_dict()
    other = traincore.FlatAdamW(_net())
    other.load_state_dict(state)
    assert other.t == 1 and torch.equal(other.m, opt.m) and torch.equal(other.v, opt.v)


def test_errors_name_the_problem() -> None:
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="Linear has no trainable parameters"):
        traincore.FlatAdamW(frozen)
    mixed = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2).double())
    with pytest.raises(ValueError, match="one dtype and device .* '1.weight' differs"):
        traincore.FlatAdamW(mixed)
    with pytest.raises(KeyError, match="'nope' is not a trainable parameter"):
        traincore.FlatAdamW(_net()).flat_like({"nope": torch.zeros(1)})
