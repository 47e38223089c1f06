"""The spatial description on networks that are not BioMLPs: a residual stream shared by two
blocks with LayerNorms, and a recurrent matrix. Swaps, cost, search, graph and pictures."""

from __future__ import annotations

import copy
import itertools
import math

import networkx as nx
import pytest
import torch

import bimt
from bimt.cost import cost_matrices
from bimt.spatial import Spatial, describe
from bimt.swap import pair_terms, placement_cost, swap_deltas, swap_neurons, swap_pass


def _brute_cost(model: torch.nn.Module, wf: float = 1.0, l0: float = 0.1) -> float:
    """Every edge of every BioLinear, from the layers' own coordinate buffers."""
    total = 0.0
    for layer in model.modules():
        if isinstance(layer, bimt.BioLinear):
            w = layer.weight.detach().tolist()
            for i, j in itertools.product(range(layer.out_features), range(layer.in_features)):
                xo, zo = layer.out_coordinates[i].tolist()
                xi, zi = layer.in_coordinates[j].tolist()
                total += abs(w[i][j]) * (wf * math.hypot(xo - xi, zo - zi) + l0)
    return total


def _random_swaps(model, rng: torch.Generator, count: int) -> list[tuple[str, int, int]]:
    spec = describe(model)
    done = []
    movable = [g for g in spec.groups if g.movable]
    for _ in range(count):
        g = movable[int(torch.randint(0, len(movable), (1,), generator=rng))]
        i, j = (int(v) for v in torch.randint(0, g.n, (2,), generator=rng))
        swap_neurons(model, g.name, i, j)
        done.append((g.name, i, j))
    return done


def test_residual_swaps_leave_outputs_unchanged(residual_net) -> None:
    model = residual_net(seed=1).double()
    x = torch.randn(9, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    before = model(x).detach()
    rng = torch.Generator().manual_seed(2)
    done = _random_swaps(model, rng, 40)
    assert {name for name, i, j in done if i != j} >= {"input", "residual", "mlp0", "mlp1",
                                                       "output"}
    assert torch.allclose(model(x), before, atol=1e-12, rtol=0)


def test_residual_swap_needs_every_block_and_norm(residual_net) -> None:
    """The test has teeth: a description missing the LayerNorms (or permuting only one
    block, as the research code's transformer would) changes the function."""
    model = residual_net(seed=1).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    before = model(x).detach()
    full = describe(model)
    no_norms = Spatial(full.groups, full.rows, full.wires, (), full.links)
    broken = copy.deepcopy(model)
    swap_neurons(broken, "residual", 0, 5, spec=no_norms)
    assert not torch.allclose(broken(x), before, atol=1e-3)
    one_block = Spatial(full.groups, full.rows, full.wires[:3], full.touches, full.links)
    broken = copy.deepcopy(model)
    swap_neurons(broken, "residual", 0, 5, spec=one_block)
    assert not torch.allclose(broken(x), before, atol=1e-3)
    swap_neurons(model, "residual", 0, 5)  # the full description: unchanged
    assert torch.allclose(model(x), before, atol=1e-12, rtol=0)


def test_residual_swap_permutes_every_tensor_of_the_stream(residual_net) -> None:
    model = residual_net(seed=0)
    ref = copy.deepcopy(model)
    swap_neurons(model, "residual", 1, 6)
    p = [0, 6, 2, 3, 4, 5, 1, 7]
    expected = {"embed.weight": ref.embed.weight[p], "embed.bias": ref.embed.bias[p],
                "final_norm.weight": ref.final_norm.weight[p],
                "unembed.weight": ref.unembed.weight[:, p]}
    for k in range(2):
        expected[f"up.{k}.weight"] = ref.up[k].weight[:, p]
        expected[f"down.{k}.weight"] = ref.down[k].weight[p]
        expected[f"down.{k}.bias"] = ref.down[k].bias[p]
        expected[f"norms.{k}.weight"] = ref.norms[k].weight[p]
        expected[f"norms.{k}.bias"] = ref.norms[k].bias[p]
    params = dict(model.named_parameters())
    for name, value in expected.items():
        assert torch.equal(params[name], value), name
    assert torch.equal(model.up[0].bias, ref.up[0].bias)  # hidden neurons did not move


@pytest.mark.parametrize("wf,l0", [(1.0, 0.1), (0.3, 0.0)])
def test_connection_cost_matches_brute_force_loop(residual_net, recurrent_net, wf, l0) -> None:
    for model in (residual_net(seed=3), recurrent_net(seed=3)):
        _random_swaps(model, torch.Generator().manual_seed(4), 10)
        fast = float(bimt.connection_cost(model, wf, l0).detach())
        assert fast == pytest.approx(_brute_cost(model, wf, l0), rel=1e-5)


def test_connection_cost_is_differentiable_for_any_spatial_network(residual_net) -> None:
    model = residual_net(seed=0)
    bimt.connection_cost(model, bias=True).backward()
    assert model.embed.weight.grad is not None and model.down[1].bias.grad is not None
    assert model.norms[0].weight.grad is None  # LayerNorm weights are not connections


@pytest.mark.parametrize("which", ["residual", "recurrent"])
def test_swap_deltas_equal_recomputed_cost(residual_net, recurrent_net, which) -> None:
    model = residual_net(seed=5) if which == "residual" else recurrent_net(seed=5)
    spec = describe(model)
    mats = cost_matrices(model)
    base = float(bimt.connection_cost(model).detach())
    for g in (g for g in spec.groups if g.movable):
        deltas = swap_deltas(placement_cost(model, g.name, mats),
                             min(2, g.n - 1), pair_terms(model, g.name, mats))
        for j in range(g.n):
            trial = copy.deepcopy(model)
            swap_neurons(trial, g.name, min(2, g.n - 1), j)
            got = float(bimt.connection_cost(trial).detach()) - base
            assert got == pytest.approx(float(deltas[j]), abs=1e-5), (g.name, j)


def test_recurrent_swap_moves_rows_and_columns(recurrent_net) -> None:
    model = recurrent_net(seed=0).double()
    x = torch.randn(4, 5, 2, dtype=torch.float64)
    before = model(x).detach()
    ref = model.rec.weight.detach().clone()
    swap_neurons(model, "hidden", 1, 4)
    p = [0, 4, 2, 3, 1, 5, 6]
    assert torch.equal(model.rec.weight, ref[p][:, p])
    assert torch.allclose(model(x), before, atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="group 'input' cannot move: the model records no "
                                         "permutation"):
        swap_neurons(model, "input", 0, 1)


@pytest.mark.parametrize("which", ["residual", "recurrent"])
def test_swap_pass_lowers_cost_and_keeps_function(residual_net, recurrent_net, which) -> None:
    model = (residual_net(seed=6) if which == "residual" else recurrent_net(seed=6)).double()
    with torch.no_grad():  # sparse, uneven weights make many swaps worthwhile
        g = torch.Generator().manual_seed(0)
        for layer in model.modules():
            if isinstance(layer, bimt.BioLinear):
                layer.weight.mul_((torch.rand(layer.weight.shape, generator=g,
                                              dtype=torch.float64) < 0.4) * 3)
    x = torch.randn(6, 3, dtype=torch.float64) if which == "residual" else \
        torch.randn(6, 4, 2, dtype=torch.float64)
    out = model(x).detach()
    mats = cost_matrices(model)
    total = 0
    for _ in range(3):
        before = float(bimt.connection_cost(model).detach())
        report = swap_pass(model, mats)
        after = float(bimt.connection_cost(model).detach())
        assert after <= before + 1e-9
        assert after - before == pytest.approx(report.cost_change, abs=1e-8)
        total += report.swaps
    assert total > 0
    assert torch.allclose(model(x), out, atol=1e-12, rtol=0)


def test_graph_of_a_residual_network(residual_net) -> None:
    model = residual_net(seed=0)
    g = bimt.to_networkx(model)
    assert g.number_of_nodes() == 3 + 8 + 6 + 8 + 6 + 8 + 2
    skips = [e for e in g.edges(data=True) if e[2]["kind"] == "skip"]
    assert len(skips) == 16 and all(d["weight"] == 1.0 for *_, d in skips)
    assert {g.nodes[n]["group"] for n in g} == {"input", "residual", "mlp0", "mlp1", "output"}
    node = g.nodes[(3, 2)]  # the stream after block 0: written by down.0
    assert node["kind"] == "residual" and node["label"] == "r3.3"
    assert node["bias"] == pytest.approx(float(model.down[0].bias[2].detach()))
    assert g.nodes[(1, 2)]["bias"] == pytest.approx(float(model.embed.bias[2].detach()))
    assert g.nodes[(0, 0)]["bias"] is None and g.nodes[(0, 0)]["label"] == "x1"
    # a residual network is one module: every input reaches every output through the stream
    found = bimt.modules(model, threshold=0.0)
    assert [(set(m.inputs), set(m.outputs)) for m in found] == [({0, 1, 2}, {0, 1})]
    assert bimt.active_neurons(model, 0.0) == [8, 6, 8, 6, 8]


def test_pictures_of_a_residual_network(residual_net, tmp_path) -> None:
    model = residual_net(seed=0)
    fig = bimt.draw(model, tmp_path / "res.png", color_modules=True)
    assert (tmp_path / "res.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(t.get_text() for t in fig.axes[0].texts) == [
        "$x_{1}$", "$x_{2}$", "$x_{3}$", "$y_{1}$", "$y_{2}$"]
    snaps = [{"step": 0, "state": copy.deepcopy(model.state_dict())}]
    bimt.animate(model, snaps, tmp_path / "res.gif")
    assert (tmp_path / "res.gif").read_bytes()[:3] == b"GIF"


def test_describe_refuses_networks_without_positions(residual_net) -> None:
    with pytest.raises(TypeError, match=r"\(Linear\) has no BioLinear layer"):
        describe(torch.nn.Linear(3, 2))
    with pytest.raises(TypeError, match="must be a torch.nn.Module"):
        describe("model")
    bare = torch.nn.Sequential(bimt.BioMLP([2, 3, 1]).layers[0])
    with pytest.raises(TypeError, match="has BioLinear layers but no spatial"):
        describe(bare)
    for fn in (bimt.connection_cost, bimt.to_networkx, bimt.relocate):
        with pytest.raises(TypeError, match="no BioLinear layer"):
            fn(torch.nn.Linear(3, 2))


def test_descriptions_are_checked_against_the_model(residual_net) -> None:
    model = residual_net(seed=0)
    good = describe(model)
    wrong = Spatial(good.groups, good.rows,
                    (bimt.Wire("embed.weight", 0, 2), *good.wires[1:]))  # mlp0 has 6, not 8
    with pytest.raises(ValueError, match=r"'embed.weight' .* has 8 entries along dimension 0 but "
                                         r"row 2 \(mlp0\) has 6 neurons"):
        wrong.check(model)
    with pytest.raises(ValueError, match="names parameter 'nope.weight'"):
        Spatial(good.groups, good.rows, (bimt.Wire("nope.weight", 0, 1),)).check(model)
    with pytest.raises(ValueError, match="group names of a spatial description must be unique"):
        Spatial((good.groups[0], good.groups[0]), (), ())
    with pytest.raises(ValueError, match="refers to a row outside 0..1"):
        Spatial(good.groups, good.rows[:2], (bimt.Wire("embed.weight", 0, 5),))
    with pytest.raises(ValueError, match="head_size of group 'g' must divide its 4"):
        bimt.Group("g", "attn", torch.zeros(4, 2), 4, head_size=3)
    with pytest.raises(ValueError, match="kind of group 'g' must be one of"):
        bimt.Group("g", "cortex", torch.zeros(4, 2), 4)
    swap_neurons(model, "mlp1", 0, 5)  # fine; heads below restrict swaps
    heads = bimt.Group("residual", "residual", good.groups[1].coordinates, 8, head_size=4)
    headed = Spatial((good.groups[0], heads, *good.groups[2:]), good.rows, good.wires,
                     good.touches, good.links)
    with pytest.raises(ValueError, match="different heads"):
        swap_neurons(model, "residual", 1, 5, spec=headed)
    report = swap_pass(model, cost_matrices(model), spec=headed)
    assert all(i // 4 == j // 4 for name, i, j in report.pairs if name == "residual")


def test_graph_contract_attributes_on_biomlp() -> None:
    """The node and edge attributes other tools (the explorer, exports) rely on."""
    model = bimt.BioMLP([(2, 2), 3, 2], seed=0)
    swap_neurons(model, "output", 0, 1)
    g = bimt.to_networkx(model)
    assert isinstance(g, nx.DiGraph)
    for node, d in g.nodes(data=True):
        assert set(d) >= {"layer", "group", "slot", "x", "y", "kind", "label", "index", "bias",
                          "pos", "height"}
        assert node == (d["layer"], d["slot"])
        assert isinstance(d["x"], float) and isinstance(d["y"], float)
    assert [g.nodes[(2, s)]["label"] for s in range(2)] == ["y2", "y1"]
    assert g.nodes[(2, 0)]["index"] == 1 and g.nodes[(1, 1)]["label"] == "h1.2"
    assert g.nodes[(1, 2)]["bias"] == pytest.approx(float(model.layers[0].bias[2].detach()))
    assert g.nodes[(0, 3)]["group"] == "input" and g.nodes[(1, 0)]["group"] == "hidden1"
    pos = bimt.neuron_positions(model)
    assert (g.nodes[(0, 3)]["x"], g.nodes[(0, 3)]["y"]) == pytest.approx(tuple(pos[0][3]))
    for _, _, d in g.edges(data=True):
        assert d["abs_weight"] == abs(d["weight"]) and d["kind"] == "weight"
