"""Dataset specs: ``load_dataset(spec)`` for an MMRec directory, a generated
``synthetic:<preset>[@key=value[,key=value...]]`` world (keys seed, overlap, users, items,
interactions; see :mod:`magnet.data.synthetic_spec`) or ``synthfeat:<dir>`` (interaction-only
directory plus synthetic features), with generated data cached under :data:`DEFAULT_CACHE`."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError
from ..fileio import build_cached_dir, read_json_file
from .mmrec import Dataset, load_mmrec
from .synthetic import WORLD_VERSION, generate_synthetic
from .synthetic_spec import SyntheticSpec, parse_synthetic_spec
from .synthfeat import synthfeat_dir

DEFAULT_CACHE = Path(os.environ.get("MAGNET_CACHE", ".magnet_cache"))
"""Where generated datasets are cached (``$MAGNET_CACHE``, else ``.magnet_cache``)."""


_COMPLETE = ("synthetic.inter", "image_feat.npy", "text_feat.npy", "items.csv",
             "planted_truth.npz", "features.json", "README.txt")


def _world_complete(root: Path) -> bool:
    """Every file is there and ``features.json`` says the current world version (a cache left by
    an older generator, e.g. the first confounded world, is rebuilt rather than reused)."""
    if not all((root / f).is_file() for f in _COMPLETE):
        return False
    try:
        meta = read_json_file(root / "features.json", DataError)
    except DataError:
        return False
    world = meta.get("world") if isinstance(meta, dict) else None
    return isinstance(world, dict) and world.get("version") == WORLD_VERSION


def synthetic_dir(spec: SyntheticSpec | str, cache_dir: str | Path) -> Path:
    """Generate ``<cache_dir>/<spec.dir_name>/`` (e.g. ``synthetic-demo-seed999-overlap0.3``)
    unless it is already complete; atomic (:func:`magnet.fileio.build_cached_dir`)."""
    world = spec if isinstance(spec, SyntheticSpec) else parse_synthetic_spec(spec)
    target = Path(cache_dir).expanduser().resolve() / world.dir_name
    return build_cached_dir(target, _world_complete, lambda tmp: generate_synthetic(tmp, **world.generate_kwargs()))


def load_dataset(spec: str, cache_dir: str | Path = DEFAULT_CACHE,
                 require_features: bool = True) -> Dataset:
    """Load a dataset from a directory path, a ``synthetic:<preset>[@key=value,...]`` spec or a
    ``synthfeat:<dir>`` spec (interaction-only ``<dir>`` + synthetic features, see
    :mod:`magnet.data.synthfeat`)."""
    spec = str(spec)
    if spec.startswith("synthetic:"):
        return load_mmrec(synthetic_dir(parse_synthetic_spec(spec), cache_dir), require_features=require_features)
    if spec.startswith("synthfeat:"):
        return load_mmrec(synthfeat_dir(spec[len("synthfeat:"):], cache_dir), require_features=require_features)
    return load_mmrec(spec, require_features=require_features)


__all__ = ["DEFAULT_CACHE", "SyntheticSpec", "load_dataset", "parse_synthetic_spec", "synthetic_dir"]
