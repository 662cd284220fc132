"""Hand-computed checks of magnet.evaluate (MMRec full-ranking protocol)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from magnet.evaluate import evaluate, per_user_ranks, popularity_buckets, popularity_score_fn
from magnet.metrics import build_csr

L3 = 1.0 / math.log2(3)  # discount of rank 2

# 4 users x 6 items, no ties.
SCORES = torch.tensor([
    [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],   # u0
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],   # u1
    [0.5, 0.9, 0.1, 0.8, 0.2, 0.7],   # u2
    [0.6, 0.5, 0.4, 0.3, 0.2, 0.1],   # u3 (no valid/test positives: never scored)
])
TRAIN = np.array([[0, 0], [1, 5], [2, 1], [3, 0], [3, 1]])
VALID = np.array([[0, 1], [1, 4], [2, 2]])
TEST = np.array([[0, 2], [1, 0], [2, 3], [2, 4]])
BUCKETS = np.array([0, 0, 1, 1, 2, 2], dtype=np.int8)   # head {0,1}, mid {2,3}, tail {4,5}
KS = (1, 2, 3)
# Rankings after masking training positives (scores in brackets):
#   u0: item 0 masked -> 1 (.8), 2 (.7), 3 (.6), 4, 5      top-3 = [1, 2, 3]
#   u1: item 5 masked -> 4 (.5), 3 (.4), 2 (.3), 1, 0      top-3 = [4, 3, 2]
#   u2: item 1 masked -> 3 (.8), 5 (.7), 0 (.5), 4, 2      top-3 = [3, 5, 0]


class Recorder:
    """ScoreFn over SCORES that records which users were scored."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def __call__(self, users: torch.Tensor) -> torch.Tensor:
        self.seen.extend(users.tolist())
        return SCORES[users]


def _run(batch_users: int = 1024) -> tuple[dict, Recorder]:
    fn = Recorder()
    res = evaluate(fn, 4, 6, TRAIN, {"valid": VALID, "test": TEST}, ks=KS,
                   batch_users=batch_users, buckets=BUCKETS)
    return res, fn


def test_valid_split_hand_computed() -> None:
    v = _run()[0]["valid"]
    # u0 pos {1}: rank 1. u1 pos {4}: rank 1. u2 pos {2}: rank 5 (miss). u3 excluded.
    assert v["n_users"] == 3
    for k in KS:
        assert v[f"recall@{k}"] == pytest.approx(2 / 3)   # (1 + 1 + 0) / 3
        assert v[f"ndcg@{k}"] == pytest.approx(2 / 3)
        assert v[f"map@{k}"] == pytest.approx(2 / 3)
    assert v["precision@1"] == pytest.approx(2 / 3)       # (1 + 1 + 0) / 3
    assert v["precision@2"] == pytest.approx(1 / 3)       # (1/2 + 1/2 + 0) / 3
    assert v["precision@3"] == pytest.approx(2 / 9)       # (1/3 + 1/3 + 0) / 3


def test_test_split_keeps_valid_positives_as_candidates() -> None:
    t = _run()[0]["test"]
    assert t["n_users"] == 3
    # u0 pos {2}: valid item 1 is NOT masked and stays at rank 1, so item 2 is at rank 2.
    #   (If valid were masked, item 2 would be rank 1 and recall@1 would be 1/3 + 1/6.)
    #   recall@1 0, recall@2 = recall@3 = 1, ndcg@2 = 1/log2(3), map@2 = (1/2)/1.
    # u1 pos {0}: rank 5 -> all zero.
    # u2 pos {3, 4}: item 3 rank 1, item 4 rank 4.
    #   recall@K = 1/2 for K=1..3; ndcg@1 = 1/1; ndcg@2,3 = 1/(1 + 1/log2(3));
    #   precision@1 = 1, @2 = 1/2, @3 = 1/3; map@1 = 1/min(2,1) = 1, map@2,3 = 1/min(2,K) = 1/2.
    assert t["recall@1"] == pytest.approx((0 + 0 + 0.5) / 3)
    assert t["recall@2"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert t["recall@3"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert t["ndcg@1"] == pytest.approx((0 + 0 + 1) / 3)
    assert t["ndcg@2"] == pytest.approx((L3 + 0 + 1 / (1 + L3)) / 3)
    assert t["ndcg@3"] == pytest.approx((L3 + 0 + 1 / (1 + L3)) / 3)
    assert t["precision@1"] == pytest.approx(1 / 3)
    assert t["precision@2"] == pytest.approx((0.5 + 0 + 0.5) / 3)
    assert t["precision@3"] == pytest.approx((1 / 3 + 0 + 1 / 3) / 3)
    assert t["map@1"] == pytest.approx(1 / 3)
    assert t["map@2"] == pytest.approx((0.5 + 0 + 0.5) / 3)
    assert t["map@3"] == pytest.approx((0.5 + 0 + 0.5) / 3)


def test_users_without_positives_are_not_scored() -> None:
    res, fn = _run()
    assert sorted(fn.seen) == [0, 1, 2]   # u3 has only training pairs
    assert res["valid"]["n_users"] == 3 and res["test"]["n_users"] == 3


def test_user_missing_from_one_split_is_excluded_from_that_average() -> None:
    # u1 has no test positive here: test averages over u0 and u2 only.
    test = np.array([[0, 2], [2, 3], [2, 4]])
    res = evaluate(Recorder(), 4, 6, TRAIN, {"valid": VALID, "test": test}, ks=KS)
    assert res["test"]["n_users"] == 2
    assert res["test"]["recall@2"] == pytest.approx((1 + 0.5) / 2)
    assert res["valid"]["n_users"] == 3
    assert "buckets" not in res["test"]


def test_bucket_metrics_hand_computed() -> None:
    res = _run()[0]
    tb = res["test"]["buckets"]
    # head {0,1}: u1 {0} at rank 5 -> zeros, 1 user.
    assert tb["head"]["n_users"] == 1
    assert tb["head"]["recall@3"] == 0.0 and tb["head"]["ndcg@3"] == 0.0
    # mid {2,3}: u0 {2} (rank 2) and u2 {3} (rank 1).
    assert tb["mid"]["n_users"] == 2
    assert tb["mid"]["recall@1"] == pytest.approx((0 + 1) / 2)
    assert tb["mid"]["recall@2"] == pytest.approx((1 + 1) / 2)
    assert tb["mid"]["ndcg@2"] == pytest.approx((L3 + 1) / 2)
    # tail {4,5}: u2 {4} at rank 4 -> zero; u2's hit on item 3 (mid) must not count here.
    assert tb["tail"]["n_users"] == 1
    for k in KS:
        assert tb["tail"][f"recall@{k}"] == 0.0 and tb["tail"][f"ndcg@{k}"] == 0.0
    vb = res["valid"]["buckets"]
    # head: u0 {1} rank 1; mid: u2 {2} miss; tail: u1 {4} rank 1.
    assert (vb["head"]["n_users"], vb["mid"]["n_users"], vb["tail"]["n_users"]) == (1, 1, 1)
    assert vb["head"]["recall@1"] == 1.0 and vb["mid"]["recall@3"] == 0.0
    assert vb["tail"]["ndcg@1"] == 1.0
    assert set(vb["head"]) == {f"{m}@{k}" for m in ("recall", "ndcg") for k in KS} | {"n_users"}


def test_batch_size_does_not_change_results() -> None:
    a = _run(batch_users=1)[0]
    b = _run(batch_users=1024)[0]
    assert a == b
    c = _run(batch_users=2)[0]
    assert c == b


def test_output_types_are_plain_python() -> None:
    res = _run()[0]
    assert isinstance(res["test"]["recall@2"], float)
    assert isinstance(res["test"]["n_users"], int)
    assert isinstance(res["test"]["buckets"]["mid"]["recall@2"], float)


def test_popularity_buckets_counts_and_ties() -> None:
    degree = [5, 0, 3, 3, 1, 0, 2, 4, 1, 0]
    train = np.array([[u, i] for i, d in enumerate(degree) for u in range(d)])
    # Order by degree desc, ties by id asc: 0(5) 7(4) 2(3) 3(3) 6(2) 4(1) 8(1) 1(0) 5(0) 9(0)
    b = popularity_buckets(train, 10)   # round(0.2*10) = 2 head, 2 tail
    assert b.dtype == np.int8 and b.shape == (10,)
    assert sorted(np.flatnonzero(b == 0).tolist()) == [0, 7]
    assert sorted(np.flatnonzero(b == 2).tolist()) == [5, 9]   # 1 has degree 0 too: lower id -> mid
    assert (b == 1).sum() == 6
    b = popularity_buckets(train, 10, tail_quantile=0.4, head_quantile=0.3)
    assert sorted(np.flatnonzero(b == 0).tolist()) == [0, 2, 7]        # 2 beats 3 on id
    assert sorted(np.flatnonzero(b == 2).tolist()) == [1, 5, 8, 9]     # 4 beats 8 on id
    assert np.array_equal(b, popularity_buckets(train, 10, 0.4, 0.3))  # deterministic


def test_popularity_baseline_toy() -> None:
    train = np.array([[0, 0], [0, 2], [1, 0], [1, 2], [1, 3], [2, 2], [2, 4]])
    # degrees: item0 2, item1 0, item2 3, item3 1, item4 1 -> order 2, 0, 3, 4, 1 (3 beats 4 on id)
    fn = popularity_score_fn(train, 5, "cpu")
    s = fn(torch.tensor([0, 2]))
    assert s.shape == (2, 5)
    assert torch.equal(s[0], s[1])
    assert torch.argsort(s[0], descending=True).tolist() == [2, 0, 3, 4, 1]
    assert torch.floor(s[0]).tolist() == [2, 0, 3, 1, 1]
    test = np.array([[0, 3], [1, 4], [2, 1]])
    # u0: 0,2 masked -> 3, 4, 1: item 3 rank 1.  u1: 0,2,3 masked -> 4, 1: rank 1.
    # u2: 2,4 masked -> 0, 3, 1: item 1 rank 3.
    res = evaluate(fn, 3, 5, train, {"test": test}, ks=(1, 2, 3))["test"]
    assert res["recall@1"] == pytest.approx(2 / 3)
    assert res["recall@2"] == pytest.approx(2 / 3)
    assert res["recall@3"] == pytest.approx(1.0)
    assert res["ndcg@3"] == pytest.approx((1 + 1 + 0.5) / 3)   # 1/log2(4) = 0.5 for rank 3


def test_per_user_ranks_hand_and_brute_force() -> None:
    csr = build_csr(TRAIN, 4, 6)
    ranks = per_user_ranks(Recorder(), torch.tensor([0, 2, 2, 1]), torch.tensor([2, 3, 4, 0]), csr, 6)
    assert ranks.tolist() == [2, 1, 4, 5]   # from the hand rankings above

    g = torch.Generator().manual_seed(1)
    n_users, n_items = 9, 13
    scores = torch.rand(n_users, n_items, generator=g, dtype=torch.float64)
    train = torch.stack([torch.randint(0, n_users, (30,), generator=g),
                         torch.randint(0, n_items, (30,), generator=g)], 1).numpy()
    users = torch.randint(0, n_users, (50,), generator=g)
    items = torch.randint(0, n_items, (50,), generator=g)
    got = per_user_ranks(lambda u: scores[u], users, items, build_csr(train, n_users, n_items),
                         n_items, batch_size=7)
    masked = {(int(u), int(i)) for u, i in train}
    for j in range(50):
        u, i = int(users[j]), int(items[j])
        target = -math.inf if (u, i) in masked else scores[u, i].item()
        expected = 1 + sum(1 for c in range(n_items)
                           if (u, c) not in masked and scores[u, c].item() > target)
        assert got[j].item() == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu() -> None:
    fn = lambda u: SCORES.to(u.device)[u]  # noqa: E731
    args = (4, 6, TRAIN, {"valid": VALID, "test": TEST})
    cpu = evaluate(fn, *args, ks=KS, buckets=BUCKETS)
    gpu = evaluate(fn, *args, ks=KS, buckets=BUCKETS, device="cuda")
    for s in cpu:
        for key, v in cpu[s].items():
            if key != "buckets":
                assert gpu[s][key] == pytest.approx(v)
