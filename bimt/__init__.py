"""bimt: brain-inspired modular training (Liu, Gan & Tegmark, arXiv:2305.08746).

Neurons get positions, training pays for long connections, and swaps move neurons to where
their wiring is shortest, so the trained network shows its modules. Every operation reads a
network through its :class:`Spatial` description (:class:`BioMLP` is one case); all training
runs on :func:`traincore.fit`, and :class:`Swapper` / :func:`connection_cost` bring BIMT to
a training loop of your own.

Examples
--------
>>> import bimt
>>> model = bimt.BioMLP([4, 20, 20, 2], seed=0)
>>> [layer.weight.shape[1] for layer in model.layers]
[4, 20, 20]
"""

from traincore import FlatAdamW  # noqa: F401  (its home is traincore; kept importable here)

from .config import BIMTConfig, lambda_schedule, lr_schedule
from .convert import from_torch
from .cost import connection_cost, cost_matrices
from .data import Loss, prepare_data
from .engines import AnalyticEngine, AutogradEngine, Penalty
from .ensemble import Ensemble
from .ensemble_train import fit_ensemble
from .explore import Explorer, explore, load_run
from .export import export_graph, read_graph
from .geometry import layer_coordinates
from .layers import ACTIVATIONS, BioLinear
from .model import BioMLP
from .modularity import (
    Analysis,
    Module,
    PruneResult,
    active_neurons,
    analyse,
    modularity,
    modules,
    prune,
    summarize,
    to_networkx,
)
from .plotting import animate, draw, neuron_positions
from .rnn import BioRNN
from .runs import RunResult, load_snapshots, run_task
from .spatial import Group, Link, Row, Spatial, Touch, Wire, describe
from .swap import SwapReport, swap_neurons, torch_optimizer_moments
from .swapper import Swapper, relocate
from .sweep_plot import plot_sweep
from .sweeps import load_sweep, sweep
from .tasks import TASKS, Task, TaskData, build_model, get_task
from .training import TrainingHistory, train
from .transformer import BioTransformer

__all__ = [
    "ACTIVATIONS", "BioLinear", "BioMLP", "layer_coordinates", "from_torch",
    "BioRNN",
    "Spatial", "Group", "Row", "Wire", "Touch", "Link", "describe",
    "connection_cost", "cost_matrices",
    "Swapper", "relocate", "SwapReport", "swap_neurons", "torch_optimizer_moments",
    "BIMTConfig", "TrainingHistory", "lambda_schedule", "lr_schedule", "train",
    "Loss", "prepare_data", "AnalyticEngine", "AutogradEngine", "Penalty",
    "Analysis", "Module", "PruneResult", "active_neurons", "analyse", "modularity", "modules",
    "prune", "summarize", "to_networkx", "animate", "draw", "neuron_positions",
    "RunResult", "run_task", "load_snapshots",
    "Explorer", "explore", "load_run", "export_graph", "read_graph",
    "TASKS", "Task", "TaskData", "build_model", "get_task",
    "sweep", "plot_sweep", "load_sweep", "Ensemble", "fit_ensemble", "BioTransformer",
]
