"""Points of the constraint set, drawn exactly: the sampler of the exact paths.

For each constraint, a variable in which it is linear with a coefficient that is not
identically zero is solved for (``v = -b/a``); the other variables are drawn uniformly from
GF(p) and the solved ones computed (skipping points where ``a`` vanishes). A constraint that
is linear in no remaining variable makes the exact paths inapplicable
(:class:`~aipoincare.errors.ExactNotApplicable`).

Used by the exact null space (:mod:`aipoincare.exact`), exact independence
(:mod:`aipoincare.independence`) and the certificates (:mod:`aipoincare.certify`); the
float states of the numerical path are projected onto the set instead
(:mod:`aipoincare.sampling`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy

from .errors import ExactNotApplicable
from .evaluate import as_expr, eval_mod_p, is_rational_function, mod_inverse_array

__all__ = ["ConstraintSolver", "constraint_solver"]


@dataclass(frozen=True)
class _Solved:
    var: sympy.Symbol
    coef: sympy.Expr   # a: the constraint is a*var + b (numerator), var = -b/a
    rest: sympy.Expr   # b


class ConstraintSolver:
    """Solve linear-in-one-variable constraints to draw points of the constraint set.

    Parameters
    ----------
    variables : sequence of sympy.Symbol
    constraints : sequence of sympy.Expr
        Rational functions that vanish on admissible states.

    Attributes
    ----------
    solved : list
        ``(variable, a, b)`` per constraint: the constraint's numerator is ``a*v + b``.
    free : list of sympy.Symbol
        Variables drawn at random.

    Raises
    ------
    ExactNotApplicable
        When a constraint is not rational, or not linear in any remaining variable.

    Examples
    --------
    >>> x, y = sympy.symbols("x y")
    >>> s = ConstraintSolver([x, y], [x * y - 1])
    >>> s.solved[0].var, s.free
    (y, [x])
    """

    def __init__(self, variables: Sequence[sympy.Symbol],
                 constraints: Sequence[sympy.Expr]) -> None:
        self.variables = list(variables)
        self.solved: list[_Solved] = []
        remaining = list(self.variables)
        subs: dict[sympy.Symbol, sympy.Expr] = {}
        for g in constraints:
            g = as_expr(g)
            if not is_rational_function(g, self.variables):
                raise ExactNotApplicable(f"the constraint {g} is not a rational function "
                                         "with exact coefficients")
            if subs:
                g = g.xreplace(subs)
            num, _ = sympy.fraction(sympy.together(g))
            poly = sympy.Poly(num, *self.variables)  # one multivariate pass: fast
            terms = poly.terms()
            best = None
            for v in reversed(remaining):  # prefer later variables: velocities in the fluids
                k = self.variables.index(v)
                if max((m[k] for m, _ in terms), default=0) != 1:
                    continue
                a_terms = [m for m, _ in terms if m[k] == 1]
                if best is None or len(a_terms) < best[0]:
                    best = (len(a_terms), v, k)
            if best is None:
                raise ExactNotApplicable(f"the constraint {g} is linear in none of the "
                                         "remaining variables, so its points cannot be drawn "
                                         "exactly")
            _, v, k = best
            a = sympy.Add(*[c * _mono(self.variables, m, k) for m, c in terms if m[k] == 1])
            b = sympy.Add(*[c * _mono(self.variables, m, k) for m, c in terms if m[k] == 0])
            self.solved.append(_Solved(v, a, b))
            remaining.remove(v)
            subs[v] = -b / a
        self.free = remaining
        self._cols = {v: i for i, v in enumerate(self.variables)}

    def sample_mod_p(self, n: int, p: int, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` random points of the constraint set over GF(p).

        Returns
        -------
        points : ndarray of int64, shape (n, n_vars)
        ok : ndarray of bool, shape (n,)
            False where a solved variable's coefficient vanished (drop those rows).
        """
        pts = rng.integers(0, p, size=(n, len(self.variables)), dtype=np.int64)
        ok = np.ones(n, dtype=bool)
        for s in reversed(self.solved):  # later constraints do not involve earlier solved vars
            vals, good = eval_mod_p([s.coef, s.rest], self.variables, pts, p)
            ainv, invertible = mod_inverse_array(vals[:, 0], p)
            pts[:, self._cols[s.var]] = (p - vals[:, 1]) % p * ainv % p
            ok &= good & invertible
        return pts, ok


def _mono(variables: Sequence[sympy.Symbol], m: Sequence[int], skip: int) -> sympy.Expr:
    return sympy.Mul(*[v ** e for i, (v, e) in enumerate(zip(variables, m, strict=True))
                       if e and i != skip])


@lru_cache(maxsize=32)
def constraint_solver(variables: tuple[sympy.Symbol, ...],
                      constraints: tuple[sympy.Expr, ...]) -> ConstraintSolver:
    """A cached :class:`ConstraintSolver` (building one expands the constraints)."""
    return ConstraintSolver(variables, constraints)
