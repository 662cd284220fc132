"""Negative sampling for the ranking loss: uniform items that are not training positives."""
from __future__ import annotations

import torch


class NegativeSampler:
    """Uniform negatives that are not training positives of the user (vectorised rejection).

    ``train`` [n, 2] (user, item) training pairs; draws come from ``generator``.
    """

    def __init__(self, train: torch.Tensor, n_items: int, generator: torch.Generator) -> None:
        self.n_items = n_items
        self.keys = torch.sort(train[:, 0] * n_items + train[:, 1]).values
        self.generator = generator

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Whether each (users[j], items[j]) is a training pair: [n] bool."""
        keys = users * self.n_items + items
        pos = torch.searchsorted(self.keys, keys).clamp_max(len(self.keys) - 1)
        return self.keys[pos] == keys

    def sample(self, users: torch.Tensor, m: int | None = None, max_rounds: int = 10) -> torch.Tensor:
        """One negative item per entry of ``users`` [n] → [n]; with ``m``, m per entry → [n, m]
        (column j is one draw for every user, so m = 1 draws exactly what ``m=None`` does)."""
        if m is not None:
            return self.sample(users.repeat(m), max_rounds=max_rounds).view(m, len(users)).T
        items = torch.randint(self.n_items, users.shape, generator=self.generator)
        for _ in range(max_rounds):
            bad = self.is_positive(users, items)
            if not bool(bad.any()):
                break
            items[bad] = torch.randint(self.n_items, (int(bad.sum()),), generator=self.generator)
        return items
