"""BioTransformer: a decoder-only transformer whose neurons sit in the plane.

Every matrix is a :class:`bimt.BioLinear`, and the network describes itself to
:mod:`bimt.spatial`, so the connection cost, the swap search and the swaps, the graph, the
modules, the pictures and the explorer all work on it unchanged. Neuron groups (each a row
of neurons evenly spaced in [0, 1]):

=============  ==========  ============================================================
group          kind        tensors a swap of two of its neurons permutes
=============  ==========  ============================================================
``input``      input       columns of ``embed``, the input permutation ``in_perm``
``residual``   residual    rows of ``embed`` and every ``proj`` / ``fc2`` (+ biases),
                           columns of every ``qk``, ``v``, ``fc1`` and of ``unembed``,
                           every LayerNorm weight and bias, the columns of ``pos``
``qk{l}``      attn        rows of block ``l``'s ``qk`` (q and k together) and its bias
``v{l}``       attn        rows of block ``l``'s ``v`` (+ bias), columns of its ``proj``
``mlp{l}``     mlp         rows of block ``l``'s ``fc1`` (+ bias), columns of its ``fc2``
``output``     output      rows of ``unembed`` (+ bias), the output permutation ``out_perm``
=============  ==========  ============================================================

Attention groups swap only inside one head (``head_size``): permuting the dimensions of a
head in q and k together leaves every ``q . k`` unchanged, and in v together with the
output projection's columns leaves the head's contribution unchanged. The residual stream
is one group shown as several rows (after the embedding, after each attention and each
MLP), joined by identity links; its neurons permute in every tensor that reads or writes
the stream (see the concepts page, "Residual streams").

References
----------
Liu, Gan & Tegmark, "Seeing is believing: brain-inspired modular training for mechanistic
interpretability", arXiv:2305.08746, section 3.4 (in-context linear regression).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import traincore
from traincore.validate import check_choice, check_int

from .geometry import layer_coordinates
from .layers import ACTIVATIONS, BioLinear
from .spatial import Group, Link, Row, Spatial, Touch, Wire

__all__ = ["BioTransformer", "TransformerBlock"]

_WHERE = "of BioTransformer"


class TransformerBlock(nn.Module):
    """One pre-LayerNorm decoder block: causal multi-head attention, then an MLP, each added
    to the residual stream.

    Parameters
    ----------
    n_embed, n_head, mlp_hidden : int
    activation : str
        One of :data:`bimt.ACTIVATIONS`, used in the MLP.
    generator : torch.Generator, optional

    Attributes
    ----------
    ln1, ln2 : LayerNorm over the stream
    qk : BioLinear, stream -> (q, k), shape (2 * n_embed, n_embed): q rows first, then k
    v, proj : BioLinear, stream -> values -> stream
    fc1, fc2 : BioLinear, stream -> MLP hidden -> stream
    """

    def __init__(self, n_embed: int, n_head: int, mlp_hidden: int, activation: str,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        c_res, c_hid = layer_coordinates(n_embed), layer_coordinates(mlp_hidden)
        self.n_head, self.activation = n_head, activation
        self.ln1 = nn.LayerNorm(n_embed)
        self.qk = BioLinear(c_res, layer_coordinates(n_embed, fold=2), generator=generator)
        self.v = BioLinear(c_res, c_res, generator=generator)
        self.proj = BioLinear(c_res, c_res, generator=generator)
        self.ln2 = nn.LayerNorm(n_embed)
        self.fc1 = BioLinear(c_res, c_hid, generator=generator)
        self.fc2 = BioLinear(c_hid, c_res, generator=generator)

    def attention(self, h: torch.Tensor) -> torch.Tensor:
        """Causal self-attention of the normalised stream ``h`` (batch, tokens, n_embed)."""
        b, t, e = h.shape
        heads = self.n_head
        q, k = self.qk(h).split(e, dim=-1)
        v = self.v(h)
        q, k, v = (z.reshape(b, t, heads, e // heads).transpose(1, 2) for z in (q, k, v))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (b, heads, t, hd)
        return self.proj(o.transpose(1, 2).reshape(b, t, e))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """The stream after this block, same shape as ``h``."""
        h = h + self.attention(self.ln1(h))
        act = ACTIVATIONS[self.activation][0]
        return h + self.fc2(act(self.fc1(self.ln2(h))))


class BioTransformer(nn.Module):
    """A causal decoder-only transformer of :class:`BioLinear` layers with neuron positions.

    Maps ``(batch, tokens, in_dim)`` to ``(batch, tokens, out_dim)``; the output at token
    ``t`` depends on the inputs at tokens ``0..t`` only.

    Parameters
    ----------
    in_dim, out_dim : int
        Features per input token and per output token.
    n_embed : int
        Width of the residual stream (paper: 32).
    n_head : int
        Attention heads; must divide ``n_embed``.
    n_layer : int
        Decoder blocks (paper: 2).
    mlp_hidden : int, optional
        Width of each block's MLP (default ``4 * n_embed``).
    max_len : int
        Longest sequence (rows of the learned positional embedding ``pos``).
    activation : str
        MLP activation, one of :data:`bimt.ACTIVATIONS` (default ``"gelu"``).
    seed : int, optional
        Seed of the initial weights (else torch's global RNG).

    Attributes
    ----------
    embed : BioLinear, input -> stream
    pos : Parameter, shape (max_len, n_embed)
        Learned positional embedding, added to the embedded tokens.
    blocks : ModuleList of :class:`TransformerBlock`
    ln_f : LayerNorm, the final one
    unembed : BioLinear, stream -> output
    in_perm, out_perm : buffers
        Input slot ``k`` holds original input ``in_perm[k]``; output slot ``k`` holds
        original output ``out_perm[k]`` (swaps move inputs and outputs too).

    Examples
    --------
    >>> tr = BioTransformer(in_dim=2, out_dim=2, n_embed=32, n_head=1, n_layer=2, seed=0)
    >>> tr(torch.zeros(5, 3, 2)).shape
    torch.Size([5, 3, 2])
    >>> [g.name for g in tr.spatial().groups]
    ['input', 'residual', 'qk0', 'v0', 'mlp0', 'qk1', 'v1', 'mlp1', 'output']
    """

    def __init__(self, in_dim: int, out_dim: int, n_embed: int = 32, n_head: int = 1,
                 n_layer: int = 2, mlp_hidden: int | None = None, max_len: int = 64,
                 activation: str = "gelu", seed: int | None = None) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("n_embed", n_embed),
                            ("n_head", n_head), ("n_layer", n_layer), ("max_len", max_len)):
            check_int(value, name, ge=1, where=_WHERE)
        mlp_hidden = 4 * n_embed if mlp_hidden is None else mlp_hidden
        check_int(mlp_hidden, "mlp_hidden", ge=1, where=_WHERE, fix="or None for 4 * n_embed")
        check_choice(activation, "activation", tuple(ACTIVATIONS), where=_WHERE)
        if n_embed % n_head:
            raise ValueError(f"The 'n_head' {_WHERE} must divide 'n_embed' ({n_embed}); got "
                             f"{n_head}; choose n_head among the divisors of n_embed.")
        params = (in_dim * n_embed + max_len * n_embed + out_dim * n_embed
                  + n_layer * (4 * n_embed * n_embed + 2 * n_embed * mlp_hidden))
        # weights, plus one distance matrix per BioLinear (float32)
        traincore.check_memory(2 * 4 * params, f"The BioTransformer ({params} parameters)",
                               "use a smaller n_embed, mlp_hidden or n_layer")
        self.in_dim, self.out_dim, self.n_embed = in_dim, out_dim, n_embed
        self.n_head, self.n_layer, self.mlp_hidden = n_head, n_layer, mlp_hidden
        self.max_len, self.activation = max_len, activation
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        c_res = layer_coordinates(n_embed)
        self.embed = BioLinear(layer_coordinates(in_dim), c_res, generator=g)
        self.pos = nn.Parameter(0.1 * torch.randn(max_len, n_embed, generator=g))
        self.blocks = nn.ModuleList(TransformerBlock(n_embed, n_head, mlp_hidden, activation, g)
                                    for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embed)
        self.unembed = BioLinear(c_res, layer_coordinates(out_dim), generator=g)
        self.register_buffer("in_perm", torch.arange(in_dim))
        self.register_buffer("out_perm", torch.arange(out_dim))

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs in the original order.

        Parameters
        ----------
        x : Tensor, shape (batch, tokens, in_dim)

        Returns
        -------
        Tensor, shape (batch, tokens, out_dim)
        """
        if x.ndim != 3 or x.shape[-1] != self.in_dim or x.shape[1] > self.max_len:
            raise ValueError(f"The BioTransformer takes inputs of shape (batch, tokens <= "
                             f"{self.max_len}, {self.in_dim}); got {tuple(x.shape)}.")
        h = self.embed(x[..., self.in_perm]) + self.pos[: x.shape[1]]
        for block in self.blocks:
            h = block(h)
        out = self.unembed(self.ln_f(h))
        return out[..., torch.argsort(self.out_perm)]

    # ------------------------------------------------------------------ structure
    def spatial(self) -> Spatial:
        """The neurons, wires, links and touched tensors of this transformer.

        Rows bottom to top: ``input``, the stream after the embedding, then per block the
        q/k row (two fold copies: q then k), the value row, the stream after attention, the
        MLP hidden row and the stream after the MLP; ``output`` last. Row labels (drawn
        beside the picture): input, embedding, attention, residual, MLP-hidden, output.
        """
        e, hd = self.n_embed, self.n_embed // self.n_head
        c_res = self.embed.out_coordinates
        groups = [Group("input", "input", self.embed.in_coordinates, self.in_dim, "in_perm"),
                  Group("residual", "residual", c_res, e)]
        rows = [Row("input", label="input"), Row("residual", label="embedding")]
        wires = [Wire("embed.weight", 0, 1, "embed.bias")]
        links: list[Link] = []
        touches = [Touch("pos", 1, "residual")]
        for layer, block in enumerate(self.blocks):
            p = f"blocks.{layer}."
            groups += [Group(f"qk{layer}", "attn", c_res, e, head_size=hd),
                       Group(f"v{layer}", "attn", c_res, e, head_size=hd),
                       Group(f"mlp{layer}", "mlp", block.fc1.out_coordinates, self.mlp_hidden)]
            r = len(rows) - 1  # the stream entering the block
            rows += [Row(f"qk{layer}", 2, "attention q, k"),
                     Row(f"v{layer}", label="attention v"),
                     Row("residual", label="residual"), Row(f"mlp{layer}", label="MLP-hidden"),
                     Row("residual", label="residual")]
            wires += [Wire(p + "qk.weight", r, r + 1, p + "qk.bias"),
                      Wire(p + "v.weight", r, r + 2, p + "v.bias"),
                      Wire(p + "proj.weight", r + 2, r + 3, p + "proj.bias"),
                      Wire(p + "fc1.weight", r + 3, r + 4, p + "fc1.bias"),
                      Wire(p + "fc2.weight", r + 4, r + 5, p + "fc2.bias")]
            links += [Link(r, r + 3), Link(r + 3, r + 5)]
            touches += [Touch(p + f"{ln}.{part}", 0, "residual")
                        for ln in ("ln1", "ln2") for part in ("weight", "bias")]
        touches += [Touch(f"ln_f.{part}", 0, "residual") for part in ("weight", "bias")]
        groups.append(Group("output", "output", self.unembed.out_coordinates, self.out_dim,
                            "out_perm"))
        rows.append(Row("output", label="output"))
        wires.append(Wire("unembed.weight", len(rows) - 2, len(rows) - 1, "unembed.bias"))
        return Spatial(tuple(groups), tuple(rows), tuple(wires), tuple(touches), tuple(links))

    def config(self) -> dict[str, Any]:
        """The constructor arguments (to rebuild an empty model of the same structure)."""
        return {"in_dim": self.in_dim, "out_dim": self.out_dim, "n_embed": self.n_embed,
                "n_head": self.n_head, "n_layer": self.n_layer, "mlp_hidden": self.mlp_hidden,
                "max_len": self.max_len, "activation": self.activation}

    def extra_repr(self) -> str:
        return (f"in_dim={self.in_dim}, out_dim={self.out_dim}, n_embed={self.n_embed}, "
                f"n_head={self.n_head}, n_layer={self.n_layer}, mlp_hidden={self.mlp_hidden}")
