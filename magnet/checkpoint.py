"""Checkpoint directories (spec §7): written atomically, loaded without unpickling.

Layout (``format_version`` 1)::

    config.json        run config, dataset reference + fingerprint, device, seed, git commit, timings
    model.safetensors  model state dict (tensors only)
    metrics.json       valid/test metrics (+ per popularity bucket), best epoch, valid history
    trace.csv          one row per training step
    switch.json        the coverage→specialization switch record (null fields if none happened)
    projection.npz     2-D projection of item and user embeddings (item_xy [I,2], user_xy [U,2])
    encoded.safetensors optional: the encoder's output channels h [C, U+I, d] for these weights
                       (tagged with model.safetensors' SHA-256), so explaining needs no graphs
    planted_truth.npz  synthetic data only: the planted per-user modality reliance
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import checkpoint_schema as schema
from .config import DataShape, RunConfig, validate_config, validate_for_data
from .errors import CheckpointError, ConfigError, MagnetError
from .fileio import (json_default, read_json_file, require_regular, some_names, write_atomic_dir,
                     write_file_atomic)
from .model import MAGNET

FORMAT_VERSION = 1
REQUIRED_FILES: tuple[str, ...] = ("config.json", "model.safetensors", "metrics.json", "trace.csv",
                                   "switch.json", "projection.npz")
OPTIONAL_FILES: tuple[str, ...] = ("planted_truth.npz", "encoded.safetensors")


def git_commit() -> str:
    """The project's current commit hash, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name(device: str) -> str:
    """Human-readable device, e.g. "cpu (2 threads)" or "cuda (NVIDIA H100 80GB HBM3)"."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(torch.device(device))})"
    return f"cpu ({torch.get_num_threads()} threads)"


def save_checkpoint(out_dir: str | Path, *, info: dict[str, Any], model: MAGNET,
                    metrics: dict[str, Any], trace: pd.DataFrame, switch: dict[str, Any] | None,
                    projection: dict[str, np.ndarray], planted: dict[str, np.ndarray] | None = None,
                    encoded: torch.Tensor | None = None, overwrite: bool = False) -> Path:
    """Write a complete checkpoint directory atomically. ``info`` becomes config.json
    (``format_version`` is added here); ``encoded`` [C, U+I, d], the model's encoded channels,
    is cached as encoded.safetensors when given. An existing ``out_dir`` is replaced only when
    it is one of our checkpoints (:func:`foreign_entries`), or with ``overwrite``."""
    out_dir = Path(out_dir)
    check_replaceable(out_dir, overwrite)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}

    def write(tmp: Path) -> None:
        (tmp / "config.json").write_text(json.dumps({"format_version": FORMAT_VERSION, **info},
                                                    indent=2, default=json_default))
        save_file(state, str(tmp / "model.safetensors"))
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=json_default))
        trace.to_csv(tmp / "trace.csv", index=False, float_format="%.6g")
        (tmp / "switch.json").write_text(json.dumps(
            switch or {"step": None, "epoch": None, "reason": "none"}, indent=2, default=json_default))
        np.savez(tmp / "projection.npz", **projection)
        if planted is not None:
            np.savez(tmp / "planted_truth.npz", **planted)
        if encoded is not None:
            write_encoded(tmp, encoded)

    write_atomic_dir(out_dir, write)
    return out_dir


ENCODED_FILE = "encoded.safetensors"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_encoded(directory: Path, h: torch.Tensor) -> None:
    """Cache channels ``h`` [C, U+I, d] next to the model.safetensors they were computed from
    (written to a temporary name, then renamed: never a half-written cache)."""
    tensors = {"h": h.detach().cpu().contiguous()}
    meta = {"model_sha256": _sha256(directory / "model.safetensors")}
    write_file_atomic(directory / ENCODED_FILE, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def read_encoded(path: str | Path, expected_shape: tuple[int, ...]) -> torch.Tensor | None:
    """The cached channels [C, U+I, d] of checkpoint ``path``, or None when there is no cache or
    it was computed from other weights or another shape (then the caller re-encodes).
    A corrupt cache raises :class:`CheckpointError` naming the file."""
    path = Path(path)
    file = checkpoint_file(path, ENCODED_FILE, required=False)
    if file is None:
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(file), framework="pt") as fh:
            meta = fh.metadata() or {}
            if meta.get("model_sha256") != _sha256(path / "model.safetensors"):
                return None
            h = fh.get_tensor("h")
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"corrupt encoded-channels cache ({str(exc).splitlines()[0][:120]})",
                              file) from None
    return h if tuple(h.shape) == tuple(expected_shape) else None


@dataclass
class Checkpoint:
    """A loaded checkpoint directory; ``model`` is None when loaded with ``load_model=False``."""

    path: Path
    info: dict[str, Any]
    config: RunConfig
    metrics: dict[str, Any]
    trace: pd.DataFrame
    switch: dict[str, Any]
    projection: dict[str, np.ndarray]
    planted: dict[str, np.ndarray] | None
    model: MAGNET | None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def variant(self) -> str:
        return self.config.variant


def checkpoint_file(directory: Path, name: str, required: bool = True) -> Path | None:
    """``directory/name`` when it is a regular file inside ``directory`` (a link leading out of
    the checkpoint directory is refused, so a reader confined to a folder stays in it); None
    when absent and not ``required``."""
    path = Path(directory) / name
    if not os.path.lexists(path):
        if required:
            raise CheckpointError(f"missing {name}", directory)
        return None
    try:
        inside = path.resolve().is_relative_to(Path(directory).resolve())
    except (OSError, RuntimeError):
        inside = False
    if not inside:
        raise CheckpointError("is a link leading out of its checkpoint directory; refused", path)
    require_regular(path, CheckpointError)
    return path


def _read_json(path: Path) -> Any:
    return read_json_file(path, CheckpointError)


def _read_trace(path: Path) -> pd.DataFrame:
    try:
        trace = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"corrupt CSV ({type(exc).__name__})", path) from None
    schema.check_trace(trace, path)
    return trace


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except ValueError as exc:
        raise CheckpointError(f"unsafe or corrupt npz ({exc})", path) from None
    except Exception as exc:  # zipfile.BadZipFile, EOFError, OSError …
        raise CheckpointError(f"corrupt npz ({type(exc).__name__})", path) from None


def read_info(path: str | Path) -> dict[str, Any]:
    """Read and check config.json of a checkpoint directory (cheap; no tensors)."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError("checkpoint directory not found", path)
    if not os.path.lexists(path / "config.json"):
        raise CheckpointError("missing config.json (not a MAGNET checkpoint directory)", path)
    cfg_path = checkpoint_file(path, "config.json")
    info = _read_json(cfg_path)
    schema.check_format_version(info, cfg_path, FORMAT_VERSION)
    schema.check_info(info, cfg_path)
    return info


def build_model(info: dict[str, Any], config: RunConfig) -> MAGNET:
    ds = info["dataset"]
    return MAGNET(int(ds["n_users"]), int(ds["n_items"]), config, ds.get("image_dim"), ds.get("text_dim"))


# Fields added to RunConfig after format_version 1 was first written, with the value that
# rebuilds a checkpoint saved before they existed (a missing field would take today's default).
LEGACY_DEFAULTS: dict[str, dict[str, object]] = {
    "model": {"feature_dim": 0, "expert_kind": "mlp", "detach_expert_behaviour": False,
              "router_rank": 0, "router": "bilinear"},
    "train": {"content_weight_decay": 0.0},
}


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu",
                    load_model: bool = True) -> Checkpoint:
    """Load a checkpoint directory without unpickling anything.

    Raises :class:`CheckpointError` with a one-line message naming the file on any problem:
    missing files, corrupt JSON/CSV/npz/safetensors, wrong format_version, shapes that do not
    match the config.
    """
    path = Path(path)
    info = read_info(path)
    files = {name: checkpoint_file(path, name) for name in REQUIRED_FILES}
    config = run_config(info, files["config.json"])
    metrics = _read_json(files["metrics.json"])
    schema.check_metrics(metrics, files["metrics.json"])
    switch = _read_json(files["switch.json"])
    schema.check_switch(switch, files["switch.json"])
    trace = _read_trace(files["trace.csv"])
    n_users, n_items = info["dataset"]["n_users"], info["dataset"]["n_items"]
    projection = _read_npz(files["projection.npz"])
    schema.check_projection(projection, n_users, n_items, files["projection.npz"])
    planted_file = checkpoint_file(path, "planted_truth.npz", required=False)
    planted = None if planted_file is None else _read_npz(planted_file)
    if planted is not None:
        schema.check_planted(planted, n_users, planted_file)
    model = None
    if load_model:
        model = load_model_weights(path, info, config, device)
    return Checkpoint(path, info, config, metrics, trace, switch, projection, planted, model)


def run_config(info: dict[str, Any], cfg_path: Path) -> RunConfig:
    """The validated run config of config.json (fields added since format 1 filled in)."""
    try:
        run = info["run"]
        for section, values in LEGACY_DEFAULTS.items():
            if isinstance(run.get(section), dict):
                for name, value in values.items():
                    run[section].setdefault(name, value)
        config = RunConfig.from_dict(run, str(cfg_path))
        validate_config(config)
        validate_for_data(config, DataShape(info["dataset"]["n_users"], info["dataset"]["n_items"]))
    except ConfigError as exc:
        raise CheckpointError(f"invalid run config ({exc})", cfg_path) from None
    return config


def _safetensors_error(exc: BaseException) -> str:
    reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
    return f"corrupt or truncated safetensors ({reason})"


def tensor_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor of a safetensors file, from its header alone (no data read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as fh:
            return {key: tuple(fh.get_slice(key).get_shape()) for key in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(_safetensors_error(exc), weights) from None


def expected_shapes(info: dict[str, Any], config: RunConfig, cfg_path: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor the model of ``config`` has, built on the meta device (no
    memory allocated, whatever sizes config.json claims)."""
    try:
        with torch.device("meta"):
            model = build_model(info, config)
    except (ValueError, KeyError, TypeError, RuntimeError, ZeroDivisionError) as exc:
        raise CheckpointError(f"config cannot build a model ({str(exc).splitlines()[0][:120]})",
                              cfg_path) from None
    return {key: tuple(t.shape) for key, t in model.state_dict().items()}


def check_shapes(found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]], weights: Path) -> None:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        raise CheckpointError(f"tensors do not match the config (missing {missing[:3]}, unexpected "
                              f"{extra[:3]})", weights)
    for key, shape in expected.items():
        if found[key] != shape:
            raise CheckpointError(f"tensor {key} has shape {found[key]}, config expects {shape}", weights)


def check_finite(state: dict[str, torch.Tensor], weights: Path) -> None:
    """Refuse weights with NaN or infinite values (a run that diverged)."""
    key = schema.first_non_finite(state)
    if key is not None:
        raise CheckpointError(f"tensor {key} contains NaN or inf (a diverged run)", weights)


def load_model_weights(path: Path, info: dict[str, Any], config: RunConfig,
                       device: str | torch.device = "cpu") -> MAGNET:
    """The model of a checkpoint: shapes compared between the safetensors header and the model
    config.json describes before anything is allocated, then the weights loaded and checked."""
    weights = checkpoint_file(path, "model.safetensors")
    check_shapes(tensor_shapes(weights), expected_shapes(info, config, path / "config.json"), weights)
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(_safetensors_error(exc), weights) from None
    check_finite(state, weights)
    model = build_model(info, config)
    model.load_state_dict(state)
    model.eval()
    return model.to(device)


def foreign_entries(path: str | Path) -> list[str] | None:
    """None when directory ``path`` is not one of our checkpoints (no config.json holding a
    format_version); else the names in it that a checkpoint does not hold (empty: ours alone)."""
    path = Path(path)
    try:
        info = read_json_file(path / "config.json", CheckpointError)
    except CheckpointError:
        return None
    if not isinstance(info, dict) or "format_version" not in info:
        return None
    known = set(REQUIRED_FILES) | set(OPTIONAL_FILES)
    return sorted(name for name in os.listdir(path)
                  if name not in known and not name.startswith(f".{ENCODED_FILE}.tmp-"))


def replace_problem(path: str | Path) -> str | None:
    """Why writing a checkpoint to ``path`` would destroy something that is not ours (None when
    ``path`` is absent, an empty directory or one of our checkpoints)."""
    path = Path(path)
    if not os.path.lexists(path):
        return None
    if not path.is_dir():
        return "exists and is not a directory"
    try:
        entries = sorted(os.listdir(path))
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not entries:
        return None
    foreign = foreign_entries(path)
    if foreign is None:
        return f"is not a MAGNET checkpoint (it holds {some_names(entries)})"
    if foreign:
        return f"is a checkpoint that also holds {some_names(foreign)}"
    return None


def check_replaceable(path: Path, overwrite: bool = False) -> None:
    """Raise :class:`CheckpointError` unless a checkpoint may be written to ``path`` (a file
    never; a foreign directory only with ``overwrite``)."""
    problem = replace_problem(path)
    if problem is None or (overwrite and Path(path).is_dir()):
        return
    hint = "" if not Path(path).is_dir() else " (choose another --out, or pass --overwrite to replace it)"
    raise CheckpointError(f"{problem}; refusing to replace it{hint}", path)


def is_checkpoint_dir(path: str | Path) -> bool:
    """True when ``path`` looks like a checkpoint directory (has config.json)."""
    return os.path.isfile(Path(path) / "config.json")  # never raises (an unreadable folder: False)


def _entries(folder: Path) -> list[Path]:
    """The visible entries of ``folder``, sorted; none when it cannot be listed."""
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError:
        return []


def find_checkpoints(root: str | Path) -> list[Path]:
    """Checkpoint directories under ``root`` (itself, children and grandchildren), sorted;
    folders that cannot be read are skipped."""
    root = Path(root)
    if not os.path.isdir(root):
        return []
    found = [root] if is_checkpoint_dir(root) else []
    for child in _entries(root):
        if is_checkpoint_dir(child):
            found.append(child)
        elif os.path.isdir(child):
            found.extend(g for g in _entries(child) if is_checkpoint_dir(g))
    return found


__all__ = ["FORMAT_VERSION", "REQUIRED_FILES", "Checkpoint", "CheckpointError", "MagnetError",
           "check_replaceable", "checkpoint_file", "device_name", "find_checkpoints", "foreign_entries",
           "git_commit", "load_checkpoint", "read_info", "save_checkpoint"]
