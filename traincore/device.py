"""Resolve a device request ("auto", "cpu", "cuda", "cuda:N") to a ``torch.device``.

This is the only place in the toolkit that picks a device: aipoincare and bimt call
:func:`resolve_device` and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

import torch

__all__ = ["DEVICE_ENV", "DeviceError", "resolve_device", "cpu_threads"]

#: Environment variable that overrides ``"auto"`` (e.g. ``TRAINCORE_DEVICE=cpu`` on a GPU box).
DEVICE_ENV = "TRAINCORE_DEVICE"

_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class DeviceError(ValueError):
    """A device request that is malformed or cannot be satisfied on this machine."""


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """Turn a device request into a concrete ``torch.device``.

    Parameters
    ----------
    spec : str or torch.device or None
        ``"auto"`` (or None) picks CUDA when available, else the CPU; the environment
        variable ``TRAINCORE_DEVICE`` overrides ``"auto"``. ``"cpu"``, ``"cuda"`` and
        ``"cuda:N"`` are taken literally.

    Returns
    -------
    torch.device

    Raises
    ------
    DeviceError
        For a malformed request, or CUDA asked for where none exists (never a silent
        fallback to the CPU).

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    if spec is None:
        spec = "auto"
    if not isinstance(spec, str):
        raise DeviceError(
            "The device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; "
            f"got {type(spec).__name__} {spec!r}."
        )
    spec = spec.strip().lower()
    source = "argument"
    if spec == "auto" and os.environ.get(DEVICE_ENV, "").strip():
        spec = os.environ[DEVICE_ENV].strip().lower()
        source = f"environment variable {DEVICE_ENV}"
    if not _PATTERN.match(spec):
        raise DeviceError(
            f"The device ({source}) must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {spec!r}."
        )
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"The device {spec!r} ({source}) was requested but CUDA is not available on this "
            "machine; use --device cpu or --device auto."
        )
    index = int(spec.split(":")[1]) if ":" in spec else 0
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceError(
            f"The device {spec!r} ({source}) does not exist: this machine has {count} CUDA "
            f"device(s), cuda:0 to cuda:{count - 1}."
        )
    return torch.device("cuda", index)


@contextlib.contextmanager
def cpu_threads(n: int | None, device: torch.device | str | None = None) -> Iterator[None]:
    """Temporarily set torch's intra-op CPU threads to ``n``; restore them afterwards.

    No effect when ``n`` is None or 0, or when ``device`` is not the CPU.

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with cpu_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if not n or (device is not None and torch.device(device).type != "cpu"):
        yield
        return
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
