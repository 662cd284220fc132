"""Graph construction for the two views (spec §2).

Node order everywhere: users ``0..n_users-1`` then items ``n_users..n_users+n_items-1``.
All propagation matrices are ``torch.sparse_csr`` tensors of shape [N, N], N = n_users + n_items.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .config import GraphConfig
from .evaluate import popularity_buckets


@dataclass
class GraphBundle:
    """The sparse operators a model needs, on one device.

    Attributes:
        interaction: Â, the symmetric-normalised bipartite adjacency [N, N].
        augmented: Â_aug, bipartite + aug_weight·S_I, renormalised [N, N] (None for behaviour-only).
        user_mean: D_u^-1 R, averages a user's training items [n_users, n_items] (None for behaviour-only).
        user_mean_t: its transpose [n_items, n_users], kept for the backward pass of :func:`spmm`.
        item_item: S_I, the mixed, tail-boosted content graph [n_items, n_items] (None likewise).
        augmented_image, augmented_text: with ``content_channels="id_graph"``, the bipartite graph
            plus ``id_graph_weight``·S_A (resp. S_S), the tail-boosted kNN graph of that modality
            alone, renormalised [N, N]; the A and S channels propagate ID embeddings on them
            (None otherwise).
    """

    n_users: int
    n_items: int
    interaction: torch.Tensor
    augmented: torch.Tensor | None = None
    user_mean: torch.Tensor | None = None
    item_item: torch.Tensor | None = None
    user_mean_t: torch.Tensor | None = None
    augmented_image: torch.Tensor | None = None
    augmented_text: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "GraphBundle":
        move = (lambda t: None if t is None else t.to(device))
        return GraphBundle(self.n_users, self.n_items, move(self.interaction), move(self.augmented),
                           move(self.user_mean), move(self.item_item), move(self.user_mean_t),
                           move(self.augmented_image), move(self.augmented_text))


class _SparseMM(torch.autograd.Function):
    """y = A x for a sparse A with a precomputed Aᵀ, so the backward (Aᵀ·grad) needs no
    transpose/conversion on every step (torch re-converts CSR transposes each call)."""

    @staticmethod
    def forward(ctx, adj: torch.Tensor, adj_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adj_t = adj_t
        return csr_matmul(adj, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, None, csr_matmul(ctx.adj_t, grad)


def csr_matmul(adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """adj [n, m] (sparse) × x [m, d] → [n, d]. On CPU, written straight into an uninitialised
    output with ``addmm(beta=0)`` (the input is then never read): ``adj @ x`` zero-fills and
    copies a result of the same size, ~1.5× the time at Baby scale (docs/BENCHMARKS.md)."""
    if adj.device.type != "cpu" or adj.layout != torch.sparse_csr or x.dtype != adj.dtype:
        return adj @ x
    out = torch.empty(adj.shape[0], x.shape[1], dtype=x.dtype, device=x.device)
    return torch.addmm(out, adj, x.contiguous(), beta=0.0, out=out)


def spmm(adj: torch.Tensor, x: torch.Tensor, adj_t: torch.Tensor | None = None) -> torch.Tensor:
    """Sparse [n, m] × dense [m, d] → [n, d]; ``adj_t`` defaults to ``adj`` (symmetric operators)."""
    return _SparseMM.apply(adj, adj if adj_t is None else adj_t, x)


def _csr(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """Coalesce (rows, cols, vals) — duplicates summed — into a float32 CSR tensor.

    Its indices are int32 when they fit (always, below 2³¹ nonzeros and nodes): torch's CPU
    sparse product converts int64 indices to int32 on every call, ~10% of a Baby-scale
    product (0.90 → 0.80 ms for Â, 1.52 → 1.39 ms for Â_aug, [26k, 64], 2 threads)."""
    coo = torch.sparse_coo_tensor(
        torch.from_numpy(np.stack([rows, cols]).astype(np.int64)),
        torch.from_numpy(vals.astype(np.float32)), shape).coalesce()
    csr = coo.to_sparse_csr()
    if max(csr.values().numel(), *shape) < 2 ** 31 - 1:
        csr = torch.sparse_csr_tensor(csr.crow_indices().int(), csr.col_indices().int(), csr.values(), shape)
    return csr


def sym_normalize(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the entries of D^-1/2 W D^-1/2 for a square weighted matrix W given as COO.

    Degrees are row sums; nodes of degree 0 keep no entries (0 instead of inf).
    """
    deg = np.bincount(rows, weights=vals, minlength=n)
    inv_sqrt = np.zeros(n, dtype=np.float64)
    nz = deg > 0
    inv_sqrt[nz] = deg[nz] ** -0.5
    return rows, cols, vals * inv_sqrt[rows] * inv_sqrt[cols]


def bipartite_entries(train: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COO entries of A = [[0, R], [Rᵀ, 0]] for training pairs ``train`` [n, 2] (user, item)."""
    u = train[:, 0].astype(np.int64)
    i = train[:, 1].astype(np.int64) + n_users
    ones = np.ones(len(train) * 2, dtype=np.float64)
    return np.concatenate([u, i]), np.concatenate([i, u]), ones


def normalized_adjacency(train: np.ndarray, n_users: int, n_items: int) -> torch.Tensor:
    """Â = D^-1/2 A D^-1/2 of the user–item graph, as CSR [N, N]."""
    n = n_users + n_items
    return _csr(*sym_normalize(*bipartite_entries(train, n_users), n), (n, n))


def knn_entries(features: np.ndarray, k: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Top-k cosine neighbours of each row of ``features`` [n, d], excluding itself.

    Computed in row chunks (float32 matmul + topk), never an [n, n] float64 matrix.
    Returns (rows, cols), each [n·k'] int64 with k' = min(k, n-1).
    """
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    x = torch.nn.functional.normalize(x, dim=1)
    n = x.shape[0]
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cols = []
    for start in range(0, n, chunk):
        sim = x[start:start + chunk] @ x.T
        idx = torch.arange(start, min(start + chunk, n))
        sim[idx - start, idx] = -float("inf")
        cols.append(sim.topk(k, dim=1).indices)
    col = torch.cat(cols).reshape(-1).numpy().astype(np.int64)
    row = np.repeat(np.arange(n, dtype=np.int64), k)
    return row, col


def knn_graph(features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric, symmetric-normalised kNN graph of ``features`` [n, d] as COO entries.

    The directed kNN relation is symmetrised by union (an edge if either is among the
    other's k nearest), given weight 1, then normalised as D^-1/2 S D^-1/2.
    """
    n = features.shape[0]
    row, col = knn_entries(features, k)
    keys = np.unique(np.concatenate([row * n + col, col * n + row]))
    r, c = keys // n, keys % n
    return sym_normalize(r, c, np.ones(len(keys)), n)


def tail_items(train: np.ndarray, n_items: int, quantile: float) -> np.ndarray:
    """Boolean mask [n_items] of the ``quantile`` least popular items by training degree —
    exactly the "tail" bucket of :func:`magnet.evaluate.popularity_buckets` (same tie-breaking)."""
    return popularity_buckets(train, n_items, tail_quantile=quantile) == 2


def content_graph(image_feat: np.ndarray, text_feat: np.ndarray, train: np.ndarray,
                  cfg: GraphConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """S_I = image_weight·S_A + (1-image_weight)·S_S with tail items' edges boosted (COO)."""
    n_items = image_feat.shape[0]
    ra, ca, va = knn_graph(image_feat, cfg.knn_k)
    rs, cs, vs = knn_graph(text_feat, cfg.knn_k)
    rows = np.concatenate([ra, rs])
    cols = np.concatenate([ca, cs])
    vals = np.concatenate([va * cfg.image_weight, vs * (1.0 - cfg.image_weight)])
    keys, inverse = np.unique(rows * n_items + cols, return_inverse=True)
    merged = np.bincount(inverse, weights=vals)
    rows, cols = keys // n_items, keys % n_items
    return rows, cols, boost_tail_edges(rows, cols, merged, train, n_items, cfg)


def boost_tail_edges(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, train: np.ndarray,
                     n_items: int, cfg: GraphConfig) -> np.ndarray:
    """``vals`` of item–item edges (rows, cols) with ``tail_boost`` applied to every edge that
    touches a tail item (:func:`tail_items`)."""
    tail = tail_items(train, n_items, cfg.tail_quantile)
    return vals * np.where(tail[rows] | tail[cols], cfg.tail_boost, 1.0)


def modality_graph(features: np.ndarray, train: np.ndarray, cfg: GraphConfig
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kNN graph of one modality's item features [n_items, d] (:func:`knn_graph`, ``knn_k``
    neighbours) with tail items' edges boosted as in :func:`content_graph` (COO)."""
    rows, cols, vals = knn_graph(features, cfg.knn_k)
    return rows, cols, boost_tail_edges(rows, cols, vals, train, features.shape[0], cfg)


def augmented_adjacency(train: np.ndarray, n_users: int, n_items: int, item_rows: np.ndarray,
                        item_cols: np.ndarray, item_vals: np.ndarray, weight: float) -> torch.Tensor:
    """D^-1/2 (A + weight·S) D^-1/2 as CSR [N, N]: the bipartite graph of ``train`` plus the
    item–item block S given as COO over item ids, renormalised together."""
    n = n_users + n_items
    br, bc, bv = bipartite_entries(train, n_users)
    rows = np.concatenate([br, item_rows + n_users])
    cols = np.concatenate([bc, item_cols + n_users])
    vals = np.concatenate([bv, item_vals * weight])
    return _csr(*sym_normalize(rows, cols, vals, n), (n, n))


def build_graphs(train: np.ndarray, n_users: int, n_items: int, cfg: GraphConfig,
                 image_feat: np.ndarray | None = None, text_feat: np.ndarray | None = None,
                 with_content: bool = True) -> GraphBundle:
    """Build every operator of spec §2 for the training pairs ``train`` [n, 2]."""
    interaction = normalized_adjacency(train, n_users, n_items)
    if not with_content:
        return GraphBundle(n_users, n_items, interaction)
    if image_feat is None or text_feat is None:
        raise ValueError("the content-augmented view needs image and text features")
    ri, ci, vi = content_graph(image_feat, text_feat, train, cfg)
    item_item = _csr(ri, ci, vi, (n_items, n_items))
    augmented = augmented_adjacency(train, n_users, n_items, ri, ci, vi, cfg.aug_weight)
    per_modality: list[torch.Tensor | None] = [None, None]
    if cfg.content_channels == "id_graph":
        per_modality = [augmented_adjacency(train, n_users, n_items, *modality_graph(feat, train, cfg),
                                            cfg.id_graph_weight) for feat in (image_feat, text_feat)]
    deg_u = np.bincount(train[:, 0], minlength=n_users).astype(np.float64)
    weights = 1.0 / np.maximum(deg_u[train[:, 0]], 1.0)
    user_mean = _csr(train[:, 0], train[:, 1], weights, (n_users, n_items))
    user_mean_t = _csr(train[:, 1], train[:, 0], weights, (n_items, n_users))
    return GraphBundle(n_users, n_items, interaction, augmented, user_mean, item_item, user_mean_t,
                       *per_modality)
