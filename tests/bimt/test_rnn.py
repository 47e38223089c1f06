"""BioRNN: hidden neurons in the plane, a recurrent matrix whose rows and columns move
together. Swaps keep the function, swap-then-train equals the pre-swapped twin, the cost
equals a loop over every edge, and graph, modules, pictures, explorer and export read it."""

from __future__ import annotations

import copy
import importlib
import itertools
import json
import math

import networkx as nx
import numpy as np
import pytest
import torch

import bimt
from bimt.cost import cost_matrices
from bimt.spatial import describe
from bimt.swap import pair_terms, placement_cost, swap_deltas, swap_neurons, swap_pass

F64 = torch.float64


def _sequences(n: int = 12, time: int = 6, d_in: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, time, d_in, dtype=F64, generator=torch.Generator().manual_seed(seed))


def _random_swaps(model: torch.nn.Module, count: int, seed: int) -> list[tuple[str, int, int]]:
    rng = torch.Generator().manual_seed(seed)
    spec = describe(model)
    done = []
    for _ in range(count):
        g = spec.groups[int(torch.randint(0, len(spec.groups), (1,), generator=rng))]
        i, j = (int(v) for v in torch.randint(0, g.n, (2,), generator=rng))
        swap_neurons(model, g.name, i, j)
        done.append((g.name, i, j))
    return done


# --------------------------------------------------------------------------- structure
def test_shapes_grid_and_description() -> None:
    rnn = bimt.BioRNN(in_dim=3, hidden=16, out_dim=2, seed=0)
    assert rnn(torch.zeros(5, 7, 3)).shape == (5, 7, 2)
    assert rnn.shape == (4, 4) and bimt.BioRNN(2, 12, 1).shape == (3, 4)
    assert bimt.BioRNN(2, (2, 5), 1).hidden_size == 10
    spec = describe(rnn)
    assert [g.name for g in spec.groups] == ["input", "hidden", "output"]
    assert [(w.weight, w.src, w.dst) for w in spec.wires] == [
        ("inp.weight", 0, 1), ("rec.weight", 1, 1), ("out.weight", 1, 2)]
    assert spec.is_recurrent(spec.wires[1]) and not spec.is_recurrent(spec.wires[0])
    # hidden neurons fill the plane: four distinct depths, not one row
    assert len(set(spec.group("hidden").coordinates[:, 1].tolist())) == 4


def test_forward_is_the_elman_recursion() -> None:
    rnn = bimt.BioRNN(3, 6, 2, seed=1).double()
    x = _sequences()
    h = torch.zeros(len(x), 6, dtype=F64)
    expected = []
    for t in range(x.shape[1]):  # written out: h_t = tanh(W x_t + b + R h_{t-1}), y = V h + c
        h = torch.tanh(x[:, t] @ rnn.inp.weight.T + rnn.inp.bias + h @ rnn.rec.weight.T)
        expected.append(h @ rnn.out.weight.T + rnn.out.bias)
    assert torch.allclose(rnn(x), torch.stack(expected, 1), atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- swaps
def test_any_swap_leaves_outputs_unchanged() -> None:
    rnn = bimt.BioRNN(3, (3, 4), 2, seed=2).double()
    x = _sequences()
    before = rnn(x).detach()
    done = _random_swaps(rnn, 60, seed=3)
    assert {g for g, i, j in done if i != j} == {"input", "hidden", "output"}
    assert torch.allclose(rnn(x), before, atol=1e-6, rtol=0)
    assert torch.allclose(rnn(x), before, atol=1e-12, rtol=0)  # in fact to rounding


def test_swaps_without_biases_and_with_relu() -> None:
    rnn = bimt.BioRNN(2, 6, 3, activation="relu", bias=False, seed=4).double()
    assert rnn.inp.bias is None and rnn.config()["bias"] is False
    x = _sequences(d_in=2)
    before = rnn(x).detach()
    _random_swaps(rnn, 30, seed=5)
    assert torch.allclose(rnn(x), before, atol=1e-12, rtol=0)
    assert bimt.to_networkx(rnn).nodes[(1, 0)]["bias"] is None


def test_hidden_swap_permutes_rows_and_columns_together() -> None:
    rnn = bimt.BioRNN(3, 6, 2, seed=0)
    ref = copy.deepcopy(rnn)
    swap_neurons(rnn, "hidden", 1, 4)
    p = [0, 4, 2, 3, 1, 5]
    assert torch.equal(rnn.rec.weight, ref.rec.weight[p][:, p])
    assert torch.equal(rnn.inp.weight, ref.inp.weight[p])
    assert torch.equal(rnn.inp.bias, ref.inp.bias[p])
    assert torch.equal(rnn.out.weight, ref.out.weight[:, p])
    assert torch.equal(rnn.out.bias, ref.out.bias)  # output neurons did not move


def test_swap_changes_the_function_if_only_rows_move() -> None:
    """The test has teeth: permuting the recurrent rows but not its columns breaks it."""
    rnn = bimt.BioRNN(3, 6, 2, seed=0).double()
    x = _sequences()
    before = rnn(x).detach()
    p = [0, 4, 2, 3, 1, 5]
    with torch.no_grad():
        rnn.inp.weight.copy_(rnn.inp.weight[p])
        rnn.inp.bias.copy_(rnn.inp.bias[p])
        rnn.out.weight.copy_(rnn.out.weight[:, p])
        rnn.rec.weight.copy_(rnn.rec.weight[p])
    assert not torch.allclose(rnn(x), before, atol=1e-3)


def test_swap_deltas_equal_recomputed_cost() -> None:
    rnn = bimt.BioRNN(4, (3, 3), 2, seed=5)
    spec, mats = describe(rnn), cost_matrices(rnn)
    base = float(bimt.connection_cost(rnn).detach())
    for g in spec.groups:
        i = min(2, g.n - 1)
        deltas = swap_deltas(placement_cost(rnn, g.name, mats), i,
                             pair_terms(rnn, g.name, mats))
        for j in range(g.n):
            trial = copy.deepcopy(rnn)
            swap_neurons(trial, g.name, i, j)
            got = float(bimt.connection_cost(trial).detach()) - base
            assert got == pytest.approx(float(deltas[j]), abs=1e-5), (g.name, j)


def test_swap_pass_lowers_cost_and_keeps_function() -> None:
    rnn = bimt.BioRNN(4, 16, 2, seed=6).double()
    with torch.no_grad():  # sparse uneven weights: many swaps pay
        g = torch.Generator().manual_seed(0)
        for layer in (rnn.inp, rnn.rec, rnn.out):
            layer.weight.mul_((torch.rand(layer.weight.shape, generator=g, dtype=F64) < 0.4) * 3)
    x = _sequences(d_in=4)
    out = rnn(x).detach()
    mats = cost_matrices(rnn)
    swapped = set()
    for _ in range(3):
        before = float(bimt.connection_cost(rnn).detach())
        report = swap_pass(rnn, mats)
        after = float(bimt.connection_cost(rnn).detach())
        assert after <= before + 1e-9
        assert after - before == pytest.approx(report.cost_change, abs=1e-8)
        swapped |= {name for name, *_ in report.pairs}
    assert "hidden" in swapped
    assert torch.allclose(rnn(x), out, atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- Swapper
def _permute_by_hand(name: str, t: torch.Tensor, p: dict[str, list[int]]) -> torch.Tensor:
    """Where each BioRNN tensor keeps its neurons, written out independently of the
    spatial description the swaps use."""
    h, i, o = p["hidden"], p["input"], p["output"]
    return {"inp.weight": lambda: t[h][:, i], "inp.bias": lambda: t[h],
            "rec.weight": lambda: t[h][:, h],
            "out.weight": lambda: t[o][:, h], "out.bias": lambda: t[o]}[name]()


def _step(model, opt, x, y) -> None:
    loss = (model(x) - y).pow(2).mean() + 1e-2 * bimt.connection_cost(model)
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_swap_then_train_equals_training_the_preswapped_twin() -> None:
    """torch AdamW through bimt.Swapper: after a swap pass, training continues exactly as
    for a twin built already swapped (weights and AdamW moments permuted by hand)."""
    x = _sequences(16, 5, 3, seed=1)
    y = torch.stack([x[..., 0].cumsum(1) / 4, torch.roll(x[..., 2], 1, 1)], -1)
    rnn = bimt.BioRNN(3, 9, 2, seed=0).double()
    opt = torch.optim.AdamW(rnn.parameters(), lr=1e-2, weight_decay=0.01)
    for _ in range(15):
        _step(rnn, opt, x, y)
    before, state = copy.deepcopy(rnn), copy.deepcopy(opt.state_dict())
    swapper = bimt.Swapper(rnn, opt, every=5)
    out = rnn(x).detach()
    report = swapper.step(4)
    assert report is not None and report.swaps > 0
    assert "hidden" in {g for g, *_ in report.pairs}
    assert torch.allclose(rnn(x), out, atol=1e-12, rtol=0)
    perms = {"input": list(range(3)), "hidden": list(range(9)), "output": list(range(2))}
    for g, i, j in report.pairs:
        perms[g][i], perms[g][j] = perms[g][j], perms[g][i]
    twin = copy.deepcopy(before)
    names = [n for n, _ in twin.named_parameters()]
    with torch.no_grad():
        for name, p in twin.named_parameters():
            p.copy_(_permute_by_hand(name, p, perms))
        twin.in_perm.copy_(before.in_perm[perms["input"]])
        twin.out_perm.copy_(before.out_perm[perms["output"]])
    twin_opt = torch.optim.AdamW(twin.parameters(), lr=1e-2, weight_decay=0.01)
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if value.ndim:
                entry[key] = _permute_by_hand(names[idx], value, perms)
    twin_opt.load_state_dict(state)
    for _ in range(20):
        _step(rnn, opt, x, y)
        _step(twin, twin_opt, x, y)
    for (name, p), q in zip(rnn.named_parameters(), twin.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-10, rtol=0), name
    assert torch.allclose(rnn(x), twin(x), atol=1e-10, rtol=0)


# --------------------------------------------------------------------------- cost
def _grid_position(k: int, rows: int, cols: int) -> tuple[float, float]:
    r, c = divmod(k, cols)
    return (c + 0.5) / cols, (r + 0.5) / rows


@pytest.mark.parametrize("wf,l0", [(1.0, 0.1), (0.3, 0.0)])
def test_connection_cost_matches_brute_force_loop(wf, l0) -> None:
    """Every edge, recurrent ones included, from positions computed here from the layout
    rule (inputs and outputs in a row at depth 1/2, hidden neurons on the grid)."""
    rnn = bimt.BioRNN(3, (2, 3), 2, seed=3)
    _random_swaps(rnn, 20, seed=4)  # weights moved between fixed positions
    rows, cols = rnn.shape
    hid = [_grid_position(k, rows, cols) for k in range(rows * cols)]
    ins = [((k + 0.5) / 3, 0.5) for k in range(3)]
    outs = [((k + 0.5) / 2, 0.5) for k in range(2)]
    total = 0.0
    for layer, dst, src in ((rnn.inp, hid, ins), (rnn.rec, hid, hid), (rnn.out, outs, hid)):
        w = layer.weight.detach().tolist()
        for a, b in itertools.product(range(len(dst)), range(len(src))):
            d = math.dist(dst[a], src[b])
            total += abs(w[a][b]) * (wf * d + l0)
    assert float(bimt.connection_cost(rnn, wf, l0).detach()) == pytest.approx(total, rel=1e-5)
    with torch.no_grad():  # the recurrent part alone: zero the others
        rnn.inp.weight.zero_()
        rnn.out.weight.zero_()
    w = rnn.rec.weight.detach().tolist()
    rec = sum(abs(w[a][b]) * (wf * math.dist(hid[a], hid[b]) + l0)
              for a, b in itertools.product(range(6), range(6)))
    assert float(bimt.connection_cost(rnn, wf, l0).detach()) == pytest.approx(rec, rel=1e-5)


def test_connection_cost_is_differentiable_through_the_recurrent_matrix() -> None:
    rnn = bimt.BioRNN(2, 4, 1, seed=0)
    bimt.connection_cost(rnn).backward()
    assert rnn.rec.weight.grad is not None and rnn.rec.weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------- graph
def _two_blocks() -> bimt.BioRNN:
    """Inputs 0-1 and output 0 wired to hidden 0-1, inputs 2-3 and output 1 to hidden 2-3,
    recurrent weights only inside each block: two modules by construction."""
    rnn = bimt.BioRNN(4, (2, 2), 2, seed=0)
    with torch.no_grad():
        for layer in (rnn.inp, rnn.rec, rnn.out):
            layer.weight.zero_()
        rnn.inp.weight[:2, :2] = torch.tensor([[1.0, -0.5], [0.3, 0.8]])
        rnn.inp.weight[2:, 2:] = torch.tensor([[0.7, 0.2], [-0.9, 0.4]])
        rnn.rec.weight[:2, :2] = torch.tensor([[0.5, 0.6], [-0.4, 0.2]])
        rnn.rec.weight[2:, 2:] = torch.tensor([[0.3, -0.7], [0.6, 0.1]])
        rnn.out.weight[0, :2] = torch.tensor([1.0, 0.5])
        rnn.out.weight[1, 2:] = torch.tensor([-0.8, 0.9])
    return rnn


def test_graph_has_recurrent_edges_and_modules_follow_swaps() -> None:
    rnn = _two_blocks()
    g = bimt.to_networkx(rnn)
    rec = [(u, v, d) for u, v, d in g.edges(data=True) if u[0] == v[0] == 1]
    assert len(rec) == int((rnn.rec.weight != 0).sum()) == 8
    assert g.edges[(1, 1), (1, 0)]["weight"] == pytest.approx(0.6)  # rec[0, 1]: 1 -> 0
    assert g.nodes[(1, 2)]["kind"] == "recurrent" and g.nodes[(1, 2)]["group"] == "hidden"
    expected = [({0, 1}, {0}), ({2, 3}, {1})]
    found = bimt.modules(rnn)
    assert [(set(m.inputs), set(m.outputs)) for m in found] == expected
    assert [m.neurons for m in found] == [2, 2]
    _random_swaps(rnn, 30, seed=1)  # modules name original inputs/outputs, whatever moved
    assert [(set(m.inputs), set(m.outputs)) for m in bimt.modules(rnn)] == expected
    assert bimt.modularity(rnn) > 0.4
    with torch.no_grad():  # one recurrent weight across the blocks joins them
        rnn.rec.weight[0, 3] = 0.5
    assert len(bimt.modules(rnn)) == 1


def test_large_graphs_are_partitioned_by_louvain(monkeypatch) -> None:
    modularity = importlib.import_module("bimt.modularity")  # bimt.modularity: the function
    rnn = _two_blocks()
    small = bimt.modularity(rnn, 0.0)
    calls = []
    louvain = nx.community.louvain_communities
    monkeypatch.setattr(nx.community, "louvain_communities",
                        lambda *a, **k: calls.append(k) or louvain(*a, **k))
    assert bimt.modularity(rnn, 0.0) == small and not calls  # 20 edges: greedy
    monkeypatch.setattr(modularity, "GREEDY_MAX_EDGES", 10)
    assert bimt.modularity(rnn, 0.0) == pytest.approx(small) and calls[0]["seed"] == 0
    assert small > 0.4  # two disconnected blocks


def test_export_graph_reads_back_equal(tmp_path) -> None:
    rnn = _two_blocks()
    _random_swaps(rnn, 10, seed=2)
    for ext in (".graphml", ".gexf", ".json"):
        path = tmp_path / f"rnn{ext}"
        written = bimt.export_graph(rnn, path)
        back = bimt.read_graph(path)
        assert set(back.nodes) == set(written.nodes) and len(back) == 4 + 4 + 2
        assert set(back.edges) == set(written.edges)
        for n in written.nodes:
            want = {k: v for k, v in written.nodes[n].items() if k != "viz"}
            assert {k: back.nodes[n][k] for k in want} == want, (ext, n)
        for u, v in written.edges:
            assert back.edges[u, v]["weight"] == pytest.approx(written.edges[u, v]["weight"])
        assert {back.nodes[n]["module"] for n in back if back.nodes[n]["kind"] == "recurrent"} \
            == {0, 1}
    back = nx.read_graphml(tmp_path / "rnn.graphml")  # networkx's own reader agrees
    assert sum(1 for u, v in back.edges if u.startswith("1:") and v.startswith("1:")) == 8


def test_explore_writes_a_page_with_recurrent_weights_in_the_hover(tmp_path) -> None:
    pytest.importorskip("plotly", reason="the explorer needs the optional extra 'explore'")
    rnn = _two_blocks().requires_grad_(False)
    ex = bimt.explore(rnn, tmp_path / "rnn.html", title="rnn")
    page = (tmp_path / "rnn.html").read_text()
    assert 'id="bimt-explorer"' in page and "<script src=" not in page
    assert ex.neurons == 10 and ex.edges == 4 + 4 + 8 + 4
    trace = ex.figure.data[-1]
    hover = trace.hovertext[list(trace.customdata).index("1:0")]
    # hidden neuron 0: bias, recurrent input from h1.2 (0.6) and its strongest output y1
    assert f"bias {float(rnn.inp.bias[0]):+.3g}" in hover
    assert "h1.2" in hover and "+0.6" in hover and "y1" in hover
    assert "2 modules" in ex.figure.layout.title.text


def test_draw_animate_and_run_directory_round_trip(tmp_path) -> None:
    x = torch.randn(32, 5, 2, generator=torch.Generator().manual_seed(0))
    y = torch.cat([x[..., :1].cumsum(1) / 3, x[..., 1:]], -1)
    rnn = bimt.BioRNN(2, 9, 2, seed=0)
    hist = bimt.train(rnn, x, y, steps=60, seed=0, snapshot_every=20, checkpoint_dir=tmp_path,
                      progress=False, swap_every=20)
    assert hist.engine == "autograd" and hist.steps == 60
    fig = bimt.draw(rnn, tmp_path / "rnn.png", color_modules=True)
    assert (tmp_path / "rnn.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(t.get_text() for t in fig.axes[0].texts) == [
        "$x_{1}$", "$x_{2}$", "$y_{1}$", "$y_{2}$"]
    bimt.animate(rnn, hist.snapshots, tmp_path / "rnn.gif")
    assert (tmp_path / "rnn.gif").read_bytes()[:3] == b"GIF"
    model, snaps = bimt.load_run(tmp_path)
    assert isinstance(model, bimt.BioRNN) and model.shape == (3, 3)
    assert [s["step"] for s in snaps] == [0, 20, 40, 60]
    assert torch.equal(model(x), rnn.cpu()(x))


# --------------------------------------------------------------------------- training
def test_train_learns_a_running_sum_with_minibatches() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(128, 6, 2, generator=g) * 2 - 1
    y = torch.stack([x[..., 0].cumsum(1) / 4, x[..., 1].cumsum(1) / 4], -1)
    rnn = bimt.BioRNN(2, 8, 2, seed=0)
    start = float((rnn(x) - y).pow(2).mean().detach())
    hist = bimt.train(rnn, x, y, steps=400, batch_size=32, seed=0, x_test=x, y_test=y,
                      progress=False, lam=1e-4)
    assert hist.test_loss < 0.1 * start


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("args,error,message", [
    ((0, 4, 2), ValueError, "The 'in_dim' of BioRNN must be a positive integer; got 0"),
    ((2, 4, 2.5), ValueError, "The 'out_dim' of BioRNN must be a positive integer"),
    ((2, "many", 2), TypeError, "'hidden' size of BioRNN must be a positive integer or"),
    ((2, 0, 2), ValueError, "'hidden' size of BioRNN must be a positive integer; got 0"),
])
def test_bad_construction_is_one_line(args, error, message) -> None:
    with pytest.raises(error, match=message) as info:
        bimt.BioRNN(*args)
    assert "\n" not in str(info.value)


def test_bad_activation_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'activation' of BioRNN must be one of \[") as info:
        bimt.BioRNN(2, 4, 1, activation="sigmoid")
    assert "\n" not in str(info.value)


def test_data_that_does_not_fit_is_refused_in_one_line() -> None:
    rnn = bimt.BioRNN(3, 4, 2, seed=0)
    with pytest.raises(ValueError, match=r"must have shape \(batch, time, 3\); got \(4, 5, 2\)"):
        rnn(torch.zeros(4, 5, 2))
    with pytest.raises(ValueError, match=r"must have shape \(batch, time, 3\); got \(4, 3\)"):
        rnn(torch.zeros(4, 3))
    cases = [(torch.zeros(8, 5, 2), torch.zeros(8, 5, 2), r"cannot take 'x_train' of shape"),
             (torch.zeros(8, 5, 3), torch.zeros(8, 5, 3), r"does not match 'y_train'"),
             (torch.zeros(8, 5, 3), torch.zeros(7, 5, 2), r"one row per row of 'x_train'")]
    for x, y, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            bimt.train(rnn, x, y, steps=1, progress=False)
        assert "\n" not in str(info.value)


def test_a_model_without_biolinear_layers_is_refused_in_one_line() -> None:
    gru = torch.nn.GRU(3, 4, batch_first=True)
    for fn in (lambda: bimt.train(gru, torch.zeros(4, 5, 3), torch.zeros(4, 5, 4), steps=1),
               lambda: bimt.connection_cost(gru), lambda: bimt.Swapper(gru),
               lambda: bimt.export_graph(gru, "net.json")):
        with pytest.raises(TypeError, match=r"\(GRU\) has no BioLinear layer") as info:
            fn()
        assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- two-streams
def test_two_streams_targets_against_a_loop() -> None:
    from bimt.streams import two_streams_targets

    x = np.random.default_rng(0).uniform(-1, 1, (3, 7, 4))
    y = two_streams_targets(x)
    for n, t in itertools.product(range(3), range(7)):
        running = sum(x[n, s, 0] - x[n, s, 1] for s in range(t + 1)) / 10
        remembered = ((x[n, t - 1, 2] if t >= 1 else 0.0) + (x[n, t - 2, 3] if t >= 2 else 0.0))
        assert y[n, t, 0] == pytest.approx(running)
        assert y[n, t, 1] == pytest.approx(remembered / 2)


def test_bimt_train_two_streams_writes_its_files_and_resumes(tmp_path, capsys) -> None:
    from bimt.cli import main

    assert main(["tasks"]) == 0
    assert any(line.startswith("two-streams ") for line in capsys.readouterr().out.splitlines())
    out = tmp_path / "run"
    assert main(["train", "two-streams", "--steps", "200", "--out", str(out), "--html"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "two-streams" and metrics["model"]["class"] == "BioRNN"
    assert metrics["prune_threshold"] == 0.02 and metrics["steps"] == 200
    assert all(set(m) >= {"inputs", "outputs"} for m in metrics["modules"])
    for name, magic in (("network.png", b"\x89PNG"), ("training.gif", b"GIF")):
        assert (out / name).read_bytes()[:len(magic)] == magic
    assert (out / "checkpoint.pt").is_file() and (out / "network.html").is_file()
    model, snaps = bimt.load_run(out)
    assert isinstance(model, bimt.BioRNN) and [s["step"] for s in snaps] == [0, 200]
    pytest.importorskip("plotly", reason="the explorer needs the optional extra 'explore'")
    from bimt.explore import _run_threshold

    assert _run_threshold(out) == 0.02 and _run_threshold(tmp_path) == 0.05
    title = bimt.explore(out, None).figure.layout.title.text  # modules as metrics.json has
    assert f": {len(metrics['modules'])} module" in title
    assert main(["train", "two-streams", "--steps", "200", "--out", str(out)]) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert again["resumed_from"] == 200 and again["test_loss"] == metrics["test_loss"]


def test_self_connections_are_drawn_as_loops(tmp_path) -> None:
    """A neuron's recurrent weight to itself (an integrator) is a small loop in the picture
    and in the explorer, not a line of length zero."""
    from bimt.layout import loop_points

    rnn = _two_blocks().requires_grad_(False)
    with torch.no_grad():
        rnn.rec.weight[3, 3] = 0.9
    fig = bimt.draw(rnn)
    lines = fig.axes[0].collections[0].get_segments()
    x, y = bimt.neuron_positions(rnn)[1][3]
    assert any(len(s) == 13 and np.allclose(s, loop_points(x, y)) for s in lines)
    # 4 diagonal recurrent weights (_two_blocks), 20 connections in all
    assert sum(len(s) == 13 for s in lines) == 4 and len(lines) == 20
    ex = bimt.explore(rnn, None)
    xs = np.concatenate([np.asarray(t.x, dtype=float) for t in ex.figure.data[:-1]])
    assert int(np.isnan(xs).sum()) == 20  # one gap per connection, the loops included
    assert np.isclose(xs, x + 0.03).any()  # the loop's right edge


def test_train_takes_a_dataloader_of_sequences() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(96, 5, 2, generator=g) * 2 - 1
    y = x.cumsum(1) / 5
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32,
                                         shuffle=True, generator=torch.Generator().manual_seed(1))
    rnn = bimt.BioRNN(2, 4, 2, seed=0)
    hist = bimt.train(rnn, loader, steps=30, seed=0, progress=False, swap_every=10)
    assert hist.steps == 30 and hist.engine == "autograd" and math.isfinite(hist.train_loss)
