"""Loss terms of spec §6 (BPR, view-contrastive InfoNCE, L2 on batch embeddings), and the
sampled-softmax ranking loss that ``train.loss = "softmax"`` puts in BPR's place."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Mean −log σ(ŷ⁺ − ŷ⁻) over aligned scores pos, neg [n], or over every (positive,
    negative) pair for pos [n] and neg [n, m]."""
    if neg.dim() == 2:
        pos = pos.unsqueeze(1)
    return F.softplus(neg - pos).mean()


def sampled_softmax_loss(pos: torch.Tensor, neg: torch.Tensor, tau: float) -> torch.Tensor:
    """Mean over the n positives of −log softmax(ŷ/τ) at the positive, among itself and its
    m sampled negatives: pos [n], neg [n, m] → [].

    = mean_r [logsumexp(ŷ⁺_r/τ, ŷ⁻_r1/τ, …, ŷ⁻_rm/τ) − ŷ⁺_r/τ], i.e. cross-entropy with the
    positive as the class. Unlike BPR's m independent pairwise terms, the negatives compete in
    one normaliser, so the gradient concentrates on the highest-scored (hardest) ones."""
    logits = torch.cat([pos.unsqueeze(1), neg], dim=1) / tau  # [n, 1 + m]
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


def ranking_loss(kind: str, pos: torch.Tensor, neg: torch.Tensor, tau: float) -> torch.Tensor:
    """The configured ranking loss (``train.loss``) of positive scores pos [n] against
    negative scores neg [n, m]."""
    return sampled_softmax_loss(pos, neg, tau) if kind == "softmax" else bpr_loss(pos, neg)


def info_nce(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """Symmetric-free InfoNCE: row r of a [n, d] must pick row r of b [n, d] among all rows of b.

    Equals ``cross_entropy(â b̂ᵀ / τ, arange(n))`` for the L2-normalised rows â, b̂; 1/τ scales
    the [n, d] side, and :class:`_InfoNCE` computes the loss and its gradient with two passes
    over the [n, n] logits instead of autograd's log-softmax chain (about half the time):
    the forward keeps the row softmax P, so the backward is two matmuls."""
    return _InfoNCE.apply(F.normalize(a, dim=-1) / tau, F.normalize(b, dim=-1))


#: exp(logit) needs no max-shift when every logit is at most this (exp(60) ≈ 1e26, so row sums
#: of up to 10⁶ terms stay far below float32's 3e38).
_NO_SHIFT_BOUND = 60.0


class _InfoNCE(torch.autograd.Function):
    """mean_r [logsumexp_c ⟨a_r, b_c⟩ − ⟨a_r, b_r⟩] for a, b [n, d]; gradients
    ∂/∂a = (P − I) b / n and ∂/∂b = (P − I)ᵀ a / n with P = softmax(a bᵀ) by rows.

    The [n, n] block is the only large tensor, so it is touched as few times as possible: the
    rows of a and b have norms of at most 1/τ and 1 (normalised), so the logits are bounded by
    ‖a_r‖·‖b_c‖ and, below :data:`_NO_SHIFT_BOUND`, exponentiated in place without the usual
    max-shift; P is kept unnormalised (E = exp(a bᵀ) and its row sums t), and the backward
    applies 1/t to [n, d] operands instead of dividing the [n, n] block:
    P b = (E b) / t and Pᵀ a = Eᵀ (a / t)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        logits = a @ b.T  # [n, n]
        bound = float(a.norm(dim=1).max() * b.norm(dim=1).max()) if len(a) else 0.0
        shift = None if bound <= _NO_SHIFT_BOUND else logits.amax(dim=1, keepdim=True)  # [n, 1]
        exps = (logits if shift is None else logits.sub_(shift)).exp_()  # E, in place of the logits
        total = exps.sum(dim=1, keepdim=True)  # [n, 1]
        ctx.save_for_backward(a, b, exps, total)
        lse = total.squeeze(1).log()
        if shift is not None:
            lse = lse + shift.squeeze(1)
        return (lse - (a * b).sum(1)).mean()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b, exps, total = ctx.saved_tensors
        scale = grad / a.shape[0]
        grad_a = (exps @ b).div_(total).sub_(b).mul_(scale)  # (P b − b) / n
        grad_b = torch.addmm(a, exps.T, a / total, beta=-1.0).mul_(scale)  # (Pᵀ a − a) / n
        return grad_a, grad_b


def l2_reg(*embeddings: torch.Tensor) -> torch.Tensor:
    """½ Σ ‖e‖² / n over the batch's ego embeddings, each [n, d] (LightGCN's regulariser)."""
    n = embeddings[0].shape[0]
    return sum(e.pow(2).sum() for e in embeddings) / (2 * n)
