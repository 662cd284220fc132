"""The accuracy diagnostics of docs/RESULTS.md (``bench/mixture_residual.py``,
``bench/tail_ranks.py``) against hand values and the shipped demo checkpoints."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from magnet.explain import ExplainContext

pytestmark = pytest.mark.slow  # trains, or runs the CLI in subprocesses

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "checkpoints" / "demo"


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_per_user_correlation_hand_values():
    corr = _bench_module("mixture_residual").per_user_correlation
    a = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])
    b = torch.tensor([[2.0, 4.0, 6.0], [3.0, 2.0, 1.0], [1.0, 1.0, 4.0]])
    # Row 3: centred a = (-1/3, 2/3, -1/3), centred b = (-1, -1, 2): dot -1, norms √(2/3), √6.
    expected = torch.tensor([1.0, -1.0, -1.0 / (np.sqrt(2 / 3) * np.sqrt(6))])
    torch.testing.assert_close(corr(a, b), expected.float())


@pytest.fixture(scope="module")
def demo_full() -> ExplainContext:
    if not (DEMO / "full").is_dir():
        pytest.skip("no shipped demo checkpoints")
    return ExplainContext.load(DEMO / "full")


def test_mixture_residual_alpha_one_is_the_model(demo_full):
    """α = 1 re-scores the model as trained: its valid Recall@20 is the checkpoint's own."""
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "mixture_residual.py"), str(DEMO / "full"),
                           "--alphas", "0", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {line.split("|")[1].strip(): line for line in proc.stdout.splitlines() if line.startswith("| ")}
    valid_at_one = float(rows["1"].split("|")[2])
    assert valid_at_one == pytest.approx(demo_full.ckpt.metrics["valid"]["recall@20"], abs=5e-5)
    assert float(rows["0"].split("|")[2]) < valid_at_one  # on the demo the mixture carries signal
    assert "corr(base, mixture)" in proc.stdout


def test_mixture_residual_refuses_behaviour_only():
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "mixture_residual.py"),
                           str(DEMO / "behaviour_only")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "has no mixture" in proc.stdout


def test_tail_ranks_are_full_ranking_ranks(demo_full):
    bucket_ranks = _bench_module("tail_ranks").bucket_ranks
    ctx = demo_full
    test = ctx.data.test
    ranks = bucket_ranks(ctx, test, 2)
    tail_pairs = test[ctx.buckets[test[:, 1]] == 2]
    assert len(ranks) == len(tail_pairs) > 0
    for j in (0, len(tail_pairs) // 2, len(tail_pairs) - 1):  # by hand: 1 + candidates scored higher
        user, item = (int(x) for x in tail_pairs[j])
        scores = ctx.model.score_users(ctx.pre, torch.tensor([user]))[0].numpy()
        candidates = np.setdiff1d(np.arange(ctx.data.n_items), ctx.history(user))
        assert ranks[j] == 1 + int((scores[candidates] > scores[item]).sum())
    assert bucket_ranks(ctx, test[:0], 2).shape == (0,)


def test_co_consumption_hand_values():
    """Users 0: {0, 1}, 1: {1, 2}, 2: {3}. Co-consumed pairs: (0,1) and (1,2)."""
    edges = _bench_module("content_edges")
    train = np.array([[0, 0], [0, 1], [1, 1], [1, 2], [2, 3]])
    rows = np.array([0, 0, 1, 3, 3])  # content pairs: 0→1 (hit), 0→3, 1→2 (hit), 3→0, 3→2; item 2 has none
    cols = np.array([1, 3, 2, 0, 2])
    co = edges.co_consumption_matrix(train, 3, 4)
    neighbours, random = edges.neighbour_co_share(co, rows, cols), edges.random_co_share(co)
    np.testing.assert_allclose(neighbours[[0, 1, 3]], [0.5, 1.0, 0.0])
    assert np.isnan(neighbours[2])
    # Of the 3 other items: item 0 shares a user with 1 only, item 1 with 0 and 2, item 2 with 1, item 3 with none.
    np.testing.assert_allclose(random, [1 / 3, 2 / 3, 1 / 3, 0.0])


def test_content_share_of_augmented_rows():
    """Two users, two items: each item row's mass on item columns over its whole row."""
    content_share = _bench_module("content_edges").content_share
    dense = torch.tensor([[0.0, 0.0, 0.5, 0.0],
                          [0.0, 0.0, 0.2, 0.3],
                          [0.5, 0.2, 0.0, 0.3],   # item 0: 0.3 of 1.0 on item 1
                          [0.0, 0.3, 0.1, 0.0]])  # item 1: 0.1 of 0.4 on item 0
    np.testing.assert_allclose(content_share(dense.to_sparse_csr(), 2), [0.3, 0.25])


def test_content_edges_runs_on_the_demo_catalogue():
    if not (DEMO / "dataset").is_dir():
        pytest.skip("no shipped demo dataset")
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "content_edges.py"), str(DEMO / "dataset")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith(f"| {DEMO / 'dataset'}")]
    assert [r.split("|")[2].split()[0] for r in rows] == ["tail", "other"]
    # The demo's content carries planted co-purchase signal: neighbours beat random items.
    assert all(float(r.split("|")[7].strip().rstrip("×")) > 1.2 for r in rows)


def test_cold_tail_keeps_k_training_rows_per_tail_item_and_nothing_else_changes():
    import pandas as pd

    cold_tail_rows = _bench_module("cold_tail").cold_tail_rows
    # Training degrees: item 0 → 5, item 1 → 4, item 2 → 3, item 3 → 1, item 4 → 6.
    # tail_quantile 0.4 of 5 items = the 2 least popular: items 3 and 2.
    degree = {0: 5, 1: 4, 2: 3, 3: 1, 4: 6}
    rows = [(u, i, 0) for i, d in degree.items() for u in range(d)]
    rows += [(9, 2, 1), (8, 3, 2), (7, 0, 1)]  # valid/test rows, tail items included
    inter = pd.DataFrame(rows, columns=["userID", "itemID", "x_label"])
    masks = [cold_tail_rows(inter, keep=2, seed=s, tail_quantile=0.4) for s in (0, 0, 1, 2, 3)]
    np.testing.assert_array_equal(masks[0], masks[1])  # seeded
    for mask in masks:
        kept = inter[mask]
        train_deg = np.bincount(kept[kept.x_label == 0].itemID, minlength=5)
        np.testing.assert_array_equal(train_deg, [5, 4, 2, 1, 6])  # item 2: 3 → 2; item 3 keeps its only one
        assert mask[inter.x_label.to_numpy() > 0].all()  # held-out rows untouched
    # which two of item 2's three rows survive depends on the seed
    assert len({tuple(inter[m & (inter.itemID == 2).to_numpy()].userID) for m in masks}) > 1


def test_step_breakdown_times_every_row_on_the_tiny_set():
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "step_breakdown.py"), "--data", "synthetic:tiny",
                           "--steps", "2", "--warmup", "1", "--threads", "1"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("|")[1:4] for line in proc.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert [r[0].strip() for r in rows[1:]] == ["behaviour_only", "full", "full, no InfoNCE",
                                                 "full, no InfoNCE, no augmented view"]
    assert rows[1][2].strip() == "1.00" and all(float(r[1]) > 0 for r in rows[1:])
