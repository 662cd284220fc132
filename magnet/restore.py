"""Bringing a checkpoint back to life for reading: find the dataset it was trained on (and check
it is the same data), get its encoded channels (from the checkpoint's cache when it matches the
weights, else by encoding), and re-evaluate it. Nothing here trains."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .checkpoint import Checkpoint, load_checkpoint, read_encoded, write_encoded
from .config import RunConfig
from .data import DEFAULT_CACHE, Dataset, load_dataset
from .errors import CheckpointError
from .evaluate import evaluate_model
from .inputs import encode, needs_features
from .model import Precomputed


def _candidate(base: Path | None, text: str | None) -> Path | None:
    """Where config.json says the dataset is (``text``, relative to ``base`` when given), or None
    when it says nothing usable (empty, a NUL byte, a path that cannot be resolved)."""
    if not text:
        return None
    try:
        return (base / text).resolve() if base is not None else Path(text)
    except (OSError, ValueError, RuntimeError):
        return None


def dataset_for_checkpoint(ckpt: Checkpoint) -> Dataset:
    """Find the dataset a checkpoint was trained on and check it is the same one (fingerprint)."""
    ds = ckpt.info["dataset"]
    require = needs_features(ckpt.config)
    candidates = [c for c in (_candidate(ckpt.path, ds.get("relative_path")), _candidate(None, ds.get("path")))
                  if c is not None]
    data = None
    for root in candidates:
        if os.path.isdir(root):
            data = load_dataset(str(root), cache_dir=DEFAULT_CACHE, require_features=require)
            break
    if data is None:
        if str(ds.get("spec", "")).startswith("synthetic:"):
            data = load_dataset(ds["spec"], cache_dir=DEFAULT_CACHE, require_features=require)
        else:
            raise CheckpointError(f"its dataset was not found (looked in {', '.join(map(str, candidates))})",
                                  ckpt.path / "config.json")
    if data.fingerprint != ds.get("fingerprint"):
        raise CheckpointError(f"checkpoint was made for another dataset (fingerprint "
                              f"{str(ds.get('fingerprint'))[:12]}…, data at {data.root} has "
                              f"{data.fingerprint[:12]}…)", ckpt.path / "config.json")
    return data


@torch.no_grad()
def encoded(ckpt: Checkpoint, data: Dataset) -> Precomputed:
    """The checkpoint's channels on CPU, ready to score: from its ``encoded.safetensors`` when
    that was written for these weights (no graphs, no kNN), else encoded from ``data``."""
    cached = read_encoded(ckpt.path, ckpt.model.channel_shape())
    if cached is not None:
        return ckpt.model.precompute_from_channels(cached)
    return encode(ckpt, data, torch.device("cpu"))


def evaluate_checkpoint(path: str | Path, device: str = "cpu", cache_encoded: bool = False
                        ) -> tuple[Checkpoint, dict[str, dict]]:
    """Reload a checkpoint and its dataset and recompute valid/test metrics (always re-encoding,
    so the whole path from data to scores is checked); with ``cache_encoded``, also (re)write its
    encoded.safetensors (for checkpoints made before the cache existed, so the dashboard opens
    them without building graphs)."""
    ckpt = load_checkpoint(path, device=device)
    data = dataset_for_checkpoint(ckpt)
    pre = encode(ckpt, data, torch.device(device))
    if cache_encoded:
        write_encoded(ckpt.path, pre.h)
    metrics = evaluate_model(ckpt.model, pre, ckpt.config, data, ("valid", "test"), device)
    return ckpt, metrics


__all__ = ["dataset_for_checkpoint", "encoded", "evaluate_checkpoint"]
