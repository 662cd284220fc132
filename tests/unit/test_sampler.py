"""Negative sampling: m draws per user are m single draws, never a training positive."""
from __future__ import annotations

import torch

from magnet.sampler import NegativeSampler


def test_sampler_columns_are_single_draws_of_every_user():
    train = torch.tensor([[0, 0], [0, 1], [1, 2]])
    one = NegativeSampler(train, 6, torch.Generator().manual_seed(3)).sample(torch.tensor([0, 1, 0]))
    many = NegativeSampler(train, 6, torch.Generator().manual_seed(3)).sample(torch.tensor([0, 1, 0]), 1)
    assert many.shape == (3, 1) and torch.equal(many[:, 0], one)
    users = torch.tensor([0, 1] * 50)
    neg = NegativeSampler(train, 6, torch.Generator().manual_seed(0)).sample(users, 5)
    assert neg.shape == (100, 5)
    positives = {(0, 0), (0, 1), (1, 2)}
    assert not any((int(u), int(i)) in positives for u, row in zip(users, neg) for i in row)
