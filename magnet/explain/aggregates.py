"""Explanations in aggregate: routing of many users' top-N, expert utilization by role family,
anchor, user activity and item popularity, recovered vs planted reliance, held-out ranks and
the users a model improves most on a baseline."""
from __future__ import annotations

from typing import Any

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


def reliance_agreement(ctx: ExplainContext, table: pd.DataFrame) -> dict[str, Any] | None:
    """Recovered vs planted modality reliance (synthetic data only).

    Recovered reliance of a user = mean over their top-N of r_m. Returns the mean Spearman
    rank correlation per user, the share of users whose top modality is right, and a per-user
    frame (user, planted_B/A/S, recovered_B/A/S).
    """
    planted = ctx.ckpt.planted or ctx.data.planted
    if planted is None or table.empty or "reliance" not in planted:
        return None
    recovered = table.groupby("user")[[f"reliance_{m}" for m in MODALITIES]].mean()
    users = recovered.index.to_numpy()
    truth = np.asarray(planted["reliance"])[users]
    rec = recovered.to_numpy()

    def ranks(a: np.ndarray) -> np.ndarray:
        return a.argsort(1).argsort(1).astype(float)

    rt, rr = ranks(truth) - 1.0, ranks(rec) - 1.0
    denom = np.sqrt((rt ** 2).sum(1) * (rr ** 2).sum(1))
    spearman = np.where(denom > 0, (rt * rr).sum(1) / np.where(denom > 0, denom, 1), 0.0)
    top_right = truth.argmax(1) == rec.argmax(1)
    frame = pd.DataFrame({"user": users,
                          **{f"planted_{m}": truth[:, k] for k, m in enumerate(MODALITIES)},
                          **{f"recovered_{m}": rec[:, k] for k, m in enumerate(MODALITIES)}})
    chance = np.bincount(truth.argmax(1), minlength=3).max() / len(users)
    return {"spearman": float(spearman.mean()), "top_modality_accuracy": float(top_right.mean()),
            "majority_rate": float(chance), "n_users": int(len(users)), "per_user": frame}


@torch.no_grad()
def typical_cases(ctx: ExplainContext, baseline: ExplainContext, table: pd.DataFrame,
                  split: str = "test", per_style: int = 3) -> pd.DataFrame:
    """Users whose held-out items MAGNET ranks much better than the baseline, per routing style.

    Returns columns user, item, title, rank, baseline_rank, gain, style.
    """
    pairs = getattr(ctx.data, split)
    if len(pairs) == 0:
        return pd.DataFrame()
    users = np.unique(pairs[:, 0])
    pairs = pairs[np.isin(pairs[:, 0], users[np.isin(users, sample_users(ctx, 2000))])]
    ranks = pd.DataFrame({"user": pairs[:, 0], "item": pairs[:, 1],
                          "rank": held_out_pair_ranks(ctx, pairs), "baseline_rank": held_out_pair_ranks(baseline, pairs)})
    ranks["gain"] = ranks["baseline_rank"] - ranks["rank"]
    frame = ranks.loc[ranks.groupby("user", sort=True)["gain"].idxmax()].reset_index(drop=True)
    frame = frame[frame["gain"] > 0]
    if frame.empty:
        return frame
    styles = []
    for user, item in zip(frame["user"], frame["item"]):
        parts = ctx.model.decompose(ctx.pre, int(user), torch.tensor([int(item)]))
        styles.append(style_label(parts["gates"][0].numpy()) if ctx.has_experts else "Behaviour only")
    frame["style"] = styles
    frame["title"] = [ctx.data.item_title(int(i)) for i in frame["item"]]
    frame = frame.sort_values(["style", "gain"], ascending=[True, False])
    return frame.groupby("style", sort=True).head(per_style).reset_index(drop=True)


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
