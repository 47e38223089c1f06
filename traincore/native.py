"""Native kernels: a C source shipped with a package, compiled once per machine, loaded with ctypes.

Some loops are faster as one compiled function than as a chain of small tensor operations
(each costs a dispatch, a pass through memory and, in threads, Python's interpreter lock).
:func:`load` compiles such a source with the system's C compiler the first time it is asked
for, keeps the shared library in a cache directory keyed by the source, the flags, the
compiler and the CPU, and loads it with :mod:`ctypes`, whose calls release the interpreter
lock. Where there is no compiler, or compiling fails, it returns None (with one warning per
source) and the caller keeps its PyTorch path: a native kernel is only ever a faster way to
the same result.

Environment:

- ``TRAINCORE_NATIVE=0`` turns native kernels off (every :func:`load` returns None).
- ``TRAINCORE_CACHE`` is the cache directory's parent (default ``$XDG_CACHE_HOME`` or
  ``~/.cache``, then ``traincore/native``).
- ``CC`` is the compiler (default: Python's own, else ``cc``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

__all__ = ["NATIVE_ENV", "FLAGS", "PORTABLE_FLAGS", "enabled", "compiler", "cache_dir", "load"]

NATIVE_ENV = "TRAINCORE_NATIVE"
#: vectorised loops for this CPU's instruction set (the cache key holds the CPU) with generic
#: tuning (GCC's tuning for the benchmark machine's AMD Zen 1 splits 32-byte loads, which
#: made the kernels 1.5x slower there); C's float rules kept: no -ffast-math, so NaN and
#: infinities propagate as in PyTorch
FLAGS = ("-O3", "-march=native", "-mtune=generic", "-fopenmp-simd", "-fno-math-errno",
         "-fno-trapping-math", "-fPIC", "-shared")
#: the same for compilers that do not know -march=native
PORTABLE_FLAGS = tuple(f for f in FLAGS if not f.startswith(("-march", "-mtune")))
COMPILE_SECONDS = 120

_LOCK = threading.Lock()
_LOADED: dict[str, ctypes.CDLL | None] = {}


def enabled() -> bool:
    """False when ``TRAINCORE_NATIVE`` is ``0`` (or ``false``/``no``/``off``)."""
    return os.environ.get(NATIVE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def compiler() -> str | None:
    """The C compiler's path: ``$CC``, Python's own compiler, else ``cc`` (None: none found)."""
    for cand in (os.environ.get("CC"), sysconfig.get_config_var("CC"), "cc"):
        if cand:
            path = shutil.which(shlex.split(cand)[0])
            if path:
                return path
    return None


def cache_dir() -> Path:
    """Where compiled libraries are kept."""
    base = os.environ.get("TRAINCORE_CACHE") or os.environ.get("XDG_CACHE_HOME") or \
        os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "traincore" / "native"


def _cpu() -> str:
    """What identifies this CPU's instruction set (``-march=native`` compiles for it)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            lines = [ln for ln in fh if ln.startswith(("model name", "flags", "Features"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor() or platform.machine()


def _version(cc: str) -> str:
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True,
                              timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _compile(source: Path, target: Path, cc: str, flags: Sequence[str]) -> None:
    """Compile to a temporary name beside ``target``, then rename: another process that
    compiles the same library at the same time finds either none or a whole one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        proc = subprocess.run([cc, *flags, str(source), "-o", tmp, "-lm"], capture_output=True,
                              text=True, timeout=COMPILE_SECONDS)
        if proc.returncode != 0:
            said = (proc.stderr or proc.stdout).strip().splitlines()
            raise RuntimeError(said[-1] if said else f"exit status {proc.returncode}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(source: str | os.PathLike[str], defines: Sequence[str] = ()) -> ctypes.CDLL | None:
    """The shared library of C file ``source`` compiled with ``defines`` (``NAME=VALUE``).

    Compiled on first use and cached (per machine: source, flags, compiler and CPU in the
    key); loaded once per process. Returns None when native kernels are off, there is no
    compiler, or compiling fails (a warning says why, once per source and defines).

    Examples
    --------
    >>> import traincore.native as native
    >>> lib = native.load("no_such_file.c")  # doctest: +SKIP
    """
    if not enabled():
        return None
    source = Path(source)
    extra = [f"-D{d}" for d in defines]
    memo = f"{source.resolve()}|{' '.join(extra)}"
    with _LOCK:
        if memo not in _LOADED:
            _LOADED[memo] = _build(source, extra)
        return _LOADED[memo]


def _build(source: Path, extra: list[str]) -> ctypes.CDLL | None:
    cc = compiler()
    if cc is None:
        warnings.warn(f"No C compiler found for the native kernel {source.name}; using the "
                      "PyTorch path (install gcc or clang, or set CC, for the faster one).",
                      RuntimeWarning, stacklevel=4)
        return None
    failure: Exception | None = None
    for base in (FLAGS, PORTABLE_FLAGS):  # a compiler without -march=native: the portable set
        flags = [*base, *extra]
        try:
            key = hashlib.sha256("\0".join([source.read_text(encoding="utf-8"), *flags, cc,
                                            _version(cc), _cpu(), platform.machine()]
                                           ).encode()).hexdigest()[:24]
            target = cache_dir() / f"{source.stem}-{key}.so"
            if not target.exists():
                _compile(source, target, cc, flags)
            return ctypes.CDLL(str(target))
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            failure = failure or exc
    warnings.warn(f"Could not build the native kernel {source.name} ({failure}); using the "
                  f"PyTorch path (set {NATIVE_ENV}=0 to skip trying).", RuntimeWarning,
                  stacklevel=4)
    return None
