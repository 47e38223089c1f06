"""One run per output directory: an exclusive advisory lock on ``DIR/.lock``.

Two runs writing to the same directory would interleave their logs and overwrite each
other's checkpoints. :func:`lock_directory` takes an exclusive ``flock`` on ``DIR/.lock``
for as long as the run lasts; a second run gets :class:`DirectoryLockedError` at once, with
the other run's pid and command and what to do.

The lock belongs to the open file, not to the file's existence, so the kernel releases it
when the process ends in any way (exit, exception, ``SIGKILL``, power loss on a local
disk): a crashed run never leaves a stale lock behind. The lock file is removed on a clean
release; a killed run leaves only the (unlocked) file, which the next run reuses.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["LOCK_NAME", "DirectoryLockedError", "DirectoryLock", "lock_directory"]

#: Name of the lock file inside a locked directory.
LOCK_NAME = ".lock"


class DirectoryLockedError(OSError):
    """Another running process holds the lock of this directory."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EBUSY, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _holder(lock_path: Path) -> str:
    """Who holds the lock, from what the holder wrote into the file ('' when unknown)."""
    try:
        lines = lock_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    info = dict(line.split("=", 1) for line in lines if "=" in line)
    parts = []
    if info.get("pid"):
        host = info.get("host", "")
        here = host in ("", socket.gethostname())
        parts.append(f"pid {info['pid']}" + ("" if here else f" on {host}"))
    if info.get("command"):
        parts.append(info["command"][:200])
    if info.get("since"):
        parts.append(f"since {info['since']}")
    return ", ".join(parts)


class DirectoryLock:
    """An exclusive lock on a directory, held from :meth:`acquire` to :meth:`release`.

    Parameters
    ----------
    directory : path
        Created when missing.
    what : str
        How the message names the directory (e.g. ``"output directory"``).
    fix : str
        What the user should do when the lock is held, for the message.
    command : sequence of str, optional
        Recorded in the lock file for the message another run gets (default ``sys.argv``).

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with DirectoryLock(d):
    ...     DirectoryLock(d).acquire()
    Traceback (most recent call last):
    ...
    traincore.lock.DirectoryLockedError: The output directory ... is in use by another run ...
    """

    def __init__(self, directory: str | os.PathLike[str], what: str = "output directory",
                 fix: str = "wait for it to finish or stop it, or choose another directory",
                 command: Sequence[str] | None = None) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.what, self.fix = what, fix
        self.command = list(sys.argv if command is None else command)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True between :meth:`acquire` and :meth:`release`."""
        return self._fd is not None

    def acquire(self) -> DirectoryLock:
        """Take the lock now or raise :class:`DirectoryLockedError` (never waits)."""
        if self._fd is not None:
            return self
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(exc.errno, f"The {self.what} {str(self.directory)!r} cannot be "
                          f"created ({exc.strerror}); choose another path.") from None
        while True:
            try:
                # O_CLOEXEC: a program this run starts must not inherit (and keep) the lock
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise OSError(exc.errno, f"The {self.what} {str(self.directory)!r} cannot be "
                              f"locked: {exc.strerror} for {str(self.path)!r}; choose a "
                              "writable directory.") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise OSError(exc.errno, f"The {self.what} {str(self.directory)!r} cannot "
                                  f"be locked ({exc.strerror}); choose a directory on a local "
                                  "disk.") from None
                who = _holder(self.path)
                raise DirectoryLockedError(
                    f"The {self.what} {str(self.directory)!r} is in use by another run"
                    f"{f' ({who})' if who else ''}; {self.fix}.") from None
            # A releasing holder unlinks the file before unlocking: if we locked an inode that
            # is no longer the one at the path, another process may lock the new one. Retry.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        info = (f"pid={os.getpid()}\nhost={socket.gethostname()}\n"
                f"command={shlex.join(self.command)}\n"
                f"since={time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        with contextlib.suppress(OSError):  # the note is for messages only; a full disk
            os.ftruncate(fd, 0)             # must not stop the run from holding the lock
            os.pwrite(fd, info.encode(), 0)
        return self

    def release(self) -> None:
        """Remove the lock file and release the lock (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still locked: see the retry in acquire
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"DirectoryLock({str(self.directory)!r}, held={self.held})"


@contextlib.contextmanager
def lock_directory(directory: str | os.PathLike[str], what: str = "output directory",
                   fix: str = "wait for it to finish or stop it, or choose another directory",
                   command: Sequence[str] | None = None) -> Iterator[DirectoryLock]:
    """Hold an exclusive lock on ``directory`` for the ``with`` block.

    Raises
    ------
    DirectoryLockedError
        At once, when another process holds it (the message names that process).
    OSError
        When the directory cannot be created or the lock file cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> with lock_directory(tempfile.mkdtemp()) as lock:
    ...     lock.held
    True
    """
    lock = DirectoryLock(directory, what, fix, command).acquire()
    try:
        yield lock
    finally:
        lock.release()
