"""Periodic training snapshots for ``train --resume`` (no pickle: safetensors + JSON).

A snapshot directory holds ``tensors.safetensors`` (model, best model, optimizer moments, RNG
states) and ``state.json`` (loop counters, routing schedule incl. EMA/window/switch, valid
history, the trace so far, optimizer hyper-parameters). It is written atomically, so a crash
mid-write leaves the previous snapshot intact.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .checkpoint_schema import check_switch, first_non_finite
from .errors import CheckpointError
from .fileio import read_json_file, require_regular, write_atomic_dir

SNAPSHOT_VERSION = 1


@dataclass
class LoopState:
    """Everything of the training loop that is not a tensor of the model or optimizer."""

    epoch: int = 0  # last completed epoch
    best_score: float = -1.0
    best_epoch: int = 0
    waited: int = 0
    elapsed: float = 0.0
    stopped: bool = False
    rows: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def snapshot_dir(out_dir: str | Path) -> Path:
    """Where the snapshots of a run writing ``out_dir`` live: a hidden sibling directory."""
    out_dir = Path(out_dir)
    return out_dir.parent / f".{out_dir.name}.snapshot"


def save_snapshot(path: Path, *, loop: LoopState, model: torch.nn.Module,
                  best_state: dict[str, torch.Tensor] | None, optimizer: torch.optim.Optimizer,
                  schedule_state: dict[str, Any], generator: torch.Generator,
                  fingerprint: str, config: dict[str, Any]) -> None:
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model.{k}"] = v.detach().cpu().contiguous()
    for k, v in (best_state or {}).items():
        tensors[f"best.{k}"] = v.detach().cpu().contiguous()
    opt = optimizer.state_dict()
    for idx, state in opt["state"].items():
        for name, value in state.items():
            tensors[f"optim.{idx}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["rng.generator"] = generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {"snapshot_version": SNAPSHOT_VERSION, "loop": asdict(loop), "controller": schedule_state,
            "param_groups": opt["param_groups"], "fingerprint": fingerprint, "config": config,
            "has_best": best_state is not None}

    def write(tmp: Path) -> None:
        save_file(tensors, str(tmp / "tensors.safetensors"))
        (tmp / "state.json").write_text(json.dumps(meta))

    write_atomic_dir(path, write)


META_TYPES: dict[str, type | tuple[type, ...]] = {
    "loop": dict, "controller": dict, "param_groups": list, "fingerprint": str, "config": dict, "has_best": bool}


def _read_meta(path: Path) -> dict[str, Any]:
    """state.json, checked: the right version and every section of the right type."""
    state_file = path / "state.json"
    meta = read_json_file(state_file, CheckpointError)
    if not isinstance(meta, dict):
        raise CheckpointError("malformed snapshot: expected a JSON object", state_file)
    if meta.get("snapshot_version") != SNAPSHOT_VERSION:
        raise CheckpointError("snapshot of another format version", state_file)
    for key, kind in META_TYPES.items():
        if not isinstance(meta.get(key), kind):
            raise CheckpointError(f"malformed snapshot: '{key}' missing or of the wrong type", state_file)
    return meta


def _field_ok(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, type(default))


def _loop_state(raw: dict[str, Any], state_file: Path) -> LoopState:
    """The loop counters of state.json, each of the type of its :class:`LoopState` field."""
    defaults = LoopState()
    if set(raw) != {f.name for f in fields(LoopState)}:
        raise CheckpointError("malformed snapshot: the loop section has other fields", state_file)
    for f in fields(LoopState):
        if not _field_ok(raw[f.name], getattr(defaults, f.name)):
            raise CheckpointError(f"malformed snapshot: loop.{f.name} is {raw[f.name]!r:.40}", state_file)
    if raw["epoch"] < 0:
        raise CheckpointError("malformed snapshot: negative loop.epoch", state_file)
    return LoopState(**raw)


def _check_controller(controller: dict[str, Any], config: dict[str, Any], state_file: Path) -> None:
    """The routing schedule state loads into a schedule of this config, with a valid switch record."""
    from .config import RunConfig
    from .schedule import RoutingSchedule

    schedule = RoutingSchedule(RunConfig.from_dict(config).routing)
    schedule.load_state_dict(controller)
    if not math.isfinite(schedule.h_ema) or schedule.step < 0:
        raise ValueError("non-finite EMA or negative step")
    if schedule.switch is not None:
        check_switch(schedule.switch, state_file)


def _optimizer_state(tensors: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
                     device: torch.device) -> dict[int, dict[str, torch.Tensor]]:
    """Adam's per-parameter moments from the snapshot tensors, shape-checked against the params."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            param = params[int(idx)]
            if name != "step" and value.shape != param.shape:
                raise ValueError(f"optimizer state {key} has shape {tuple(value.shape)}")
            state.setdefault(int(idx), {})[name] = value if name == "step" else value.to(device)
    return state


def load_snapshot(path: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                  generator: torch.Generator, fingerprint: str, config: dict[str, Any]
                  ) -> tuple[LoopState, dict[str, Any], dict[str, torch.Tensor] | None]:
    """Restore model, optimizer and RNGs in place; return (loop, routing schedule state, best state).
    Anything malformed (state.json, tensors, NaN weights) is one :class:`CheckpointError`."""
    meta = _read_meta(path)
    state_file = path / "state.json"
    try:
        tensors = load_file(str(require_regular(path / "tensors.safetensors", CheckpointError)))
    except (OSError, SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"unreadable snapshot ({type(exc).__name__})", path) from None
    if meta["fingerprint"] != fingerprint:
        raise CheckpointError("snapshot was made on another dataset; remove it or drop --resume", path)
    if meta["config"] != config:
        raise CheckpointError("snapshot was made with another configuration; remove it or drop --resume", path)
    weights = {k: v for k, v in tensors.items() if k.startswith(("model.", "best."))}
    if first_non_finite(weights) is not None:
        raise CheckpointError("snapshot holds NaN or infinite weights; remove it or drop --resume", path)
    loop = _loop_state(meta["loop"], state_file)
    try:
        _check_controller(meta["controller"], config, state_file)
        device = next(model.parameters()).device
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        best = ({k[5:]: v for k, v in tensors.items() if k.startswith("best.")} if meta["has_best"] else None)
        optimizer.load_state_dict({"state": _optimizer_state(tensors, optimizer, device),
                                   "param_groups": meta["param_groups"]})
        generator.set_state(tensors["rng.generator"])
        torch.set_rng_state(tensors["rng.torch"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
        reason = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
        raise CheckpointError(f"malformed snapshot ({reason}); remove it or drop --resume", path) from None
    return loop, meta["controller"], best
