"""Scale-out: connecting, ordered maps and chunked grids, without Dask and on a real cluster.

The cluster tests share one LocalCluster with 2 worker processes (starting it takes a few
seconds on a busy 2-core machine, hence the ``slow`` mark). Their task functions go to the
workers by value (:class:`ByValue`): Dask sends an importable function by reference, and a
worker importing this test module would import pytest and torch first, for seconds.
"""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import socket
import sys
import time

import numpy as np
import pytest

from traincore import (
    SCHEDULER_ENV,
    ResultTable,
    WorkerLostError,
    cluster,
    map_ordered,
    resolve_scheduler,
    run_chunks,
)

GRID = [{"seed": s, "lam": lam} for lam in (0.001, 0.01) for s in range(5)]


# -- task functions (run on workers) ---------------------------------------------------------
def fake_train(chunk, log=None, tag="", die_marker=None, die_seed=None):
    """A stand-in for a batched training: one row per member, deterministic in its settings.

    Each call appends ``tag key`` lines to ``log`` (to count who computed what); with
    ``die_marker``, the worker running the chunk holding ``die_seed`` kills itself with
    SIGKILL on the first attempt, as the kernel's out-of-memory killer would.
    """
    if die_marker is not None and any(m["seed"] == die_seed for m in chunk):
        try:
            os.close(os.open(die_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass  # the rerun: compute normally
        else:
            os.kill(os.getpid(), signal.SIGKILL)
    if log is not None:
        with open(log, "a") as fh:
            fh.write("".join(f"{tag} {m['seed']} {m['lam']}\n" for m in chunk))
    rng = np.random.default_rng([m["seed"] for m in chunk])
    time.sleep(0.02)  # long enough for chunks to overlap on the two workers
    return [{"loss": float(m["lam"] * (m["seed"] + 1)), "batch": len(chunk),
             "noise": float(np.round(rng.normal(), 12))} for m in chunk]


def exact_and_float(seed):
    """Rank of an integer matrix mod a prime (exact) and a float reduction of it."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, size=(12, 9)).astype(np.int64)
    a[:, 8] = a[:, 0] + a[:, 1]  # a dependent column: rank 8
    p, m, rank = 10007, a % 10007, 0
    for col in range(m.shape[1]):
        pivot = next((r for r in range(rank, m.shape[0]) if m[r, col]), None)
        if pivot is None:
            continue
        m[[rank, pivot]] = m[[pivot, rank]]
        m[rank] = m[rank] * pow(int(m[rank, col]), -1, p) % p
        for r in range(m.shape[0]):
            if r != rank and m[r, col]:
                m[r] = (m[r] - m[r, col] * m[rank]) % p
        rank += 1
    return rank, float(np.sqrt((a.astype(np.float64) ** 2).sum(axis=0)).sum())


def logged(path, tag=""):
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [tuple(ln.split()[1:]) for ln in fh.read().splitlines() if ln.split()[0] == tag]


class ByValue:
    """A function of this module sent to workers by value (cloudpickle), not by import."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __reduce__(self):
        import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        try:
            return cloudpickle.loads, (cloudpickle.dumps(self.fn),)
        finally:
            cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


class DriverCrash(Exception):
    pass


def crash_after_first_chunk(done, total):
    raise DriverCrash(f"driver died after {done} of {total}")


# -- connecting ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address", ["foo", "tcp://127.0.0.1", "xyz://h:1", "tcp://h:99999",
                                     "tcp://h:port", "tcp:/h:1", ""])
def test_malformed_address_is_one_clear_line(address):
    with pytest.raises(ValueError, match=r"^The scheduler address must look like tcp://HOST:PORT"
                                         r" .*; got '.*'\.$") as info:
        cluster(address)
    assert "\n" not in str(info.value)


def test_address_forms():
    assert resolve_scheduler("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    assert resolve_scheduler("localhost:8786") == "tcp://localhost:8786"
    assert resolve_scheduler("tls://[::1]:8786") == "tls://[::1]:8786"
    with pytest.raises(TypeError, match="must be a string"):
        resolve_scheduler(8786)
    with pytest.raises(ValueError, match="'n_workers' must be an integer of at least 1; got 0"):
        cluster(n_workers=0)
    with pytest.raises(TypeError, match="'n_workers' must be an integer; got str"):
        cluster(n_workers="2")
    with pytest.raises(ValueError, match="'timeout' must be a positive number"):
        cluster("tcp://127.0.0.1:1", timeout=0)
    with pytest.raises(ValueError, match="'retries' must be an integer of at least 0; got -1"):
        map_ordered(abs, [1], retries=-1)


def test_environment_variable_is_dask_s(monkeypatch):
    monkeypatch.setenv(SCHEDULER_ENV, "tcp://127.0.0.1:8786")
    assert resolve_scheduler() == "tcp://127.0.0.1:8786"
    assert resolve_scheduler("tcp://10.1.1.1:1") == "tcp://10.1.1.1:1"  # the argument wins
    monkeypatch.setenv(SCHEDULER_ENV, "nonsense")
    with pytest.raises(ValueError, match=f"got 'nonsense' \\(from the environment variable "
                                         f"{SCHEDULER_ENV}\\)"):
        cluster()
    monkeypatch.delenv(SCHEDULER_ENV)
    assert resolve_scheduler() is None
    with cluster(local=False) as client:
        assert client is None


def test_dask_configuration_is_read_only_when_there_is_one(monkeypatch, tmp_path):
    import dask

    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    with dask.config.set({"scheduler-address": "tcp://10.9.9.9:8786"}):
        assert resolve_scheduler() == "tcp://10.9.9.9:8786"
    # no configuration files anywhere: dask is not even imported (it takes 0.5 s or more)
    for name in ("DASK_CONFIG", "DASK_ROOT_CONFIG"):
        monkeypatch.setenv(name, str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delitem(sys.modules, "dask.config")
    assert resolve_scheduler() is None
    assert "dask.config" not in sys.modules


def test_unreachable_scheduler_fails_fast():
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match=rf"^Cannot reach the Dask scheduler at "
                                              rf"{address} within 0.5 s; start one"):
        with cluster(address, timeout=0.5):
            pass
    assert time.perf_counter() - start < 10


def test_missing_dask_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(ModuleNotFoundError, match=r"needs Dask distributed.*"
                                                  r"pip install 'dask\[distributed\]'"):
        with cluster("tcp://127.0.0.1:8786"):
            pass
    # without a client nothing needs Dask (run_chunks: see the resume test)
    assert map_ordered(abs, [-1, 2]) == [1, 2]


# -- without Dask ------------------------------------------------------------------------------
def test_run_chunks_plans_chunks_by_group_and_size(tmp_path):
    seen = []

    def record(chunk):
        seen.append([(m["seed"], m["lam"]) for m in chunk])
        return fake_train(chunk)

    table = ResultTable(tmp_path / "r.jsonl", ["seed", "lam"])
    rows = run_chunks(GRID, record, table, chunk_size=3, group_by=["lam"])
    assert seen == [[(0, 0.001), (1, 0.001), (2, 0.001)], [(3, 0.001), (4, 0.001)],
                    [(0, 0.01), (1, 0.01), (2, 0.01)], [(3, 0.01), (4, 0.01)]]
    assert [(r["seed"], r["lam"]) for r in rows] == [(m["seed"], m["lam"]) for m in GRID]
    assert rows[0] == {"seed": 0, "lam": 0.001, "loss": 0.001, "batch": 3,
                       "noise": rows[0]["noise"]}
    assert table.rows() == rows


def test_run_chunks_resumes_only_the_missing_members(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # the local path needs no Dask
    log = tmp_path / "calls.log"
    table = ResultTable(tmp_path / "r.jsonl", ["seed", "lam"])
    with pytest.raises(DriverCrash):
        run_chunks(GRID, functools.partial(fake_train, log=log, tag="one"), table,
                   chunk_size=4, progress=crash_after_first_chunk)
    assert len(table) == 4  # the finished chunk is kept
    # the driver died while writing the next chunk: a torn line the next open cuts off
    with open(table.path, "a") as fh:
        fh.write('{"seed": 4, "lam": 0.0')
    table = ResultTable(table.path, ["seed", "lam"])
    ticks = []
    rows = run_chunks(GRID, functools.partial(fake_train, log=log, tag="two"), table,
                      chunk_size=4, progress=lambda d, t: ticks.append((d, t)))
    assert logged(log, "two") == [(str(m["seed"]), str(m["lam"])) for m in GRID[4:]]
    assert ticks == [(8, 10), (10, 10)]  # chunks rebuilt from the 6 missing members
    assert len(rows) == len(GRID) == len(table.path.read_text().splitlines())
    assert run_chunks(GRID, functools.partial(fake_train, log=log, tag="three"), table) == rows
    assert logged(log, "three") == []  # nothing left to do


def test_run_chunks_checks_what_the_function_returns(tmp_path):
    table = ResultTable(tmp_path / "r.jsonl", ["seed", "lam"])
    with pytest.raises(ValueError, match="returned 1 rows for a chunk of 2 members"):
        run_chunks(GRID[:2], lambda chunk: [{"loss": 0.0}], table, chunk_size=2)
    with pytest.raises(ValueError, match=r"Row 0 of a chunk has seed=1 but its member has "
                                         r"seed=0"):
        run_chunks(GRID[:2], lambda chunk: [{"seed": 1}, {"seed": 0}], table, chunk_size=2)
    with pytest.raises(TypeError, match="must return a list of row dicts"):
        run_chunks(GRID[:1], lambda chunk: {"loss": 0.0}, table)
    assert len(table) == 0
    with pytest.raises(ValueError, match=r"Members 0 and 1 have the same key"):
        run_chunks([GRID[0], dict(GRID[0])], fake_train, table)
    with pytest.raises(ValueError, match=r"key fields \['seed', 'lam'\]; \['lam'\] missing"):
        run_chunks([{"seed": 0}], fake_train, table)
    with pytest.raises(ValueError, match="'chunk_size' must be an integer of at least 1; got 0"):
        run_chunks(GRID, fake_train, table, chunk_size=0)
    with pytest.raises(ValueError, match=r"lacks the 'group_by' fields \['task'\]"):
        run_chunks(GRID, fake_train, table, group_by=["task"])
    with pytest.raises(TypeError, match="'table' must be a traincore.ResultTable"):
        run_chunks(GRID, fake_train, str(tmp_path / "r.jsonl"))
    with pytest.raises(TypeError, match="chunk function 'fn' must be callable"):
        run_chunks(GRID, None, table)


def test_progress_bar_on_request(tmp_path, capsys):
    table = ResultTable(tmp_path / "r.jsonl", ["seed", "lam"])
    run_chunks(GRID, fake_train, table, chunk_size=5, show_progress=True, desc="sweep")
    assert "sweep" in capsys.readouterr().err
    map_ordered(abs, [1, 2], desc="blocks")  # stderr is no terminal here: quiet
    assert capsys.readouterr().err == ""


def test_in_process_cluster_runs_chunks_on_threads(tmp_path):
    # processes=False: Dask's in-memory transport (a host would break it), workers as threads
    with cluster(n_workers=2, processes=False) as threads:
        assert threads.scheduler.address.startswith("inproc://")
        assert len(threads.scheduler_info()["workers"]) == 2
        table = ResultTable(tmp_path / "r.jsonl", ["seed", "lam"])
        rows = run_chunks(GRID, fake_train, table, client=threads, chunk_size=3)
    assert rows == run_chunks(GRID, fake_train, ResultTable(tmp_path / "a.jsonl",
                                                            ["seed", "lam"]), chunk_size=3)


# -- on a real cluster: 2 worker processes -------------------------------------------------
@pytest.fixture(scope="module")
def client():
    with cluster(n_workers=2, processes=True) as dask_client:
        yield dask_client


def _profiling() -> tuple[bool, bool]:
    import dask.config

    return (dask.config.get("distributed.worker.profile.enabled"),
            dask.config.get("distributed.admin.system-monitor.gil.enabled"))


@pytest.mark.slow
def test_cluster_rows_equal_a_local_run(tmp_path, client):
    assert len(client.scheduler_info()["workers"]) == 2
    # no dashboard: the workers do not profile their tasks for one
    assert set(client.run(_profiling).values()) == {(False, False)}
    local = run_chunks(GRID, fake_train, ResultTable(tmp_path / "a.jsonl", ["seed", "lam"]),
                       chunk_size=3, group_by=["lam"])
    table = ResultTable(tmp_path / "b.jsonl", ["seed", "lam"])
    remote = run_chunks(GRID, ByValue(fake_train), table, client=client, chunk_size=3,
                        group_by=["lam"])
    assert remote == local
    assert sorted(table.path.read_text().splitlines()) == \
        sorted((tmp_path / "a.jsonl").read_text().splitlines())


@pytest.mark.slow
def test_cluster_rerun_skips_finished_members(tmp_path, client):
    log = tmp_path / "calls.log"
    table = ResultTable(tmp_path / "r.jsonl", ["seed", "lam"])
    with pytest.raises(DriverCrash):  # the other chunks are cancelled
        run_chunks(GRID, ByValue(functools.partial(fake_train, log=log, tag="one")), table,
                   client=client, chunk_size=2, progress=crash_after_first_chunk)
    kept = {(r["seed"], r["lam"]) for r in table.rows()}
    assert len(kept) == 2
    run_chunks(GRID, ByValue(functools.partial(fake_train, log=log, tag="two")), table,
               client=client, chunk_size=2)
    again = sorted(logged(log, "two"))
    assert again == sorted((str(m["seed"]), str(m["lam"])) for m in GRID
                           if (m["seed"], m["lam"]) not in kept)
    assert len(table.path.read_text().splitlines()) == len(table) == len(GRID)


@pytest.mark.slow
def test_worker_killed_mid_chunk_loses_and_duplicates_no_row(tmp_path, client):
    marker = tmp_path / "died"
    table = ResultTable(tmp_path / "r.jsonl", ["seed", "lam"])
    fn = ByValue(functools.partial(fake_train, die_marker=str(marker), die_seed=3))
    rows = run_chunks(GRID, fn, table, client=client, chunk_size=2)
    assert marker.exists()  # a worker process really died running a chunk
    expected = run_chunks(GRID, fake_train, ResultTable(tmp_path / "e.jsonl", ["seed", "lam"]),
                          chunk_size=2)
    assert rows == expected
    keys = [(r["seed"], r["lam"]) for r in map(json.loads, table.path.read_text().splitlines())]
    assert sorted(keys) == sorted((m["seed"], m["lam"]) for m in GRID)  # each exactly once


@pytest.mark.slow
def test_map_ordered_is_the_same_on_the_cluster(client):
    local = map_ordered(exact_and_float, range(8))
    assert [r[0] for r in local] == [8] * 8
    ticks = []
    assert map_ordered(ByValue(exact_and_float), range(8), client=client,
                       progress=lambda d, t: ticks.append(d)) == local
    assert ticks == list(range(1, 9))


def importable(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.mark.slow
def test_workers_find_the_project_packages(client):
    names = ["traincore", "aipoincare", "bimt", "no_such_package_here"]
    assert map_ordered(ByValue(importable), names, client=client) == [True, True, True, False]


@pytest.mark.slow
def test_errors_on_the_cluster_come_back(client):
    with pytest.raises(ValueError, match="math domain error"):
        map_ordered(math.sqrt, [4.0, -1.0, 9.0], client=client)


@pytest.mark.slow
def test_connect_by_environment_variable(client, monkeypatch):
    monkeypatch.setenv(SCHEDULER_ENV, client.scheduler.address)
    with cluster(timeout=5) as remote:
        assert remote.scheduler.address == client.scheduler.address
        assert map_ordered(ByValue(exact_and_float), [0, 1], client=remote) == \
            map_ordered(exact_and_float, [0, 1])


@pytest.mark.slow
def test_scheduler_without_workers_is_named(client):
    import distributed

    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None,
                                  scheduler_kwargs={"dashboard": False,
                                                    "dashboard_address": "127.0.0.1:0"},
                                  scheduler_port=free_port()) as empty:
        address = empty.scheduler_address
        with pytest.raises(ConnectionError, match=rf"^The Dask scheduler at {address} has no "
                                                  rf"workers after 0.5 s; start some with "
                                                  rf"`dask worker {address}`\.$"):
            with cluster(address, timeout=0.5):
                pass



def flaky_then_fine(x, marker):
    """Raises on its first call (any process), then returns ``x`` doubled."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return 2 * x
    raise RuntimeError("a passing failure")


def always_dies(chunk):
    if any(m["seed"] == 1 for m in chunk):
        os.kill(os.getpid(), signal.SIGKILL)
    return fake_train(chunk)


@pytest.mark.slow
def test_retries_rerun_a_task_that_raised(tmp_path, client):
    fn = ByValue(functools.partial(flaky_then_fine, marker=str(tmp_path / "once")))
    assert map_ordered(fn, [5], client=client, retries=1) == [10]
    with pytest.raises(RuntimeError, match="a passing failure"):
        map_ordered(ByValue(functools.partial(flaky_then_fine, marker=str(tmp_path / "b"))),
                    [5], client=client)


@pytest.mark.slow
def test_a_chunk_that_kills_every_worker_is_given_up(tmp_path, client):
    scheduler = client.cluster.scheduler  # the local cluster's scheduler lives in this process
    allowed, scheduler.allowed_failures = scheduler.allowed_failures, 0  # give up at once
    table = ResultTable(tmp_path / "r.jsonl", ["seed", "lam"])
    try:
        with pytest.raises(WorkerLostError, match=r"^Task \d+ killed 1 workers in turn .* "
                                                  r"give it less work"):
            run_chunks(GRID[:4], ByValue(always_dies), table, client=client)
    finally:
        scheduler.allowed_failures = allowed
    keys = [(r["seed"], r["lam"]) for r in table.rows()]
    assert (1, 0.001) not in keys and len(keys) == len(set(keys)) == len(table)
