"""Several systems in one call, the float spectrum only when asked, exact ranks on workers and
on a real Dask cluster (2 worker processes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import aipoincare
from aipoincare.cli import main

EXAMPLES = Path(aipoincare.__file__).resolve().parent / "examples"
LV = str(EXAMPLES / "lotka_volterra_3.toml")
BODY = str(EXAMPLES / "rigid_body.toml")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_several_files_one_batch_one_json_each(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "out"
    code, out, err = run(["discover", LV, BODY, "--json", str(folder), "--no-spectrum"],
                         capsys)
    assert code == 0, err
    assert f"== {LV} ==" in out and f"== {BODY} ==" in out
    docs = {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}
    assert set(docs) == {"lotka_volterra_3", "rigid_body"}
    for stem, path in (("lotka_volterra_3", LV), ("rigid_body", BODY)):
        system = aipoincare.load_system(path)
        assert docs[stem]["nullity"] == system.expected["nullity"]
        assert docs[stem]["independent"] == system.expected["independent"]
        assert docs[stem]["spectrum"] == []  # --no-spectrum: exact counts, no float spectrum


def test_several_files_need_an_output_folder(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "one.json"
    target.write_text("{}")
    code, out, err = run(["discover", LV, BODY, "--json", str(target)], capsys)
    assert code == 2 and "is a file; with several system files give a folder" in err
    assert target.read_text() == "{}"  # nothing half-written


def test_a_bad_file_in_a_batch_fails_before_any_work(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('variables = ["x"]\n[equations]\nx = "x +"\n')
    code, out, err = run(["discover", LV, str(bad), "--json", str(tmp_path / "o")], capsys)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_plot_needs_the_spectrum(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["discover", LV, "--plot", str(tmp_path / "a.png"), "--no-spectrum"],
                       capsys)
    assert code == 2 and "--plot draws the float spectrum" in err


def test_spectrum_only_when_asked(fluid2d, monkeypatch) -> None:
    """Exact counts: the float spectrum is skipped for a large basis unless asked, and the
    counts and invariants are the same either way."""
    off = aipoincare.discover(fluid2d, degree=3, seed=0, device="cpu", progress=False,
                              spectrum_max=100)  # 454 functions: "large"
    assert aipoincare.discover(fluid2d, degree=2, seed=0, device="cpu", progress=False,
                               spectrum_max=100).spectrum.size == 90  # small: computed
    on = aipoincare.discover(fluid2d, degree=3, seed=0, device="cpu", progress=False,
                             spectrum=True)
    assert off.spectrum.size == 0 and on.spectrum.size == off.basis_size == 454
    assert (off.nullity, off.independent) == (on.nullity, on.independent)
    assert [str(i.expr) for i in off.invariants] == [str(i.expr) for i in on.invariants]
    assert off.points == 48 and on.points > off.basis_size
    assert off.timings["numerical"] < on.timings["numerical"]
    # the per-block spectrum still shows the exact nullity below its cut
    assert int((on.spectrum < 1e-8).sum()) == on.nullity


def test_workers_give_the_same_discovery(fluid2d, capsys: pytest.CaptureFixture[str]) -> None:
    one = aipoincare.discover(fluid2d, degree=3, seed=0, device="cpu", progress=False)
    two = aipoincare.discover(fluid2d, degree=3, seed=0, device="cpu", progress=False,
                              workers=2)
    assert [str(i.expr) for i in one.invariants] == [str(i.expr) for i in two.invariants]
    np.testing.assert_array_equal(one.coefficients, two.coefficients)


def test_plan_line_and_block_progress(fluid2d, capsys: pytest.CaptureFixture[str]) -> None:
    d = aipoincare.discover(fluid2d, degree=3, seed=0, device="cpu", progress=True,
                            spectrum=False)
    err = capsys.readouterr().err
    plan = next(n for n in d.notes if n.startswith("Plan:"))
    assert "454 basis functions in" in plan and "estimated memory" in plan
    assert "exact (modular, per block and prime, 1 local worker(s))" in plan
    assert "float spectrum skipped" in plan and plan in err
    assert "aipoincare" in err  # the bar over the stages and the blocks


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    import logging

    local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     host="127.0.0.1", dashboard_address=None,
                                     silence_logs=logging.ERROR)
    try:
        yield local
    finally:
        local.close()


def test_counts_on_a_dask_cluster_equal_local(dask_cluster, fluid2d, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The exact ranks per (block, prime) run on 2 worker processes: same counts and the
    same invariants as here, through the API and the command line."""
    import distributed

    local = aipoincare.discover(fluid2d, degree=3, seed=0, device="cpu", progress=False)
    with distributed.Client(dask_cluster, set_as_default=False) as client:
        remote = aipoincare.discover(fluid2d, degree=3, seed=0, device="cpu",
                                     progress=False, client=client)
        ran = client.run(lambda: 1)  # both worker processes are there
    assert len(ran) == 2
    assert (remote.nullity, remote.independent) == (local.nullity, local.independent)
    assert [str(i.expr) for i in remote.invariants] == [str(i.expr) for i in local.invariants]
    code, _, err = run(["discover", LV, BODY, "--scheduler", dask_cluster.scheduler_address,
                        "--json", str(tmp_path)], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "lotka_volterra_3.json").read_text())
    assert (doc["nullity"], doc["independent"]) == (4, 2)


def test_spectrum_panel_without_a_spectrum(fluid2d) -> None:
    """A discovery whose spectrum was skipped still plots: the panel says why."""
    import matplotlib

    matplotlib.use("Agg")
    fig = aipoincare.plot_spectrum(aipoincare.discover(fluid2d, degree=2, seed=0, device="cpu",
                                                       progress=False, spectrum=False))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("float spectrum not computed" in t for t in texts)


def test_abandoned_exact_path_draws_the_full_sample(lv, monkeypatch) -> None:
    """Without the spectrum the sample is sized for the exact path only; when that path is
    abandoned the float null space decides, at the full number of points."""
    from aipoincare import stages
    from aipoincare.errors import ExactNotApplicable

    def give_up(*args, **kwargs):
        raise ExactNotApplicable("a test gives up")

    monkeypatch.setattr(stages, "exact_null_space", give_up)
    d = aipoincare.discover(lv, degree=3, seed=0, device="cpu", progress=False,
                            spectrum=False)
    assert not d.exact and (d.nullity, d.independent) == (4, 2)
    assert d.points == 33 and d.spectrum.size == 19  # 1.2 x 19 + 10: the float default


def test_json_asks_for_the_spectrum_of_bases_up_to_its_limit(tmp_path: Path, monkeypatch,
                                                              capsys) -> None:
    """``--json`` reports the spectrum, so it raises the auto limit (JSON_SPECTRUM); a basis
    over it keeps ``spectrum: []`` unless --spectrum."""
    from aipoincare import config

    fluid = str(EXAMPLES / "fluid_2d.toml")  # degree 3: 454 functions
    monkeypatch.setattr(config, "SMALL_SPECTRUM", 100)
    monkeypatch.setattr(config, "JSON_SPECTRUM", 1000)
    code, out, _ = run(["discover", fluid, "--degree", "3", "--quiet", "--json",
                        str(tmp_path / "a.json")], capsys)
    assert code == 0
    assert len(json.loads((tmp_path / "a.json").read_text())["spectrum"]) == 454
    monkeypatch.setattr(config, "JSON_SPECTRUM", 400)
    code, out, _ = run(["discover", fluid, "--degree", "3", "--quiet", "--json",
                        str(tmp_path / "b.json")], capsys)
    first = json.loads((tmp_path / "a.json").read_text())
    doc = json.loads((tmp_path / "b.json").read_text())
    assert code == 0 and doc["spectrum"] == []
    assert (doc["nullity"], doc["independent"]) == (first["nullity"], first["independent"])
