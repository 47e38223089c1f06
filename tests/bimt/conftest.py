"""Tiny seeded fixtures for the bimt tests."""

from __future__ import annotations

import math

import pytest
import torch


def independence_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 4, generator=g) * 2 - 1
    y = torch.stack([(x[:, 0] + x[:, 2]) ** 3, x[:, 1] ** 2 + torch.sin(math.pi * x[:, 3])], 1)
    return x, y


@pytest.fixture
def indep() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    x, y = independence_data(100, 0)
    xt, yt = independence_data(100, 1)
    return x, y, xt, yt


@pytest.fixture(autouse=True)
def _one_thread():
    """The networks here are tiny: one thread is fastest and does not thrash a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- test-only nets
# Two spatial networks that are not BioMLPs, to prove that the spatial description covers
# residual streams (shared by blocks, LayerNorm) and recurrent matrices (rows and columns).

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from bimt.geometry import layer_coordinates  # noqa: E402
from bimt.layers import BioLinear  # noqa: E402
from bimt.spatial import Group, Link, Row, Spatial, Touch, Wire  # noqa: E402


class ResidualNet(nn.Module):
    """input -> embed -> [LayerNorm -> up -> silu -> down, added to the stream] x blocks
    -> LayerNorm -> unembed. One residual group read and written by every block."""

    def __init__(self, d_in: int = 3, width: int = 8, hidden: int = 6, d_out: int = 2,
                 blocks: int = 2, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        c_in, c_res, c_hid, c_out = (layer_coordinates(n) for n in (d_in, width, hidden, d_out))
        self.embed = BioLinear(c_in, c_res, generator=g)
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(blocks))
        self.up = nn.ModuleList(BioLinear(c_res, c_hid, generator=g) for _ in range(blocks))
        self.down = nn.ModuleList(BioLinear(c_hid, c_res, generator=g) for _ in range(blocks))
        self.final_norm = nn.LayerNorm(width)
        self.unembed = BioLinear(c_res, c_out, generator=g)
        with torch.no_grad():  # LayerNorm's default 1 / 0 would hide a missed permutation
            for norm in (*self.norms, self.final_norm):
                norm.weight.copy_(1 + 0.5 * torch.randn(width, generator=g))
                norm.bias.copy_(0.3 * torch.randn(width, generator=g))
        self.register_buffer("in_perm", torch.arange(d_in))
        self.register_buffer("out_perm", torch.arange(d_out))
        self.width, self.hidden, self.blocks = width, hidden, blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x[:, self.in_perm])  # (n, width): the residual stream
        for norm, up, down in zip(self.norms, self.up, self.down, strict=True):
            h = h + down(F.silu(up(norm(h))))
        out = self.unembed(self.final_norm(h))
        return out[:, torch.argsort(self.out_perm)]

    def spatial(self) -> Spatial:
        groups = [Group("input", "input", self.embed.in_coordinates, len(self.in_perm),
                        "in_perm"),
                  Group("residual", "residual", self.embed.out_coordinates, self.width)]
        groups += [Group(f"mlp{k}", "mlp", self.up[k].out_coordinates, self.hidden)
                   for k in range(self.blocks)]
        groups.append(Group("output", "output", self.unembed.out_coordinates,
                            len(self.out_perm), "out_perm"))
        rows = [Row("input"), Row("residual")]
        wires = [Wire("embed.weight", 0, 1, "embed.bias")]
        links = []
        touches = []
        for k in range(self.blocks):
            r = len(rows) - 1  # the stream entering block k
            rows += [Row(f"mlp{k}"), Row("residual")]
            wires += [Wire(f"up.{k}.weight", r, r + 1, f"up.{k}.bias"),
                      Wire(f"down.{k}.weight", r + 1, r + 2, f"down.{k}.bias")]
            links.append(Link(r, r + 2))
            touches += [Touch(f"norms.{k}.weight", 0, "residual"),
                        Touch(f"norms.{k}.bias", 0, "residual")]
        touches += [Touch("final_norm.weight", 0, "residual"),
                    Touch("final_norm.bias", 0, "residual")]
        rows.append(Row("output"))
        wires.append(Wire("unembed.weight", len(rows) - 2, len(rows) - 1, "unembed.bias"))
        return Spatial(tuple(groups), tuple(rows), tuple(wires), tuple(touches), tuple(links))


class RecurrentNet(nn.Module):
    """h_t = tanh(W_in x_t + W_hh h_{t-1}), y = W_out h_T: a matrix from a group to itself."""

    def __init__(self, d_in: int = 2, hidden: int = 7, d_out: int = 2, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        c_in, c_h, c_out = (layer_coordinates(n) for n in (d_in, (1, hidden), d_out))
        c_h = c_h.clone()
        c_h[:, 1] = torch.linspace(0.1, 0.9, hidden)  # hidden neurons spread in the plane
        self.inp = BioLinear(c_in, c_h, generator=g)
        self.rec = BioLinear(c_h, c_h, bias=False, generator=g)
        self.out = BioLinear(c_h, c_out, generator=g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (n, time, d_in) -> (n, d_out)
        h = x.new_zeros(x.shape[0], self.rec.in_features)
        for t in range(x.shape[1]):
            h = torch.tanh(self.inp(x[:, t]) + self.rec(h))
        return self.out(h)

    def spatial(self) -> Spatial:
        groups = (Group("input", "input", self.inp.in_coordinates, self.inp.in_features),
                  Group("hidden", "recurrent", self.inp.out_coordinates,
                        (1, self.inp.out_features)),
                  Group("output", "output", self.out.out_coordinates, self.out.out_features))
        rows = (Row("input"), Row("hidden"), Row("output"))
        wires = (Wire("inp.weight", 0, 1, "inp.bias"), Wire("rec.weight", 1, 1),
                 Wire("out.weight", 1, 2, "out.bias"))
        return Spatial(groups, rows, wires)


@pytest.fixture
def residual_net() -> type[ResidualNet]:
    return ResidualNet


@pytest.fixture
def recurrent_net() -> type[RecurrentNet]:
    return RecurrentNet
