"""Interaction-conditioned Top-K router (spec §4).

z_e(u, i) = Σ_m ⟨q_{e,m} ⊙ h^m_u, h^m_i⟩ + a_eᵀ[h_u] + b_eᵀ[h_i] + c_e, with [h] the
concatenation of the three channels. The logits are bilinear in (u, i), so routing for a
user against the whole catalogue is one batched matmul.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .experts import N_EXPERTS


class BilinearRouter(nn.Module):
    """Router parameters q, a, b [9, 3d] and c [9]."""

    def __init__(self, dim: int, n_channels: int = 3, init_std: float = 0.01) -> None:
        super().__init__()
        width = dim * n_channels
        self.q = nn.Parameter(torch.randn(N_EXPERTS, width) * init_std)
        self.a = nn.Parameter(torch.randn(N_EXPERTS, width) * init_std)
        self.b = nn.Parameter(torch.randn(N_EXPERTS, width) * init_std)
        self.c = nn.Parameter(torch.zeros(N_EXPERTS))

    def pair_logits(self, hu: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """Logits [n, 9] for aligned pairs: hu, hi [n, 3d] (concatenated channels)."""
        bilinear = (hu * hi) @ self.q.T
        return bilinear + hu @ self.a.T + hi @ self.b.T + self.c

    def full_logits(self, hu: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """Logits [9, B, I] of every user in ``hu`` [B, 3d] against every item in ``hi`` [I, 3d]."""
        left = hu.unsqueeze(0) * self.q.unsqueeze(1)  # [9, B, 3d]
        bilinear = torch.matmul(left, hi.T)  # [9, B, I]
        user_bias = (hu @ self.a.T).T.unsqueeze(-1)  # [9, B, 1]
        item_bias = (hi @ self.b.T).T.unsqueeze(1)  # [9, 1, I]
        return bilinear + user_bias + item_bias + self.c.view(-1, 1, 1)


def topk_gates(probs: torch.Tensor, k: int, dim: int = -1) -> torch.Tensor:
    """Keep the ``k`` largest routing probabilities along ``dim`` and renormalise them to sum to 1.

    ``probs`` any shape with the experts along ``dim``; returns gates of the same shape
    with exactly k non-zeros per routing decision.
    """
    k = max(1, min(int(k), probs.shape[dim]))
    top = probs.topk(k, dim=dim)
    kept = torch.zeros_like(probs).scatter(dim, top.indices, top.values)
    return kept / kept.sum(dim=dim, keepdim=True).clamp_min(1e-12)


def normalized_entropy(probs: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """−Σ p log p / log(n) along ``dim``: 1 for uniform, 0 for one-hot."""
    n = probs.shape[dim]
    p = probs.clamp_min(1e-12)
    return -(probs * p.log()).sum(dim) / math.log(n)


def routing_entropy(probs: torch.Tensor) -> torch.Tensor:
    """H of the batch-mean routing distribution: probs [n, 9] → scalar in [0, 1]."""
    return normalized_entropy(probs.mean(0))


def load_balance_loss(probs: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """L_lb = 9 · Σ_e f_e · P̄_e, f_e = share of Top-K slots taken by e; probs, gates [n, 9]."""
    slots = (gates > 0).float()
    f = slots.sum(0) / slots.sum().clamp_min(1.0)
    return probs.shape[1] * (f * probs.mean(0)).sum()
