"""MAGNET: Modality-Guided Mixture of Adaptive Graph Experts with Progressive
Entropy-Triggered Routing — library (no Streamlit imports here).

The names below are loaded on first use, so importing a torch-free module such as
:mod:`magnet.vocab` does not import torch.
"""
from __future__ import annotations

import importlib
import warnings
from typing import Any

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")

__version__ = "0.2.0"

_EXPORTS: dict[str, str] = {
    "FORMAT_VERSION": "checkpoint", "Checkpoint": "checkpoint", "find_checkpoints": "checkpoint",
    "load_checkpoint": "checkpoint", "RunConfig": "config", "VARIANTS": "variants",
    "CheckpointError": "errors", "ConfigError": "errors", "DataError": "errors", "MagnetError": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'magnet' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
