"""Every shipped example carries its known invariants, certified independently of discovery.

The oracle of the examples: ``[expected] invariants`` lists conserved quantities known from
the physics or chemistry, written in the system's names. Each is certified by
:func:`aipoincare.certify_many` (symbolic expansion, exact identity test or 60-digit
evaluation; no discovery runs), and together they are functionally independent (float
Jacobian of full rank at points of the constraint set), so ``[expected] independent`` is
backed by a list of invariants that anyone can check. With symbolic parameters the
certificates are identities in the variables and the parameters, and independence is
checked at a random parameter point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sympy
import torch

import aipoincare
from aipoincare.evaluate import compile_jacobian_torch

EXAMPLES = Path(aipoincare.__file__).resolve().parent / "examples"
#: certifying the 3D fluid's 14 invariants by the identity test takes seconds
SLOW = {"fluid_2d", "fluid_3d"}
STEMS = sorted(p.stem for p in EXAMPLES.glob("*.toml"))


def test_the_examples_are_all_here() -> None:
    assert {"lotka_volterra_3", "atmospheric_chemistry", "fluid_2d", "fluid_3d", "rossler",
            "pendulum", "rigid_body", "circle_rotation", "atmospheric_chemistry_symbolic",
            "lotka_volterra_2", "henon_heiles_family", "michaelis_menten"} <= set(STEMS)
    repo = Path(__file__).resolve().parents[2] / "examples"
    for path in repo.glob("*.toml"):  # the repository's examples/ are the same files
        assert path.read_text() == (EXAMPLES / path.name).read_text(), path.name


@pytest.mark.parametrize("stem", [pytest.param(s, marks=pytest.mark.slow) if s in SLOW else s
                                  for s in STEMS])
def test_known_invariants_are_certified_and_independent(stem: str) -> None:
    system = aipoincare.load_system(EXAMPLES / f"{stem}.toml")
    known = system.expected["invariants"]
    assert len(known) == system.expected["independent"], "one known invariant per count"
    certs = aipoincare.certify_many(known, system, seed=0)
    failed = [(str(h)[:60], c.method, c.detail[:80]) for h, c in zip(known, certs, strict=True)
              if not c.verified]
    assert not failed, f"not certified: {failed}"
    if not known:
        return
    if system.symbolic:  # independence at a random member of the family
        rng = np.random.default_rng(3)
        values = {s.name: sympy.Rational(int(rng.integers(5, 40)), 7) for s in system.symbolic}
        system = system.specialise(values)
        known = [h.xreplace({sympy.Symbol(k): v for k, v in values.items()}) for h in known]
    states = aipoincare.sample_states(system, 24, seed=1, device="cpu").states
    jac = compile_jacobian_torch(known, system.variables)(torch.as_tensor(states))
    jac = jac / torch.linalg.vector_norm(jac, dim=2, keepdim=True)  # (points, invariants, vars)
    smallest = torch.linalg.svdvals(jac)[:, -1].median()
    assert float(smallest) > 1e-6, f"the known invariants are dependent ({float(smallest):.1e})"


def test_a_wrong_known_invariant_is_caught() -> None:
    """The oracle can fail: a non-invariant in the list is not certified."""
    lv = aipoincare.load_system(EXAMPLES / "lotka_volterra_3.toml")
    x, y, z = lv.variables
    certs = aipoincare.certify_many([*lv.expected["invariants"], x * y + z], lv)
    assert [c.verified for c in certs] == [True, True, False]
