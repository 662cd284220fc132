"""Interaction-conditioned Top-K routers (spec §4, §4b).

:class:`CueRouter` (``model.router="cue"``, the default): every expert's logit is its bias plus
the history-induced modality cues weighted by its own template,
z_e(u, i) = c_e + β·Σ_m w_{e,m}·ẑ_m(u, i), β = softplus(learned) > 0, so an expert anchored on
appearance is chosen exactly when the item's picture is close to the user's history
(:mod:`.cues`). ``"cue+bilinear"`` adds the bilinear term below to those logits.

:class:`BilinearRouter` (``model.router="bilinear"``, the earlier default):

z_e(u, i) = ⟨q_e ⊙ R h_u, R h_i⟩ + a_eᵀ[h_u] + b_eᵀ[h_i] + c_e, with [h] the concatenation of
the three channels (width 3d) and R [r, 3d] a learned projection shared by the 9 experts
(``model.router_rank`` = r). With r = 0 there is no projection: R is the identity and the
bilinear term is diagonal over all 3d dimensions, q_e ⊙ [h_u] · [h_i].

The low-rank form is both cheaper and more expressive where it matters: the bilinear part
costs 9·r instead of 9·3d multiply-adds per user–item pair (it is half the work of scoring a
catalogue with r = 3d), and R mixes channels, so a logit can respond to a user's behaviour
dimensions meeting an item's visual ones, which a diagonal form cannot. The logits stay
bilinear in (u, i), so routing a user against the whole catalogue is one batched matmul.
See docs/SPEC_AS_BUILT.md §4.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..vocab import N_EXPERTS
from .experts import template_matrix


class BilinearRouter(nn.Module):
    """Router parameters: q [9, r] (r = 3d when ``rank`` is 0), a, b [9, 3d], c [9], and the
    shared projection ``proj`` = R [r, 3d] when 0 < rank < 3d."""

    uses_cues = False

    def __init__(self, dim: int, n_channels: int = 3, init_std: float = 0.01, rank: int = 0) -> None:
        super().__init__()
        width = dim * n_channels
        self.rank = rank if 0 < rank < width else 0
        if self.rank:
            # Gaussian with variance 1/width: R h keeps the scale of h at initialisation.
            self.proj = nn.Parameter(torch.randn(self.rank, width) * width ** -0.5)
        self.q = nn.Parameter(torch.randn(N_EXPERTS, self.rank or width) * init_std)
        self.a = nn.Parameter(torch.randn(N_EXPERTS, width) * init_std)
        self.b = nn.Parameter(torch.randn(N_EXPERTS, width) * init_std)
        self.c = nn.Parameter(torch.zeros(N_EXPERTS))

    def reduce(self, h: torch.Tensor) -> torch.Tensor:
        """Router-space coordinates R h [n, r] of concatenated channels h [n, 3d] (h itself
        when the router is full-width)."""
        return h @ self.proj.T if self.rank else h

    def pair_logits(self, hu: torch.Tensor, hi: torch.Tensor, cues: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [n, 9] for aligned pairs: hu, hi [n, 3d] (concatenated channels; no cues)."""
        bilinear = (self.reduce(hu) * self.reduce(hi)) @ self.q.T
        return bilinear + hu @ self.a.T + hi @ self.b.T + self.c

    def full_logits(self, hu: torch.Tensor, hi: torch.Tensor, cues: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [9, B, I] of every user in ``hu`` [B, 3d] against every item in ``hi`` [I, 3d]."""
        left = self.reduce(hu).unsqueeze(0) * self.q.unsqueeze(1)  # [9, B, r]
        bilinear = torch.matmul(left, self.reduce(hi).T)  # [9, B, I]
        user_bias = (hu @ self.a.T).T.unsqueeze(-1)  # [9, B, 1]
        item_bias = (hi @ self.b.T).T.unsqueeze(1)  # [9, 1, I]
        return bilinear + user_bias + item_bias + self.c.view(-1, 1, 1)


def inverse_softplus(y: float) -> float:
    """x with softplus(x) = y (y > 0)."""
    return y + math.log(-math.expm1(-y))


class CueRouter(nn.Module):
    """z_e = c_e + β·Σ_m w_{e,m}·ẑ_m [+ bilinear], with c [9], β = softplus(``scale_raw``) and
    the fixed templates w [9, 3]; ``bilinear``: an optional :class:`BilinearRouter` whose logits
    are added (its own bias c then replaces this one)."""

    uses_cues = True

    def __init__(self, scale_init: float = 1.0, bilinear: BilinearRouter | None = None) -> None:
        super().__init__()
        self.bilinear = bilinear
        if bilinear is None:
            self.c = nn.Parameter(torch.zeros(N_EXPERTS))
        self.scale_raw = nn.Parameter(torch.tensor(inverse_softplus(scale_init)))
        self.register_buffer("templates", template_matrix(), persistent=False)

    @property
    def scale(self) -> torch.Tensor:
        """β = softplus(scale_raw) > 0."""
        return torch.nn.functional.softplus(self.scale_raw)

    def slopes(self) -> torch.Tensor:
        """β·w [9, 3]: how each standardised cue moves each expert's logit."""
        return self.scale * self.templates

    def pair_logits(self, hu: torch.Tensor, hi: torch.Tensor, cues: torch.Tensor) -> torch.Tensor:
        """Logits [n, 9] of aligned pairs: channels hu, hi [n, 3d], standardised cues [n, 3]."""
        logits = cues @ self.slopes().T
        if self.bilinear is not None:
            return logits + self.bilinear.pair_logits(hu, hi)
        return logits + self.c

    def full_logits(self, hu: torch.Tensor, hi: torch.Tensor, cues: torch.Tensor) -> torch.Tensor:
        """Logits [9, B, I] of users hu [B, 3d] × items hi [I, 3d] with cues [3, B, I]."""
        logits = torch.einsum("em,mbi->ebi", self.slopes(), cues)
        if self.bilinear is not None:
            return logits + self.bilinear.full_logits(hu, hi)
        return logits + self.c.view(-1, 1, 1)


ROUTERS: tuple[str, ...] = ("cue", "bilinear", "cue+bilinear")


def make_router(kind: str, dim: int, rank: int, scale_init: float) -> BilinearRouter | CueRouter:
    """The router of ``model.router``."""
    if kind == "bilinear":
        return BilinearRouter(dim, rank=rank)
    if kind == "cue":
        return CueRouter(scale_init)
    if kind == "cue+bilinear":
        return CueRouter(scale_init, BilinearRouter(dim, rank=rank))
    raise ValueError(f"unknown router {kind!r}; choose one of {', '.join(ROUTERS)}")


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
