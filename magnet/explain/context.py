"""One checkpoint opened for explaining: its model, its dataset and its encoded channels."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import Checkpoint, load_checkpoint
from ..data import Dataset
from ..evaluate import masked_scores, popularity_buckets
from ..metrics import build_csr
from ..model import MAGNET, Precomputed
from ..restore import dataset_for_checkpoint, encoded
from ..vocab import template_rows


@dataclass
class ExplainContext:
    """A checkpoint, its dataset and the precomputed representations to score with."""

    ckpt: Checkpoint
    data: Dataset
    pre: Precomputed
    train_csr: tuple[torch.Tensor, torch.Tensor]  # (indptr [U+1], indices) of training positives
    popularity: np.ndarray  # [I] training degree
    buckets: np.ndarray  # [I] 0 head, 1 mid, 2 tail
    templates: np.ndarray = field(default_factory=lambda: np.array(template_rows(), dtype=np.float32))
    #: :meth:`knocked`'s channels, per modality.
    knocked_channels: dict[str, Precomputed] = field(default_factory=dict, repr=False)

    @classmethod
    @torch.no_grad()
    def load(cls, source: str | Path | Checkpoint, data: Dataset | None = None) -> "ExplainContext":
        """Open checkpoint ``source`` (a path or a loaded :class:`Checkpoint`) on its dataset
        (found and fingerprint-checked unless ``data`` is given)."""
        ckpt = source if isinstance(source, Checkpoint) else load_checkpoint(source)
        data = data or dataset_for_checkpoint(ckpt)
        pre = encoded(ckpt, data)
        popularity = data.item_popularity()
        buckets = popularity_buckets(data.train, data.n_items, ckpt.config.graph.tail_quantile)
        return cls(ckpt, data, pre, build_csr(data.train, data.n_users, data.n_items), popularity, buckets)

    @property
    def model(self) -> MAGNET:
        return self.ckpt.model

    @property
    def has_experts(self) -> bool:
        return bool(self.ckpt.model.use_experts)

    @property
    def train_indptr(self) -> np.ndarray:
        """[U+1] row pointers of the training positives (history of user u: indptr[u]:indptr[u+1])."""
        return self.train_csr[0].numpy()

    def activity(self) -> np.ndarray:
        """History length of every user [U]."""
        return np.diff(self.train_indptr)

    def history(self, user: int) -> np.ndarray:
        """Training items of ``user`` [h] int64 (ascending)."""
        indptr, indices = self.train_csr
        return indices[int(indptr[user]):int(indptr[user + 1])].numpy().astype(np.int64)

    def knocked(self, modality: str) -> Precomputed:
        """The channels with ``modality`` knocked out of every item (computed once per modality;
        see :mod:`magnet.explain.counterfactual`)."""
        if modality not in self.knocked_channels:
            self.knocked_channels[modality] = self.model.knock_out(self.pre, modality)
        return self.knocked_channels[modality]

    def score_fn(self, users: torch.Tensor) -> torch.Tensor:
        """Raw scores [B, I] of ``users`` [B] (training positives not masked)."""
        return self.model.score_users(self.pre, users)

    def scores(self, users: np.ndarray | list[int]) -> torch.Tensor:
        """Scores [B, I] with training positives masked to −inf."""
        users_t = torch.as_tensor(np.asarray(users, dtype=np.int64))
        return masked_scores(self.score_fn, users_t, self.train_csr, self.data.n_items)
