"""The explorer page in a real headless chromium: loads, renders, hovers, scrubs."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

import bimt

pytestmark = [pytest.mark.browser, pytest.mark.slow]
pytest.importorskip("plotly", reason="the explorer needs the optional extra 'explore'")

NEURON = (1, 3)  # hidden layer 1, slot 3: the neuron whose hover is checked
#: (x, y) page pixel of a neuron: plotly's data-to-pixel of the node trace's point
PIXEL_OF = """(id) => {
  const gd = document.getElementById('bimt-explorer');
  const trace = gd.data[gd.data.length - 1], i = trace.customdata.indexOf(id);
  const size = gd._fullLayout._size, box = gd.getBoundingClientRect();
  return [box.left + size.l + gd._fullLayout.xaxis.d2p(trace.x[i]),
          box.top + size.t + gd._fullLayout.yaxis.d2p(trace.y[i])];
}"""


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    """A small network trained 400 steps (snapshots every 100) and its explorer page."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 4, generator=g) * 2 - 1
    y = torch.stack([(x[:, 0] + x[:, 2]) ** 3, x[:, 1] ** 2 + torch.sin(math.pi * x[:, 3])], 1)
    model = bimt.BioMLP([4, 8, 8, 2], seed=0)
    history = bimt.train(model, x, y, steps=400, seed=0, snapshot_every=100, threads=1,
                         progress=False)
    path = tmp_path_factory.mktemp("page") / "net.html"
    ex = bimt.explore(model.requires_grad_(False), path, snapshots=history.snapshots)
    return model, history, ex


@pytest.fixture(scope="module")
def loaded(new_tab, explorer):
    """One page with the explorer open, for the tests that only look and hover."""
    tab = new_tab()
    open_page(tab, explorer[2].path)
    return tab


def open_page(page, path) -> None:
    page.goto(path.resolve().as_uri())
    # rendered: the node trace's points are in the SVG
    page.wait_for_selector("#bimt-explorer .scatterlayer .trace:last-child .point",
                           state="attached", timeout=30_000)


def hover(page, node: str) -> str:
    x, y = page.evaluate(PIXEL_OF, node)
    page.mouse.move(x, y)
    page.wait_for_selector(".hoverlayer .hovertext", timeout=10_000)
    return page.text_content(".hoverlayer")


def test_page_loads_offline_without_errors(loaded, explorer) -> None:
    page = loaded
    traces = page.evaluate("() => document.getElementById('bimt-explorer').data.length")
    assert traces == len(explorer[2].figure.data)
    assert page.errors == []


def test_plot_is_drawn_with_blue_and_red_connections(loaded) -> None:
    from PIL import Image

    page = loaded
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(int)
    r, g, b = shot[..., 0], shot[..., 1], shot[..., 2]
    drawn = (shot < 235).any(-1).mean()
    blue = ((b > 150) & (r < 120) & (g < 120)).sum()
    red = ((r > 150) & (b < 120) & (g < 120)).sum()
    assert drawn > 0.02, f"only {drawn:.1%} of the page is not white"
    assert blue > 100 and red > 100, (blue, red)
    assert page.errors == []


def test_hover_shows_the_neuron_s_bias_and_weights(loaded, explorer) -> None:
    page, model = loaded, explorer[0]
    layer, slot = NEURON
    text = hover(page, f"{layer}:{slot}")
    assert f"h{layer}.{slot + 1}" in text and "hidden1, layer 1" in text
    assert f"bias {float(model.layers[layer - 1].bias[slot]):+.3g}" in text
    w_in = model.layers[layer - 1].weight[slot]
    c = int(torch.argmax(w_in.abs()))
    assert f"x{int(model.input_index()[c]) + 1}" in text and f"{float(w_in[c]):+.3g}" in text
    w_out = model.layers[layer].weight[:, slot]
    r = int(torch.argmax(w_out.abs()))
    assert f"h2.{r + 1}" in text and f"{float(w_out[r]):+.3g}" in text
    assert page.errors == []


def test_slider_moves_to_the_first_snapshot(page, explorer) -> None:
    _, history, ex = explorer
    open_page(page, ex.path)
    title = "() => document.querySelector('#bimt-explorer .gtitle').textContent"
    assert ", step" not in page.evaluate(title)
    rail = page.locator("#bimt-explorer .slider-rail-rect").bounding_box()
    page.mouse.click(rail["x"] + 1, rail["y"] + rail["height"] / 2)  # the rail's left end
    page.wait_for_function(f"() => ({title})().includes('step 0:')", timeout=10_000)
    active = page.evaluate("() => document.getElementById('bimt-explorer').layout"
                           ".sliders[0].active")
    assert active == 0
    # the hover now reads the weights of step 0
    layer, slot = NEURON
    bias0 = float(history.snapshots[0]["state"][f"layers.{layer - 1}.bias"][slot])
    assert f"bias {bias0:+.3g}" in hover(page, f"{layer}:{slot}")
    assert page.errors == []


def test_jupyter_display_renders_in_its_iframe(page, explorer, tmp_path) -> None:
    notebook = tmp_path / "notebook.html"  # what Jupyter puts in the page: the iframe
    notebook.write_text(f"<html><body>{explorer[2]._repr_html_()}</body></html>")
    page.goto(notebook.as_uri())
    frame = page.frame_locator("iframe")
    frame.locator("#bimt-explorer .scatterlayer .point").first.wait_for(
        state="attached", timeout=30_000)
    assert page.errors == []


def test_recurrent_network_page_hovers_its_recurrent_weights(new_tab, tmp_path) -> None:
    """A BioRNN (hidden neurons on a 2D grid, recurrent connections inside that row) loads,
    and a hidden neuron's hover lists its strongest recurrent input."""
    rnn = bimt.BioRNN(3, 9, 2, seed=0).requires_grad_(False)
    slot = 4
    rnn.rec.weight[slot, 7] = 2.0  # its strongest input: recurrent, from hidden neuron 8
    path = tmp_path / "rnn.html"
    bimt.explore(rnn, path, title="rnn")
    page = new_tab()
    open_page(page, path)
    text = hover(page, f"1:{slot}")
    assert f"h1.{slot + 1}" in text and "hidden, layer 1" in text
    assert f"bias {float(rnn.inp.bias[slot]):+.3g}" in text
    incoming = text.split("strongest incoming:")[1].split("strongest outgoing:")[0]
    assert "h1.8" in incoming and "+2" in incoming
    assert page.errors == []
