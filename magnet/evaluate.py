"""Full-ranking evaluation (MMRec protocol) with popularity-bucket breakdowns.

Protocol: every user with at least one positive in a requested split is scored against the whole
catalogue, training positives are masked to ``-inf``, and one Top-maxK list per user is shared by
all splits (so at test time the valid positives stay candidates, as in MMRec). Metrics are the
per-user values of :func:`magnet.metrics.ranking_metrics` averaged in float64 over the users with
at least one positive in the split.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch

from .metrics import METRIC_NAMES, build_csr, gather_csr, hits_matrix, ranking_metrics
from .vocab import BUCKET_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from .config import RunConfig
    from .data import Dataset
    from .model import MAGNET, Precomputed

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
"""Scores of a batch: user ids LongTensor [B] (on the evaluation device) -> float [B, n_items]."""

BUCKET_METRICS: tuple[str, ...] = ("recall", "ndcg")


def _pairs(arr: np.ndarray | torch.Tensor) -> np.ndarray:
    """[n, 2] int64 numpy view of (user, item) pairs."""
    a = arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr)
    return a.reshape(-1, 2).astype(np.int64, copy=False)


def item_degree(train: np.ndarray, n_items: int) -> np.ndarray:
    """Training degree of every item: [n_items] int64 (number of training pairs per item)."""
    return np.bincount(_pairs(train)[:, 1], minlength=n_items).astype(np.int64)


def popularity_buckets(train_pairs: np.ndarray, n_items: int, tail_quantile: float = 0.2,
                       head_quantile: float = 0.2) -> np.ndarray:
    """Popularity bucket of every item by training degree.

    Items are ordered by degree descending with ties broken by item id ascending (stable sort);
    the first ``round(head_quantile * n_items)`` are head (0), the last
    ``round(tail_quantile * n_items)`` are tail (2) and the rest mid (1). So among items of equal
    degree, higher ids fall towards the tail.

    Args:
        train_pairs: [n, 2] (user, item) training pairs.
        n_items: catalogue size.

    Returns:
        [n_items] int8 bucket ids.
    """
    if not (0.0 <= head_quantile <= 1.0 and 0.0 <= tail_quantile <= 1.0):
        raise ValueError(f"quantiles must lie in [0, 1], got head={head_quantile}, tail={tail_quantile}")
    degree = item_degree(train_pairs, n_items)
    order = np.argsort(-degree, kind="stable")                        # most popular first
    n_head = min(int(round(head_quantile * n_items)), n_items)
    n_tail = min(int(round(tail_quantile * n_items)), n_items - n_head)
    buckets = np.ones(n_items, dtype=np.int8)
    buckets[order[:n_head]] = 0
    if n_tail > 0:
        buckets[order[n_items - n_tail:]] = 2
    return buckets


def popularity_score_fn(train: np.ndarray, n_items: int, device: str | torch.device) -> ScoreFn:
    """Popularity-ranking baseline: every user gets the same scores, the items' training degree.

    Scores are float64 ``degree + (n_items - item) / (n_items + 1)``: the fractional part (in
    (0, 1)) only breaks ties between equal degrees towards the lower item id, so the ranking is
    deterministic and ``floor(score) == degree``.

    Returns:
        ScoreFn mapping user ids [B] to scores [B, n_items] float64 on ``device``.
    """
    degree = torch.from_numpy(item_degree(train, n_items)).to(torch.float64)
    tie = (n_items - torch.arange(n_items, dtype=torch.float64)) / (n_items + 1)
    row = (degree + tie).to(device)                                   # [n_items]

    def score(users: torch.Tensor) -> torch.Tensor:
        return row.unsqueeze(0).expand(users.numel(), n_items).clone()

    return score


def masked_scores(score_fn: ScoreFn, users: torch.Tensor, train_csr: tuple[torch.Tensor, torch.Tensor],
                   n_items: int) -> torch.Tensor:
    """Scores [B, n_items] of ``users`` [B] with their training positives set to -inf."""
    scores = score_fn(users)
    if scores.shape != (users.numel(), n_items):
        raise ValueError(f"score_fn returned shape {tuple(scores.shape)}, expected "
                         f"({users.numel()}, {n_items})")
    if not torch.is_floating_point(scores):
        scores = scores.to(torch.float32)
    if scores.requires_grad or scores._base is not None:
        scores = scores.detach().clone()                              # never write into a view
    rows, items = gather_csr(train_csr, users)
    scores[rows, items] = float("-inf")
    return scores


def _empty_result(ks: Sequence[int], names: Sequence[str]) -> dict[str, Any]:
    return {f"{n}@{k}": 0.0 for n in names for k in ks}


@torch.no_grad()
def evaluate(score_fn: ScoreFn, n_users: int, n_items: int, train: np.ndarray,
             splits: dict[str, np.ndarray], ks: Sequence[int] = (5, 10, 20, 50),
             batch_users: int = 1024, device: str | torch.device = "cpu",
             buckets: np.ndarray | None = None) -> dict[str, dict]:
    """Full-ranking evaluation of ``score_fn`` on every split at once.

    Args:
        score_fn: user ids [B] (LongTensor on ``device``) -> scores [B, n_items].
        n_users, n_items: id ranges.
        train: [n, 2] training (user, item) pairs; masked to -inf before ranking.
        splits: name -> [n, 2] (user, item) positives (e.g. ``{"valid": ..., "test": ...}``).
        ks: cut-offs; one Top-max(ks) per user batch is shared by all splits and cut-offs.
        batch_users: users scored at once (memory is O(batch_users * n_items)).
        device: where scores, masks and metrics are computed.
        buckets: optional [n_items] int bucket ids (0 head, 1 mid, 2 tail) from
            :func:`popularity_buckets`; adds per-bucket Recall/NDCG.

    Returns:
        ``{split: {"recall@K": float, "ndcg@K", "precision@K", "map@K" ..., "n_users": int,
        "buckets": {"head"|"mid"|"tail": {"recall@K", "ndcg@K" ..., "n_users": int}}}}``;
        ``"buckets"`` only when ``buckets`` is given. Averages are over the users with at least
        one positive in the split (bucket: in that bucket). A split/bucket with no such user
        reports 0.0 for every metric and ``n_users`` 0.
    """
    ks = [int(k) for k in ks]
    if not ks:
        raise ValueError("evaluate needs at least one cut-off")
    if batch_users < 1:
        raise ValueError(f"batch_users must be >= 1, got {batch_users}")
    device = torch.device(device)
    max_k = min(max(ks), n_items)
    train_csr = tuple(t.to(device) for t in build_csr(_pairs(train), n_users, n_items))
    split_pairs = {name: _pairs(arr) for name, arr in splits.items()}
    split_csr = {name: tuple(t.to(device) for t in build_csr(p, n_users, n_items))
                 for name, p in split_pairs.items()}
    # Positives per user [n_users] (deduplicated: CSR row lengths).
    n_pos = {name: csr[0][1:] - csr[0][:-1] for name, csr in split_csr.items()}

    bucket_t: torch.Tensor | None = None
    n_pos_bucket: dict[str, torch.Tensor] = {}                        # name -> [3, n_users]
    if buckets is not None:
        b_np = np.asarray(buckets).astype(np.int64)
        if b_np.shape != (n_items,):
            raise ValueError(f"buckets has shape {b_np.shape}, expected ({n_items},)")
        bucket_t = torch.from_numpy(b_np).to(device)
        for name, csr in split_csr.items():
            indptr, indices = csr
            lengths = indptr[1:] - indptr[:-1]
            owner = torch.repeat_interleave(torch.arange(n_users, device=device), lengths)
            flat = bucket_t[indices] * n_users + owner
            n_pos_bucket[name] = torch.bincount(flat, minlength=len(BUCKET_NAMES) * n_users
                                                ).reshape(len(BUCKET_NAMES), n_users)

    # Users with >= 1 positive in any requested split; nobody else is scored.
    any_pos = torch.zeros(n_users, dtype=torch.bool, device=device)
    for cnt in n_pos.values():
        any_pos |= cnt > 0
    eval_users = torch.nonzero(any_pos).flatten()                     # [U] ascending

    names = [f"{m}@{k}" for m in METRIC_NAMES for k in ks]
    bnames = [f"{m}@{k}" for m in BUCKET_METRICS for k in ks]
    sums = {s: torch.zeros(len(names), dtype=torch.float64, device=device) for s in splits}
    counts = {s: torch.zeros((), dtype=torch.long, device=device) for s in splits}
    bsums = {s: torch.zeros(len(BUCKET_NAMES), len(bnames), dtype=torch.float64, device=device)
             for s in splits}
    bcounts = {s: torch.zeros(len(BUCKET_NAMES), dtype=torch.long, device=device) for s in splits}

    for start in range(0, eval_users.numel(), batch_users):
        users = eval_users[start:start + batch_users]                 # [B]
        scores = masked_scores(score_fn, users, train_csr, n_items)  # [B, n_items]
        topk = torch.topk(scores, max_k, dim=1).indices               # [B, maxK]
        del scores
        topk_bucket = bucket_t[topk] if bucket_t is not None else None  # [B, maxK]
        for s in splits:
            npos = n_pos[s][users]                                    # [B]
            keep = npos > 0                                           # [B]
            if not bool(keep.any()):
                continue
            truth = hits_matrix(topk, split_csr[s], users)            # [B, maxK]
            per_user = ranking_metrics(topk, truth, npos, ks)
            vals = torch.stack([per_user[n] for n in names], 1)       # [B, M] float64
            sums[s] += (vals * keep.unsqueeze(1)).sum(0)
            counts[s] += keep.sum()
            if topk_bucket is not None:
                for b in range(len(BUCKET_NAMES)):
                    nb = n_pos_bucket[s][b, users]                    # [B]
                    kb = nb > 0
                    if not bool(kb.any()):
                        continue
                    pb = ranking_metrics(topk, truth & (topk_bucket == b), nb, ks)
                    bv = torch.stack([pb[n] for n in bnames], 1)      # [B, M']
                    bsums[s][b] += (bv * kb.unsqueeze(1)).sum(0)
                    bcounts[s][b] += kb.sum()

    result: dict[str, dict] = {}
    for s in splits:
        n = int(counts[s])
        entry: dict[str, Any] = (dict(zip(names, (sums[s] / n).tolist())) if n
                                 else _empty_result(ks, METRIC_NAMES))
        entry["n_users"] = n
        if bucket_t is not None:
            entry["buckets"] = {}
            for b, bname in enumerate(BUCKET_NAMES):
                nb = int(bcounts[s][b])
                be: dict[str, Any] = (dict(zip(bnames, (bsums[s][b] / nb).tolist())) if nb
                                      else _empty_result(ks, BUCKET_METRICS))
                be["n_users"] = nb
                entry["buckets"][bname] = be
        result[s] = entry
    return result


@torch.no_grad()
def per_user_ranks(score_fn: ScoreFn, users: torch.Tensor, items: torch.Tensor,
                   train_csr: tuple[torch.Tensor, torch.Tensor], n_items: int,
                   batch_size: int = 1024) -> torch.Tensor:
    """1-based rank of ``items[j]`` for ``users[j]`` under the full-ranking protocol.

    Rank = 1 + number of candidate items (training positives masked to -inf) with a strictly
    greater score. An item that is itself a training positive of its user is ranked after every
    candidate.

    Args:
        score_fn: user ids [B] -> scores [B, n_items] (called on ``users``' device).
        users: [N] user ids.
        items: [N] item ids.
        train_csr: ``(indptr, indices)`` of the training pairs from :func:`build_csr`.
        n_items: catalogue size.
        batch_size: distinct users scored at once (memory O(batch_size * n_items), plus a row
            per ranked pair of the batch).

    Returns:
        [N] int64 ranks on ``users``' device.
    """
    if users.shape != items.shape or users.dim() != 1:
        raise ValueError(f"users {tuple(users.shape)} and items {tuple(items.shape)} must be equal 1-D")
    device = users.device
    csr = (train_csr[0].to(device), train_csr[1].to(device))
    items = items.to(device=device, dtype=torch.long)
    # Each distinct user is scored once, however many of its items are ranked.
    distinct, row_of = torch.unique(users.to(torch.long), return_inverse=True)
    out = torch.empty(users.numel(), dtype=torch.long, device=device)
    for start in range(0, distinct.numel(), batch_size):
        scores = masked_scores(score_fn, distinct[start:start + batch_size], csr, n_items)  # [b, n_items]
        pairs = torch.nonzero((row_of >= start) & (row_of < start + scores.shape[0])).flatten()
        rows = row_of[pairs] - start
        target = scores[rows, items[pairs]]  # [p]
        out[pairs] = 1 + (scores[rows] > target.unsqueeze(1)).sum(1)
    return out


def evaluate_model(model: "MAGNET", pre: "Precomputed", config: "RunConfig", data: "Dataset",
                   splits: tuple[str, ...], device: torch.device | str,
                   buckets: np.ndarray | None = None) -> dict[str, dict]:
    """Full-ranking metrics of ``model`` with channels ``pre`` (its :meth:`~MAGNET.precompute`)
    on ``splits`` of ``data``, with the cut-offs, batch size and popularity buckets of ``config``
    (``buckets``: the [n_items] buckets if already computed)."""
    if buckets is None:
        buckets = popularity_buckets(data.train, data.n_items, config.graph.tail_quantile)
    return evaluate(lambda users: model.score_users(pre, users), data.n_users, data.n_items, data.train,
                    {s: getattr(data, s) for s in splits}, ks=config.train.topks,
                    batch_users=config.train.eval_batch_users, device=device, buckets=buckets)


def metric_table(metrics: dict[str, dict], ks: list[int]) -> str:
    """Plain-text table of valid/test metrics for the CLI."""
    names = ("recall", "ndcg", "precision", "map")
    lines = ["split  " + "  ".join(f"{n}@{k:<3}".rjust(12) for n in names for k in ks)]
    for split in ("valid", "test"):
        if split in metrics:
            lines.append(f"{split:<6} " + "  ".join(f"{metrics[split][f'{n}@{k}']:>12.4f}"
                                                    for n in names for k in ks))
    return "\n".join(lines)


__all__ = ["BUCKET_NAMES", "ScoreFn", "evaluate", "evaluate_model", "masked_scores", "item_degree", "metric_table", "per_user_ranks",
           "popularity_buckets", "popularity_score_fn"]
