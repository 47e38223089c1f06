"""Output-directory locks: one run per directory, no stale lock after a crash."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from traincore import LOCK_NAME, DirectoryLock, DirectoryLockedError, lock_directory

HOLD = textwrap.dedent("""
    import sys, time
    from traincore import lock_directory
    with lock_directory(sys.argv[1], command=["bimt", "train", "demo"]):
        print("locked", flush=True)
        time.sleep(60)
""")


def _holder(path):
    """A child process that holds the lock of ``path`` until killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_lock_is_refused_with_who_holds_it(tmp_path):
    with lock_directory(tmp_path, command=["bimt", "train", "x"]) as first:
        assert first.held and (tmp_path / LOCK_NAME).is_file()
        with pytest.raises(DirectoryLockedError,
                           match=rf"The output directory '{tmp_path}' is in use by another run "
                                 rf"\(pid {os.getpid()}, bimt train x, since .*\); wait for it"):
            DirectoryLock(tmp_path).acquire()
    assert not first.held
    assert not (tmp_path / LOCK_NAME).exists()  # a clean release leaves nothing behind
    with lock_directory(tmp_path):  # free again
        pass


def test_lock_error_is_an_oserror_with_one_line():
    err = DirectoryLockedError("The output directory 'x' is in use; stop it.")
    assert isinstance(err, OSError) and str(err) == "The output directory 'x' is in use; stop it."


def test_lock_held_by_another_process_then_sigkill_leaves_no_stale_lock(tmp_path):
    proc = _holder(tmp_path)
    try:
        with pytest.raises(DirectoryLockedError, match=rf"pid {proc.pid}, bimt train demo"):
            DirectoryLock(tmp_path, fix="use another --out").acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    # the killed holder could not clean up: its lock file remains, but the lock is gone
    assert (tmp_path / LOCK_NAME).exists()
    start = time.perf_counter()
    with lock_directory(tmp_path) as lock:
        assert lock.held
    assert time.perf_counter() - start < 1.0  # taken at once, no waiting on a stale lock


def test_acquire_is_idempotent_and_repr(tmp_path):
    lock = DirectoryLock(tmp_path / "new" / "dir")
    assert lock.acquire() is lock.acquire()
    assert "held=True" in repr(lock)
    lock.release()
    lock.release()
    assert "held=False" in repr(lock)


def test_unusable_directory_is_one_clear_oserror(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match=r"cannot be created .*; choose another path"):
        DirectoryLock(blocker / "out").acquire()


def test_release_race_never_gives_two_holders(tmp_path):
    """A lock taken on a file that its releasing holder just unlinked is retried."""
    first = DirectoryLock(tmp_path).acquire()
    # a second process opened the old file just before the release; after the release,
    # a third one creates a new file: both must not end up holding a lock
    fd = os.open(tmp_path / LOCK_NAME, os.O_RDWR)
    first.release()
    with lock_directory(tmp_path) as third:
        import fcntl
        # the stale inode can be locked, but it is no longer the lock file: acquire() would
        # notice (samestat) and retry on the new file, where `third` holds the lock
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert not os.path.samestat(os.fstat(fd), os.stat(tmp_path / LOCK_NAME))
        with pytest.raises(DirectoryLockedError):
            DirectoryLock(tmp_path).acquire()
        assert third.held
    os.close(fd)
