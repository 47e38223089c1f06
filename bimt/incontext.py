"""In-context linear regression, the paper's transformer task.

Each sequence has its own weight vector ``w`` (drawn fresh per sequence) and holds
``(x_1, y_1, x_2, y_2, ..., x_T)`` with ``y_t = w . x_t``; the transformer must predict
``y_T`` at the last token from the examples before it, so it has to infer ``w`` in context.
Tokens have ``d + 1`` features: an x token is ``(x, 0)``, a y token ``(0, ..., 0, y)``. The
targets are ``y_T`` alone, and the loss (and the reported test loss) is the mean squared
error of the last token's output: :func:`last_token_mse`.

The paper's settings: ``d = 1``, ``T = 2`` (three tokens ``x_1, y_1, x_2``), a transformer
with ``n_embed = 32`` and 2 layers, batches of 64, 40000 steps. Inputs and weights are
uniform in [-1, 1] here; the training set holds 2560000 sequences, so that each batch of the
40000 steps of 64 is fresh data (a fixed set of 100000 sequences, visited 2.6 times each,
ended with a worse test error: docs/benchmarks.md), and the test set holds 1000 other
sequences.

References
----------
Liu, Gan & Tegmark, arXiv:2305.08746, section 3.4.
"""

from __future__ import annotations

import torch

import traincore

from .transformer import BioTransformer

__all__ = ["incontext_sequences", "incontext_data", "incontext_model", "last_token_mse",
           "D_IN", "T_EXAMPLES", "N_TRAIN", "N_TEST"]

D_IN = 1            # paper: d = 1
T_EXAMPLES = 2      # paper: T = 2 (x1, y1, x2 -> y2)
N_TRAIN = 2_560_000  # 40000 steps x 64: each training sequence is seen once
N_TEST = 1_000


def incontext_sequences(n: int, d: int = D_IN, t: int = T_EXAMPLES, seed: int = 0
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sequences of in-context linear regression.

    Parameters
    ----------
    n : int
        Number of sequences (each with its own ``w``).
    d : int
        Dimension of ``x``.
    t : int
        Examples per sequence, the last one without its ``y``.
    seed : int

    Returns
    -------
    x : Tensor, shape (n, 2 t - 1, d + 1), float32
        Tokens ``x_1, y_1, ..., x_t``.
    y : Tensor, shape (n, 1), float32
        ``y_t = w . x_t``, the target of the last token.

    Examples
    --------
    >>> x, y = incontext_sequences(2, d=1, t=2, seed=0)
    >>> x.shape, y.shape
    (torch.Size([2, 3, 2]), torch.Size([2, 1]))
    >>> w = x[:, 1, 1] / x[:, 0, 0]        # y1 / x1 recovers each sequence's w
    >>> bool(torch.allclose(w * x[:, 2, 0], y[:, 0], atol=1e-5))
    True
    """
    for name, value in (("n", n), ("d", d), ("t", t)):
        traincore.check_int(value, name, ge=1, where="of the in-context sequences")
    traincore.check_memory(4 * n * (2 * t - 1) * (d + 1), f"{n} in-context sequences",
                           "ask for fewer sequences")
    rng = traincore.numpy_rng(seed)
    w = rng.uniform(-1, 1, (n, 1, d))
    xs = rng.uniform(-1, 1, (n, t, d))
    ys = (xs * w).sum(-1)  # (n, t)
    tokens = torch.zeros(n, 2 * t - 1, d + 1, dtype=torch.float64)
    tokens[:, 0::2, :d] = torch.from_numpy(xs)
    tokens[:, 1::2, d] = torch.from_numpy(ys[:, :-1])
    return tokens.float(), torch.from_numpy(ys[:, -1:]).float()


def incontext_data(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train and test sets of the ``in-context`` task: ``x_train, y_train, x_test, y_test``
    (the test set is drawn from another seed stream, so the two never share a ``w``)."""
    x, y = incontext_sequences(N_TRAIN, seed=seed)
    xt, yt = incontext_sequences(N_TEST, seed=seed + 1_000_003)
    return x, y, xt, yt


def incontext_model(seed: int) -> BioTransformer:
    """The paper's transformer for ``d = 1``: 2 inputs per token, 1 output, ``n_embed``
    32, one head, 2 layers."""
    return BioTransformer(D_IN + 1, 1, n_embed=32, n_head=1, n_layer=2,
                          max_len=2 * T_EXAMPLES - 1, seed=seed)


def last_token_mse(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the last token's output against ``y``.

    Parameters
    ----------
    pred : Tensor, shape (batch, tokens, out_dim)
    y : Tensor, shape (batch, out_dim)

    Examples
    --------
    >>> last_token_mse(torch.zeros(2, 3, 1), torch.ones(2, 1))
    tensor(1.)
    """
    return (pred[:, -1] - y).pow(2).mean()
