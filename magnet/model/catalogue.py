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

from ..threads import torch_thread_budget
from ..vocab import N_EXPERTS

#: Users and items per tile on CPU (measured on 2 cores; see docs/BENCHMARKS.md): small enough
#: for the [64, 9, 256] logit and score blocks to stay in cache. On CUDA a tile is the whole user batch against
#: up to GPU_TILE_ITEMS items (1024 users × 8192 items × 18 floats = 600 MB).
CPU_TILE_USERS = 64
CPU_TILE_ITEMS = 256
GPU_TILE_ITEMS = 8192
_BIG = 3.0e38  # near float32 max: (x − t)·_BIG is ±inf or 0 for all but sub-normal differences


class CatalogueScorer:
    """What every catalogue scorer shares: per-catalogue tiles of base-shifted expert scores, the
    tiling loop and the Top-K mixing. Subclasses say how a tile's router logits are made.

    Args:
        items: concatenated channels of every item [I, 3d].
        weights: per-dimension expert weights [9, 3d] (metric × template, plus 1 on the
            behaviour dims when the score has a residual base).
        tau: routing temperature; k: Top-K.
    """

    def __init__(self, items: torch.Tensor, weights: torch.Tensor, tau: float, k: int,
                 tile_users: int | None = None, tile_items: int | None = None) -> None:
        on_cpu = items.device.type == "cpu"
        self.k = _clamp_k(k)
        self.tau = float(tau)
        self.n_items = items.shape[0]
        self.tile_users = tile_users or (CPU_TILE_USERS if on_cpu else 1 << 30)
        tile_items = tile_items or (CPU_TILE_ITEMS if on_cpu else GPU_TILE_ITEMS)
        self.spans = [(start, min(tile_items, self.n_items - start)) for start in range(0, self.n_items, tile_items)]
        self.score_tiles = [(items[start:start + ic].unsqueeze(0) * weights.unsqueeze(1))  # [9, Ic, 3d]
                            .reshape(N_EXPERTS * ic, -1).T.contiguous() for start, ic in self.spans]  # [3d, 9·Ic]

    def matches(self, tau: float, k: int) -> bool:
        """Whether this scorer was built for routing temperature ``tau`` and Top-``k``."""
        return (self.tau, self.k) == (float(tau), _clamp_k(k))

    def user_rows(self, hu: torch.Tensor, cue_rows: torch.Tensor | None) -> torch.Tensor:
        """What the router needs of a user block (channels hu [B, 3d], cue means [B, r])."""
        raise NotImplementedError

    def tile_logits(self, rows: torch.Tensor, t: int) -> torch.Tensor:
        """Router logits / τ [n, 9, Ic] of the user rows ``rows`` against item tile ``t``."""
        raise NotImplementedError

    def kernel_mix(self, kernel: Callable, rows: torch.Tensor, t: int, s: torch.Tensor, out: torch.Tensor) -> None:
        """The compiled Top-K mixture of tile ``t`` into ``out`` [n, Ic] (scores ``s`` [n, 9, Ic])."""
        z, scores = self.tile_inputs(rows, t, s)
        kernel(z.numpy(), scores.numpy(), self.k, out.numpy())

    def tile_inputs(self, rows: torch.Tensor, t: int, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The logits/τ and expert scores [n, 9, Ic] of tile ``t``, the scores from their matmul
        part ``s`` (subclasses may add terms)."""
        return self.tile_logits(rows, t), s

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

    def scores(self, hu: torch.Tensor, cue_rows: torch.Tensor | None = None) -> torch.Tensor:
        """Final scores [B, I] of users with channels hu [B, 3d] (and cue means ``cue_rows``
        [B, r] for a cue router) against the whole catalogue.

        On CPU, for batches of at least :data:`COMPILED_MIN_USERS` users (evaluation, not one
        dashboard user), the mixing runs in a compiled kernel instead of :meth:`mix`, one pass
        per tile instead of ~18 (same formula), on tiles of :data:`KERNEL_TILE_USERS` users."""
        out = torch.empty(hu.shape[0], self.n_items, device=hu.device, dtype=hu.dtype)
        rows = self.user_rows(hu, cue_rows)
        kernel = None
        if hu.device.type == "cpu" and hu.dtype == torch.float32 and hu.shape[0] >= COMPILED_MIN_USERS:
            kernel = _topk_kernel(self.kernel_name, self.k)
        if kernel is None:
            self._fill(out, rows, hu, kernel)
        else:
            with torch_thread_budget():  # numba's kernel threads = torch's
                self._fill(out, rows, hu, kernel)
        return out

    def _fill(self, out: torch.Tensor, rows: torch.Tensor, hu: torch.Tensor, kernel: Callable | None) -> None:
        """Write the scores of the user rows ``rows`` (channels ``hu``) into ``out`` [B, I]."""
        step = self.tile_users if kernel is None else max(self.tile_users, KERNEL_TILE_USERS)
        for u0 in range(0, rows.shape[0], step):
            block_rows, block_hu = rows[u0:u0 + step], hu[u0:u0 + step]
            n = block_rows.shape[0]
            for t, (start, ic) in enumerate(self.spans):
                s = (block_hu @ self.score_tiles[t]).view(n, N_EXPERTS, ic)
                if kernel is None:
                    out[u0:u0 + n, start:start + ic] = self.mix(*self.tile_inputs(block_rows, t, s))
                else:
                    mixed = torch.empty(n, ic, dtype=s.dtype)
                    self.kernel_mix(kernel, block_rows, t, s, mixed)
                    out[u0:u0 + n, start:start + ic] = mixed

    kernel_name = "topk"


class FactorisedScorer(CatalogueScorer):
    """Router logits as one matmul per tile (bilinear router, optionally plus cue columns):

        z_e/τ = ⟨[R h_u, 1, ζ_u, μ_u], [q_e ⊙ R h_i/τ, b_eᵀh_i/τ, 1_e, v_e ⊙ x̂_i/τ]⟩,
        ζ_{u,e} = (a_eᵀh_u + c'_e)/τ,

    with μ_u = [μ^A_u, μ^S_u] and x̂_i the cue directions (scaled by 1/std) when the router uses
    cues; v_e repeats expert e's cue slopes β·w_{e,m} over modality m's block, and c'_e is the
    bias minus the standardisation shift Σ_m β·w_{e,m}·mean_m/std_m.

    Args (besides the base's):
        q: bilinear weights [9, r]; a, b: router biases [9, 3d]; c: router bias [9].
        proj: the router's projection R [r, 3d] (None: full-width router, r = 3d).
        cue_items: cue directions [I, r_A + r_S] (divided by std); cue_slopes [9, r_A + r_S]
            (β·w_{e,m} repeated over each block); None without cues.
    """

    def __init__(self, items: torch.Tensor, q: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                 c: torch.Tensor, weights: torch.Tensor, tau: float, k: int,
                 tile_users: int | None = None, tile_items: int | None = None,
                 proj: torch.Tensor | None = None, cue_items: torch.Tensor | None = None,
                 cue_slopes: torch.Tensor | None = None) -> None:
        super().__init__(items, weights, tau, k, tile_users, tile_items)
        self.proj = proj
        self.a_over_tau = a / tau  # [9, 3d]
        self.c_over_tau = c / tau  # [9]
        onehot = torch.eye(N_EXPERTS, device=items.device, dtype=items.dtype)
        reduced = self.reduce(items)  # [I, r]
        self.logit_tiles = []
        for start, ic in self.spans:
            hi = items[start:start + ic]  # [Ic, 3d]
            parts = [reduced[start:start + ic].unsqueeze(0) * (q / tau).unsqueeze(1),  # [9, Ic, r]
                     (hi @ (b / tau).T).T.unsqueeze(-1),  # [9, Ic, 1]
                     onehot.unsqueeze(1).expand(N_EXPERTS, ic, N_EXPERTS)]  # [9, Ic, 9]
            if cue_items is not None:
                parts.append(cue_items[start:start + ic].unsqueeze(0) * (cue_slopes / tau).unsqueeze(1))
            self.logit_tiles.append(torch.cat(parts, dim=-1).reshape(N_EXPERTS * ic, -1).T.contiguous())

    def reduce(self, h: torch.Tensor) -> torch.Tensor:
        """Router-space coordinates R h [n, r] of channels h [n, 3d]."""
        return h if self.proj is None else h @ self.proj.T

    def user_rows(self, hu: torch.Tensor, cue_rows: torch.Tensor | None = None) -> torch.Tensor:
        """[B, r+10(+r_cue)] user vectors [R h_u, 1, ζ_u(, μ_u)] for channels hu [B, 3d]."""
        ones = torch.ones(hu.shape[0], 1, device=hu.device, dtype=hu.dtype)
        parts = [self.reduce(hu), ones, hu @ self.a_over_tau.T + self.c_over_tau]
        return torch.cat(parts + ([cue_rows] if cue_rows is not None else []), dim=1)

    def tile_logits(self, rows: torch.Tensor, t: int) -> torch.Tensor:
        return (rows @ self.logit_tiles[t]).view(rows.shape[0], N_EXPERTS, self.spans[t][1])


class CueScorer(CatalogueScorer):
    """Router logits of the cue router: per tile the two standardised cue planes come from one
    [B, r_A + r_S] × [r_A + r_S, 2·Ic] matmul (block-diagonal over the modalities), and every
    expert's logit is an affine function of them, z_e/τ = α_e + γ_{e,A}·ẑ_A + γ_{e,S}·ẑ_S, taken
    inside the compiled kernel, so the 9 logit planes are never materialised.

    Args (besides the base's):
        cue_items: cue directions [I, r_A + r_S] (each block divided by its cue std).
        widths: (r_A, r_S).
        offsets: the standardisation means divided by the stds, [2] (A, S).
        slopes: β·w [9, 3] over (B, A, S) (B unused: its cue is zero), knocked-out columns
            zero; bias: c [9].
        score_slopes: w_{e,m}·λ_m [9, 3] when the experts also score the cues (knocked-out
            columns zero): expert e's score gains δ_e + η_{e,A}·planes_A + η_{e,S}·planes_S.
    """

    kernel_name = "cue"

    def __init__(self, items: torch.Tensor, weights: torch.Tensor, tau: float, k: int,
                 cue_items: torch.Tensor, widths: tuple[int, int], offsets: torch.Tensor,
                 slopes: torch.Tensor, bias: torch.Tensor,
                 tile_users: int | None = None, tile_items: int | None = None,
                 score_slopes: torch.Tensor | None = None) -> None:
        super().__init__(items, weights, tau, k, tile_users, tile_items)
        r_a = widths[0]
        live = slopes[:, 1:] / tau  # [9, 2]
        self.alpha = (bias / tau - live @ offsets).contiguous()  # [9]
        self.gamma = live.contiguous()  # [9, 2]
        self.scores_cues = score_slopes is not None
        eta = torch.zeros_like(live) if score_slopes is None else score_slopes[:, 1:]
        self.eta = eta.contiguous()  # [9, 2]
        self.delta = (-(eta @ offsets)).contiguous()  # [9]
        self.cue_tiles = []
        for start, ic in self.spans:
            block = torch.zeros(cue_items.shape[1], 2 * ic, device=items.device, dtype=items.dtype)
            block[:r_a, :ic] = cue_items[start:start + ic, :r_a].T
            block[r_a:, ic:] = cue_items[start:start + ic, r_a:].T
            self.cue_tiles.append(block)

    def user_rows(self, hu: torch.Tensor, cue_rows: torch.Tensor | None) -> torch.Tensor:
        return cue_rows

    def planes(self, rows: torch.Tensor, t: int) -> torch.Tensor:
        """Unshifted standardised cues [n, 2, Ic] (cue_m/std_m) of tile ``t``."""
        return (rows @ self.cue_tiles[t]).view(rows.shape[0], 2, self.spans[t][1])

    def tile_logits(self, rows: torch.Tensor, t: int) -> torch.Tensor:
        return self._logits(self.planes(rows, t))

    def _logits(self, planes: torch.Tensor) -> torch.Tensor:
        return torch.einsum("em,nmi->nei", self.gamma, planes) + self.alpha.view(1, -1, 1)

    def tile_inputs(self, rows: torch.Tensor, t: int, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        planes = self.planes(rows, t)
        if self.scores_cues:
            s = s + torch.einsum("em,nmi->nei", self.eta, planes) + self.delta.view(1, -1, 1)
        return self._logits(planes), s

    def kernel_mix(self, kernel: Callable, rows: torch.Tensor, t: int, s: torch.Tensor, out: torch.Tensor) -> None:
        if self.k != 2:  # the general kernel takes the logits made here
            super().kernel_mix(kernel, rows, t, s, out)
            return
        kernel(self.planes(rows, t).numpy(), s.numpy(), self.alpha.numpy(), self.gamma.numpy(), self.delta.numpy(),
               self.eta.numpy(), self.k, out.numpy())


def _clamp_k(k: int) -> int:
    """Top-K as used: between 1 and the number of experts."""
    return max(1, min(int(k), N_EXPERTS))


#: Smallest user batch that uses the compiled Top-K kernel (its first call compiles, ~0.7 s).
COMPILED_MIN_USERS = 64
#: Users per tile on the kernel path: with one pass per tile, bigger matmuls win (2 cores, Baby,
#: an early K = 2 version: 256 × 256 → 5.2 s for valid + test, 64 × 256 → 6.8 s).
KERNEL_TILE_USERS = 256
_KERNEL: dict[str, Any] = {}


def _topk_kernel(name: str = "topk", k: int = 0) -> Callable[..., None] | None:
    """A numba-compiled Top-K mixture over a tile, or None when numba is unavailable.

    ``"topk"``: z (logits/τ), s (scores) [B, 9, Ic], k → out [B, Ic]. ``"cue"`` with k = 2:
    planes [B, 2, Ic], s, α [9], γ [9, 2], δ [9], η [9, 2], k → out: the logits are made on the
    fly, z_e = α_e + γ_e·planes, and the scores gain δ_e + η_e·planes (zero unless the experts
    score the cues); for other k the cue router's logits are made in torch and ``"topk"`` mixes.
    For each pair, the k largest logits m_1 ≥ … ≥ m_k (an earlier expert wins a tie, exactly k
    are kept) and their scores; out = Σ_j exp(m_j − m_1)·s_j / Σ_j exp(m_j − m_1), the
    renormalised softmax over the k. A running top-k per item kept by compare-and-swap levels,
    items innermost; for k = 2 (the specialised default) the two levels are kept in four arrays
    updated by selects, about twice as fast per tile, and split over torch's thread count.
    (A branch-free form of the general swap
    was miscompiled for rows of 16 items or more, so that swap is an explicit branch;
    tests/unit/test_catalogue.py checks K = 1, 2, 3, 9 on ragged rows.) The general kernels are
    single-threaded. numba is already installed with umap-learn."""
    key = f"{name}2" if k == 2 else "topk"
    if key in _KERNEL:
        return _KERNEL[key]
    try:
        import numba
        import numpy as np
        from numba import get_num_threads, njit, prange
    except ImportError:  # pragma: no cover - numba comes with umap-learn
        _KERNEL.update(topk=None, topk2=None, cue2=None)
        return None

    options = dict(boundscheck=False, error_model="numpy", cache=False)

    @njit(**options)
    def reset(m, p, k, n_items):  # pragma: no cover - compiled
        for j in range(k):
            for i in range(n_items):
                m[j, i] = -np.inf
                p[j, i] = 0.0

    @njit(**options)
    def push(m, p, cur, cur_s, k, n_items):  # pragma: no cover - compiled
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

    @njit(**options)
    def finish(m, p, k, n_items, out_row):  # pragma: no cover - compiled
        for i in range(n_items):
            num = np.float32(0.0)
            den = np.float32(0.0)
            for j in range(k):
                w = np.exp(m[j, i] - m[0, i])
                num += w * p[j, i]
                den += w
            out_row[i] = num / den

    @njit(**options)
    def topk_mix(z, s, k, out):  # pragma: no cover - compiled
        n_users, n_experts, n_items = z.shape[0], z.shape[1], z.shape[2]
        m = np.empty((k, n_items), np.float32)
        p = np.empty((k, n_items), np.float32)
        cur = np.empty(n_items, np.float32)
        cur_s = np.empty(n_items, np.float32)
        for b in range(n_users):
            reset(m, p, k, n_items)
            for e in range(n_experts):
                for i in range(n_items):
                    cur[i] = z[b, e, i]
                    cur_s[i] = s[b, e, i]
                push(m, p, cur, cur_s, k, n_items)
            finish(m, p, k, n_items, out[b])

    @njit(inline="always", **options)
    def keep2(z, v, i, m1, s1, m2, s2):  # pragma: no cover - compiled
        a1, b1, a2, b2 = m1[i], s1[i], m2[i], s2[i]
        up1 = z > a1
        up2 = z > a2
        m2[i] = a1 if up1 else (z if up2 else a2)  # the new second: the old first, or z, or itself
        s2[i] = b1 if up1 else (v if up2 else b2)
        m1[i] = z if up1 else a1
        s1[i] = v if up1 else b1

    @njit(inline="always", **options)
    def scratch2(n_items):  # pragma: no cover - compiled
        return (np.empty(n_items, np.float32), np.empty(n_items, np.float32),
                np.empty(n_items, np.float32), np.empty(n_items, np.float32))

    @njit(inline="always", **options)
    def clear2(m1, s1, m2, s2):  # pragma: no cover - compiled
        m1[:] = -np.inf
        m2[:] = -np.inf
        s1[:] = 0.0
        s2[:] = 0.0

    @njit(**options)
    def mix2(m1, s1, m2, s2, out_row):  # pragma: no cover - compiled
        for i in range(out_row.shape[0]):
            w = np.exp(m2[i] - m1[i])
            out_row[i] = (s1[i] + w * s2[i]) / (1.0 + w)

    def top2_kernels(parallel: bool) -> tuple[Callable[..., None], Callable[..., None]]:
        """The k = 2 kernels; with ``parallel`` the users of a tile are split into one chunk per
        numba thread (numba's OpenMP layer shares libgomp, and so its threads, with torch)."""
        chunks = prange if parallel else range

        @njit(parallel=parallel, **options)
        def topk_mix2(z, s, k, out):  # pragma: no cover - compiled
            n_users, n_experts, n_items = z.shape[0], z.shape[1], z.shape[2]
            n_chunks = max(1, min(get_num_threads(), n_users))
            for c in chunks(n_chunks):
                m1, s1, m2, s2 = scratch2(n_items)
                for b in range(c * n_users // n_chunks, (c + 1) * n_users // n_chunks):
                    clear2(m1, s1, m2, s2)
                    for e in range(n_experts):
                        ze, se = z[b, e], s[b, e]
                        for i in range(n_items):
                            keep2(ze[i], se[i], i, m1, s1, m2, s2)
                    mix2(m1, s1, m2, s2, out[b])

        @njit(parallel=parallel, **options)
        def cue_mix2(planes, s, alpha, gamma, delta, eta, k, out):  # pragma: no cover - compiled
            n_users, n_experts, n_items = s.shape[0], s.shape[1], s.shape[2]
            n_chunks = max(1, min(get_num_threads(), n_users))
            for c in chunks(n_chunks):
                m1, s1, m2, s2 = scratch2(n_items)
                for b in range(c * n_users // n_chunks, (c + 1) * n_users // n_chunks):
                    p0, p1 = planes[b, 0], planes[b, 1]
                    clear2(m1, s1, m2, s2)
                    for e in range(n_experts):
                        a, g0, g1, d, h0, h1 = alpha[e], gamma[e, 0], gamma[e, 1], delta[e], eta[e, 0], eta[e, 1]
                        se = s[b, e]
                        for i in range(n_items):
                            z0, z1 = p0[i], p1[i]
                            keep2(a + g0 * z0 + g1 * z1, se[i] + d + h0 * z0 + h1 * z1, i, m1, s1, m2, s2)
                    mix2(m1, s1, m2, s2, out[b])

        return topk_mix2, cue_mix2

    try:  # the parallel k = 2 kernels, if numba's OpenMP layer loads here
        numba.config.THREADING_LAYER = "omp"
        topk_mix2, cue_mix2 = top2_kernels(parallel=True)
        probe = np.zeros((2, 9, 3), np.float32)
        with torch_thread_budget():  # starting numba's pool resets the process's OpenMP thread count
            topk_mix2(probe, probe, 2, np.empty((2, 3), np.float32))
    except Exception:  # pragma: no cover - no OpenMP layer: the same kernels, one thread
        topk_mix2, cue_mix2 = top2_kernels(parallel=False)
    _KERNEL.update(topk=topk_mix, topk2=topk_mix2, cue2=cue_mix2)
    return _KERNEL[key]
