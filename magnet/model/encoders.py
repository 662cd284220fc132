"""Dual-view graph encoder (spec §2).

Produces three channels for every node (users first, then items):
B (behaviour: LightGCN on the interaction view, lightly fused with the same ID
embeddings propagated on the content-augmented view), A (appearance) and S (semantics:
projected item features, users as the mean of their items, propagated on the augmented view).

With ``graph.content_channels="id_graph"`` A and S are built as in LATTICE/FREEDOM instead: ID
embeddings E_A, E_S [N, d] (``id_graph_tables="own"``; or the behaviour table itself, "shared")
propagated ``n_ui_layers`` hops on the interaction graph augmented with that modality's own kNN
item–item edges (:attr:`GraphBundle.augmented_image` / ``augmented_text``), optionally plus the
projected-feature term above (``id_graph_features``). The channel layout [3, N, d] is the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..config import GraphConfig, ModelConfig
from ..graphs import GraphBundle, spmm
from ..propagation import mean_of_hops


def pca_basis(x: torch.Tensor, k: int, seed: int = 0, n_iter: int = 4, oversample: int = 10
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean [d] and top-``k`` principal directions [d, k] of the rows of ``x`` [n, d].

    Randomised SVD (range finder with ``n_iter`` power iterations, Halko et al. 2011) from a
    seeded Gaussian sketch, so the same features give the same basis on every run. Cost
    O(n·d·(k + oversample)·n_iter): about a second for 7k × 4096 on 2 cores, once per run.
    """
    n, d = x.shape
    mean = x.mean(0)
    centred = x - mean
    q = min(k + oversample, n, d)
    sketch = torch.randn(d, q, generator=torch.Generator().manual_seed(seed), dtype=x.dtype).to(x.device)
    y, _ = torch.linalg.qr(centred @ sketch)  # [n, q]
    for _ in range(n_iter):
        z, _ = torch.linalg.qr(centred.T @ y)  # [d, q]
        y, _ = torch.linalg.qr(centred @ z)
    _, _, vh = torch.linalg.svd(y.T @ centred, full_matrices=False)  # vh [q, d]
    return mean, vh[:k].T.contiguous()


def reduced_dim(feature_dim: int, raw_dim: int, n_items: int) -> int:
    """Width of a modality's features after PCA (``raw_dim`` when no reduction applies)."""
    if feature_dim <= 0 or feature_dim >= min(raw_dim, n_items):
        return raw_dim
    return feature_dim


def propagate(adj: torch.Tensor, x: torch.Tensor, n_layers: int) -> torch.Tensor:
    """LightGCN: mean of [x, Âx, Â²x, …] over ``n_layers`` hops; adj [N, N] symmetric, x [N, d]
    → [N, d] (one autograd function, see :mod:`magnet.propagation`)."""
    return mean_of_hops(adj, x, n_layers)


def rows_of(x: torch.Tensor, nodes: torch.Tensor | None) -> torch.Tensor:
    """Rows ``nodes`` [n] of x [N, w] (all of x for None), by ``index_select``: its backward is
    one ``index_add`` into the gradient, not the sort-based ``index_put`` of fancy indexing."""
    return x if nodes is None else x.index_select(0, nodes)


#: Precompute the propagated feature basis (see :class:`ContentBasis`) when it holds at most
#: this many floats (256 MB); wider raw features take the per-step projection path.
MAX_CONTENT_BASIS_FLOATS = 64 * 1024 * 1024


@dataclass
class ContentBasis:
    """The content channels are linear in the projections W_A, W_S (and their biases), so the
    feature side of "project, average into users, propagate" can be done once per run:

        z = propagate(Â_aug, [R̄ X̃; X̃], n_mm_layers)  [N, image_in + text_in + 1],  X̃ = [X_A, X_S, 1]

    and then [h_A, h_S] of any nodes is z[nodes] times the block-diagonal projection, with the
    last column carrying the biases. A training step then touches only its batch's rows
    instead of projecting every item and propagating [N, 2d] through the graph.
    ``key`` identifies the graphs and features it was computed from (``inputs`` keeps them
    alive so the identities cannot be reused).
    """

    key: tuple
    z: torch.Tensor
    inputs: tuple


class Channels:
    """Encoder output: channels (B fused, A, S) of every node, C = 3 (1 for behaviour-only).

    ``b_interaction`` and ``b_augmented`` [N, d] are the two views of B before fusion (the pair
    the view-contrastive loss aligns; ``b_augmented`` is None for behaviour-only), ``h_b`` [N, d]
    the fused B channel. The content channels are produced on demand by ``content(nodes)``
    → [n, 2d] (None: all nodes), so a training step computes them for its batch only.
    """

    def __init__(self, h_b: torch.Tensor, b_interaction: torch.Tensor,
                 b_augmented: torch.Tensor | Callable[[], torch.Tensor] | None,
                 content: Callable[[torch.Tensor | None], torch.Tensor] | None = None) -> None:
        self.h_b = h_b
        self.b_interaction = b_interaction
        self._b_augmented = b_augmented
        self.content = content
        self._h: torch.Tensor | None = None

    @property
    def b_augmented(self) -> torch.Tensor | None:
        """The augmented view of B [N, d] (propagated on first access when the fused channel
        did not need it, i.e. γ frozen at 0)."""
        if callable(self._b_augmented):
            self._b_augmented = self._b_augmented()
        return self._b_augmented

    def select(self, nodes: torch.Tensor) -> torch.Tensor:
        """Channels of ``nodes`` [n]: [C, n, d]."""
        h_b = self.h_b.index_select(0, nodes)
        if self.content is None:
            return h_b.unsqueeze(0)
        return torch.stack([h_b, *self.content(nodes).chunk(2, dim=1)])

    def select_flat(self, nodes: torch.Tensor) -> torch.Tensor:
        """Channels of ``nodes`` [n] side by side, [n, C·d] = [h^B | h^A | h^S] (the router's
        input layout; one concatenation instead of :meth:`select`'s stack and a transpose)."""
        h_b = self.h_b.index_select(0, nodes)
        if self.content is None:
            return h_b
        return torch.cat([h_b, self.content(nodes)], dim=1)

    @property
    def h(self) -> torch.Tensor:
        """All channels [C, N, d] (computed once)."""
        if self._h is None:
            if self.content is None:
                self._h = self.h_b.unsqueeze(0)
            else:
                self._h = torch.stack([self.h_b, *self.content(None).chunk(2, dim=1)])
        return self._h


class DualViewEncoder(nn.Module):
    """ID embeddings + feature projections W_A, W_S + the learnable fusion scalar γ (+ the ID
    tables E_A, E_S of ``content_channels="id_graph"`` with ``id_graph_tables="own"``).

    The projections and the feature PCA exist only when the channels use features
    (``"features"``, or ``"id_graph"`` with ``id_graph_features``), so every parameter gets a
    gradient (DistributedDataParallel requires it)."""

    def __init__(self, n_users: int, n_items: int, model_cfg: ModelConfig, graph_cfg: GraphConfig,
                 image_dim: int | None, text_dim: int | None) -> None:
        super().__init__()
        d = model_cfg.embedding_dim
        self.n_users, self.n_items = n_users, n_items
        self.graph_cfg = graph_cfg
        self.use_aug_view = model_cfg.use_aug_view
        self.embedding = nn.Parameter(torch.randn(n_users + n_items, d) * model_cfg.init_std)
        self.id_graph = self.use_aug_view and graph_cfg.content_channels == "id_graph"
        self.uses_features = self.use_aug_view and (not self.id_graph or graph_cfg.id_graph_features)
        if self.use_aug_view:
            if image_dim is None or text_dim is None:
                raise ValueError("the content-augmented view needs image and text feature sizes")
        if self.uses_features:
            self.image_in = reduced_dim(model_cfg.feature_dim, image_dim, n_items)
            self.text_in = reduced_dim(model_cfg.feature_dim, text_dim, n_items)
            # PCA of the raw features where reduced (fitted once, stored with the weights).
            for name, raw, width in (("image", image_dim, self.image_in), ("text", text_dim, self.text_in)):
                if width < raw:
                    self.register_buffer(f"{name}_mean", torch.zeros(raw))
                    self.register_buffer(f"{name}_basis", torch.zeros(raw, width))
            self.proj_image = nn.Linear(self.image_in, d)
            self.proj_text = nn.Linear(self.text_in, d)
        if self.id_graph and graph_cfg.id_graph_tables == "own":
            # Same initialisation as the behaviour table.
            self.embedding_image = nn.Parameter(torch.randn(n_users + n_items, d) * model_cfg.init_std)
            self.embedding_text = nn.Parameter(torch.randn(n_users + n_items, d) * model_cfg.init_std)
        if self.use_aug_view:
            # A parameter either way (same state-dict key); frozen when not learned.
            self.gamma = nn.Parameter(torch.tensor(float(model_cfg.fusion_gamma_init)),
                                      requires_grad=model_cfg.learn_fusion_gamma)

    @torch.no_grad()
    def fit_content_basis(self, image_feat: torch.Tensor | None, text_feat: torch.Tensor | None,
                          seed: int = 0) -> None:
        """Fit the PCA of raw item features image_feat [I, d_A], text_feat [I, d_S] (no-op for
        behaviour-only, or for a modality whose width is not reduced)."""
        if not self.use_aug_view:
            return
        for name, feat in (("image", image_feat), ("text", text_feat)):
            if hasattr(self, f"{name}_basis"):
                basis = getattr(self, f"{name}_basis")
                m, b = pca_basis(feat.float(), basis.shape[1], seed=seed)
                getattr(self, f"{name}_mean").copy_(m)
                basis.copy_(b)

    @torch.no_grad()
    def content_inputs(self, image_feat: torch.Tensor | None, text_feat: torch.Tensor | None
                       ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Raw features [I, d_A], [I, d_S] → the model's inputs [I, image_in], [I, text_in]
        (centred PCA scores where reduced, the raw features otherwise)."""
        if not self.use_aug_view or image_feat is None or text_feat is None:
            return image_feat, text_feat
        out = []
        for name, feat in (("image", image_feat), ("text", text_feat)):
            if hasattr(self, f"{name}_basis"):
                feat = (feat - getattr(self, f"{name}_mean")) @ getattr(self, f"{name}_basis")
            out.append(feat)
        return out[0], out[1]

    def forward(self, graphs: GraphBundle, image_feat: torch.Tensor | None,
                text_feat: torch.Tensor | None) -> Channels:
        """Encode every node. image_feat [I, image_in], text_feat [I, text_in]: the output of
        :meth:`content_inputs` (ignored for behaviour-only)."""
        cfg = self.graph_cfg
        b_int = propagate(graphs.interaction, self.embedding, cfg.n_ui_layers)
        if not self.use_aug_view:
            return Channels(b_int, b_int, None)
        if not self.gamma.requires_grad and float(self.gamma) == 0.0:
            # γ frozen at 0: B is pure LightGCN; the augmented view is only needed by the
            # view-contrastive loss, so it is propagated only if that loss asks for it.
            h_b = b_int
            b_aug: torch.Tensor | Callable[[], torch.Tensor] = (
                lambda: propagate(graphs.augmented, self.embedding, cfg.n_ui_layers))
        else:
            b_aug = propagate(graphs.augmented, self.embedding, cfg.n_ui_layers)
            h_b = b_int + self.gamma * b_aug
        if self.id_graph:
            return Channels(h_b, b_int, b_aug, self._id_graph_content(graphs, image_feat, text_feat))
        return Channels(h_b, b_int, b_aug, self._feature_content(graphs, image_feat, text_feat))

    def id_graph_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The ID tables [N, d] that the A and S channels propagate (id_graph only)."""
        if hasattr(self, "embedding_image"):
            return self.embedding_image, self.embedding_text
        return self.embedding, self.embedding

    def _id_graph_content(self, graphs: GraphBundle, image_feat: torch.Tensor | None,
                          text_feat: torch.Tensor | None) -> Callable[[torch.Tensor | None], torch.Tensor]:
        """[h_A, h_S] [n, 2d] of any nodes for ``content_channels="id_graph"``:
        propagate(Â_aug,A, E_A) and propagate(Â_aug,S, E_S), plus the projected-feature term
        when ``id_graph_features``."""
        if graphs.augmented_image is None or graphs.augmented_text is None:
            raise ValueError('content_channels="id_graph" needs the per-modality augmented graphs '
                             "(build_graphs with the same graph config)")
        layers = self.graph_cfg.n_ui_layers
        e_a, e_s = self.id_graph_tables()
        content = torch.cat([propagate(graphs.augmented_image, e_a, layers),
                             propagate(graphs.augmented_text, e_s, layers)], dim=1)  # [N, 2d]
        if not self.uses_features:
            return lambda nodes: rows_of(content, nodes)
        features = self._feature_content(graphs, image_feat, text_feat)
        return lambda nodes: rows_of(content, nodes) + features(nodes)

    def _feature_content(self, graphs: GraphBundle, image_feat: torch.Tensor, text_feat: torch.Tensor
                         ) -> Callable[[torch.Tensor | None], torch.Tensor]:
        """[h_A, h_S] [n, 2d] of any nodes from the projected features (``"features"``)."""
        cfg = self.graph_cfg
        basis = self.content_basis(graphs, image_feat, text_feat)
        if basis is not None:
            return lambda nodes: self._project_basis(basis.z, nodes)
        items = torch.cat([self.proj_image(image_feat), self.proj_text(text_feat)], dim=1)  # [I, 2d]
        users = spmm(graphs.user_mean, items, graphs.user_mean_t)  # [U, 2d]
        content = propagate(graphs.augmented, torch.cat([users, items]), cfg.n_mm_layers)  # [N, 2d]
        return lambda nodes: rows_of(content, nodes)

    def content_basis(self, graphs: GraphBundle, image_feat: torch.Tensor, text_feat: torch.Tensor
                      ) -> ContentBasis | None:
        """The :class:`ContentBasis` of these graphs and features (computed on first use, then
        reused), or None when it would exceed :data:`MAX_CONTENT_BASIS_FLOATS`."""
        n_nodes = self.n_users + self.n_items
        width = image_feat.shape[1] + text_feat.shape[1] + 1
        if n_nodes * width > MAX_CONTENT_BASIS_FLOATS:
            return None
        key = (id(graphs), id(image_feat), id(text_feat), image_feat._version, text_feat._version)
        cached = getattr(self, "_content_basis", None)
        if cached is not None and cached.key == key:
            return cached
        with torch.no_grad():
            ones = torch.ones(image_feat.shape[0], 1, device=image_feat.device, dtype=image_feat.dtype)
            items = torch.cat([image_feat, text_feat, ones], dim=1)  # [I, w+1]
            users = spmm(graphs.user_mean, items, graphs.user_mean_t)  # [U, w+1]
            z = propagate(graphs.augmented, torch.cat([users, items]), self.graph_cfg.n_mm_layers)
        basis = ContentBasis(key, z, (graphs, image_feat, text_feat))
        object.__setattr__(self, "_content_basis", basis)  # a cache, not a module attribute
        return basis

    def _project_basis(self, z: torch.Tensor, nodes: torch.Tensor | None) -> torch.Tensor:
        """[h_A, h_S] [n, 2d] of ``nodes`` (None: all) from the basis z [N, w+1]."""
        rows = rows_of(z, nodes)
        wi = self.proj_image.in_features
        wt = self.proj_text.in_features
        bias = rows[:, -1:]
        h_a = rows[:, :wi] @ self.proj_image.weight.T + bias * self.proj_image.bias
        h_s = rows[:, wi:wi + wt] @ self.proj_text.weight.T + bias * self.proj_text.bias
        return torch.cat([h_a, h_s], dim=1)
