"""The training objective of spec §6 (ranking loss + view-contrastive + load balance + entropy /
confidence + L2), written next to the model it trains, as a module whose forward is the loss so
that DistributedDataParallel can wrap it."""
from __future__ import annotations

import torch
from torch import nn

from ..config import RunConfig
from ..graphs import GraphBundle
from ..losses import info_nce, l2_reg, ranking_loss
from ..schedule import StepParams
from ..vocab import N_EXPERTS
from .magnet import MAGNET
from .router import load_balance_loss, normalized_entropy, routing_entropy

TRACE_SCALARS: tuple[str, ...] = ("loss", "bpr", "vc", "lb", "entropy_term", "reg", "H", "pair_entropy")
"""The scalars of one step, in the order :meth:`TrainingObjective.forward` returns them (each
followed by per-expert Top-K shares and mean gates, 9 each)."""


class TrainingObjective(nn.Module):
    """The training loss of spec §6 as a module's forward, so that DistributedDataParallel can
    wrap it. Its only parameters are the model's; graphs and features are plain attributes."""

    def __init__(self, model: MAGNET, config: RunConfig, graphs: GraphBundle,
                 image_feat: torch.Tensor | None, text_feat: torch.Tensor | None) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.graphs, self.image_feat, self.text_feat = graphs, image_feat, text_feat

    def forward(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                params: StepParams, base_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """users, pos [n], neg [n] or [n, m] → (loss [], detached trace scalars
        [len(TRACE_SCALARS) + 2·9]).

        The ranking loss (``train.loss``: BPR or sampled softmax; trace column "bpr"), L2 and
        the entropy term are means over the n positives; the view-contrastive and load-balance
        terms are estimated on this batch only (the routing terms over all n·(1 + m) scored
        pairs). L2 covers the user, the positive and the first negative of each row, so its
        scale does not grow with m. ``base_only`` (behaviour warm-up): the loss is the ranking
        loss on the base score ⟨h^B_u, h^B_i⟩ plus L2, nothing else."""
        cfg, model = self.config, self.model
        n = len(users)
        neg = neg.unsqueeze(1) if neg.dim() == 1 else neg
        m = neg.shape[1]
        # Negatives column by column ([m·n]: every row's first negative, then every second…),
        # so that with m = 1 the pairs are exactly (users, users) × (pos, neg).
        neg_flat = neg.T.reshape(-1)
        ch = model.encode(self.graphs, self.image_feat, self.text_feat)
        emb = model.encoder.embedding
        nu = model.n_users
        # One index_select per table, split afterwards: each gather's backward scatters into a
        # fresh dense [N, d] gradient, so three gathers cost three of those plus their sums.
        reg = cfg.train.reg_weight * l2_reg(*emb.index_select(0, torch.cat([users, pos + nu, neg[:, 0] + nu])).split(n))
        zero = torch.zeros((), device=users.device)
        pair_users = users.repeat(1 + m)
        if base_only:
            rows = ch.h_b.index_select(0, torch.cat([pair_users, pos + nu, neg_flat + nu]))
            base = (rows[:(1 + m) * n] * rows[(1 + m) * n:]).sum(-1)
            bpr = self._ranking_loss(base, n, m)
            loss = bpr + reg
            scalars = torch.stack([loss, bpr, zero, zero, zero, reg, zero, zero]).detach()
            return loss, torch.cat([scalars, torch.zeros(2 * N_EXPERTS, device=users.device)])
        positive = torch.arange(len(pair_users), device=users.device) < n  # the first n pairs: (user, pos)
        out = model.score_pairs(ch, pair_users, torch.cat([pos, neg_flat]), params.route, positive)
        bpr = self._ranking_loss(out.score, n, m)
        vc = zero
        if cfg.train.vc_weight > 0 and ch.b_augmented is not None:
            u_nodes = torch.unique(users)
            i_nodes = torch.unique(pos) + nu
            nodes, k = torch.cat([u_nodes, i_nodes]), len(u_nodes)
            z_int = ch.b_interaction.index_select(0, nodes)
            z_aug = ch.b_augmented.index_select(0, nodes)
            vc = (info_nce(z_int[:k], z_aug[:k], cfg.model.vc_tau)
                  + info_nce(z_int[k:], z_aug[k:], cfg.model.vc_tau))
        lb = entropy_term = h = pair_entropy = zero
        shares = gates_mean = torch.zeros(N_EXPERTS, device=users.device)
        if out.probs is not None:
            h = routing_entropy(out.probs)
            pair_entropy = normalized_entropy(out.probs).mean()
            lb = load_balance_loss(out.probs, out.gates)
            entropy_term = params.entropy_coef * pair_entropy
            slots = (out.gates > 0).float()
            shares = slots.sum(0) / slots.sum()
            gates_mean = out.gates.mean(0)
        loss = bpr + reg + cfg.train.vc_weight * vc + params.lb_weight * lb + entropy_term
        scalars = torch.stack([loss, bpr, vc, lb, entropy_term, reg, h, pair_entropy]).detach()
        return loss, torch.cat([scalars, shares.detach(), gates_mean.detach()])

    def _ranking_loss(self, scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
        """``train.loss`` of pair scores [(1 + m)·n] laid out as n positives, then the m
        negative columns (see :meth:`forward`)."""
        tc = self.config.train
        return ranking_loss(tc.loss, scores[:n], scores[n:].view(m, n).T, tc.softmax_tau)
