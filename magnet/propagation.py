"""LightGCN layer averaging as one autograd function (the training hot path of both views).

    mean(x, Âx, …, Â^L x) = (x + Â(x + Â(x + …)))/(L + 1)

Written in Horner form on x/(L+1), the L hops are L sparse products, each followed by one
in-place add: no running sum, no division and no gradient-accumulation passes over freshly
allocated [N, d] buffers. Those elementwise passes are memory-bound and, at Amazon-Baby scale
(26k nodes × 64), cost about as much as the sparse products themselves (docs/BENCHMARKS.md). The backward is the same recurrence with
Âᵀ, since ∂/∂x of Σ_j Â^j x against an upstream gradient g is Σ_j (Âᵀ)^j g.
"""
from __future__ import annotations

import torch

from .graphs import csr_matmul


def mean_of_hops(adj: torch.Tensor, x: torch.Tensor, n_layers: int,
                 adj_t: torch.Tensor | None = None) -> torch.Tensor:
    """(Σ_{j=0..L} Â^j x)/(L+1) for a sparse ``adj`` [N, N] and x [N, d] → [N, d], L = ``n_layers``;
    ``adj_t`` = Âᵀ (defaults to ``adj``: symmetric operators) for the backward pass."""
    if n_layers == 0:
        return x
    return _MeanOfHops.apply(adj, adj if adj_t is None else adj_t, x, n_layers)


class _MeanOfHops(torch.autograd.Function):
    @staticmethod
    def forward(ctx, adj: torch.Tensor, adj_t: torch.Tensor, x: torch.Tensor, n_layers: int) -> torch.Tensor:
        ctx.adj_t, ctx.n_layers = adj_t, n_layers
        return horner(adj, x, n_layers)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, None, horner(ctx.adj_t, grad.contiguous(), ctx.n_layers), None


def horner(adj: torch.Tensor, x: torch.Tensor, n_layers: int) -> torch.Tensor:
    """The forward value of :func:`mean_of_hops` (no autograd), n_layers ≥ 1:
    with x' = x/(L+1), y ← x' + Â y, L times from y = x'. Each hop is one sparse product into
    a fresh buffer plus one in-place add (a sparse ``addmm`` with beta ≠ 0 is ~4× slower on CPU
    than with beta = 0, docs/BENCHMARKS.md)."""
    scaled = x.contiguous() * (1.0 / (n_layers + 1))
    y = scaled
    for _ in range(n_layers):
        y = csr_matmul(adj, y).add_(scaled)
    return y
