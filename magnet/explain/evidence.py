"""The evidence behind a recommendation, in one sentence a person can follow: co-interactions
(behaviour), a visually similar history item (appearance), shared attributes or a similar
description (semantics)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .context import ExplainContext

ATTRIBUTE_SKIP = {"itemID", "title", "overview", "movie_id", "has_image", "community"}


def attribute_tokens(items: pd.DataFrame | None, item: int) -> dict[str, set[str]]:
    """Categorical attributes of an item as {column: {tokens}} (genres split on spaces)."""
    if items is None or item not in items.index:
        return {}
    row = items.loc[item]
    tokens: dict[str, set[str]] = {}
    for column, value in row.items():
        if column in ATTRIBUTE_SKIP or pd.isna(value):
            continue
        text = str(value)
        if column in ("genres", "tags"):
            tokens[column] = set(text.split())
        elif len(text) <= 40:
            tokens[column] = {text}
    return tokens


def _cosine_best(features: np.ndarray | None, item: int, history: np.ndarray) -> tuple[int, float] | None:
    if features is None or len(history) == 0:
        return None
    target = features[item] / (np.linalg.norm(features[item]) + 1e-12)
    hist = features[history]
    sims = hist @ target / (np.linalg.norm(hist, axis=1) + 1e-12)
    j = int(np.argmax(sims))
    return int(history[j]), float(sims[j])


def co_interactions(ctx: ExplainContext, item: int, history: np.ndarray) -> tuple[int, int] | None:
    """The history item most co-interacted with ``item`` and the number of shared users."""
    if len(history) == 0:
        return None
    item_users = ctx.data.train[ctx.data.train[:, 1] == item, 0]
    if len(item_users) == 0:
        return None
    mask = np.isin(ctx.data.train[:, 0], item_users) & np.isin(ctx.data.train[:, 1], history)
    counts = np.bincount(ctx.data.train[mask, 1], minlength=ctx.data.n_items)[history]
    j = int(np.argmax(counts))
    return (int(history[j]), int(counts[j])) if counts[j] > 0 else None


def strongest_cue(ctx: ExplainContext, user: int, item: int, modality: str) -> str:
    """One sentence naming the evidence behind ``item`` for ``user`` for the leading modality."""
    data = ctx.data
    history = ctx.history(user)
    title = data.item_title
    if modality == "B":
        co = co_interactions(ctx, item, history)
        if co is not None:
            return f"{co[1]} users who interacted with \u201c{title(co[0])}\u201d also chose it."
    if modality == "A":
        best = _cosine_best(data.image_feat, item, history)
        if best is not None:
            return f"It looks like \u201c{title(best[0])}\u201d from the history (visual similarity {best[1]:.2f})."
    if modality in ("S", "A", "B"):
        target = attribute_tokens(data.items, item)
        best_shared: tuple[int, list[str]] | None = None
        for h in history:
            shared = sorted(f"{v}" for col, vals in attribute_tokens(data.items, int(h)).items()
                            for v in vals & target.get(col, set()))
            if shared and (best_shared is None or len(shared) > len(best_shared[1])):
                best_shared = (int(h), shared)
        if best_shared is not None:
            return (f"It shares {', '.join(best_shared[1][:3])} with \u201c{title(best_shared[0])}\u201d "
                    f"from the history.")
        best = _cosine_best(data.text_feat, item, history)
        if best is not None:
            return f"Its description reads like \u201c{title(best[0])}\u201d (text similarity {best[1]:.2f})."
    return "It is popular among users with similar histories."
