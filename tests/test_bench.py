"""The performance bench cannot rot: ``bench/run.py --preset small`` runs end to end, and the
synthetic features it pairs with interaction-only data (``synthfeat:``) behave as documented."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from magnet.data import load_dataset
from magnet.data.synthfeat import IMAGE_DIM, TEXT_DIM, synthfeat_dir
from magnet.errors import DataError

REPO = Path(__file__).resolve().parents[1]
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


def _write_inter(root: Path, rows: list[tuple[int, int, int]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=["userID", "itemID", "x_label"])
    frame["rating"], frame["timestamp"] = 1.0, 0
    path = root / "toy.inter"
    frame[["itemID", "userID", "rating", "timestamp", "x_label"]].to_csv(path, sep="\t", index=False)
    return path


def _toy_rows(n_users: int = 40, n_items: int = 30, seed: int = 0) -> list[tuple[int, int, int]]:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        others = np.setdiff1d(np.arange(n_items), [u % n_items])
        items = np.concatenate([[u % n_items], rng.choice(others, size=7, replace=False)])  # every item appears
        labels = [0] * 6 + [1, 2]
        rows += [(u, int(i), lab) for i, lab in zip(items, labels)]
    return rows


def test_synthfeat_features(tmp_path: Path) -> None:
    source = tmp_path / "src"
    inter = _write_inter(source, _toy_rows())
    cache = tmp_path / "cache"
    data = load_dataset(f"synthfeat:{source}", cache_dir=cache)
    assert data.synthetic_features
    assert data.image_feat.shape == (data.n_items, IMAGE_DIM) and data.image_feat.dtype == np.float32
    assert data.text_feat.shape == (data.n_items, TEXT_DIM) and data.text_feat.dtype == np.float32
    assert (data.image_feat >= 0).all() and (data.image_feat == 0).any()
    assert np.allclose(np.linalg.norm(data.text_feat, axis=1), 1.0, atol=1e-4)
    root = Path(data.root)
    assert root.parent == cache.resolve() and root.name.startswith("synthfeat-toy-")
    assert (root / "toy.inter").is_symlink() and (root / "toy.inter").resolve() == inter.resolve()
    assert json.loads((root / "features.json").read_text())["synthetic"] is True
    assert not list(cache.glob(".tmp-*"))

    # the second load uses the cache: the feature files are not rewritten
    stamp = (root / "image_feat.npy").stat().st_mtime_ns
    again = load_dataset(f"synthfeat:{source}", cache_dir=cache)
    assert (root / "image_feat.npy").stat().st_mtime_ns == stamp
    assert np.array_equal(again.image_feat, data.image_feat) and again.fingerprint == data.fingerprint


def test_synthfeat_uses_train_rows_only(tmp_path: Path) -> None:
    rows = _toy_rows()
    a = synthfeat_dir(_write_inter(tmp_path / "a", rows).parent, tmp_path / "cache")
    changed = list(rows)
    held_out = [j for j, r in enumerate(rows) if r[2] != 0]
    users_items = {(u, i) for u, i, _ in rows}
    for j in held_out[:20]:  # move valid/test rows to other (existing, unused) items
        u, i, lab = changed[j]
        new = next(k for k in range(30) if (u, k) not in users_items)
        users_items.add((u, new))
        changed[j] = (u, new, lab)
    inter_b = _write_inter(tmp_path / "b", changed)
    b = synthfeat_dir(inter_b.parent, tmp_path / "cache")
    assert a != b
    for name in ("image_feat.npy", "text_feat.npy"):
        assert np.array_equal(np.load(a / name), np.load(b / name)), name

    train_changed = list(rows)  # ... while moving a train row does change them
    u, i, _ = train_changed[0]
    train_changed[0] = (u, next(k for k in range(30) if (u, k) not in {(x, y) for x, y, _ in rows}), 0)
    c = synthfeat_dir(_write_inter(tmp_path / "c", train_changed).parent, tmp_path / "cache")
    assert not np.array_equal(np.load(a / "image_feat.npy"), np.load(c / "image_feat.npy"))


def test_synthfeat_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"synthfeat:{tmp_path / 'nope'}", cache_dir=tmp_path / "cache")


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
