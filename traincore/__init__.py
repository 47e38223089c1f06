"""traincore: the shared PyTorch core of the toolkit.

Device selection, seeding, the one training loop with callbacks, checkpoints, atomic
files, output-directory locks, memory budgets, time limits, SIGTERM handling, float64
linear algebra on the device, argument checks, the command-line scaffolding, scale-out
on Dask (a cluster, ordered maps, chunked grids into crash-safe result tables), and native
kernels (:mod:`traincore.native`: C compiled once per machine, PyTorch where it cannot
be). aipoincare and bimt use these and have no copy of their own.
"""

from typing import TYPE_CHECKING

from .chunks import run_chunks
from .distributed import (
    INSTALL_HINT,
    SCHEDULER_ENV,
    WorkerLostError,
    cluster,
    map_ordered,
    resolve_scheduler,
)
from .io import (
    WriteError,
    atomic_write,
    atomic_write_json,
    atomic_write_many,
    atomic_write_text,
    ensure_writable_dir,
)
from .lazy import lazy_attributes
from .lock import LOCK_NAME, DirectoryLock, DirectoryLockedError, lock_directory
from .memory import MemoryBudgetError, check_memory, format_bytes, memory_budget
from .results import ResultTable, rows_to_frame
from .signals import DeferredSignals, Interrupted, terminate_raises
from .timelimit import TimeLimit, TimeLimitError, check_time, time_left, time_limit
from .validate import (
    Errors,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_type,
    replace_fields,
)

# The modules below import torch: loaded on first use (PEP 562), so that what needs no torch
# (argument checks, atomic files, the command-line scaffolding) imports fast and a command
# line can report bad input before paying for torch.
_LAZY = {
    "Callback": "callbacks",
    "Every": "callbacks",
    "JSONLLogger": "callbacks",
    "ProgressBar": "callbacks",
    "CHECKPOINT_NAME": "checkpoint",
    "CheckpointError": "checkpoint",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "DEVICE_ENV": "device",
    "DeviceError": "device",
    "cpu_threads": "device",
    "resolve_device": "device",
    "TSQR": "linalg",
    "NullSpace": "linalg",
    "accumulate_gram": "linalg",
    "accumulate_r": "linalg",
    "batched_gradient": "linalg",
    "choose_cut": "linalg",
    "normalised_spectrum": "linalg",
    "null_space": "linalg",
    "row_chunk_size": "linalg",
    "Stateful": "loop",
    "fit": "loop",
    "FlatAdamW": "optim",
    "get_rng_state": "seeding",
    "numpy_rng": "seeding",
    "seed_everything": "seeding",
    "set_rng_state": "seeding",
    "torch_generator": "seeding",
    "History": "state",
    "Loop": "state",
    "NonFiniteError": "state",
}

if TYPE_CHECKING:  # for type checkers and readers: the same names, imported eagerly
    from .callbacks import Callback, Every, JSONLLogger, ProgressBar
    from .checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, save_checkpoint
    from .device import DEVICE_ENV, DeviceError, cpu_threads, resolve_device
    from .linalg import (
        TSQR,
        NullSpace,
        accumulate_gram,
        accumulate_r,
        batched_gradient,
        choose_cut,
        normalised_spectrum,
        null_space,
        row_chunk_size,
    )
    from .loop import Stateful, fit
    from .optim import FlatAdamW
    from .seeding import get_rng_state, numpy_rng, seed_everything, set_rng_state, torch_generator
    from .state import History, Loop, NonFiniteError


__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)

__version__ = "0.1.0"

__all__ = [
    "Callback", "Every", "JSONLLogger", "NonFiniteError", "ProgressBar",
    "CHECKPOINT_NAME", "CheckpointError", "load_checkpoint", "save_checkpoint",
    "DEVICE_ENV", "DeviceError", "resolve_device", "cpu_threads",
    "WriteError", "atomic_write", "atomic_write_json", "atomic_write_many", "atomic_write_text",
    "ensure_writable_dir",
    "LOCK_NAME", "DirectoryLock", "DirectoryLockedError", "lock_directory",
    "TSQR", "NullSpace", "accumulate_gram", "accumulate_r", "batched_gradient", "choose_cut",
    "normalised_spectrum", "null_space", "row_chunk_size",
    "History", "Loop", "Stateful", "fit",
    "MemoryBudgetError", "check_memory", "format_bytes", "memory_budget",
    "FlatAdamW",
    "get_rng_state", "numpy_rng", "seed_everything", "set_rng_state", "torch_generator",
    "DeferredSignals", "Interrupted", "terminate_raises",
    "TimeLimit", "TimeLimitError", "check_time", "time_left", "time_limit",
    "SCHEDULER_ENV", "INSTALL_HINT", "WorkerLostError", "resolve_scheduler", "cluster",
    "map_ordered", "run_chunks", "ResultTable", "rows_to_frame",
    "Errors", "check_bool", "check_choice", "check_int", "check_number", "check_type",
    "replace_fields",
]
