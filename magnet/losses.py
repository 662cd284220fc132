"""Loss terms of spec §6 (BPR, view-contrastive InfoNCE, L2 on batch embeddings)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Mean −log σ(ŷ⁺ − ŷ⁻) over aligned scores pos, neg [n]."""
    return F.softplus(neg - pos).mean()


def info_nce(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """Symmetric-free InfoNCE: row r of a [n, d] must pick row r of b [n, d] among all rows of b.

    1/τ scales the [n, d] side rather than the [n, n] logits (same value, a third less time)."""
    a = F.normalize(a, dim=-1) / tau
    b = F.normalize(b, dim=-1)
    logits = a @ b.T
    return F.cross_entropy(logits, torch.arange(len(a), device=a.device))


def l2_reg(*embeddings: torch.Tensor) -> torch.Tensor:
    """½ Σ ‖e‖² / n over the batch's ego embeddings, each [n, d] (LightGCN's regulariser)."""
    n = embeddings[0].shape[0]
    return sum(e.pow(2).sum() for e in embeddings) / (2 * n)
