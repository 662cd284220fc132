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
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import RunConfig, validate_config
from .errors import CheckpointError, ConfigError, MagnetError
from .fileio import json_default, write_atomic_dir, write_file_atomic
from .model import MAGNET

FORMAT_VERSION = 1
REQUIRED_FILES: tuple[str, ...] = ("config.json", "model.safetensors", "metrics.json", "trace.csv",
                                   "switch.json", "projection.npz")


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
                    encoded: torch.Tensor | None = None) -> Path:
    """Write a complete checkpoint directory atomically. ``info`` becomes config.json
    (``format_version`` is added here); ``encoded`` [C, U+I, d], the model's encoded channels,
    is cached as encoded.safetensors when given."""
    out_dir = Path(out_dir)
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
    file = path / ENCODED_FILE
    if not file.is_file():
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


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"corrupt JSON ({exc.msg} at line {exc.lineno})", path) from None
    except UnicodeDecodeError:
        raise CheckpointError("not a text file", path) from None


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
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError("missing config.json (not a MAGNET checkpoint directory)", path)
    info = _read_json(cfg_path)
    if not isinstance(info, dict) or "format_version" not in info:
        raise CheckpointError("no format_version: not a MAGNET checkpoint", cfg_path)
    if info["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"format_version {info['format_version']!r} is not supported "
                              f"(this version reads {FORMAT_VERSION})", cfg_path)
    for key in ("run", "dataset"):
        if not isinstance(info.get(key), dict):
            raise CheckpointError(f"missing or malformed '{key}' section", cfg_path)
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
    for name in REQUIRED_FILES:
        if not (path / name).is_file():
            raise CheckpointError(f"missing {name}", path)
    try:
        run = info["run"]
        for section, values in LEGACY_DEFAULTS.items():
            if isinstance(run, dict) and isinstance(run.get(section), dict):
                for name, value in values.items():
                    run[section].setdefault(name, value)
        config = RunConfig.from_dict(run, str(path / "config.json"))
        validate_config(config)
    except ConfigError as exc:
        raise CheckpointError(f"invalid run config ({exc})", path / "config.json") from None
    metrics = _read_json(path / "metrics.json")
    switch = _read_json(path / "switch.json")
    try:
        trace = pd.read_csv(path / "trace.csv")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"corrupt CSV ({type(exc).__name__})", path / "trace.csv") from None
    projection = _read_npz(path / "projection.npz")
    planted = _read_npz(path / "planted_truth.npz") if (path / "planted_truth.npz").is_file() else None
    model = None
    if load_model:
        model = load_model_weights(path, info, config, device)
    return Checkpoint(path, info, config, metrics, trace, switch, projection, planted, model)


def load_model_weights(path: Path, info: dict[str, Any], config: RunConfig,
                       device: str | torch.device = "cpu") -> MAGNET:
    weights = path / "model.safetensors"
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"corrupt or truncated safetensors ({str(exc).splitlines()[0][:120]})",
                              weights) from None
    try:
        model = build_model(info, config)
    except (ValueError, KeyError, TypeError, RuntimeError, ZeroDivisionError) as exc:
        raise CheckpointError(f"config cannot build a model ({str(exc).splitlines()[0][:120]})",
                              path / "config.json") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise CheckpointError(f"tensors do not match the config (missing {missing[:3]}, unexpected "
                              f"{extra[:3]})", weights)
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(f"tensor {key} has shape {tuple(state[key].shape)}, config expects "
                                  f"{tuple(tensor.shape)}", weights)
    model.load_state_dict(state)
    model.eval()
    return model.to(device)


def is_checkpoint_dir(path: str | Path) -> bool:
    """True when ``path`` looks like a checkpoint directory (has config.json)."""
    return (Path(path) / "config.json").is_file()


def find_checkpoints(root: str | Path) -> list[Path]:
    """Checkpoint directories under ``root`` (itself, children and grandchildren), sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [root] if is_checkpoint_dir(root) else []
    for child in sorted(root.iterdir()):
        if child.name.startswith("."):
            continue
        if is_checkpoint_dir(child):
            found.append(child)
        elif child.is_dir():
            found.extend(g for g in sorted(child.iterdir())
                         if not g.name.startswith(".") and is_checkpoint_dir(g))
    return found


__all__ = ["FORMAT_VERSION", "REQUIRED_FILES", "Checkpoint", "CheckpointError", "MagnetError",
           "device_name", "find_checkpoints", "git_commit", "load_checkpoint", "read_info",
           "save_checkpoint"]
