"""The model's three scoring paths agree, and the attribution is exact."""
import numpy as np
import pytest
import torch

from magnet.config import RunConfig, apply_variant
from magnet.graphs import build_graphs
from magnet.model import MAGNET, RouteParams


ROUTERS = ("bilinear", "cue", "cue+bilinear", "cue, scored")  # "cue, scored": the experts also score the cues


def bilinear_part(model):
    """The bilinear router of ``model`` (alone or inside a cue router), or None."""
    router = model.router
    return router if not router.uses_cues else router.bilinear


def toy(variant: str = "full", seed: int = 0, expert_kind: str = "mlp", router_rank: int = 0,
        router: str = "bilinear"):
    rng = np.random.default_rng(seed)
    n_users, n_items = 12, 20
    pairs = {(int(u), int(i)) for u, i in zip(rng.integers(0, n_users, 80), rng.integers(0, n_items, 80))}
    train = np.array(sorted(pairs))
    image = rng.normal(size=(n_items, 7)).astype(np.float32)
    text = rng.normal(size=(n_items, 5)).astype(np.float32)
    cfg = apply_variant(RunConfig(), variant)
    cfg.model.embedding_dim = 8
    cfg.model.expert_hidden = 6
    cfg.model.expert_kind = expert_kind
    cfg.model.router_rank = router_rank  # 0: full-width (the 24-d toy is under the default 32)
    cfg.model.router = router.split(",")[0]
    cfg.model.cue_in_scores = router.endswith("scored")
    cfg.model.cue_dim = 4
    cfg.graph.knn_k = 3
    torch.manual_seed(seed)
    model = MAGNET(n_users, n_items, cfg, 7, 5)
    model.fit_cues(torch.from_numpy(train), torch.from_numpy(image), torch.from_numpy(text))
    # make the expert output layers non-zero so the experts are not the identity
    if model.use_experts:
        with torch.no_grad():
            for p in (model.experts.w2,) if expert_kind == "mlp" else (model.experts.scale,):
                p.normal_(0, 0.3)
            if bilinear_part(model) is not None:
                bilinear_part(model).q.normal_(0, 1.0)
            if model.config.model.cue_in_scores:
                model.cue_weight.copy_(torch.tensor([0.8, -0.5]))
            if model.uses_cues:
                model.router.scale_raw.fill_(1.5)
                if model.router.bilinear is None:
                    model.router.c.normal_(0, 0.5)
    graphs = build_graphs(train, n_users, n_items, cfg.graph, image, text, with_content=cfg.model.use_aug_view)
    feats = (torch.from_numpy(image), torch.from_numpy(text)) if cfg.model.use_aug_view else (None, None)
    model.set_eval_route(RouteParams(0.7, 2))
    model.eval()
    return model, graphs, feats


@pytest.mark.parametrize("router", ROUTERS)
@pytest.mark.parametrize("variant, kind, rank", [("full", "mlp", 0), ("full", "diagonal", 0), ("full", "diagonal", 5),
                                                 ("full", "mlp", 5), ("behaviour_only", "mlp", 0)])
def test_scoring_paths_agree(variant, kind, rank, router):
    model, graphs, feats = toy(variant, expert_kind=kind, router_rank=rank, router=router)
    pre = model.precompute(graphs, *feats)
    users = torch.tensor([0, 3, 7])
    full = model.score_users(pre, users)  # [3, 20]
    assert full.shape == (3, 20)
    ch = model.encode(graphs, *feats)
    uu = users.repeat_interleave(20)
    ii = torch.arange(20).repeat(3)
    pairs = model.score_pairs(ch, uu, ii, model.eval_route())
    torch.testing.assert_close(pairs.score.detach().reshape(3, 20), full, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("router", ROUTERS)
@pytest.mark.parametrize("kind, rank", [("mlp", 0), ("diagonal", 0), ("diagonal", 5)])
def test_additive_decomposition_is_exact(kind, rank, router):
    model, graphs, feats = toy("full", expert_kind=kind, router_rank=rank, router=router)
    pre = model.precompute(graphs, *feats)
    items = torch.arange(20)
    parts = model.decompose(pre, 5, items)
    recon = parts["base"] + (parts["gates"].unsqueeze(-1) * parts["contributions"]).sum((1, 2))
    torch.testing.assert_close(recon, parts["score"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(parts["score"], model.score_users(pre, torch.tensor([5]))[0], rtol=1e-4, atol=1e-5)
    # exactly K=2 experts active per item, gates sum to one
    assert ((parts["gates"] > 0).sum(1) == 2).all()
    torch.testing.assert_close(parts["gates"].sum(1), torch.ones(20))


@pytest.mark.parametrize("kind", ["mlp", "diagonal"])
def test_experts_start_as_template_weighted_dot_products(kind):
    model, graphs, feats = toy("full", expert_kind=kind)
    with torch.no_grad():
        (model.experts.w2 if kind == "mlp" else model.experts.scale).zero_()
    pre = model.precompute(graphs, *feats)
    parts = model.decompose(pre, 2, torch.tensor([4]))
    h = pre.h  # [3, N, d]
    u, i = 2, 4 + model.n_users
    dots = (h[:, u] * h[:, i]).sum(-1)  # [3]
    expected = model.experts.templates * dots  # [9, 3]
    torch.testing.assert_close(parts["contributions"][0], expected, rtol=1e-4, atol=1e-6)


def test_pca_basis_recovers_the_principal_directions():
    from magnet.model.encoders import pca_basis

    # Points spread along (3, 4)/5 (std 10) and (−4, 3)/5 (std 1) around (1, 2), in 2-D.
    g = torch.Generator().manual_seed(0)
    coef = torch.randn(500, 2, generator=g) * torch.tensor([10.0, 1.0])
    axes = torch.tensor([[0.6, 0.8], [-0.8, 0.6]])
    x = coef @ axes + torch.tensor([1.0, 2.0])
    mean, basis = pca_basis(x, 1)
    assert basis.shape == (2, 1)
    assert torch.allclose(mean, x.mean(0))
    assert abs(float(basis[:, 0] @ axes[0])) == pytest.approx(1.0, abs=1e-3)
    again = pca_basis(x, 1)[1]
    assert torch.equal(basis, again)  # seeded sketch: the same basis on every run


def test_feature_reduction_is_fitted_and_stored_only_when_it_reduces():
    cfg = RunConfig()
    cfg.model.embedding_dim = 8
    cfg.model.feature_dim = 5
    n_users, n_items = 6, 12
    model = MAGNET(n_users, n_items, cfg, image_dim=20, text_dim=4)
    state = model.state_dict()
    assert state["encoder.image_basis"].shape == (20, 5) and "encoder.text_basis" not in state
    image = torch.randn(n_items, 20)
    text = torch.randn(n_items, 4)
    model.fit_content_basis(image, text)
    reduced_image, same_text = model.content_inputs(image, text)
    assert reduced_image.shape == (n_items, 5) and same_text is text
    basis = model.encoder.image_basis
    assert torch.allclose(basis.T @ basis, torch.eye(5), atol=1e-5)  # orthonormal directions
    expected = (image - image.mean(0)) @ basis
    assert torch.allclose(reduced_image, expected, atol=1e-5)
    # Projected variance is the top of the spectrum: no other 5-d subspace keeps more.
    total = torch.linalg.svdvals(image - image.mean(0))[:5].pow(2).sum()
    assert float(reduced_image.pow(2).sum()) == pytest.approx(float(total), rel=1e-3)


def test_diagonal_expert_pair_terms_match_their_projections():
    """The cheap pair path (one product per channel, one matmul) equals ⟨P x, P y⟩ by hand."""
    model, graphs, feats = toy("full", expert_kind="diagonal")
    ch = model.encode(graphs, *feats)
    h = ch.h[:, :6]
    inv_u, inv_i = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    fast = model.experts.pair_contributions(h, inv_u, inv_i)
    scale = 1 + model.experts.scale  # [9, 3, d]
    by_hand = torch.zeros(9, 3, 3)
    for e in range(9):
        for m in range(3):
            for n in range(3):
                pu, pi = h[m, inv_u[n]] * scale[e, m], h[m, inv_i[n]] * scale[e, m]
                by_hand[e, m, n] = model.experts.templates[e, m] * (pu * pi).sum()
    torch.testing.assert_close(fast.detach(), by_hand.detach(), rtol=1e-5, atol=1e-6)
    flat = h.permute(1, 0, 2).reshape(h.shape[1], -1)  # [6, 3d]: channels side by side
    from_rows = model.experts.pair_contributions_flat(flat[inv_u], flat[inv_i])
    torch.testing.assert_close(from_rows.detach(), by_hand.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("detach", [False, True])
def test_diagonal_pair_path_on_side_by_side_channels_matches_the_generic_path(monkeypatch, detach):
    """score_pairs gathers diagonal experts' rows from [n, 3d] (the router's layout); the
    generic path (stacked [3, n, d] channels) gives the same scores and the same gradients,
    with and without the behaviour channel detached from the mixture."""
    import magnet.model.magnet as magnet_module

    model, graphs, feats = toy("full", expert_kind="diagonal", router_rank=5)
    model.config.model.detach_expert_behaviour = detach
    model.train()
    users, items = torch.tensor([0, 3, 7, 3, 11]), torch.tensor([1, 19, 4, 4, 0])
    route = RouteParams(0.7, 2)

    def run() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        out = model.score_pairs(model.encode(graphs, *feats), users, items, route)
        (out.score * torch.arange(1.0, 6.0)).sum().backward()
        return out.score.detach(), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    fast_score, fast_grads = run()
    monkeypatch.setattr(magnet_module, "DiagonalExperts", type("NotDiagonal", (), {}))  # force the generic path
    ref_score, ref_grads = run()
    torch.testing.assert_close(fast_score, ref_score, rtol=1e-5, atol=1e-6)
    assert fast_grads.keys() == ref_grads.keys()
    for name in ref_grads:
        torch.testing.assert_close(fast_grads[name], ref_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_content_basis_equals_projecting_and_propagating_every_step(monkeypatch):
    """[h_A, h_S] from the once-propagated feature basis equal the per-step path (values and
    the gradients of W_A, W_S and their biases)."""
    import magnet.model.encoders as enc

    model, graphs, feats = toy("full", expert_kind="diagonal")
    with torch.no_grad():
        model.encoder.proj_image.bias.normal_(0, 1.0)
        model.encoder.proj_text.bias.normal_(0, 1.0)
    nodes = torch.tensor([0, 5, 11, 12, 20, 31])

    def run():
        model.zero_grad()
        ch = model.encode(graphs, *feats)
        picked = ch.select(nodes)
        picked[1:].pow(2).sum().backward()
        grads = [p.grad.clone() for p in (model.encoder.proj_image.weight, model.encoder.proj_image.bias,
                                          model.encoder.proj_text.weight, model.encoder.proj_text.bias)]
        return ch.h.detach(), picked.detach(), grads

    h_basis, picked_basis, grads_basis = run()
    assert getattr(model.encoder, "_content_basis", None) is not None
    monkeypatch.setattr(enc, "MAX_CONTENT_BASIS_FLOATS", 0)  # force the per-step path
    h_step, picked_step, grads_step = run()
    torch.testing.assert_close(h_basis, h_step, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(picked_basis, picked_step, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads_basis, grads_step):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(picked_basis, h_basis[:, nodes])


def test_frozen_zero_gamma_propagates_the_augmented_view_only_on_demand():
    from magnet.model.encoders import propagate

    model, graphs, feats = toy("full", expert_kind="diagonal")
    with torch.no_grad():
        model.encoder.gamma.zero_()
    model.encoder.gamma.requires_grad_(False)
    ch = model.encode(graphs, *feats)
    assert callable(ch._b_augmented)  # not propagated yet: B needs no augmented view at γ = 0
    torch.testing.assert_close(ch.h[0], ch.b_interaction)
    expected = propagate(graphs.augmented, model.encoder.embedding, model.config.graph.n_ui_layers)
    torch.testing.assert_close(ch.b_augmented, expected)
    model.encoder.gamma.requires_grad_(True)
    assert not callable(model.encode(graphs, *feats)._b_augmented)  # learned γ: eager
