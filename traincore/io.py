"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every write goes to a hidden temporary file beside the target (``.NAME.<pid>.<random>.tmp``),
is flushed to the disk, and is renamed over the target. When the disk is full, a quota or
file-size limit is hit, or the place is read-only, the temporary file is removed, the old
file is left as it was, and one :class:`WriteError` names the path, the reason and the fix.
A process killed outright (``SIGKILL``, power loss) in the middle of a write can leave its
temporary file; the next write of the same file removes it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = ["WriteError", "atomic_write", "atomic_write_text", "atomic_write_json",
           "atomic_write_many", "ensure_writable_dir"]

#: errno -> (what happened, how to fix it), for the one-line message of :class:`WriteError`.
_DISK_ERRORS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("the disk is full", "free some space or write elsewhere"),
    errno.EDQUOT: ("the disk quota is exhausted", "free some space or write elsewhere"),
    errno.EFBIG: ("the file is over the file-size limit",
                  "raise the limit (ulimit -f) or write elsewhere"),
    errno.EROFS: ("the file system is read-only", "choose a writable directory"),
    errno.EACCES: ("permission denied", "choose a writable directory"),
    errno.EPERM: ("permission denied", "choose a writable directory"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "choose another path"),
    errno.ENOENT: ("its folder cannot hold new files", "choose another path"),
    errno.EISDIR: ("the path is a folder", "give a file name"),
    errno.ENAMETOOLONG: ("the name is too long", "choose a shorter path"),
    errno.EIO: ("an input/output error occurred", "check the disk, or write elsewhere"),
}


class WriteError(OSError):
    """A file could not be written (disk full, read-only, over a limit, ...).

    ``errno`` is the system's error number; the message is one line naming the path, what
    happened and the fix. The previous file of that name is unchanged.
    """

    def __init__(self, code: int, message: str, filename: str) -> None:
        super().__init__(code, message, filename)
        self.message = message

    def __str__(self) -> str:
        return self.message


def write_error(exc: OSError, path: str | os.PathLike[str]) -> WriteError:
    """The :class:`WriteError` for ``exc`` raised while writing ``path``."""
    if isinstance(exc, WriteError):
        return exc
    code = exc.errno or errno.EIO
    reason, fix = _DISK_ERRORS.get(code, (exc.strerror or type(exc).__name__,
                                          "check the path, or write elsewhere"))
    return WriteError(code, f"Cannot write {str(path)!r}: {reason} ({os.strerror(code)}); "
                            f"{fix}. Any previous file of that name is unchanged.", str(path))


def ensure_writable_dir(path: str | os.PathLike[str], what: str = "output directory") -> Path:
    """Create ``path`` (and parents) if needed and check that files can be written in it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"The {what} {str(path)!r} cannot be created: {exc.strerror}; "
                         "choose another path.") from None
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"The {what} {str(path)!r} is not a writable directory; "
                         "choose another path.")
    return path


def _remove_stale_temps(parent: Path, name: str) -> None:
    """Remove temporary files of ``name`` left by processes that no longer exist."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(parent):
            parts = entry.name.rsplit(".", 3)  # ["." + name, pid, random, "tmp"]
            if (len(parts) != 4 or parts[0] != f".{name}" or parts[3] != "tmp"
                    or not parts[1].isdigit() or int(parts[1]) == os.getpid()):
                continue
            try:
                os.kill(int(parts[1]), 0)
            except ProcessLookupError:  # its writer died mid-write: nobody will rename it
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            except OSError:  # alive (PermissionError: someone else's process)
                pass


class _Staged:
    """A temporary file beside ``path``: written and flushed, then renamed or discarded."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parent = path.parent if str(path.parent) else Path(".")
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # a regular file stands where a folder of the path should be
            raise write_error(OSError(errno.ENOTDIR, "Not a directory"), path) from None
        except OSError as exc:
            raise write_error(exc, path) from None
        _remove_stale_temps(self.parent, path.name)
        self.tmp = self.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            # O_EXCL: never follow or reuse someone's file; 0o666: the usual umask applies
            self.fd: int | None = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                                          os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise write_error(exc, path) from None

    def write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]  # type: ignore[arg-type]

    def flush(self) -> None:
        """Make the content durable and close the file (the rename comes later)."""
        fd, self.fd = self.fd, None
        try:
            os.fsync(fd)  # type: ignore[arg-type]
        finally:
            os.close(fd)  # type: ignore[arg-type]  # close reports delayed write errors too

    def commit(self) -> None:
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


def _sync_dir(parent: Path) -> None:
    """Make the renames durable (best effort: not every file system allows it)."""
    with contextlib.suppress(OSError):
        dir_fd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched; an error
    of the disk (full, read-only, over a limit) becomes one :class:`WriteError`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_write(d / "a.txt", "w") as fh:
    ...     _ = fh.write("hello")
    >>> (d / "a.txt").read_text()
    'hello'
    """
    path = Path(path)
    if mode not in ("w", "wb"):
        raise ValueError(f"The 'mode' must be 'w' or 'wb'; got {mode!r}.")
    staged = _Staged(path)
    try:
        text = {"encoding": "utf-8"} if mode == "w" else {}
        with os.fdopen(staged.fd, mode, closefd=False, **text) as fh:  # type: ignore[arg-type]
            yield fh
        staged.flush()
        staged.commit()
    except BaseException as exc:
        staged.discard()
        # only errors of the disk are rewritten; anything the caller raised passes unchanged
        if isinstance(exc, OSError) and exc.errno in _DISK_ERRORS:
            raise write_error(exc, path) from None
        raise
    _sync_dir(staged.parent)


def atomic_write_many(contents: Mapping[str | os.PathLike[str], str | bytes]) -> list[Path]:
    """Write several files all or nothing: every one is written and flushed before any
    is renamed into place.

    A failure while writing (a full disk, ...) leaves every target unchanged and no
    temporary file. The renames then follow each other within microseconds.

    Parameters
    ----------
    contents : mapping of path to str (written as UTF-8) or bytes

    Returns
    -------
    list of Path
        The paths written, in the order given.
    """
    staged: list[_Staged] = []
    try:
        for path, content in contents.items():
            staged.append(_Staged(Path(path)))
            data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
            try:
                staged[-1].write_all(data)
                staged[-1].flush()
            except OSError as exc:
                raise write_error(exc, path) from None
        for item in staged:
            try:
                item.commit()
            except OSError as exc:
                raise write_error(exc, item.path) from None
    except BaseException:
        for item in staged:
            item.discard()
        raise
    for parent in {item.parent for item in staged}:
        _sync_dir(parent)
    return [item.path for item in staged]


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_write(path, "w") as fh:
        fh.write(text)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (the object is serialised first)."""
    text = json.dumps(obj, indent=indent) + "\n"
    atomic_write_text(path, text)
