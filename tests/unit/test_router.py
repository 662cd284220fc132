"""Templates, Top-K renormalisation, entropy and load balance against hand values."""
import math

import torch

from magnet.model.router import load_balance_loss, normalized_entropy, routing_entropy, topk_gates


def test_topk_renormalises():
    p = torch.tensor([[0.1, 0.4, 0.2, 0.3]])
    g = topk_gates(p, 2)
    torch.testing.assert_close(g, torch.tensor([[0.0, 0.4 / 0.7, 0.0, 0.3 / 0.7]]))
    g1 = topk_gates(p, 1)
    torch.testing.assert_close(g1, torch.tensor([[0.0, 1.0, 0.0, 0.0]]))
    # along dim 0 (experts first), as used for full-catalogue scoring
    g0 = topk_gates(p.T, 3, dim=0)
    torch.testing.assert_close(g0.T, torch.tensor([[0.0, 4 / 9, 2 / 9, 3 / 9]]))


def test_entropy_of_known_distributions():
    uniform = torch.full((9,), 1 / 9)
    onehot = torch.zeros(9)
    onehot[3] = 1
    assert math.isclose(float(normalized_entropy(uniform)), 1.0, rel_tol=1e-6)
    assert abs(float(normalized_entropy(onehot))) < 1e-6
    half = torch.tensor([0.5, 0.5] + [0.0] * 7)
    assert math.isclose(float(normalized_entropy(half)), math.log(2) / math.log(9), rel_tol=1e-6)
    # batch-mean entropy: two confident pairs on different experts → p̄ = half/half
    probs = torch.stack([torch.eye(9)[0], torch.eye(9)[1]])
    assert math.isclose(float(routing_entropy(probs)), math.log(2) / math.log(9), rel_tol=1e-6)


def test_load_balance_uniform_is_one_and_collapse_is_nine():
    n = 90
    uniform = torch.full((n, 9), 1 / 9)
    gates = torch.eye(9).repeat(n // 9, 1)  # each expert takes the same share of slots
    assert math.isclose(float(load_balance_loss(uniform, gates)), 1.0, rel_tol=1e-6)
    collapsed = torch.zeros(n, 9)
    collapsed[:, 0] = 1
    assert math.isclose(float(load_balance_loss(collapsed, collapsed)), 9.0, rel_tol=1e-6)


def test_low_rank_router_logits_by_hand():
    from magnet.model.router import BilinearRouter

    router = BilinearRouter(dim=1, n_channels=3, rank=2)  # [h] has 3 dims, R is [2, 3]
    with torch.no_grad():
        router.proj.copy_(torch.tensor([[1.0, 0.0, 1.0], [0.0, 2.0, 0.0]]))
        router.q.zero_()
        router.q[4] = torch.tensor([1.0, -1.0])
        router.a.zero_()
        router.b.zero_()
        router.c.zero_()
        router.a[4, 1] = 0.5
        router.c[4] = 0.25
    hu = torch.tensor([[1.0, 1.0, 2.0]])  # R hu = (3, 2)
    hi = torch.tensor([[2.0, -1.0, 0.0]])  # R hi = (2, -2)
    # expert 4: 1·3·2 − 1·2·(−2) + 0.5·hu[1] + 0.25 = 6 + 4 + 0.5 + 0.25
    expected = torch.zeros(1, 9)
    expected[0, 4] = 10.75
    torch.testing.assert_close(router.pair_logits(hu, hi), expected)
    torch.testing.assert_close(router.full_logits(hu, hi)[:, 0, 0], expected[0])


def test_router_rank_at_or_above_the_width_is_the_full_diagonal_router():
    from magnet.model.router import BilinearRouter

    torch.manual_seed(0)
    full = BilinearRouter(dim=4, rank=0)
    torch.manual_seed(0)
    wide = BilinearRouter(dim=4, rank=12)  # 3·4 = 12: no projection, same parameters
    assert wide.rank == 0 and not hasattr(wide, "proj") and wide.q.shape == (9, 12)
    torch.testing.assert_close(full.q, wide.q)
