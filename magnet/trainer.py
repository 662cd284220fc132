"""Training loop (spec §5–§6): BPR with uniform negatives, routing schedule, early stopping
on the validation split, one row of trace per step.

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
from tqdm.auto import tqdm

from .config import RunConfig, validate_config
from .data import Dataset
from .evaluate import evaluate, popularity_buckets
from .graphs import GraphBundle, build_graphs
from .losses import bpr_loss, info_nce, l2_reg
from .model import EXPERT_NAMES, MAGNET, RouteParams
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
                   buckets: np.ndarray | None = None) -> dict[str, dict]:
    """Full-ranking metrics of ``model`` on ``splits`` of ``data`` (one pass of scores)."""
    pre = model.precompute(graphs, image_feat, text_feat)
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

    def sample(self, users: torch.Tensor, max_rounds: int = 10) -> torch.Tensor:
        """One negative item per entry of ``users`` [n] → [n]."""
        items = torch.randint(self.n_items, users.shape, generator=self.generator)
        for _ in range(max_rounds):
            bad = self.is_positive(users, items)
            if not bool(bad.any()):
                break
            items[bad] = torch.randint(self.n_items, (int(bad.sum()),), generator=self.generator)
        return items


class Trainer:
    """Trains one :class:`MAGNET` on one :class:`Dataset` according to a :class:`RunConfig`."""

    def __init__(self, config: RunConfig, data: Dataset, progress: bool = True,
                 log: Callable[[str], None] | None = None) -> None:
        validate_config(config)
        self.config = config
        self.data = data
        self.progress = progress
        self.log = log or (lambda message: None)
        self.device = resolve_device(config.device)
        seed_everything(config.train.seed)
        self.graphs, self.image_feat, self.text_feat = model_inputs(config, data, self.device)
        self.model = MAGNET(data.n_users, data.n_items, config,
                            None if data.image_feat is None else data.image_feat.shape[1],
                            None if data.text_feat is None else data.text_feat.shape[1]).to(self.device)
        self.optimizer = self._make_optimizer()
        self.controller = RoutingController(config.routing, enabled=config.model.use_experts)
        self.generator = torch.Generator().manual_seed(config.train.seed)
        self.train_pairs = torch.from_numpy(data.train.astype(np.int64))
        self.sampler = NegativeSampler(self.train_pairs, data.n_items, self.generator)
        self.buckets = popularity_buckets(data.train, data.n_items, config.graph.tail_quantile)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        """Adam with three parameter groups: graph encoder, expert projections, router."""
        tc = self.config.train
        named = list(self.model.named_parameters())
        experts = [p for n, p in named if n.startswith("experts.")]
        router = [p for n, p in named if n.startswith("router.")]
        other = [p for n, p in named if not n.startswith(("experts.", "router."))]
        groups = [{"params": other, "lr": tc.lr}]
        if experts:
            groups.append({"params": experts, "lr": tc.lr * tc.expert_lr_scale,
                           "weight_decay": tc.expert_weight_decay})
        if router:
            groups.append({"params": router, "lr": tc.lr * tc.router_lr_scale})
        return torch.optim.Adam(groups)

    # ------------------------------------------------------------------ one step
    def step(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
             params: StepParams) -> torch.Tensor:
        """One optimisation step on a batch; returns the trace scalars (TRACE_SCALARS, then
        per-expert Top-K share and mean gate) as one tensor."""
        cfg, model = self.config, self.model
        n = len(users)
        route = RouteParams(params.tau, params.k, params.noise)
        ch = model.encode(self.graphs, self.image_feat, self.text_feat)
        out = model.score_pairs(ch, torch.cat([users, users]), torch.cat([pos, neg]), route)
        bpr = bpr_loss(out.score[:n], out.score[n:])
        emb = model.encoder.embedding
        nu = model.n_users
        reg = cfg.train.reg_weight * l2_reg(emb[users], emb[pos + nu], emb[neg + nu])
        zero = torch.zeros((), device=self.device)
        vc = zero
        if cfg.train.vc_weight > 0 and ch.b_augmented is not None:
            u_nodes = torch.unique(users)
            i_nodes = torch.unique(pos) + nu
            vc = (info_nce(ch.b_interaction[u_nodes], ch.b_augmented[u_nodes], cfg.model.vc_tau)
                  + info_nce(ch.b_interaction[i_nodes], ch.b_augmented[i_nodes], cfg.model.vc_tau))
        lb = entropy_term = h = pair_entropy = zero
        shares = gates_mean = torch.zeros(len(EXPERT_NAMES), device=self.device)
        if out.probs is not None:
            h = routing_entropy(out.probs)
            pair_entropy = normalized_entropy(out.probs).mean()
            lb = load_balance_loss(out.probs, out.gates)
            entropy_term = params.entropy_coef * pair_entropy
            slots = (out.gates > 0).float()
            shares = slots.sum(0) / slots.sum()
            gates_mean = out.gates.mean(0)
        loss = bpr + reg + cfg.train.vc_weight * vc + params.lb_weight * lb + entropy_term
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        scalars = torch.stack([loss, bpr, vc, lb, entropy_term, reg, h, pair_entropy]).detach()
        return torch.cat([scalars, shares.detach(), gates_mean.detach()])

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, splits: tuple[str, ...]) -> dict[str, dict]:
        self.model.eval()
        result = evaluate_model(self.model, self.config, self.data, self.graphs, self.image_feat,
                                self.text_feat, splits, self.device, self.buckets)
        self.model.train()
        return result

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
            stats, step_params = [], []
            for begin in range(0, n_train, cfg.batch_size):
                batch = self.train_pairs[order[begin:begin + cfg.batch_size]]
                users, pos = batch[:, 0], batch[:, 1]
                neg = self.sampler.sample(users)
                params = self.controller.params()
                stats.append(self.step(users.to(self.device), pos.to(self.device),
                                       neg.to(self.device), params))
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
                valid = self.evaluate(("valid",))["valid"]
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
            if snapshot is not None:
                save_snapshot(snapshot, loop=loop, model=self.model, best_state=best_state,
                              optimizer=self.optimizer, controller_state=self.controller.state_dict(),
                              generator=self.generator, fingerprint=self.data.fingerprint,
                              config=self.config.to_dict())
            if loop.stopped:
                break
        self.model.load_state_dict(best_state)
        metrics = self.evaluate(("valid", "test"))
        metrics["best_epoch"] = loop.best_epoch
        metrics["selected_by"] = f"valid {select}"
        return TrainState(self.model, self.controller, metrics, pd.DataFrame(loop.rows), loop.history,
                          loop.best_epoch, loop.epoch, time.perf_counter() - start, str(self.device))

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
