"""The data mode: conserved quantities of trajectories without equations, no false positives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sympy
import torch
from sympy.parsing.sympy_parser import parse_expr

import aipoincare
from aipoincare import datastats
from aipoincare.basis import PolynomialBasis
from aipoincare.cli import main
from aipoincare.datamode import discover_from_trajectories, split_trajectories
from aipoincare.datasystem import DataSystem
from aipoincare.simulate import add_noise, simulate, write_trajectories
from aipoincare.trajectories import Trajectories

from .conftest import example

BENCH_SYSTEMS = Path(__file__).resolve().parents[2] / "benchmarks" / "systems"

OSC = aipoincare.System("x v", ["v", "-x"], name="oscillator")
DAMPED = aipoincare.System("x v", ["v", "-x - v/5"], name="damped oscillator")
LV3 = aipoincare.System("x y z", ["x*(y - z)", "y*(z - x)", "z*(x - y)"], name="LV3",
                        sampling={"distribution": "uniform", "low": 0.2, "high": 2.0})
LV2 = aipoincare.System("x y", ["x*(1 - y/2)", "y*(x/3 - 1)"], name="LV2",
                        sampling={"distribution": "uniform", "low": 0.5, "high": 4.0})
LOG_BASIS = aipoincare.BasisSpec(kind="expressions", expressions=tuple(
    parse_expr(e, {"x": sympy.Symbol("x"), "y": sympy.Symbol("y")})
    for e in ("x", "y", "log(x)", "log(y)")))


def run(system: aipoincare.System, noise: float = 0.0, n: int = 16, duration: float = 5.0,
        samples: int = 80, equations: bool = True, **kw: object) -> aipoincare.Discovery:
    data = simulate(system, n, duration, samples=samples, noise=noise, seed=0)
    return discover_from_trajectories(data, system=system if equations else None,
                                      device="cpu", **kw)


def span_equal(a: np.ndarray, b: np.ndarray) -> bool:
    ra, rb = np.linalg.matrix_rank(a), np.linalg.matrix_rank(b)
    return ra == rb == np.linalg.matrix_rank(np.vstack([a, b]))


def lie_residual(expr: sympy.Expr, system: aipoincare.System, states: np.ndarray) -> float:
    """rms(grad H . f) / rms(|grad H| |f|) at the states: 0 for an invariant."""
    grads = [sympy.diff(expr, v) for v in system.variables]
    fn = sympy.lambdify(system.variables, [grads, list(system.equations)], "numpy")
    n = len(states)
    g, f = (np.array([np.broadcast_to(np.asarray(a, dtype=float), (n,)) for a in part]).T
            for part in fn(*states.T))
    lie = (g * f).sum(1)
    return float(np.sqrt(np.mean(lie ** 2) / np.mean((g ** 2).sum(1) * (f ** 2).sum(1))))


# ---------------------------------------------------------------- clean data = equations

@pytest.mark.parametrize("system, degree", [(OSC, 2), (LV3, 3), (example("rigid_body"), 2),
                                            (example("circle_rotation"), 1)])
def test_clean_data_finds_what_the_equations_give(system: aipoincare.System,
                                                  degree: int) -> None:
    eq = aipoincare.discover(system, degree=degree, seed=0, device="cpu")
    d = run(system, degree=degree)
    assert (d.nullity, d.independent) == (eq.nullity, eq.independent)
    assert span_equal(d.coefficients, eq.coefficients)
    assert all(i.verified and i.method == "symbolic" for i in d.invariants)
    assert all(i.evidence["heldout_ratio"] < 1e-12 for i in d.invariants)
    assert d.count_method == "data-heldout" and not d.exact


def test_constraint_is_constant_on_all_data_not_an_invariant() -> None:
    """On the sphere, x**2 + y**2 + z**2 is the same on every trajectory: data cannot tell
    it from an identity of the basis, so the data give x + y + z and x*y + x*z + y*z
    (nullity 2) where the equation mode also counts the constraint (nullity 3)."""
    d = run(example("circle_rotation"), degree=2)
    assert (d.nullity, d.independent) == (2, 2)
    assert [str(e) for e in d.conserved] == ["x + y + z", "x*y + x*z + y*z"]
    assert d.data["constant_on_data"] == 1
    assert any("constant on all the data" in n for n in d.notes)


def test_log_basis_lotka_volterra() -> None:
    d = run(LV2, basis=LOG_BASIS, duration=8.0)
    assert d.nullity == 1 and d.invariants[0].verified
    x, y = sympy.symbols("x y")
    assert sympy.simplify(d.invariants[0].expr / (x / 3 - sympy.log(x) + y / 2 - sympy.log(y))
                          ).is_number


def test_without_equations_evidence_not_a_proof() -> None:
    d = run(OSC, degree=2, equations=False)
    (inv,) = d.invariants
    assert inv.expr == sympy.Symbol("x") ** 2 + sympy.Symbol("v") ** 2
    assert not inv.verified and inv.method == "data"
    assert "evidence, not a proof" in inv.detail
    assert set(inv.evidence) >= {"heldout_ratio", "fit_ratio", "heldout_noise", "fit_noise"}
    doc = json.loads(d.to_json())
    assert doc["invariants"][0]["verified"] is False
    assert doc["invariants"][0]["evidence"]["heldout_trajectories"] == 8
    assert doc["data"]["trajectories"] == 16 and doc["data"]["equations"] is False
    assert "evidence, not a proof" in aipoincare.to_text(d)


# ---------------------------------------------------------------- negatives and noise

@pytest.mark.parametrize("noise", [0.0, 1e-2, 1e-1])
@pytest.mark.parametrize("system", [DAMPED, example("rossler")], ids=["damped", "rossler"])
def test_no_invariant_without_one(system: aipoincare.System, noise: float) -> None:
    d = run(system, noise=noise, degree=3, duration=10.0, samples=100)
    assert d.nullity == 0 and d.invariants == []


@pytest.mark.slow
@pytest.mark.parametrize("noise", [1e-3, 1e-2, 1e-1])
def test_noise_degrades_gracefully(noise: float) -> None:
    clean = run(LV3, degree=3)
    d = run(LV3, noise=noise, degree=3)
    assert d.nullity <= clean.nullity and d.independent <= clean.independent
    states = simulate(LV3, 16, 5.0, samples=80, seed=0).states
    for inv in d.invariants:  # never a false one: conserved up to the noise
        assert lie_residual(inv.expr, LV3, states) < 10 * noise
    if noise <= 1e-2:
        assert d.independent == clean.independent


@pytest.mark.parametrize("tol, found", [(None, 1), (1e-6, 0)])
def test_tol_is_the_ratio_of_every_test(tol: float | None, found: int) -> None:
    """At 10% noise the oscillator's energy varies along trajectories by a few percent of
    its variance across them, all of it noise: the ratio test counts only the smooth part
    (under 1%), so the default keeps it; tol=1e-6 rejects it, with the rationalised vector
    checked and the evidence reported against that same bound."""
    d = run(OSC, noise=0.1, n=30, duration=10.0, samples=150, degree=2, equations=False,
            tol=tol)
    assert d.independent == found and d.to_dict()["data"]["max_ratio"] == (tol or 0.01)
    for inv in d.invariants:
        assert inv.evidence["max_ratio"] == 0.01 and "at most 0.01" in inv.detail
        assert inv.evidence["heldout_excess"] <= 0.01 < inv.evidence["heldout_ratio"]
        assert inv.evidence["fit_excess"] <= 0.01 < inv.evidence["fit_ratio"]
        assert 0.8 < inv.evidence["heldout_rough"] < 1.25  # all of it is noise
        assert sympy.simplify(inv.expr - (OSC.variables[0] ** 2 + OSC.variables[1] ** 2)) == 0


LIGHT = aipoincare.System("x v", ["v", "-x - v/30"], name="lightly damped oscillator")


def energy_moments(system: aipoincare.System, noise: float
                   ) -> tuple[np.ndarray, datastats.Moments, datastats.Moments]:
    """x**2 + v**2 in the degree-2 basis, and the fit and held-out moments that
    ``run(system, noise, n=30, duration=10.0, samples=150, degree=2)`` works with."""
    data = simulate(system, 30, 10.0, samples=150, noise=noise, seed=0)
    basis = PolynomialBasis(system.variables, 2)
    sigma, _ = datastats.noise_level(data)
    halves = [datastats.moments(basis, data.subset(i), sigma, np.ones(basis.size),
                                torch.device("cpu")) for i in split_trajectories(30, 0)]
    theta = np.array([float(e in (sympy.Symbol("x") ** 2, sympy.Symbol("v") ** 2))
                      for e in basis.exprs])
    return theta, halves[0], halves[1]


@pytest.mark.parametrize("noise", [1e-2, 1e-1])
def test_slow_drift_hidden_in_noise_is_rejected(noise: float) -> None:
    """A light damping: the energy loses 28% over the record. At 10% noise its variation
    along the trajectories is within twice what the noise explains (it passes the noise
    test) and about 3% of its variance across them, half of it noise: the ratio test on
    the smooth (drift) part alone still rejects it, as it does at 1% noise."""
    d = run(LIGHT, noise=noise, n=30, duration=10.0, samples=150, degree=2, equations=False)
    assert d.nullity == 0 and d.invariants == []
    ev = datastats.evidence(*energy_moments(LIGHT, noise))
    assert not datastats.passes(ev)
    assert min(ev["heldout_excess"], ev["fit_excess"]) > datastats.RATIO
    if noise == 1e-1:  # only the ratio test on the smooth part rejects it
        assert max(ev["heldout_noise"], ev["fit_noise"]) < datastats.NOISE_FACTOR
        assert ev["heldout_excess"] < 0.7 * ev["heldout_ratio"]


@pytest.mark.parametrize("noise", [1e-2, 1e-1])
def test_rough_moment_is_the_noise_share(noise: float) -> None:
    """R (residuals of local cubics) measures the noise's share of the along-trajectory
    variation: for an invariant all of it (the smooth part is about 0), for a drift only
    the noise (the smooth part is the drift's own variance)."""
    for system in (OSC, LIGHT):
        theta, m, _ = energy_moments(system, noise)
        w, r, n = (float(theta @ a @ theta) for a in (m.within, m.rough, m.noise))
        x = float(theta @ datastats.excess(m) @ theta)
        assert r == pytest.approx(n, rel=0.15)
        if system is OSC:
            assert r == pytest.approx(w, rel=0.1) and 0.0 <= x < 0.05 * w
        else:
            assert x == pytest.approx(w - r, rel=0.2) and x > 0.3 * w


def test_rough_moment_leaves_out_windows_the_cubics_do_not_fit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Rossler's z spikes faster than a cubic over 7 samples follows: without the window
    screening the cubic's own error there would count as noise (about 3 times the real
    noise of z at 1%), and credit a drift of z-like functions as noise."""
    ross = example("rossler")
    data = simulate(ross, 16, 10.0, samples=100, noise=1e-2, seed=0)
    basis = PolynomialBasis(ross.variables, 1)
    sigma, _ = datastats.noise_level(data)

    def rough_over_noise() -> np.ndarray:
        m = datastats.moments(basis, data, sigma, np.ones(basis.size), torch.device("cpu"))
        return np.diag(m.rough) / np.diag(m.noise)

    np.testing.assert_allclose(rough_over_noise(), 1.0, rtol=0.15)
    monkeypatch.setattr(datastats, "SCREEN", 0.0)  # keep every window
    assert rough_over_noise()[2] > 2.0


def moments1(within: float, rough: float) -> datastats.Moments:
    """One basis function: along-trajectory variance ``within``, total 1, noise = rough."""
    return datastats.Moments(np.array([[within]]), np.array([[1.0]]), np.array([[rough]]),
                             np.array([[rough]]), samples=1000, trajectories=10)


@pytest.mark.parametrize("within, kept", [(0.2, 1), (0.5, 0)])
def test_signal_test(within: float, kept: int) -> None:
    """All of the along-trajectory variation is noise (the smooth part is 0, the noise test
    passes): the direction is kept while that noise is below SIGNAL of the total variance,
    and rejected above, however small its smooth part."""
    m = moments1(within, within)
    assert float(datastats.excess(m)[0, 0]) == pytest.approx(0.0, abs=1e-12)
    assert datastats.cut(m, m).vectors.shape[1] == kept
    assert datastats.passes(datastats.evidence(np.ones(1), m, m)) is bool(kept)


@pytest.mark.slow
def test_large_basis_correlated_invariants(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kepler's 70-function basis at 1% noise (the benchmark's system and data): on these
    near-circular orbits energy, angular momentum and the Laplace-Runge-Lenz vector are
    correlated across trajectories, so some combinations of them vary little across
    trajectories and their noise alone is several percent of that; counting only the
    smooth part of the along-trajectory variation finds all three, the whole variation
    (the previous rule) at most two."""
    kepler = aipoincare.load_system(BENCH_SYSTEMS / "kepler.toml")
    clean = simulate(kepler, 50, 10.0, samples=200, seed=0)
    data = add_noise(clean, 1e-2, seed=1)

    def correct() -> int:
        d = discover_from_trajectories(data, basis=kepler.basis, seed=0, device="cpu")
        lies = [lie_residual(i.expr, kepler, clean.states) for i in d.invariants]
        assert all(r <= 0.05 for r in lies), lies  # never a false one
        assert all(i.evidence["heldout_excess"] <= datastats.RATIO and
                   i.evidence["fit_excess"] <= datastats.RATIO for i in d.invariants)
        return len(lies)

    assert correct() == 3
    monkeypatch.setattr(datastats, "excess", lambda m: m.within)  # the noise counted too
    assert correct() <= 2


@pytest.mark.slow
def test_held_out_ratio_test_within_the_fit_halfs_noise_span() -> None:
    """Kepler at 1% noise, another noise draw (seed 4) of the benchmark's orbits: the fit
    half's estimate of the correlated invariants' subspace is too poor for its best three
    directions to pass on the held-out half (the previous rule, the fit half preselecting by
    its ratio test, found two). Preselecting by the noise test only and letting the held-out
    half's ratio test choose within that span, with every test passed again on the fit half,
    finds all three, each correct and within the bound on both halves."""
    kepler = aipoincare.load_system(BENCH_SYSTEMS / "kepler.toml")
    clean = simulate(kepler, 50, 10.0, samples=200, seed=0)
    d = discover_from_trajectories(add_noise(clean, 1e-2, seed=4), basis=kepler.basis, seed=0,
                                   device="cpu")
    assert d.nullity == 3
    assert all(lie_residual(i.expr, kepler, clean.states) <= 0.05 for i in d.invariants)
    assert len(d.invariants) == 3
    assert all(datastats.passes(i.evidence) for i in d.invariants)


def test_held_out_trajectories_reject_what_only_the_fit_half_conserves() -> None:
    """The fit half is a unit-frequency oscillator, the held-out half is not: x**2 + v**2
    is constant on the fit trajectories only, and must not be reported."""
    fast = aipoincare.System("x v", ["v", "-4*x"])
    fit, held = split_trajectories(16, seed=0)
    a, b = simulate(OSC, 16, 5.0, samples=80, seed=0), simulate(fast, 16, 5.0, samples=80,
                                                                 seed=0)
    use_b = np.isin(a.trajectory_index, held)
    data = Trajectories.from_arrays(a.trajectory_index, a.t, np.where(use_b[:, None], b.states,
                                                            a.states), ["x", "v"])
    d = discover_from_trajectories(data, degree=2, device="cpu", seed=0)
    assert d.nullity == 0
    assert d.to_dict()["data"]["candidates"] == 1
    assert any("failed on the held-out ones" in n for n in d.notes)


def test_noise_level_estimate() -> None:
    clean = simulate(OSC, 8, 6.0, samples=150, seed=0)
    noisy = simulate(OSC, 8, 6.0, samples=150, seed=0, noise=0.01)
    sigma, windows = datastats.noise_level(noisy)
    truth = 0.01 * clean.states.std(0)
    np.testing.assert_allclose(sigma, truth, rtol=0.1)
    assert windows == 8 * (150 - datastats.WINDOW + 1)
    # clean data: only the O(dt**4) error of the local cubics (here about 1e-6)
    assert datastats.noise_level(clean)[0].max() < 1e-3 * truth.max()


# ---------------------------------------------------------------- system files, API, CLI

SYSTEM = """
name = "oscillator"
variables = ["x", "v"]
{equations}
[data]
trajectories = "orbits.csv"

[basis]
degree = 2
"""
EQUATIONS = '[equations]\nx = "v"\nv = "-x"\n'


def files(tmp_path: Path, equations: bool = False) -> Path:
    write_trajectories(simulate(OSC, 12, 5.0, samples=60, seed=0), tmp_path / "orbits.csv")
    path = tmp_path / "osc.toml"
    path.write_text(SYSTEM.format(equations=EQUATIONS if equations else ""))
    return path


@pytest.mark.parametrize("equations", [False, True])
def test_system_file_with_data(tmp_path: Path, equations: bool) -> None:
    s = aipoincare.load_system(files(tmp_path, equations))
    assert isinstance(s, DataSystem) and s.has_equations is equations
    assert s.data.n_trajectories == 12 and s.variable_names == ["x", "v"]
    d = aipoincare.discover(s, seed=0, device="cpu")
    assert [str(i.expr) for i in d.invariants] == ["v**2 + x**2"]
    assert d.invariants[0].verified is equations


def test_api_inputs(tmp_path: Path) -> None:
    files(tmp_path)
    by_path = discover_from_trajectories(tmp_path / "orbits.csv", ["x", "v"], degree=2,
                                         device="cpu")
    data = simulate(OSC, 12, 5.0, samples=60, seed=0)
    by_arrays = discover_from_trajectories({"trajectory": data.trajectory_index, "t": data.t,
                                            "states": data.states}, ["x", "v"], degree=2,
                                           device="cpu")
    assert by_path.nullity == by_arrays.nullity == 1
    with pytest.raises(TypeError, match=r"'variables' must be given"):
        discover_from_trajectories(tmp_path / "orbits.csv")
    with pytest.raises(ValueError, match=r"have the variables \['x', 'v'\] but"):
        discover_from_trajectories(data, ["v", "x"])


def test_cli_simulate_then_discover(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    system = tmp_path / "osc.toml"
    system.write_text(SYSTEM.format(equations=EQUATIONS))
    assert main(["simulate", str(system), "--trajectories", "10", "--duration", "5",
                 "--samples", "60", "--noise", "0.001", "-o", str(tmp_path / "orbits.csv")]) == 0
    assert "wrote" in capsys.readouterr().out
    out = tmp_path / "r.json"
    assert main(["discover", str(system), "--json", str(out), "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert doc["count_method"] == "data-heldout" and doc["independent"] == 1
    inv = doc["invariants"][0]
    assert inv["verified"] is True and inv["evidence"]["heldout_ratio"] < 1e-3


@pytest.mark.parametrize("edit, pattern", [
    (lambda p: p.unlink(), r"trajectory file .* does not exist"),
    (lambda p: p.write_text(p.read_text().replace("\n1,", "\n1,nan,", 1)),
     r"has 5 fields; the header has 4"),
    (lambda p: p.write_text(p.read_text().replace("x,v", "x,w", 1)), r"unknown column"),
    (lambda p: p.write_text(p.read_text() + "99,0,1,1\n"), r"has 1 sample"),
])
def test_cli_bad_data_files(tmp_path: Path, capsys: pytest.CaptureFixture[str], edit,
                            pattern: str) -> None:
    system = files(tmp_path)
    edit(tmp_path / "orbits.csv")
    capsys.readouterr()
    assert main(["discover", str(system)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith("error: ")
    assert __import__("re").search(pattern, err), err


def test_cli_simulate_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    system = files(tmp_path)  # [data] but no equations: nothing to integrate
    assert main(["simulate", str(system), "--trajectories", "8", "--duration", "1",
                 "-o", str(tmp_path / "o.csv")]) == 2
    assert "simulating needs the equations" in capsys.readouterr().err
    assert main(["simulate", "rigid_body", "--trajectories", "8", "--duration", "1",
                 "-o", str(tmp_path / "o.txt2")]) == 2
    assert "must end in" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_plots_say_it_is_data() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from aipoincare.plotting import plot_spectrum

    d = run(OSC, degree=2, equations=False, n=8, samples=40)
    title = plot_spectrum(d).axes[0].get_title()
    assert "along/across-trajectory" in title and "evidence, not a proof" in title
    assert aipoincare.render_discovery(d, "png")[:4] == b"\x89PNG"
