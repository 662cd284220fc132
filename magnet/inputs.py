"""What a model is fed, on which device: the foundation shared by training and by everything that
reads a checkpoint (evaluation, explanations, the dashboard).

* :func:`resolve_device` — ``auto``/``cpu``/``cuda`` to a :class:`torch.device`, with a one-line
  error when CUDA is asked for and absent.
* :func:`model_inputs` — the graphs of a dataset and its raw item features, on a device.
* :func:`encode` — a checkpoint's channels on its dataset, ready to score (:class:`Precomputed`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .config import RunConfig
from .data import Dataset
from .errors import ConfigError
from .graphs import GraphBundle, build_graphs
from .model import MAGNET, Precomputed

if TYPE_CHECKING:  # pragma: no cover
    from .checkpoint import Checkpoint


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; ``cuda`` without a GPU is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA device is available")
    return torch.device(name)


def needs_features(config: RunConfig) -> bool:
    """Whether a run of ``config`` reads image and text features."""
    return config.model.use_aug_view


@dataclass
class ModelInputs:
    """The graphs of a dataset and its raw item features [I, d_A], [I, d_S] on one device
    (features None for behaviour-only models, which use none)."""

    graphs: GraphBundle
    image_feat: torch.Tensor | None
    text_feat: torch.Tensor | None


def model_inputs(config: RunConfig, data: Dataset, device: torch.device | str) -> ModelInputs:
    """Build the graphs of ``data`` for ``config`` and move them and the features to ``device``."""
    use_content = needs_features(config)
    graphs = build_graphs(data.train, data.n_users, data.n_items, config.graph,
                          data.image_feat, data.text_feat, with_content=use_content).to(device)
    to_tensor = (lambda a: None if a is None or not use_content else torch.from_numpy(a).to(device))
    return ModelInputs(graphs, to_tensor(data.image_feat), to_tensor(data.text_feat))


def encode_model(model: MAGNET, inputs: ModelInputs) -> Precomputed:
    """Encode every node with ``model`` (raw features through its content basis first)."""
    image_feat, text_feat = model.content_inputs(inputs.image_feat, inputs.text_feat)
    return model.precompute(inputs.graphs, image_feat, text_feat)


def encode(ckpt: "Checkpoint", data: Dataset, device: torch.device | str = "cpu") -> Precomputed:
    """The channels of checkpoint ``ckpt``'s model on ``data``, ready to score: graphs built,
    features reduced, every node encoded (see :func:`magnet.restore.encoded` for the cached
    version)."""
    return encode_model(ckpt.model, model_inputs(ckpt.config, data, device))
