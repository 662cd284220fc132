"""Content channels carried by ID embeddings on per-modality kNN graphs
(``graph.content_channels="id_graph"``, LATTICE/FREEDOM style) and the unchanged default."""
import numpy as np
import pytest
import torch

from magnet.config import RunConfig, apply_variant, validate_config
from magnet.errors import ConfigError
from magnet.graphs import build_graphs, knn_graph, modality_graph
from magnet.model import MAGNET, RouteParams

# Two users, three items. Image features: item 0 ~ item 1, item 2 orthogonal to 0 and closest
# to 1, so the 1-NN relation is 0→1, 1→0, 2→1 and its symmetric union is {0-1, 1-2}.
# Text features give the other chain {0-2, 2-1} (0→2, 1→2, 2→0).
TRAIN = np.array([[0, 0], [0, 1], [1, 2]])
IMAGE = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], dtype=np.float32)
TEXT = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.8, 0.6, 0.0]], dtype=np.float32)


def small_config(**graph) -> RunConfig:
    cfg = RunConfig()
    cfg.graph.knn_k = 1
    cfg.graph.tail_boost = 1.0
    cfg.graph.content_channels = "id_graph"
    cfg.graph.id_graph_weight = 0.5
    for name, value in graph.items():
        setattr(cfg.graph, name, value)
    cfg.model.embedding_dim = 4
    cfg.model.fusion_gamma_init = 0.0  # B = plain LightGCN on the interaction graph (configs/ml100k.json)
    cfg.model.learn_fusion_gamma = False
    return cfg


def dense_augmented(item_edges: list[tuple[int, int]], weight: float) -> np.ndarray:
    """D^-1/2 (A + weight·S) D^-1/2 by hand: A the bipartite graph of TRAIN, S the kNN chain
    ``item_edges`` with each edge 1/sqrt(deg_a·deg_b) (symmetric normalisation of the chain)."""
    n_users, n = 2, 5
    w = np.zeros((n, n))
    for u, i in TRAIN:
        w[u, n_users + i] = w[n_users + i, u] = 1.0
    deg = np.zeros(3)
    for a, b in item_edges:
        deg[a] += 1
        deg[b] += 1
    for a, b in item_edges:
        w[n_users + a, n_users + b] = w[n_users + b, n_users + a] = weight / np.sqrt(deg[a] * deg[b])
    d = w.sum(1) ** -0.5
    return w * d[:, None] * d[None, :]


def test_modality_graphs_are_the_bipartite_graph_plus_that_modalitys_knn_edges():
    cfg = small_config()
    graphs = build_graphs(TRAIN, 2, 3, cfg.graph, IMAGE, TEXT)
    np.testing.assert_allclose(graphs.augmented_image.to_dense().numpy(),
                               dense_augmented([(0, 1), (1, 2)], 0.5), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(graphs.augmented_text.to_dense().numpy(),
                               dense_augmented([(0, 2), (1, 2)], 0.5), rtol=1e-6, atol=1e-7)
    # the spec's augmented view (S_I mixes both modalities) is built as before
    default = build_graphs(TRAIN, 2, 3, RunConfig().graph, IMAGE, TEXT)
    cfg_features = RunConfig().graph
    assert default.augmented_image is None and default.augmented_text is None
    np.testing.assert_array_equal(default.augmented.to_dense().numpy(),
                                  build_graphs(TRAIN, 2, 3, cfg_features, IMAGE, TEXT).augmented.to_dense().numpy())


def test_modality_graph_boosts_edges_that_touch_tail_items():
    cfg = small_config(tail_boost=3.0, tail_quantile=0.34)  # one tail item out of three
    plain_r, plain_c, plain_v = knn_graph(IMAGE, 1)
    rows, cols, vals = modality_graph(IMAGE, TRAIN, cfg.graph)
    np.testing.assert_array_equal(rows, plain_r)
    np.testing.assert_array_equal(cols, plain_c)
    from magnet.graphs import tail_items
    tail = tail_items(TRAIN, 3, 0.34)
    assert tail.sum() == 1
    np.testing.assert_allclose(vals, plain_v * np.where(tail[rows] | tail[cols], 3.0, 1.0))


def test_default_is_features_with_no_new_parameters():
    cfg = RunConfig()
    assert cfg.graph.content_channels == "features" and cfg.graph.id_graph_tables == "own"
    model = MAGNET(2, 3, cfg, 2, 3)
    names = {n for n, _ in model.named_parameters()}
    assert "encoder.proj_image.weight" in names and "encoder.proj_text.weight" in names
    assert not any(n.startswith(("encoder.embedding_image", "encoder.embedding_text")) for n in names)
    # the channels are still the specified ones: projected features, users as the mean of
    # their items, propagated n_mm_layers on the mixed augmented view; B is LightGCN (+ γ·B_aug)
    graphs = build_graphs(TRAIN, 2, 3, cfg.graph, IMAGE, TEXT)
    assert graphs.augmented_image is None and graphs.augmented_text is None
    image, text = torch.from_numpy(IMAGE), torch.from_numpy(TEXT)
    h = model.encode(graphs, image, text).h.detach().numpy()
    enc = model.encoder
    with torch.no_grad():
        items = torch.cat([enc.proj_image(image), enc.proj_text(text)], dim=1).numpy()
    user_mean = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    content = propagate_by_hand(graphs.augmented.to_dense().numpy(),
                                np.concatenate([user_mean @ items, items]), cfg.graph.n_mm_layers)
    np.testing.assert_allclose(h[1], content[:, :cfg.model.embedding_dim], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h[2], content[:, cfg.model.embedding_dim:], rtol=1e-5, atol=1e-6)
    e_b = enc.embedding.detach().numpy()
    b = (propagate_by_hand(dense_augmented([], 0.0), e_b, 2)
         + float(enc.gamma.detach()) * propagate_by_hand(graphs.augmented.to_dense().numpy(), e_b, 2))
    np.testing.assert_allclose(h[0], b, rtol=1e-5, atol=1e-6)


def test_config_values_are_validated():
    for field, bad in (("content_channels", "ids"), ("id_graph_tables", "both"), ("id_graph_weight", -1.0)):
        cfg = RunConfig()
        setattr(cfg.graph, field, bad)
        with pytest.raises(ConfigError, match=field):
            validate_config(cfg)


def propagate_by_hand(adj: np.ndarray, x: np.ndarray, layers: int) -> np.ndarray:
    out, cur = x.copy(), x.copy()
    for _ in range(layers):
        cur = adj @ cur
        out = out + cur
    return out / (layers + 1)


@pytest.mark.parametrize("tables", ["own", "shared"])
def test_id_graph_channels_are_id_tables_propagated_on_each_modality_graph(tables):
    cfg = small_config(id_graph_tables=tables)
    torch.manual_seed(0)
    model = MAGNET(2, 3, cfg, 2, 3)
    names = {n for n, _ in model.named_parameters()}
    # no projections (nothing would train them); own tables only when asked for
    assert not any(n.startswith(("encoder.proj_image", "encoder.proj_text")) for n in names)
    assert ("encoder.embedding_image" in names) == (tables == "own")
    graphs = build_graphs(TRAIN, 2, 3, cfg.graph, IMAGE, TEXT)
    h = model.encode(graphs, torch.from_numpy(IMAGE), torch.from_numpy(TEXT)).h.detach().numpy()
    assert h.shape == (3, 5, 4)
    enc = model.encoder
    e_b = enc.embedding.detach().numpy()
    e_a, e_s = ((enc.embedding_image.detach().numpy(), enc.embedding_text.detach().numpy())
                if tables == "own" else (e_b, e_b))
    if tables == "own":
        assert e_a.std() == pytest.approx(cfg.model.init_std, rel=0.6)  # same init as the behaviour table
    a_image = dense_augmented([(0, 1), (1, 2)], 0.5)
    a_text = dense_augmented([(0, 2), (1, 2)], 0.5)
    a_int = dense_augmented([], 0.0)
    np.testing.assert_allclose(h[0], propagate_by_hand(a_int, e_b, 2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h[1], propagate_by_hand(a_image, e_a, 2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h[2], propagate_by_hand(a_text, e_s, 2), rtol=1e-5, atol=1e-6)


def test_id_graph_with_features_adds_the_projected_feature_term():
    cfg = small_config(id_graph_features=True)
    torch.manual_seed(0)
    model = MAGNET(2, 3, cfg, 2, 3)
    graphs = build_graphs(TRAIN, 2, 3, cfg.graph, IMAGE, TEXT)
    feats = model.content_inputs(torch.from_numpy(IMAGE), torch.from_numpy(TEXT))
    h = model.encode(graphs, *feats).h.detach()
    # the feature term alone: a "features" model with the same projections on the same graphs
    plain_cfg = small_config(content_channels="features")
    plain = MAGNET(2, 3, plain_cfg, 2, 3)
    plain.load_state_dict({k: v for k, v in model.state_dict().items()
                           if not k.startswith(("encoder.embedding_image", "encoder.embedding_text"))})
    feature_term = plain.encode(graphs, *feats).h.detach()
    enc = model.encoder
    id_a = propagate_by_hand(graphs.augmented_image.to_dense().numpy(), enc.embedding_image.detach().numpy(), 2)
    id_s = propagate_by_hand(graphs.augmented_text.to_dense().numpy(), enc.embedding_text.detach().numpy(), 2)
    torch.testing.assert_close(h[0], feature_term[0])
    np.testing.assert_allclose(h[1].numpy(), id_a + feature_term[1].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h[2].numpy(), id_s + feature_term[2].numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("features", [False, True])
def test_every_parameter_gets_a_gradient_and_pair_scores_match_the_catalogue_path(features):
    rng = np.random.default_rng(0)
    n_users, n_items = 12, 20
    pairs = {(int(u), int(i)) for u, i in zip(rng.integers(0, n_users, 80), rng.integers(0, n_items, 80))}
    train = np.array(sorted(pairs))
    image = rng.normal(size=(n_items, 7)).astype(np.float32)
    text = rng.normal(size=(n_items, 5)).astype(np.float32)
    cfg = apply_variant(RunConfig(), "full")
    cfg.graph.content_channels = "id_graph"
    cfg.graph.id_graph_features = features
    cfg.graph.knn_k = 3
    cfg.model.embedding_dim = 8
    torch.manual_seed(0)
    model = MAGNET(n_users, n_items, cfg, 7, 5)
    graphs = build_graphs(train, n_users, n_items, cfg.graph, image, text)
    feats = (torch.from_numpy(image), torch.from_numpy(text))
    model.fit_cues(torch.from_numpy(train), *feats)
    ch = model.encode(graphs, *feats)
    users = torch.tensor([0, 1, 2, 3])
    out = model.score_pairs(ch, users, torch.tensor([4, 5, 6, 7]), RouteParams(1.0, 3, 0.0))
    out.score.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    model.set_eval_route(RouteParams(0.7, 2))
    model.eval()
    pre = model.precompute(graphs, *feats)
    full = model.score_users(pre, users)
    uu = users.repeat_interleave(n_items)
    ii = torch.arange(n_items).repeat(len(users))
    pair = model.score_pairs(model.encode(graphs, *feats), uu, ii, model.eval_route()).score.detach()
    torch.testing.assert_close(pair.reshape(len(users), n_items), full, rtol=1e-4, atol=1e-5)




