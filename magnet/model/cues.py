"""History-induced modality cues (spec §4b): how close an item is to a user's training history
in each content modality's feature space.

For a content modality m ∈ {A, S}: x̂^m_i is item i's raw features, centred over items, reduced
to ``model.cue_dim`` principal directions and unit-normalised; μ^m_u is the mean of x̂^m over
u's training items; the cue is cue_m(u, i) = ⟨μ^m_u, x̂^m_i⟩. For a training positive the user's
own item is left out of μ (leave-one-out: (n·c − 1)/(n − 1), exact because ‖x̂‖ = 1), so training
pairs and held-out pairs see the same distribution. Cues are standardised with the mean and
std over random (user, item) pairs: ẑ_m = (cue_m − mean_m)/std_m. The behaviour cue is zero
("neither content modality stands out" reads as behaviour).

Everything here is fitted once from the data before training (no gradient) and stored with the
weights, so scoring and explaining need no graphs. Over a catalogue the cues are two
[B, r] × [r, I] matmuls.
"""
from __future__ import annotations

import torch
from torch import nn

from ..vocab import MODALITIES

CONTENT: tuple[str, str] = ("A", "S")
#: (user, item) pairs drawn to standardise the cues.
STANDARDISE_PAIRS = 200_000


def cue_width(cue_dim: int, raw_dim: int, n_items: int) -> int:
    """Width r of a modality's cue directions: ``cue_dim`` when it reduces the features, else
    the raw width (capped by the item count, the rank PCA can reach)."""
    return max(1, min(cue_dim, raw_dim, n_items))


class ModalityCues(nn.Module):
    """Buffers: per content modality the item directions x̂ [I, r] and the user means μ [U, r];
    ``count`` [U] training items per user; ``mean``, ``std`` [3] over (B, A, S) (B unused: 0, 1).

    Args:
        n_users, n_items: id ranges.
        widths: (r_A, r_S), see :func:`cue_width`.
    """

    def __init__(self, n_users: int, n_items: int, widths: tuple[int, int]) -> None:
        super().__init__()
        for m, r in zip(CONTENT, widths):
            self.register_buffer(f"item_{m}", torch.zeros(n_items, r))
            self.register_buffer(f"user_{m}", torch.zeros(n_users, r))
        self.register_buffer("count", torch.zeros(n_users))
        self.register_buffer("mean", torch.zeros(len(MODALITIES)))
        self.register_buffer("std", torch.ones(len(MODALITIES)))

    # ------------------------------------------------------------------ fitting
    @torch.no_grad()
    def fit(self, train: torch.Tensor, features: tuple[torch.Tensor, torch.Tensor], seed: int = 0) -> None:
        """Fit every buffer from training pairs ``train`` [n, 2] (user, item) and the raw item
        features (image [I, d_A], text [I, d_S]); deterministic given ``seed``."""
        from .encoders import pca_basis  # the same seeded randomised SVD as the feature reduction

        users, items = train[:, 0].long(), train[:, 1].long()
        n_users = self.count.shape[0]
        count = torch.bincount(users, minlength=n_users).float()
        self.count.copy_(count)
        for j, (m, feat) in enumerate(zip(CONTENT, features)):
            item_dirs = getattr(self, f"item_{m}")
            x = feat.float()
            mean, basis = pca_basis(x, item_dirs.shape[1], seed=seed + j)
            z = torch.nn.functional.normalize((x - mean) @ basis, dim=1)
            item_dirs.copy_(z)
            sums = torch.zeros_like(getattr(self, f"user_{m}")).index_add_(0, users, z[items])
            getattr(self, f"user_{m}").copy_(sums / count.clamp_min(1.0).unsqueeze(1))
        self._fit_standardisation(seed)

    def _fit_standardisation(self, seed: int) -> None:
        """Mean and std of each content cue over random (user with history, item) pairs."""
        gen = torch.Generator().manual_seed(seed)
        active = torch.nonzero(self.count > 0).flatten()
        n_items = self.item_A.shape[0]
        pick = torch.randint(len(active), (STANDARDISE_PAIRS,), generator=gen)
        users = active[pick.to(active.device)]
        items = torch.randint(n_items, (STANDARDISE_PAIRS,), generator=gen).to(users.device)
        raw = self.raw_pairs(users, items)  # [n, 2]
        self.mean.zero_()
        self.std.fill_(1.0)
        self.mean[1:] = raw.mean(0)
        self.std[1:] = raw.std(0).clamp_min(1e-6)

    # ------------------------------------------------------------------ pairs
    def raw_pairs(self, users: torch.Tensor, items: torch.Tensor, positive: torch.Tensor | None = None
                  ) -> torch.Tensor:
        """Unstandardised content cues [n, 2] (A, S) of aligned pairs users, items [n];
        ``positive`` [n] bool marks training positives, whose cue leaves the item out of μ."""
        out = []
        for m in CONTENT:
            c = (getattr(self, f"user_{m}").index_select(0, users)
                 * getattr(self, f"item_{m}").index_select(0, items)).sum(-1)
            if positive is not None:
                out.append(self._leave_one_out(c, users, positive, m))
            else:
                out.append(c)
        return torch.stack(out, dim=1)

    def _leave_one_out(self, c: torch.Tensor, users: torch.Tensor, positive: torch.Tensor, m: str) -> torch.Tensor:
        """(n·c − 1)/(n − 1) for training positives of users with n ≥ 2 items; a positive of a
        one-item user has no other history, so it gets the average cue (ẑ = 0)."""
        n = self.count.index_select(0, users)
        loo = (n * c - 1.0) / (n - 1.0).clamp_min(1.0)
        fallback = self.mean[MODALITIES.index(m)].expand_as(c)
        return torch.where(positive, torch.where(n >= 2, loo, fallback), c)

    def pairs(self, users: torch.Tensor, items: torch.Tensor, positive: torch.Tensor | None = None) -> torch.Tensor:
        """Standardised cues ẑ [n, 3] over (B, A, S) of aligned pairs (B column zero)."""
        raw = self.raw_pairs(users, items, positive)
        z = (raw - self.mean[1:]) / self.std[1:]
        return torch.cat([torch.zeros_like(z[:, :1]), z], dim=1)

    # ------------------------------------------------------------------ catalogue
    def grid(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Standardised cues ẑ [3, B, I'] of every user in ``users`` [B] against ``items`` [I']
        (default: the catalogue), B plane zero. No leave-one-out: at evaluation the training
        positives are masked anyway."""
        planes = []
        for j, m in enumerate(CONTENT, start=1):
            dirs = getattr(self, f"item_{m}")
            dirs = dirs if items is None else dirs.index_select(0, items)
            raw = getattr(self, f"user_{m}").index_select(0, users) @ dirs.T
            planes.append((raw - self.mean[j]) / self.std[j])
        return torch.stack([torch.zeros_like(planes[0]), *planes])

    def scaled_item_dirs(self) -> torch.Tensor:
        """Item directions of both content modalities divided by their cue std, side by side
        [I, r_A + r_S]: ⟨[μ^A_u, μ^S_u], column block m⟩ = (cue_m)/std_m (the catalogue scorer
        subtracts mean_m/std_m in its constant)."""
        return torch.cat([self.item_A / self.std[1], self.item_S / self.std[2]], dim=1)

    def user_rows(self, users: torch.Tensor) -> torch.Tensor:
        """[μ^A_u, μ^S_u] [B, r_A + r_S] of ``users`` [B]."""
        return torch.cat([self.user_A.index_select(0, users), self.user_S.index_select(0, users)], dim=1)
