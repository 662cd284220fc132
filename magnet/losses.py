"""Loss terms of spec §6 (BPR, view-contrastive InfoNCE, L2 on batch embeddings)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Mean −log σ(ŷ⁺ − ŷ⁻) over aligned scores pos, neg [n]."""
    return F.softplus(neg - pos).mean()


def info_nce(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """Symmetric-free InfoNCE: row r of a [n, d] must pick row r of b [n, d] among all rows of b.

    Equals ``cross_entropy(â b̂ᵀ / τ, arange(n))`` for the L2-normalised rows â, b̂; 1/τ scales
    the [n, d] side, and :class:`_InfoNCE` computes the loss and its gradient with two passes
    over the [n, n] logits instead of autograd's log-softmax chain (about half the time):
    the forward keeps the row softmax P, so the backward is two matmuls."""
    return _InfoNCE.apply(F.normalize(a, dim=-1) / tau, F.normalize(b, dim=-1))


class _InfoNCE(torch.autograd.Function):
    """mean_r [logsumexp_c ⟨a_r, b_c⟩ − ⟨a_r, b_r⟩] for a, b [n, d]; gradients
    ∂/∂a = (P − I) b / n and ∂/∂b = (P − I)ᵀ a / n with P = softmax(a bᵀ) by rows."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        logits = a @ b.T  # [n, n]
        top = logits.amax(dim=1, keepdim=True)  # [n, 1]
        probs = logits.sub_(top).exp_()  # unnormalised softmax, in place of the logits
        total = probs.sum(dim=1, keepdim=True)  # [n, 1]
        probs.div_(total)  # P, what the backward needs
        ctx.save_for_backward(a, b, probs)
        lse = top.squeeze(1) + total.squeeze(1).log()
        return (lse - (a * b).sum(1)).mean()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b, probs = ctx.saved_tensors
        scale = grad / a.shape[0]
        grad_a = torch.addmm(b, probs, b, beta=-1.0).mul_(scale)  # (P b − b) / n
        grad_b = torch.addmm(a, probs.T, a, beta=-1.0).mul_(scale)  # (Pᵀ a − a) / n
        return grad_a, grad_b


def l2_reg(*embeddings: torch.Tensor) -> torch.Tensor:
    """½ Σ ‖e‖² / n over the batch's ego embeddings, each [n, d] (LightGCN's regulariser)."""
    n = embeddings[0].shape[0]
    return sum(e.pow(2).sum() for e in embeddings) / (2 * n)
