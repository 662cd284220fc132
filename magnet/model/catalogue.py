"""Fused full-catalogue scoring for diagonal experts (evaluation and recommendation hot path).

For diagonal experts every quantity the mixture needs for a user–item pair is a dot product of
one user vector with one per-expert item vector:

    z_e(u,i)/τ = ⟨[R h_u, 1, ζ_u], [q_e ⊙ R h_i / τ, b_eᵀh_i / τ, 1_e]⟩,   ζ_{u,e} = (a_eᵀh_u + c_e) / τ
    s_e(u,i) + base(u,i) = ⟨h_u, w_e ⊙ h_i⟩,                              w_e = metric_e·template_e (+1 on B)

with h the concatenated channels [3d], R the router's projection [r, 3d] (the identity for a
full-width router, r = 3d) and 1_e the one-hot of expert e over 9 slots. So the 9 router logits
of a user block against an item block are one matmul, [B, r+10] × [r+10, 9·I_c], and the 9
base-shifted expert scores another, [B, 3d] × [3d, 9·I_c]. Because the Top-K gates sum to one,
Σ_e g_e (s_e + base) = base + Σ_e g_e s_e: the base needs no pass of its own.

The Top-K softmax is then taken over the experts axis of each [B, 9, I_c] tile pair, either by a
numba-compiled kernel (evaluation batches on CPU: a running top-K per item, one pass) or with
vectorised elementwise operations (no per-pair top-k, no boolean masks): the K-th largest logit
is found by K-1 rounds of "push the current maximum down, take the maximum again", and the
gates are exp(z − z_max) over the logits at or above it, normalised. Tiles of a few hundred
users × items keep the blocks in cache; on a 2-core CPU this is several times faster than
materialising [9, B, I] logits and scores and calling ``topk`` across them, and it gives the
same numbers (float32 rounding apart; on an exact tie at the K-th logit the elementwise path
keeps every tied expert, the kernel the earlier ones).
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..vocab import N_EXPERTS

#: Users and items per tile on CPU (measured on 2 cores; see docs/BENCHMARKS.md): small enough
#: for the [64, 9, 256] logit and score blocks to stay in cache. On CUDA a tile is the whole user batch against
#: up to GPU_TILE_ITEMS items (1024 users × 8192 items × 18 floats = 600 MB).
CPU_TILE_USERS = 64
CPU_TILE_ITEMS = 256
GPU_TILE_ITEMS = 8192
_BIG = 3.0e38  # near float32 max: (x − t)·_BIG is ±inf or 0 for all but sub-normal differences


class CatalogueScorer:
    """Per-catalogue item tiles plus the user-side parameters needed to score any user.

    Args:
        items: concatenated channels of every item [I, 3d].
        q: router bilinear weights [9, r]; a, b: router biases [9, 3d]; c: router bias [9].
        weights: per-dimension expert weights [9, 3d] (metric × template, plus 1 on the
            behaviour dims when the score has a residual base).
        tau: routing temperature; k: Top-K.
        proj: the router's projection R [r, 3d] (None: full-width router, r = 3d).
    """

    def __init__(self, items: torch.Tensor, q: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                 c: torch.Tensor, weights: torch.Tensor, tau: float, k: int,
                 tile_users: int | None = None, tile_items: int | None = None,
                 proj: torch.Tensor | None = None) -> None:
        n_items = items.shape[0]
        on_cpu = items.device.type == "cpu"
        self.k = _clamp_k(k)
        self.tau = float(tau)
        self.n_items = n_items
        self.proj = proj
        self.tile_users = tile_users or (CPU_TILE_USERS if on_cpu else 1 << 30)
        tile_items = tile_items or (CPU_TILE_ITEMS if on_cpu else GPU_TILE_ITEMS)
        self.a_over_tau = a / tau  # [9, 3d]
        self.c_over_tau = c / tau  # [9]
        onehot = torch.eye(N_EXPERTS, device=items.device, dtype=items.dtype)
        reduced = self.reduce(items)  # [I, r]
        self.tiles: list[tuple[int, int, torch.Tensor, torch.Tensor]] = []
        for start in range(0, n_items, tile_items):
            hi = items[start:start + tile_items]  # [Ic, 3d]
            ic = hi.shape[0]
            logit_rows = torch.cat([
                reduced[start:start + ic].unsqueeze(0) * (q / tau).unsqueeze(1),  # [9, Ic, r]
                (hi @ (b / tau).T).T.unsqueeze(-1),  # [9, Ic, 1]
                onehot.unsqueeze(1).expand(N_EXPERTS, ic, N_EXPERTS),  # [9, Ic, 9]
            ], dim=-1)
            score_rows = hi.unsqueeze(0) * weights.unsqueeze(1)  # [9, Ic, 3d]
            self.tiles.append((start, ic,
                               logit_rows.reshape(N_EXPERTS * ic, -1).T.contiguous(),  # [r+10, 9·Ic]
                               score_rows.reshape(N_EXPERTS * ic, -1).T.contiguous()))  # [3d, 9·Ic]

    def reduce(self, h: torch.Tensor) -> torch.Tensor:
        """Router-space coordinates R h [n, r] of channels h [n, 3d]."""
        return h if self.proj is None else h @ self.proj.T

    def matches(self, tau: float, k: int) -> bool:
        """Whether this scorer was built for routing temperature ``tau`` and Top-``k``."""
        return (self.tau, self.k) == (float(tau), _clamp_k(k))

    def user_rows(self, hu: torch.Tensor) -> torch.Tensor:
        """[B, r+10] user vectors [R h_u, 1, ζ_u] for channels hu [B, 3d]."""
        ones = torch.ones(hu.shape[0], 1, device=hu.device, dtype=hu.dtype)
        return torch.cat([self.reduce(hu), ones, hu @ self.a_over_tau.T + self.c_over_tau], dim=1)

    def mix(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Top-K mixture [B, Ic] of logits/τ ``z`` and scores ``s`` [B, 9, Ic].

        Only float arithmetic (boolean masks cost ~3× more per element on CPU): an indicator
        of ``x ≥ t`` for x ≤ t or any x is ``clamp((x − t)·BIG + 1, 0, 1)``, exact for every
        difference larger than 1/BIG.
        """
        top = z.amax(1, keepdim=True)  # [B, 1, Ic]
        kth, rest = top, z
        for _ in range(self.k - 1):
            at_max = (rest - kth).mul_(_BIG).add_(1.0).clamp_(0.0, 1.0)  # 1 where rest == its max
            rest = rest - at_max.mul_(_BIG)
            kth = rest.amax(1, keepdim=True)
        kept = (z - kth).mul_(_BIG).add_(1.0).clamp_(0.0, 1.0)  # 1 on the K largest logits
        w = (z - top).exp_().mul_(kept)  # unnormalised gates [B, 9, Ic]
        return (w * s).sum(1).div_(w.sum(1))

    def scores(self, hu: torch.Tensor) -> torch.Tensor:
        """Final scores [B, I] of users with channels hu [B, 3d] against the whole catalogue.

        On CPU, for batches of at least :data:`COMPILED_MIN_USERS` users (evaluation, not one
        dashboard user), the mixing runs in a compiled kernel (:func:`_topk_kernel`)
        instead of :meth:`mix`, one pass per tile instead of ~18 (same formula), on tiles of
        :data:`KERNEL_TILE_USERS` users."""
        out = torch.empty(hu.shape[0], self.n_items, device=hu.device, dtype=hu.dtype)
        rows = self.user_rows(hu)
        kernel = None
        if hu.device.type == "cpu" and hu.dtype == torch.float32 and hu.shape[0] >= COMPILED_MIN_USERS:
            kernel = _topk_kernel()
        step = self.tile_users if kernel is None else max(self.tile_users, KERNEL_TILE_USERS)
        for u0 in range(0, rows.shape[0], step):
            block_rows, block_hu = rows[u0:u0 + step], hu[u0:u0 + step]
            n = block_rows.shape[0]
            for start, ic, logit_tile, score_tile in self.tiles:
                z = (block_rows @ logit_tile).view(n, N_EXPERTS, ic)
                s = (block_hu @ score_tile).view(n, N_EXPERTS, ic)
                if kernel is None:
                    out[u0:u0 + n, start:start + ic] = self.mix(z, s)
                else:
                    mixed = torch.empty(n, ic, dtype=z.dtype)
                    kernel(z.numpy(), s.numpy(), self.k, mixed.numpy())
                    out[u0:u0 + n, start:start + ic] = mixed
        return out


def _clamp_k(k: int) -> int:
    """Top-K as used: between 1 and the number of experts."""
    return max(1, min(int(k), N_EXPERTS))


#: Smallest user batch that uses the compiled Top-K kernel (its first call compiles, ~0.7 s).
COMPILED_MIN_USERS = 64
#: Users per tile on the kernel path: with one pass per tile, bigger matmuls win (2 cores, Baby,
#: an early K = 2 version: 256 × 256 → 5.2 s for valid + test, 64 × 256 → 6.8 s).
KERNEL_TILE_USERS = 256
_KERNEL: dict[str, Any] = {}


def _topk_kernel() -> Callable[[Any, int, Any], None] | None:
    """A numba-compiled Top-K mixture over a tile, or None when numba is unavailable.

    z (logits/τ), s (scores) [B, 9, Ic], k → out [B, Ic]: for each pair, the k largest
    logits m_1 ≥ … ≥ m_k (an earlier expert wins a tie, exactly k are kept) and their scores;
    out = Σ_j exp(m_j − m_1)·s_j / Σ_j exp(m_j − m_1), the renormalised softmax over the k.
    A running top-k per item kept by compare-and-swap levels, items innermost. (A branch-free
    form of the same swap was miscompiled for rows of 16 items or more, so the swap is an
    explicit branch; tests/unit/test_catalogue.py checks K = 1, 2, 3, 9 on ragged rows.)
    Single-threaded: numba's own threads alongside torch's OpenMP threads were slower on 2 cores.
    numba is already installed with umap-learn."""
    if "topk" in _KERNEL:
        return _KERNEL["topk"]
    try:
        import numpy as np
        from numba import njit
    except ImportError:  # pragma: no cover - numba comes with umap-learn
        _KERNEL["topk"] = None
        return None

    @njit(boundscheck=False, error_model="numpy", cache=False)
    def topk_mix(z, s, k, out):  # pragma: no cover - compiled
        n_users, n_experts, n_items = z.shape[0], z.shape[1], z.shape[2]
        m = np.empty((k, n_items), np.float32)
        p = np.empty((k, n_items), np.float32)
        cur = np.empty(n_items, np.float32)
        cur_s = np.empty(n_items, np.float32)
        for b in range(n_users):
            for j in range(k):
                for i in range(n_items):
                    m[j, i] = -np.inf
                    p[j, i] = 0.0
            for e in range(n_experts):
                for i in range(n_items):
                    cur[i] = z[b, e, i]
                    cur_s[i] = s[b, e, i]
                for j in range(k):
                    for i in range(n_items):
                        held = m[j, i]
                        held_s = p[j, i]
                        came = cur[i]
                        came_s = cur_s[i]
                        if came > held:  # the newcomer takes level j, the holder moves down
                            m[j, i] = came
                            p[j, i] = came_s
                            cur[i] = held
                            cur_s[i] = held_s
            for i in range(n_items):
                num = np.float32(0.0)
                den = np.float32(0.0)
                for j in range(k):
                    w = np.exp(m[j, i] - m[0, i])
                    num += w * p[j, i]
                    den += w
                out[b, i] = num / den

    _KERNEL["topk"] = topk_mix
    return topk_mix
