"""The view-contrastive InfoNCE against a hand value and against autograd's cross-entropy."""
import math

import torch
import torch.nn.functional as F

from magnet.losses import info_nce


def test_info_nce_hand_value():
    # unit rows: a = [e1, e2], b = [e1, e2]; logits/τ = I/τ with τ = 0.5 → [[2, 0], [0, 2]]
    a = torch.tensor([[3.0, 0.0], [0.0, 0.5]])  # normalised inside
    b = torch.eye(2)
    expected = math.log(math.exp(2) + 1) - 2  # both rows alike
    assert abs(info_nce(a, b, 0.5).item() - expected) < 1e-6


def test_info_nce_matches_cross_entropy_values_and_gradients():
    torch.manual_seed(0)
    a = torch.randn(37, 8, requires_grad=True)
    b = torch.randn(37, 8, requires_grad=True)
    loss = info_nce(a, b, 0.2)
    (loss * 3.0).backward()
    ga, gb = a.grad.clone(), b.grad.clone()
    a.grad = b.grad = None
    ref = F.cross_entropy(F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / 0.2, torch.arange(37))
    (ref * 3.0).backward()
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(ga, a.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gb, b.grad, rtol=1e-5, atol=1e-6)
