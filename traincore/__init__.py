"""traincore: the shared PyTorch core of the toolkit.

Device selection, seeding, the one training loop with callbacks, checkpoints, atomic
files, output-directory locks, memory budgets, time limits, SIGTERM handling, float64
linear algebra on the device, argument checks, the command-line scaffolding, and scale-out
on Dask (a cluster, ordered maps, chunked grids into crash-safe result tables). aipoincare
and bimt use these and have no copy of their own.
"""

from .callbacks import Callback, Every, JSONLLogger, ProgressBar
from .checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, save_checkpoint
from .chunks import run_chunks
from .device import DEVICE_ENV, DeviceError, cpu_threads, resolve_device
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
from .lock import LOCK_NAME, DirectoryLock, DirectoryLockedError, lock_directory
from .loop import Stateful, fit
from .memory import MemoryBudgetError, check_memory, format_bytes, memory_budget
from .optim import FlatAdamW
from .results import ResultTable, rows_to_frame
from .seeding import get_rng_state, numpy_rng, seed_everything, set_rng_state, torch_generator
from .signals import DeferredSignals, Interrupted, terminate_raises
from .state import History, Loop, NonFiniteError
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
