"""Hand-computed checks of magnet.metrics (MMRec metric definitions)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from magnet.metrics import build_csr, gather_csr, hits_matrix, ranking_metrics

L3 = 1.0 / math.log2(3)   # 0.6309297535714575, discount of rank 2
L5 = 1.0 / math.log2(5)   # 0.43067655807339306, discount of rank 4
L6 = 1.0 / math.log2(6)   # 0.38685280723454163, discount of rank 5


def _example() -> dict[str, torch.Tensor]:
    # Four users, ranked lists of length 5 (item ids are irrelevant to ranking_metrics).
    #   A: hits at ranks 1 and 3, 2 positives  (all positives retrieved)
    #   B: hit at rank 5 only, 4 positives     (zero hits within K=3)
    #   C: no hit, 1 positive                  (zero hits)
    #   D: no hit, 0 positives                 (must not produce nan)
    topk = torch.arange(20).reshape(4, 5)
    truth = torch.tensor([[1, 0, 1, 0, 0],
                          [0, 0, 0, 0, 1],
                          [0, 0, 0, 0, 0],
                          [0, 0, 0, 0, 0]], dtype=torch.bool)
    n_pos = torch.tensor([2, 4, 1, 0])
    return ranking_metrics(topk, truth, n_pos, ks=(1, 3, 5))


def test_hand_worked_user_a() -> None:
    m = _example()
    # hits@1 = 1, hits@3 = hits@5 = 2, n_pos = 2.
    assert m["recall@1"][0].item() == pytest.approx(0.5)          # 1/2
    assert m["recall@3"][0].item() == pytest.approx(1.0)          # 2/2
    assert m["recall@5"][0].item() == pytest.approx(1.0)
    assert m["precision@1"][0].item() == pytest.approx(1.0)       # 1/1
    assert m["precision@3"][0].item() == pytest.approx(2 / 3)     # 2/3
    assert m["precision@5"][0].item() == pytest.approx(0.4)       # 2/5
    # NDCG@1: DCG = 1, IDCG over min(2,1)=1 position = 1 -> 1.
    assert m["ndcg@1"][0].item() == pytest.approx(1.0)
    # NDCG@3: DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG over min(2,3)=2 positions (fewer
    # positives than K) = 1 + 1/log2(3) = 1.6309297...; 1.5/1.6309297 = 0.9197207891.
    assert m["ndcg@3"][0].item() == pytest.approx(1.5 / (1 + L3))
    assert m["ndcg@3"][0].item() == pytest.approx(0.9197207891481876)
    assert m["ndcg@5"][0].item() == pytest.approx(0.9197207891481876)
    # MAP@1 = (1 * P@1) / min(2,1) = 1.
    assert m["map@1"][0].item() == pytest.approx(1.0)
    # MAP@3 = (1 * P@1 + 1 * P@3) / min(2,3) = (1 + 2/3) / 2 = 0.8333...
    assert m["map@3"][0].item() == pytest.approx(5 / 6)
    assert m["map@5"][0].item() == pytest.approx(5 / 6)


def test_hand_worked_user_b_late_hit() -> None:
    m = _example()
    # K=1 and K=3: zero hits -> every metric 0.
    for k in (1, 3):
        for name in ("recall", "ndcg", "precision", "map"):
            assert m[f"{name}@{k}"][1].item() == 0.0
    # K=5: hits = 1 at rank 5.
    assert m["recall@5"][1].item() == pytest.approx(0.25)         # 1/4
    assert m["precision@5"][1].item() == pytest.approx(0.2)       # 1/5
    # DCG = 1/log2(6) = 0.386852807; IDCG over min(4,5)=4 positions
    # = 1 + 1/log2(3) + 1/log2(4) + 1/log2(5) = 2.561606311644851 -> 0.1510196182.
    assert m["ndcg@5"][1].item() == pytest.approx(L6 / (1 + L3 + 0.5 + L5))
    assert m["ndcg@5"][1].item() == pytest.approx(0.15101961822780524)
    # MAP@5 = (1 * P@5) / min(4,5) = (1/5) / 4 = 0.05.
    assert m["map@5"][1].item() == pytest.approx(0.05)


def test_zero_hits_and_zero_positives_are_finite_zero() -> None:
    m = _example()
    for key, v in m.items():
        assert v.shape == (4,), key
        assert v.dtype == torch.float64, key
        assert torch.isfinite(v).all(), key
        assert v[2].item() == 0.0 and v[3].item() == 0.0, key


def test_cutoff_larger_than_list() -> None:
    # 2 items ranked, K = 4: hits@4 = 1, n_pos = 3. Precision divides by K (1/4); IDCG over
    # min(3,4)=3 positions = 1 + 1/log2(3) + 1/2.
    topk = torch.tensor([[7, 3]])
    truth = torch.tensor([[False, True]])
    m = ranking_metrics(topk, truth, torch.tensor([3]), ks=(4,))
    assert m["precision@4"].item() == pytest.approx(0.25)
    assert m["recall@4"].item() == pytest.approx(1 / 3)
    assert m["ndcg@4"].item() == pytest.approx(L3 / (1 + L3 + 0.5))
    assert m["map@4"].item() == pytest.approx((1 * 0.5) / 3)


def test_build_csr_sorts_and_dedups() -> None:
    pairs = np.array([[2, 4], [0, 3], [2, 1], [0, 3], [0, 0]])
    indptr, indices = build_csr(pairs, n_users=4, n_items=5)
    assert indptr.tolist() == [0, 2, 2, 4, 4]
    assert indices.tolist() == [0, 3, 1, 4]
    rows, items = gather_csr((indptr, indices), torch.tensor([2, 1, 0]))
    assert rows.tolist() == [0, 0, 2, 2]
    assert items.tolist() == [1, 4, 0, 3]
    with pytest.raises(ValueError):
        build_csr(np.array([[0, 5]]), n_users=1, n_items=5)


def test_hits_matrix_matches_brute_force() -> None:
    g = torch.Generator().manual_seed(0)
    n_users, n_items, k = 40, 30, 7
    pairs = torch.stack([torch.randint(0, n_users, (300,), generator=g),
                         torch.randint(0, n_items, (300,), generator=g)], 1)
    csr = build_csr(pairs, n_users, n_items)
    users = torch.tensor([5, 0, 39, 5, 17, 2, 33, 12])
    topk = torch.stack([torch.randperm(n_items, generator=g)[:k] for _ in range(len(users))])
    got = hits_matrix(topk, csr, users)
    positives = {u: set() for u in range(n_users)}
    for u, i in pairs.tolist():
        positives[u].add(i)
    expected = torch.tensor([[topk[b, j].item() in positives[users[b].item()] for j in range(k)]
                             for b in range(len(users))])
    assert got.dtype == torch.bool
    assert torch.equal(got, expected)
    assert expected.any() and not expected.all()  # the random case exercises both outcomes


def test_hits_matrix_user_without_positives() -> None:
    csr = build_csr(np.array([[1, 2]]), n_users=3, n_items=4)
    got = hits_matrix(torch.tensor([[2, 0], [2, 3]]), csr, torch.tensor([0, 1]))
    assert got.tolist() == [[False, False], [True, False]]
    empty = build_csr(np.zeros((0, 2), dtype=np.int64), n_users=3, n_items=4)
    assert not hits_matrix(torch.tensor([[2, 0]]), empty, torch.tensor([1])).any()
