"""Dual-view graph encoder (spec §2).

Produces three channels for every node (users first, then items):
B (behaviour: LightGCN on the interaction view, lightly fused with the same ID
embeddings propagated on the content-augmented view), A (appearance) and S (semantics:
projected item features, users as the mean of their items, propagated on the augmented view).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import GraphConfig, ModelConfig
from ..graphs import GraphBundle, spmm


def propagate(adj: torch.Tensor, x: torch.Tensor, n_layers: int) -> torch.Tensor:
    """LightGCN: mean of [x, Âx, Â²x, …] over ``n_layers`` hops; adj [N, N], x [N, d] → [N, d]."""
    total = x
    for _ in range(n_layers):
        x = spmm(adj, x)
        total = total + x
    return total / (n_layers + 1)


@dataclass
class Channels:
    """Encoder output. ``h`` [3, N, d] holds (B fused, A, S); for behaviour-only, [1, N, d].

    ``b_interaction`` and ``b_augmented`` [N, d] are the two views of B before fusion
    (the pair the view-contrastive loss aligns; ``b_augmented`` is None for behaviour-only).
    """

    h: torch.Tensor
    b_interaction: torch.Tensor
    b_augmented: torch.Tensor | None


class DualViewEncoder(nn.Module):
    """ID embeddings + feature projections W_A, W_S + the learnable fusion scalar γ."""

    def __init__(self, n_users: int, n_items: int, model_cfg: ModelConfig, graph_cfg: GraphConfig,
                 image_dim: int | None, text_dim: int | None) -> None:
        super().__init__()
        d = model_cfg.embedding_dim
        self.n_users, self.n_items = n_users, n_items
        self.graph_cfg = graph_cfg
        self.use_aug_view = model_cfg.use_aug_view
        self.embedding = nn.Parameter(torch.randn(n_users + n_items, d) * model_cfg.init_std)
        if self.use_aug_view:
            if image_dim is None or text_dim is None:
                raise ValueError("the content-augmented view needs image and text feature sizes")
            self.proj_image = nn.Linear(image_dim, d)
            self.proj_text = nn.Linear(text_dim, d)
            self.gamma = nn.Parameter(torch.tensor(float(model_cfg.fusion_gamma_init)))

    def forward(self, graphs: GraphBundle, image_feat: torch.Tensor | None,
                text_feat: torch.Tensor | None) -> Channels:
        """Encode every node. image_feat [I, d_A], text_feat [I, d_S] (ignored for behaviour-only)."""
        cfg = self.graph_cfg
        b_int = propagate(graphs.interaction, self.embedding, cfg.n_ui_layers)
        if not self.use_aug_view:
            return Channels(b_int.unsqueeze(0), b_int, None)
        b_aug = propagate(graphs.augmented, self.embedding, cfg.n_ui_layers)
        items = torch.cat([self.proj_image(image_feat), self.proj_text(text_feat)], dim=1)  # [I, 2d]
        users = spmm(graphs.user_mean, items, graphs.user_mean_t)  # [U, 2d]
        content = propagate(graphs.augmented, torch.cat([users, items]), cfg.n_mm_layers)
        h_a, h_s = content.chunk(2, dim=1)
        h_b = b_int + self.gamma * b_aug
        return Channels(torch.stack([h_b, h_a, h_s]), b_int, b_aug)
