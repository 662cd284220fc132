"""History-induced modality cues (magnet/model/cues.py) against brute force, and the cue router."""
from __future__ import annotations

import math

import pytest
import torch

from magnet.model.cues import ModalityCues, cue_width
from magnet.model.router import CueRouter, inverse_softplus
from magnet.vocab import template_rows
from tests.unit.test_model import toy


def fitted(seed: int = 0, n_users: int = 6, n_items: int = 9, width: int = 4):
    g = torch.Generator().manual_seed(seed)
    image, text = torch.randn(n_items, 7, generator=g), torch.randn(n_items, 5, generator=g)
    train = torch.tensor([[0, 0], [0, 1], [0, 2], [1, 3], [1, 4], [2, 5], [3, 0], [3, 6], [4, 7], [4, 8], [4, 1]])
    cues = ModalityCues(n_users, n_items, (cue_width(width, 7, n_items), cue_width(width, 5, n_items)))
    cues.fit(train, (image, text), seed=seed)
    return cues, train


def test_directions_are_unit_and_user_means_are_history_means():
    cues, train = fitted()
    for m in ("A", "S"):
        dirs = getattr(cues, f"item_{m}")
        torch.testing.assert_close(dirs.norm(dim=1), torch.ones(dirs.shape[0]))
        means = getattr(cues, f"user_{m}")
        torch.testing.assert_close(means[0], dirs[[0, 1, 2]].mean(0))
        torch.testing.assert_close(means[4], dirs[[7, 8, 1]].mean(0))
        assert torch.all(means[5] == 0)  # user 5 has no history
    assert cues.count.tolist() == [3, 2, 1, 2, 3, 0]


def test_cue_is_the_dot_of_history_mean_and_item_and_leave_one_out_drops_the_item():
    cues, _ = fitted()
    users, items = torch.tensor([0, 0, 1, 2]), torch.tensor([1, 5, 3, 5])
    raw = cues.raw_pairs(users, items)
    a = cues.item_A
    torch.testing.assert_close(raw[0, 0], (a[[0, 1, 2]].mean(0) * a[1]).sum())
    loo = cues.raw_pairs(users, items, positive=torch.tensor([True, False, True, True]))
    # user 0's positive item 1 against the mean of the OTHER history items 0 and 2
    torch.testing.assert_close(loo[0, 0], (a[[0, 2]].mean(0) * a[1]).sum())
    torch.testing.assert_close(loo[1], raw[1])  # not a positive: unchanged
    torch.testing.assert_close(loo[2, 1], (cues.item_S[4] * cues.item_S[3]).sum())
    # user 2 has one training item: no other history, so the average cue (standardised 0)
    torch.testing.assert_close(loo[3], cues.mean[1:])


def test_standardised_over_random_pairs_and_grid_equals_pairs():
    cues, _ = fitted()
    active = torch.tensor([0, 1, 2, 3, 4])
    users, items = active.repeat_interleave(9), torch.arange(9).repeat(5)
    z = cues.pairs(users, items)
    assert torch.all(z[:, 0] == 0)  # the behaviour cue is zero
    assert abs(float(z[:, 1:].mean())) < 0.5 and 0.5 < float(z[:, 1:].std()) < 1.6  # sampled, not exact
    grid = cues.grid(active)  # [3, 5, 9]
    torch.testing.assert_close(grid.permute(1, 2, 0).reshape(-1, 3), z)
    torch.testing.assert_close(cues.grid(active, torch.tensor([2, 7]))[:, :, 1], grid[:, :, 7])


def test_cue_router_logits_follow_the_templates():
    router = CueRouter(scale_init=2.0)
    assert float(router.scale.detach()) == pytest.approx(2.0)
    assert inverse_softplus(2.0) == pytest.approx(math.log(math.exp(2.0) - 1.0))
    with torch.no_grad():
        router.c.copy_(torch.arange(9.0) / 10)
    cues = torch.tensor([[0.0, 1.5, -0.5]])
    w = torch.tensor(template_rows())
    expected = torch.arange(9.0) / 10 + 2.0 * (w @ cues[0])
    torch.testing.assert_close(router.pair_logits(None, None, cues)[0], expected)
    # an appearance cue favours the appearance-anchored dominant expert over the behaviour one
    logits = router.pair_logits(None, None, torch.tensor([[0.0, 2.0, 0.0]]))[0] - router.c
    assert logits[3] > logits[0]  # A-Dom (0.70 on A) over B-Dom (0.15 on A)


@pytest.mark.parametrize("modality", ["B", "A", "S"])
def test_knock_out_replaces_item_channels_by_their_mean_and_silences_the_cue(modality):
    model, graphs, feats = toy("full", expert_kind="diagonal", router="cue")
    pre = model.precompute(graphs, *feats)
    out = model.knock_out(pre, modality)
    m = "BAS".index(modality)
    items = out.h[m, model.n_users:]
    torch.testing.assert_close(items, pre.h[m, model.n_users:].mean(0, keepdim=True).expand_as(items))
    torch.testing.assert_close(out.h[:, :model.n_users], pre.h[:, :model.n_users])  # users untouched
    assert out.cue_mask.tolist() == [0.0 if j == m else 1.0 for j in range(3)]
    parts = model.decompose(out, 3, torch.arange(20))
    torch.testing.assert_close(parts["score"], model.score_users(out, torch.tensor([3]))[0], rtol=1e-4, atol=1e-5)
