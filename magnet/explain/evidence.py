"""The evidence behind a recommendation, in one sentence a person can follow: co-interactions
(behaviour), a visually similar history item (appearance), shared attributes or a similar
description (semantics)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .context import ExplainContext

ATTRIBUTE_SKIP = {"itemID", "title", "overview", "movie_id", "has_image", "community", "popularity"}


def attribute_tokens(items: pd.DataFrame | None, item: int, columns: set[str] | None = None) -> dict[str, set[str]]:
    """Categorical attributes of an item as {column: {tokens}} (genres split on spaces), only
    those of ``columns`` when given."""
    if items is None or item not in items.index:
        return {}
    row = items.loc[item]
    tokens: dict[str, set[str]] = {}
    for column, value in row.items():
        if column in ATTRIBUTE_SKIP or pd.isna(value) or (columns is not None and column not in columns):
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


def shown_by(ctx: ExplainContext, modality: str) -> set[str]:
    """The items.csv columns that ``modality`` shows: those the dataset's world description maps
    to it, and for semantics every column it does not map (titles and metadata say them)."""
    items = ctx.data.items
    mapped = ctx.data.attribute_modalities
    columns = [] if items is None else list(items.columns)
    if modality == "S":
        return {c for c in columns if mapped.get(c, "S") == "S"}
    return {c for c in columns if mapped.get(c) == modality}


def shared_attributes(ctx: ExplainContext, item: int, history: np.ndarray, modality: str
                      ) -> tuple[int, list[str]] | None:
    """The history item sharing the most attributes of ``modality`` with ``item``, and those."""
    columns = shown_by(ctx, modality)
    target = attribute_tokens(ctx.data.items, item, columns)
    best: tuple[int, list[str]] | None = None
    for h in history:
        shared = sorted(f"{v}" for col, vals in attribute_tokens(ctx.data.items, int(h), columns).items()
                        for v in vals & target.get(col, set()))
        if shared and (best is None or len(shared) > len(best[1])):
            best = (int(h), shared)
    return best


def strongest_cue(ctx: ExplainContext, user: int, item: int, modality: str) -> str:
    """One sentence naming the evidence behind ``item`` for ``user`` in ``modality``: shared
    co-interactions (B), what the pictures show (A) or what the titles say (S)."""
    data = ctx.data
    history = ctx.history(user)
    title = data.item_title
    if modality == "B":
        co = co_interactions(ctx, item, history)
        if co is not None:
            return f"{co[1]} users who interacted with \u201c{title(co[0])}\u201d also chose it."
        return "It is popular among users with similar histories."
    shared = shared_attributes(ctx, item, history, modality)
    if shared is not None:
        what = "looks" if modality == "A" else "is described"
        return (f"It {what} like \u201c{title(shared[0])}\u201d from the history: "
                f"{', '.join(shared[1][:3])}.")
    features = data.image_feat if modality == "A" else data.text_feat
    best = _cosine_best(features, item, history)
    if best is not None:
        kind = "visual" if modality == "A" else "text"
        verb = "looks like" if modality == "A" else "reads like"
        return f"It {verb} \u201c{title(best[0])}\u201d from the history ({kind} similarity {best[1]:.2f})."
    return "It is popular among users with similar histories."
