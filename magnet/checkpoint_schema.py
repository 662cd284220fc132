"""Typed checks of the files of a checkpoint directory (config.json, metrics.json, switch.json,
trace.csv, projection.npz, planted_truth.npz), so that every reader (the CLI, the library, each
dashboard page) gets values of the types it uses or one :class:`CheckpointError` naming the file.
Torch-free: :mod:`magnet.checkpoint` calls these after parsing each file.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import CheckpointError

MAX_COUNT = 2 ** 31 - 1  # users, items, feature widths: int32 indices throughout
TRACE_COLUMNS: tuple[str, ...] = ("step", "H", "H_ema", "tau", "k", "loss")
"""Columns every trace.csv has (the routing and overview pages plot them)."""
SWITCH_REASONS: tuple[str, ...] = ("trigger", "fixed", "fallback", "none")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_count(value: Any, low: int = 0, high: int = MAX_COUNT) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _need(ok: bool, message: str, path: Path) -> None:
    if not ok:
        raise CheckpointError(message, path)


def _optional(section: dict[str, Any], key: str, test, what: str, where: str, path: Path) -> None:
    if section.get(key) is not None:
        _need(test(section[key]), f"{where}{key} must be {what}, got {_short(section[key])}", path)


# ----------------------------------------------------------------------------- config.json
def check_format_version(info: Any, path: Path, version: int) -> None:
    _need(isinstance(info, dict) and "format_version" in info, "no format_version: not a MAGNET checkpoint",
          path)
    found = info["format_version"]
    _need(is_count(found), f"format_version must be an integer, got {_short(found)}", path)
    _need(found == version, f"format_version {found} is not supported (this version reads {version})", path)


DATASET_COUNTS = ("n_train", "n_valid", "n_test")
INFO_INTS = ("seed", "epochs_run", "best_epoch", "steps_run", "world_size")
INFO_TEXTS = ("device", "device_name", "git_commit", "created_at", "torch_version", "python_version")


def check_info(info: dict[str, Any], path: Path) -> None:
    """config.json beyond its run config: the dataset section and the run's facts."""
    for key in ("run", "dataset"):
        _need(isinstance(info.get(key), dict), f"missing or malformed '{key}' section", path)
    ds = info["dataset"]
    for key in ("n_users", "n_items"):
        _need(is_count(ds.get(key), 1), f"dataset.{key} must be an integer in 1..{MAX_COUNT}, got "
                                         f"{_short(ds.get(key))}", path)
    for key in ("image_dim", "text_dim"):
        _optional(ds, key, lambda v: is_count(v, 1), f"an integer in 1..{MAX_COUNT}", "dataset.", path)
    for key in DATASET_COUNTS:
        _optional(ds, key, is_count, "a count", "dataset.", path)
    for key in ("spec", "name", "path", "relative_path", "fingerprint"):
        _optional(ds, key, lambda v: isinstance(v, str), "a string", "dataset.", path)
    _optional(info, "train_seconds", lambda v: is_number(v) and math.isfinite(v) and v >= 0,
              "a number of seconds", "", path)
    for key in INFO_INTS:
        _optional(info, key, lambda v: is_count(v, 0, 2 ** 63 - 1), "a count", "", path)
    for key in INFO_TEXTS:
        _optional(info, key, lambda v: isinstance(v, str), "a string", "", path)


# ----------------------------------------------------------------------------- metrics.json
def _check_split(block: Any, where: str, path: Path) -> None:
    """A split's metrics: numbers by name, and ``buckets`` of such blocks."""
    _need(isinstance(block, dict), f"{where} must be an object of metrics, got {_short(block)}", path)
    for key, value in block.items():
        if key == "buckets":
            _need(isinstance(value, dict), f"{where}.buckets must be an object, got {_short(value)}", path)
            for bucket, sub in value.items():
                _check_split(sub, f"{where}.buckets.{bucket}", path)
        else:
            _need(is_number(value), f"{where}.{key} must be a number, got {_short(value)}", path)


def check_metrics(metrics: Any, path: Path) -> None:
    """metrics.json: valid and test blocks, optional popularity blocks, history and best epoch."""
    _need(isinstance(metrics, dict), f"expected a JSON object of metrics, got {type(metrics).__name__}", path)
    for split in ("valid", "test"):
        _need(split in metrics, f"missing the {split} metrics", path)
        _check_split(metrics[split], split, path)
    popularity = metrics.get("popularity")
    if popularity is not None:
        _need(isinstance(popularity, dict), "popularity must be an object", path)
        for split, block in popularity.items():
            _check_split(block, f"popularity.{split}", path)
    history = metrics.get("history", [])
    _need(isinstance(history, list), f"history must be a list, got {_short(history)}", path)
    for j, row in enumerate(history):
        _check_split(row, f"history[{j}]", path)
    _optional(metrics, "best_epoch", is_count, "a count", "", path)
    _optional(metrics, "selected_by", lambda v: isinstance(v, str), "a string", "", path)


# ----------------------------------------------------------------------------- switch.json
def check_switch(switch: Any, path: Path) -> None:
    """switch.json: the step and epoch of the switch (null when none happened), and why."""
    _need(isinstance(switch, dict), f"expected a JSON object, got {type(switch).__name__}", path)
    for key in ("step", "epoch"):
        _optional(switch, key, is_count, "a step count or null", "", path)
    reason = switch.get("reason", "none")
    _need(reason in SWITCH_REASONS, f"reason must be one of {', '.join(SWITCH_REASONS)}, got {_short(reason)}",
          path)
    _optional(switch, "h_ema", is_number, "a number", "", path)


# ----------------------------------------------------------------------------- trace.csv
def check_trace(trace: pd.DataFrame, path: Path) -> None:
    """trace.csv: the columns the pages plot, numeric (per-expert columns too, when present)."""
    missing = [c for c in TRACE_COLUMNS if c not in trace.columns]
    _need(not missing, f"missing column(s) {', '.join(missing)} (a trace has {', '.join(TRACE_COLUMNS)})", path)
    numeric = [c for c in trace.columns if c in TRACE_COLUMNS or str(c).startswith(("gate_", "share_"))]
    for column in numeric:
        kind = trace[column].dtype.kind
        _need(kind in "fiub" or (kind == "O" and trace[column].isna().all()),
              f"column {column} is not numeric", path)


# ----------------------------------------------------------------------------- npz files
def _check_xy(arrays: dict[str, np.ndarray], key: str, rows: int, what: str, path: Path) -> None:
    _need(key in arrays, f"missing array {key}", path)
    arr = arrays[key]
    _need(arr.dtype.kind in "fiu" and arr.ndim == 2 and arr.shape[1] == 2,
          f"{key} must be a numeric [{what}, 2] array, got {arr.dtype} {list(arr.shape)}", path)
    _need(arr.shape[0] == rows, f"{key} has {arr.shape[0]} rows but config.json says {rows} {what}", path)
    _need(bool(np.isfinite(arr).all()), f"{key} contains NaN or inf", path)


def check_projection(projection: dict[str, np.ndarray], n_users: int, n_items: int, path: Path) -> None:
    """projection.npz: item_xy [I, 2] and user_xy [U, 2], finite; ``method`` a string if present."""
    _check_xy(projection, "item_xy", n_items, "items", path)
    _check_xy(projection, "user_xy", n_users, "users", path)
    if "method" in projection:
        _need(projection["method"].dtype.kind == "U" and projection["method"].size == 1,
              "method must be one string", path)


def check_planted(planted: dict[str, np.ndarray], n_users: int, path: Path) -> None:
    """planted_truth.npz: the planted reliance [U, 3] when present."""
    if "reliance" in planted:
        arr = planted["reliance"]
        _need(arr.dtype.kind in "fiu" and arr.shape == (n_users, 3),
              f"reliance must be a numeric [{n_users}, 3] array, got {arr.dtype} {list(arr.shape)}", path)


def first_non_finite(tensors: Mapping[str, Any]) -> str | None:
    """The name of the first floating-point tensor holding NaN or inf, else None."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            return name
    return None


__all__ = ["TRACE_COLUMNS", "check_format_version", "check_info", "check_metrics", "check_planted", "first_non_finite",
           "check_projection", "check_switch", "check_trace"]
