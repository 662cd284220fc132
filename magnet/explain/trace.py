"""What a checkpoint's training trace (trace.csv) says about routing: the last steps' gates,
the most-used experts, and gate shares over training by expert, role family or anchor."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..vocab import ANCHORS, EXPERT_NAMES, ROLES, experts_of_anchor, experts_of_role


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
        frame = pd.DataFrame({r: frame[experts_of_role(r)].sum(axis=1) for r in ROLES})
    elif family == "anchor":
        frame = pd.DataFrame({a: frame[experts_of_anchor(a)].sum(axis=1) for a in ANCHORS})
    frame.index = trace["step"].to_numpy()
    if len(frame) > max_points:
        groups = np.arange(len(frame)) // int(np.ceil(len(frame) / max_points))
        frame = frame.groupby(groups).mean().set_index(
            pd.Index(pd.Series(trace["step"].to_numpy()).groupby(groups).first().to_numpy()))
    frame.index.name = "step"
    return frame
