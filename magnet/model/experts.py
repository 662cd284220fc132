"""The structured mixture of 9 graph experts (spec §3).

Expert ``e = (anchor, role)`` scores a user–item pair from the three modality channels
m ∈ (B, A, S) through its own per-modality projections P_{e,m}:

    s_e(u, i) = Σ_m w_{e,m} · ⟨P_{e,m}(h^m_u), P_{e,m}(h^m_i)⟩,

so the per-modality terms c_{e,m}(u,i) = w_{e,m}·⟨…⟩ add up exactly to s_e.
"""
from __future__ import annotations

import torch
from torch import nn

from ..vocab import MODALITIES, N_EXPERTS, template_rows


def template_matrix(role_weights: dict[str, tuple[float, float, float]] | None = None) -> torch.Tensor:
    """Triplet templates w [9, 3] over (B, A, S); row e belongs to EXPERT_NAMES[e]
    (:func:`magnet.vocab.template_rows` as a tensor)."""
    return torch.tensor(template_rows(role_weights), dtype=torch.float32)


class ExpertBank(nn.Module):
    """What every expert parameterisation shares: the templates, and scoring from projections.

    Subclasses define ``forward(h)`` (channels [3, n, d] → projections P [9, 3, n, d]) and may
    override :meth:`pair_contributions` with a cheaper equivalent for the training hot path.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("templates", template_matrix(), persistent=False)

    def pair_contributions(self, h: torch.Tensor, inv_u: torch.Tensor, inv_i: torch.Tensor) -> torch.Tensor:
        """c_{e,m}(u_b, i_b) [9, 3, n] for channels ``h`` [3, n_nodes, d] and the rows
        ``inv_u``, ``inv_i`` [n] of each pair's user and item in ``h``."""
        proj = self(h)  # [9, 3, n_nodes, d]
        pu, pi = proj.index_select(2, inv_u), proj.index_select(2, inv_i)
        return (pu * pi).sum(-1) * self.templates.unsqueeze(-1)

    def item_side(self, hi: torch.Tensor) -> torch.Tensor | None:
        """What :meth:`full_scores` needs of the items, computed once per catalogue:
        P(h_i) laid out [9, I, 3d] (None when the items enter unprojected)."""
        proj = self(hi)  # [9, 3, I, d]
        return proj.permute(0, 2, 1, 3).reshape(N_EXPERTS, hi.shape[1], -1)

    def user_side(self, hu: torch.Tensor) -> torch.Tensor:
        """Template-weighted P(h_u) laid out [9, B, 3d] for channels ``hu`` [3, B, d]."""
        proj = self(hu) * self.templates.view(N_EXPERTS, -1, 1, 1)  # [9, 3, B, d]
        return proj.permute(0, 2, 1, 3).reshape(N_EXPERTS, hu.shape[1], -1)

    def full_scores(self, hu: torch.Tensor, hi: torch.Tensor, item_side: torch.Tensor | None = None
                    ) -> torch.Tensor:
        """s_e(u, i) for every user × item [9, B, I] from channels hu [3, B, d], hi [3, I, d]
        (``item_side``: :meth:`item_side` of ``hi`` if already computed)."""
        items = self.item_side(hi) if item_side is None else item_side
        return torch.bmm(self.user_side(hu), items.transpose(1, 2))

    def full_contributions(self, hu: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """c_{e,m}(u, i) for every user × item: [9, 3, B, I] (explanations, small B)."""
        return torch.einsum("embd,emid->embi", self(hu), self(hi)) * self.templates.view(N_EXPERTS, -1, 1, 1)


class ExpertProjections(ExpertBank):
    """All 27 projections P_{e,m}: ℝ^d → ℝ^d, batched as one einsum per layer.

    Each is a 2-layer MLP with an identity skip, P(x) = x + W2·GELU(W1·x + b1) + b2, whose
    output layer starts at zero: every expert starts as its template-weighted dot product
    and learns a refinement (see docs/SPEC_AS_BUILT.md).
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(N_EXPERTS, len(MODALITIES), dim, hidden) * dim ** -0.5)
        self.b1 = nn.Parameter(torch.zeros(N_EXPERTS, len(MODALITIES), 1, hidden))
        self.w2 = nn.Parameter(torch.zeros(N_EXPERTS, len(MODALITIES), hidden, dim))
        self.b2 = nn.Parameter(torch.zeros(N_EXPERTS, len(MODALITIES), 1, dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Project channels ``h`` [3, n, d] (B, A, S) → P [9, 3, n, d]."""
        hidden = torch.nn.functional.gelu(torch.einsum("mnd,emdh->emnh", h, self.w1) + self.b1)
        return h.unsqueeze(0) + torch.einsum("emnh,emhd->emnd", hidden, self.w2) + self.b2


class DiagonalExperts(ExpertBank):
    """Each P_{e,m}(x) = x ⊙ (1 + s_{e,m}): expert e weighs the d dimensions of channel m by
    its own learned metric (s starts at zero, so every expert starts as its template-weighted
    dot product). 27·d parameters in all.

    Since ⟨P x, P y⟩ = Σ_k x_k y_k (1 + s_k)², the 27 pair terms come from one elementwise
    product per channel and one [3n, d] × [d, 9] matmul, instead of 27 projections per node.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(N_EXPERTS, len(MODALITIES), dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Project channels ``h`` [3, n, d] (B, A, S) → P [9, 3, n, d]."""
        return h.unsqueeze(0) * (1.0 + self.scale).unsqueeze(2)

    def metric(self) -> torch.Tensor:
        """(1 + s)² [9, 3, d]: ⟨P_{e,m} x, P_{e,m} y⟩ = Σ_k x_k y_k metric[e, m, k]."""
        return (1.0 + self.scale).square()

    def item_side(self, hi: torch.Tensor) -> torch.Tensor | None:
        return None  # items enter unprojected: the metric is folded into the user side

    def user_side(self, hu: torch.Tensor) -> torch.Tensor:
        weighted = hu.unsqueeze(0) * (self.metric() * self.templates.unsqueeze(-1)).unsqueeze(2)  # [9, 3, B, d]
        return weighted.permute(0, 2, 1, 3).reshape(N_EXPERTS, hu.shape[1], -1)

    def full_scores(self, hu: torch.Tensor, hi: torch.Tensor, item_side: torch.Tensor | None = None
                    ) -> torch.Tensor:
        """As :meth:`ExpertBank.full_scores`, as one [9B, 3d] × [3d, I] matmul."""
        users = self.user_side(hu)  # [9, B, 3d]
        items = hi.permute(1, 0, 2).reshape(hi.shape[1], -1)  # [I, 3d]
        return (users.reshape(-1, users.shape[-1]) @ items.T).view(N_EXPERTS, hu.shape[1], hi.shape[1])

    def pair_contributions(self, h: torch.Tensor, inv_u: torch.Tensor, inv_i: torch.Tensor) -> torch.Tensor:
        """As :meth:`ExpertBank.pair_contributions`, in O(3·n·d·9) without projecting."""
        prod = h.index_select(1, inv_u) * h.index_select(1, inv_i)  # [3, n, d]
        return torch.einsum("mnd,emd->emn", prod, self.metric()) * self.templates.unsqueeze(-1)

    def pair_contributions_flat(self, hu: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """c_{e,m} [9, 3, n] of aligned pairs from their concatenated channels hu, hi [n, 3d]
        (the rows the router reads): the same values as :meth:`pair_contributions`, without
        gathering along the channel tensor's node axis (whose backward, an ``index_add`` along
        dim 1 of [3, n, d], is about 3× slower than along dim 0)."""
        prod = (hu * hi).view(hu.shape[0], len(MODALITIES), -1)  # [n, 3, d]
        return torch.einsum("nmd,emd->emn", prod, self.metric()) * self.templates.unsqueeze(-1)


EXPERT_KINDS: tuple[str, ...] = ("mlp", "diagonal")


def make_experts(kind: str, dim: int, hidden: int) -> ExpertBank:
    """The expert bank of ``model.expert_kind``."""
    if kind == "mlp":
        return ExpertProjections(dim, hidden)
    if kind == "diagonal":
        return DiagonalExperts(dim)
    raise ValueError(f"unknown expert kind {kind!r}; choose one of {', '.join(EXPERT_KINDS)}")
