"""Small pure computations for the dashboard's tables and charts (no Streamlit). What the
library also needs (trace summaries, held-out ranks) lives in :mod:`magnet.explain`."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from magnet.vocab import ANCHORS, EXPERT_NAMES, ROLES

METRIC_COLUMNS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")


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
