"""Explanations over a loaded checkpoint (spec §8).

Everything here reads a checkpoint and its dataset and computes; nothing trains. The
dashboard builds one :class:`ExplainContext` per checkpoint (cached) and calls the functions
below. Attribution is exact: score = base + Σ_{e,m} g_e·c_{e,m}, the base counting as B.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .checkpoint import Checkpoint, load_checkpoint, read_encoded
from .data import Dataset
from .evaluate import popularity_buckets
from .metrics import build_csr, gather_csr
from .model import ANCHORS, EXPERT_NAMES, MODALITIES, N_EXPERTS, ROLES, Precomputed, template_matrix
from .pipeline import dataset_for_checkpoint
from .trainer import model_inputs

ANCHOR_WORDS = {"B": "Behaviour", "A": "Appearance", "S": "Semantics"}
ROLE_WORDS = {"Dom": "Dominant", "Bal": "Balanced", "Comp": "Complementary"}
MODALITY_WORDS = {"B": "behaviour (co-interactions)", "A": "appearance (images)",
                  "S": "semantics (titles and attributes)"}
BUCKET_NAMES = ("head", "mid", "tail")
ATTRIBUTE_SKIP = {"itemID", "title", "overview", "movie_id", "has_image", "community"}


@dataclass
class ExplainContext:
    """A checkpoint, its dataset and the precomputed representations to score with."""

    ckpt: Checkpoint
    data: Dataset
    pre: Precomputed
    train_indptr: np.ndarray  # [U+1] CSR of training positives
    train_indices: np.ndarray
    popularity: np.ndarray  # [I] training degree
    buckets: np.ndarray  # [I] 0 head, 1 mid, 2 tail
    templates: np.ndarray = field(default_factory=lambda: template_matrix().numpy())

    @classmethod
    @torch.no_grad()
    def load(cls, source: str | Path | Checkpoint, data: Dataset | None = None) -> "ExplainContext":
        ckpt = source if isinstance(source, Checkpoint) else load_checkpoint(source)
        data = data or dataset_for_checkpoint(ckpt)
        cached = read_encoded(ckpt.path, ckpt.model.channel_shape())
        if cached is not None:  # written with the weights at export: no graphs, no kNN
            pre = ckpt.model.precompute_from_channels(cached)
        else:
            graphs, image_feat, text_feat = model_inputs(ckpt.config, data, torch.device("cpu"))
            image_feat, text_feat = ckpt.model.content_inputs(image_feat, text_feat)
            pre = ckpt.model.precompute(graphs, image_feat, text_feat)
        indptr, indices = build_csr(data.train, data.n_users, data.n_items)
        popularity = data.item_popularity()
        buckets = popularity_buckets(data.train, data.n_items, ckpt.config.graph.tail_quantile)
        return cls(ckpt, data, pre, np.asarray(indptr), np.asarray(indices), popularity, buckets)

    @property
    def model(self):
        return self.ckpt.model

    @property
    def has_experts(self) -> bool:
        return bool(self.ckpt.model.use_experts)

    def history(self, user: int) -> np.ndarray:
        """Training items of ``user`` [h] int64."""
        return self.train_indices[self.train_indptr[user]:self.train_indptr[user + 1]].astype(np.int64)

    def scores(self, users: np.ndarray | list[int]) -> torch.Tensor:
        """Scores [B, I] with training positives masked to −inf."""
        users_t = torch.as_tensor(np.asarray(users, dtype=np.int64))
        scores = self.model.score_users(self.pre, users_t).clone()
        rows, items = gather_csr((torch.from_numpy(self.train_indptr), torch.from_numpy(self.train_indices)),
                                 users_t)
        scores[rows, items] = -float("inf")
        return scores


# ---------------------------------------------------------------------------- per user
@torch.no_grad()
def recommend(ctx: ExplainContext, user: int, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Top-``n`` items [n] and their scores [n] for ``user`` (training items excluded)."""
    top = ctx.scores([user])[0].topk(n)
    return top.indices.numpy(), top.values.numpy()


@torch.no_grad()
def ranks_of(ctx: ExplainContext, user: int, items: np.ndarray) -> np.ndarray:
    """1-based rank [n] of each of ``items`` for ``user`` in ``ctx``'s model (training masked)."""
    scores = ctx.scores([user])[0]
    chosen = scores[torch.as_tensor(np.asarray(items, dtype=np.int64))]
    return (scores.unsqueeze(0) > chosen.unsqueeze(1)).sum(1).numpy() + 1


def style_label(gates: np.ndarray) -> str:
    """e.g. "Behaviour-anchored, Balanced" for the expert with the largest gate (gates [9])."""
    anchor, role = EXPERT_NAMES[int(np.argmax(gates))].split("-")
    return f"{ANCHOR_WORDS[anchor]}-anchored, {ROLE_WORDS[role]}"


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

    @property
    def contribution_share(self) -> np.ndarray:
        """c_m / Σ|c_m| [3] (signed shares; |shares| sum to 1)."""
        total = np.abs(self.contribution).sum()
        return self.contribution / total if total > 0 else self.contribution

    def role_sums(self) -> dict[str, float]:
        return {r: float(self.gates[[e for e, n in enumerate(EXPERT_NAMES) if n.endswith(r)]].sum())
                for r in ROLES}

    def anchor_sums(self) -> dict[str, float]:
        return {a: float(self.gates[[e for e, n in enumerate(EXPERT_NAMES) if n.startswith(a)]].sum())
                for a in ANCHORS}

    def active_experts(self) -> list[tuple[str, float]]:
        """Experts with a non-zero gate, largest first, e.g. [("B-Bal", 0.58), ("A-Bal", 0.42)]."""
        order = np.argsort(-self.gates, kind="stable")
        return [(EXPERT_NAMES[e], float(self.gates[e])) for e in order if self.gates[e] > 0]

    def sentence(self, title: str) -> str:
        """The explanation in words a person can follow."""
        lead = int(np.argmax(self.contribution_share))
        share = self.contribution_share[lead]
        experts = ", ".join(f"{n} {w:.2f}" for n, w in self.active_experts()) or "none (behaviour-only model)"
        text = (f"\u201c{title}\u201d is recommended at rank {self.rank} mainly through "
                f"{MODALITY_WORDS[MODALITIES[lead]]}, which carries {abs(share):.0%} of its score. "
                f"Routing style: {self.style} (experts: {experts}). {self.cue}")
        if self.baseline_rank is not None:
            text += f" The baseline ranks it {self.baseline_rank}."
        return text


@torch.no_grad()
def explain_items(ctx: ExplainContext, user: int, items: np.ndarray, ranks: np.ndarray | None = None,
                  baseline: ExplainContext | None = None) -> list[ItemExplanation]:
    """Exact attribution for ``items`` [n] of ``user``."""
    items = np.asarray(items, dtype=np.int64)
    parts = ctx.model.decompose(ctx.pre, int(user), torch.from_numpy(items))
    gates = parts["gates"].numpy()  # [n, 9]
    contrib = parts["contributions"].numpy()  # [n, 9, 3]
    gated = (gates[:, :, None] * contrib).sum(1)  # [n, 3]
    gated[:, 0] += parts["base"].numpy()
    if ctx.has_experts:
        reliance = gates @ ctx.templates  # [n, 3]
    else:
        reliance = np.tile(np.array([1.0, 0.0, 0.0]), (len(items), 1))
    ranks = ranks if ranks is not None else ranks_of(ctx, user, items)
    base_ranks = ranks_of(baseline, user, items) if baseline is not None else None
    out = []
    for j, item in enumerate(items):
        lead = MODALITIES[int(np.argmax(np.abs(gated[j])))]
        out.append(ItemExplanation(
            user=int(user), item=int(item), rank=int(ranks[j]), score=float(parts["score"][j]),
            base=float(parts["base"][j]), gates=gates[j], reliance=reliance[j], contribution=gated[j],
            style=style_label(gates[j]) if ctx.has_experts else "Behaviour only (LightGCN)",
            cue=strongest_cue(ctx, int(user), int(item), lead),
            baseline_rank=None if base_ranks is None else int(base_ranks[j])))
    return out


def case_study(ctx: ExplainContext, user: int, n: int = 10,
               baseline: ExplainContext | None = None) -> list[ItemExplanation]:
    """The user's top-``n`` recommendations, each explained."""
    items, _ = recommend(ctx, user, n)
    return explain_items(ctx, user, items, np.arange(1, len(items) + 1), baseline)


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
        row.update({f"gate_{n}": float(ex.gates[e]) for e, n in enumerate(EXPERT_NAMES)})
        row["cue"] = ex.cue
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- aggregates
def sample_users(ctx: ExplainContext, max_users: int, seed: int = 0) -> np.ndarray:
    """Users with a training history, all of them or a fixed random sample of ``max_users``."""
    active = np.flatnonzero(np.diff(ctx.train_indptr) > 0)
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
        logits = model.router.pair_logits(ctx.pre.flat[u], ctx.pre.flat[i + model.n_users])
        _, gates = model.route(logits, model.eval_route())
        g = gates.numpy()
        frame = pd.DataFrame(g, columns=list(EXPERT_NAMES))
        frame.insert(0, "user", u.numpy())
        frame.insert(1, "item", i.numpy())
        frame.insert(2, "rank", np.tile(np.arange(1, top_n + 1), len(chunk)))
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    activity = np.diff(ctx.train_indptr)
    table["user_activity"] = activity[table["user"].to_numpy()]
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
    roles = pd.DataFrame({r: util[[n for n in EXPERT_NAMES if n.endswith(r)]].sum(axis=1) for r in ROLES})
    anchors = pd.DataFrame({a: util[[n for n in EXPERT_NAMES if n.startswith(a)]].sum(axis=1)
                            for a in ANCHORS})
    return roles, anchors


def activity_bucket(activity: np.ndarray) -> np.ndarray:
    """Label users by history length tercile: "light", "medium", "heavy"."""
    q1, q2 = np.quantile(activity, [1 / 3, 2 / 3])
    return np.where(activity <= q1, "light", np.where(activity <= q2, "medium", "heavy"))


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
    users = users[np.isin(users, sample_users(ctx, 2000))]
    rows = []
    for start in range(0, len(users), 256):
        chunk = users[start:start + 256]
        ours, theirs = ctx.scores(chunk), baseline.scores(chunk)
        for row, user in enumerate(chunk):
            held = pairs[pairs[:, 0] == user, 1]
            r_ours = (ours[row].unsqueeze(0) > ours[row, held].unsqueeze(1)).sum(1) + 1
            r_base = (theirs[row].unsqueeze(0) > theirs[row, held].unsqueeze(1)).sum(1) + 1
            gain = (r_base - r_ours).numpy()
            j = int(np.argmax(gain))
            rows.append((int(user), int(held[j]), int(r_ours[j]), int(r_base[j]), int(gain[j])))
    frame = pd.DataFrame(rows, columns=["user", "item", "rank", "baseline_rank", "gain"])
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


__all__ = ["ExplainContext", "ItemExplanation", "N_EXPERTS", "activity_bucket", "case_study",
           "case_study_table", "explain_items", "family_sums", "ranks_of", "recommend",
           "reliance_agreement", "routing_table", "strongest_cue", "style_label", "typical_cases",
           "utilization"]
