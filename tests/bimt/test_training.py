"""Training: analytic step vs autograd, schedules, bad input, checkpoints and resume."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import bimt
import traincore


@pytest.mark.parametrize("widths,activation,classify", [
    ([4, 20, 20, 2], "silu", False),
    ([(2, 2), 6, 5, 3], "relu", True),
    ([4, 7, 2], "tanh", False),
])
def test_analytic_step_matches_autograd(indep, widths, activation, classify) -> None:
    x, y, xt, yt = indep
    if classify:
        y, yt = (y[:, 0] > 0).long() + (y[:, 1] > 0.5).long(), (yt[:, 0] > 0).long()
    a = bimt.BioMLP(widths, activation=activation, seed=0)
    b = copy.deepcopy(a)
    # 300 steps with bias phase, lambda phases and two swap rounds; longer runs drift apart
    # only by float rounding amplified at kinks (relu, |w| near 0)
    kw = dict(steps=300, x_test=xt, y_test=yt, progress=False, swap_every=100, lam=1e-2,
              snapshot_every=0)
    ha = bimt.train(a, x, y, engine="analytic", **kw)
    hb = bimt.train(b, x, y, engine="autograd", **kw)
    assert ha.engine == "analytic" and hb.engine == "autograd"
    assert ha.swaps == hb.swaps and ha.swaps > 0
    assert torch.equal(a.in_perm, b.in_perm) and torch.equal(a.out_perm, b.out_perm)
    diff = torch.cat([(p - q).abs().flatten() for p, q in
                      zip(a.parameters(), b.parameters(), strict=True)])
    # weights that sit at |w| ~ lr flip sign(w) on rounding noise; all others agree to 1e-5
    assert int((diff > 1e-5).sum()) <= max(2, len(diff) // 100) and diff.max() < 5e-3
    assert ha.test_loss == pytest.approx(hb.test_loss, rel=1e-3)
    assert (ha.test_accuracy is not None) == classify


def test_one_analytic_gradient_equals_autograd_of_the_full_loss(indep) -> None:
    x, y, _, _ = indep
    a = bimt.BioMLP([4, 9, 8, 2], seed=3)
    ref = copy.deepcopy(a)
    lam = 0.05
    bimt.train(a, x, y, steps=1, lam=lam, lr=1e-3, swap_io=False, progress=False,
               snapshot_every=0, bias_cost_from=0.0, lam_factors=(1.0, 1.0, 1.0))
    loss = (ref(x) - y).pow(2).mean() + lam * bimt.connection_cost(ref, bias=True)
    grads = torch.autograd.grad(loss, list(ref.parameters()))
    for p, q, g in zip(a.parameters(), ref.parameters(), grads, strict=True):
        # first Adam step moves every coordinate by -lr * sign(g) (up to eps)
        expected = q.detach() - 1e-3 * torch.sign(g)
        assert torch.allclose(p, expected, atol=1e-6)


def test_independence_learns_and_logs(indep) -> None:
    x, y, xt, yt = indep
    model = bimt.BioMLP([4, 20, 20, 2], seed=0)
    h = bimt.train(model, x, y, steps=2000, x_test=xt, y_test=yt, progress=False,
                   analysis_every=1000)
    assert h.test_loss < 0.1
    assert h["test_loss"][-1] == h.test_loss and len(h["test_loss"]) == 10
    assert {"modules", "modularity", "active_neurons", "lam"} <= set(h.rows[-1])
    assert len(h.snapshots) == 11 and h.snapshots[0]["step"] == 0
    assert h.swap_seconds < h.seconds
    assert '"test_loss"' in h.to_json()


def test_lambda_schedule_and_config_validation() -> None:
    f = bimt.lambda_schedule(bimt.BIMTConfig(steps=8, lam=2.0))
    assert [f(s) for s in range(8)] == [2.0, 2.0, 20.0, 20.0, 20.0, 20.0, 2.0, 2.0]
    with pytest.raises(ValueError, match="'lr' of BIMTConfig must be a positive number"):
        bimt.BIMTConfig(lr=0)
    with pytest.raises(ValueError, match="'swap_every' of BIMTConfig must be a positive integer"):
        bimt.BIMTConfig(swap_every=0)
    with pytest.raises(ValueError, match="'task' of BIMTConfig must be one of"):
        bimt.BIMTConfig(task="ranking")
    with pytest.raises(TypeError, match="unknown setting"):
        bimt.train(bimt.BioMLP([4, 2]), torch.zeros(3, 4), torch.zeros(3, 2), learning=1)


def test_cosine_lr_decay_is_scheduled_logged_and_default_off(indep) -> None:
    f = bimt.lr_schedule(bimt.BIMTConfig(steps=4, lr=1.0, lr_decay="cosine"))
    assert [round(f(s), 6) for s in range(4)] == [1.0, 0.853553, 0.5, 0.146447]
    assert bimt.lr_schedule(bimt.BIMTConfig(steps=4, lr=0.5))(3) == 0.5
    assert "lr_decay" not in bimt.BIMTConfig().to_dict()  # older checkpoints still resume
    assert bimt.BIMTConfig(lr_decay="cosine").to_dict()["lr_decay"] == "cosine"
    with pytest.raises(ValueError, match="'lr_decay' of BIMTConfig must be one of"):
        bimt.BIMTConfig(lr_decay="step")
    x, y, xt, yt = indep
    kw = dict(steps=60, x_test=xt, y_test=yt, progress=False, log_every=20, snapshot_every=0,
              swap_every=1000)
    constant = bimt.BioMLP([4, 6, 2], seed=0)
    decayed = copy.deepcopy(constant)
    h0 = bimt.train(constant, x, y, **kw)
    h1 = bimt.train(decayed, x, y, lr_decay="cosine", **kw)
    assert "lr" not in h0.rows[-1]
    assert h1["lr"] == pytest.approx([2e-3 * 0.5 * (1 + math.cos(math.pi * s / 60))
                                      for s in (19, 39, 59)])
    # the first step runs at the full rate, later ones slower: the weights part after step 1
    one = bimt.BioMLP([4, 6, 2], seed=0)
    one_decayed = copy.deepcopy(one)
    bimt.train(one, x, y, **{**kw, "steps": 1})
    bimt.train(one_decayed, x, y, lr_decay="cosine", **{**kw, "steps": 1})
    assert all(torch.equal(p, q) for p, q in zip(one.parameters(), one_decayed.parameters(),
                                                 strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(constant.parameters(),
                                                     decayed.parameters(), strict=True))


def test_bad_data_is_refused_with_clear_messages() -> None:
    model = bimt.BioMLP([4, 5, 2], seed=0)
    x, y = torch.rand(10, 4), torch.rand(10, 2)
    with pytest.raises(ValueError, match=r"input width 4 does not match 'x_train' with 3"):
        bimt.train(model, x[:, :3], y, steps=1)
    with pytest.raises(ValueError, match=r"output width 2 does not match 'y_train'"):
        bimt.train(model, x, y[:, :1], steps=1)
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="'x_train' contains NaN or Inf"):
        bimt.train(model, bad, y, steps=1)
    with pytest.raises(ValueError, match="'y_test' contains NaN or Inf"):
        bimt.train(model, x, y, steps=1, x_test=x, y_test=y * float("inf"))
    with pytest.raises(ValueError, match=r"labels in 'y_train' must be in \[0, 2\)"):
        bimt.train(model, x, torch.arange(10), steps=1)
    with pytest.raises(ValueError, match="one row per row"):
        bimt.train(model, x, y[:5], steps=1)
    with pytest.raises(TypeError, match="must be a torch tensor or numpy array"):
        bimt.train(model, "data", y, steps=1)
    with pytest.raises(traincore.DeviceError):
        bimt.train(model, x, y, steps=1, device="tpu")


class _StopAt(traincore.Callback):
    def __init__(self, step: int) -> None:
        self.at = step

    def on_step_end(self, loop: traincore.Loop) -> None:
        if loop.step == self.at:
            loop.stop("test")


def test_resume_gives_identical_weights(indep, tmp_path) -> None:
    x, y, xt, yt = indep
    kw = dict(steps=500, x_test=xt, y_test=yt, progress=False, swap_every=100)
    straight = bimt.BioMLP([4, 20, 20, 2], seed=0)
    bimt.train(straight, x, y, **kw)
    first = bimt.BioMLP([4, 20, 20, 2], seed=0)
    h1 = bimt.train(first, x, y, checkpoint_dir=tmp_path, callbacks=[_StopAt(250)], **kw)
    assert h1.status == "stopped: test" and (tmp_path / "checkpoint.pt").exists()
    again = bimt.BioMLP([4, 20, 20, 2], seed=0)  # a fresh process would start like this
    h2 = bimt.train(again, x, y, checkpoint_dir=tmp_path, **kw)
    assert h2.resumed_from == 250 and h2.steps == 500
    assert torch.equal(again.in_perm, straight.in_perm)
    for p, q in zip(again.parameters(), straight.parameters(), strict=True):
        assert torch.equal(p, q)
    assert h2.snapshots[-1]["step"] == 500 and h2.snapshots[0]["step"] == 0


def test_corrupt_checkpoint_is_detected_not_loaded(indep, tmp_path) -> None:
    x, y, _, _ = indep
    (tmp_path / "checkpoint.pt").write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    model = bimt.BioMLP([4, 20, 20, 2], seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(traincore.CheckpointError, match="corrupt or unreadable"):
        bimt.train(model, x, y, steps=10, checkpoint_dir=tmp_path, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))


def test_embedding_model_trains() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 5, (60, 2), generator=g)
    y = (x[:, 0] + x[:, 1]) % 5
    model = bimt.BioMLP([8, 16, 5], in_fold=2, embedding=(5, 4), seed=0)
    h = bimt.train(model, x, y, steps=400, x_test=x, y_test=y, progress=False, lam=1e-4)
    assert h.engine == "analytic" and h.kind == "classification"
    assert h.test_accuracy > 0.9


def test_embedding_analytic_step_matches_autograd() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 7, (50, 2), generator=g)
    y = (x[:, 0] * x[:, 1]) % 7
    a = bimt.BioMLP([8, 12, 7], in_fold=2, embedding=(7, 4), seed=0)
    b = copy.deepcopy(a)
    kw = dict(steps=300, x_test=x, y_test=y, progress=False, swap_every=100, lam=1e-3,
              snapshot_every=0)
    ha = bimt.train(a, x, y, engine="analytic", **kw)
    hb = bimt.train(b, x, y, engine="autograd", **kw)
    assert ha.swaps == hb.swaps and ha.swaps > 0 and torch.equal(a.in_perm, b.in_perm)
    diff = torch.cat([(p - q).abs().flatten() for p, q in
                      zip(a.parameters(), b.parameters(), strict=True)])
    assert int((diff > 1e-5).sum()) <= max(2, len(diff) // 100) and diff.max() < 5e-3
    assert torch.allclose(a.embedding.weight, b.embedding.weight, atol=1e-5)


@pytest.mark.slow
def test_independence_full_run_reproduces_the_paper() -> None:
    """20000 paper-default steps: test MSE below the paper's 7.4e-3 and the two modules
    {x1, x3} -> y1, {x2, x4} -> y2 at every pruning threshold from 1% to 10%."""
    data = bimt.TASKS["independence"].make(0)
    model = bimt.build_model("independence", 0)
    h = bimt.train(model, data.x_train, data.y_train, x_test=data.x_test, y_test=data.y_test,
                   progress=False)
    assert h.steps == 20000 and h.test_loss < 7.4e-3
    for threshold in (0.01, 0.02, 0.05, 0.1):
        found = [(set(m.inputs), set(m.outputs)) for m in bimt.modules(model, threshold)]
        assert found == [({0, 2}, {0}), ({1, 3}, {1})], threshold


def test_numpy_inputs_and_task_detection() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (40, 2)).astype(np.float32)
    labels = (x[:, 0] > 0).astype(np.int64)
    model = bimt.BioMLP([2, 6, 2], seed=0)
    h = bimt.train(model, x, labels, steps=200, x_test=x, y_test=labels, progress=False)
    assert h.kind == "classification" and h.test_accuracy > 0.9
    h = bimt.train(bimt.BioMLP([2, 6, 1], seed=0), x, x[:, 0] * 2.0, steps=20, progress=False)
    assert h.kind == "regression" and h.test_loss is None and h.test_accuracy is None


def test_swap_moments_switch_permutes_or_leaves_adam_state(indep) -> None:
    """Default: the swap carries the Adam moments along; ``swap_moments=False`` (the research
    code's behaviour) leaves them at the old slots, so the two runs differ after a swap."""
    x, y, _, _ = indep
    runs = {}
    for flag in (True, False):
        model = bimt.BioMLP([4, 20, 20, 2], seed=0)
        h = bimt.train(model, x, y, steps=201, swap_every=100, lam=1e-2, progress=False,
                       snapshot_every=0, swap_moments=flag)
        runs[flag] = (h.swaps, torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert runs[True][0] > 0
    assert not torch.allclose(runs[True][1], runs[False][1])
    with pytest.raises(TypeError, match="'swap_moments' of BIMTConfig must be True or False"):
        bimt.BIMTConfig(swap_moments=1)


def test_compositionality_uses_the_published_lambda_factors() -> None:
    task = bimt.tasks.get_task("compositionality")
    assert task.overrides["lam_factors"] == (1.0, 3.0, 3.0)
    f = bimt.lambda_schedule(bimt.BIMTConfig(steps=8, lam=1.0, **task.overrides))
    assert [f(s) for s in range(8)] == [1.0, 1.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]
