"""bimt: brain-inspired modular training (Liu, Gan & Tegmark, arXiv:2305.08746).

Neurons get positions, training pays for long connections, and swaps move neurons to where
their wiring is shortest, so the trained network shows its modules. All training runs on
:func:`traincore.fit`.

Examples
--------
>>> import bimt
>>> model = bimt.BioMLP([4, 20, 20, 2], seed=0)
>>> [layer.weight.shape[1] for layer in model.layers]
[4, 20, 20]
"""

from .cost import connection_cost, cost_matrices
from .explore import Explorer, explore, load_run
from .export import export_graph, read_graph
from .geometry import layer_coordinates
from .model import ACTIVATIONS, BioLinear, BioMLP
from .modularity import (
    Module,
    PruneResult,
    active_neurons,
    modularity,
    modules,
    prune,
    summarize,
    to_networkx,
)
from .plotting import animate, draw, neuron_positions
from .swap import relocate, swap_deltas, swap_neurons, torch_optimizer_moments
from .tasks import TASKS, Task, TaskData, build_model, get_task
from .training import BIMTConfig, FlatAdamW, TrainingHistory, lambda_schedule, train

__all__ = [
    "ACTIVATIONS", "BioLinear", "BioMLP", "layer_coordinates",
    "connection_cost", "cost_matrices",
    "relocate", "swap_deltas", "swap_neurons", "torch_optimizer_moments",
    "BIMTConfig", "FlatAdamW", "TrainingHistory", "lambda_schedule", "train",
    "Module", "PruneResult", "active_neurons", "modularity", "modules", "prune", "summarize",
    "to_networkx", "animate", "draw", "neuron_positions",
    "Explorer", "explore", "load_run", "export_graph", "read_graph",
    "TASKS", "Task", "TaskData", "build_model", "get_task",
]
