"""A canonical, readable form of an invariant: the same quantity always prints the same way.

A conserved quantity is only defined up to a nonzero factor, and discovery may return it
scaled differently from one seed to the next (``x/2 + y/3`` or ``-3*x - 2*y``). The
canonical form fixes that factor:

* **Rational coefficients** (also polynomials or rational functions of symbolic
  parameters): denominators cleared, the greatest common divisor removed (primitive integer
  coefficients, over ``Z[parameters]`` with parameters), and the leading term positive.
* **Other coefficients** (floats, ``sqrt(2)``): the leading coefficient scaled to 1.
* **Term order**: polynomial terms first, by falling total degree, then by the exponents
  in the declared variable order; other functions (``log(x)``, ``1/sqrt(...)``) after them,
  by their printed form. The first term of that order is the *leading term*.

Multiplying by a nonzero constant does not change whether ``grad H . f = 0``, so the
certificate of an invariant holds for its canonical form too.

Examples
--------
>>> x, y = sympy.symbols("x y")
>>> canonical_form(-x/2 - y/3, ["x", "y"]).text
'3*x + 2*y'
>>> canonical_form(sympy.Rational(-6) * x * y + 4 * x**2, ["x", "y"]).text
'2*x**2 - 3*x*y'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

import sympy

__all__ = ["CanonicalForm", "canonical_form", "HUGE_DIGITS"]

#: Integer coefficients with more digits than this get a decimal view beside them.
HUGE_DIGITS = 10
_DECIMAL_DIGITS = 6  # significant digits of the decimal view


@dataclass(frozen=True)
class CanonicalForm:
    """An invariant as ``scale * H``, with its terms in the canonical order.

    Attributes
    ----------
    terms : tuple of (sympy.Expr, sympy.Expr)
        ``(coefficient, function)`` pairs in order; the coefficient holds numbers and
        symbolic parameters only, the function the variables only.
    exact : bool
        True when the coefficients are integers (or integer polynomials in the parameters):
        the primitive integer form. False for float or irrational coefficients (then the
        leading coefficient is 1).
    scale : sympy.Expr
        The factor applied to the original expression (canonical = scale * original).
    """

    terms: tuple[tuple[sympy.Expr, sympy.Expr], ...]
    exact: bool
    scale: sympy.Expr

    @property
    def expr(self) -> sympy.Expr:
        """The canonical expression (a sympy ``Add``; sympy may reorder its terms)."""
        return sympy.Add(*[c * f for c, f in self.terms])

    @property
    def n_terms(self) -> int:
        """Number of functions with a nonzero coefficient."""
        return len(self.terms)

    @property
    def integers(self) -> list[int]:
        """Every integer in the coefficients (those of the parameter polynomials too)."""
        if not self.exact:
            return []
        out: list[int] = []
        for c, _ in self.terms:
            out.extend(int(a) for a in _numbers(c))
        return out

    @property
    def max_coefficient(self) -> float:
        """Coefficient size: the largest |integer coefficient| of the primitive integer
        form; without one (float coefficients), ``max |c| / min |c|`` over the numeric
        coefficients (1.0 when it cannot be measured)."""
        if self.exact:
            return float(max((abs(v) for v in self.integers), default=1))
        mags = [abs(float(v)) for c, _ in self.terms for v in _numbers(c) if v.is_finite]
        mags = [m for m in mags if m > 0]
        return max(mags) / min(mags) if mags else 1.0

    @property
    def huge(self) -> bool:
        """Some integer coefficient has more than :data:`HUGE_DIGITS` digits."""
        return any(len(str(abs(v))) > HUGE_DIGITS for v in self.integers)

    @property
    def text(self) -> str:
        """Plain maths in the canonical order; :func:`sympy.parse_expr` reads it back."""
        return _join([_term(c, f, sympy.sstr, "({})*{}") for c, f in self.terms],
                     " + ", " - ", "0")

    @property
    def latex(self) -> str:
        """LaTeX in the canonical order."""
        return _join([_term(c, f, sympy.latex, r"\left({}\right) {}") for c, f in self.terms],
                     " + ", " - ", "0")

    def _decimal_terms(self, digits: int) -> list[tuple[sympy.Expr, sympy.Expr]]:
        lead = _numbers(self.terms[0][0])[0]
        out = []
        for c, f in self.terms:
            scaled = sympy.expand(c / lead)
            scaled = scaled.xreplace({n: sympy.Float(n, digits) for n in scaled.atoms(sympy.Number)
                                      if not n.is_Integer or abs(n) != 1})
            out.append((scaled, f))
        return out

    def decimal(self, digits: int = _DECIMAL_DIGITS) -> str | None:
        """The form divided by its leading number, with ``digits`` significant digits, when
        an integer coefficient is huge (None otherwise): a view to read, not exact."""
        if not self.huge:
            return None
        return _join([_term(c, f, lambda e: sympy.sstr(e, full_prec=False), "({})*{}")
                      for c, f in self._decimal_terms(digits)], " + ", " - ", "0")

    def decimal_latex(self, digits: int = _DECIMAL_DIGITS) -> str | None:
        """:meth:`decimal` as LaTeX."""
        if not self.huge:
            return None
        return _join([_term(c, f, sympy.latex, r"\left({}\right) {}")
                      for c, f in self._decimal_terms(digits)], " + ", " - ", "0")


def _term(coef: sympy.Expr, func: sympy.Expr, printer: Any, grouped: str) -> str:
    """One term, the coefficient (numbers and parameters) before the function: a
    coefficient with several terms in parentheses, so ``(k1 + k2)*x`` reads as one
    coefficient of one function, and ``2*k5*O3`` rather than sympy's ``2*O3*k5``."""
    if coef.is_Integer and func != 1 and func.is_commutative and not _has_denominator(func):
        # the common case, printed without building (and re-sorting) a new product
        body = printer(func)
        if coef == 1:
            return body
        if coef == -1:
            return "-" + body
        return f"{printer(coef)}{'*' if printer is sympy.sstr else ' '}{body}"
    if coef.is_Number or func == 1:
        return printer(coef * func)
    sign = ""
    if coef.could_extract_minus_sign():
        sign, coef = "-", -coef
    if coef == 1 or _has_denominator(func):  # k/x reads better than k*1/x
        return sign + printer(coef * func)
    template = grouped if coef.is_Add else grouped.replace("({})", "{}").replace(
        r"\left({}\right)", "{}")
    return sign + template.format(printer(coef), printer(func))


def _has_denominator(func: sympy.Expr) -> bool:
    return any(e.is_negative for _, e in (a.as_base_exp() for a in sympy.Mul.make_args(func)))


def _join(parts: Sequence[str], plus: str, minus: str, empty: str) -> str:
    if not parts:
        return empty
    out = parts[0]
    for p in parts[1:]:
        out += minus + p[1:].lstrip() if p.startswith("-") else plus + p
    return out


def _numbers(coef: sympy.Expr) -> list[sympy.Number]:
    """The numbers of a coefficient, in a fixed order: itself when it is a number, else
    the coefficients of its (expanded) terms in sympy's order."""
    coef = sympy.expand(coef)
    if coef.is_Number:
        return [coef]
    terms = sorted(sympy.Add.make_args(coef), key=sympy.default_sort_key)
    return [t.as_coeff_Mul()[0] for t in terms]


def _sort_key(func: sympy.Expr, index: dict[sympy.Symbol, int]) -> tuple[Any, ...]:
    powers = func.as_powers_dict()
    if all(b in index and e.is_Integer and e > 0 for b, e in powers.items() if b != 1):
        exps = [0] * len(index)
        for b, e in powers.items():
            if b != 1:
                exps[index[b]] = int(e)
        return (0, -sum(exps), tuple(-e for e in exps), "")
    return (1, 0, (), sympy.sstr(func))


def _is_rational(c: sympy.Expr, parameters: Sequence[sympy.Symbol]) -> bool:
    if c.is_Number:
        return bool(c.is_Rational)
    if c.atoms(sympy.Float):
        return False
    num, den = sympy.fraction(sympy.together(c))
    return all(sympy.Poly(p, *parameters).domain in (sympy.ZZ, sympy.QQ) if parameters
               else p.is_Rational for p in (sympy.expand(num), sympy.expand(den)))


def _leading_sign(c: sympy.Expr, parameters: Sequence[sympy.Symbol]) -> int:
    if c.is_Number:
        return 1 if c > 0 else -1
    lc = sympy.Poly(c, *parameters).LC(order="grlex")
    return 1 if lc > 0 else -1


def canonical_form(expr: sympy.Expr, variables: Sequence[str | sympy.Symbol]) -> CanonicalForm:
    """The canonical form of ``expr``, a combination of functions of ``variables``.

    Parameters
    ----------
    expr : sympy.Expr
        The invariant; free symbols other than ``variables`` are treated as (symbolic)
        parameters and stay in the coefficients.
    variables : sequence of str or Symbol
        The state variables in declared order (they fix the term order).

    Returns
    -------
    CanonicalForm
    """
    syms = [v if isinstance(v, sympy.Symbol) else sympy.Symbol(str(v)) for v in variables]
    parameters = sorted(expr.free_symbols - set(syms), key=sympy.default_sort_key)
    # distribute products over sums (k*(x + y)), but leave the basis functions whole:
    # nothing inside sqrt(...), log(...) or a denominator is expanded
    if not isinstance(expr, sympy.Basic):  # a plain number (never text: no sympify)
        expr = sympy.Float(expr) if isinstance(expr, float) else sympy.Rational(expr)
    terms = [t for top in sympy.Add.make_args(expr)
             for t in sympy.Add.make_args(_distribute(top))]
    grouped: dict[sympy.Expr, sympy.Expr] = {}
    for term in terms:
        coef, func = term.as_independent(*syms, as_Add=False)
        grouped[func] = grouped.get(func, sympy.Integer(0)) + coef
    pairs = [(sympy.cancel(c) if parameters else c, f) for f, c in grouped.items()]
    pairs = [(c, f) for c, f in pairs if c != 0]
    index = {v: i for i, v in enumerate(syms)}
    pairs.sort(key=lambda cf: _sort_key(cf[1], index))
    if not pairs:
        return CanonicalForm((), True, sympy.Integer(1))
    if all(_is_rational(c, parameters) for c, _ in pairs):
        scale = _primitive_scale([c for c, _ in pairs], parameters)
        coefs = [sympy.expand(sympy.cancel(c * scale)) for c, _ in pairs]
        if _leading_sign(coefs[0], parameters) < 0:
            scale, coefs = -scale, [-c for c in coefs]
        return CanonicalForm(tuple(zip(coefs, [f for _, f in pairs], strict=True)), True,
                             scale)
    scale = 1 / pairs[0][0]
    coefs = [sympy.Integer(1)] + [sympy.radsimp(c * scale) for c, _ in pairs[1:]]
    return CanonicalForm(tuple(zip(coefs, [f for _, f in pairs], strict=True)), False, scale)


def _distribute(term: sympy.Expr) -> sympy.Expr:
    """``k*(x + y)`` -> ``k*x + k*y``; a term without a sum among its factors as it is."""
    if not (term.is_Mul and any(a.is_Add for a in term.args)):
        return term
    return sympy.expand(term, deep=False, log=False, power_exp=False, power_base=False)


def _primitive_scale(coefs: Sequence[sympy.Expr],
                     parameters: Sequence[sympy.Symbol]) -> sympy.Expr:
    """The factor that makes rational ``coefs`` primitive integers (polynomials)."""
    if not parameters:
        fracs = [sympy.Rational(c) for c in coefs]
        den = reduce(math.lcm, (int(f.q) for f in fracs), 1)
        num = reduce(math.gcd, (int(f.p * (den // f.q)) for f in fracs), 0)
        return sympy.Rational(den, num)
    nums_dens = [sympy.fraction(sympy.together(c)) for c in coefs]
    den = sympy.lcm_list([d for _, d in nums_dens])
    polys = [sympy.cancel(c * den) for c in coefs]
    content = sympy.gcd_list(polys)
    return sympy.cancel(den / content)
