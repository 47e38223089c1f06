"""Checkpoints: written atomically, validated when read, never loaded half-written."""

from __future__ import annotations

import io as _io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from .io import atomic_write

__all__ = ["CHECKPOINT_NAME", "CheckpointError", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_NAME = "checkpoint.pt"
_FORMAT = "traincore-checkpoint"
_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that is missing, corrupt, or of another format."""


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Save ``payload`` (tensors, numbers, strings, lists, dicts) atomically to ``path``.

    The file is written to a temporary name, fsynced and renamed, so a crash during the
    save leaves the previous checkpoint intact.
    """
    path = Path(path)
    doc = {"format": _FORMAT, "version": _VERSION, "payload": payload}
    buffer = _io.BytesIO()
    torch.save(doc, buffer)  # serialise fully before touching the disk
    with atomic_write(path, "wb") as fh:
        fh.write(buffer.getbuffer())
    return path


def load_checkpoint(path: str | os.PathLike[str],
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Only plain data is unpickled (``weights_only=True``): a crafted file cannot run code.

    Raises
    ------
    CheckpointError
        If the file is missing, truncated, corrupt or not a traincore checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"The checkpoint {str(path)!r} does not exist; check the path.")
    try:
        doc = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError,
            ValueError, KeyError, AttributeError, TypeError) as exc:
        raise CheckpointError(
            f"The checkpoint {str(path)!r} is corrupt or unreadable ({type(exc).__name__}); "
            "delete it or resume from another run."
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise CheckpointError(
            f"The file {str(path)!r} is not a traincore checkpoint; delete it or choose another "
            "directory."
        )
    if doc.get("version") != _VERSION:
        raise CheckpointError(
            f"The checkpoint {str(path)!r} has format version {doc.get('version')!r}; this "
            f"version of traincore reads version {_VERSION}."
        )
    return doc["payload"]
