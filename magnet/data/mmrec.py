"""MMRec-layout datasets: validated loading of a directory into a :class:`Dataset`.

Every problem with the files is raised up front as a one-line :class:`DataError` naming the
file and the problem.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from .inter import check_contiguous, find_inter, read_inter
from .synthetic_spec import SyntheticSpec

FEATURE_FILES: tuple[str, str] = ("image_feat.npy", "text_feat.npy")


@dataclass(eq=False)
class Dataset:
    """A loaded MMRec dataset. Interaction arrays are ``[n, 2]`` int64 (user, item)."""

    name: str
    root: Path
    n_users: int
    n_items: int
    train: np.ndarray  # [n_train, 2] int64
    valid: np.ndarray  # [n_valid, 2] int64
    test: np.ndarray  # [n_test, 2] int64
    image_feat: np.ndarray | None  # [n_items, d_A] float32
    text_feat: np.ndarray | None  # [n_items, d_S] float32
    items: pd.DataFrame | None  # indexed 0..n_items-1 by itemID
    fingerprint: str
    planted: dict[str, np.ndarray] | None = None
    synthetic_features: bool = False
    attribute_modalities: dict[str, str] = field(default_factory=dict)  # items.csv column -> "A" | "S" | "B"
    _history: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False)

    def image_path(self, item: int) -> Path | None:
        """``<root>/images/<item>.jpg|.png|.jpeg`` if it exists, else None."""
        for ext in (".jpg", ".png", ".jpeg"):
            path = self.root / "images" / f"{int(item)}{ext}"
            if path.is_file():
                return path
        return None

    def item_title(self, item: int) -> str:
        """The item's title from ``items.csv``, or ``"item <id>"``."""
        if self.items is not None and "title" in self.items.columns and 0 <= item < len(self.items):
            title = self.items["title"].iloc[int(item)]
            if isinstance(title, str) and title.strip():
                return title
        return f"item {int(item)}"

    def item_popularity(self) -> np.ndarray:
        """``[n_items]`` int64 training degree of each item."""
        return np.bincount(self.train[:, 1], minlength=self.n_items).astype(np.int64)

    def user_history(self, user: int) -> np.ndarray:
        """Training items of ``user`` (int64, in file order)."""
        if self._history is None:
            order = np.argsort(self.train[:, 0], kind="stable")
            counts = np.bincount(self.train[:, 0], minlength=self.n_users)
            indptr = np.concatenate([[0], np.cumsum(counts)])
            self._history = (indptr, self.train[order, 1].astype(np.int64))
        indptr, items = self._history
        return items[indptr[int(user)]:indptr[int(user) + 1]].copy()


def _load_feature(root: Path, name: str, n_items: int, required: bool) -> np.ndarray | None:
    path = root / name
    if not path.is_file():
        if required:
            raise DataError("missing feature file (required; pass require_features=False to load "
                            "interactions only)", path)
        return None
    try:
        with open(path, "rb") as handle:  # closed even when np.load fails half-way
            arr = np.load(handle, allow_pickle=False)
            if not isinstance(arr, np.ndarray):  # an .npz archive: close it while the file is open
                arr.close()
                raise DataError("features must be a .npy array, not an .npz archive", path)
    except DataError:
        raise
    except Exception as exc:  # ValueError, OSError, EOFError, zipfile.BadZipFile, …
        reason = "contains pickled objects" if "pickle" in str(exc) else type(exc).__name__
        raise DataError(f"unreadable .npy file ({reason})", path) from None
    if arr.ndim != 2:
        raise DataError(f"features must be a 2-D array, got shape {getattr(arr, 'shape', '?')}", path)
    if arr.dtype.kind not in "fiub":
        raise DataError(f"features must be numeric, got dtype {arr.dtype}", path)
    if arr.shape[0] != n_items:
        raise DataError(f"feature rows ({arr.shape[0]}) != item count in the .inter file ({n_items})", path)
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad_rows = ~np.isfinite(arr).all(axis=1)
    if bad_rows.any():
        raise DataError(f"{int(bad_rows.sum())} rows contain NaN or inf (first: row "
                        f"{int(np.flatnonzero(bad_rows)[0])})", path)
    return arr


def _load_items(root: Path, n_items: int) -> pd.DataFrame | None:
    path = root / "items.csv"
    if not path.is_file():
        return None
    try:
        items = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot parse items.csv ({str(exc).splitlines()[0][:100]})", path) from exc
    if "itemID" not in items.columns:
        raise DataError("missing column itemID", path)
    ids = pd.to_numeric(items["itemID"], errors="coerce")
    if ids.isna().any() or (ids % 1 != 0).any():
        raise DataError("non-integer itemID values", path)
    items = items.assign(itemID=ids.astype(np.int64))
    if items["itemID"].duplicated().any():
        raise DataError(f"duplicate itemID {int(items['itemID'][items['itemID'].duplicated()].iloc[0])}",
                        path)
    return items.set_index("itemID").reindex(pd.RangeIndex(n_items, name="itemID"))


def _load_planted(root: Path) -> dict[str, np.ndarray] | None:
    path = root / "planted_truth.npz"
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as z:
            planted = {k: z[k] for k in z.files}
    except Exception as exc:  # ValueError, OSError, EOFError, zipfile.BadZipFile, …
        raise DataError(f"unreadable planted truth ({exc.__class__.__name__})", path) from None
    if "reliance" in planted:
        planted["reliance"] = planted["reliance"].astype(np.float32)
    return planted


def _dataset_name(root: Path, inter: Path) -> str:
    """``synthetic-<preset>`` plus its non-default parameters for a generated world's cache
    directory (see :mod:`magnet.data.synthetic_spec`), else the ``.inter`` file's stem."""
    world = SyntheticSpec.from_dir_name(root.name)
    if inter.stem == "synthetic" and world is not None:
        return world.dataset_name
    return inter.stem


def _fingerprint(inter: Path, feats: list[tuple[str, np.ndarray | None]],
                 planted: dict[str, np.ndarray] | None = None) -> str:
    """sha256 of the ``.inter`` bytes and the feature shapes; a synthetic world with a non-zero
    modality overlap adds it (its interactions are those of the same world at overlap 0)."""
    h = hashlib.sha256(inter.read_bytes())
    for name, arr in feats:
        h.update(f"|{name}:{None if arr is None else tuple(arr.shape)}".encode())
    overlap = None if planted is None else planted.get("modality_overlap")
    if overlap is not None and np.ndim(overlap) == 0 and np.asarray(overlap).dtype.kind in "fiub" \
            and float(overlap) != 0.0:
        h.update(f"|overlap:{float(overlap)!r}".encode())
    return h.hexdigest()


def load_mmrec(root: str | Path, require_features: bool = True) -> Dataset:
    """Load and validate an MMRec directory (see module docstring for the layout)."""
    root = Path(root).expanduser().resolve()
    inter = find_inter(root)
    user, item, label = read_inter(inter)
    n_users = check_contiguous(user, "user", inter)
    n_items = check_contiguous(item, "item", inter)
    code = user * n_items + item
    sorted_code = np.sort(code)
    dup = sorted_code[1:] == sorted_code[:-1]
    if dup.any():
        first = int(sorted_code[1:][dup][0])
        raise DataError(f"duplicate (user, item) rows: {int(dup.sum())} repeats, first user "
                        f"{first // n_items} item {first % n_items}", inter)
    pairs = np.stack([user, item], axis=1).astype(np.int64)
    train = pairs[label == 0]
    if len(train) == 0:
        raise DataError("empty train split (no rows with x_label 0)", inter)
    has_train = np.bincount(train[:, 0], minlength=n_users) > 0
    splits = {}
    for value, split in ((1, "valid"), (2, "test")):
        rows = pairs[label == value]
        rows = rows[has_train[rows[:, 0]]]
        if len(rows) == 0:
            raise DataError(f"empty {split} split (no rows with x_label {value} for users with "
                            "training interactions)", inter)
        splits[split] = np.ascontiguousarray(rows)
    image_feat = _load_feature(root, FEATURE_FILES[0], n_items, require_features)
    text_feat = _load_feature(root, FEATURE_FILES[1], n_items, require_features)
    planted = _load_planted(root)
    features = _read_features_json(root / "features.json")
    synthetic = bool(features.get("synthetic", planted is not None))
    return Dataset(
        name=_dataset_name(root, inter), root=root, n_users=n_users, n_items=n_items,
        train=np.ascontiguousarray(train), valid=splits["valid"], test=splits["test"],
        image_feat=image_feat, text_feat=text_feat, items=_load_items(root, n_items),
        fingerprint=_fingerprint(inter, [("image", image_feat), ("text", text_feat)], planted),
        planted=planted, synthetic_features=synthetic, attribute_modalities=attribute_modalities(features))


def _read_features_json(path: Path) -> dict:
    """The dataset's optional features.json (what featurized it, what its world shows), or {}."""
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError("features.json is not valid JSON", path) from exc
    if not isinstance(meta, dict):
        raise DataError(f"features.json must hold a JSON object, not a {type(meta).__name__}", path)
    return meta


def attribute_modalities(features: dict) -> dict[str, str]:
    """Which modality shows each items.csv attribute, from a synthetic world's description in
    features.json (``world.appearance/semantics/behaviour.attributes``): {column: "A"|"S"|"B"}.
    Columns it does not name are what titles and metadata say (semantics)."""
    world = features.get("world")
    out: dict[str, str] = {}
    if isinstance(world, dict):
        for section, modality in (("appearance", "A"), ("semantics", "S"), ("behaviour", "B")):
            attrs = world.get(section, {}).get("attributes", []) if isinstance(world.get(section), dict) else []
            out.update({str(a): modality for a in attrs if isinstance(a, str)})
    return out


__all__ = ["Dataset", "load_mmrec"]
