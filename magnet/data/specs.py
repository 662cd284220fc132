"""Dataset specs: ``load_dataset(spec)`` for an MMRec directory, a generated
``synthetic:<preset>[@seed=<n>]`` catalog or ``synthfeat:<dir>`` (interaction-only directory plus
synthetic features), with generated data cached under :data:`DEFAULT_CACHE`."""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import DataError
from ..fileio import build_cached_dir
from .mmrec import Dataset, load_mmrec
from .synthetic import DEFAULT_SEED, SYNTHETIC_PRESETS, generate_synthetic
from .synthfeat import synthfeat_dir

DEFAULT_CACHE = Path(os.environ.get("MAGNET_CACHE", ".magnet_cache"))
"""Where generated datasets are cached (``$MAGNET_CACHE``, else ``.magnet_cache``)."""


def parse_synthetic_spec(spec: str) -> tuple[str, int]:
    """``"synthetic:<preset>[@seed=<int>]"`` -> ``(preset, seed)``."""
    match = re.fullmatch(r"synthetic:(\w+)(?:@seed=(-?\d+))?", spec.strip())
    if not match:
        raise DataError("bad synthetic spec; expected synthetic:<preset> or synthetic:<preset>@seed=<n>",
                        spec)
    preset = match.group(1)
    if preset not in SYNTHETIC_PRESETS:
        raise DataError(f"unknown synthetic preset '{preset}' (choose from "
                        f"{', '.join(SYNTHETIC_PRESETS)})", spec)
    return preset, int(match.group(2)) if match.group(2) else DEFAULT_SEED


_COMPLETE = ("synthetic.inter", "image_feat.npy", "text_feat.npy", "items.csv",
             "planted_truth.npz", "README.txt")


def synthetic_dir(preset: str, seed: int, cache_dir: str | Path) -> Path:
    """Generate ``<cache_dir>/synthetic-<preset>-seed<seed>/`` unless it is already complete."""
    target = Path(cache_dir).expanduser().resolve() / f"synthetic-{preset}-seed{seed}"
    return build_cached_dir(target, lambda d: all((d / f).is_file() for f in _COMPLETE),
                            lambda tmp: generate_synthetic(tmp, seed=seed, **SYNTHETIC_PRESETS[preset]))


def load_dataset(spec: str, cache_dir: str | Path = DEFAULT_CACHE,
                 require_features: bool = True) -> Dataset:
    """Load a dataset from a directory path, a ``synthetic:<preset>[@seed=<n>]`` spec or a
    ``synthfeat:<dir>`` spec (interaction-only ``<dir>`` + synthetic features, see
    :mod:`magnet.data.synthfeat`)."""
    spec = str(spec)
    if spec.startswith("synthetic:"):
        preset, seed = parse_synthetic_spec(spec)
        return load_mmrec(synthetic_dir(preset, seed, cache_dir), require_features=require_features)
    if spec.startswith("synthfeat:"):
        return load_mmrec(synthfeat_dir(spec[len("synthfeat:"):], cache_dir), require_features=require_features)
    return load_mmrec(spec, require_features=require_features)


__all__ = ["DEFAULT_CACHE", "load_dataset", "parse_synthetic_spec", "synthetic_dir"]
