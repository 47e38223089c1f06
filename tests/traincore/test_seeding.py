import random

import numpy as np
import pytest
import torch

from traincore import get_rng_state, numpy_rng, seed_everything, set_rng_state, torch_generator


def _draw():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_seed_everything_reproduces_all_three():
    seed_everything(123)
    a = _draw()
    seed_everything(123)
    assert _draw() == a
    seed_everything(124)
    assert _draw() != a


def test_rng_state_roundtrip_through_checkpoint_format(tmp_path):
    from traincore import load_checkpoint, save_checkpoint

    seed_everything(5)
    np.random.randn(3)  # leave numpy with a cached gaussian
    state = get_rng_state()
    expected = _draw()
    save_checkpoint(tmp_path / "c.pt", {"rng": state})
    _draw()
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert _draw() == expected


def test_explicit_generators():
    assert numpy_rng(3).integers(1 << 30) == numpy_rng(3).integers(1 << 30)
    a = torch.rand(3, generator=torch_generator(7))
    assert torch.equal(a, torch.rand(3, generator=torch_generator(7)))


@pytest.mark.parametrize("bad,exc", [(-1, ValueError), (1.5, TypeError), (True, TypeError)])
def test_bad_seed(bad, exc):
    with pytest.raises(exc, match="seed"):
        seed_everything(bad)
