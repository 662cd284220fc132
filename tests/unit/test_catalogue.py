"""The fused tiled catalogue scorer equals the generic [9, B, I] path and pair scoring."""
import pytest
import torch

from magnet.model import RouteParams
from magnet.model.catalogue import CatalogueScorer, FactorisedScorer
from tests.unit.test_model import ROUTERS, toy


@pytest.mark.parametrize("k", [1, 2, 3, 9])
@pytest.mark.parametrize("residual", [True, False])
@pytest.mark.parametrize("rank", [0, 5])
def test_fused_scorer_matches_generic_path(k, residual, rank):
    model, graphs, feats = toy("full", expert_kind="diagonal", router_rank=rank)
    model.residual_base = residual
    with torch.no_grad():
        model.router.a.normal_(0, 0.5)
        model.router.b.normal_(0, 0.5)
        model.router.c.normal_(0, 0.5)
    model.set_eval_route(RouteParams(0.6, k))
    pre = model.precompute(graphs, *feats)
    assert pre.scorer is not None
    # tiles smaller than the 12 users × 20 items, with ragged last tiles
    r = model.router
    pre.scorer = FactorisedScorer(pre.flat[model.n_users:], r.q, r.a, r.b, r.c, _weights(model, residual), 0.6, k,
                                  tile_users=5, tile_items=7, proj=r.proj if rank else None)
    users = torch.arange(12)
    fused = model.score_users(pre, users)
    generic = model.score_users(pre, users, torch.arange(20))  # items given: the generic path
    torch.testing.assert_close(fused, generic, rtol=1e-5, atol=1e-5)
    ch = model.encode(graphs, *feats)
    pairs = model.score_pairs(ch, users.repeat_interleave(20), torch.arange(20).repeat(12), model.eval_route())
    torch.testing.assert_close(fused, pairs.score.detach().reshape(12, 20), rtol=1e-4, atol=1e-5)


def _weights(model, residual):
    w = (model.experts.metric() * model.experts.templates.unsqueeze(-1)).reshape(9, -1).detach().clone()
    if residual:
        w[:, :model.config.model.embedding_dim] += 1.0
    return w


def test_mix_keeps_exactly_the_k_largest_logits_by_hand():
    # one user, one item; logits/τ and scores chosen by hand
    scorer = CatalogueScorer.__new__(CatalogueScorer)
    scorer.k = 2
    z = torch.tensor([0.0, 3.0, 1.0, -1.0, 2.0, 0.5, -2.0, 0.0, 1.5])
    s = torch.arange(9, dtype=torch.float32)
    z, s = z.view(1, 9, 1), s.view(1, 9, 1)
    # top-2 logits: 3.0 (expert 1, score 1) and 2.0 (expert 4, score 4)
    g1 = 1.0 / (1.0 + torch.exp(torch.tensor(-1.0)))
    expected = g1 * 1.0 + (1 - g1) * 4.0
    torch.testing.assert_close(scorer.mix(z, s)[0, 0], expected)
    scorer.k = 1
    torch.testing.assert_close(scorer.mix(z, s)[0, 0], torch.tensor(1.0))


def test_route_change_after_precompute_rebuilds_the_scorer():
    model, graphs, feats = toy("full", expert_kind="diagonal")
    pre = model.precompute(graphs, *feats)
    model.set_eval_route(RouteParams(1.3, 3))
    users = torch.arange(4)
    fused = model.score_users(pre, users)
    assert pre.scorer.tau == pytest.approx(1.3) and pre.scorer.k == 3
    torch.testing.assert_close(fused, model.score_users(pre, users, torch.arange(20)), rtol=1e-5, atol=1e-5)


def test_mlp_experts_keep_the_generic_path():
    model, graphs, feats = toy("full", expert_kind="mlp")
    assert model.precompute(graphs, *feats).scorer is None


@pytest.mark.parametrize("k", [1, 2, 3, 9])
def test_compiled_topk_kernel_matches_the_elementwise_mix(k):
    from magnet.model.catalogue import _topk_kernel

    kernel = _topk_kernel("topk", k)
    if kernel is None:
        pytest.skip("numba not installed")
    torch.manual_seed(1)
    z, s = torch.randn(4, 9, 261), torch.randn(4, 9, 261)  # > 256 items: past any vector width
    scorer = CatalogueScorer.__new__(CatalogueScorer)
    scorer.k = k
    out = torch.empty(4, 261)
    kernel(z.numpy(), s.numpy(), k, out.numpy())
    torch.testing.assert_close(out, scorer.mix(z, s), rtol=1e-5, atol=1e-6)


def test_compiled_top2_kernel_keeps_exactly_two_on_a_tie():
    from magnet.model.catalogue import _topk_kernel

    kernel = _topk_kernel("topk", 2)
    if kernel is None:
        pytest.skip("numba not installed")
    torch.manual_seed(0)
    z, s = torch.randn(5, 9, 33), torch.randn(5, 9, 33)
    z[0, :, 0] = torch.tensor([1.0, 3.0, 3.0, 0.0, -1.0, 2.0, 0.5, 0.0, 1.0])  # tie at the top
    scorer = CatalogueScorer.__new__(CatalogueScorer)
    scorer.k = 2
    out = torch.empty(5, 33)
    kernel(z.numpy(), s.numpy(), 2, out.numpy())
    torch.testing.assert_close(out[:, 1:], scorer.mix(z, s)[:, 1:], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out[1:], scorer.mix(z, s)[1:], rtol=1e-5, atol=1e-6)
    # the tie: experts 1 and 2 (logit 3) are the two kept, equal gates
    torch.testing.assert_close(out[0, 0], (s[0, 1, 0] + s[0, 2, 0]) / 2)


@pytest.mark.parametrize("router", ROUTERS)
@pytest.mark.parametrize("k, rank", [(2, 0), (3, 0), (2, 5)])
def test_evaluation_batches_use_the_kernel_and_equal_the_generic_path(k, rank, router):
    from magnet.model import catalogue

    model, graphs, feats = toy("full", expert_kind="diagonal", router_rank=rank, router=router)
    model.set_eval_route(RouteParams(0.6, k))
    pre = model.precompute(graphs, *feats)
    users = torch.arange(12)
    old = catalogue.COMPILED_MIN_USERS
    try:
        catalogue.COMPILED_MIN_USERS = 1
        fused = model.score_users(pre, users)
    finally:
        catalogue.COMPILED_MIN_USERS = old
    torch.testing.assert_close(fused, model.score_users(pre, users, torch.arange(20)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("router", ["cue", "cue+bilinear", "cue, scored"])
@pytest.mark.parametrize("k", [1, 2, 3, 9])
def test_cue_routers_fused_scorer_matches_generic_and_pair_paths(router, k):
    """Cue routers through the fused scorer (small tiles, both mixing paths) equal the generic
    [9, B, I] path and pair scoring, with a cue knocked out too."""
    from magnet.model import catalogue

    model, graphs, feats = toy("full", expert_kind="diagonal", router_rank=5, router=router)
    model.set_eval_route(RouteParams(0.6, k))
    pre = model.precompute(graphs, *feats)
    users = torch.arange(12)
    ch = model.encode(graphs, *feats)
    pairs = model.score_pairs(ch, users.repeat_interleave(20), torch.arange(20).repeat(12), model.eval_route())
    for compiled in (False, True):
        old = catalogue.COMPILED_MIN_USERS
        try:
            catalogue.COMPILED_MIN_USERS = 1 if compiled else 10 ** 9
            fused = model.score_users(pre, users)
        finally:
            catalogue.COMPILED_MIN_USERS = old
        torch.testing.assert_close(fused, model.score_users(pre, users, torch.arange(20)), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fused, pairs.score.detach().reshape(12, 20), rtol=1e-4, atol=1e-5)
    knocked = model.knock_out(pre, "A")
    torch.testing.assert_close(model.score_users(knocked, users), model.score_users(knocked, users, torch.arange(20)),
                               rtol=1e-5, atol=1e-5)


def test_cue_kernel_matches_the_elementwise_mix():
    """The K = 2 cue kernel makes the logits itself (other K: the general kernel, tested above
    through the cue routers' fused scorer)."""
    from magnet.model.catalogue import _topk_kernel

    k = 2
    kernel = _topk_kernel("cue", k)
    if kernel is None:
        pytest.skip("numba not installed")
    torch.manual_seed(2)
    planes, s = torch.randn(3, 2, 261), torch.randn(3, 9, 261)
    alpha, gamma, delta, eta = torch.randn(9), torch.randn(9, 2), torch.randn(9), torch.randn(9, 2)
    z = torch.einsum("em,nmi->nei", gamma, planes) + alpha.view(1, -1, 1)
    scored = s + torch.einsum("em,nmi->nei", eta, planes) + delta.view(1, -1, 1)
    scorer = CatalogueScorer.__new__(CatalogueScorer)
    scorer.k = k
    out = torch.empty(3, 261)
    kernel(planes.numpy(), s.numpy(), alpha.numpy(), gamma.numpy(), delta.numpy(), eta.numpy(), k, out.numpy())
    torch.testing.assert_close(out, scorer.mix(z, scored), rtol=1e-5, atol=1e-6)
