"""Fixtures for the aipoincare maths tests: the shipped example systems and small ones."""

from __future__ import annotations

import pathlib

import pytest
import sympy

import aipoincare

EXAMPLES = pathlib.Path(aipoincare.__file__).resolve().parent / "examples"


def example(name: str) -> aipoincare.System:
    """One of the shipped example systems (``lotka_volterra_3``, ``fluid_2d``, ...)."""
    return aipoincare.load_system(str(EXAMPLES / f"{name}.toml"))


@pytest.fixture(scope="session")
def lv() -> aipoincare.System:
    return example("lotka_volterra_3")


@pytest.fixture(scope="session")
def chem() -> aipoincare.System:
    return example("atmospheric_chemistry")


@pytest.fixture(scope="session")
def fluid2d() -> aipoincare.System:
    return example("fluid_2d")


@pytest.fixture(scope="session")
def fluid3d() -> aipoincare.System:
    return example("fluid_3d")


@pytest.fixture(scope="session")
def rossler() -> aipoincare.System:
    """Rossler system: no polynomial invariant at all."""
    x, y, z = sympy.symbols("x y z")
    a, b, c = sympy.Rational(1, 5), sympy.Rational(1, 5), sympy.Rational(57, 10)
    return aipoincare.System(variables=(x, y, z), equations=(-y - z, x + a * y, b + z * (x - c)),
                             name="Rossler")


@pytest.fixture(scope="session")
def pendulum() -> aipoincare.System:
    """Pendulum q' = p, p' = -sin(q): energy p**2/2 - cos(q)."""
    q, p = sympy.symbols("q p")
    return aipoincare.System(variables=(q, p), equations=(p, -sympy.sin(q)), name="pendulum")
