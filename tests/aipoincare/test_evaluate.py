"""evaluate.py against SymPy's own arithmetic (evalf, exact Rationals, diff)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch

from aipoincare.evaluate import (
    _Program,
    compile_jacobian_torch,
    compile_torch,
    eval_mod_p,
    is_rational_function,
)

x, y, z = sympy.symbols("x y z")
P = 2147483647  # 2**31 - 1, prime

EXPRS = [
    x * y - z ** 2 + sympy.Rational(3, 7),
    (x * y - z) / (1 + x ** 2),
    sympy.sqrt(x ** 2 + y ** 2 + 1) * sympy.exp(-z),
    sympy.log(1 + x ** 2) + sympy.sin(y) * sympy.cos(z) - sympy.tan(x / 3),
    sympy.sinh(x) + sympy.cosh(y) * sympy.tanh(z) + sympy.atan(x * y) + sympy.Abs(z),
    sympy.pi * x + sympy.E ** y + sympy.Float("0.25") * z ** -2,
    sympy.Integer(5),
]


def test_compile_torch_matches_evalf():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(20, 3)) + 0.1
    got = compile_torch(EXPRS, [x, y, z])(torch.tensor(pts)).numpy()
    assert got.shape == (20, len(EXPRS)) and got.dtype == np.float64
    for j, row in enumerate(pts):
        subs = dict(zip((x, y, z), (sympy.Float(v, 30) for v in row), strict=True))
        want = [float(e.evalf(30, subs=subs)) for e in EXPRS]
        np.testing.assert_allclose(got[j], want, rtol=1e-12, atol=1e-12)


def test_shared_subexpressions_evaluated_once(fluid3d):
    # lam appears in 12 equations; memoised, the program is far smaller than 12 copies
    program = _Program(fluid3d.equations, fluid3d.variables)
    lam_sized = _Program([fluid3d.equations[1]], fluid3d.variables)
    assert len(program.ops) < 2 * len(lam_sized.ops)
    pts = torch.tensor(np.random.default_rng(1).normal(size=(5, 24)))
    got = compile_torch(fluid3d.equations, fluid3d.variables)(pts)
    subs = dict(zip(fluid3d.variables, pts[0].tolist(), strict=True))
    want = [float(e.evalf(30, subs=subs)) for e in fluid3d.equations]
    np.testing.assert_allclose(got[0].numpy(), want, rtol=1e-9)


def test_jacobian_matches_sympy_diff():
    exprs = EXPRS[:6]
    pts = np.random.default_rng(2).normal(size=(6, 3)) + 0.2
    got = compile_jacobian_torch(exprs, [x, y, z])(torch.tensor(pts)).numpy()
    assert got.shape == (6, 6, 3)
    for j, row in enumerate(pts):
        subs = dict(zip((x, y, z), row.tolist(), strict=True))
        for i, e in enumerate(exprs):
            for k, v in enumerate((x, y, z)):
                d = sympy.diff(e, v)
                # |z|' = z/|z| style derivative needs real symbols; compare numerically
                want = float(d.subs(subs).evalf(30)) if i != 4 or k != 2 else float(np.sign(row[2]))
                if i == 4 and k == 2:
                    want += float(sympy.diff(e - sympy.Abs(z), z).subs(subs).evalf(30))
                np.testing.assert_allclose(got[j, i, k], want, rtol=1e-10, atol=1e-12)


def test_eval_mod_p_matches_exact_rationals():
    exprs = [EXPRS[0], EXPRS[1], (x ** 3 - sympy.Rational(2, 9) * y) / (z - 4) ** 2, x * 0 + 7]
    rng = np.random.default_rng(3)
    pts = rng.integers(-50, 50, size=(30, 3))
    vals, ok = eval_mod_p(exprs, [x, y, z], pts, P)
    assert vals.dtype == np.int64 and vals.shape == (30, 4)
    for j, row in enumerate(pts):
        subs = dict(zip((x, y, z), (sympy.Integer(int(v)) for v in row), strict=True))
        exact = [e.subs(subs) for e in exprs]
        if any(v.has(sympy.zoo) or v.has(sympy.nan) for v in exact):
            assert not ok[j]
            continue
        assert ok[j]
        want = [int(r.p) % P * pow(int(r.q), -1, P) % P for r in map(sympy.Rational, exact)]
        assert vals[j].tolist() == want


def test_eval_mod_p_masks_vanishing_denominators():
    vals, ok = eval_mod_p([1 / (x - y)], [x, y], np.array([[3, 3], [P + 3, 3], [4, 3]]), P)
    assert ok.tolist() == [False, False, True]
    assert vals[2, 0] == 1


def test_is_rational_function():
    assert is_rational_function(EXPRS[0], [x, y, z])
    assert is_rational_function(EXPRS[1], [x, y, z])
    assert not is_rational_function(EXPRS[2], [x, y, z])
    assert not is_rational_function(x * sympy.Float(0.5), [x])
    assert not is_rational_function(x * y, [x])  # y is not a variable
    assert not is_rational_function(sympy.pi * x, [x])


def test_errors():
    with pytest.raises(TypeError, match="Cannot evaluate the expression node"):
        compile_torch([sympy.gamma(x)], [x])
    with pytest.raises(ValueError, match="not among the variables"):
        compile_torch([x * y], [x])
    with pytest.raises(TypeError, match="rational functions"):
        eval_mod_p([sympy.sin(x)], [x], np.zeros((1, 1), dtype=np.int64), P)
    with pytest.raises(ValueError, match="The 'p' must be an integer from 3 to 2147483647; got "
                                         "1099511627776; a prime"):
        eval_mod_p([x], [x], np.zeros((1, 1), dtype=np.int64), 2**40)
    with pytest.raises(ValueError, match="shape \\(n, 2\\)"):
        compile_torch([x], [x, y])(torch.zeros(3, 3))
    with pytest.raises(TypeError, match="sympy expression or a number"):
        compile_torch(["x + 1"], [x])


def test_device_and_dtype_follow_input():
    fn = compile_torch([x + 1, sympy.Integer(2)], [x])
    out = fn(torch.zeros(4, 1, dtype=torch.float32))
    assert out.dtype == torch.float64 and out[:, 1].tolist() == [2.0] * 4
