"""bimt.export_graph: GraphML, GEXF and node-link JSON, read back with networkx."""

from __future__ import annotations

import json

import networkx as nx
import pytest
import torch

import bimt
from bimt.swap import swap_neurons

FORMATS = [".graphml", ".gexf", ".json"]


def two_modules() -> bimt.BioMLP:
    """x1 -> y1 and x2 -> y2 through one hidden neuron each, a third hidden neuron idle."""
    model = bimt.BioMLP([2, 3, 2], seed=0)
    with torch.no_grad():
        model.layers[0].weight.copy_(torch.tensor([[0.9, 0.0], [0.0, -0.7], [0.0, 0.0]]))
        model.layers[1].weight.copy_(torch.tensor([[-1.1, 0.0, 0.0], [0.0, 0.5, 0.0]]))
        model.layers[0].bias.copy_(torch.tensor([0.25, -0.5, 0.125]))
    return model


def read_with_networkx(path) -> nx.DiGraph:
    """networkx's own reader, not bimt's: what Gephi/Cytoscape users' scripts would do."""
    if path.suffix == ".graphml":
        return nx.read_graphml(path)
    if path.suffix == ".gexf":
        return nx.read_gexf(path)
    return nx.node_link_graph(json.loads(path.read_text()), edges="edges")


def same_graph(a: nx.DiGraph, b: nx.DiGraph) -> None:
    assert a.is_directed() and b.is_directed()
    assert dict(a.nodes(data=True)) == dict(b.nodes(data=True))
    assert sorted(a.edges(data=True)) == sorted(b.edges(data=True))


@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("widths,kwargs", [
    ([3, 5, 2], {}),
    ([4, 6, 6, 6, 1], {"bias": False}),
    ([(2, 3), 4, 2], {}),
    ([2 * 3, 5, 4], {"in_fold": 2, "embedding": (4, 3)}),
])
def test_every_format_reads_back_as_the_same_graph(tmp_path, ext, widths, kwargs) -> None:
    model = bimt.BioMLP(widths, seed=1, **kwargs)
    path = tmp_path / f"net{ext}"
    written = bimt.export_graph(model, path)
    assert written.number_of_nodes() == sum(model.widths)
    assert written.number_of_edges() == sum(lin.weight.numel() for lin in model.layers)
    same_graph(read_with_networkx(path), written)
    same_graph(bimt.read_graph(path), written)


@pytest.mark.parametrize("ext", FORMATS)
def test_attributes_are_the_model_s_weights_biases_and_modules(tmp_path, ext) -> None:
    model = two_modules()
    swap_neurons(model, 0, 0, 1)  # labels and weights follow the swap: x1 now sits in slot 1
    bimt.export_graph(model, tmp_path / f"net{ext}")
    g = read_with_networkx(tmp_path / f"net{ext}")
    w0, w1 = model.layers[0].weight.detach(), model.layers[1].weight.detach()
    # every nonzero weight is one edge, with its value, |value| and sign
    assert g.number_of_edges() == int((w0 != 0).sum() + (w1 != 0).sum()) == 4
    for (u, v), w in {("0:0", "1:1"): float(w0[1, 0]), ("0:1", "1:0"): float(w0[0, 1]),
                      ("1:0", "2:0"): float(w1[0, 0])}.items():
        d = g.edges[u, v]
        assert d["weight"] == pytest.approx(w) and d["abs_weight"] == pytest.approx(abs(w))
        assert d["sign"] == (1 if w > 0 else -1)
    nodes = g.nodes
    assert (nodes["0:1"]["label"], nodes["0:1"]["index"]) == ("x1", 0)
    assert (nodes["0:0"]["label"], nodes["0:0"]["index"]) == ("x2", 1)
    assert nodes["1:2"]["label"] == "h1.3" and nodes["1:2"]["kind"] == "hidden"
    assert nodes["1:1"]["bias"] == pytest.approx(float(model.layers[0].bias.detach()[1]))
    positions = bimt.neuron_positions(model)
    assert (nodes["2:1"]["x"], nodes["2:1"]["y"]) == pytest.approx(tuple(positions[2][1]))
    # modules: {x1} -> {y1} is module 0, {x2} -> {y2} module 1; the idle neuron has none
    assert [nodes[n]["module"] for n in ("0:1", "1:0", "2:0")] == [0, 0, 0]
    assert [nodes[n]["module"] for n in ("0:0", "1:1", "2:1")] == [1, 1, 1]
    assert nodes["1:2"].get("module") is None
    assert nodes["0:0"].get("bias") is None  # an input has no bias


def test_none_is_null_in_json_and_absent_in_xml(tmp_path) -> None:
    model = bimt.BioMLP([2, 3, 1], seed=0, bias=False)
    bimt.export_graph(model, tmp_path / "n.json")
    doc = json.loads((tmp_path / "n.json").read_text())
    assert doc["directed"] and all(node["bias"] is None for node in doc["nodes"])
    assert {"id", "layer", "x", "y", "module", "label"} <= set(doc["nodes"][0])
    assert {"source", "target", "weight", "abs_weight", "sign"} <= set(doc["edges"][0])
    for ext in (".graphml", ".gexf"):
        bimt.export_graph(model, tmp_path / f"n{ext}")
        back = read_with_networkx(tmp_path / f"n{ext}")
        assert not any("bias" in d for _, d in back.nodes(data=True)), ext
        assert "bias" not in (tmp_path / f"n{ext}").read_text()


def test_gexf_carries_gephi_positions_and_module_colours(tmp_path) -> None:
    g = bimt.export_graph(two_modules(), tmp_path / "n.gexf")
    viz = g.nodes["0:0"]["viz"]
    assert viz["position"] == {"x": g.nodes["0:0"]["x"], "y": g.nodes["0:0"]["y"], "z": 0.0}
    colours = {tuple(g.nodes[n]["viz"]["color"].values()) for n in ("0:0", "0:1", "1:2")}
    assert len(colours) == 3  # two modules and the grey of no module


def test_threshold_keeps_only_strong_edges(tmp_path) -> None:
    model = bimt.BioMLP([4, 8, 2], seed=0).requires_grad_(False)
    biggest = max(float(lin.weight.abs().max()) for lin in model.layers)
    g = bimt.export_graph(model, tmp_path / "n.json", threshold=0.5)
    strong = sum(int((lin.weight.abs() > 0.5 * biggest).sum()) for lin in model.layers)
    assert 0 < g.number_of_edges() == strong
    assert all(d["abs_weight"] > 0.5 * biggest for *_, d in g.edges(data=True))


def test_unknown_extension_lists_the_valid_ones(tmp_path) -> None:
    model = bimt.BioMLP([2, 2], seed=0)
    with pytest.raises(ValueError, match=r"must end in one of \.graphml, \.gexf, \.json; "
                                         r"got '\.csv'"):
        bimt.export_graph(model, tmp_path / "n.csv")
    with pytest.raises(ValueError, match="got no extension"):
        bimt.export_graph(model, tmp_path / "net")
    assert not list(tmp_path.iterdir())  # nothing written


def test_bad_arguments_are_named() -> None:
    with pytest.raises(TypeError, match="needs a bimt network.*got list"):
        bimt.export_graph([1, 2], "n.json")
    with pytest.raises(TypeError, match="graph 'path' must be a file path; got int"):
        bimt.export_graph(bimt.BioMLP([2, 2], seed=0), 3)
    with pytest.raises(ValueError, match="does not exist"):
        bimt.read_graph("no/such/file.json")
