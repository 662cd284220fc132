"""The scaling section of the bench: per-step and per-interaction costs of runs at 1x/2x/4x Baby
and a least-squares projection to Amazon Electronics scale (a PROJECTION, never a measurement)."""
from __future__ import annotations

import math
from typing import Any

# MMRec's Amazon Electronics: 192,403 users x 63,001 items, 1,689,188 interactions.
ELECTRONICS = {"n_users": 192_403, "n_items": 63_001, "n_interactions": 1_689_188}
BATCH = 2048  # TrainConfig.batch_size, the batch every scaling run trains with
MB = 1024 * 1024
SCALING_METRICS = ("graph_knn_s", "epoch_bo_s", "epoch_full_s", "eval_bo_s", "eval_full_s")


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares y = a + b·x."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx > 0 else 0.0
    return my - b * mx, b


def steps(row: dict[str, Any]) -> int:
    """Training steps per epoch of a scaling row."""
    return math.ceil(row["n_train"] / BATCH)


def graph_size(row: dict[str, Any]) -> int:
    """What one full-graph training step touches: 2 × training pairs (the bipartite CSR's
    entries) + every node's embedding row."""
    return 2 * row["n_train"] + row["n_users"] + row["n_items"]


def project(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-step and per-interaction costs of the scaling runs and a projection to Electronics.

    A training step propagates the whole graph (as LightGCN does), so its cost grows with the
    graph and an epoch, steps × step, grows with interactions × graph size: epochs are projected
    as the target's steps × a least-squares line of seconds per step in graph size."""
    base = rows[0]
    train_share = base["n_train"] / base["n_interactions"]
    target = {**ELECTRONICS, "n_train": round(ELECTRONICS["n_interactions"] * train_share)}
    size = {"step": graph_size, "eval": lambda r: r["n_users"] * r["n_items"],
            "graph": lambda r: r["n_items"] ** 2}
    models = {"graph_knn_s": ("graph", "n_items² (all-pairs similarity)"),
              "epoch_bo_s": ("step", "graph size"), "epoch_full_s": ("step", "graph size"),
              "eval_bo_s": ("eval", "users × items (full ranking)"),
              "eval_full_s": ("eval", "users × items (full ranking)")}
    table = []
    for row in rows:
        out = {"dataset": row["name"], "n_users": row["n_users"], "n_items": row["n_items"],
               "n_train": row["n_train"], **{m: row.get(m) for m in SCALING_METRICS}}
        out["step_bo_ms"] = 1e3 * row["epoch_bo_s"] / steps(row)
        out["step_full_ms"] = 1e3 * row["epoch_full_s"] / steps(row)
        out["epoch_bo_us_per_interaction"] = 1e6 * row["epoch_bo_s"] / row["n_train"]
        out["epoch_full_us_per_interaction"] = 1e6 * row["epoch_full_s"] / row["n_train"]
        out["epoch_bo_ratio_vs_1x"] = row["epoch_bo_s"] / base["epoch_bo_s"]
        out["epoch_full_ratio_vs_1x"] = row["epoch_full_s"] / base["epoch_full_s"]
        out["step_full_ratio_vs_1x"] = out["step_full_ms"] / (1e3 * base["epoch_full_s"] / steps(base))
        out["graph_ratio_vs_1x"] = graph_size(row) / graph_size(base)
        out["interactions_ratio_vs_1x"] = row["n_train"] / base["n_train"]
        table.append(out)
    if len(rows) < 2:
        return {"rows": table, "projection": None}
    projection = {"dataset": "electronics (PROJECTION, not measured)", **target, "by": {}}
    for metric, (kind, what) in models.items():
        xs = [float(size[kind](r)) for r in rows]
        if kind == "step":  # fit seconds per step, then scale by the target's steps
            ys = [float(r[metric]) / steps(r) for r in rows]
            a, b = _fit(xs, ys)
            projection[metric] = max(a + b * float(size[kind](target)), 0.0) * steps(target)
            projection["by"][metric] = (f"{steps(target):,} steps × least-squares line of seconds per step "
                                        f"in {what} (2·train pairs + nodes) through the {len(rows)} scaling runs")
            continue
        ys = [float(r[metric]) for r in rows]
        a, b = _fit(xs, ys)
        projection[metric] = max(a + b * float(size[kind](target)), 0.0)
        projection["by"][metric] = f"least-squares line in {what} through the {len(rows)} scaling runs"
    projection["image_feat_mb"] = target["n_items"] * 4096 * 4 / MB
    return {"rows": table, "projection": projection}
