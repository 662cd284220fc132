"""Top-K ranking metrics (MMRec definitions) and CSR helpers for positives.

All functions are vectorised over users: no Python loop runs per user.

Definitions, for a user with ``n_pos`` positives and the ranked list ``topk`` (best first),
``hit_j = 1`` when the j-th ranked item (0-based) is a positive:

* Recall@K    = hits@K / n_pos
* Precision@K = hits@K / K
* NDCG@K      = DCG@K / IDCG@K, DCG@K = sum_{j<K} hit_j / log2(j + 2), IDCG@K the DCG of an ideal
  list with ``min(n_pos, K)`` hits at the top
* MAP@K       = (sum_{j<K} hit_j * Precision@(j + 1)) / min(n_pos, K)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

METRIC_NAMES: tuple[str, ...] = ("recall", "ndcg", "precision", "map")


def ranking_metrics(topk: torch.Tensor, truth: torch.Tensor, n_pos: torch.Tensor,
                    ks: Sequence[int]) -> dict[str, torch.Tensor]:
    """Per-user ranking metrics.

    Args:
        topk: [B, maxK] item ids ranked best-first (only its shape is used; the ids themselves
            are already reflected in ``truth``).
        truth: [B, maxK] bool, ``truth[b, j]`` = ``topk[b, j]`` is a positive of user b.
        n_pos: [B] number of positives of each user. Users with 0 positives should be excluded
            by the caller; they are clamped to 1 here so every value is finite (and 0).
        ks: cut-offs. A cut-off larger than ``maxK`` (a catalogue smaller than K) is evaluated
            on the ``maxK`` ranked items, with Precision still divided by K and IDCG still over
            ``min(n_pos, K)`` positions.

    Returns:
        ``{"recall@K", "ndcg@K", "precision@K", "map@K"}`` for every K, each a float64 tensor [B].
    """
    if truth.shape != topk.shape:
        raise ValueError(f"truth {tuple(truth.shape)} and topk {tuple(topk.shape)} differ in shape")
    if len(ks) == 0:
        return {}
    if min(ks) < 1:
        raise ValueError(f"cut-offs must be >= 1, got {list(ks)}")
    device = truth.device
    max_k = max(int(k) for k in ks)
    hits = truth.to(torch.float64)                                    # [B, C]
    if hits.shape[1] < max_k:                                          # catalogue smaller than K
        hits = torch.nn.functional.pad(hits, (0, max_k - hits.shape[1]))
    hits = hits[:, :max_k]                                            # [B, maxK]
    pos = torch.arange(max_k, device=device, dtype=torch.float64)     # [maxK] 0-based position
    disc = 1.0 / torch.log2(pos + 2.0)                                # [maxK]
    cum_hits = hits.cumsum(1)                                         # [B, maxK] hits@(j+1)
    cum_dcg = (hits * disc).cumsum(1)                                 # [B, maxK] DCG@(j+1)
    cum_ideal = disc.cumsum(0)                                        # [maxK] IDCG with j+1 hits
    cum_ap = (hits * cum_hits / (pos + 1.0)).cumsum(1)                # [B, maxK]
    n = n_pos.to(device=device, dtype=torch.long).clamp(min=1)        # [B]
    n_f = n.to(torch.float64)

    out: dict[str, torch.Tensor] = {}
    for k in ks:
        k = int(k)
        h = cum_hits[:, k - 1]                                        # [B]
        denom = n.clamp(max=k)                                        # [B] min(n_pos, K) >= 1
        out[f"recall@{k}"] = h / n_f
        out[f"ndcg@{k}"] = cum_dcg[:, k - 1] / cum_ideal[denom - 1]
        out[f"precision@{k}"] = h / float(k)
        out[f"map@{k}"] = cum_ap[:, k - 1] / denom.to(torch.float64)
    return out


def build_csr(pairs: np.ndarray | torch.Tensor, n_users: int, n_items: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR of (user, item) pairs: items of each user sorted ascending, duplicates removed.

    Args:
        pairs: [n, 2] integer (user, item) pairs.
        n_users: number of users (rows); every user id must be < n_users.
        n_items: number of items; every item id must be < n_items.

    Returns:
        ``(indptr [n_users + 1], indices [nnz])`` int64 CPU tensors; user u's items are
        ``indices[indptr[u]:indptr[u + 1]]``.
    """
    arr = pairs.detach().cpu().numpy() if isinstance(pairs, torch.Tensor) else np.asarray(pairs)
    arr = arr.reshape(-1, 2).astype(np.int64, copy=False)
    if arr.size:
        if arr.min() < 0 or arr[:, 0].max() >= n_users or arr[:, 1].max() >= n_items:
            raise ValueError("pair ids out of range for build_csr "
                             f"(n_users={n_users}, n_items={n_items})")
    keys = np.unique(arr[:, 0] * np.int64(n_items) + arr[:, 1])       # sorted, deduplicated
    users = keys // n_items
    indices = keys % n_items
    counts = np.bincount(users, minlength=n_users)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return torch.from_numpy(indptr), torch.from_numpy(indices.astype(np.int64))


def gather_csr(csr: tuple[torch.Tensor, torch.Tensor], users: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened positives of a batch of users.

    Args:
        csr: ``(indptr [n_users + 1], indices [nnz])`` on the same device as ``users``.
        users: [B] user ids.

    Returns:
        ``(rows [m], items [m])``: ``rows`` are batch positions 0..B-1 (non-decreasing) and
        ``items`` the positives of ``users[rows]``, ascending within each row.
    """
    indptr, indices = csr
    users = users.to(device=indptr.device, dtype=torch.long)
    starts = indptr[users]                                            # [B]
    lengths = indptr[users + 1] - starts                              # [B]
    rows = torch.repeat_interleave(torch.arange(users.numel(), device=users.device), lengths)
    if rows.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=users.device)
        return empty, empty.clone()
    first = torch.cumsum(lengths, 0) - lengths                        # [B] offset of each row
    offset = torch.arange(rows.numel(), device=users.device) - first[rows]
    return rows, indices[starts[rows] + offset]


def hits_matrix(topk: torch.Tensor, positives_csr: tuple[torch.Tensor, torch.Tensor],
                users: torch.Tensor) -> torch.Tensor:
    """Which ranked items are positives, by sorted search (no dense [B, n_items] buffer).

    Args:
        topk: [B, maxK] item ids.
        positives_csr: ``(indptr [n_users + 1], indices [nnz])`` from :func:`build_csr`
            (items ascending within each user); moved to ``topk``'s device if needed.
        users: [B] user ids, row b of ``topk`` belongs to ``users[b]``.

    Returns:
        [B, maxK] bool, ``True`` where ``topk[b, j]`` is a positive of ``users[b]``.
    """
    device = topk.device
    csr = (positives_csr[0].to(device), positives_csr[1].to(device))
    rows, items = gather_csr(csr, users.to(device))
    if items.numel() == 0:
        return torch.zeros(topk.shape, dtype=torch.bool, device=device)
    topk = topk.to(torch.long)
    width = int(max(int(items.max()), int(topk.max())) + 1)
    keys = rows * width + items                                       # [m] sorted ascending
    query = torch.arange(topk.shape[0], device=device).unsqueeze(1) * width + topk   # [B, maxK]
    at = torch.searchsorted(keys, query.reshape(-1)).clamp(max=keys.numel() - 1)
    return (keys[at] == query.reshape(-1)).reshape(topk.shape)


__all__ = ["METRIC_NAMES", "build_csr", "gather_csr", "hits_matrix", "ranking_metrics"]
