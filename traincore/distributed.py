"""Scale-out on Dask distributed: connect to a cluster, map independent work items over it.

- :func:`cluster` connects to a Dask scheduler (an address, or ``DASK_SCHEDULER_ADDRESS``)
  or starts a quiet local cluster on this machine;
- :func:`map_ordered` maps a function over independent items and returns the results in
  order: a plain loop without a client, the cluster's workers with one;
- :func:`traincore.chunks.run_chunks` (next door) runs a grid of members in chunks into a
  :class:`~traincore.results.ResultTable`; a rerun computes only the members with no row.

Dask is imported only when a cluster is used, so ``import traincore`` stays fast.

Notes
-----
A worker process that dies while running a task (killed, out of memory) makes the scheduler
rerun the task on another worker, up to ``distributed.scheduler.allowed-failures`` times
(Dask's default 3); the results of a task are taken once, by this process, so no row is
written twice. Functions sent to a local cluster's worker processes must be importable or
picklable by cloudpickle, and a script that starts a local cluster needs the usual
``if __name__ == "__main__":`` guard (workers are spawned and import the main module).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client, Future

__all__ = ["SCHEDULER_ENV", "INSTALL_HINT", "WorkerLostError", "resolve_scheduler", "cluster",
           "map_ordered"]

#: Dask's own environment variable for the scheduler address (its ``scheduler-address`` key).
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"

#: What to run when Dask distributed is missing from the environment.
INSTALL_HINT = "pip install 'dask[distributed]'"

_SCHEMES = ("tcp", "tls", "ws", "wss")
_ADDRESS = re.compile(r"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?"
                      r"(?P<host>\[[^\]\s]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})")

T = TypeVar("T")
R = TypeVar("R")


class WorkerLostError(RuntimeError):
    """A task killed more workers than the scheduler allows; its results were not kept."""


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ModuleNotFoundError(f"Running on a Dask cluster needs Dask distributed, which is "
                                  f"not installed: {INSTALL_HINT}") from None
    return distributed


# -- connecting --------------------------------------------------------------------------
def resolve_scheduler(scheduler: str | None = None) -> str | None:
    """The scheduler address asked for, checked; None when none is asked for.

    Parameters
    ----------
    scheduler : str, optional
        An address such as ``tcp://10.0.0.5:8786`` (``host:port`` means ``tcp://``). When
        None, the environment variable ``DASK_SCHEDULER_ADDRESS`` or Dask's configuration
        key ``scheduler-address`` is used, if set.

    Returns
    -------
    str or None
        The address with its scheme, or None for "run on this machine".

    Raises
    ------
    ValueError
        The address is malformed (no port, unknown scheme, ...).

    Examples
    --------
    >>> resolve_scheduler("127.0.0.1:8786")
    'tcp://127.0.0.1:8786'
    """
    source = ""
    if scheduler is None:
        scheduler = os.environ.get(SCHEDULER_ENV) or None
        source = f" (from the environment variable {SCHEDULER_ENV})"
        if scheduler is None:
            scheduler = _configured_address()
            source = " (from Dask's configuration key scheduler-address)"
            if scheduler is None:
                return None
    if not isinstance(scheduler, str):
        raise TypeError(f"The 'scheduler' address must be a string such as "
                        f"tcp://10.0.0.5:8786; got {type(scheduler).__name__}.")
    match = _ADDRESS.fullmatch(scheduler.strip())
    scheme = (match.group("scheme") or "tcp").lower() if match else ""
    if match is None or scheme not in _SCHEMES or not 0 < int(match.group("port")) < 65536:
        raise ValueError(f"The scheduler address must look like tcp://HOST:PORT (the address "
                         f"`dask scheduler` prints, e.g. tcp://10.0.0.5:8786); got "
                         f"{scheduler!r}{source}.")
    return f"{scheme}://{match.group('host')}:{int(match.group('port'))}"


def _configured_address() -> str | None:
    """``scheduler-address`` from Dask's YAML configuration files, if there are any."""
    if "dask.config" not in sys.modules:
        places = [os.environ.get("DASK_CONFIG", ""),
                  os.environ.get("DASK_ROOT_CONFIG", "/etc/dask"),
                  os.path.join(sys.prefix, "etc", "dask"),
                  os.path.join(os.path.expanduser("~"), ".config", "dask")]
        if not any(p and os.path.isdir(p) for p in places):
            return None  # no configuration files: importing dask (0.5 s or more) finds nothing
    try:
        import dask.config
    except ImportError:
        return None
    return dask.config.get("scheduler-address", None) or None


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _local_cluster(n_workers: int | None, processes: bool) -> Iterator[Client]:
    distributed = _distributed()
    n = _cpu_count() if n_workers is None else n_workers
    # one single-threaded worker per core: training and linear algebra in a task use one
    # thread each (Dask's nanny also sets OMP_NUM_THREADS=1 in worker processes)
    # worker processes talk over the loopback interface only; in-process workers use Dask's
    # in-memory transport, which takes no host
    where = {"host": "127.0.0.1"} if processes else {}
    import dask.config

    # no dashboard, so none of what feeds it: the workers' statistical profiler samples the
    # task thread's stack every 10 ms (and the GIL monitor every 1 ms), which costs a task of
    # many small torch calls several percent
    quiet = {"distributed.worker.profile.enabled": False,
             "distributed.admin.system-monitor.gil.enabled": False}
    try:
        with dask.config.set(quiet):
            local = distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=processes, **where,
                dashboard_address=None,         # no dashboard, so no clash on port 8787 ...
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},  # at all
                silence_logs=logging.ERROR,     # worker restarts are handled: not the user's news
            )
    except RuntimeError as exc:
        raise RuntimeError(f"A local Dask cluster could not start ({' '.join(str(exc).split())});"
                           " a script that starts one needs `if __name__ == \"__main__\":`, "
                           "since worker processes import the script.") from exc
    try:
        with distributed.Client(local, set_as_default=False) as client:
            yield client
    finally:
        local.close()


@contextlib.contextmanager
def _remote(address: str, timeout: float) -> Iterator[Client]:
    distributed = _distributed()
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except OSError:  # Dask retries a refused connection until the timeout, then says so
        raise ConnectionError(f"Cannot reach the Dask scheduler at {address} within "
                              f"{timeout:g} s; start one there with `dask scheduler` (or check "
                              "the host, port and firewall), or give no address to run on "
                              "this machine.") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (TimeoutError, OSError):
            raise ConnectionError(f"The Dask scheduler at {address} has no workers after "
                                  f"{timeout:g} s; start some with `dask worker {address}`.") \
                from None
        yield client


@overload
def cluster(scheduler: str | None = None, *, n_workers: int | None = None,
            processes: bool = True, local: Literal[True] = True,
            timeout: float = 10.0) -> contextlib.AbstractContextManager[Client]: ...


@overload
def cluster(scheduler: str | None = None, *, n_workers: int | None = None,
            processes: bool = True, local: bool = True,
            timeout: float = 10.0) -> contextlib.AbstractContextManager[Client | None]: ...


def cluster(scheduler: str | None = None, *, n_workers: int | None = None,
            processes: bool = True, local: bool = True,
            timeout: float = 10.0) -> contextlib.AbstractContextManager[Client | None]:
    """A Dask client for the duration of a ``with`` block; the cluster is closed after.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``). When None, the environment
        variable ``DASK_SCHEDULER_ADDRESS`` (or Dask's ``scheduler-address`` setting) is used;
        when that is unset too, see ``local``.
    n_workers : int, optional
        Local cluster only: the number of workers, each with one thread (default: one per
        CPU core this process may use).
    processes : bool
        Local cluster only: workers in their own processes (True, default: safe for code
        holding the GIL, and a crashing worker cannot take the caller down) or threads of
        this process (False: starts faster, shares memory).
    local : bool
        With no address: start a local cluster (True, default) or yield None (False), which
        makes :func:`map_ordered` and :func:`run_chunks` run in this process without Dask.
    timeout : float
        Seconds to wait for a remote scheduler to answer and to have a worker.

    Yields
    ------
    distributed.Client or None

    Raises
    ------
    ValueError
        Malformed address.
    ConnectionError
        The scheduler cannot be reached, or has no worker, within ``timeout`` seconds.
    ModuleNotFoundError
        Dask distributed is not installed (``pip install 'dask[distributed]'``).

    Examples
    --------
    >>> with cluster(local=False) as client:   # no address anywhere: run here, no Dask
    ...     map_ordered(abs, [-1, 2, -3], client=client)
    [1, 2, 3]
    """
    if n_workers is not None:
        _check_int(n_workers, "n_workers", minimum=1)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"The 'timeout' must be a number of seconds; got "
                        f"{type(timeout).__name__}.")
    if not timeout > 0:
        raise ValueError(f"The 'timeout' must be a positive number of seconds; got {timeout!r}.")
    address = resolve_scheduler(scheduler)
    if address is not None:
        return _remote(address, float(timeout))
    if not local:
        return contextlib.nullcontext(None)
    return _local_cluster(n_workers, bool(processes))


# -- running -----------------------------------------------------------------------------
def _progress_bar(total: int, initial: int, show: bool | None, desc: str) -> Any:
    from tqdm.auto import tqdm

    enabled = sys.stderr.isatty() if show is None else bool(show)
    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, leave=False)


def _submit(client: Client, fn: Callable[[Any], Any], args: Sequence[Any],
            retries: int) -> list[Future]:
    # unique keys: two runs (or two identical chunks) never share a result by accident
    token = uuid.uuid4().hex[:12]
    name = getattr(fn, "__name__", type(fn).__name__)
    return [client.submit(fn, arg, key=f"{name}-{token}-{i}", pure=False, retries=retries)
            for i, arg in enumerate(args)]


def _as_completed(client: Client, futures: list[Future]) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, result)`` as tasks finish; on any error cancel the rest and raise."""
    distributed = _distributed()
    index = {f.key: i for i, f in enumerate(futures)}
    try:
        for future in distributed.as_completed(futures, loop=client.loop):
            try:
                result = future.result()
            except distributed.KilledWorker as exc:
                raise WorkerLostError(
                    f"Task {index[future.key]} killed {exc.allowed_failures + 1} workers in turn "
                    f"(more than distributed.scheduler.allowed-failures allows); it probably "
                    f"runs out of memory: give it less work or its workers more memory.") \
                    from None
            future.release()  # the result is ours now: free the worker's copy
            yield index[future.key], result
    finally:
        # an error, Ctrl-C or a consumer that stopped early: the rest is not wanted
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)


def _results(fn: Callable[[Any], Any], args: Sequence[Any], client: Client | None,
             retries: int) -> Generator[tuple[int, Any], None, None]:
    """``(i, fn(args[i]))`` in this process in order, or on the cluster as tasks finish.

    Close it (``contextlib.closing``) when stopping early: that cancels the queued tasks.
    """
    if client is None:
        for i, arg in enumerate(args):
            yield i, fn(arg)
    else:
        yield from _as_completed(client, _submit(client, fn, args, retries))


def _check_callable(fn: object, what: str) -> None:
    if not callable(fn):
        raise TypeError(f"The {what} must be callable; got {type(fn).__name__}.")


def _check_int(value: object, name: str, minimum: int) -> int:
    """``value`` if it is an integer of at least ``minimum``; else a one-line error."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"The '{name}' must be an integer; got {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"The '{name}' must be an integer of at least {minimum}; "
                         f"got {value!r}.")
    return value


def map_ordered(fn: Callable[[T], R], items: Iterable[T], *, client: Client | None = None,
                retries: int = 0, show_progress: bool | None = None, desc: str = "items",
                progress: Callable[[int, int], None] | None = None) -> list[R]:
    """``[fn(item) for item in items]``, on a cluster's workers when ``client`` is given.

    Parameters
    ----------
    fn : callable
        Applied to each item; must be picklable for a cluster (a module-level function or a
        :func:`functools.partial` of one). Should be deterministic: then the results are
        the same with and without a client.
    items : iterable
        Independent work items (each is sent to a worker on its own).
    client : distributed.Client, optional
        None: a plain loop in this process, no Dask needed.
    retries : int
        Cluster only: times a task that raised is run again before its error is raised
        (a worker that dies is handled by the scheduler, whatever this says).
    show_progress : bool, optional
        A tqdm bar over items on stderr; None: only when stderr is a terminal.
    desc : str
        The bar's label.
    progress : callable, optional
        ``progress(done, total)`` after each item, for callers that show progress their way.

    Returns
    -------
    list
        ``fn(item)`` for each item, in the order of ``items``.

    Raises
    ------
    Exception
        The first error raised by ``fn`` (the remaining tasks are cancelled).
    WorkerLostError
        A task killed its workers ``allowed-failures + 1`` times.

    Examples
    --------
    >>> map_ordered(len, ["a", "bb", "ccc"])
    [1, 2, 3]
    """
    _check_callable(fn, "function 'fn'")
    retries = _check_int(retries, "retries", minimum=0)
    items = list(items)
    results: list[Any] = [None] * len(items)
    done = 0
    bar = _progress_bar(len(items), 0, show_progress, desc)
    try:
        with contextlib.closing(_results(fn, items, client, retries)) as finished:
            for i, result in finished:
                results[i] = result
                done += 1
                bar.update(1)
                if progress is not None:
                    progress(done, len(items))
    finally:
        bar.close()
    return results
