"""``synthetic:<preset>[@key=value[,key=value...]]``: which generated world a spec names, its cache
directory name and the dataset name checkpoints record. Torch-free; no file access.

Keys: ``seed`` (int, 0 ≤ seed < 2**32), ``overlap`` (modality overlap, a number in [0, 1]),
``users``, ``items``, ``interactions`` (positive ints overriding the preset's sizes; items ≥ 10
and interactions ≥ 3·users). A value equal to the default is the default (same cache, same
name). Every bad spec is one line :class:`DataError` naming the spec.

Cache directory: ``synthetic-<preset>-seed<seed>`` followed by every other non-default part in
the order overlap, users, items, interactions (``synthetic-demo-seed999-overlap0.3``). Dataset
name: the same without ``-seed<seed>`` when the seed is the default (``synthetic-demo`` for the
defaults, as the shipped checkpoints record).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields

import numpy as np

from ..errors import DataError
from .synthetic import DEFAULT_SEED, SYNTHETIC_PRESETS

SPEC_KEYS: tuple[str, ...] = ("seed", "overlap", "users", "items", "interactions")
SIZE_KEYS: dict[str, str] = {"users": "n_users", "items": "n_items", "interactions": "n_interactions"}
MAX_SIZE = 100_000_000
_INT = re.compile(r"\d+")
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_DIR = re.compile(r"synthetic-(\w+)-seed(\d+)((?:-(?:overlap[0-9.]+|users\d+|items\d+|interactions\d+))*)")


def format_overlap(value: float) -> str:
    """Shortest exact positional form (``0.3``, ``1``, ``0.0001``): no exponent, no dash."""
    return np.format_float_positional(float(value), trim="-")


@dataclass(frozen=True)
class SyntheticSpec:
    """A parsed ``synthetic:`` spec; size fields are None when they are the preset's."""

    preset: str
    seed: int = DEFAULT_SEED
    overlap: float = 0.0
    users: int | None = None
    items: int | None = None
    interactions: int | None = None

    def _parts(self) -> list[str]:
        parts = [] if self.overlap == 0.0 else [f"overlap{format_overlap(self.overlap)}"]
        return parts + [f"{key}{getattr(self, key)}" for key in SIZE_KEYS if getattr(self, key) is not None]

    @property
    def dir_name(self) -> str:
        """Cache directory name: the seed always, every other non-default parameter."""
        return "-".join([f"synthetic-{self.preset}-seed{self.seed}", *self._parts()])

    @property
    def dataset_name(self) -> str:
        """The name a loaded dataset reports: ``synthetic-<preset>`` plus the non-default parts."""
        seed = [] if self.seed == DEFAULT_SEED else [f"seed{self.seed}"]
        return "-".join([f"synthetic-{self.preset}", *seed, *self._parts()])

    def generate_kwargs(self) -> dict[str, object]:
        """Keyword arguments of :func:`magnet.data.synthetic.generate_synthetic` for this world."""
        kwargs: dict[str, object] = dict(SYNTHETIC_PRESETS[self.preset])
        for key, arg in SIZE_KEYS.items():
            if getattr(self, key) is not None:
                kwargs[arg] = getattr(self, key)
        return {**kwargs, "seed": self.seed, "modality_overlap": self.overlap}

    @classmethod
    def from_dir_name(cls, name: str) -> SyntheticSpec | None:
        """The spec a cache directory name was made from, or None if it is not one."""
        match = _DIR.fullmatch(name)
        if not match:
            return None
        values: dict[str, object] = {}
        for part in match.group(3).split("-")[1:]:
            key = re.match(r"[a-z]+", part).group(0)  # type: ignore[union-attr]
            values[key] = float(part[len(key):]) if key == "overlap" else int(part[len(key):])
        return cls(match.group(1), int(match.group(2)), **values)  # type: ignore[arg-type]


def _value(spec: str, key: str, text: str) -> int | float:
    """One ``key=value`` of ``spec`` checked and converted (one-line DataError otherwise)."""
    if key == "seed":
        if not _INT.fullmatch(text) or int(text) >= 2 ** 32:
            raise DataError(f"seed must be an integer in [0, 2**32), got '{text}'", spec)
        return int(text)
    if key == "overlap":
        value = float(text) if _NUMBER.fullmatch(text) else math.nan
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise DataError(f"overlap must be a number in [0, 1], got '{text}'", spec)
        return value
    if not _INT.fullmatch(text) or not 1 <= int(text) <= MAX_SIZE:
        raise DataError(f"{key} must be a positive integer (at most {MAX_SIZE:,}), got '{text}'", spec)
    return int(text)


def parse_synthetic_spec(spec: str) -> SyntheticSpec:
    """``"synthetic:<preset>[@key=value[,key=value...]]"`` -> :class:`SyntheticSpec`."""
    spec = str(spec).strip()
    match = re.fullmatch(r"synthetic:(\w+)(?:@(.*))?", spec, flags=re.DOTALL)
    if not match:
        raise DataError("bad synthetic spec; expected synthetic:<preset>[@key=value[,key=value...]] "
                        f"with keys {', '.join(SPEC_KEYS)}", spec)
    preset = match.group(1)
    if preset not in SYNTHETIC_PRESETS:
        raise DataError(f"unknown synthetic preset '{preset}' (choose from {', '.join(SYNTHETIC_PRESETS)})", spec)
    values: dict[str, int | float] = {}
    for item in ([] if match.group(2) is None else match.group(2).split(",")):
        key, sep, text = item.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or key not in SPEC_KEYS:
            raise DataError(f"bad synthetic parameter '{item.strip()}'; expected key=value with keys "
                            f"{', '.join(SPEC_KEYS)}", spec)
        if key in values:
            raise DataError(f"synthetic parameter '{key}' given twice", spec)
        values[key] = _value(spec, key, text)
    sizes = {key: int(values.get(key, SYNTHETIC_PRESETS[preset][arg])) for key, arg in SIZE_KEYS.items()}
    if sizes["items"] < 10:
        raise DataError(f"items must be at least 10, got {sizes['items']}", spec)
    if sizes["interactions"] < 3 * sizes["users"]:
        raise DataError(f"interactions ({sizes['interactions']}) must be at least 3 x users "
                        f"({3 * sizes['users']})", spec)
    for key, arg in SIZE_KEYS.items():  # a size equal to the preset's is the default
        if values.get(key) == SYNTHETIC_PRESETS[preset][arg]:
            del values[key]
    return SyntheticSpec(preset, **{f.name: values[f.name] for f in fields(SyntheticSpec)  # type: ignore[arg-type]
                                    if f.name in values})


__all__ = ["MAX_SIZE", "SPEC_KEYS", "SyntheticSpec", "format_overlap", "parse_synthetic_spec"]
