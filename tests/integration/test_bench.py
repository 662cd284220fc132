"""The performance bench cannot rot: ``bench/run.py --preset small`` runs end to end, and the
synthetic features it pairs with interaction-only data (``synthfeat:``) behave as documented."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains, or runs the CLI in subprocesses

REPO = Path(__file__).resolve().parents[2]
BENCH_METRICS = ("graph_knn_s", "graph_build_s", "init_bo_s", "init_full_s", "epoch_bo_s", "epoch_full_s",
                 "full_over_bo", "eval_bo_s", "eval_full_s", "peak_rss_mb", "train_cli_s", "explain_ms",
                 "dashboard_first_load_s", "dashboard_routing_table_s")


def test_bench_small_preset(tmp_path: Path) -> None:
    out = tmp_path / "small"
    env = {**os.environ, "MAGNET_CACHE": str(REPO / ".magnet_cache")}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--preset", "small", "--device", "cpu",
                           "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "small.json").read_text())
    assert (tmp_path / "small.md").read_text().startswith("# MAGNET bench")
    values = {r["metric"]: r["value"] for r in result["results"]}
    for metric in BENCH_METRICS:
        assert metric in values, f"{metric} missing from {sorted(values)}"
        assert math.isfinite(values[metric]) and values[metric] > 0, (metric, values[metric])
    assert all(r["pass"] is None for r in result["results"])  # targets are for Baby scale only
    assert values["full_over_bo"] == pytest.approx(values["epoch_full_s"] / values["epoch_bo_s"])
    assert "explain_ms" in proc.stdout and "peak_rss_mb" in proc.stdout  # the one printed table












def test_scaling_projection_is_linear() -> None:
    """Epochs = steps × a step cost linear in graph size; evaluation linear in users × items."""
    import importlib.util
    import math

    spec = importlib.util.spec_from_file_location("bench_scaling", REPO / "bench" / "scaling.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    def graph(n_users, n_items, n_train):
        return 2 * n_train + n_users + n_items

    def n_steps(n_train):
        return math.ceil(n_train / bench.BATCH)

    rows = []
    for scale in (1, 2, 4):
        n_users, n_items, n_train = 1000 * scale, 300 * scale, 20_000 * scale
        g = graph(n_users, n_items, n_train)
        rows.append({"name": f"x{scale}", "n_users": n_users, "n_items": n_items, "n_train": n_train,
                     "n_interactions": n_train * 5 // 4, "graph_knn_s": 1e-6 * n_items ** 2,
                     "epoch_bo_s": n_steps(n_train) * (0.01 + 1e-6 * g),
                     "epoch_full_s": n_steps(n_train) * 3e-6 * g,
                     "eval_bo_s": 1e-8 * n_users * n_items, "eval_full_s": 3e-8 * n_users * n_items})
    result = bench.project(rows)
    p, e = result["projection"], bench.ELECTRONICS
    assert p["n_train"] == round(e["n_interactions"] * 0.8)
    g_target = graph(e["n_users"], e["n_items"], p["n_train"])
    assert p["epoch_bo_s"] == pytest.approx(n_steps(p["n_train"]) * (0.01 + 1e-6 * g_target))
    assert p["epoch_full_s"] == pytest.approx(n_steps(p["n_train"]) * 3e-6 * g_target)
    assert p["eval_full_s"] == pytest.approx(3e-8 * e["n_users"] * e["n_items"])
    assert p["graph_knn_s"] == pytest.approx(1e-6 * e["n_items"] ** 2)
    # the per-step cost grows like the graph; the epoch like steps × graph
    steps_ratio = [n_steps(r["n_train"]) / n_steps(rows[0]["n_train"]) for r in rows]
    assert [r["step_full_ratio_vs_1x"] for r in result["rows"]] == pytest.approx(
        [r["graph_ratio_vs_1x"] for r in result["rows"]])
    assert [r["epoch_full_ratio_vs_1x"] for r in result["rows"]] == pytest.approx(
        [s * r["graph_ratio_vs_1x"] for s, r in zip(steps_ratio, result["rows"])])
    assert "PROJECTION" in p["dataset"]


def test_world_probes_runs_on_tiny() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "world_probes.py"), "--preset", "tiny", "--seeds", "1",
                           "--overlaps", "0", "1"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 2 and "redundancy" in proc.stdout
