"""MAGNET: Modality-Guided Mixture of Adaptive Graph Experts with Progressive
Entropy-Triggered Routing — library (no Streamlit imports here)."""
from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")

from .checkpoint import FORMAT_VERSION, Checkpoint, find_checkpoints, load_checkpoint  # noqa: E402
from .config import VARIANTS, RunConfig  # noqa: E402
from .errors import CheckpointError, ConfigError, DataError, MagnetError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["FORMAT_VERSION", "Checkpoint", "CheckpointError", "ConfigError", "DataError",
           "MagnetError", "RunConfig", "VARIANTS", "find_checkpoints", "load_checkpoint"]
