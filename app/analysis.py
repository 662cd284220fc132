"""Small pure computations over checkpoints and explain tables (no Streamlit)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from .theme import ANCHORS, EXPERT_NAMES, ROLES

METRIC_COLUMNS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")


def gate_columns(trace: pd.DataFrame, prefix: str = "gate_") -> list[str]:
    return [f"{prefix}{n}" for n in EXPERT_NAMES if f"{prefix}{n}" in trace.columns]


def has_expert_trace(trace: pd.DataFrame) -> bool:
    cols = gate_columns(trace)
    return bool(cols) and float(trace[cols].abs().to_numpy().sum()) > 0


def final_routing(trace: pd.DataFrame, tail: float = 0.1) -> dict[str, Any]:
    """Headline routing facts from a trace: final H and H_ema, and mean gate per expert over the
    last ``tail`` share of steps (at least one step)."""
    if trace.empty:
        return {"H": None, "H_ema": None, "gates": pd.Series(dtype=float)}
    n = max(1, int(round(len(trace) * tail)))
    last = trace.tail(n)
    cols = gate_columns(trace)
    gates = last[cols].mean().rename(lambda c: c[len("gate_"):]) if cols else pd.Series(dtype=float)
    return {"H": float(trace["H"].iloc[-1]), "H_ema": float(trace["H_ema"].iloc[-1]), "gates": gates}


def most_used(gates: pd.Series, n: int = 3) -> list[tuple[str, float]]:
    gates = gates.sort_values(ascending=False, kind="stable")
    return [(str(k), float(v)) for k, v in gates.head(n).items() if v > 0]


def trace_family_shares(trace: pd.DataFrame, family: str = "expert", prefix: str = "gate_",
                        max_points: int = 600) -> pd.DataFrame:
    """Per-step mean gate by expert / role / anchor (rows: steps, downsampled by averaging)."""
    cols = gate_columns(trace, prefix)
    frame = trace[cols].rename(columns=lambda c: c[len(prefix):])
    if family == "role":
        frame = pd.DataFrame({r: frame[[n for n in EXPERT_NAMES if n.endswith(r)]].sum(axis=1) for r in ROLES})
    elif family == "anchor":
        frame = pd.DataFrame({a: frame[[n for n in EXPERT_NAMES if n.startswith(a)]].sum(axis=1) for a in ANCHORS})
    frame.index = trace["step"].to_numpy()
    if len(frame) > max_points:
        groups = np.arange(len(frame)) // int(np.ceil(len(frame) / max_points))
        frame = frame.groupby(groups).mean().set_index(
            pd.Index(pd.Series(trace["step"].to_numpy()).groupby(groups).first().to_numpy()))
    frame.index.name = "step"
    return frame


def downsample(frame: pd.DataFrame, max_points: int = 3000) -> pd.DataFrame:
    if len(frame) <= max_points:
        return frame
    stride = int(np.ceil(len(frame) / max_points))
    return frame.iloc[::stride]


def anchor_role_matrix(util_row: pd.Series) -> pd.DataFrame:
    """3×3 anchors (rows) × roles (columns) of per-expert utilization."""
    return pd.DataFrame([[float(util_row.get(f"{a}-{r}", 0.0)) for r in ROLES] for a in ANCHORS],
                        index=list(ANCHORS), columns=list(ROLES))


def collapsed_experts(util_row: pd.Series, threshold: float = 0.01) -> list[str]:
    """Experts whose mean gate is below ``threshold`` (1 % by default; uniform is 11 %)."""
    return [n for n in EXPERT_NAMES if float(util_row.get(n, 0.0)) < threshold]


def item_dominant(table: pd.DataFrame, n_items: int) -> pd.DataFrame:
    """Per item, the expert with the largest mean gate over the pairs it is recommended in
    ("not recommended" when it never is), its anchor and role."""
    out = pd.DataFrame({"item": np.arange(n_items), "expert": "not recommended", "anchor": "—",
                        "role": "—", "gate": np.nan})
    if table.empty:
        return out
    mean = table.groupby("item")[list(EXPERT_NAMES)].mean()
    best = mean.idxmax(axis=1)
    idx = mean.index.to_numpy()
    out.loc[idx, "expert"] = best.to_numpy()
    out.loc[idx, "anchor"] = [b.split("-")[0] for b in best]
    out.loc[idx, "role"] = [b.split("-")[1] for b in best]
    out.loc[idx, "gate"] = mean.max(axis=1).to_numpy()
    return out


def user_dominant(table: pd.DataFrame, n_users: int) -> pd.DataFrame:
    out = pd.DataFrame({"user": np.arange(n_users), "expert": "no recommendations", "anchor": "—"})
    if table.empty:
        return out
    mean = table.groupby("user")[list(EXPERT_NAMES)].mean()
    best = mean.idxmax(axis=1)
    out.loc[mean.index.to_numpy(), "expert"] = best.to_numpy()
    out.loc[mean.index.to_numpy(), "anchor"] = [b.split("-")[0] for b in best]
    return out


def recovered_reliance(table: pd.DataFrame, user: int) -> np.ndarray | None:
    """Mean r_m over the user's top-N pairs in a routing table [3] (B, A, S)."""
    if table.empty:
        return None
    rows = table[table["user"] == user]
    if rows.empty:
        return None
    return rows[[f"reliance_{m}" for m in ANCHORS]].mean().to_numpy()


@torch.no_grad()
def held_out_ranks(ctx: Any, split: str = "test", max_users: int = 2000, batch: int = 256) -> pd.DataFrame:
    """Rank (1-based, training items masked) of every held-out (user, item) pair of ``split`` for
    the first ``max_users`` users that have held-out items. Columns user, item, rank."""
    pairs = np.asarray(getattr(ctx.data, split))
    if len(pairs) == 0:
        return pd.DataFrame(columns=["user", "item", "rank"])
    users = np.unique(pairs[:, 0])[:max_users]
    frames = []
    for start in range(0, len(users), batch):
        chunk = users[start:start + batch]
        scores = ctx.scores(chunk)
        sel = pairs[np.isin(pairs[:, 0], chunk)]
        row_of = {int(u): j for j, u in enumerate(chunk)}
        rows = torch.as_tensor([row_of[int(u)] for u in sel[:, 0]], dtype=torch.long)
        items = torch.as_tensor(sel[:, 1], dtype=torch.long)
        chosen = scores[rows, items]
        ranks = (scores[rows] > chosen.unsqueeze(1)).sum(axis=1) + 1
        frames.append(pd.DataFrame({"user": sel[:, 0], "item": sel[:, 1], "rank": ranks.numpy()}))
    return pd.concat(frames, ignore_index=True)


def metrics_row(name: str, ckpt: Any) -> dict[str, Any]:
    """One line of the ablation table (like the paper's) from a loaded checkpoint."""
    test = ckpt.metrics.get("test", {})
    valid = ckpt.metrics.get("valid", {})
    row: dict[str, Any] = {"checkpoint": name, "variant": ckpt.config.variant}
    for key in METRIC_COLUMNS:
        row[key] = test.get(key)
    row["tail_recall@20"] = test.get("buckets", {}).get("tail", {}).get("recall@20")
    row["valid_recall@20"] = valid.get("recall@20")
    row["switch_step"] = ckpt.switch.get("step")
    row["switch_reason"] = ckpt.switch.get("reason")
    row["best_epoch"] = ckpt.metrics.get("best_epoch")
    row["train_seconds"] = ckpt.info.get("train_seconds")
    return row
