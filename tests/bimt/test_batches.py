"""Minibatches, DataLoaders, custom losses and any spatial network in bimt.train; the
engines tested alone; bad input."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import bimt
import traincore
from bimt.batches import TensorBatches
from bimt.data import Loss

F64 = torch.float64


class _StopAt(traincore.Callback):
    def __init__(self, step: int) -> None:
        self.at = step

    def on_step_end(self, loop: traincore.Loop) -> None:
        if loop.step == self.at:
            loop.stop("test")


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


# --------------------------------------------------------------------------- engines alone
def _engine_grads(model, loss: Loss, x, y, engine_cls) -> torch.Tensor:
    opt = traincore.FlatAdamW(model, lr=1e-3)
    engine = engine_cls(model, opt, loss, bimt.Penalty(model, opt))
    metrics = engine.step(x, y, 0.05, 1.0, True)
    assert set(metrics) == {"train_loss", "connection_cost"}
    return opt.grad.clone(), float(metrics["train_loss"])


@pytest.mark.parametrize("case", ["regression", "classification", "custom", "embedding"])
def test_analytic_and_autograd_engines_take_the_same_step(case) -> None:
    g = torch.Generator().manual_seed(0)
    if case == "embedding":
        model = bimt.BioMLP([6, 9, 5], in_fold=2, embedding=(5, 3), seed=0).double()
        x = torch.randint(0, 5, (13, 2), generator=g)
    else:
        model = bimt.BioMLP([4, 9, 8, 3], seed=0, activation="gelu").double()
        x = torch.randn(13, 4, dtype=F64, generator=g)
    bimt.swap_neurons(model, "output", 0, 2)  # slot order differs from the original order
    if case in ("classification", "embedding"):
        y, loss = torch.randint(0, model.widths[-1], (13,), generator=g), Loss("classification")
    elif case == "regression":
        y, loss = torch.randn(13, 3, dtype=F64, generator=g), Loss("regression")
    else:
        y = torch.randn(13, 3, dtype=F64, generator=g)
        loss = Loss("custom", lambda pred, t: (pred - t).abs().mean() + pred[:, 0].pow(2).mean())
    ga, la = _engine_grads(copy.deepcopy(model), loss, x, y, bimt.AnalyticEngine)
    gb, lb = _engine_grads(copy.deepcopy(model), loss, x, y, bimt.AutogradEngine)
    assert torch.allclose(ga, gb, atol=1e-12, rtol=1e-10) and la == pytest.approx(lb, rel=1e-12)


def test_analytic_engine_refuses_other_networks(residual_net) -> None:
    model = residual_net()
    opt = traincore.FlatAdamW(model)
    with pytest.raises(TypeError, match="trains a bimt.BioMLP only; got ResidualNet"):
        bimt.AnalyticEngine(model, opt, Loss("regression"), bimt.Penalty(model, opt))
    with pytest.raises(ValueError, match="'analytic' engine trains a bimt.BioMLP only"):
        bimt.train(model, torch.zeros(4, 3), torch.zeros(4, 2), steps=1, engine="analytic")


# --------------------------------------------------------------------------- minibatches
def test_tensor_batches_visit_every_row_once_per_epoch() -> None:
    x = torch.arange(10.0)[:, None]
    src = TensorBatches(x, x, 4, seed=3)
    epoch = torch.cat([src.batch(s)[0] for s in range(3)]).flatten()
    assert sorted(epoch.tolist()) == list(range(10)) and src.per_epoch == 3
    again = TensorBatches(x, x, 4, seed=3)
    assert torch.equal(again.batch(4)[0], src.batch(4)[0])  # step -> rows, no state
    assert not torch.equal(src.order(0), src.order(1))
    assert not torch.equal(TensorBatches(x, x, 4, seed=4).order(0), src.order(0))


def test_minibatch_training_is_seeded(indep) -> None:
    x, y, xt, yt = indep
    kw = dict(steps=300, x_test=xt, y_test=yt, progress=False, batch_size=32, swap_every=50)
    runs = []
    for seed in (0, 0, 1):
        model = bimt.BioMLP([4, 12, 2], seed=0)
        h = bimt.train(model, x, y, seed=seed, **kw)
        runs.append((_weights(model), h))
    assert all(torch.equal(a, b) for a, b in zip(runs[0][0], runs[1][0], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(runs[0][0], runs[2][0], strict=True))
    full = bimt.BioMLP([4, 12, 2], seed=0)
    bimt.train(full, x, y, **{**kw, "batch_size": 100})  # >= rows: exactly full batch
    plain = bimt.BioMLP([4, 12, 2], seed=0)
    bimt.train(plain, x, y, **{**kw, "batch_size": None})
    assert all(torch.equal(a, b) for a, b in zip(_weights(full), _weights(plain), strict=True))
    assert runs[0][1].test_loss < 0.5


def _loaders(x, y):
    return {
        "tensors": (dict(x_train=x, y_train=y, batch_size=30), None),
        "DataLoader": (dict(x_train=DataLoader(TensorDataset(x, y), batch_size=30,
                                               shuffle=True)), None),
        "list": (dict(x_train=[(x[i:i + 25], y[i:i + 25]) for i in range(0, 100, 25)]), None),
    }


@pytest.mark.parametrize("source", ["tensors", "DataLoader", "list"])
def test_minibatch_resume_mid_epoch_is_bit_identical(indep, tmp_path, source) -> None:
    x, y, xt, yt = indep
    data, _ = _loaders(x, y)[source]
    kw = dict(steps=260, x_test=xt, y_test=yt, progress=False, swap_every=40, seed=3, **data)
    straight = bimt.BioMLP([4, 12, 2], seed=0)
    bimt.train(straight, **kw)
    first = bimt.BioMLP([4, 12, 2], seed=0)
    h1 = bimt.train(first, checkpoint_dir=tmp_path, callbacks=[_StopAt(131)], **kw)
    assert h1.status == "stopped: test"  # 131 = mid-epoch for 4-batch epochs
    again = bimt.BioMLP([4, 12, 2], seed=0)
    h2 = bimt.train(again, checkpoint_dir=tmp_path, **kw)
    assert h2.resumed_from == 131 and h2.steps == 260
    for a, b in zip(_weights(again), _weights(straight), strict=True):
        assert torch.equal(a, b)


def test_any_spatial_network_trains_with_a_custom_loss(residual_net, indep) -> None:
    x, y, xt, yt = indep
    model = residual_net(d_in=4, seed=0)
    calls = []

    def huber(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        calls.append(len(pred))
        return torch.nn.functional.huber_loss(pred, target, delta=0.5)

    h = bimt.train(model, x, y, steps=200, x_test=xt, y_test=yt, loss=huber, batch_size=25,
                   progress=False, swap_every=50, eval_every=50)
    assert h.engine == "autograd" and h.kind == "custom" and h.swaps > 0
    assert 25 in calls and 100 in calls  # training batches and the test set
    assert h.test_loss == pytest.approx(float(huber(model(xt), yt).detach()))
    assert len(h["test_loss"]) == 4 and h.test_loss < h["test_loss"][0]


def test_loader_of_token_batches_for_classification() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 5, (80, 2), generator=g)
    y = (x[:, 0] + x[:, 1]) % 5
    model = bimt.BioMLP([8, 16, 5], in_fold=2, embedding=(5, 4), seed=0)
    loader = DataLoader(TensorDataset(x, y), batch_size=20, shuffle=True)
    h = bimt.train(model, loader, steps=600, x_test=x, y_test=y, lam=1e-4, progress=False)
    assert h.kind == "classification" and h.engine == "analytic" and h.test_accuracy > 0.8


# --------------------------------------------------------------------------- bad input
def test_bad_training_input_gets_one_clear_line(residual_net) -> None:
    model = bimt.BioMLP([4, 5, 2], seed=0)
    x, y = torch.rand(20, 4), torch.rand(20, 2)
    with pytest.raises(TypeError, match=r"The 'model' \(Linear\) has no BioLinear layer"):
        bimt.train(torch.nn.Linear(4, 2), x, y, steps=1)
    with pytest.raises(ValueError, match=r"cannot take 'x_train' of shape \(20, 2\)"):
        bimt.train(residual_net(d_in=3), x[:, :2], y, steps=1)
    with pytest.raises(ValueError, match=r"output width 2 does not match 'y_train' with shape "
                                         r"\(20, 3\)"):
        bimt.train(residual_net(d_in=4), x, torch.rand(20, 3), steps=1)
    empty = DataLoader(TensorDataset(x[:0], y[:0]), batch_size=4)
    with pytest.raises(ValueError, match="The training data yielded no batches"):
        bimt.train(model, empty, steps=1)
    bad = [(x[:5], y[:5]), (x[5:10], y[5:10]), (x[10:15] * float("nan"), y[10:15])]
    with pytest.raises(ValueError, match="Batch 2 of epoch 0 of the training data: The "
                                         "'x_train' contains NaN or Inf values"):
        bimt.train(model, bad, steps=5, progress=False)
    with pytest.raises(ValueError, match="Batch 0 of epoch 0 .* input width 4 does not match"):
        bimt.train(model, [(x[:, :3], y)], steps=1)
    with pytest.raises(TypeError, match="must be re-iterable"):
        bimt.train(model, ((x, y) for _ in range(3)), steps=1)
    with pytest.raises(TypeError, match="must be a pair \\(x, y\\); batch 0 of epoch 0 is a "
                                        "Tensor"):
        bimt.train(model, DataLoader(x, batch_size=4), steps=1)
    with pytest.raises(ValueError, match="'batch_size' applies to array data"):
        bimt.train(model, [(x, y)], steps=1, batch_size=4)
    with pytest.raises(ValueError, match="'batch_size' of BIMTConfig must be a positive integer"):
        bimt.train(model, x, y, steps=1, batch_size=0)
    with pytest.raises(TypeError, match="'loss' must be a callable"):
        bimt.train(model, x, y, steps=1, loss="mse")
    with pytest.raises(TypeError, match=r"'loss' must return a scalar tensor; got Tensor\(2, 2\)"):
        bimt.train(model, x, y, steps=1, loss=lambda p, t: p - t)
    with pytest.raises(ValueError, match="The 'loss' failed on the model's output"):
        bimt.train(model, x, y[:, :1].long(), steps=1, loss=lambda p, t: p @ t)
