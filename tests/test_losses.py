"""The view-contrastive InfoNCE against a hand value and against autograd's cross-entropy."""
import math

import pytest
import torch
import torch.nn.functional as F

from magnet.losses import info_nce


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
