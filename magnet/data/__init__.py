"""Data layer: MMRec reading and validation, dataset specs, synthetic catalog, rendering,
featurizers."""
from __future__ import annotations

from .featurize import (BuiltinImageFeaturizer, BuiltinTextFeaturizer, EfficientNetLiteImageFeaturizer,
                        Featurizer, MiniLMTextFeaturizer, featurize_directory)
from .mmrec import Dataset, load_mmrec
from .specs import DEFAULT_CACHE, load_dataset
from .synthetic import SYNTHETIC_PRESETS, generate_synthetic
from .synthfeat import synthfeat_dir

__all__ = [
    "DEFAULT_CACHE", "Dataset", "load_dataset", "load_mmrec", "generate_synthetic", "SYNTHETIC_PRESETS",
    "synthfeat_dir", "Featurizer", "BuiltinImageFeaturizer", "BuiltinTextFeaturizer",
    "MiniLMTextFeaturizer", "EfficientNetLiteImageFeaturizer", "featurize_directory",
]
