"""bimt.explore: the figure, the self-contained file, snapshots and run directories.

What a real browser makes of the page is checked in tests/browser/.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

import bimt
from bimt.explore_view import N_BUCKETS

pytest.importorskip("plotly", reason="the explorer needs the optional extra 'explore'")


def data(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 4, generator=g) * 2 - 1
    y = torch.stack([(x[:, 0] + x[:, 2]) ** 3, x[:, 1] ** 2 + torch.sin(math.pi * x[:, 3])], 1)
    return x, y


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small network trained 400 steps, snapshots every 100, checkpoint in a run dir."""
    run = tmp_path_factory.mktemp("run")
    model = bimt.BioMLP([4, 8, 8, 2], seed=0)
    x, y = data()
    history = bimt.train(model, x, y, steps=400, seed=0, snapshot_every=100, threads=1,
                         checkpoint_dir=run, progress=False)
    return model.requires_grad_(False), history, run


def node_trace(ex: bimt.Explorer) -> dict:
    return ex.figure.data[-1]


def edge_count(trace) -> int:
    return int(np.isnan(np.asarray(trace.x, dtype=float)).sum())  # one NaN gap per edge


def hover_of(ex: bimt.Explorer, node: str) -> str:
    trace = node_trace(ex)
    return trace.hovertext[list(trace.customdata).index(node)]


def test_file_is_one_offline_page(tmp_path, trained) -> None:
    model, _, _ = trained
    ex = bimt.explore(model, tmp_path / "net.html")
    page = (tmp_path / "net.html").read_text()
    assert ex.path == tmp_path / "net.html" and ex.frames == 0
    assert ex.neurons == 22 and ex.edges == sum(int((lin.weight != 0).sum())
                                                 for lin in model.layers)
    # plotly.js is inside the file: no script is fetched from anywhere
    assert "<script src=" not in page and 'id="bimt-explorer"' in page
    assert "Plotly.newPlot" in page and len(page) > 1_000_000
    assert repr(ex).startswith(f"Explorer(path={str(tmp_path / 'net.html')!r}, neurons=22")


def test_jupyter_display_is_the_page_in_an_iframe(trained) -> None:
    ex = bimt.explore(trained[0], path=None)
    shown = ex._repr_html_()
    assert ex.path is None and shown.startswith('<iframe srcdoc="&lt;!doctype html&gt;')
    assert "bimt-explorer" in shown and "<script" not in shown  # escaped: one attribute


def test_fixed_traces_edges_by_sign_and_strength(trained) -> None:
    model = bimt.BioMLP([3, 6, 2], seed=0).requires_grad_(False)
    with torch.no_grad():
        model.layers[0].weight.abs_()     # layer 0 all positive
        model.layers[1].weight.abs_().neg_()  # layer 1 all negative
    ex = bimt.explore(model, path=None)
    traces = ex.figure.data
    assert len(traces) == 2 * N_BUCKETS + 1  # whatever the size
    blue = [t for t in traces[:-1] if t.line.color.startswith("rgba(0,0,255")]
    red = [t for t in traces[:-1] if t.line.color.startswith("rgba(255,0,0")]
    assert sum(map(edge_count, blue)) == 18 and sum(map(edge_count, red)) == 12
    # wider and more opaque for stronger buckets
    widths = [t.line.width for t in blue]
    assert widths == sorted(widths) and widths[-1] > 3 * widths[0]
    assert len(bimt.explore(trained[0], path=None).figure.data) == 2 * N_BUCKETS + 1


def test_max_edges_keeps_the_strongest(trained) -> None:
    model = trained[0]
    ex = bimt.explore(model, path=None, max_edges=5)
    w = torch.cat([lin.weight.flatten() for lin in model.layers])
    top = w[torch.argsort(w.abs(), descending=True)[:5]]
    bucket = torch.clamp((top.abs() / w.abs().max() * N_BUCKETS).long(), max=N_BUCKETS - 1)
    # traces are (w > 0, buckets 0..5), (w < 0, buckets 0..5): the 5 land where they belong
    expected = [int(((top > 0) == positive).logical_and(bucket == b).sum())
                for positive in (True, False) for b in range(N_BUCKETS)]
    assert [edge_count(t) for t in ex.figure.data[:-1]] == expected


def test_hover_shows_bias_module_and_strongest_weights(trained) -> None:
    model = trained[0]
    ex = bimt.explore(model, path=None, top=2)
    w_in = model.layers[0].weight[3]    # hidden neuron h1.4 (slot 3): its incoming row
    w_out = model.layers[1].weight[:, 3]  # and its outgoing column
    text = hover_of(ex, "1:3")
    assert text.startswith("<b>h1.4</b>  hidden1, layer 1, slot 3")
    assert f"bias {float(model.layers[0].bias[3]):+.3g}" in text
    ins = model.input_index().tolist()
    order = torch.argsort(w_in.abs(), descending=True)[:2].tolist()
    for c in order:  # the two strongest, with the other neuron's label
        assert f"x{ins[c] + 1}" in text and f"{float(w_in[c]):+.3g}" in text
    r = int(torch.argmax(w_out.abs()))
    assert f"h2.{r + 1}" in text and f"{float(w_out[r]):+.3g}" in text
    assert text.count("<br>  ") == 4  # top=2 in and 2 out
    assert "bias none" in hover_of(ex, "0:0") and "strongest incoming:<br>  none" in \
        hover_of(ex, "0:0")


def two_modules() -> bimt.BioMLP:
    """x1 -> y1 and x2 -> y2 through one hidden neuron each; the third hidden neuron idle."""
    model = bimt.BioMLP([2, 3, 2], seed=0).requires_grad_(False)
    with torch.no_grad():
        model.layers[0].weight.copy_(torch.tensor([[0.9, 0.0], [0.0, -0.7], [0.0, 0.0]]))
        model.layers[1].weight.copy_(torch.tensor([[-1.1, 0.0, 0.0], [0.0, 0.5, 0.0]]))
    return model


def test_modules_are_coloured() -> None:
    model = two_modules()
    ex = bimt.explore(model, path=None)
    trace = node_trace(ex)
    colour = dict(zip(trace.customdata, trace.marker.color, strict=True))
    assert colour["0:0"] == colour["1:0"] == colour["2:0"] == bimt.netgraph.MODULE_COLORS[0]
    assert colour["0:1"] == colour["1:1"] == colour["2:1"] == bimt.netgraph.MODULE_COLORS[1]
    assert colour["1:2"] == bimt.netgraph.NO_MODULE_COLOR
    assert "module 1: {x2} -> {y2}" in hover_of(ex, "1:1")
    assert "2 modules" in ex.figure.layout.title.text


def test_slider_frames_are_the_snapshots(trained) -> None:
    model, history, _ = trained
    ex = bimt.explore(model, path=None, snapshots=history.snapshots)
    steps = [s["step"] for s in history.snapshots]
    assert steps == [0, 100, 200, 300, 400] and ex.frames == 5
    slider = ex.figure.layout.sliders[0]
    assert [s.label for s in slider.steps] == [str(s) for s in steps]
    assert slider.active == 4
    frames = ex.figure.frames
    assert all(len(f.data) == len(ex.figure.data) for f in frames)
    assert frames[0].layout.title.text.startswith("bimt network, step 0:")
    # the frames differ: the weights moved between step 0 and step 400
    assert frames[0].data[-1].hovertext != frames[-1].data[-1].hovertext
    few = bimt.explore(model, path=None, snapshots=history.snapshots, max_frames=3)
    assert [s.label for s in few.figure.layout.sliders[0].steps] == ["0", "200", "400"]


def test_run_directory_gives_model_and_snapshots(tmp_path, trained) -> None:
    model, history, run = trained
    loaded, snaps = bimt.load_run(run)
    assert [s["step"] for s in snaps] == [0, 100, 200, 300, 400]
    for a, b in zip(loaded.layers, model.layers, strict=True):
        assert torch.equal(a.weight, b.weight)
    ex = bimt.explore(run, tmp_path / "run.html")
    assert ex.frames == 5 and (tmp_path / "run.html").is_file()
    # snapshots saved apart (snapshots.pt) take precedence over the checkpoint's
    torch.save([{"step": 7, "state": history.snapshots[0]["state"]},
                {"step": 9, "state_dict": history.snapshots[-1]["state"]}], run / "snapshots.pt")
    try:
        ex = bimt.explore(run, path=None)
        assert [s.label for s in ex.figure.layout.sliders[0].steps] == ["7", "9"]
    finally:
        (run / "snapshots.pt").unlink()


@pytest.mark.parametrize("widths,kwargs", [
    ([3, 2], {}),
    ([4, 6, 6, 6, 6, 2], {}),
    ([(3, 3), 5, 2], {}),
    ([2 * 4, 6, 5], {"in_fold": 2, "embedding": (5, 4)}),
])
def test_any_depth_and_layout(widths, kwargs) -> None:
    model = bimt.BioMLP(widths, seed=0, **kwargs).requires_grad_(False)
    ex = bimt.explore(model, path=None)
    trace = node_trace(ex)
    assert ex.neurons == len(trace.x) == sum(model.widths)
    labels = [t for t in trace.text if t]
    assert sorted(labels) == sorted([f"x{i + 1}" for i in range(model.widths[0])]
                                    + [f"y{i + 1}" for i in range(model.widths[-1])])
    assert ex.figure.layout.yaxis.range[1] > model.depth  # every layer inside the view


def test_bad_input_is_named(tmp_path, trained) -> None:
    model, history, _ = trained
    with pytest.raises(ValueError, match=r"'path' .* must end in \.html; got '\.png'"):
        bimt.explore(model, tmp_path / "net.png")
    with pytest.raises(TypeError, match="takes a bimt network .* or a run directory; got int"):
        bimt.explore(3, path=None)
    with pytest.raises(ValueError, match="is not a directory"):
        bimt.explore(str(tmp_path / "nowhere"), path=None)
    with pytest.raises(ValueError, match="holds no checkpoint.pt"):
        bimt.explore(tmp_path, path=None)
    with pytest.raises(TypeError, match="integer 'step' and a 'state'"):
        bimt.explore(model, path=None, snapshots=[{"step": "one"}])
    with pytest.raises(TypeError, match="'snapshots' of explore.. must be a list"):
        bimt.explore(model, path=None, snapshots="history")
    other = bimt.BioMLP([4, 5, 2], seed=0).state_dict()
    with pytest.raises(ValueError, match="snapshot of step 3 does not fit the model"):
        bimt.explore(model, path=None, snapshots=[{"step": 3, "state": other}])
    with pytest.raises(ValueError, match="'threshold' of explore.. must be a fraction"):
        bimt.explore(model, path=None, threshold=2)
    with pytest.raises(ValueError, match="'max_frames' of explore.. must be an integer >= 1"):
        bimt.explore(model, path=None, max_frames=0)
    assert not list(tmp_path.glob("*.html"))


def test_missing_plotly_names_the_install_command(monkeypatch, trained) -> None:
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    with pytest.raises(ImportError, match=r"install it with: pip install "
                                          r"'physics-of-ai\[explore\]'"):
        bimt.explore(trained[0], path=None)


@pytest.mark.parametrize("which", ["trained", "two modules"])
def test_module_colours_agree_with_draw(trained, which) -> None:
    """bimt.draw colours modules with its own code today: both must give the same picture."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba

    model = trained[0] if which == "trained" else two_modules()
    trace = node_trace(bimt.explore(model, path=None))
    colour = dict(zip(trace.customdata, trace.marker.color, strict=True))
    fig = bimt.draw(model, color_modules=True)
    layers = [c for c in fig.axes[0].collections if c.get_offsets().shape[0] and
              type(c).__name__ == "PathCollection"]
    assert len(layers) == model.depth + 1
    for layer, dots in enumerate(layers):
        drawn = np.asarray(dots.get_facecolors())
        ours = np.array([to_rgba(colour[f"{layer}:{s}"]) for s in range(model.widths[layer])])
        np.testing.assert_allclose(drawn, ours, err_msg=f"layer {layer}")
    plt.close(fig)
