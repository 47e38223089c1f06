"""The ``two-streams`` task: one sequence carrying two independent sub-tasks, for a BioRNN.

Every step ``t`` of a sequence has four inputs, uniform in [-1, 1]: ``x1, x2`` belong to
stream A and ``x3, x4`` to stream B, and the network answers for each stream separately,
at every step:

- ``y1_t = (1/10) * sum_{s <= t} (x1_s - x2_s)``: stream A accumulates (a running sum, an
  integrator; the 1/10 keeps the answer in the range of a tanh neuron);
- ``y2_t = (x3_{t-1} + x4_{t-2}) / 2``: stream B remembers (its inputs one and two steps
  back; zero before the sequence starts).

Nothing links the streams, so a network with the computation laid out in space needs two
modules, ``{x1, x2} -> y1`` and ``{x3, x4} -> y2``, each a patch of recurrently connected
hidden neurons; without the connection cost the RNN mixes them in one tangle. The test
loss is the mean squared error over all steps of the test sequences.

References
----------
Liu, Khona, Fiete & Tegmark, "Growing Brains", arXiv:2310.07711 (modules in RNNs trained
on compositional tasks).
"""

from __future__ import annotations

import numpy as np
import torch

import traincore

from .rnn import BioRNN

__all__ = ["STEPS_PER_SEQUENCE", "two_streams_targets", "two_streams_data", "two_streams_model"]

#: Time steps of every sequence.
STEPS_PER_SEQUENCE = 10
#: Sequences in the training and in the test set.
N_SEQUENCES = 200
#: Hidden neurons of the task's network: a 4 x 4 grid.
HIDDEN = (4, 4)


def two_streams_targets(x: np.ndarray) -> np.ndarray:
    """The two answers at every step.

    Parameters
    ----------
    x : array, shape (n, time, 4)

    Returns
    -------
    array, shape (n, time, 2)
        ``y1`` (stream A's running sum) and ``y2`` (stream B's remembered inputs).

    Examples
    --------
    >>> x = np.zeros((1, 3, 4)); x[0, 0] = [1.0, 0.0, 0.4, 0.2]
    >>> two_streams_targets(x)[0].round(2).tolist()
    [[0.1, 0.0], [0.1, 0.2], [0.1, 0.1]]
    """
    y1 = np.cumsum(x[..., 0] - x[..., 1], axis=1) / 10
    back1 = np.zeros_like(x[..., 2])
    back1[:, 1:] = x[:, :-1, 2]
    back2 = np.zeros_like(x[..., 3])
    back2[:, 2:] = x[:, :-2, 3]
    return np.stack([y1, (back1 + back2) / 2], -1)


def two_streams_data(seed: int) -> tuple[torch.Tensor, ...]:
    """Train and test sequences for ``seed``: ``(x_train, y_train, x_test, y_test)``.

    ``x`` has shape (200, 10, 4), ``y`` (200, 10, 2), float32.
    """
    rng = traincore.numpy_rng(seed)
    shape = (N_SEQUENCES, STEPS_PER_SEQUENCE, 4)
    xtr, xte = rng.uniform(-1, 1, shape), rng.uniform(-1, 1, shape)
    t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return t(xtr), t(two_streams_targets(xtr)), t(xte), t(two_streams_targets(xte))


def two_streams_model(seed: int) -> BioRNN:
    """The task's network: 4 inputs, 16 hidden neurons on a 4 x 4 grid, 2 outputs, tanh."""
    return BioRNN(4, HIDDEN, 2, activation="tanh", seed=seed)
