"""Neuron coordinates (bimt.geometry) and the task registry (bimt.tasks)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import bimt
from bimt.geometry import (
    distance_matrix,
    layer_coordinates,
    layer_size,
    normalize_shape,
)
from bimt.tasks import P_MOD


# --------------------------------------------------------------------------- geometry
def test_1d_row_is_evenly_spaced_in_the_unit_interval() -> None:
    c = layer_coordinates(5)
    assert c.shape == (5, 2) and c.dtype == torch.float32
    assert torch.allclose(c[:, 0], torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9]))
    assert torch.all(c[:, 1] == 0.5)
    gaps = c[1:, 0] - c[:-1, 0]
    assert torch.allclose(gaps, torch.full((4,), 0.2))


def test_2d_grid_is_row_major_inside_the_unit_square() -> None:
    c = layer_coordinates((2, 3))
    assert c.shape == (6, 2)
    expected = [[1 / 6, 0.25], [0.5, 0.25], [5 / 6, 0.25],
                [1 / 6, 0.75], [0.5, 0.75], [5 / 6, 0.75]]
    assert torch.allclose(c, torch.tensor(expected))
    assert bool(((c > 0) & (c < 1)).all())


def test_folded_layer_repeats_positions_fold_major() -> None:
    c = layer_coordinates(3, fold=2)
    assert c.shape == (6, 2) and torch.equal(c[:3], c[3:])
    assert torch.equal(c[:3], layer_coordinates(3))


def test_distance_matrix_against_a_loop() -> None:
    a, b = layer_coordinates((2, 2)), layer_coordinates(3)
    d = distance_matrix(a, b)
    assert d.shape == (4, 3)
    for i in range(4):
        for j in range(3):
            dx, dz = (a[i] - b[j]).tolist()
            assert float(d[i, j]) == pytest.approx(math.hypot(dx, dz), abs=1e-7)


def test_shapes_are_validated() -> None:
    assert normalize_shape(7) == 7 and normalize_shape([3, 4]) == (3, 4)
    assert layer_size(7) == 7 and layer_size((3, 4)) == 12
    with pytest.raises(ValueError, match="must be a positive integer; got 0"):
        normalize_shape(0)
    with pytest.raises(TypeError, match="got True"):
        normalize_shape(True)
    for bad in ((3, 0), (2, 3, 4), "8x8", 2.5, (2, 1.5)):
        with pytest.raises(TypeError, match="positive integer or a pair"):
            normalize_shape(bad)


def test_biomlp_uses_the_geometry_for_every_layer() -> None:
    model = bimt.BioMLP([(8, 8), (10, 10), 10], seed=0)
    assert torch.equal(model.layers[0].in_coordinates, layer_coordinates((8, 8)))
    assert torch.equal(model.layers[1].in_coordinates, layer_coordinates((10, 10)))
    assert torch.equal(model.layers[1].out_coordinates, layer_coordinates(10))
    assert torch.equal(model.layers[0].distance,
                       distance_matrix(layer_coordinates((10, 10)), layer_coordinates((8, 8))))


# --------------------------------------------------------------------------- tasks
def test_registry_lists_every_task_with_a_description() -> None:
    assert list(bimt.TASKS) == ["independence", "feature-sharing", "compositionality",
                                "two-moons", "modular-addition", "permutation-s4", "digits",
                                "two-streams", "in-context", "in-context-baseline"]
    for name, task in bimt.TASKS.items():
        assert task.name == name and task.description and task.paper
        assert task.kind in ("regression", "classification") and task.steps > 0
        bimt.BIMTConfig(**task.overrides)  # every override is a valid setting
    with pytest.raises(ValueError, match="Unknown task 'chess'; choose one of: independence"):
        bimt.get_task("chess")


@pytest.mark.parametrize("name", list(bimt.TASKS))
def test_task_data_fits_its_network_and_is_seeded(name) -> None:
    task = bimt.get_task(name)
    data = task.make(0)
    model = bimt.build_model(task, seed=0)
    out = model(data.x_test[:5])
    if task.loss is not None:  # a task's own loss takes its outputs and targets
        assert task.loss(out, data.y_test[:5]).shape == ()
    elif task.kind == "classification":
        assert data.y_train.dtype == torch.long and out.shape == (5, model.widths[-1])
        assert int(data.y_train.max()) < model.widths[-1]
    else:
        assert data.y_train.dtype == torch.float32 and out.shape == data.y_test[:5].shape
    again = task.make(0)
    assert torch.equal(again.x_train, data.x_train) and torch.equal(again.y_test, data.y_test)
    assert not torch.equal(task.make(1).x_train, data.x_train)
    assert all(torch.equal(p, q) for p, q in zip(bimt.build_model(task, 0).parameters(),
                                                  model.parameters(), strict=True))


def test_formula_tasks_compute_the_paper_formulas() -> None:
    x = bimt.get_task("independence").make(0).x_train.double()
    y = bimt.get_task("independence").make(0).y_train.double()
    assert x.shape == (100, 4) and float(x.abs().max()) <= 1
    assert torch.allclose(y[:, 0], (x[:, 0] + x[:, 2]) ** 3, atol=1e-5)
    assert torch.allclose(y[:, 1], x[:, 1] ** 2 + torch.sin(math.pi * x[:, 3]), atol=1e-5)
    d = bimt.get_task("feature-sharing").make(0)
    x, y = d.x_test.double(), d.y_test.double()
    assert torch.allclose(y, torch.cumsum(x ** 2, 1), atol=1e-5)
    d = bimt.get_task("compositionality").make(0)
    x, y = d.x_train.double(), d.y_train.double()
    expected = torch.sqrt((x[:, 0] - x[:, 1]) ** 2 + (x[:, 2] - x[:, 3]) ** 2)
    assert torch.allclose(y[:, 0], expected, atol=1e-5)


def test_group_tasks_split_the_full_table() -> None:
    d = bimt.get_task("modular-addition").make(0)
    pairs = torch.cat([d.x_train, d.x_test])
    labels = torch.cat([d.y_train, d.y_test])
    assert len(pairs) == P_MOD**2 and len({tuple(p) for p in pairs.tolist()}) == P_MOD**2
    assert torch.equal(labels, pairs.sum(1) % P_MOD)
    assert len(d.x_train) == round(0.8 * P_MOD**2)
    d = bimt.get_task("permutation-s4").make(0)
    import itertools

    perms = list(itertools.permutations(range(4)))
    for (a, b), c in zip(d.x_train[:50].tolist(), d.y_train[:50].tolist(), strict=True):
        assert perms[c] == tuple(perms[a][perms[b][k]] for k in range(4))


def test_classification_data_sets() -> None:
    d = bimt.get_task("two-moons").make(0)
    assert d.x_train.shape == (500, 2) and set(d.y_train.tolist()) == {0, 1}
    assert not torch.equal(d.x_train, d.x_test)
    d = bimt.get_task("digits").make(0)
    assert d.x_train.shape[1] == 64 and float(d.x_train.max()) <= 1.0
    assert len(d.x_train) + len(d.x_test) == 1797
    assert np.isin(d.y_test.numpy(), np.arange(10)).all()
