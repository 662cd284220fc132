"""End-to-end training runs: data → graphs → model → trainer → checkpoint directory.
(Reading a checkpoint back is :mod:`magnet.restore`.)"""
from __future__ import annotations

import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch

from .checkpoint import device_name, git_commit, save_checkpoint
from .config import RunConfig, apply_variant
from .data import DEFAULT_CACHE, Dataset, load_dataset
from .distributed import DistContext, barrier, cleanup, init_distributed, is_main_process
from .errors import DataError
from .evaluate import evaluate, popularity_buckets, popularity_score_fn
from .projection import project_nodes
from .restore import needs_features
from .snapshot import snapshot_dir
from .trainer import Trainer


def dataset_info(data: Dataset, spec: str, out_dir: Path) -> dict[str, Any]:
    """What config.json records about the data: how to find it again and how to recognise it."""
    root = Path(data.root).resolve()
    try:
        relative = os.path.relpath(root, Path(out_dir).resolve())
    except ValueError:  # different drives on Windows
        relative = None
    return {
        "spec": spec, "name": data.name, "path": str(root), "relative_path": relative,
        "fingerprint": data.fingerprint, "n_users": data.n_users, "n_items": data.n_items,
        "n_train": int(len(data.train)), "n_valid": int(len(data.valid)), "n_test": int(len(data.test)),
        "image_dim": None if data.image_feat is None else int(data.image_feat.shape[1]),
        "text_dim": None if data.text_feat is None else int(data.text_feat.shape[1]),
        "synthetic_features": bool(data.synthetic_features),
    }


def popularity_metrics(data: Dataset, ks: list[int], tail_quantile: float) -> dict[str, dict]:
    """Valid/test metrics of the popularity ranking (a floor every model must clear)."""
    score = popularity_score_fn(data.train, data.n_items, "cpu")
    return evaluate(score, data.n_users, data.n_items, data.train,
                    {"valid": data.valid, "test": data.test}, ks=ks,
                    buckets=popularity_buckets(data.train, data.n_items, tail_quantile))


def train_run(config: RunConfig, out_dir: str | Path, data: Dataset | None = None,
              projection: str = "umap", progress: bool = True,
              log: Callable[[str], None] | None = None, resume: bool = False) -> Path:
    """Train ``config`` and write its checkpoint directory to ``out_dir`` (atomically).

    A snapshot is kept beside ``out_dir`` after every epoch (see :mod:`magnet.snapshot`) and
    removed once the checkpoint is written; ``resume`` continues from it.

    Under ``torchrun`` every process trains its shard of each batch (see
    :mod:`magnet.distributed`) and only rank 0 writes the snapshot and the checkpoint."""
    ctx = init_distributed(config.device)
    try:
        out_dir = _train_and_write(config, Path(out_dir), data, projection, progress, log, resume, ctx)
        barrier(ctx)  # the checkpoint exists once any rank returns
    finally:
        cleanup(ctx)
    return out_dir


def _load_data_ranked(config: RunConfig, ctx: DistContext) -> Dataset:
    """Rank 0 loads (and may build the cached synthetic data) before the others read it."""
    def load() -> Dataset:
        return load_dataset(config.data, cache_dir=DEFAULT_CACHE, require_features=needs_features(config))

    data = load() if ctx.is_main else None
    barrier(ctx)
    return data if data is not None else load()


def _train_and_write(config: RunConfig, out_dir: Path, data: Dataset | None, projection: str,
                     progress: bool, log: Callable[[str], None] | None, resume: bool,
                     ctx: DistContext) -> Path:
    if data is None:
        data = _load_data_ranked(config, ctx)
    if needs_features(config) and (data.image_feat is None or data.text_feat is None):
        raise DataError(f"variant {config.variant} needs image_feat.npy and text_feat.npy", data.root)
    trainer = Trainer(config, data, progress=progress, log=log, dist=ctx)
    snapshot = snapshot_dir(out_dir)
    state = trainer.fit(snapshot=snapshot, resume=resume)
    if not ctx.is_main:
        return out_dir
    model = state.model
    pre = model.precompute(trainer.graphs, trainer.image_feat, trainer.text_feat)
    embeddings = (pre.flat if model.use_experts else pre.h[0]).cpu().numpy()
    proj = project_nodes(embeddings, data.n_users, projection, seed=config.train.seed)
    metrics = {**state.metrics, "history": state.history,
               "popularity": popularity_metrics(data, config.train.topks, config.graph.tail_quantile)}
    info = {
        "run": config.to_dict(),
        "dataset": dataset_info(data, config.data, out_dir),
        "device": state.device,
        "device_name": device_name(state.device),
        "seed": config.train.seed,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "train_seconds": round(state.train_seconds, 2),
        "epochs_run": state.epochs_run,
        "best_epoch": state.best_epoch,
        "steps_run": state.schedule.step,
        "world_size": ctx.world_size,
    }
    save_checkpoint(out_dir, info=info, model=model, metrics=metrics, trace=state.trace,
                    switch=state.schedule.switch, projection=proj, planted=data.planted,
                    encoded=pre.h)
    shutil.rmtree(snapshot, ignore_errors=True)
    return out_dir


def make_config(data: str, variant: str, base: RunConfig | None = None, device: str | None = None,
                epochs: int | None = None, seed: int | None = None) -> RunConfig:
    """A run config: ``base`` (or defaults) with the variant's switches and CLI overrides applied."""
    config = apply_variant(base or RunConfig(), variant)
    config.data = data
    if device is not None:
        config.device = device
    if epochs is not None:
        config.train.epochs = epochs
    if seed is not None:
        config.train.seed = seed
    return config


__all__ = ["is_main_process", "make_config", "popularity_metrics", "train_run"]
