"""Periodic training snapshots for ``train --resume`` (no pickle: safetensors + JSON).

A snapshot directory holds ``tensors.safetensors`` (model, best model, optimizer moments, RNG
states) and ``state.json`` (loop counters, routing schedule incl. EMA/window/switch, valid
history, the trace so far, optimizer hyper-parameters). It is written atomically, so a crash
mid-write leaves the previous snapshot intact.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import CheckpointError
from .fileio import write_atomic_dir

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


def load_snapshot(path: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                  generator: torch.Generator, fingerprint: str, config: dict[str, Any]
                  ) -> tuple[LoopState, dict[str, Any], dict[str, torch.Tensor] | None]:
    """Restore model, optimizer and RNGs in place; return (loop, routing schedule state, best state)."""
    try:
        meta = json.loads((path / "state.json").read_text())
        tensors = load_file(str(path / "tensors.safetensors"))
    except (OSError, json.JSONDecodeError, SafetensorError) as exc:
        raise CheckpointError(f"unreadable snapshot ({type(exc).__name__})", path) from None
    if meta.get("snapshot_version") != SNAPSHOT_VERSION:
        raise CheckpointError("snapshot of another format version", path)
    if meta["fingerprint"] != fingerprint:
        raise CheckpointError("snapshot was made on another dataset; remove it or drop --resume", path)
    if meta["config"] != config:
        raise CheckpointError("snapshot was made with another configuration; remove it or drop --resume", path)
    device = next(model.parameters()).device
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best = ({k[5:]: v for k, v in tensors.items() if k.startswith("best.")} if meta["has_best"] else None)
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value if name == "step" else value.to(device)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    generator.set_state(tensors["rng.generator"])
    torch.set_rng_state(tensors["rng.torch"])
    return LoopState(**meta["loop"]), meta["controller"], best
