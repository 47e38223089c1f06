"""BioTransformer: swaps of every kind keep the function, cost by brute force, causality,
training after swaps, and the pictures and graphs of a transformer."""

from __future__ import annotations

import copy
import importlib.util
import itertools
import json

import networkx as nx
import pytest
import torch

import bimt
import traincore
from bimt.cli import main
from bimt.cost import cost_matrices
from bimt.incontext import N_TRAIN, incontext_sequences, last_token_mse
from bimt.spatial import describe
from bimt.swap import swap_neurons, swap_pass


def _net(seed: int = 0, n_head: int = 2, **kw) -> bimt.BioTransformer:
    """A small float64 transformer with non-trivial LayerNorms (defaults 1/0 would hide a
    missed permutation)."""
    args = dict(in_dim=3, out_dim=2, n_embed=8, n_head=n_head, n_layer=2, mlp_hidden=12,
                max_len=6)
    args.update(kw)
    tr = bimt.BioTransformer(**args, seed=seed).double()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in tr.named_parameters():
            if "ln" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0)
                        + 0.4 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return tr


def _x(n: int = 4, t: int = 5, d: int = 3, seed: int = 7) -> torch.Tensor:
    return torch.randn(n, t, d, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


# every kind of swap: (group, i, j); heads of size 4 with n_head=2, n_embed=8
SWAPS = [("residual", 0, 5), ("residual", 7, 2), ("qk0", 0, 3), ("qk1", 5, 6), ("v0", 1, 2),
         ("v1", 4, 7), ("mlp0", 0, 11), ("mlp1", 3, 4), ("input", 0, 2), ("output", 0, 1)]


@pytest.mark.parametrize("group,i,j", SWAPS)
def test_any_swap_keeps_the_outputs(group, i, j) -> None:
    tr = _net()
    x = _x()
    before = tr(x)
    swap_neurons(tr, group, i, j)
    assert (tr(x) - before).abs().max() < 1e-6  # float64: in practice ~1e-15


def test_random_swap_sequences_keep_the_outputs() -> None:
    tr = _net(seed=3)
    spec = describe(tr)
    x = _x(seed=1)
    before = tr(x)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        grp = spec.groups[int(torch.randint(len(spec.groups), (1,), generator=g))]
        hs = grp.head_size or grp.n
        i = int(torch.randint(grp.n, (1,), generator=g))
        j = i - i % hs + int(torch.randint(hs, (1,), generator=g))
        swap_neurons(tr, grp.name, i, j, spec=spec)
    assert (tr(x) - before).abs().max() < 1e-10


def test_swaps_that_break_the_structure_change_the_function() -> None:
    """The invariance tests can fail: q and k permuted apart, v without the output
    projection, or one block's stream alone all change the outputs."""
    x = _x()
    base = _net()
    ref = base(x)

    def changed(fn) -> bool:
        tr = copy.deepcopy(base)
        with torch.no_grad():
            fn(tr)
        return bool((tr(x) - ref).abs().max() > 1e-4)

    def rows(t, i, j):
        t[[i, j]] = t[[j, i]]

    def cols(t, i, j):
        t[:, [i, j]] = t[:, [j, i]]

    # q only (rows 0, 1 of qk), not k (rows 8, 9)
    assert changed(lambda tr: (rows(tr.blocks[0].qk.weight, 0, 1),
                               rows(tr.blocks[0].qk.bias, 0, 1)))
    # v without proj
    assert changed(lambda tr: (rows(tr.blocks[0].v.weight, 0, 1),
                               rows(tr.blocks[0].v.bias, 0, 1)))
    # across heads: q, k, v and proj all together but dims 0 and 4 are in different heads
    def across(tr):
        b = tr.blocks[0]
        for r in (0, 8):
            rows(b.qk.weight, r, r + 4)
            rows(b.qk.bias, r, r + 4)
    assert changed(across)
    # the residual stream permuted in block 0 only (what the research code would do)
    def one_block(tr):
        b = tr.blocks[0]
        for lin in (b.qk, b.v, b.fc1):
            cols(lin.weight, 0, 1)
        for lin in (b.proj, b.fc2):
            rows(lin.weight, 0, 1)
            rows(lin.bias, 0, 1)
        for ln in (b.ln1, b.ln2):
            rows(ln.weight, 0, 1)
            rows(ln.bias, 0, 1)
    assert changed(one_block)


def test_heads_confine_attention_swaps() -> None:
    tr = _net(n_head=2)
    with pytest.raises(ValueError, match="different heads"):
        swap_neurons(tr, "qk0", 0, 4)
    spec = describe(tr)
    assert spec.group("qk0").head_size == 4 and spec.group("residual").head_size is None


def test_swap_pass_keeps_the_outputs_and_lowers_the_cost() -> None:
    tr = _net(seed=5)
    x = _x()
    before, cost0 = tr(x), float(bimt.connection_cost(tr).detach())
    mats = cost_matrices(tr)
    report = swap_pass(tr, mats, top_k=8)
    assert report.swaps > 0
    assert {p[0] for p in report.pairs} >= {"residual"}
    assert (tr(x) - before).abs().max() < 1e-10
    cost1 = float(bimt.connection_cost(tr).detach())
    assert cost1 < cost0 and cost1 - cost0 == pytest.approx(report.cost_change, rel=1e-6)


def test_connection_cost_equals_a_loop_over_every_edge() -> None:
    tr = _net(seed=2)
    spec = describe(tr)
    params = dict(tr.named_parameters())
    # the coordinates of every neuron, by (group, slot), from the model's own layers
    where = {"input": tr.embed.in_coordinates, "residual": tr.embed.out_coordinates,
             "output": tr.unembed.out_coordinates}
    for k, b in enumerate(tr.blocks):
        where[f"qk{k}"] = b.qk.out_coordinates[: tr.n_embed]
        where[f"v{k}"] = b.v.out_coordinates
        where[f"mlp{k}"] = b.fc1.out_coordinates
    total = 0.0
    for wire in spec.wires:
        w = params[wire.weight].detach()
        src, dst = spec.rows[wire.src], spec.rows[wire.dst]
        n_src, n_dst = spec.group(src.group).n, spec.group(dst.group).n
        for r, c in itertools.product(range(w.shape[0]), range(w.shape[1])):
            a, b = where[dst.group][r % n_dst], where[src.group][c % n_src]
            d = float(torch.linalg.vector_norm((a - b).double()))
            total += abs(float(w[r, c])) * (d + 0.1)
    assert float(bimt.connection_cost(tr).detach()) == pytest.approx(total, rel=1e-9)
    n_weights = sum(params[w.weight].numel() for w in spec.wires)
    assert n_weights == (3 * 8 + 2 * (3 * 8 * 8 + 8 * 8 + 2 * 8 * 12) + 8 * 2)


def test_causal_mask() -> None:
    tr = _net()
    x = _x(t=6)
    out = tr(x)
    for t in range(5):
        y = x.clone()
        y[:, t + 1:] = torch.randn_like(y[:, t + 1:])
        assert torch.allclose(tr(y)[:, : t + 1], out[:, : t + 1], atol=1e-12)
        assert not torch.allclose(tr(y)[:, t + 1:], out[:, t + 1:], atol=1e-6)


def test_swap_then_train_equals_training_the_swapped_twin() -> None:
    """Train 30 steps, swap, train 30 more; a twin swapped by hand at the start (weights
    and Adam moments permuted identically) ends at the same outputs."""
    torch.manual_seed(0)
    x, y = _x(n=16, t=4, seed=2), _x(n=16, t=4, d=2, seed=3)
    a = _net(seed=4)
    b = copy.deepcopy(a)
    oa = torch.optim.AdamW(a.parameters(), lr=1e-2)
    ob = torch.optim.AdamW(b.parameters(), lr=1e-2)

    def step(model, opt):
        loss = (model(x) - y).pow(2).mean() + 1e-3 * bimt.connection_cost(model)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(30):
        step(a, oa)
        step(b, ob)
    # a: a real swap pass (the paper's search) through the Swapper, optimizer state included
    report = bimt.Swapper(a, oa, every=1, top_k=8).relocate()
    assert report.swaps >= 3 and len({p[0] for p in report.pairs}) >= 2
    # b: the same swaps by hand, weights and Adam moments, as if built already swapped
    moments_b = bimt.torch_optimizer_moments(b, ob)
    for group, i, j in report.pairs:
        swap_neurons(b, group, i, j, moments=moments_b)
    for _ in range(30):
        step(a, oa)
        step(b, ob)
    assert torch.allclose(a(x), b(x), atol=1e-10)
    for (n, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-10), n


def test_trains_with_bimt_train_and_swaps_on() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, 2, generator=g)
    y = x.cumsum(1)[..., :1]  # running sum of the first feature: needs attention
    tr = bimt.BioTransformer(2, 1, n_embed=8, n_head=2, n_layer=1, max_len=4, seed=0)
    hist = bimt.train(tr, x, y, steps=400, swap_every=50, lam=1e-4, batch_size=32,
                      x_test=x, y_test=y, progress=False, snapshot_every=0)
    assert hist.engine == "autograd" and hist.swaps > 0
    assert hist.test_loss < 0.5 * float(y.var())


def test_pictures_graph_and_explorer(tmp_path) -> None:
    tr = _net().float()
    g = bimt.to_networkx(tr)
    spec = describe(tr)
    assert g.number_of_nodes() == sum(r.fold * spec.group(r.group).n for r in spec.rows)
    skips = [d for *_, d in g.edges(data=True) if d["kind"] == "skip"]
    assert len(skips) == 4 * 8  # two links per block, one per stream neuron
    assert nx.is_directed_acyclic_graph(g)
    assert {g.nodes[n]["group"] for n in g} >= {"residual", "qk0", "v1", "mlp1"}
    assert isinstance(bimt.modules(tr), list)
    bimt.draw(tr, tmp_path / "net.png", color_modules=True, title="transformer")
    assert (tmp_path / "net.png").stat().st_size > 1000
    labels = [r.label for r in spec.rows]
    assert labels[:4] == ["input", "embedding", "attention q, k", "attention v"]
    assert {"residual", "MLP-hidden", "output"} <= set(labels)
    pytest.importorskip("plotly")
    bimt.explore(tr, tmp_path / "net.html")
    assert (tmp_path / "net.html").stat().st_size > 1000


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="'n_head' of BioTransformer must divide"):
        bimt.BioTransformer(2, 1, n_embed=10, n_head=3)
    with pytest.raises(ValueError, match="'n_layer' of BioTransformer"):
        bimt.BioTransformer(2, 1, n_layer=0)
    with pytest.raises(ValueError, match=r"shape \(batch, tokens <= 6, 3\)"):
        _net()(torch.zeros(2, 7, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="shape"):
        _net()(torch.zeros(2, 3, dtype=torch.float64))


def test_config_rebuilds_the_structure() -> None:
    from bimt.training import model_config, model_from_config

    tr = _net()
    again = model_from_config(model_config(tr))
    assert isinstance(again, bimt.BioTransformer) and again.config() == tr.config()


class _StopAt(traincore.Callback):
    def __init__(self, step: int) -> None:
        self.at = step

    def on_step_end(self, loop: traincore.Loop) -> None:
        if loop.step == self.at:
            loop.stop("test")


def test_minibatch_resume_with_swaps_is_bit_identical(tmp_path) -> None:
    x, y = incontext_sequences(96, seed=0)
    xt, yt = incontext_sequences(32, seed=1)
    kw = dict(x_train=x, y_train=y, steps=90, x_test=xt, y_test=yt, progress=False,
              swap_every=20, seed=2, batch_size=40, loss=last_token_mse, lam=1e-3, snapshot_every=0)

    def make() -> bimt.BioTransformer:
        return bimt.BioTransformer(2, 1, n_embed=8, n_head=2, n_layer=2, max_len=3, seed=0)

    straight = make()
    h0 = bimt.train(straight, **kw)
    assert h0.swaps > 0
    first = make()
    h1 = bimt.train(first, checkpoint_dir=tmp_path, callbacks=[_StopAt(47)], **kw)
    assert h1.status == "stopped: test"  # 47: mid-epoch (three batches of 40 per epoch)
    again = make()
    h2 = bimt.train(again, checkpoint_dir=tmp_path, **kw)
    assert h2.resumed_from == 47 and h2.steps == 90
    for a, b in zip(again.state_dict().values(), straight.state_dict().values(), strict=True):
        assert torch.equal(a, b)


# --------------------------------------------------------------------------- in-context task
def test_incontext_sequences_hold_linear_maps() -> None:
    x, y = incontext_sequences(50, d=3, t=4, seed=0)
    assert x.shape == (50, 7, 4) and y.shape == (50, 1)
    assert torch.all(x[:, 0::2, 3] == 0) and torch.all(x[:, 1::2, :3] == 0)
    # w from the first three examples (a 3x3 solve), then the last y
    a, b = x[:, 0:6:2, :3].double(), x[:, 1:6:2, 3].double()
    w = torch.linalg.solve(a, b)
    assert torch.allclose((x[:, 6, :3].double() * w).sum(1), y[:, 0].double(), atol=1e-4)
    assert not torch.equal(incontext_sequences(50, seed=1)[0], incontext_sequences(50)[0])
    with pytest.raises(ValueError, match="'t' of the in-context sequences"):
        incontext_sequences(5, t=0)


def test_incontext_tasks_differ_only_in_bimt_and_see_fresh_batches() -> None:
    bimt_task, base = bimt.get_task("in-context"), bimt.get_task("in-context-baseline")
    differ = {k for k in {*bimt_task.overrides, *base.overrides}
              if bimt_task.overrides.get(k) != base.overrides.get(k)}
    assert differ == {"lam", "swap_every"} and base.overrides["lam"] == 0
    cfg = bimt.BIMTConfig(steps=bimt_task.steps, **bimt_task.overrides)
    assert cfg.lr_decay == "cosine" and cfg.batch_size == 64
    # every step of the full run draws sequences no earlier step used
    assert N_TRAIN >= bimt_task.steps * cfg.batch_size


@pytest.mark.slow
def test_cli_trains_in_context_and_resumes(tmp_path, capsys) -> None:
    assert main(["tasks"]) == 0
    assert any(line.startswith("in-context ") for line in capsys.readouterr().out.splitlines())
    out = tmp_path / "run"
    assert main(["train", "in-context", "--steps", "30", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "in-context" and metrics["steps"] == 30
    assert metrics["engine"] == "autograd" and metrics["model"]["class"] == "BioTransformer"
    assert 0 < metrics["test_loss"] < 10 and metrics["connection_cost"] > 0
    assert (out / "network.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "training.gif").read_bytes()[:3] == b"GIF"
    # the test loss is the last token's MSE on the task's test set
    data = bimt.get_task("in-context").make(0)
    doc = torch.load(out / "snapshots.pt", weights_only=True)
    model = bimt.BioTransformer(**{k: v for k, v in doc["model"].items() if k != "class"})
    model.load_state_dict(doc["snapshots"][-1]["state"], strict=False)
    with torch.no_grad():
        mse = float((model(data.x_test)[:, -1] - data.y_test).pow(2).mean())
    assert mse == pytest.approx(metrics["test_loss"], rel=1e-5)
    # the run directory opens in the explorer: the transformer rebuilt from its config
    loaded, snaps = bimt.load_run(out)
    assert isinstance(loaded, bimt.BioTransformer) and [s["step"] for s in snaps] == [0, 30]
    if importlib.util.find_spec("plotly"):
        bimt.explore(out, out / "network.html")
        assert (out / "network.html").stat().st_size > 1000
    assert main(["train", "in-context", "--steps", "30", "--out", str(out)]) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert again["resumed_from"] == 30 and again["test_loss"] == metrics["test_loss"]
