"""Estimate memory before allocating, and refuse with a clear message rather than crash."""

from __future__ import annotations

import os

__all__ = ["MEMORY_ENV", "MemoryBudgetError", "available_memory", "memory_budget", "check_memory",
           "format_bytes"]

#: Environment variable with a budget in bytes (suffixes K, M, G accepted), e.g. ``2G``.
MEMORY_ENV = "TRAINCORE_MEMORY_BUDGET"


class MemoryBudgetError(ValueError):
    """A computation would need more memory than the budget allows."""


def format_bytes(n: float) -> str:
    """Human-readable size: ``format_bytes(3 * 2**30) == '3.0 GiB'``.

    >>> format_bytes(1536)
    '1.5 KiB'
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def available_memory() -> int:
    """Bytes of memory available to this process now (MemAvailable, else total RAM)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30  # unknown platform: assume a modest laptop


def _parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(text[-1:], 1)
    number = text[:-1] if scale != 1 else text
    try:
        value = float(number) * scale
    except ValueError:
        raise MemoryBudgetError(
            f"The environment variable {MEMORY_ENV} must be a size such as 2G or 512M; "
            f"got {text!r}."
        ) from None
    return int(value)


def memory_budget() -> int:
    """The budget in bytes: ``TRAINCORE_MEMORY_BUDGET`` if set, else 60% of available memory."""
    env = os.environ.get(MEMORY_ENV, "").strip()
    if env:
        return _parse_size(env)
    return int(0.6 * available_memory())


def check_memory(nbytes: float, what: str, hint: str, budget: int | None = None) -> None:
    """Raise :class:`MemoryBudgetError` if ``nbytes`` exceeds the budget.

    Parameters
    ----------
    nbytes : float
        Estimated peak bytes of the planned computation.
    what : str
        What would be allocated, for the message (e.g. "the 40000 x 12000 matrix A").
    hint : str
        How to make it fit (e.g. "lower --degree or --points").
    budget : int, optional
        Bytes allowed; default :func:`memory_budget`.
    """
    budget = memory_budget() if budget is None else budget
    if nbytes > budget:
        raise MemoryBudgetError(
            f"{what} needs about {format_bytes(nbytes)}, over the memory budget of "
            f"{format_bytes(budget)}; {hint} (or raise {MEMORY_ENV})."
        )
