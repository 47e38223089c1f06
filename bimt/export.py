"""Graph export for Gephi, Cytoscape and networkx: GraphML, GEXF and node-link JSON.

networkx writes all three formats (well kept, and it reads them back the same way); this
module only decides the attributes, their encoding and the file's atomic write.

Every format carries the same graph: nodes named ``"layer:slot"`` with attributes
``layer``, ``slot``, ``group``, ``kind``, ``index``, ``label``, ``x``, ``y``, ``module``
and ``bias``; edges with ``weight``, ``abs_weight`` and ``sign``. A value that does not
exist (the bias of an input neuron or of a bias-free layer, the module of a neuron outside
every module) is ``null`` in JSON and *absent* from that node in GraphML and GEXF, which
have no null. GEXF nodes also get Gephi's ``viz`` position and module colour, and edges
an ``id`` (networkx reads neither edge colours nor generated ids back the same).
"""

from __future__ import annotations

import inspect
import io
import json
import os
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import networkx as nx
import torch

import traincore

from .netgraph import module_color, network_graph

__all__ = ["GRAPH_FORMATS", "export_graph", "node_id", "read_graph"]

NODE_ATTRIBUTES = ("layer", "slot", "group", "kind", "index", "label", "x", "y", "module",
                   "bias")
EDGE_ATTRIBUTES = ("weight", "abs_weight", "sign")


def node_id(node: Hashable) -> str:
    """The exported name of a node of :func:`bimt.to_networkx`: ``(1, 7)`` -> ``"1:7"``."""
    if isinstance(node, tuple):
        return ":".join(str(part) for part in node)
    return str(node)


def _node_link_keywords() -> dict[str, str]:
    # networkx 3.4 renamed node_link_data's `link` to `edges` (and warns about the default):
    # name the key explicitly, in whichever spelling this networkx has
    params = inspect.signature(nx.node_link_data).parameters
    return {"edges": "edges"} if "edges" in params else {"link": "edges"}


def _write_json(g: nx.DiGraph) -> bytes:
    data = nx.node_link_data(g, **_node_link_keywords())
    return json.dumps(data, indent=1).encode()


def _read_json(path: Path) -> nx.DiGraph:
    data = json.loads(path.read_text())
    return nx.node_link_graph(data, **_node_link_keywords())


def _write_with(writer: Callable[[nx.DiGraph, Any], None]) -> Callable[[nx.DiGraph], bytes]:
    def write(g: nx.DiGraph) -> bytes:
        buffer = io.BytesIO()
        writer(g, buffer)
        return buffer.getvalue()
    return write


#: extension -> (write graph to bytes, read file back, has a null value)
GRAPH_FORMATS: dict[str, tuple[Callable[[nx.DiGraph], bytes], Callable[[Path], nx.DiGraph],
                               bool]] = {
    ".graphml": (_write_with(nx.write_graphml), nx.read_graphml, False),
    ".gexf": (_write_with(nx.write_gexf), nx.read_gexf, False),
    ".json": (_write_json, _read_json, True),
}


def _format_of(path: str | os.PathLike[str]) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"The graph 'path' must be a file path; got {type(path).__name__}.")
    ext = Path(path).suffix.lower()
    if ext not in GRAPH_FORMATS:
        got = f"'{ext}'" if ext else "no extension"
        raise ValueError(f"The graph 'path' {str(path)!r} must end in one of "
                         f"{', '.join(GRAPH_FORMATS)}; got {got}.")
    return ext


def _rgb(color: str) -> dict[str, Any]:
    return {"r": int(color[1:3], 16), "g": int(color[3:5], 16), "b": int(color[5:7], 16),
            "a": 1.0}


def portable_graph(g: nx.DiGraph, ext: str) -> nx.DiGraph:
    """The graph as written in format ``ext``: string node names, plain attribute values.

    Parameters
    ----------
    g : networkx.DiGraph
        From :func:`bimt.netgraph.network_graph`.
    ext : str
        ``".graphml"``, ``".gexf"`` or ``".json"``.
    """
    keep_none = GRAPH_FORMATS[ext][2]
    out = nx.DiGraph()
    for n, d in g.nodes(data=True):
        attrs = {k: d.get(k) for k in NODE_ATTRIBUTES}
        if not keep_none:
            attrs = {k: v for k, v in attrs.items() if v is not None}
        if ext == ".gexf":  # Gephi opens the file laid out and coloured like the explorer
            attrs["viz"] = {"position": {"x": d["x"], "y": d["y"], "z": 0.0},
                            "color": _rgb(module_color(d.get("module")))}
        out.add_node(node_id(n), **attrs)
    for k, (u, v, d) in enumerate(g.edges(data=True)):
        attrs = {a: d[a] for a in EDGE_ATTRIBUTES}
        if ext == ".gexf":  # GEXF numbers edges; name them so a read-back gives the same ids
            attrs["id"] = str(k)
        out.add_edge(node_id(u), node_id(v), **attrs)
    return out


def export_graph(model: torch.nn.Module, path: str | os.PathLike[str], *,
                 threshold: float = 0.0, module_threshold: float = 0.05) -> nx.DiGraph:
    """Write the network as a graph file; the format follows the extension.

    Parameters
    ----------
    model : BioMLP (or any network :func:`bimt.to_networkx` describes)
    path : path ending in ``.graphml``, ``.gexf`` or ``.json`` (node-link)
        Written atomically (a failure leaves no half-written file).
    threshold : float
        Keep only connections with ``|w| > threshold * max |w|`` (0: every nonzero one).
    module_threshold : float
        Pruning threshold that defines the modules (as in :func:`bimt.modules`).

    Returns
    -------
    networkx.DiGraph
        The graph as written: ``read_graph(path)`` (or networkx's own reader) gives the same
        nodes, edges and attributes.

    Examples
    --------
    >>> import bimt, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "net.graphml"
    >>> g = bimt.export_graph(bimt.BioMLP([2, 3, 1], seed=0), path)
    >>> sorted(g.nodes)[:3], g.nodes["1:0"]["label"]
    (['0:0', '0:1', '1:0'], 'h1.1')
    >>> import networkx as nx
    >>> back = nx.read_graphml(path)
    >>> dict(back.nodes(data=True)) == dict(g.nodes(data=True))
    True
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"export_graph() needs a bimt network such as bimt.BioMLP; got "
                        f"{type(model).__name__}.")
    ext = _format_of(path)
    g = network_graph(model, threshold, module_threshold)
    out = portable_graph(g, ext)
    data = GRAPH_FORMATS[ext][0](out)  # serialised before the file is touched
    with traincore.atomic_write(path, "wb") as fh:
        fh.write(data)
    return out


def read_graph(path: str | os.PathLike[str]) -> nx.DiGraph:
    """Read a file written by :func:`export_graph` (networkx's reader for its extension).

    Nodes are named ``"layer:slot"``; attributes absent from a GraphML or GEXF node were
    ``None`` (no bias, no module).
    """
    ext = _format_of(path)
    if not Path(path).is_file():
        raise ValueError(f"The graph file {str(path)!r} does not exist; check the path.")
    return nx.DiGraph(GRAPH_FORMATS[ext][1](Path(path)))
