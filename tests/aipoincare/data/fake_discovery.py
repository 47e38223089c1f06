"""Hand-built Discovery objects for the report/plot/CLI tests (no discovery run needed).

``lotka_volterra()`` is the true answer for the cyclic Lotka-Volterra system in the degree-3
polynomial basis (19 monomials): conserved subspace spanned by x+y+z, x*y*z, (x+y+z)**2,
(x+y+z)**3; independent x+y+z and x*y*z. ``large()`` mimics the 3D fluid's shape
(60 x 2924 coefficients, gap from 1e-9 to 1e-15).
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy

from aipoincare.result import Discovery, Invariant


def monomials(variables: list[sympy.Symbol], degree: int) -> list[sympy.Expr]:
    """All monomials of total degree 1..degree (the polynomial basis, graded order)."""
    out = []
    for d in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(variables, d):
            out.append(sympy.Mul(*combo))
    return out


def coefficient_matrix(exprs: list[sympy.Expr], basis: list[sympy.Expr],
                       variables: list[sympy.Symbol]) -> np.ndarray:
    rows = []
    for e in exprs:
        poly = sympy.Poly(sympy.expand(e), *variables)
        rows.append([float(poly.coeff_monomial(b)) for b in basis])
    return np.array(rows)


def lotka_volterra() -> Discovery:
    x, y, z = sympy.symbols("x y z")
    basis = monomials([x, y, z], 3)
    conserved = [x + y + z, x * y * z, sympy.expand((x + y + z) ** 2),
                 sympy.expand((x + y + z) ** 3)]
    spectrum = np.concatenate([np.logspace(0, -2.5, 15), [3e-17, 1e-17, 4e-18, 0.0]])
    invariants = [
        Invariant(x + y + z, True, "symbolic", 0.0, "grad H . f expands to 0",
                  {"x": sympy.Integer(1), "y": sympy.Integer(1), "z": sympy.Integer(1)}),
        Invariant(x * y * z, True, "symbolic", 0.0, "grad H . f expands to 0",
                  {"x*y*z": sympy.Integer(1)}),
    ]
    return Discovery(
        name="Cyclic Lotka-Volterra", variables=["x", "y", "z"],
        basis_labels=[str(b) for b in basis], points=100, nullity=4, independent=2,
        invariants=invariants, spectrum=spectrum, dropped=0, conserved=conserved,
        coefficients=coefficient_matrix(conserved, basis, [x, y, z]), gap=14.2,
        confidence=1.0, exact=True, count_method="exact-modular",
        independence_spectrum=np.array([1.0, 0.41, 2e-16, 1e-17]), seconds=0.42,
        timings={"sampling": 0.01, "matrix": 0.02, "null space": 0.05, "certify": 0.3},
        notes=["Counts are exact (rank over GF(p) at random rational points)."])


def large(seed: int = 0) -> Discovery:
    rng = np.random.default_rng(seed)
    names = [f"{c}{i}" for i in range(1, 5) for c in "xuyvzw"]
    syms = sympy.symbols(names)
    mons = monomials(list(syms), 3)
    basis = [str(b) for b in mons]
    n, k = len(basis), 60
    coef = np.zeros((k, n))
    used = rng.choice(n, size=240, replace=False)
    for r in range(k):
        cols = rng.choice(used, size=rng.integers(2, 9), replace=False)
        coef[r, cols] = rng.integers(-3, 4, size=cols.size) + 0.0
        coef[r, cols[0]] = 1.0
    spectrum = np.concatenate([np.logspace(0, -9, n - k), np.logspace(-15, -16.5, k)])
    invs = [Invariant(sympy.Add(*[int(c) * mons[j] for j, c in
                                  enumerate(coef[r]) if c]), True, "identity-test", 0.0, "",
                      {basis[j]: int(c) for j, c in enumerate(coef[r]) if c})
            for r in range(14)]
    return Discovery(
        name="Constant-volume fluid element (fake)", variables=names, basis_labels=basis,
        points=3600, nullity=k, independent=14, invariants=invs, spectrum=spectrum,
        coefficients=coef, conserved=[i.expr for i in invs], gap=6.0, confidence=0.94,
        exact=False, count_method="numerical-gap",
        independence_spectrum=np.concatenate([np.logspace(0, -3, 14), np.full(46, 1e-16)]),
        seconds=7.5, timings={"total": 7.5}, notes=["numerical counts"])
