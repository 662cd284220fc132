"""Can the content-induced item–item edges help a dataset's long tail? (docs/RESULTS.md, #5.3)

Two facts decide it, and this prints both for the tail items (the ``graph.tail_quantile``
least popular by training degree) and for the other items:

- **weight**: the share of an item's row of the augmented operator Â_aug that goes to content
  neighbours rather than to its users. Near 0, the edges barely change what the item's
  augmented view propagates.
- **signal**: the share of an item's content neighbours that share a training user with it
  ("co-consumed"), against the share of *all* other items that do (the rate a random
  neighbour would have). Neighbours co-consumed at the random rate carry nothing the
  interactions do not. The same lift is given for each modality's own kNN graph (before the
  two are mixed with ``graph.image_weight``).

Only training interactions are read. Graphs are built exactly as for training
(:func:`magnet.graphs.build_graphs` with the config's graph section).

Usage: .venv/bin/python bench/content_edges.py DATA [DATA ...] [--config run.json]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from magnet.config import RunConfig  # noqa: E402
from magnet.data import (
    DEFAULT_CACHE,  # noqa: E402
    load_dataset,  # noqa: E402
)
from magnet.graphs import build_graphs, knn_graph, tail_items  # noqa: E402


@dataclass
class EdgeReport:
    """Per-item arrays [n_items]: training degree, content share of the Â_aug row, share of
    content neighbours co-consumed, share of all other items co-consumed; the tail mask; and
    per modality ("image", "text") the share of that modality's own kNN neighbours co-consumed."""

    degree: np.ndarray
    content_share: np.ndarray
    neighbours_co: np.ndarray
    random_co: np.ndarray
    tail: np.ndarray
    modality_co: dict[str, np.ndarray]


def co_consumption_matrix(train: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """[n_items, n_items] with (i, j) > 0 iff some training user has both i and j (i ≠ j)."""
    r = sp.csr_matrix((np.ones(len(train)), (train[:, 0], train[:, 1])), shape=(n_users, n_items))
    co = (r.T @ r).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    return co


def random_co_share(co: sp.csr_matrix) -> np.ndarray:
    """Per item, the share of all other n_items − 1 items co-consumed with it: [n_items]."""
    return np.diff(co.indptr) / max(co.shape[0] - 1, 1)


def neighbour_co_share(co: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """For item pairs (rows[k], cols[k]) [E]: per item, the share of its pairs whose two items
    are co-consumed ([n_items]; NaN for an item without pairs)."""
    n_items = co.shape[0]
    hit = np.asarray(co[rows, cols]).ravel() > 0
    pairs = np.bincount(rows, minlength=n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(rows, weights=hit, minlength=n_items) / pairs


def content_share(augmented: torch.Tensor, n_users: int) -> np.ndarray:
    """Share of each item row's mass in Â_aug [N, N] (CSR) on item columns: [n_items]."""
    crow = augmented.crow_indices().cpu().numpy()
    col = augmented.col_indices().cpu().numpy()
    val = augmented.values().cpu().numpy().astype(np.float64)
    row = np.repeat(np.arange(len(crow) - 1), np.diff(crow))
    total = np.bincount(row, weights=val, minlength=len(crow) - 1)
    content = np.bincount(row, weights=val * (col >= n_users), minlength=len(crow) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (content / total)[n_users:]


def edge_report(data_spec: str, config: RunConfig) -> EdgeReport:
    """:class:`EdgeReport` of one dataset under ``config.graph``."""
    data = load_dataset(data_spec, cache_dir=DEFAULT_CACHE, require_features=True)
    graphs = build_graphs(data.train, data.n_users, data.n_items, config.graph, data.image_feat, data.text_feat)
    s = graphs.item_item.to_sparse_coo().coalesce()
    rows, cols = (x.cpu().numpy().copy() for x in s.indices())
    co = co_consumption_matrix(data.train, data.n_users, data.n_items)
    modality_co = {}
    for name, feat in (("image", data.image_feat), ("text", data.text_feat)):
        r, c, _ = knn_graph(feat, config.graph.knn_k)
        modality_co[name] = neighbour_co_share(co, r.copy(), c.copy())
    return EdgeReport(np.bincount(data.train[:, 1], minlength=data.n_items), content_share(graphs.augmented, data.n_users),
                      neighbour_co_share(co, rows, cols), random_co_share(co),
                      tail_items(data.train, data.n_items, config.graph.tail_quantile), modality_co)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="+", help="MMRec directory or synthetic:<preset>")
    parser.add_argument("--config", type=Path, help="run config whose graph section to use (default: defaults)")
    args = parser.parse_args()
    config = RunConfig.from_json_file(args.config) if args.config else RunConfig()
    print(f"graph: aug_weight {config.graph.aug_weight}, knn_k {config.graph.knn_k}, "
          f"tail_boost {config.graph.tail_boost}, tail_quantile {config.graph.tail_quantile}\n")
    print("| data | items | mean training degree | content share of Â_aug row | neighbours co-consumed "
          "| any other item co-consumed | lift | image kNN alone: lift | text kNN alone: lift |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for spec in args.data:
        rep = edge_report(spec, config)
        for name, mask in (("tail", rep.tail), ("other", ~rep.tail)):
            nb, rnd = np.nanmean(rep.neighbours_co[mask]), np.nanmean(rep.random_co[mask])
            per_modality = " | ".join(f"{np.nanmean(rep.modality_co[m][mask]) / rnd:.2f}×" for m in ("image", "text"))
            print(f"| {spec} | {name} ({mask.sum()}) | {rep.degree[mask].mean():.1f} | "
                  f"{np.nanmean(rep.content_share[mask]):.3f} | {nb:.3f} | {rnd:.3f} | {nb / rnd:.2f}× | {per_modality} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
