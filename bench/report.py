"""How the bench reports: the results table (text and Markdown) and the Markdown page of a run."""
from __future__ import annotations

import math
from typing import Any

from scaling import ELECTRONICS, SCALING_METRICS

from magnet.fileio import markdown_table


def fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if unit == "MB":
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def status(rec: dict[str, Any]) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a" if rec["target"] else "info"}[rec["pass"]]


def main_table(records: list[dict[str, Any]]) -> list[list[str]]:
    rows = [["metric", "dataset", "median", "min", "n", "unit", "target", "status"]]
    for r in records:
        rows.append([r["metric"], r["dataset"], fmt(r["value"], r["unit"]), fmt(min(r["samples"]), r["unit"]),
                     str(len(r["samples"])), r["unit"], r["target"] or "", status(r)])
    return rows


def scaling_tables(scaling: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    cols = ["dataset", "n_users", "n_items", "n_train", *SCALING_METRICS, "step_bo_ms", "step_full_ms",
            "step_full_ratio_vs_1x", "graph_ratio_vs_1x", "epoch_full_ratio_vs_1x", "interactions_ratio_vs_1x"]
    rows = [cols] + [[str(r["dataset"])] + [fmt(float(r[c])) if not isinstance(r[c], int) else f"{r[c]:,}"
                                            for c in cols[1:]] for r in scaling["rows"]]
    p = scaling["projection"]
    proj = [["metric", "projected value", "model"]]
    if p is None:
        return rows, proj + [["—", "—", "needs two complete scaling runs"]]
    for metric, how in p["by"].items():
        proj.append([metric, f"{fmt(p[metric])} s", how])
    proj.append(["image_feat_mb", f"{p['image_feat_mb']:,.0f} MB", "n_items × 4096 float32 (memory, exact)"])
    return rows, proj


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def md_table(rows: list[list[str]]) -> str:
    """GitHub Markdown of a header row and body rows of strings."""
    return markdown_table(rows[0], rows[1:])


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    parts = [f"# MAGNET bench: {meta['preset']} preset on {meta['device_name']}", "",
             f"Command: `{meta['command']}`  ", f"When: {meta['created_at']} · commit `{meta['git_commit'][:10]}` · "
             f"torch {meta['torch_version']} · {meta['threads']} threads · medians of {meta['repeats']} · "
             f"load average {meta['loadavg_start']} → {meta['loadavg_end']}", "",
             "## Datasets", "", md_table([["name", "spec", "users", "items", "train", "valid", "test",
                                             "image_dim", "text_dim", "synthetic features"]] + [
                 [n, f"`{d['spec']}`", f"{d['n_users']:,}", f"{d['n_items']:,}", f"{d['n_train']:,}",
                  f"{d['n_valid']:,}", f"{d['n_test']:,}", str(d["image_dim"]), str(d["text_dim"]),
                  str(d["synthetic_features"])] for n, d in result["datasets"].items()]),
             "", "## Results", "", md_table(main_table(result["results"]))]
    if result.get("scaling"):
        rows, proj = scaling_tables(result["scaling"])
        parts += ["", "## Scaling (synthetic presets, MMRec-shaped synthetic features)", "", md_table(rows),
                  "", "### Electronics scale — PROJECTION (linear extrapolation, not measured)", "",
                  f"{ELECTRONICS['n_users']:,} users × {ELECTRONICS['n_items']:,} items, "
                  f"{ELECTRONICS['n_interactions']:,} interactions "
                  f"(~{(result['scaling']['projection'] or {}).get('n_train', 0):,} train).", "", md_table(proj)]
    if result["notes"]:
        parts += ["", "## Notes", ""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(parts) + "\n"
