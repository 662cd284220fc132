"""Training loop (spec §5–§6): BPR (or sampled softmax) with uniform negatives, routing
schedule, early stopping on the validation split, one row of trace per step.

The test split is never looked at here except once, for the final (best-on-valid) model.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import RunConfig, validate_config
from .data import Dataset
from .distributed import (DistContext, all_reduce_mean, broadcast_object, pad_to_multiple, rank_seed,
                          shard, wrap_ddp)
from .errors import ConfigError
from .evaluate import evaluate, popularity_buckets
from .graphs import GraphBundle, build_graphs
from .losses import info_nce, l2_reg, ranking_loss
from .model import EXPERT_NAMES, MAGNET, Precomputed, RouteParams
from .model.router import load_balance_loss, normalized_entropy, routing_entropy
from .routing import RoutingController, StepParams
from .snapshot import LoopState, load_snapshot, save_snapshot

TRACE_SCALARS: tuple[str, ...] = ("loss", "bpr", "vc", "lb", "entropy_term", "reg", "H", "pair_entropy")


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        from .errors import ConfigError
        raise ConfigError("--device cuda was asked for but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def model_inputs(config: RunConfig, data: Dataset, device: torch.device
                 ) -> tuple[GraphBundle, torch.Tensor | None, torch.Tensor | None]:
    """Graphs and item features [I, d_A], [I, d_S] on ``device`` (features None for behaviour-only)."""
    use_content = config.model.use_aug_view
    graphs = build_graphs(data.train, data.n_users, data.n_items, config.graph,
                          data.image_feat, data.text_feat, with_content=use_content).to(device)
    to_tensor = (lambda a: None if a is None or not use_content else torch.from_numpy(a).to(device))
    return graphs, to_tensor(data.image_feat), to_tensor(data.text_feat)


def evaluate_model(model: MAGNET, config: RunConfig, data: Dataset, graphs: GraphBundle,
                   image_feat: torch.Tensor | None, text_feat: torch.Tensor | None,
                   splits: tuple[str, ...], device: torch.device | str,
                   buckets: np.ndarray | None = None, pre: Precomputed | None = None) -> dict[str, dict]:
    """Full-ranking metrics of ``model`` on ``splits`` of ``data`` (one pass of scores);
    ``pre``: the model's :meth:`~MAGNET.precompute` of these inputs if already made."""
    pre = pre if pre is not None else model.precompute(graphs, image_feat, text_feat)
    if buckets is None:
        buckets = popularity_buckets(data.train, data.n_items, config.graph.tail_quantile)
    return evaluate(lambda users: model.score_users(pre, users), data.n_users, data.n_items, data.train,
                    {s: getattr(data, s) for s in splits}, ks=config.train.topks,
                    batch_users=config.train.eval_batch_users, device=device, buckets=buckets)


@dataclass
class TrainState:
    """What a trained run hands to the checkpoint writer."""

    model: MAGNET
    controller: RoutingController
    metrics: dict[str, Any]
    trace: pd.DataFrame
    history: list[dict[str, Any]] = field(default_factory=list)  # per-evaluation valid metrics
    best_epoch: int = 0
    epochs_run: int = 0
    train_seconds: float = 0.0
    device: str = "cpu"


class NegativeSampler:
    """Uniform negatives that are not training positives of the user (vectorised rejection)."""

    def __init__(self, train: torch.Tensor, n_items: int, generator: torch.Generator) -> None:
        self.n_items = n_items
        self.keys = torch.sort(train[:, 0] * n_items + train[:, 1]).values
        self.generator = generator

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        keys = users * self.n_items + items
        pos = torch.searchsorted(self.keys, keys).clamp_max(len(self.keys) - 1)
        return self.keys[pos] == keys

    def sample(self, users: torch.Tensor, m: int | None = None, max_rounds: int = 10) -> torch.Tensor:
        """One negative item per entry of ``users`` [n] → [n]; with ``m``, m per entry → [n, m]
        (column j is one draw for every user, so m = 1 draws exactly what ``m=None`` does)."""
        if m is not None:
            return self.sample(users.repeat(m), max_rounds=max_rounds).view(m, len(users)).T
        items = torch.randint(self.n_items, users.shape, generator=self.generator)
        for _ in range(max_rounds):
            bad = self.is_positive(users, items)
            if not bool(bad.any()):
                break
            items[bad] = torch.randint(self.n_items, (int(bad.sum()),), generator=self.generator)
        return items


def check_divisible_batch(batch_size: int, world_size: int) -> None:
    """Each global batch must split into equal per-rank shards."""
    if batch_size % world_size:
        raise ConfigError(f"train.batch_size {batch_size} is not divisible by the {world_size} "
                          "processes of this launch (WORLD_SIZE); pick a multiple")


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
            return loss, torch.cat([scalars, torch.zeros(2 * len(EXPERT_NAMES), device=users.device)])
        route = RouteParams(params.tau, params.k, params.noise)
        out = model.score_pairs(ch, pair_users, torch.cat([pos, neg_flat]), route)
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
        shares = gates_mean = torch.zeros(len(EXPERT_NAMES), device=users.device)
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


class Trainer:
    """Trains one :class:`MAGNET` on one :class:`Dataset` according to a :class:`RunConfig`."""

    def __init__(self, config: RunConfig, data: Dataset, progress: bool = True,
                 log: Callable[[str], None] | None = None, dist: DistContext | None = None) -> None:
        """``dist`` (from :func:`magnet.distributed.init_distributed`): train data-parallel;
        only rank 0 logs, shows progress, evaluates and writes snapshots."""
        validate_config(config)
        self.config = config
        self.data = data
        self.dist = dist or DistContext()
        check_divisible_batch(config.train.batch_size, self.dist.world_size)
        if self.dist.enabled and config.train.warmup_epochs > 0 and config.model.use_experts:
            # Warm-up steps leave the mixture's parameters without gradient, which DDP rejects.
            raise ConfigError("train.warmup_epochs > 0 is single-process only (not under torchrun)")
        self.progress = progress and self.dist.is_main
        self.log = (log if self.dist.is_main else None) or (lambda message: None)
        self.device = self.dist.device if self.dist.enabled else resolve_device(config.device)
        seed_everything(config.train.seed)
        self.graphs, image_raw, text_raw = model_inputs(config, data, self.device)
        self.model = MAGNET(data.n_users, data.n_items, config,
                            None if data.image_feat is None else data.image_feat.shape[1],
                            None if data.text_feat is None else data.text_feat.shape[1]).to(self.device)
        self.model.fit_content_basis(image_raw, text_raw)
        self.image_feat, self.text_feat = self.model.content_inputs(image_raw, text_raw)
        self.objective = wrap_ddp(TrainingObjective(self.model, config, self.graphs, self.image_feat,
                                                    self.text_feat), self.dist)
        self.optimizer = self._make_optimizer()
        self.controller = RoutingController(config.routing, enabled=config.model.use_experts)
        # The epoch permutation comes from ``generator`` (shared by all ranks); under DDP the
        # negatives come from a per-rank generator reseeded every epoch (see _reseed_rank_streams).
        self.generator = torch.Generator().manual_seed(config.train.seed)
        self.neg_generator = torch.Generator() if self.dist.enabled else self.generator
        self.train_pairs = torch.from_numpy(data.train.astype(np.int64))
        self.sampler = NegativeSampler(self.train_pairs, data.n_items, self.neg_generator)
        self.buckets = popularity_buckets(data.train, data.n_items, config.graph.tail_quantile)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        """Adam (fused) with four parameter groups: ID embeddings and fusion (no decay; their L2
        is the batch ``reg_weight`` term), content projections W_A/W_S, experts, router."""
        tc = self.config.train
        named = list(self.model.named_parameters())
        content = [p for n, p in named if n.startswith(("encoder.proj_image.", "encoder.proj_text."))]
        experts = [p for n, p in named if n.startswith("experts.")]
        router = [p for n, p in named if n.startswith("router.")]
        grouped = {id(p) for p in content + experts + router}
        other = [p for _, p in named if id(p) not in grouped]
        groups = [{"params": other, "lr": tc.lr}]
        if content:
            groups.append({"params": content, "lr": tc.lr, "weight_decay": tc.content_weight_decay})
        if experts:
            groups.append({"params": experts, "lr": tc.lr * tc.expert_lr_scale,
                           "weight_decay": tc.expert_weight_decay})
        if router:
            groups.append({"params": router, "lr": tc.lr * tc.router_lr_scale})
        # fused: one kernel per parameter instead of ~6 elementwise passes (the 26k × 64
        # embedding's update was ~4 ms of a 15 ms behaviour-only step on Baby at 2 threads).
        return torch.optim.Adam(groups, fused=True)

    # ------------------------------------------------------------------ one step
    def step(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
             params: StepParams, base_only: bool = False) -> torch.Tensor:
        """One optimisation step on a batch (this rank's shard under DDP), users/pos [n], neg [n]
        or [n, m];
        returns this rank's trace scalars (TRACE_SCALARS, then per-expert Top-K share and mean
        gate) as one tensor [len(TRACE_SCALARS) + 2·9]. ``base_only``: a behaviour warm-up step
        (see :meth:`TrainingObjective.forward`)."""
        if base_only:
            loss, scalars = self.objective(users, pos, neg, params, base_only=True)
        else:
            loss, scalars = self.objective(users, pos, neg, params)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under DDP: gradients averaged over ranks here
        self.optimizer.step()
        return scalars

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, splits: tuple[str, ...]) -> dict[str, dict]:
        self.model.eval()
        result = evaluate_model(self.model, self.config, self.data, self.graphs, self.image_feat,
                                self.text_feat, splits, self.device, self.buckets)
        self.model.train()
        return result

    def _evaluate_shared(self, splits: tuple[str, ...]) -> dict[str, dict]:
        """:meth:`evaluate` on rank 0, broadcast to every rank (so all take the same decisions)."""
        return broadcast_object(self.evaluate(splits) if self.dist.is_main else None, self.dist)

    # ------------------------------------------------------------------ data-parallel batches
    def _reseed_rank_streams(self, epoch: int) -> None:
        """Under DDP: distinct negatives and logit noise per rank, reproducible per epoch."""
        seed, rank = self.config.train.seed, self.dist.rank
        self.neg_generator.manual_seed(rank_seed(seed, rank, epoch, 0))
        torch.manual_seed(rank_seed(seed, rank, epoch, 1))

    def _batches(self, order: torch.Tensor) -> list[torch.Tensor]:
        """Index tensors of this rank's part of each global batch of the permutation ``order``
        [n_train] (the whole batch when single-process); the same count on every rank."""
        size, ctx = self.config.train.batch_size, self.dist
        if ctx.enabled:
            order = pad_to_multiple(order, ctx.world_size)
        batches = [order[begin:begin + size] for begin in range(0, len(order), size)]
        return [shard(b, ctx.rank, ctx.world_size) for b in batches] if ctx.enabled else batches

    # ------------------------------------------------------------------ loop
    def fit(self, snapshot: Path | None = None, resume: bool = False,
            on_evaluate: Callable[[int, dict[str, Any]], None] | None = None) -> TrainState:
        """Train until ``epochs`` or early stopping; with ``snapshot`` set, save the loop state
        there after every epoch, and with ``resume`` continue from it when it exists.

        ``on_evaluate(epoch, valid_metrics)`` is called after every validation pass (a tuner
        prunes a trial by raising from it)."""
        cfg = self.config.train
        select = cfg.select_metric
        loop, best_state = LoopState(), None
        if resume and snapshot is not None and snapshot.is_dir():
            loop, controller_state, best_state = load_snapshot(
                snapshot, model=self.model, optimizer=self.optimizer, generator=self.generator,
                fingerprint=self.data.fingerprint, config=self.config.to_dict())
            self.controller.load_state_dict(controller_state)
            self.log(f"resumed from {snapshot} after epoch {loop.epoch}")
        start = time.perf_counter() - loop.elapsed
        n_train = len(self.train_pairs)
        epochs = tqdm(range(loop.epoch + 1, cfg.epochs + 1), desc=f"train {self.config.variant}",
                      disable=not self.progress or loop.stopped, unit="epoch")
        for epoch in ([] if loop.stopped else epochs):
            self.model.train()
            order = torch.randperm(n_train, generator=self.generator)
            if self.dist.enabled:
                self._reseed_rank_streams(epoch)
            if self._in_warmup(epoch):
                self._warmup_epoch(order)
                loop.epoch = epoch
                loop.elapsed = time.perf_counter() - start
                self._save_snapshot(snapshot, loop, best_state)
                continue
            stats, step_params = [], []
            for index in self._batches(order):
                batch = self.train_pairs[index]
                users, pos = batch[:, 0], batch[:, 1]
                neg = self.sampler.sample(users, self.config.train.n_negatives)
                params = self.controller.params()
                # Mean over ranks: every rank sees the same H and switches at the same step.
                stats.append(all_reduce_mean(self.step(users.to(self.device), pos.to(self.device),
                                                       neg.to(self.device), params), self.dist))
                switch = self.controller.observe(float(stats[-1][TRACE_SCALARS.index("H")]), epoch)
                step_params.append((params, self.controller.h_ema))
                if switch is not None:
                    self.log(f"routing switch to specialization at step {switch['step']} "
                             f"(epoch {epoch}, {switch['reason']})")
            loop.rows.extend(self._trace_rows(epoch, step_params, torch.stack(stats).cpu().numpy()))
            loop.epoch = epoch
            if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                last = step_params[-1][0]
                self.model.set_eval_route(RouteParams(last.tau, last.k))
                valid = self._evaluate_shared(("valid",))["valid"]
                loop.history.append({"epoch": epoch, "step": self.controller.step,
                                     **{k: v for k, v in valid.items() if k != "buckets"}})
                epochs.set_postfix(loss=f"{loop.rows[-1]['loss']:.4f}", H=f"{loop.rows[-1]['H']:.3f}",
                                   regime=last.regime[:4], **{select: f"{valid[select]:.4f}"})
                if on_evaluate is not None:
                    on_evaluate(epoch, valid)
                if valid[select] > loop.best_score:
                    loop.best_score, loop.best_epoch, loop.waited = valid[select], epoch, 0
                    best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
                else:
                    loop.waited += 1
                    if loop.waited >= cfg.patience:
                        self.log(f"early stop at epoch {epoch}: best {select} {loop.best_score:.4f} "
                                 f"at epoch {loop.best_epoch}")
                        loop.stopped = True
            loop.elapsed = time.perf_counter() - start
            self._save_snapshot(snapshot, loop, best_state)
            if loop.stopped:
                break
        self.model.load_state_dict(best_state)
        metrics = self._evaluate_shared(("valid", "test"))
        metrics["best_epoch"] = loop.best_epoch
        metrics["selected_by"] = f"valid {select}"
        return TrainState(self.model, self.controller, metrics, pd.DataFrame(loop.rows), loop.history,
                          loop.best_epoch, loop.epoch, time.perf_counter() - start, str(self.device))

    def _in_warmup(self, epoch: int) -> bool:
        """Epochs 1..``warmup_epochs`` of a model with experts train the behaviour base alone."""
        return self.config.model.use_experts and epoch <= self.config.train.warmup_epochs

    def _warmup_epoch(self, order: torch.Tensor) -> None:
        """One behaviour warm-up epoch: BPR + L2 on the base score only. The mixture, the
        content projections, experts and router get no gradient (Adam skips them, decay
        included), the routing schedule does not advance, no trace rows are written and the
        model is not evaluated (its full-catalogue score would include the untrained mixture),
        so model selection starts with the first epoch after the warm-up."""
        params = self.controller.params()
        for index in self._batches(order):
            batch = self.train_pairs[index]
            users, pos = batch[:, 0], batch[:, 1]
            neg = self.sampler.sample(users, self.config.train.n_negatives)
            self.step(users.to(self.device), pos.to(self.device), neg.to(self.device), params,
                      base_only=True)

    def _save_snapshot(self, snapshot: Path | None, loop: LoopState,
                       best_state: dict[str, torch.Tensor] | None) -> None:
        """Save the loop state after an epoch (main process only; no-op without ``snapshot``)."""
        if snapshot is not None and self.dist.is_main:
            save_snapshot(snapshot, loop=loop, model=self.model, best_state=best_state,
                          optimizer=self.optimizer, controller_state=self.controller.state_dict(),
                          generator=self.generator, fingerprint=self.data.fingerprint,
                          config=self.config.to_dict())

    @staticmethod
    def _trace_rows(epoch: int, step_params: list[tuple[StepParams, float]],
                    stats: np.ndarray) -> list[dict[str, Any]]:
        rows = []
        n_scalar = len(TRACE_SCALARS)
        n_exp = len(EXPERT_NAMES)
        for (params, h_ema), values in zip(step_params, stats):
            row: dict[str, Any] = {"step": params.step, "epoch": epoch, "regime": params.regime,
                                   "H": float(values[TRACE_SCALARS.index("H")]), "H_ema": h_ema,
                                   "pair_entropy": float(values[TRACE_SCALARS.index("pair_entropy")]),
                                   "tau": params.tau, "k": params.k, "noise": params.noise,
                                   "ramp": params.ramp}
            for j, name in enumerate(TRACE_SCALARS):
                if name not in ("H", "pair_entropy"):
                    row[name] = float(values[j])
            for e, name in enumerate(EXPERT_NAMES):
                row[f"share_{name}"] = float(values[n_scalar + e])
                row[f"gate_{name}"] = float(values[n_scalar + n_exp + e])
            rows.append(row)
        return rows
