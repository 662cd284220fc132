"""End-to-end training runs: data → graphs → model → trainer → checkpoint directory.
(Reading a checkpoint back is :mod:`magnet.restore`.)"""
from __future__ import annotations

import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from .checkpoint import check_replaceable, device_name, foreign_entries, git_commit, save_checkpoint
from .config import DataShape, RunConfig, apply_variant, validate_config, validate_for_data, validate_memory
from .data import DEFAULT_CACHE, Dataset, load_dataset
from .distributed import DistContext, barrier, cleanup, init_distributed, is_main_process
from .errors import CheckpointError, ConfigError, DataError, TrainingError
from .evaluate import evaluate, popularity_buckets, popularity_score_fn
from .fileio import some_names, writable_dir
from .inputs import needs_features, resolve_device
from .projection import project_nodes
from .snapshot import snapshot_dir
from .trainer import Trainer

Log = Callable[[str], None]


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


# --------------------------------------------------------------------------------------------
# where a run may write: never over the user's files, its inputs or the working directory
# --------------------------------------------------------------------------------------------
def input_paths(spec: str, data: Dataset | None = None, config_file: str | Path | None = None) -> list[Path]:
    """What a run reads that is known before loading: the dataset directory (of a directory or
    ``synthfeat:`` spec, or of ``data``) and the config file. (A generated dataset's directory
    in the cache is checked once it is loaded.)"""
    paths = []
    if data is not None:
        paths.append(Path(data.root))
    if spec.startswith("synthfeat:"):
        paths.append(Path(spec[len("synthfeat:"):]))
    elif not spec.startswith("synthetic:"):
        paths.append(Path(spec))
    if config_file is not None:
        paths.append(Path(config_file))
    return [p.expanduser().resolve() for p in paths]


def _within(path: Path, other: Path) -> bool:
    return path == other or path.is_relative_to(other)


def check_target(target: Path, inputs: Sequence[Path]) -> None:
    """Refuse a folder to be (re)written when it holds the working directory or the dataset
    cache, or holds or lies in an input (``--out .``, ``--out`` = ``--data``, inside the data)."""
    if _within(Path.cwd().resolve(), target):
        raise ConfigError("is the working directory or holds it; choose a new folder for the output", target)
    cache = Path(DEFAULT_CACHE).expanduser().resolve()
    if _within(cache, target):
        raise ConfigError(f"holds the dataset cache {cache}; choose another folder", target)
    for source in inputs:
        if _within(target, source) or _within(source, target):
            raise ConfigError(f"would write into or over the input {source}; choose another folder", target)


def check_writable(target: Path) -> None:
    """Refuse before training when nothing can be created where ``target`` goes."""
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    reason = writable_dir(parent)
    if reason is not None:
        raise ConfigError(f"cannot write the output here ({reason})", parent)


def check_output(out: str | Path, inputs: Sequence[Path], overwrite: bool = False) -> Path:
    """``out`` resolved, once a checkpoint may be written there: not over an input or the working
    directory, only over one of our checkpoints (or any directory with ``overwrite``), in a
    folder we can write to. Raises a one-line :class:`MagnetError` otherwise."""
    out = Path(out).expanduser().resolve()
    check_target(out, inputs)
    check_replaceable(out, overwrite)
    check_writable(out)
    return out


SUMMARY_FILES = frozenset({"summary.csv", "summary.md", "summary_seeds.csv", "summary_seeds.md",
                           "summary_seeds_raw.csv"})


def _ours(entry: Path) -> bool:
    """Whether ``entry`` of an ablation folder is something ``magnet ablate`` writes."""
    name = entry.name
    if name.startswith("."):
        return name.endswith(".snapshot") or ".tmp-" in name or ".old-" in name
    if name in SUMMARY_FILES:
        return entry.is_file()
    if not entry.is_dir() or entry.is_symlink():
        return False
    if name == "dataset":
        return True
    if name.startswith("seed-"):
        return ablation_problem(entry) is None
    return foreign_entries(entry) == []


def ablation_problem(out: Path) -> str | None:
    """Why ``out`` is not a folder ``magnet ablate`` may write into (None: absent, empty, or
    holding only checkpoints, ``dataset/``, ``seed-*/`` folders and summaries)."""
    if not os.path.lexists(out):
        return None
    if not out.is_dir():
        return "exists and is not a directory"
    foreign = sorted(e.name for e in out.iterdir() if not _ours(e))
    if foreign:
        return (f"holds files that are not ours ({some_names(foreign)}); "
                "choose another --out, or pass --overwrite to write the checkpoints into it anyway")
    return None


def check_ablation_output(out: str | Path, variants: Sequence[str], inputs: Sequence[Path],
                          overwrite: bool = False, seeds: Sequence[int] | None = None) -> Path:
    """:func:`check_output` for ``magnet ablate``: ``out`` holds one checkpoint per variant
    (per seed folder with ``seeds``), ``dataset/`` and the summaries."""
    out = Path(out).expanduser().resolve()
    for source in inputs:
        if _within(out, source):
            raise ConfigError(f"would write into the input {source}; choose another folder", out)
    folders = [out] if not seeds else [out / f"seed-{s}" for s in seeds]
    problem = ablation_problem(out)
    if problem is not None and not (overwrite and out.is_dir()):
        raise CheckpointError(problem, out)
    for folder in folders:
        for target in [folder / v for v in variants] + [folder / "dataset"]:
            check_target(target, inputs)
    check_writable(out / "x")
    return out


# --------------------------------------------------------------------------------------------
# training runs
# --------------------------------------------------------------------------------------------
def train_run(config: RunConfig, out_dir: str | Path, data: Dataset | None = None,
              projection: str = "umap", progress: bool = True, log: Log | None = None,
              resume: bool = False, overwrite: bool = False, config_file: str | Path | None = None) -> Path:
    """Train ``config`` and write its checkpoint directory to ``out_dir`` (atomically).

    Before anything is loaded, ``out_dir`` is checked (:func:`check_output`: ``overwrite``
    allows replacing a directory that is not one of our checkpoints); before training, the
    config is checked against the data and the machine (errors name ``config_file``).
    A snapshot is kept beside ``out_dir`` after every epoch (see :mod:`magnet.snapshot`) and
    removed once the checkpoint is written; ``resume`` continues from it.

    Under ``torchrun`` every process trains its shard of each batch (see
    :mod:`magnet.distributed`) and only rank 0 writes the snapshot and the checkpoint."""
    validate_config(config, config_file)
    out = check_output(out_dir, input_paths(config.data, data, config_file), overwrite)
    ctx = init_distributed(config.device)
    try:
        out_dir = _train_and_write(config, out, data, projection, progress, log or (lambda m: None),
                                   resume, ctx, overwrite, config_file)
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


def device_memory(config: RunConfig, ctx: DistContext) -> int | None:
    """Free bytes on the GPU a run will use; None on CPU (then the machine's memory counts)."""
    device = ctx.device if ctx.enabled else resolve_device(config.device)
    if device.type != "cuda":
        return None
    return int(torch.cuda.mem_get_info(device)[0])


def check_run_fits(config: RunConfig, data: Dataset, ctx: DistContext, config_file: str | Path | None) -> None:
    """Refuse, before any model is built, a config the data or the machine cannot take."""
    if needs_features(config) and (data.image_feat is None or data.text_feat is None):
        raise DataError(f"variant {config.variant} needs image_feat.npy and text_feat.npy", data.root)
    width = (lambda a: 0 if a is None else int(a.shape[1]))
    shape = DataShape(data.n_users, data.n_items, width(data.image_feat), width(data.text_feat))
    validate_for_data(config, shape, config_file or data.root)
    validate_memory(config, shape, config_file or data.root, device_memory(config, ctx))


def _fit(trainer: Trainer, snapshot: Path, resume: bool, ctx: DistContext, out_dir: Path, log: Log):
    """``trainer.fit``; a diverged run leaves neither checkpoint nor snapshot behind."""
    if resume and not snapshot.is_dir():
        log(f"note: {out_dir}: no snapshot to resume from ({snapshot}); training from epoch 1")
    try:
        return trainer.fit(snapshot=snapshot, resume=resume)
    except TrainingError as exc:
        if ctx.is_main:
            shutil.rmtree(snapshot, ignore_errors=True)
        raise TrainingError(f"{exc}; no checkpoint written", out_dir) from None


def _train_and_write(config: RunConfig, out_dir: Path, data: Dataset | None, projection: str,
                     progress: bool, log: Log, resume: bool, ctx: DistContext, overwrite: bool,
                     config_file: str | Path | None) -> Path:
    if data is None:
        data = _load_data_ranked(config, ctx)
    check_target(out_dir, [Path(data.root).resolve()])  # a generated dataset's folder is known now
    log = log if ctx.is_main else (lambda m: None)
    for note in data.notes():
        log(f"note: {note}")
    check_run_fits(config, data, ctx, config_file)
    trainer = Trainer(config, data, progress=progress, log=log, dist=ctx)
    snapshot = snapshot_dir(out_dir)
    state = _fit(trainer, snapshot, resume, ctx, out_dir, log)
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
                    encoded=pre.h, overwrite=overwrite)
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


__all__ = ["check_ablation_output", "check_output", "input_paths", "is_main_process", "make_config",
           "popularity_metrics", "train_run"]
