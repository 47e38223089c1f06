"""Graph, modules, modularity, pruning and pictures."""

from __future__ import annotations

import networkx as nx
import pytest
import torch

import bimt
from bimt.swap import swap_neurons


def _block_diagonal() -> bimt.BioMLP:
    """Inputs {0, 2} feed hidden 0-2 -> output 1; inputs {1, 3} feed hidden 3-5 -> output 0."""
    model = bimt.BioMLP([4, 6, 6, 2], seed=0)
    masks = [torch.zeros(6, 4), torch.zeros(6, 6), torch.zeros(2, 6)]
    masks[0][:3, [0, 2]] = 1
    masks[0][3:, [1, 3]] = 1
    masks[1][:3, :3] = 1
    masks[1][3:, 3:] = 1
    masks[2][1, :3] = 1
    masks[2][0, 3:] = 1
    with torch.no_grad():
        for layer, mask in zip(model.layers, masks, strict=True):
            layer.weight.mul_(mask).add_(mask * 0.3 * torch.sign(layer.weight))  # no tiny ones
            layer.weight.add_((1 - mask) * 1e-4)  # weak leaks that pruning removes
    return model


def test_modules_of_a_hand_built_block_diagonal_network() -> None:
    model = _block_diagonal()
    found = bimt.modules(model)
    assert [(set(m.inputs), set(m.outputs), m.neurons) for m in found] == [
        ({0, 2}, {1}, 6), ({1, 3}, {0}, 6)]
    assert bimt.modules(model, threshold=0.0) == [bimt.Module(frozenset(range(4)),
                                                              frozenset({0, 1}), 12)]
    # swaps move neurons around but modules are reported in the original indices
    swap_neurons(model, 0, 0, 3)
    swap_neurons(model, 3, 0, 1)
    swap_neurons(model, 1, 2, 4)
    again = bimt.modules(model)
    assert [(set(m.inputs), set(m.outputs)) for m in again] == [({0, 2}, {1}), ({1, 3}, {0})]
    assert bimt.active_neurons(model) == [6, 6]
    assert bimt.modularity(model) == pytest.approx(0.5, abs=0.02)  # two equal halves


def test_to_networkx_has_positions_labels_and_weights() -> None:
    model = _block_diagonal()
    swap_neurons(model, 0, 0, 1)
    g = bimt.to_networkx(model)
    assert isinstance(g, nx.DiGraph) and g.number_of_nodes() == 18
    assert g.nodes[(0, 0)]["label"] == "x2" and g.nodes[(0, 1)]["label"] == "x1"
    assert g.nodes[(2, 3)]["kind"] == "hidden" and len(g.nodes[(2, 3)]["pos"]) == 2
    w = float(model.layers[1].weight[4, 5].detach())
    assert g.edges[(1, 5), (2, 4)]["weight"] == pytest.approx(w)
    assert bimt.to_networkx(model, threshold=0.05).number_of_edges() == 12 + 18 + 6


def test_prune_reports_loss_before_and_after() -> None:
    model = _block_diagonal()
    x = torch.randn(30, 4)
    y = model(x).detach()
    res = bimt.prune(model, 0.05, x, y)
    assert res.loss_before == pytest.approx(0.0, abs=1e-12)
    assert 0 < res.loss_after < 1e-3  # only the 1e-4 leaks went
    assert res.kept == 36 and res.removed == 24 + 36 + 12 - 36
    assert float(model.layers[0].weight.detach().abs().min()) > 0  # the original is untouched
    with pytest.raises(ValueError, match="'threshold' must be a fraction"):
        bimt.prune(model, 2.0)


@pytest.mark.parametrize("ext", ["png", "svg", "pdf"])
def test_draw_writes_each_format(tmp_path, ext) -> None:
    model = _block_diagonal()
    fig = bimt.draw(model, tmp_path / f"net.{ext}", color_modules=True)
    data = (tmp_path / f"net.{ext}").read_bytes()
    assert data[:4] in (b"\x89PNG", b"<?xm", b"%PDF")
    from matplotlib.collections import LineCollection

    ax = fig.axes[0]
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines) == 1 and len(lines[0].get_segments()) == 36  # one call, leaks hidden
    colors = lines[0].get_colors()
    assert (colors[:, 2] > 0).any() and (colors[:, 0] > 0).any()  # blue and red edges
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == ["$x_{1}$", "$x_{2}$", "$x_{3}$", "$x_{4}$", "$y_{1}$", "$y_{2}$"]


def test_draw_rejects_unknown_extension(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"must end in one of \.png, \.svg, \.pdf; got \.jpg"):
        bimt.draw(_block_diagonal(), tmp_path / "net.jpg")
    assert not list(tmp_path.iterdir())


def test_animate_writes_gif(tmp_path) -> None:
    x = torch.rand(40, 4) * 2 - 1
    y = x[:, :2] ** 2
    model = bimt.BioMLP([4, 6, 2], seed=0)
    h = bimt.train(model, x, y, steps=60, snapshot_every=20, progress=False)
    path = bimt.animate(model, h.snapshots, tmp_path / "t.gif")
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 4
