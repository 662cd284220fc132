"""Training loop (spec §5–§6), in the shape of RecBole's trainer: :meth:`Trainer.fit` is a loop of
:meth:`~Trainer.train_epoch`, :meth:`~Trainer.validate` and :meth:`~Trainer.should_stop`, with
snapshots for ``--resume`` and a small callback protocol (:class:`TrainerCallback`) through
which the tuner prunes and the bench times epochs.

The loss is :class:`magnet.model.objective.TrainingObjective`, negatives come from
:class:`magnet.sampler.NegativeSampler`, routing settings from
:class:`magnet.schedule.RoutingSchedule`. The test split is never looked at here except once,
for the final (best-on-valid) model.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .checkpoint_schema import first_non_finite
from .config import RunConfig, validate_config
from .data import Dataset
from .distributed import (DistContext, all_reduce_mean, broadcast_object, check_divisible_batch,
                          pad_to_multiple, rank_seed, shard, wrap_ddp)
from .errors import ConfigError, TrainingError
from .evaluate import evaluate_model, popularity_buckets
from .inputs import model_inputs, resolve_device
from .model import MAGNET
from .model.objective import TRACE_SCALARS, TrainingObjective
from .sampler import NegativeSampler
from .schedule import RoutingSchedule, StepParams
from .snapshot import LoopState, load_snapshot, save_snapshot
from .vocab import EXPERT_NAMES


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global random streams."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class TrainerCallback:
    """Hooks into :meth:`Trainer.fit`; override what you need (the defaults do nothing).

    ``on_epoch_end`` follows every epoch's training steps (warm-up epochs included), before
    its validation; ``seconds`` is the training time of that epoch alone. ``on_evaluate``
    follows every validation pass, before early stopping is decided (raising from it stops
    ``fit``: a tuner prunes a trial that way)."""

    def on_epoch_end(self, trainer: "Trainer", epoch: int, seconds: float) -> None:
        pass

    def on_evaluate(self, trainer: "Trainer", epoch: int, valid: dict[str, Any]) -> None:
        pass


@dataclass
class TrainState:
    """What a trained run hands to the checkpoint writer."""

    model: MAGNET
    schedule: RoutingSchedule
    metrics: dict[str, Any]
    trace: pd.DataFrame
    history: list[dict[str, Any]] = field(default_factory=list)  # per-evaluation valid metrics
    best_epoch: int = 0
    epochs_run: int = 0
    train_seconds: float = 0.0
    device: str = "cpu"


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
        inputs = model_inputs(config, data, self.device)
        self.graphs = inputs.graphs
        self.model = MAGNET(data.n_users, data.n_items, config,
                            None if data.image_feat is None else data.image_feat.shape[1],
                            None if data.text_feat is None else data.text_feat.shape[1]).to(self.device)
        self.model.fit_content_basis(inputs.image_feat, inputs.text_feat)
        self.train_pairs = torch.from_numpy(data.train.astype(np.int64))  # [n, 2] (user, item)
        self.model.fit_cues(self.train_pairs, inputs.image_feat, inputs.text_feat)
        self.image_feat, self.text_feat = self.model.content_inputs(inputs.image_feat, inputs.text_feat)
        self.objective = wrap_ddp(TrainingObjective(self.model, config, self.graphs, self.image_feat,
                                                    self.text_feat), self.dist)
        self.optimizer = self._make_optimizer()
        self.schedule = RoutingSchedule(config.routing, enabled=config.model.use_experts)
        # The epoch permutation comes from ``generator`` (shared by all ranks); under DDP the
        # negatives come from a per-rank generator reseeded every epoch (see _reseed_rank_streams).
        self.generator = torch.Generator().manual_seed(config.train.seed)
        self.neg_generator = torch.Generator() if self.dist.enabled else self.generator
        self.sampler = NegativeSampler(self.train_pairs, data.n_items, self.neg_generator)
        self.buckets = popularity_buckets(data.train, data.n_items, config.graph.tail_quantile)
        self.best_state: dict[str, torch.Tensor] | None = None
        self._last_params: StepParams | None = None

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
        """Full-ranking metrics of the current model on ``splits`` (eval mode, then back)."""
        self.model.eval()
        pre = self.model.precompute(self.graphs, self.image_feat, self.text_feat)
        result = evaluate_model(self.model, pre, self.config, self.data, splits, self.device, self.buckets)
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

    def _batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Users, positives [n] and sampled negatives [n] or [n, m] of one batch, on the device."""
        batch = self.train_pairs[index]
        users, pos = batch[:, 0], batch[:, 1]
        neg = self.sampler.sample(users, self.config.train.n_negatives)
        return users.to(self.device), pos.to(self.device), neg.to(self.device)

    # ------------------------------------------------------------------ the loop's parts
    def train_epoch(self, epoch: int, loop: LoopState) -> bool:
        """Train one epoch; append its trace rows to ``loop``. Returns False for a behaviour
        warm-up epoch (nothing to validate or trace), True otherwise."""
        self.model.train()
        order = torch.randperm(len(self.train_pairs), generator=self.generator)
        if self.dist.enabled:
            self._reseed_rank_streams(epoch)
        if self._in_warmup(epoch):
            self._warmup_epoch(order, epoch)
            return False
        stats, step_params = [], []
        for index in self._batches(order):
            users, pos, neg = self._batch(index)
            params = self.schedule.params()
            # Mean over ranks: every rank sees the same H and switches at the same step.
            stats.append(all_reduce_mean(self.step(users, pos, neg, params), self.dist))
            self._check_finite(stats[-1], epoch)
            switch = self.schedule.observe(float(stats[-1][TRACE_SCALARS.index("H")]), epoch)
            step_params.append((params, self.schedule.h_ema))
            if switch is not None:
                self.log(f"routing switch to specialization at step {switch['step']} "
                         f"(epoch {epoch}, {switch['reason']})")
        loop.rows.extend(trace_rows(epoch, step_params, torch.stack(stats).cpu().numpy()))
        self._last_params = step_params[-1][0]
        return True

    def validation_due(self, epoch: int) -> bool:
        """Whether ``epoch`` ends with a validation pass (every ``eval_every``, and the last)."""
        return epoch % self.config.train.eval_every == 0 or epoch == self.config.train.epochs

    def validate(self, epoch: int, loop: LoopState) -> dict[str, Any]:
        """Valid metrics with the routing of the epoch's last step; recorded in ``loop.history``."""
        last = self._last_params
        self.model.set_eval_route(last.route)
        valid = self._evaluate_shared(("valid",))["valid"]
        loop.history.append({"epoch": epoch, "step": self.schedule.step,
                             **{k: v for k, v in valid.items() if k != "buckets"}})
        return valid

    def should_stop(self, epoch: int, valid: dict[str, Any], loop: LoopState) -> bool:
        """Keep the model if ``valid`` is the best so far, else count towards ``patience``;
        True (and ``loop.stopped``) once patience runs out."""
        select = self.config.train.select_metric
        if valid[select] > loop.best_score:
            loop.best_score, loop.best_epoch, loop.waited = valid[select], epoch, 0
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            return False
        loop.waited += 1
        if loop.waited >= self.config.train.patience:
            self.log(f"early stop at epoch {epoch}: best {select} {loop.best_score:.4f} "
                     f"at epoch {loop.best_epoch}")
            loop.stopped = True
        return loop.stopped

    # ------------------------------------------------------------------ loop
    def fit(self, snapshot: Path | None = None, resume: bool = False,
            callbacks: Sequence[TrainerCallback] = ()) -> TrainState:
        """Train until ``epochs`` or early stopping; with ``snapshot`` set, save the loop state
        there after every epoch, and with ``resume`` continue from it when it exists."""
        cfg = self.config.train
        select = cfg.select_metric
        loop = LoopState()
        if resume and snapshot is not None and snapshot.is_dir():
            loop = self._restore(snapshot)
        start = time.perf_counter() - loop.elapsed
        epochs = tqdm(range(loop.epoch + 1, cfg.epochs + 1), desc=f"train {self.config.variant}",
                      disable=not self.progress or loop.stopped, unit="epoch")
        for epoch in ([] if loop.stopped else epochs):
            began = time.perf_counter()
            trained = self.train_epoch(epoch, loop)
            self._check_finite_weights(epoch)
            for callback in callbacks:
                callback.on_epoch_end(self, epoch, time.perf_counter() - began)
            loop.epoch = epoch
            if trained and self.validation_due(epoch):
                valid = self.validate(epoch, loop)
                epochs.set_postfix(loss=f"{loop.rows[-1]['loss']:.4f}", H=f"{loop.rows[-1]['H']:.3f}",
                                   regime=self._last_params.regime[:4], **{select: f"{valid[select]:.4f}"})
                for callback in callbacks:
                    callback.on_evaluate(self, epoch, valid)
                self.should_stop(epoch, valid, loop)
            loop.elapsed = time.perf_counter() - start
            self._save_snapshot(snapshot, loop)
            if loop.stopped:
                break
        self.model.load_state_dict(self.best_state)
        metrics = self._evaluate_shared(("valid", "test"))
        metrics["best_epoch"] = loop.best_epoch
        metrics["selected_by"] = f"valid {select}"
        return TrainState(self.model, self.schedule, metrics, pd.DataFrame(loop.rows), loop.history,
                          loop.best_epoch, loop.epoch, time.perf_counter() - start, str(self.device))

    def _restore(self, snapshot: Path) -> LoopState:
        """Load the snapshot into the model, optimizer, generators and schedule."""
        loop, schedule_state, self.best_state = load_snapshot(
            snapshot, model=self.model, optimizer=self.optimizer, generator=self.generator,
            fingerprint=self.data.fingerprint, config=self.config.to_dict())
        self.schedule.load_state_dict(schedule_state)
        self.log(f"resumed from {snapshot} after epoch {loop.epoch}")
        return loop

    def _in_warmup(self, epoch: int) -> bool:
        """Epochs 1..``warmup_epochs`` of a model with experts train the behaviour base alone."""
        return self.config.model.use_experts and epoch <= self.config.train.warmup_epochs

    def _check_finite(self, scalars: torch.Tensor, epoch: int) -> None:
        """Stop at once when a step's loss terms are NaN or infinite (the same on every rank:
        ``scalars`` are reduced); the caller writes nothing, so no checkpoint keeps such weights."""
        if not bool(torch.isfinite(scalars).all()):
            loss = float(scalars[TRACE_SCALARS.index("loss")])
            raise TrainingError(f"training diverged: the loss became {loss} at step {self.schedule.step} "
                                f"(epoch {epoch}); check train.lr, the temperatures and the scale of the features")

    def _check_finite_weights(self, epoch: int) -> None:
        """After an epoch, before it is validated or snapshotted: every weight finite."""
        name = first_non_finite(dict(self.model.named_parameters()))
        if name is not None:
            raise TrainingError(f"training diverged: {name} holds NaN or inf after epoch {epoch}; "
                                "lower train.lr")

    def _warmup_epoch(self, order: torch.Tensor, epoch: int = 0) -> None:
        """One behaviour warm-up epoch: BPR + L2 on the base score only. The mixture, the
        content projections, experts and router get no gradient (Adam skips them, decay
        included), the routing schedule does not advance, no trace rows are written and the
        model is not evaluated (its full-catalogue score would include the untrained mixture),
        so model selection starts with the first epoch after the warm-up."""
        params = self.schedule.params()
        for index in self._batches(order):
            users, pos, neg = self._batch(index)
            self._check_finite(self.step(users, pos, neg, params, base_only=True), epoch)

    def _save_snapshot(self, snapshot: Path | None, loop: LoopState) -> None:
        """Save the loop state after an epoch (main process only; no-op without ``snapshot``)."""
        if snapshot is not None and self.dist.is_main:
            save_snapshot(snapshot, loop=loop, model=self.model, best_state=self.best_state,
                          optimizer=self.optimizer, schedule_state=self.schedule.state_dict(),
                          generator=self.generator, fingerprint=self.data.fingerprint,
                          config=self.config.to_dict())


def trace_rows(epoch: int, step_params: list[tuple[StepParams, float]], stats: np.ndarray
               ) -> list[dict[str, Any]]:
    """One trace.csv row per step: the step's settings and EMA of H, then its scalars ``stats``
    [steps, len(TRACE_SCALARS) + 2·9] (per expert: Top-K share, mean gate)."""
    rows = []
    n_scalar = len(TRACE_SCALARS)
    n_exp = len(EXPERT_NAMES)
    for (params, h_ema), values in zip(step_params, stats):
        route = params.route
        row: dict[str, Any] = {"step": params.step, "epoch": epoch, "regime": params.regime,
                               "H": float(values[TRACE_SCALARS.index("H")]), "H_ema": h_ema,
                               "pair_entropy": float(values[TRACE_SCALARS.index("pair_entropy")]),
                               "tau": route.tau, "k": route.k, "noise": route.noise,
                               "ramp": params.ramp}
        for j, name in enumerate(TRACE_SCALARS):
            if name not in ("H", "pair_entropy"):
                row[name] = float(values[j])
        for e, name in enumerate(EXPERT_NAMES):
            row[f"share_{name}"] = float(values[n_scalar + e])
            row[f"gate_{name}"] = float(values[n_scalar + n_exp + e])
        rows.append(row)
    return rows
