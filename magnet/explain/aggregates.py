"""Explanations in aggregate: routing of many users' top-N, expert utilization by role family,
anchor, user activity and item popularity, recovered vs planted reliance, held-out ranks and
the users a model improves most on a baseline."""
from __future__ import annotations


import numpy as np
import pandas as pd
import torch

from ..evaluate import per_user_ranks
from ..vocab import (ACTIVITY_NAMES, ANCHORS, BUCKET_NAMES, EXPERT_NAMES, MODALITIES, ROLES,
                     experts_of_anchor, experts_of_role)
from .cases import style_label
from .context import ExplainContext


def sample_users(ctx: ExplainContext, max_users: int, seed: int = 0) -> np.ndarray:
    """Users with a training history, all of them or a fixed random sample of ``max_users``."""
    active = np.flatnonzero(ctx.activity() > 0)
    if len(active) <= max_users:
        return active
    return np.sort(np.random.default_rng(seed).choice(active, max_users, replace=False))


@torch.no_grad()
def routing_table(ctx: ExplainContext, top_n: int = 20, max_users: int = 2000,
                  batch: int = 256) -> pd.DataFrame:
    """Gates of every (user, recommended item) pair in the users' top-``top_n``.

    Columns: user, item, rank, user_activity (history length), item_bucket (head/mid/tail),
    then one column per expert with its gate, and reliance_B/A/S.
    """
    if not ctx.has_experts:
        return pd.DataFrame()
    users = sample_users(ctx, max_users)
    frames = []
    model = ctx.model
    for start in range(0, len(users), batch):
        chunk = users[start:start + batch]
        top = ctx.scores(chunk).topk(top_n, dim=1).indices  # [b, n]
        u = torch.from_numpy(chunk).repeat_interleave(top_n)
        i = top.reshape(-1)
        _, gates = model.route_pairs(ctx.pre, u, i)
        g = gates.numpy()
        frame = pd.DataFrame(g, columns=list(EXPERT_NAMES))
        frame.insert(0, "user", u.numpy())
        frame.insert(1, "item", i.numpy())
        frame.insert(2, "rank", np.tile(np.arange(1, top_n + 1), len(chunk)))
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table["user_activity"] = ctx.activity()[table["user"].to_numpy()]
    table["item_bucket"] = np.array(BUCKET_NAMES)[ctx.buckets[table["item"].to_numpy()]]
    rel = table[list(EXPERT_NAMES)].to_numpy() @ ctx.templates
    for k, m in enumerate(MODALITIES):
        table[f"reliance_{m}"] = rel[:, k]
    return table


RELIANCE_COLUMNS = tuple(f"reliance_{m}" for m in MODALITIES)


def user_reliance(table: pd.DataFrame) -> pd.DataFrame:
    """Per user of a :func:`routing_table`: the mean gate reliance over their top-N
    (``reliance_B/A/S``) and the same relative to the other users in the table
    (``relative_B/A/S``: each modality standardised across users — how much more this user's
    recommendations lean on it than users' in general). Indexed by user."""
    if table.empty:
        return pd.DataFrame(columns=[*RELIANCE_COLUMNS, *(f"relative_{m}" for m in MODALITIES)])
    raw = table.groupby("user")[list(RELIANCE_COLUMNS)].mean()
    out = raw.copy()
    relative = relative_to_users(raw.to_numpy())
    for k, m in enumerate(MODALITIES):
        out[f"relative_{m}"] = relative[:, k]
    return out


def relative_to_users(values: np.ndarray) -> np.ndarray:
    """Each column of ``values`` [U, 3] standardised across users (std 0: centred only): how
    much more a user leans on a modality than users in general."""
    std = values.std(0)
    return (values - values.mean(0)) / np.where(std > 0, std, 1.0)


def utilization(table: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Mean gate per expert, optionally grouped by a column of :func:`routing_table`."""
    if table.empty:
        return pd.DataFrame(columns=list(EXPERT_NAMES))
    if by is None:
        return table[list(EXPERT_NAMES)].mean().to_frame().T
    return table.groupby(by, observed=True)[list(EXPERT_NAMES)].mean()


def family_sums(util: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(by role family, by anchor) sums of per-expert utilization columns."""
    roles = pd.DataFrame({r: util[experts_of_role(r)].sum(axis=1) for r in ROLES})
    anchors = pd.DataFrame({a: util[experts_of_anchor(a)].sum(axis=1) for a in ANCHORS})
    return roles, anchors


def activity_bucket(activity: np.ndarray) -> np.ndarray:
    """Label users by history length tercile: "light", "medium", "heavy" (ACTIVITY_NAMES)."""
    q1, q2 = np.quantile(activity, [1 / 3, 2 / 3])
    light, medium, heavy = ACTIVITY_NAMES
    return np.where(activity <= q1, light, np.where(activity <= q2, medium, heavy))


@torch.no_grad()
def typical_cases(ctx: ExplainContext, baseline: ExplainContext, split: str = "test", top_n: int = 20,
                  per_style: int = 3, max_users: int = 2000) -> pd.DataFrame:
    """Held-out items that one model puts in the top-``top_n`` and the other does not.

    Over the held-out pairs of ``split`` (up to ``max_users`` sampled users): ``outcome`` is
    "only this model" (rank ≤ top_n, baseline rank > top_n) or "only the baseline" (the reverse).
    At most ``per_style`` of each outcome per routing style of this model, the largest rank
    differences first. Columns user, item, title, rank, baseline_rank, outcome, style; the
    counts of both outcomes over all pairs are in ``frame.attrs`` ("only_model",
    "only_baseline", "pairs")."""
    pairs = np.asarray(getattr(ctx.data, split)).reshape(-1, 2)
    if len(pairs) == 0:
        return pd.DataFrame()
    pairs = pairs[np.isin(pairs[:, 0], sample_users(ctx, max_users))]
    ranks = pd.DataFrame({"user": pairs[:, 0], "item": pairs[:, 1], "rank": held_out_pair_ranks(ctx, pairs),
                          "baseline_rank": held_out_pair_ranks(baseline, pairs)})
    mine = (ranks["rank"] <= top_n) & (ranks["baseline_rank"] > top_n)
    theirs = (ranks["baseline_rank"] <= top_n) & (ranks["rank"] > top_n)
    ranks["outcome"] = np.where(mine, "only this model", np.where(theirs, "only the baseline", ""))
    frame = ranks[mine | theirs].copy()
    counts = {"only_model": int(mine.sum()), "only_baseline": int(theirs.sum()), "pairs": int(len(ranks))}
    if frame.empty:
        frame.attrs.update(counts)
        return frame
    frame["style"] = [style_label(ctx.model.decompose(ctx.pre, int(u), torch.tensor([int(i)]))["gates"][0].numpy())
                      if ctx.has_experts else "Behaviour only" for u, i in zip(frame["user"], frame["item"])]
    frame["title"] = [ctx.data.item_title(int(i)) for i in frame["item"]]
    frame["gap"] = (frame["baseline_rank"] - frame["rank"]).abs()
    frame = frame.sort_values(["outcome", "style", "gap"], ascending=[False, True, False])
    frame = frame.groupby(["outcome", "style"], sort=False).head(per_style).drop(columns="gap")
    frame = frame[["user", "item", "title", "rank", "baseline_rank", "outcome", "style"]].reset_index(drop=True)
    frame.attrs.update(counts)
    return frame


@torch.no_grad()
def held_out_pair_ranks(ctx: ExplainContext, pairs: np.ndarray) -> np.ndarray:
    """1-based full-ranking rank (training items masked) of each (user, item) of ``pairs`` [n, 2]
    under ``ctx``'s model: [n] int64."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return per_user_ranks(ctx.score_fn, torch.from_numpy(pairs[:, 0].copy()), torch.from_numpy(pairs[:, 1].copy()),
                          ctx.train_csr, ctx.data.n_items, batch_size=256).numpy()


def held_out_ranks(ctx: ExplainContext, split: str = "test", max_users: int = 2000) -> pd.DataFrame:
    """Rank (1-based, training items masked) of every held-out (user, item) pair of ``split`` for
    the first ``max_users`` users that have held-out items. Columns user, item, rank."""
    pairs = np.asarray(getattr(ctx.data, split))
    if len(pairs) == 0:
        return pd.DataFrame(columns=["user", "item", "rank"])
    users = np.unique(pairs[:, 0])[:max_users]
    sel = pairs[np.isin(pairs[:, 0], users)]
    return pd.DataFrame({"user": sel[:, 0], "item": sel[:, 1], "rank": held_out_pair_ranks(ctx, sel)})
