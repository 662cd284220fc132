"""One user's recommendations, each explained: exact attribution (gates, modality reliance and
contributions), rank against a baseline, and the evidence in words."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..evaluate import per_user_ranks
from ..vocab import (ANCHORS, EXPERT_NAMES, MODALITIES, MODALITY_SOURCES, MODALITY_WORDS, ROLES, experts_of_anchor,
                     experts_of_role, style_words)
from .context import ExplainContext
from .counterfactual import knockout_effects
from .evidence import strongest_cue


@torch.no_grad()
def recommend(ctx: ExplainContext, user: int, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Top-``n`` items [n] and their scores [n] for ``user`` (training items excluded)."""
    top = ctx.scores([user])[0].topk(n)
    return top.indices.numpy(), top.values.numpy()


@torch.no_grad()
def ranks_of(ctx: ExplainContext, user: int, items: np.ndarray) -> np.ndarray:
    """1-based rank [n] of each of ``items`` for ``user`` in ``ctx``'s model (training masked)."""
    items_t = torch.as_tensor(np.asarray(items, dtype=np.int64))
    users_t = torch.full_like(items_t, int(user))
    return per_user_ranks(ctx.score_fn, users_t, items_t, ctx.train_csr, ctx.data.n_items).numpy()


def style_label(gates: np.ndarray) -> str:
    """e.g. "Behaviour-anchored, Balanced" for the expert with the largest gate (gates [9])."""
    return style_words(EXPERT_NAMES[int(np.argmax(gates))])


def lead_modality(contribution: np.ndarray) -> str:
    """The modality an explanation names first: the largest contribution [3] to the score."""
    return MODALITIES[int(np.argmax(contribution))]


@torch.no_grad()
def attribution(ctx: ExplainContext, user: int, items: torch.Tensor) -> tuple[dict[str, torch.Tensor], np.ndarray,
                                                                                 np.ndarray]:
    """For ``user``'s ``items`` [n]: :meth:`MAGNET.decompose`'s parts, the modality reliance
    r_m = Σ_e g_e·w_{e,m} [n, 3] (behaviour-only: B = 1) and the contributions c_m = Σ_e
    g_e·c_{e,m} [n, 3] with the base in B (they sum to the score)."""
    parts = ctx.model.decompose(ctx.pre, int(user), items)
    gates = parts["gates"].numpy()  # [n, 9]
    contribution = (gates[:, :, None] * parts["contributions"].numpy()).sum(1)  # [n, 3]
    contribution[:, 0] += parts["base"].numpy()
    if ctx.has_experts:
        reliance = gates @ ctx.templates  # [n, 3]
    else:
        reliance = np.tile(np.array([1.0, 0.0, 0.0]), (len(items), 1))
    return parts, reliance, contribution


@dataclass
class ItemExplanation:
    """Why ``item`` is recommended to ``user``; arrays are over EXPERT_NAMES or (B, A, S)."""

    user: int
    item: int
    rank: int
    score: float
    base: float
    gates: np.ndarray  # [9]
    reliance: np.ndarray  # [3] r_m = Σ_e g_e w_{e,m} (sums to 1; behaviour-only: B = 1)
    contribution: np.ndarray  # [3] c_m incl. the base in B; sums to the score
    style: str
    cue: str
    baseline_rank: int | None = None
    knockout_ranks: np.ndarray | None = None  # [3] rank without each modality (others unchanged)

    @property
    def lead(self) -> str:
        """The modality the explanation names first: the largest contribution to the score."""
        return lead_modality(self.contribution)

    @property
    def contribution_share(self) -> np.ndarray:
        """c_m / Σ|c_m| [3] (signed shares; |shares| sum to 1)."""
        total = np.abs(self.contribution).sum()
        return self.contribution / total if total > 0 else self.contribution

    def role_sums(self) -> dict[str, float]:
        """Gate mass per role family."""
        return {r: float(sum(self.gates[EXPERT_NAMES.index(n)] for n in experts_of_role(r))) for r in ROLES}

    def anchor_sums(self) -> dict[str, float]:
        """Gate mass per anchor modality."""
        return {a: float(sum(self.gates[EXPERT_NAMES.index(n)] for n in experts_of_anchor(a))) for a in ANCHORS}

    def active_experts(self) -> list[tuple[str, float]]:
        """Experts with a non-zero gate, largest first, e.g. [("B-Bal", 0.58), ("A-Bal", 0.42)]."""
        order = np.argsort(-self.gates, kind="stable")
        return [(EXPERT_NAMES[e], float(self.gates[e])) for e in order if self.gates[e] > 0]

    def knockout_sentence(self, modality: str | None = None) -> str:
        """e.g. "Without its picture it would fall from #3 to #41." (the lead modality by default)."""
        if self.knockout_ranks is None:
            return ""
        m = modality or self.lead
        after = int(self.knockout_ranks[MODALITIES.index(m)])
        move = (f"fall from #{self.rank} to #{after}" if after > self.rank
                else f"stay at #{self.rank}" if after == self.rank else f"rise from #{self.rank} to #{after}")
        return f"Without its {MODALITY_SOURCES[m]} it would {move}."

    def sentence(self, title: str) -> str:
        """The explanation in words a person can follow."""
        share = self.contribution_share[MODALITIES.index(self.lead)]
        experts = ", ".join(f"{n} {w:.2f}" for n, w in self.active_experts()) or "none (behaviour-only model)"
        text = (f"\u201c{title}\u201d is recommended at rank {self.rank} mainly through "
                f"{MODALITY_WORDS[self.lead]}, which carries {abs(share):.0%} of its score. "
                f"{self.knockout_sentence()} Routing style: {self.style} (experts: {experts}). {self.cue}")
        if self.baseline_rank is not None:
            text += f" The baseline ranks it {self.baseline_rank}."
        return text.replace("  ", " ")


@torch.no_grad()
def explain_items(ctx: ExplainContext, user: int, items: np.ndarray, ranks: np.ndarray | None = None,
                  baseline: ExplainContext | None = None, scores: torch.Tensor | None = None) -> list[ItemExplanation]:
    """Exact attribution for ``items`` [n] of ``user`` (``scores``: the user's masked catalogue
    scores [1, I] when the caller already has them)."""
    items = np.asarray(items, dtype=np.int64)
    parts, reliance, gated = attribution(ctx, user, torch.from_numpy(items))
    gates = parts["gates"].numpy()  # [n, 9]
    ranks = ranks if ranks is not None else ranks_of(ctx, user, items)
    base_ranks = ranks_of(baseline, user, items) if baseline is not None else None
    scores = ctx.scores([user]) if scores is None else scores
    _, knocked = knockout_effects(ctx, np.array([user]), torch.from_numpy(items)[None], scores)
    out = []
    for j, item in enumerate(items):
        out.append(ItemExplanation(
            user=int(user), item=int(item), rank=int(ranks[j]), score=float(parts["score"][j]),
            base=float(parts["base"][j]), gates=gates[j], reliance=reliance[j], contribution=gated[j],
            style=style_label(gates[j]) if ctx.has_experts else "Behaviour only (LightGCN)",
            cue=strongest_cue(ctx, int(user), int(item), lead_modality(gated[j])),
            baseline_rank=None if base_ranks is None else int(base_ranks[j]),
            knockout_ranks=knocked[0, j].numpy()))
    return out


@torch.no_grad()
def case_study(ctx: ExplainContext, user: int, n: int = 10,
               baseline: ExplainContext | None = None) -> list[ItemExplanation]:
    """The user's top-``n`` recommendations, each explained."""
    scores = ctx.scores([user])  # [1, I], scored once for the list and its knockouts
    items = scores[0].topk(n).indices.numpy()
    return explain_items(ctx, user, items, np.arange(1, len(items) + 1), baseline, scores=scores)


def case_study_table(ctx: ExplainContext, explanations: list[ItemExplanation]) -> pd.DataFrame:
    """One row per recommendation (for display and CSV download)."""
    rows = []
    for ex in explanations:
        share = ex.contribution_share
        row: dict[str, Any] = {"user": ex.user, "rank": ex.rank, "item": ex.item,
                               "title": ctx.data.item_title(ex.item), "score": ex.score,
                               "style": ex.style, "baseline_rank": ex.baseline_rank}
        row.update({f"reliance_{m}": float(ex.reliance[k]) for k, m in enumerate(MODALITIES)})
        row.update({f"contribution_{m}": float(share[k]) for k, m in enumerate(MODALITIES)})
        if ex.knockout_ranks is not None:
            row.update({f"rank_without_{m}": int(ex.knockout_ranks[k]) for k, m in enumerate(MODALITIES)})
        row.update({f"gate_{n}": float(ex.gates[e]) for e, n in enumerate(EXPERT_NAMES)})
        row["cue"] = ex.cue
        rows.append(row)
    return pd.DataFrame(rows)
