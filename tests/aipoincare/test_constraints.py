"""Points of the constraint set drawn exactly (the sampler of the exact paths)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from aipoincare.constraints import ConstraintSolver, constraint_solver
from aipoincare.errors import ExactNotApplicable
from aipoincare.evaluate import eval_mod_p

x, y, z = sympy.symbols("x y z")
P = 2147483629


def test_constraint_points_lie_on_the_constraint_set(fluid2d):
    solver = ConstraintSolver(fluid2d.variables, fluid2d.constraints)
    assert len(solver.solved) == 1 and len(solver.free) == 11
    pts, ok = solver.sample_mod_p(50, P, np.random.default_rng(0))
    assert ok.sum() >= 48
    g, okg = eval_mod_p(fluid2d.constraints, fluid2d.variables, pts[ok], P)
    assert okg.all() and not g.any()


def test_nonlinear_constraint_is_refused():
    with pytest.raises(ExactNotApplicable, match="linear in none of the remaining variables"):
        ConstraintSolver([x, y], [x ** 2 + y ** 2 - 1])
    with pytest.raises(ExactNotApplicable, match="not a rational function"):
        ConstraintSolver([x, y], [sympy.sin(x) - y])


def test_solved_variables_use_only_later_ones_and_the_solver_is_cached(fluid3d):
    solver = constraint_solver(tuple(fluid3d.variables), tuple(fluid3d.constraints))
    assert solver is constraint_solver(tuple(fluid3d.variables), tuple(fluid3d.constraints))
    (solved,) = solver.solved
    assert solved.var not in (solved.coef.free_symbols | solved.rest.free_symbols)
    pts, ok = solver.sample_mod_p(20, P, np.random.default_rng(1))
    g, okg = eval_mod_p(fluid3d.constraints, fluid3d.variables, pts[ok], P)
    assert ok.sum() >= 18 and okg.all() and not g.any()
