"""The MAGNET model: dual-view encoder + 9 template experts + Top-K router (spec §2–§4b).

Final score (``residual_base=True``):  ŷ(u,i) = ⟨h^B_u, h^B_i⟩ + Σ_e g_e(u,i) · s_e(u,i),
with the exact additive decomposition ŷ = base + Σ_{e,m} g_e · c_{e,m} (the base counts as B).
With ``use_experts=False`` the model is LightGCN (the ``behaviour_only`` baseline).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import RunConfig
from ..graphs import GraphBundle
from ..schedule import RouteParams
from ..vocab import MODALITIES, N_EXPERTS
from .catalogue import CatalogueScorer, CueScorer, FactorisedScorer
from .cues import ModalityCues, cue_width
from .encoders import Channels, DualViewEncoder
from .experts import DiagonalExperts, make_experts
from .router import make_router, topk_gates


@dataclass
class PairOutput:
    """Scores of aligned pairs (n of them).

    score [n]; base [n] (behaviour dot product); probs, gates [n, 9] (None for behaviour-only);
    contributions [9, 3, n] = c_{e,m}; expert_scores [9, n] = s_e.
    """

    score: torch.Tensor
    base: torch.Tensor
    probs: torch.Tensor | None = None
    gates: torch.Tensor | None = None
    contributions: torch.Tensor | None = None
    expert_scores: torch.Tensor | None = None


@dataclass
class Precomputed:
    """Everything needed to score any (user, item) without re-encoding.

    h [C, N, d] channels; flat [N, C·d] router input; item_side: the experts' per-catalogue
    item term ([9, I, 3d] projected items for MLP experts; None for diagonal experts or
    behaviour-only); scorer: the fused whole-catalogue scorer of diagonal experts, built for
    the evaluation route of the moment (None otherwise); cue_mask [3] over (B, A, S): 1 where a
    modality's cue is live, 0 where it is knocked out (:meth:`MAGNET.knock_out`).
    """

    h: torch.Tensor
    flat: torch.Tensor
    item_side: torch.Tensor | None
    scorer: CatalogueScorer | None = None
    cue_mask: torch.Tensor | None = None


class MAGNET(nn.Module):
    """See module docstring. Node ids: users 0..U-1, items U..U+I-1 internally."""

    def __init__(self, n_users: int, n_items: int, config: RunConfig,
                 image_dim: int | None = None, text_dim: int | None = None) -> None:
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.config = config
        mc = config.model
        self.use_experts = mc.use_experts
        self.residual_base = mc.residual_base
        if mc.use_experts and not mc.use_aug_view:
            raise ValueError("experts need the three channels of the augmented view")
        self.encoder = DualViewEncoder(n_users, n_items, mc, config.graph, image_dim, text_dim)
        if self.use_experts:
            self.experts = make_experts(mc.expert_kind, mc.embedding_dim, mc.expert_hidden)
            self.router = make_router(mc.router, mc.embedding_dim, mc.router_rank, mc.cue_scale_init)
            if self.router.uses_cues:
                widths = (cue_width(mc.cue_dim, image_dim, n_items), cue_width(mc.cue_dim, text_dim, n_items))
                self.cues = ModalityCues(n_users, n_items, widths)
            if mc.cue_in_scores:
                # λ over (B, A, S); B's cue is zero, so its λ gets no gradient and is not a parameter.
                self.cue_weight = nn.Parameter(torch.zeros(2))
        # Routing settings the model is evaluated with (set by the trainer, saved with the weights).
        self.register_buffer("eval_tau", torch.tensor(float(config.routing.tau_cov)))
        self.register_buffer("eval_k", torch.tensor(int(config.routing.k_cov)))

    # ------------------------------------------------------------------ encoding
    def fit_content_basis(self, image_feat: torch.Tensor | None, text_feat: torch.Tensor | None) -> None:
        """Fit the feature PCA on raw item features (once, before training)."""
        self.encoder.fit_content_basis(image_feat, text_feat, seed=self.config.train.seed)

    @property
    def uses_cues(self) -> bool:
        """Whether the router reads history-induced modality cues."""
        return self.use_experts and self.router.uses_cues

    def cue_score_weights(self) -> torch.Tensor | None:
        """w_{e,m}·λ_m [9, 3] (B column zero): how a standardised cue adds to expert e's
        modality-m term when the experts score the cues (None otherwise)."""
        if not self.config.model.cue_in_scores or not self.use_experts:
            return None
        lam = torch.cat([torch.zeros(1, device=self.cue_weight.device), self.cue_weight])
        return self.experts.templates * lam

    def fit_cues(self, train: torch.Tensor, image_feat: torch.Tensor | None, text_feat: torch.Tensor | None) -> None:
        """Fit the cue buffers from training pairs [n, 2] and raw item features (once, before
        training; no-op unless the router uses cues)."""
        if self.uses_cues:
            self.cues.fit(train.to(image_feat.device), (image_feat, text_feat), seed=self.config.train.seed)

    def content_inputs(self, image_feat: torch.Tensor | None, text_feat: torch.Tensor | None
                       ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Raw item features → what :meth:`encode` and :meth:`precompute` take."""
        return self.encoder.content_inputs(image_feat, text_feat)

    def encode(self, graphs: GraphBundle, image_feat: torch.Tensor | None,
               text_feat: torch.Tensor | None) -> Channels:
        return self.encoder(graphs, image_feat, text_feat)

    def eval_route(self) -> RouteParams:
        return RouteParams(float(self.eval_tau), int(self.eval_k), 0.0)

    def set_eval_route(self, route: RouteParams) -> None:
        self.eval_tau.fill_(route.tau)
        self.eval_k.fill_(route.k)

    # ------------------------------------------------------------------ pairs (training)
    def route(self, logits: torch.Tensor, route: RouteParams, dim: int = -1
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Softmax routing probabilities and Top-K gates from logits (experts along ``dim``)."""
        if route.noise > 0 and self.training:
            logits = logits + torch.randn_like(logits) * route.noise
        probs = torch.softmax(logits / route.tau, dim=dim)
        return probs, topk_gates(probs, route.k, dim=dim)

    def pair_cues(self, users: torch.Tensor, items: torch.Tensor, positive: torch.Tensor | None = None,
                  mask: torch.Tensor | None = None) -> torch.Tensor | None:
        """Standardised cues [n, 3] of aligned pairs (None when the router reads none);
        ``positive`` marks training positives (leave-one-out), ``mask`` [3] knocks cues out."""
        if not self.uses_cues:
            return None
        cues = self.cues.pairs(users, items, positive)
        return cues if mask is None else cues * mask

    def score_pairs(self, ch: Channels, users: torch.Tensor, items: torch.Tensor,
                    route: RouteParams, positive: torch.Tensor | None = None) -> PairOutput:
        """Score aligned pairs: users [n] in 0..U-1, items [n] in 0..I-1; ``positive`` [n] bool
        marks training positives (their cues leave the item out of the user's history)."""
        u_nodes, i_nodes = users, items + self.n_users
        # index_select (backward: index_add) rather than fancy indexing (backward: index_put).
        nodes, inverse = torch.unique(torch.cat([u_nodes, i_nodes]), return_inverse=True)
        n = len(users)
        inv_u, inv_i = inverse[:n], inverse[n:]
        if self.use_experts and isinstance(self.experts, DiagonalExperts):
            # Channels side by side [n_unique, 3d]: the router's layout, and the diagonal
            # experts read the same gathered rows.
            flat = ch.select_flat(nodes)
            h_b = flat[:, :self.config.model.embedding_dim]
        else:
            h = ch.select(nodes)  # [C, n_unique, d]
            h_b = h[0]
        base = (h_b.index_select(0, inv_u) * h_b.index_select(0, inv_i)).sum(-1)
        if not self.use_experts:
            return PairOutput(base, base)
        detach = self.config.model.detach_expert_behaviour
        # With detach: the ID embeddings learn from the base score only (as LightGCN does);
        # experts and router read the behaviour channel without pushing gradients into it.
        if isinstance(self.experts, DiagonalExperts):
            if detach:
                flat = torch.cat([h_b.detach(), flat[:, h_b.shape[1]:]], dim=1)
            fu, fi = flat.index_select(0, inv_u), flat.index_select(0, inv_i)  # [n, 3d]
            contrib = self.experts.pair_contributions_flat(fu, fi)  # [9, 3, n]
        else:
            if detach:
                h = torch.cat([h[:1].detach(), h[1:]])
            contrib = self.experts.pair_contributions(h, inv_u, inv_i)  # [9, 3, n]
            flat = h.permute(1, 0, 2).reshape(h.shape[1], -1)
            fu, fi = flat.index_select(0, inv_u), flat.index_select(0, inv_i)
        cues = self.pair_cues(users, items, positive)
        cue_weights = self.cue_score_weights()
        if cue_weights is not None:  # the experts score the cues too: c_{e,m} += w_em λ_m ẑ_m
            contrib = contrib + cue_weights.unsqueeze(-1) * cues.T.unsqueeze(0)
        expert_scores = contrib.sum(1)  # [9, n]
        logits = self.router.pair_logits(fu, fi, cues)  # [n, 9]
        probs, gates = self.route(logits, route)
        mixture = (gates * expert_scores.T).sum(-1)
        score = base + mixture if self.residual_base else mixture
        return PairOutput(score, base if self.residual_base else torch.zeros_like(base),
                          probs, gates, contrib, expert_scores)

    # ------------------------------------------------------------------ full catalogue
    @torch.no_grad()
    def precompute(self, graphs: GraphBundle, image_feat: torch.Tensor | None,
                   text_feat: torch.Tensor | None) -> Precomputed:
        return self.precompute_from_channels(self.encode(graphs, image_feat, text_feat).h)

    @torch.no_grad()
    def precompute_from_channels(self, h: torch.Tensor, cue_mask: torch.Tensor | None = None) -> Precomputed:
        """:meth:`precompute` from already encoded channels h [C, N, d] (e.g. a checkpoint's
        encoded.safetensors), without graphs or features; ``cue_mask`` [3] (default all live)."""
        flat = h.permute(1, 0, 2).reshape(h.shape[1], -1)
        item_side = self.experts.item_side(h[:, self.n_users:]) if self.use_experts else None
        mask = torch.ones(len(MODALITIES), device=h.device) if cue_mask is None else cue_mask
        pre = Precomputed(h, flat, item_side, cue_mask=mask)
        pre.scorer = self.catalogue_scorer(pre)
        return pre

    @torch.no_grad()
    def knock_out(self, pre: Precomputed, modality: str) -> Precomputed:
        """The counterfactual without ``modality`` (B, A or S) for every item: each item's
        channel of that modality is replaced by the catalogue mean, and its cue by the average
        cue (ẑ = 0). Users keep their representations. Returns a new :class:`Precomputed`."""
        m = MODALITIES.index(modality)
        h = pre.h.clone()
        if m < h.shape[0]:  # behaviour-only models have no content channels to knock out
            items = h[m, self.n_users:]
            items[:] = items.mean(0, keepdim=True)
        mask = pre.cue_mask.clone()
        mask[m] = 0.0
        return self.precompute_from_channels(h, mask)

    def channel_shape(self) -> tuple[int, int, int]:
        """Shape [C, N, d] of the encoder's channels h."""
        return (3 if self.config.model.use_aug_view else 1,
                self.n_users + self.n_items, self.config.model.embedding_dim)

    def catalogue_scorer(self, pre: Precomputed) -> CatalogueScorer | None:
        """The fused scorer of :mod:`.catalogue` for diagonal experts at the current evaluation
        route (None for MLP experts and behaviour-only, which take the generic path)."""
        if not self.use_experts or not isinstance(self.experts, DiagonalExperts):
            return None
        d = pre.h.shape[-1]
        weights = (self.experts.metric() * self.experts.templates.unsqueeze(-1)).reshape(N_EXPERTS, -1)
        if self.residual_base:
            weights = weights.clone()
            weights[:, :d] += 1.0  # the base ⟨h^B_u, h^B_i⟩ rides on every expert (gates sum to 1)
        route = self.eval_route()
        items = pre.flat[self.n_users:]
        router = self.router
        if not router.uses_cues:
            return FactorisedScorer(items, router.q, router.a, router.b, router.c, weights, route.tau, route.k,
                                    proj=router.proj if router.rank else None)
        cues = self.cues
        slopes = router.slopes().detach() * pre.cue_mask  # [9, 3]: β·w, knocked-out columns zero
        offsets = (cues.mean / cues.std)[1:]  # [2]
        widths = (cues.item_A.shape[1], cues.item_S.shape[1])
        cue_items = cues.scaled_item_dirs()
        if router.bilinear is None:
            cue_weights = self.cue_score_weights()
            score_slopes = None if cue_weights is None else cue_weights.detach() * pre.cue_mask
            return CueScorer(items, weights, route.tau, route.k, cue_items, widths, offsets, slopes,
                             router.c.detach(), score_slopes=score_slopes)
        cue_slopes = torch.cat([slopes[:, 1:2].expand(-1, widths[0]), slopes[:, 2:3].expand(-1, widths[1])], dim=1)
        bl = router.bilinear
        bias = bl.c - slopes[:, 1:] @ offsets
        return FactorisedScorer(items, bl.q, bl.a, bl.b, bias, weights, route.tau, route.k,
                                proj=bl.proj if bl.rank else None, cue_items=cue_items,
                                cue_slopes=cue_slopes)

    def catalogue_cue_rows(self, users: torch.Tensor) -> torch.Tensor | None:
        """[μ^A_u, μ^S_u] of ``users`` for the fused scorer (None without cues)."""
        return self.cues.user_rows(users) if self.uses_cues else None

    def grid_cues(self, pre: Precomputed, users: torch.Tensor, item_nodes: torch.Tensor) -> torch.Tensor | None:
        """Standardised cues [3, B, I'] of ``users`` [B] against item nodes [I'], knocked-out
        modalities zero (None when the router reads no cues)."""
        if not self.uses_cues:
            return None
        return self.cues.grid(users, item_nodes - self.n_users) * pre.cue_mask.view(-1, 1, 1)

    def grid_logits(self, pre: Precomputed, users: torch.Tensor, item_nodes: torch.Tensor,
                    cues: torch.Tensor | None) -> torch.Tensor:
        """Router logits [9, B, I'] of ``users`` [B] against item nodes [I'] with their
        :meth:`grid_cues` ``cues``."""
        return self.router.full_logits(pre.flat[users], pre.flat[item_nodes], cues)

    @torch.no_grad()
    def score_users(self, pre: Precomputed, users: torch.Tensor,
                    items: torch.Tensor | None = None) -> torch.Tensor:
        """Scores [B, I'] of users [B] against ``items`` [I'] (default: the whole catalogue).

        Diagonal experts against the whole catalogue take the fused tiled path of
        :class:`.catalogue.CatalogueScorer`. Otherwise, batched matmuls: the 9 expert scores
        and the 9 router logits of every user × item ([9, B, I'] each), then the gates of the
        Top-K logits. Renormalised Top-K softmax probabilities equal a softmax over the K
        largest logits alone, so the full softmax over the 9 experts is never formed."""
        if items is None and self.use_experts and pre.scorer is not None:
            route = self.eval_route()
            if not pre.scorer.matches(route.tau, route.k):
                pre.scorer = self.catalogue_scorer(pre)  # the route changed since precompute
            return pre.scorer.scores(pre.flat[users], self.catalogue_cue_rows(users))
        item_nodes = (torch.arange(self.n_items, device=users.device) if items is None else items) + self.n_users
        h_b = pre.h[0]
        base = h_b[users] @ h_b[item_nodes].T
        if not self.use_experts:
            return base
        item_side = None
        if pre.item_side is not None:
            item_side = pre.item_side if items is None else pre.item_side[:, items]
        expert_scores = self.experts.full_scores(pre.h[:, users], pre.h[:, item_nodes], item_side)  # [9, B, I']
        cues = self.grid_cues(pre, users, item_nodes)  # [3, B, I'] or None
        cue_weights = self.cue_score_weights()
        if cue_weights is not None:
            expert_scores = expert_scores + torch.einsum("em,mbi->ebi", cue_weights, cues)
        logits = self.grid_logits(pre, users, item_nodes, cues)  # [9, B, I']
        route = self.eval_route()
        top = logits.topk(max(1, min(route.k, N_EXPERTS)), dim=0)  # [K, B, I']
        gates = torch.softmax(top.values / route.tau, dim=0)
        mixture = (gates * expert_scores.gather(0, top.indices)).sum(0)
        return base + mixture if self.residual_base else mixture

    @torch.no_grad()
    def decompose(self, pre: Precomputed, user: int, items: torch.Tensor) -> dict[str, torch.Tensor]:
        """Exact attribution of ŷ(user, i) for ``items`` [n] (0..I-1).

        Returns score [n], base [n], probs and gates [n, 9], contributions [n, 9, 3]
        (c_{e,m}, not yet gated) with score == base + Σ_{e,m} gates·contributions.
        """
        users = torch.tensor([user], device=items.device)
        item_nodes = items + self.n_users
        h_b = pre.h[0]
        base = (h_b[users] @ h_b[item_nodes].T)[0]
        if not self.use_experts:
            empty = torch.zeros(len(items), N_EXPERTS, device=items.device)
            return {"score": base, "base": base, "probs": empty, "gates": empty,
                    "contributions": torch.zeros(len(items), N_EXPERTS, 3, device=items.device)}
        contrib = self.experts.full_contributions(pre.h[:, users], pre.h[:, item_nodes])
        contrib = contrib[:, :, 0].permute(2, 0, 1)  # [n, 9, 3]
        cues = self.grid_cues(pre, users, item_nodes)  # [3, 1, n] or None
        cue_weights = self.cue_score_weights()
        if cue_weights is not None:
            contrib = contrib + cue_weights.unsqueeze(0) * cues[:, 0].T.unsqueeze(1)
        logits = self.grid_logits(pre, users, item_nodes, cues)[:, 0].T  # [n, 9]
        probs, gates = self.route(logits, self.eval_route(), dim=-1)
        if not self.residual_base:
            base = torch.zeros_like(base)
        score = base + (gates.unsqueeze(-1) * contrib).sum((1, 2))
        return {"score": score, "base": base, "probs": probs, "gates": gates, "contributions": contrib}

    @torch.no_grad()
    def route_pairs(self, pre: Precomputed, users: torch.Tensor, items: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Routing probabilities and gates [n, 9] of aligned pairs users, items [n] (0..I-1) at
        the evaluation route (the many-pairs path of the routing tables)."""
        nodes = items + self.n_users
        cues = self.pair_cues(users, items, mask=pre.cue_mask)
        logits = self.router.pair_logits(pre.flat[users], pre.flat[nodes], cues)
        return self.route(logits, self.eval_route())
