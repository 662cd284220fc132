"""The view-contrastive InfoNCE against a hand value and against autograd's cross-entropy."""
import math

import pytest
import torch
import torch.nn.functional as F

from magnet.losses import bpr_loss, info_nce, ranking_loss, sampled_softmax_loss


def test_info_nce_hand_value():
    # unit rows: a = [e1, e2], b = [e1, e2]; logits/τ = I/τ with τ = 0.5 → [[2, 0], [0, 2]]
    a = torch.tensor([[3.0, 0.0], [0.0, 0.5]])  # normalised inside
    b = torch.eye(2)
    expected = math.log(math.exp(2) + 1) - 2  # both rows alike
    assert abs(info_nce(a, b, 0.5).item() - expected) < 1e-6


@pytest.mark.parametrize("tau", [0.2, 0.01])  # logits ≤ 5 (no max-shift) and ≤ 100 (shifted)
def test_info_nce_matches_cross_entropy_values_and_gradients(tau):
    torch.manual_seed(0)
    a = torch.randn(37, 8, requires_grad=True)
    b = torch.randn(37, 8, requires_grad=True)
    loss = info_nce(a, b, tau)
    (loss * 3.0).backward()
    ga, gb = a.grad.clone(), b.grad.clone()
    a.grad = b.grad = None
    ref = F.cross_entropy(F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / tau, torch.arange(37))
    (ref * 3.0).backward()
    torch.testing.assert_close(loss, ref)
    atol = 1e-6 * 0.2 / tau  # float32 rounding grows with the logits' scale 1/τ
    torch.testing.assert_close(ga, a.grad, rtol=1e-5, atol=atol)
    torch.testing.assert_close(gb, b.grad, rtol=1e-5, atol=atol)


def test_sampled_softmax_hand_value():
    # row 0: logits (2, 0, 0)/τ with τ = 0.5 → (4, 0, 0); row 1: (1, 1, 3)/0.5 → (2, 2, 6)
    pos = torch.tensor([2.0, 1.0])
    neg = torch.tensor([[0.0, 0.0], [1.0, 3.0]])
    row0 = math.log(math.exp(4) + 2) - 4
    row1 = math.log(2 * math.exp(2) + math.exp(6)) - 2
    assert abs(sampled_softmax_loss(pos, neg, 0.5).item() - (row0 + row1) / 2) < 1e-6


def test_sampled_softmax_is_stable_for_large_scores():
    pos, neg = torch.tensor([500.0]), torch.tensor([[400.0, 502.0]])  # exp(500) overflows float32
    loss = sampled_softmax_loss(pos, neg, 1.0)
    assert abs(loss.item() - (math.log(1 + math.exp(-2) + math.exp(-102)) + 2)) < 1e-5


def test_bpr_over_several_negatives_is_the_mean_of_its_pairs():
    pos = torch.tensor([1.0, 0.0])
    neg = torch.tensor([[0.0, 2.0], [-1.0, 0.0]])
    pairs = [math.log1p(math.exp(n - p)) for p, row in zip([1.0, 0.0], neg.tolist()) for n in row]
    assert abs(bpr_loss(pos, neg).item() - sum(pairs) / 4) < 1e-6
    # one column is the classic aligned form
    assert torch.equal(ranking_loss("bpr", pos, neg[:, :1], 1.0), bpr_loss(pos, neg[:, 0]))
