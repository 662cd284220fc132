"""Normalised adjacency, kNN symmetry and tail boost on hand-checkable toys."""
import math

import numpy as np
import torch

from magnet.config import GraphConfig
from magnet.graphs import build_graphs, knn_graph, normalized_adjacency, tail_items


def dense(t: torch.Tensor) -> np.ndarray:
    return t.to_dense().numpy()


def test_normalized_adjacency_matches_hand_values():
    # 2 users, 2 items: u0–i0, u0–i1, u1–i1. Degrees: u0=2, u1=1, i0=1, i1=2.
    train = np.array([[0, 0], [0, 1], [1, 1]])
    a = dense(normalized_adjacency(train, 2, 2))
    # node order: u0, u1, i0 (=2), i1 (=3)
    assert a.shape == (4, 4)
    assert math.isclose(a[0, 2], 1 / math.sqrt(2 * 1), rel_tol=1e-6)
    assert math.isclose(a[0, 3], 1 / math.sqrt(2 * 2), rel_tol=1e-6)
    assert math.isclose(a[1, 3], 1 / math.sqrt(1 * 2), rel_tol=1e-6)
    assert a[1, 2] == 0 and a[0, 1] == 0 and a[2, 3] == 0
    np.testing.assert_allclose(a, a.T)


def test_isolated_node_gets_no_entries():
    train = np.array([[0, 0]])
    a = dense(normalized_adjacency(train, 2, 2))  # user 1 and item 1 have no edges
    assert np.all(a[1] == 0) and np.all(a[3] == 0)
    assert np.isfinite(a).all()


def five_item_features() -> np.ndarray:
    # items 0,1 close together, 2,3 close together, 4 in between
    return np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.7, 0.7]], dtype=np.float32)


def test_knn_graph_is_symmetric_and_normalised():
    rows, cols, vals = knn_graph(five_item_features(), k=1)
    s = np.zeros((5, 5))
    s[rows, cols] = vals
    np.testing.assert_allclose(s, s.T)
    assert np.all(np.diag(s) == 0)
    # 1-NN: 0↔1, 1→0, 2↔3, 3→2, 4→? (equidistant-ish; cos to 1 = .78, to 3 = .78, to 0 = .707)
    assert s[0, 1] > 0 and s[2, 3] > 0 and s[0, 2] == 0
    binary = (s > 0).astype(float)
    deg = binary.sum(1)
    expected = binary / np.sqrt(np.outer(deg, deg))
    np.testing.assert_allclose(s, expected, rtol=1e-6)


def test_tail_items_lowest_degrees_stable_ties():
    train = np.array([[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [0, 2], [0, 3]])
    # degrees: i0=3, i1=2, i2=1, i3=1, i4=0 → lowest 40% = items 4 and 3 (tie 2/3: the
    # higher id goes to the tail, as in magnet.evaluate.popularity_buckets)
    mask = tail_items(train, 5, 0.4)
    assert mask.tolist() == [False, False, False, True, True]


def test_tail_boost_doubles_tail_edges():
    feats = five_item_features()
    train = np.array([[0, 0], [0, 1], [1, 1], [1, 2], [2, 2], [2, 3], [0, 3]])  # item 4 has degree 0
    cfg_plain = GraphConfig(knn_k=1, image_weight=0.5, tail_quantile=0.2, tail_boost=1.0)
    cfg_boost = GraphConfig(knn_k=1, image_weight=0.5, tail_quantile=0.2, tail_boost=2.0)
    plain = dense(build_graphs(train, 3, 5, cfg_plain, feats, feats).item_item)
    boosted = dense(build_graphs(train, 3, 5, cfg_boost, feats, feats).item_item)
    touches_tail = np.zeros((5, 5), bool)
    touches_tail[4, :] = touches_tail[:, 4] = True
    np.testing.assert_allclose(boosted[touches_tail], 2 * plain[touches_tail])
    np.testing.assert_allclose(boosted[~touches_tail], plain[~touches_tail])
    assert plain[4].sum() > 0  # the cold item does have content edges


def test_augmented_view_is_symmetric_normalised():
    feats = five_item_features()
    train = np.array([[0, 0], [0, 1], [1, 2], [2, 3]])
    g = build_graphs(train, 3, 5, GraphConfig(knn_k=2), feats, feats)
    aug = dense(g.augmented)
    np.testing.assert_allclose(aug, aug.T, atol=1e-7)
    # the user-user block stays empty; the item-item block is populated
    assert np.all(aug[:3, :3] == 0) and aug[3:, 3:].sum() > 0
    # spectral radius of D^-1/2 W D^-1/2 is 1 for a non-negative W
    assert np.max(np.abs(np.linalg.eigvalsh(aug))) <= 1 + 1e-5
    um = dense(g.user_mean)
    np.testing.assert_allclose(um.sum(1), [1, 1, 1])


def test_csr_matmul_into_uninitialised_output_matches_dense_with_empty_rows():
    from magnet.graphs import csr_matmul, spmm

    torch.manual_seed(0)
    dense = torch.rand(300, 40)
    dense[dense < 0.9] = 0
    dense[::3] = 0  # empty rows must come out as zeros, not as whatever memory held
    adj = dense.to_sparse_csr()
    x = torch.randn(40, 8)
    for _ in range(5):
        torch.full((300, 8), float("nan"))  # leave NaNs in freed memory
        torch.testing.assert_close(csr_matmul(adj, x), dense @ x)
    xg = x.clone().requires_grad_(True)
    spmm(adj, xg, dense.T.contiguous().to_sparse_csr()).sum().backward()
    torch.testing.assert_close(xg.grad, dense.sum(0, keepdim=True).T.expand(40, 8))


def test_operators_carry_int32_indices_and_multiply_like_their_dense_form():
    """The CSR operators are built with int32 indices (the CPU product would convert int64
    ones on every call); the product is unchanged, gradients included."""
    from magnet.graphs import csr_matmul, spmm

    feats = five_item_features()
    train = np.array([[0, 0], [0, 1], [1, 2], [2, 3], [2, 4]])
    g = build_graphs(train, 3, 5, GraphConfig(knn_k=2), feats, feats)
    x = torch.randn(8, 4)
    for op in (g.interaction, g.augmented, g.user_mean, g.user_mean_t, g.item_item):
        assert op.crow_indices().dtype == torch.int32 and op.col_indices().dtype == torch.int32
        xs = torch.randn(op.shape[1], 4)
        torch.testing.assert_close(csr_matmul(op, xs), op.to_dense() @ xs)
    xg = x.clone().requires_grad_(True)
    spmm(g.augmented, xg).pow(2).sum().backward()
    aug = g.augmented.to_dense()
    torch.testing.assert_close(xg.grad, 2 * aug.T @ (aug @ x))
