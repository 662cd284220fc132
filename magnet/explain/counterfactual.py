"""Counterfactuals: what a recommendation becomes without one modality.

Knocking modality m out of an item replaces the item's channel m by the catalogue mean and its
m-cue by the average cue (:meth:`magnet.model.MAGNET.knock_out`). Scoring is pairwise, so an
item's knocked score does not depend on the other items: its rank without m is counted against
the others' unchanged scores ("without its picture this item falls from #3 to #41"). Knocking m
out of every item at once re-ranks the whole catalogue for a user (the what-if view).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..vocab import MODALITIES
from .context import ExplainContext


@torch.no_grad()
def knockout_effects(ctx: ExplainContext, users: np.ndarray, items: torch.Tensor, scores: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """For each user of ``users`` [b] and each of its ``items`` [b, n] (ranked under ``scores``
    [b, I], training items −inf): the score drop and the rank without each modality, both
    [b, n, 3] over (B, A, S); a rank counts the other items at their unchanged scores."""
    users_t = torch.as_tensor(np.asarray(users, dtype=np.int64))
    before = scores.gather(1, items)  # [b, n]
    drops, ranks = [], []
    for m in MODALITIES:
        after = ctx.model.score_users(ctx.knocked(m), users_t).gather(1, items)  # [b, n]
        others_above = (scores.unsqueeze(1) > after.unsqueeze(2)).sum(-1)  # [b, n]
        self_above = (before > after).long()  # the item's own unknocked score is no rival
        drops.append(before - after)
        ranks.append(1 + others_above - self_above)
    return torch.stack(drops, -1), torch.stack(ranks, -1)


@torch.no_grad()
def without_modality(ctx: ExplainContext, user: int, modality: str, n: int = 10) -> pd.DataFrame:
    """The user's top-``n`` when ``modality`` is switched off for every item (training items
    excluded). Columns rank, item, title, score, rank_before (1-based, in the full model)."""
    users = torch.tensor([int(user)])
    before = ctx.scores([user])[0]
    after = ctx.model.score_users(ctx.knocked(modality), users)[0].masked_fill(torch.isinf(before), -float("inf"))
    top = after.topk(n)
    rank_before = (before.unsqueeze(0) > before[top.indices].unsqueeze(1)).sum(1) + 1
    return pd.DataFrame({"rank": np.arange(1, len(top.indices) + 1), "item": top.indices.numpy(),
                         "title": [ctx.data.item_title(int(i)) for i in top.indices],
                         "score": top.values.numpy(), "rank_before": rank_before.numpy()})
