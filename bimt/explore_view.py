"""The explorer's picture of one network state, as plotly trace dictionaries.

Kept apart from :mod:`bimt.explore` (files, runs, snapshots) so that each stays short. A
state is drawn as a fixed number of traces whatever the network's size: one line trace per
(sign, |w| bucket) for the connections and one marker trace for the neurons, so a file of
thousands of connections and dozens of frames stays a few megabytes, and every frame of the
slider has the same traces for plotly to swap.

References
----------
Liu, Gan & Tegmark, arXiv:2305.08746 (blue positive, red negative connections).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import torch

from .export import node_id
from .layout import loop_points
from .netgraph import module_color, module_name, network_graph

__all__ = ["ViewOptions", "State", "draw_state", "figure_layout", "N_BUCKETS"]

#: |w| buckets per sign: line width and opacity step with the bucket.
N_BUCKETS = 6
_SIGN_RGB = {1: "0,0,255", -1: "255,0,0"}  # blue for w > 0, red for w < 0, as the paper


@dataclass(frozen=True)
class ViewOptions:
    """How a state is drawn (validated by :func:`bimt.explore`)."""

    threshold: float = 0.0          # hide connections below this fraction of max |w|
    module_threshold: float = 0.05  # pruning that defines modules, as bimt.modules
    max_edges: int = 3000           # draw at most the strongest 3000 (file size, legibility)
    top: int = 3                    # strongest incoming/outgoing weights in a neuron's hover
    max_width: float = 4.0          # line width of the strongest connection
    title: str = "bimt network"


@dataclass
class State:
    """One drawn network state: its traces, title and sizes."""

    traces: list[dict[str, Any]]
    step: int | None
    title: str
    neurons: int
    edges: int
    shown_edges: int
    bounds: tuple[float, float, float, float]  # x min, x max, y min, y max


def _num(value: float | None) -> str:
    return "none" if value is None else f"{value:+.3g}"


def _strongest(g: nx.DiGraph, edges: list[tuple[Any, Any, float]], other: int, top: int
               ) -> list[str]:
    edges = sorted(edges, key=lambda e: -abs(e[2]))[:top]
    return [f"  {g.nodes[e[other]]['label']:<8} {_num(e[2])}" for e in edges] or ["  none"]


def _hover(g: nx.DiGraph, n: Any, top: int, modules: list[Any]) -> str:
    d = g.nodes[n]
    module = d.get("module")
    lines = [f"<b>{d['label']}</b>  {d['group']}, layer {d['layer']}, slot {d['slot']}",
             f"index {d['index']}  bias {_num(d.get('bias'))}",
             "module none" if module is None else
             f"module {module}: {module_name(modules[module])}",
             "strongest incoming:",
             *_strongest(g, list(g.in_edges(n, data="weight")), 0, top),
             "strongest outgoing:",
             *_strongest(g, list(g.out_edges(n, data="weight")), 1, top)]
    return "<br>".join(lines)


def _node_trace(g: nx.DiGraph, nodes: list[Any], top: int) -> dict[str, Any]:
    modules = g.graph["modules"]
    layer_size: dict[int, int] = {}
    for n in nodes:
        layer_size[g.nodes[n]["layer"]] = layer_size.get(g.nodes[n]["layer"], 0) + 1
    text, where, sizes = [], [], []
    for n in nodes:
        d = g.nodes[n]
        small = layer_size[d["layer"]] <= 24  # label inputs/outputs of small layers, as draw
        text.append(d["label"] if small and d["kind"] in ("input", "output") else "")
        where.append("bottom center" if d["kind"] == "input" else "top center")
        sizes.append(11 if layer_size[d["layer"]] <= 40 else 6)
    return {"type": "scatter", "mode": "markers+text", "name": "neurons",
            "x": [g.nodes[n]["x"] for n in nodes], "y": [g.nodes[n]["y"] for n in nodes],
            "text": text, "textposition": where, "customdata": [node_id(n) for n in nodes],
            "hovertext": [_hover(g, n, top, modules) for n in nodes], "hoverinfo": "text",
            "marker": {"color": [module_color(g.nodes[n].get("module")) for n in nodes],
                       "size": sizes, "line": {"color": "white", "width": 1}},
            "showlegend": False}


def _polyline(xy: np.ndarray, loop: np.ndarray, pick: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """One polyline for the connections ``pick``: x0, x1, NaN (a gap) for each, or a small
    loop (:func:`bimt.layout.loop_points`) then NaN for a neuron's connection to itself."""
    line, circle = pick[~loop[pick]], pick[loop[pick]]
    gap = np.full(len(line), np.nan)
    xs = [np.stack([xy[line, 0], xy[line, 2], gap], 1).ravel()]
    ys = [np.stack([xy[line, 1], xy[line, 3], gap], 1).ravel()]
    for k in circle:
        p = loop_points(xy[k, 0], xy[k, 1])
        xs.append(np.append(p[:, 0], np.nan))
        ys.append(np.append(p[:, 1], np.nan))
    return np.concatenate(xs), np.concatenate(ys)


def _edge_traces(g: nx.DiGraph, opts: ViewOptions) -> tuple[list[dict[str, Any]], int]:
    edges = list(g.edges(data="weight"))
    loop = np.array([u == v for u, v, _ in edges], dtype=bool)  # recurrent self-connections
    w = np.array([e[2] for e in edges], dtype=float)
    xy = np.array([[g.nodes[u]["x"], g.nodes[u]["y"], g.nodes[v]["x"], g.nodes[v]["y"]]
                   for u, v, _ in edges], dtype=float).reshape(-1, 4)  # (edges, x0 y0 x1 y1)
    strength = np.abs(w) / (np.abs(w).max() if len(w) and np.abs(w).max() > 0 else 1.0)
    shown = np.flatnonzero(strength > max(opts.threshold, 1e-3))  # as draw: hide < 0.1 %
    shown = shown[np.argsort(-strength[shown], kind="stable")[:opts.max_edges]]
    bucket = np.minimum((strength * N_BUCKETS).astype(int), N_BUCKETS - 1)
    traces = []
    for sign in (1, -1):
        for b in range(N_BUCKETS):
            pick = shown[(bucket[shown] == b) & (np.sign(w[shown]) == sign)]
            xs, ys = _polyline(xy, loop, pick)
            level = (b + 0.5) / N_BUCKETS
            traces.append({
                "type": "scatter", "mode": "lines", "x": xs.round(5), "y": ys.round(5),
                "name": f"{'w > 0' if sign > 0 else 'w < 0'}, |w| ~ {level:.2f} max",
                "line": {"color": f"rgba({_SIGN_RGB[sign]},{0.15 + 0.85 * level:.2f})",
                         "width": max(0.5, opts.max_width * level)},
                "hoverinfo": "skip", "showlegend": False})
    return traces, len(shown)


def _title(opts: ViewOptions, step: int | None, modules: list[Any]) -> str:
    names = "; ".join(module_name(m) for m in modules[:4]) + ("; ..." if len(modules) > 4
                                                             else "")
    head = opts.title if step is None else f"{opts.title}, step {step}"
    return f"{head}: {len(modules)} module{'' if len(modules) == 1 else 's'}" + (
        f" {names}" if modules else "")


def draw_state(model: torch.nn.Module, opts: ViewOptions, step: int | None = None) -> State:
    """Traces of ``model``'s current state: 2 * N_BUCKETS edge traces, then the neurons."""
    g = network_graph(model, 0.0, opts.module_threshold)
    nodes = sorted(g.nodes, key=lambda n: (g.nodes[n]["layer"], g.nodes[n]["slot"]))
    edge_traces, shown = _edge_traces(g, opts)
    xs = [g.nodes[n]["x"] for n in nodes]
    ys = [g.nodes[n]["y"] for n in nodes]
    return State(traces=[*edge_traces, _node_trace(g, nodes, opts.top)], step=step,
                 title=_title(opts, step, g.graph["modules"]), neurons=len(nodes),
                 edges=g.number_of_edges(), shown_edges=shown,
                 bounds=(min(xs), max(xs), min(ys), max(ys)))


_LEGEND = ("<span style='color:#0000ff'>blue w &gt; 0</span>, "
           "<span style='color:#ff0000'>red w &lt; 0</span>, width ~ |w|; "
           "neurons coloured by module (grey: none); hover a neuron for its weights")


def figure_layout(state: State, frames: list[tuple[str, int]]) -> dict[str, Any]:
    """Plotly layout: hidden axes, hover style, and the slider over ``(name, step)`` frames."""
    x0, x1, y0, y1 = state.bounds
    layers = int(round(y1 - y0)) + 1
    layout: dict[str, Any] = {
        "title": {"text": state.title, "x": 0.01, "font": {"size": 14}},
        "xaxis": {"visible": False, "range": [x0 - 0.08, x1 + 0.08]},
        "yaxis": {"visible": False, "range": [y0 - 0.45, y1 + 0.45]},
        "plot_bgcolor": "white", "paper_bgcolor": "white", "hovermode": "closest",
        "hoverlabel": {"align": "left", "bgcolor": "white",
                       "font": {"family": "monospace", "size": 12}},
        "showlegend": False, "height": 260 + 120 * layers,
        "margin": {"l": 20, "r": 20, "t": 70, "b": 90 if frames else 20},
        "annotations": [{"text": _LEGEND, "showarrow": False, "xref": "paper",
                         "yref": "paper", "x": 0.0, "y": 1.0, "yanchor": "bottom",
                         "xanchor": "left", "font": {"size": 11, "color": "#555"}}],
    }
    if frames:
        still = {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
                 "transition": {"duration": 0}}
        layout["sliders"] = [{
            "active": len(frames) - 1, "currentvalue": {"prefix": "step "},
            "pad": {"t": 10, "l": 60}, "len": 0.9, "x": 0.1,
            "steps": [{"label": str(step), "method": "animate", "args": [[name], still]}
                      for name, step in frames]}]
        layout["updatemenus"] = [{
            "type": "buttons", "showactive": False, "x": 0.0, "y": 0.0, "xanchor": "left",
            "yanchor": "top", "pad": {"t": 10},
            "buttons": [{"label": "play", "method": "animate",
                         "args": [None, {"frame": {"duration": 400, "redraw": True},
                                         "fromcurrent": True, "transition": {"duration": 0}}]},
                        {"label": "pause", "method": "animate", "args": [[None], still]}]}]
    return layout
