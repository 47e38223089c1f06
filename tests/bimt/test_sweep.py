"""bimt.sweep and `bimt sweep`: rows equal separate runs, locally and on a Dask cluster."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

import bimt
import traincore
from bimt.cli import main
from bimt.sweeps import KEY_FIELDS, load_sweep, parse_lams, parse_seeds, sweep_frame

STEPS = 300


def _separate(seed: int, lam: float, steps: int = STEPS) -> tuple[bimt.BioMLP, object]:
    task = bimt.get_task("independence")
    d = task.make(seed)
    model = bimt.build_model(task, seed).double()
    hist = bimt.train(model, d.x_train.double(), d.y_train.double(), steps=steps, seed=seed,
                      x_test=d.x_test.double(), y_test=d.y_test.double(), lam=lam,
                      progress=False, snapshot_every=0)
    return model, hist


def _assert_row_is_run(row: dict, seed: int, lam: float) -> None:
    model, hist = _separate(seed, lam)
    analysis = bimt.analyse(model, 0.05)
    assert (row["seed"], row["lam"], row["steps"], row["task"]) == (seed, lam, STEPS,
                                                                     "independence")
    assert row["test_loss"] == pytest.approx(hist.test_loss, rel=1e-6)
    assert row["connection_cost"] == pytest.approx(hist.connection_cost, rel=1e-6)
    assert row["swaps"] == hist.swaps
    assert row["modularity"] == pytest.approx(analysis.modularity, rel=1e-6)
    assert row["modules"] == [m.to_dict() for m in analysis.modules]
    assert row["active_neurons"] == analysis.active_neurons


def test_sweep_rows_equal_separate_runs():
    rows = bimt.sweep("independence", seeds=[0, 1], lam=[1e-3, 1e-2], steps=STEPS,
                      dtype="float64", chunk=3)
    assert [(r["seed"], r["lam"]) for r in rows] == [(0, 1e-3), (1, 1e-3), (0, 1e-2),
                                                      (1, 1e-2)]
    assert [r["chunk_members"] for r in rows] == [3, 3, 3, 1]  # chunks of 3 and 1
    for row in rows[1:3]:  # one member of each chunk against its own run
        _assert_row_is_run(row, row["seed"], row["lam"])


def test_out_dir_streams_rows_and_rerun_skips(tmp_path):
    calls = []
    rows = bimt.sweep("independence", seeds=range(2), lam=1e-3, steps=40, out=tmp_path,
                      chunk=1, on_chunk=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)]  # rows written chunk by chunk
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(x)["seed"] for x in lines] == [0, 1]
    assert load_sweep(tmp_path) == rows
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 3 and csv_lines[0].startswith(",".join(KEY_FIELDS))
    calls.clear()
    again = bimt.sweep("independence", seeds=range(3), lam=1e-3, steps=40, out=tmp_path,
                       chunk=1, on_chunk=lambda done, total: calls.append((done, total)))
    assert calls == [(3, 3)]  # only seed 2 was trained
    assert again[:2] == rows
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 3
    pd = pytest.importorskip("pandas")
    frame = sweep_frame(again)
    assert isinstance(frame, pd.DataFrame) and list(frame["seed"]) == [0, 1, 2]


def test_locked_out_dir_is_refused(tmp_path):
    with traincore.lock_directory(tmp_path):
        with pytest.raises(OSError, match="sweep directory"):
            bimt.sweep("independence", seeds=[0], steps=5, out=tmp_path)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"seeds": [-1]}, ValueError, "seeds"),
    ({"seeds": [1, 1]}, ValueError, "distinct"),
    ({"seeds": "0:3"}, TypeError, "seeds"),
    ({"lam": "1e-3"}, TypeError, "lam"),
    ({"lam": [-1.0]}, ValueError, "lam"),
    ({"steps": 0}, ValueError, "steps"),
    ({"chunk": 0}, ValueError, "chunk"),
    ({"dtype": "float16"}, ValueError, "dtype"),
    ({"swap_evry": 3}, TypeError, "unknown setting"),
    ({"lam_phases": (0.5,)}, ValueError, "lam_phases"),
    ({"batch_size": 8}, TypeError, "set by the sweep"),
])
def test_bad_api_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        bimt.sweep("independence", **{"seeds": [0], "steps": 5, **kwargs})


def test_bad_task():
    with pytest.raises(ValueError, match="Unknown task"):
        bimt.sweep("nosuch", seeds=[0])
    with pytest.raises(ValueError, match="embeds tokens"):
        bimt.sweep("modular-addition", seeds=[0])


def test_parsers():
    assert parse_seeds("3:6") == range(3, 6)
    assert parse_lams("0,1e-3") == [0.0, 1e-3]
    for bad in ("6:3", "3:3", "-1:2", "a:b", "4", "1:2:3", ""):
        with pytest.raises(ValueError, match="A:B"):
            parse_seeds(bad)
    for bad in ("", "1e-3,", "x", "-1", "nan", "inf"):
        with pytest.raises(ValueError, match="comma-separated"):
            parse_lams(bad)


@pytest.mark.parametrize("args, match", [
    (["--seeds", "5:3"], "seeds must be a range"),
    (["--seeds", "0:2", "--lam", "1e-3,abc"], "lambdas"),
    (["--seeds", "0:2", "--steps", "0"], "--steps"),
    (["--seeds", "0:2", "--scheduler", "http://x"], "scheduler address"),
])
def test_cli_bad_input_exits_2_writes_nothing(tmp_path, capsys, args, match):
    out = tmp_path / "out"
    assert main(["sweep", "independence", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and match in err[0]
    assert not out.exists()


def test_cli_unknown_task_and_missing_out(tmp_path, capsys):
    assert main(["sweep", "nosuch", "--seeds", "0:2", "--out", str(tmp_path / "o")]) == 2
    assert "Unknown task" in capsys.readouterr().err
    assert main(["sweep", "independence", "--seeds", "0:2"]) == 2
    assert "--out" in capsys.readouterr().err


def test_cli_writes_table_picture_and_skips_on_rerun(tmp_path, capsys):
    args = ["sweep", "independence", "--seeds", "0:2", "--lam", "1e-3,1e-2", "--steps", "30",
            "--out", str(tmp_path), "--workers", "0"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "4/4 networks done" in out and "median test loss" in out
    assert {p.name for p in tmp_path.iterdir()} >= {"results.jsonl", "results.csv",
                                                    "phase_diagram.png"}
    before = (tmp_path / "results.jsonl").read_text()
    assert main(args) == 0
    assert "networks done" not in capsys.readouterr().out  # nothing left to train
    assert (tmp_path / "results.jsonl").read_text() == before


def test_cli_in_process_workers(tmp_path, capsys):
    args = ["sweep", "independence", "--seeds", "0:4", "--steps", "20", "--out",
            str(tmp_path), "--workers", "2", "--in-process"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "a local cluster of 2 threads" in out and "4/4 networks done" in out
    assert [r["chunk_members"] for r in load_sweep(tmp_path)] == [2] * 4


def test_plot_sweep(tmp_path):
    rows = [{"lam": lam, "seed": s, "modularity": 0.1 * s + lam, "test_loss": 1e-3 * (s + 1),
             "task": "t"} for lam in (0.0, 1e-3, 1e-2) for s in range(3)]
    rows.append({"lam": 1e-2, "seed": 9, "modularity": None, "test_loss": None})
    fig = bimt.plot_sweep(rows, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000 and len(fig.axes) == 2
    with pytest.raises(ValueError, match="needs rows"):
        bimt.plot_sweep([], tmp_path / "q.png")
    with pytest.raises(ValueError, match="must end in"):
        bimt.plot_sweep(rows, tmp_path / "q.txt")


def test_saved_pictures_are_written_whole_and_closed(tmp_path):
    """plot_sweep and draw save through one helper: the file in the path's format, written
    atomically (no temporary left), the figure closed; without a path it stays open."""
    import matplotlib.pyplot as plt

    rows = [{"lam": lam, "seed": s, "modularity": 0.1 * s, "test_loss": 1e-3 * (s + 1)}
            for lam in (1e-3, 1e-2) for s in range(2)]
    model = bimt.BioMLP([3, 5, 2], seed=0)
    written = [(bimt.plot_sweep(rows, tmp_path / "s.svg"), "s.svg", b"<?xm"),
               (bimt.draw(model, tmp_path / "n.pdf"), "n.pdf", b"%PDF")]
    for fig, name, magic in written:
        assert (tmp_path / name).read_bytes()[:4] == magic
        assert not plt.fignum_exists(fig.number)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.pdf", "s.svg"]
    kept = [bimt.plot_sweep(rows), bimt.draw(model)]
    assert all(plt.fignum_exists(fig.number) for fig in kept)
    for fig in kept:
        plt.close(fig)


def _same_rows(rows: list[dict], ref: list[dict]) -> None:
    for row, r in zip(rows, ref, strict=True):
        assert {k: v for k, v in row.items() if k != "chunk_seconds"} == \
            {k: v for k, v in r.items() if k != "chunk_seconds"}


def test_in_process_workers_equal_one_process_and_keep_torch_threads():
    before = torch.get_num_threads()
    rows = bimt.sweep("independence", seeds=range(4), lam=[1e-2], steps=60, dtype="float64",
                      workers=2, processes=False)
    assert [r["chunk_members"] for r in rows] == [2] * 4  # split evenly over 2 threads
    assert torch.get_num_threads() == before
    _same_rows(rows, bimt.sweep("independence", seeds=range(4), lam=[1e-2], steps=60,
                                dtype="float64", chunk=2))


def test_default_chunks_split_the_members_over_the_workers():
    from bimt.sweeps import MAX_CHUNK, chunk_size

    class Client:  # what chunk_size reads of a distributed.Client
        def scheduler_info(self):
            return {"workers": {"a": {"nthreads": 2}, "b": {"nthreads": 1}}}

    assert chunk_size(64, Client(), None) == 22  # 3 worker threads
    assert chunk_size(64, None, None) == 64 == MAX_CHUNK
    assert chunk_size(10_000, Client(), None) == MAX_CHUNK
    assert chunk_size(2, Client(), None) == 1
    assert chunk_size(64, Client(), 5) == 5
    with pytest.raises(ValueError, match="chunk"):
        chunk_size(64, None, 0)


# -- a real Dask cluster ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def dask_client():
    pytest.importorskip("distributed")
    with traincore.cluster(n_workers=2) as client:
        yield client


@pytest.mark.slow
def test_cluster_rows_equal_separate_runs(dask_client, tmp_path):
    rows = bimt.sweep("independence", seeds=range(3), lam=[1e-2], steps=STEPS,
                      dtype="float64", chunk=2, client=dask_client, out=tmp_path)
    local = bimt.sweep("independence", seeds=range(3), lam=[1e-2], steps=STEPS,
                       dtype="float64", chunk=2)
    _same_rows(rows, local)
    _assert_row_is_run(rows[2], 2, 1e-2)
    by_default = bimt.sweep("independence", seeds=range(4), lam=[1e-2], steps=20,
                            client=dask_client)
    assert [r["chunk_members"] for r in by_default] == [2] * 4  # one chunk per worker


@pytest.mark.slow
def test_killed_worker_loses_and_duplicates_no_row(dask_client, tmp_path):
    killed = []

    def kill_a_busy_worker(done: int, total: int) -> None:
        if killed:
            return
        busy = [w for w, tasks in dask_client.processing().items() if tasks]
        assert busy, "no chunk in flight to kill"
        pid = dask_client.run(os.getpid, workers=busy[:1])[busy[0]]
        os.kill(pid, signal.SIGKILL)  # the worker process dies mid-chunk
        killed.append(pid)

    seeds = range(6)
    rows = bimt.sweep("independence", seeds=seeds, lam=[1e-3], steps=STEPS, dtype="float64",
                      chunk=1, client=dask_client, out=tmp_path, on_chunk=kill_a_busy_worker)
    assert killed
    lines = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert sorted(r["seed"] for r in lines) == list(seeds)  # each member exactly once
    local = bimt.sweep("independence", seeds=seeds, lam=[1e-3], steps=STEPS,
                       dtype="float64", chunk=1)
    for row, ref in zip(rows, local, strict=True):
        assert row["test_loss"] == pytest.approx(ref["test_loss"], rel=1e-9)
        assert row["modules"] == ref["modules"]


def test_diverged_member_leaves_the_others_alone():
    # lr so large that the member with it diverges; its row says so, the other is normal
    from bimt.config import BIMTConfig
    from bimt.ensemble import Ensemble
    from bimt.ensemble_train import fit_ensemble
    from bimt.sweeps import _row

    task = bimt.get_task("independence")
    data = [task.make(s) for s in (0, 1)]
    stack = [torch.stack([getattr(d, f) for d in data]).double()
             for f in ("x_train", "y_train", "x_test", "y_test")]
    ens = Ensemble([bimt.build_model(task, s).double() for s in (0, 1)],
                   [BIMTConfig(steps=60, swap_every=20, lr=1e300), BIMTConfig(steps=60,
                                                                              swap_every=20)])
    result = fit_ensemble(ens, *stack)
    bad = _row({"seed": 0}, 0, ens, result, 0.05, 1.0, "regression")
    good = _row({"seed": 1}, 1, ens, result, 0.05, 1.0, "regression")
    assert bad["modules"] is None and bad["modularity"] is None
    assert good["modules"] and good["test_loss"] < 10
    d = data[1]
    hist = bimt.train(bimt.build_model(task, 1).double(), d.x_train.double(),
                      d.y_train.double(), steps=60, swap_every=20, x_test=d.x_test.double(),
                      y_test=d.y_test.double(), progress=False, snapshot_every=0)
    assert good["test_loss"] == pytest.approx(hist.test_loss, rel=1e-6)


def test_interrupted_sweep_keeps_finished_chunks(tmp_path):
    def stop_after_first(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bimt.sweep("independence", seeds=range(3), steps=20, out=tmp_path, chunk=1,
                   on_chunk=stop_after_first)
    assert [r["seed"] for r in load_sweep(tmp_path)] == [0]  # the finished chunk's row
    calls = []
    rows = bimt.sweep("independence", seeds=range(3), steps=20, out=tmp_path, chunk=1,
                      on_chunk=lambda done, total: calls.append(done))
    assert calls == [2, 3] and [r["seed"] for r in rows] == [0, 1, 2]
