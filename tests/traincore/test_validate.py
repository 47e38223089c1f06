"""The argument checks: one message format, TypeError for a wrong kind, ValueError for a value."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from traincore import (
    Errors,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_type,
    replace_fields,
)


class _KindError(TypeError):
    pass


class _ValueError(ValueError):
    pass


def test_int_bounds_and_kinds():
    assert check_int(np.int64(3), "degree", ge=1, le=8) == 3
    assert type(check_int(np.int64(3), "degree")) is int
    with pytest.raises(ValueError, match=r"^The 'degree' of \[basis\] must be an integer from 1 "
                                         r"to 8; got 9\.$"):
        check_int(9, "degree", ge=1, le=8, where="of [basis]")
    with pytest.raises(TypeError, match=r"^The 'points' must be a positive integer; got float "
                                        r"2\.0; pass None for the default\.$"):
        check_int(2.0, "points", ge=1, fix="pass None for the default")
    with pytest.raises(TypeError, match="must be a non-negative integer; got bool True"):
        check_int(True, "seed", ge=0)
    with pytest.raises(ValueError, match="must be an integer of at least 2; got 1"):
        check_int(1, "n", ge=2)
    with pytest.raises(ValueError, match="must be an integer of at most 2; got 3"):
        check_int(3, "n", le=2)


def test_number_bounds_and_kinds():
    assert check_number(1, "scale", gt=0) == 1.0
    with pytest.raises(ValueError, match=r"'tol' must be a number in \(0, 1\); got 1\.0"):
        check_number(1.0, "tol", gt=0, lt=1)
    with pytest.raises(ValueError, match=r"must be a number from 0 to 1; got 1\.5"):
        check_number(1.5, "p", ge=0, le=1)
    with pytest.raises(ValueError, match="must be a finite number; got nan"):
        check_number(float("nan"), "x")
    with pytest.raises(ValueError, match="must be a positive number; got inf"):
        check_number(float("inf"), "scale", gt=0)
    with pytest.raises(TypeError, match="must be a positive number; got str 'big'"):
        check_number("big", "scale", gt=0)
    with pytest.raises(ValueError, match="must be a number above 2; got 2"):
        check_number(2, "x", gt=2)


def test_bool_choice_type():
    assert check_bool(False, "certify") is False
    with pytest.raises(TypeError, match="'certify' must be True or False; got int 1"):
        check_bool(1, "certify")
    assert check_choice(True, "exact", ("auto", True, False)) is True
    with pytest.raises(ValueError, match=r"must be one of 'auto', True, False; got 1"):
        check_choice(1, "exact", ("auto", True, False))  # 1 == True, but not the same kind
    with pytest.raises(TypeError, match="'basis' must be a BasisSpec; got int 3; build one"):
        check_type(3, "basis", str, "a BasisSpec", fix="build one")


def test_package_error_classes():
    errors = Errors(_KindError, _ValueError)
    with pytest.raises(_ValueError):
        check_int(0, "n", ge=1, errors=errors)
    with pytest.raises(_KindError):
        check_bool("x", "flag", errors=errors)


def test_replace_fields_merges_and_refuses_unknown_names():
    @dataclasses.dataclass(frozen=True)
    class Config:
        degree: int = 3
        seed: int = 0

        def __post_init__(self):
            check_int(self.degree, "degree", ge=1, le=8)

    cfg = Config(seed=4)
    assert replace_fields(cfg, {"degree": 5}, "discover()") == Config(degree=5, seed=4)
    assert replace_fields(cfg, {}, "discover()") is cfg
    with pytest.raises(TypeError, match=r"discover\(\) got the unknown setting\(s\) 'degre'; "
                                        r"the settings are the fields of Config: degree, seed"):
        replace_fields(cfg, {"degre": 5}, "discover()")
    with pytest.raises(ValueError, match="must be an integer from 1 to 8; got 9"):
        replace_fields(cfg, {"degree": 9}, "discover()")  # validated again
