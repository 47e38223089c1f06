"""The explorer and the graph export for every kind of spatial network, not only BioMLP:
a converted torch MLP, a BioRNN, a BioTransformer, and the test-only residual and recurrent
networks (no input permutation)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import bimt

pytest.importorskip("plotly", reason="the explorer needs the optional extra 'explore'")


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return bimt.from_torch(nn.Sequential(nn.Linear(3, 5), nn.SiLU(), nn.Linear(5, 2)))


KINDS = {
    "from_torch": _mlp,
    "rnn": lambda: bimt.BioRNN(3, 9, 2, seed=0),
    "transformer": lambda: bimt.BioTransformer(in_dim=2, out_dim=2, n_embed=8, n_head=2,
                                               n_layer=1),
    "residual": None,   # from the conftest fixtures
    "recurrent": None,
}


@pytest.fixture(params=list(KINDS))
def network(request, residual_net, recurrent_net) -> nn.Module:
    make = KINDS[request.param] or {"residual": residual_net,
                                    "recurrent": recurrent_net}[request.param]
    model = make()
    with torch.no_grad():  # some zero weights: edges are the nonzero connections only
        for _, p in model.named_parameters():
            if p.ndim == 2:
                p.mul_(torch.rand(p.shape, generator=torch.Generator().manual_seed(1)) > 0.2)
    return model.requires_grad_(False)


def test_explore_shows_every_neuron_and_connection(network, tmp_path) -> None:
    g = bimt.to_networkx(network)
    ex = bimt.explore(network, tmp_path / "net.html")
    page = (tmp_path / "net.html").read_text()
    assert 'id="bimt-explorer"' in page and "<script src=" not in page
    assert ex.neurons == g.number_of_nodes() and ex.edges == g.number_of_edges()
    trace = ex.figure.data[-1]
    assert len(trace.customdata) == g.number_of_nodes()
    for node_id, hover in zip(trace.customdata, trace.hovertext, strict=True):
        layer, slot = (int(v) for v in node_id.split(":"))
        d = g.nodes[(layer, slot)]
        assert hover.startswith(f"<b>{d['label']}</b>  {d['group']}, layer {layer}")
        bias = "none" if d["bias"] is None else f"{d['bias']:+.3g}"
        assert f"bias {bias}" in hover


def test_explore_scrubs_snapshots_of_any_network(network, tmp_path) -> None:
    later = copy.deepcopy(network)
    with torch.no_grad():
        for p in later.parameters():
            p.mul_(-1)  # every sign flips: the frames differ
    snaps = [{"step": 0, "state": copy.deepcopy(network.state_dict())},
             {"step": 5, "state": copy.deepcopy(later.state_dict())}]
    ex = bimt.explore(later, tmp_path / "net.html", snapshots=snaps)
    assert ex.frames == 2
    assert [s.label for s in ex.figure.layout.sliders[0].steps] == ["0", "5"]


@pytest.mark.parametrize("ext", [".graphml", ".gexf", ".json"])
def test_export_graph_reads_back_equal(network, tmp_path, ext) -> None:
    written = bimt.export_graph(network, tmp_path / f"net{ext}")
    back = bimt.read_graph(tmp_path / f"net{ext}")
    g = bimt.to_networkx(network)
    assert written.number_of_nodes() == g.number_of_nodes()
    assert written.number_of_edges() == g.number_of_edges()
    assert set(back.nodes) == set(written.nodes) and set(back.edges) == set(written.edges)
    for n, d in written.nodes(data=True):
        want = {k: v for k, v in d.items() if k != "viz"}
        assert {k: back.nodes[n].get(k) for k in want} == want, n
    for u, v, d in written.edges(data=True):
        assert back.edges[u, v]["weight"] == pytest.approx(d["weight"])
        assert back.edges[u, v]["sign"] == d["sign"]
