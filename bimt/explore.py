"""Interactive network explorer: one self-contained HTML file that works offline.

plotly (the optional extra ``explore``) draws it and embeds plotly.js in the file, so it
opens from disk without a network; hovering a neuron shows its layer, index, bias, module
and strongest weights, and a slider scrubs the training snapshots. In Jupyter the returned
:class:`Explorer` displays itself.

References
----------
Liu, Gan & Tegmark, "Seeing is believing: brain-inspired modular training for mechanistic
interpretability", arXiv:2305.08746.
"""

from __future__ import annotations

import copy
import html
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import traincore

from .explore_view import State, ViewOptions, draw_state, figure_layout
from .model import BioMLP
from .training import model_from_config

__all__ = ["Explorer", "explore", "load_run", "require_plotly", "SNAPSHOTS_NAME"]

#: Training snapshots of a run directory (beside the checkpoint), when saved apart.
SNAPSHOTS_NAME = "snapshots.pt"
#: The id of the plot's element in the page (the browser tests find it by this).
DIV_ID = "bimt-explorer"
_INSTALL = "pip install 'physics-of-ai[explore]'"


def require_plotly() -> Any:
    """``plotly.graph_objects``, or one clear error naming the install command."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise ModuleNotFoundError(f"The network explorer needs plotly, an optional extra; "
                                  f"install it with: {_INSTALL}") from None
    return go


def _snapshot(entry: Any, where: str) -> dict[str, Any]:
    # today's snapshots are {"step", "state"}; accept a {"step", "state_dict"} spelling too
    if isinstance(entry, Mapping):
        state = entry.get("state", entry.get("state_dict"))
        step = entry.get("step")
        if (isinstance(state, Mapping) and isinstance(step, int | np.integer)
                and not isinstance(step, bool)):
            return {"step": int(step), "state": state}
    raise TypeError(f"Each of the {where} must be a dict with an integer 'step' and a "
                    f"'state' (a model state_dict), as in history.snapshots; got "
                    f"{type(entry).__name__} {str(entry)[:60]!r}.")


def load_run(run_dir: str | os.PathLike[str]) -> tuple[BioMLP, list[dict[str, Any]]]:
    """The trained model and the training snapshots of a ``bimt train`` output directory.

    The one place that knows a run directory's layout: ``checkpoint.pt`` (model structure
    in ``config["model"]``, weights in ``states["model"]``) and the snapshots, from
    ``snapshots.pt`` when there is one, else from the checkpoint's ``states["bimt"]``.

    Returns
    -------
    model : BioMLP
    snapshots : list of ``{"step": int, "state": state_dict}``
    """
    run = Path(run_dir)
    ckpt = run / traincore.CHECKPOINT_NAME
    if not ckpt.is_file():
        raise ValueError(f"The run directory {str(run)!r} holds no {traincore.CHECKPOINT_NAME}; "
                         "give the --out directory of a finished 'bimt train', or a model.")
    payload = traincore.load_checkpoint(ckpt)
    try:
        model = model_from_config(payload["config"]["model"])
        model.load_state_dict(payload["states"]["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"The checkpoint {str(ckpt)!r} is not one of a bimt network "
                         f"({type(exc).__name__}: {str(exc)[:80]}); give the --out directory "
                         "of 'bimt train'.") from None
    snap_file = run / SNAPSHOTS_NAME
    if snap_file.is_file():
        raw = torch.load(snap_file, map_location="cpu", weights_only=True)
        if isinstance(raw, Mapping) and raw.get("format") == "bimt-snapshots":
            raw = raw.get("snapshots", [])  # the document bimt train writes (bimt.runs)
    else:
        raw = payload["states"].get("bimt", {}).get("snapshots", [])
    if not isinstance(raw, Sequence):
        raise TypeError(f"The snapshots of {str(run)!r} must be a list; got {type(raw).__name__}.")
    return model, [_snapshot(s, f"snapshots of {str(run)!r}") for s in raw]


@dataclass(frozen=True, repr=False)
class Explorer:
    """The interactive explorer of one network: a plotly figure, and the file written.

    In Jupyter it displays itself (the page in an ``iframe``, plotly.js inline, so it works
    offline and in exported notebooks); ``figure`` is the plotly ``Figure`` to adjust or
    ``.show()`` with plotly's own renderers.

    Attributes
    ----------
    figure : plotly.graph_objects.Figure
    path : Path or None
        The HTML file written, if any.
    neurons, edges, frames : int
        Neurons, nonzero connections (final state) and slider frames (0: no slider).
    """

    figure: Any
    path: Path | None
    neurons: int
    edges: int
    frames: int

    def to_html(self) -> str:
        """The complete self-contained page (plotly.js included, about 5 MB)."""
        return self.figure.to_html(include_plotlyjs=True, full_html=True, auto_play=False,
                                   div_id=DIV_ID, config={"displaylogo": False,
                                                          "responsive": True})

    def _repr_html_(self) -> str:
        height = int(self.figure.layout.height or 600) + 30
        return (f'<iframe srcdoc="{html.escape(self.to_html(), quote=True)}" '
                f'style="width: 100%; height: {height}px; border: none"></iframe>')

    def __repr__(self) -> str:
        where = f"path={str(self.path)!r}, " if self.path is not None else ""
        return (f"Explorer({where}neurons={self.neurons}, edges={self.edges}, "
                f"frames={self.frames})")


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"The '{name}' of explore() must be an integer >= {low}; got {value!r}.")
    return int(value)


def _options(threshold: Any, module_threshold: Any, max_edges: Any, top: Any,
             title: Any) -> ViewOptions:
    for name, value in (("threshold", threshold), ("module_threshold", module_threshold)):
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not 0 <= value <= 1):
            raise ValueError(f"The '{name}' of explore() must be a fraction of the largest "
                             f"|weight| in [0, 1]; got {value!r}.")
    if not isinstance(title, str):
        raise TypeError(f"The 'title' of explore() must be a string; got {type(title).__name__}.")
    return ViewOptions(threshold=float(threshold), module_threshold=float(module_threshold),
                       max_edges=_check_int("max_edges", max_edges, 1),
                       top=_check_int("top", top, 0), title=title)


def _html_path(path: Any) -> Path | None:
    if path is None:
        return None
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"The explorer 'path' must be a file path ending in .html, or None; "
                        f"got {type(path).__name__}.")
    if Path(path).suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"The explorer 'path' {str(path)!r} must end in .html; "
                         f"got {Path(path).suffix or 'no extension'!r}.")
    return Path(path)


def _source(model_or_run_dir: Any, snapshots: Any) -> tuple[torch.nn.Module, list[dict]]:
    if isinstance(model_or_run_dir, torch.nn.Module):
        model, found = model_or_run_dir, []
    elif isinstance(model_or_run_dir, str | os.PathLike):
        if not Path(model_or_run_dir).is_dir():
            raise ValueError(f"explore() takes a model or the output directory of 'bimt train'; "
                             f"{str(model_or_run_dir)!r} is not a directory.")
        model, found = load_run(model_or_run_dir)
    else:
        raise TypeError(f"explore() takes a bimt network (such as bimt.BioMLP) or a run "
                        f"directory; got {type(model_or_run_dir).__name__}.")
    if snapshots is None:
        return model, found
    if isinstance(snapshots, str | bytes | Mapping) or not isinstance(snapshots, Sequence):
        raise TypeError(f"The 'snapshots' of explore() must be a list such as "
                        f"history.snapshots; got {type(snapshots).__name__}.")
    return model, [_snapshot(s, "'snapshots'") for s in snapshots]


def _run_threshold(source: Any) -> float:
    """The pruning threshold a run directory's modules were read at (its metrics.json),
    else the default 0.05."""
    if isinstance(source, str | os.PathLike):
        try:
            value = json.loads((Path(source) / "metrics.json").read_text())["prune_threshold"]
        except (OSError, ValueError, KeyError, TypeError):
            return 0.05
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
            return float(value)
    return 0.05


def _frame_states(model: torch.nn.Module, snapshots: list[dict[str, Any]], max_frames: int,
                  opts: ViewOptions) -> list[State]:
    if not snapshots:
        return []
    # evenly chosen snapshots, always the first and the last (as bimt.animate)
    idx = np.unique(np.linspace(0, len(snapshots) - 1, min(max_frames, len(snapshots)))
                    .round().astype(int))
    frame_model = copy.deepcopy(model).cpu()
    states = []
    for i in idx:
        snap = snapshots[int(i)]
        try:
            result = frame_model.load_state_dict(snap["state"], strict=False)
        except RuntimeError as exc:
            raise ValueError(f"The snapshot of step {snap['step']} does not fit the model "
                             f"({str(exc).splitlines()[0][:100]}); pass the snapshots of "
                             "this model's training.") from None
        if result.unexpected_keys:
            raise ValueError(f"The snapshot of step {snap['step']} has weights the model "
                             f"lacks ({result.unexpected_keys[:3]}); pass the snapshots of "
                             "this model's training.")
        states.append(draw_state(frame_model, opts, snap["step"]))
    return states


def explore(model_or_run_dir: torch.nn.Module | str | os.PathLike[str],
            path: str | os.PathLike[str] | None = "net.html",
            snapshots: Sequence[Mapping[str, Any]] | None = None, *,
            threshold: float = 0.0, module_threshold: float | None = None, max_frames: int = 40,
            max_edges: int = 3000, top: int = 3, title: str = "bimt network") -> Explorer:
    """Write an interactive, self-contained HTML explorer of a network.

    Neurons sit where :func:`bimt.draw` puts them, coloured by module; connections are blue
    (w > 0) or red (w < 0), wider and more opaque with ``|w|``. Hovering a neuron shows its
    layer and group, index and label, bias, module and its ``top`` strongest incoming and
    outgoing weights. With snapshots, a slider (and a play button) scrubs training.

    Parameters
    ----------
    model_or_run_dir : BioMLP (or any network :func:`bimt.to_networkx` describes) or path
        A model, or the output directory of ``bimt train`` (model and snapshots are read
        from it, see :func:`load_run`).
    path : path ending in .html, or None
        Written atomically; one file with plotly.js inside, it opens offline. None: write
        nothing (display in Jupyter only).
    snapshots : list of ``{"step", "state"}``, optional
        ``history.snapshots`` of :func:`bimt.train`; at most ``max_frames`` evenly chosen
        ones become the slider's frames. Default: the run directory's, or none for a model.
    threshold : float
        Hide connections weaker than this fraction of the largest ``|w|`` (always < 0.1 %).
    module_threshold : float, optional
        Pruning threshold that defines the modules (as :func:`bimt.modules`). Default: the
        run directory's (``prune_threshold`` in its ``metrics.json``), else 0.05.
    max_frames, max_edges, top : int
        Slider frames; connections drawn per frame (the strongest); weights per hover list.
    title : str

    Returns
    -------
    Explorer
        Displays itself in Jupyter; ``.figure`` is the plotly Figure, ``.path`` the file.

    Examples
    --------
    >>> import bimt
    >>> ex = bimt.explore(bimt.BioMLP([4, 8, 2], seed=0), path=None)  # doctest: +SKIP
    >>> ex                                                             # doctest: +SKIP
    Explorer(neurons=14, edges=48, frames=0)
    """
    go = require_plotly()
    if module_threshold is None:
        module_threshold = _run_threshold(model_or_run_dir)
    opts = _options(threshold, module_threshold, max_edges, top, title)
    max_frames = _check_int("max_frames", max_frames, 1)
    out = _html_path(path)
    model, snaps = _source(model_or_run_dir, snapshots)
    with torch.no_grad():
        base = draw_state(model, opts)
        frames = _frame_states(model, snaps, max_frames, opts)
    names = [(f"frame{i}", state) for i, state in enumerate(frames)]
    slider = [(name, int(state.step or 0)) for name, state in names]
    fig = go.Figure(data=base.traces, layout=figure_layout(base, slider),
                    frames=[{"name": name, "data": state.traces,
                             "layout": {"title": {"text": state.title}}}
                            for name, state in names])
    result = Explorer(fig, out, base.neurons, base.edges, len(frames))
    if out is not None:
        page = result.to_html()  # rendered before the file is touched
        with traincore.atomic_write(out, "w") as fh:
            fh.write(page)
    return result
