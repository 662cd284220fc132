"""MMRec-layout datasets: validated loading of a directory into a :class:`Dataset`.

Every problem with the files is raised up front as a one-line :class:`DataError` naming the
file and the problem.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..fileio import optional_regular, read_json_file
from .inter import check_contiguous, find_inter, read_inter, read_items_csv
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
    dropped: dict[str, int] = field(default_factory=dict)  # valid/test rows of users without training rows
    _history: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False)

    def image_path(self, item: int) -> Path | None:
        """``<root>/images/<item>.jpg|.png|.jpeg`` if it is a regular file inside the dataset
        directory (a link leading out of it is ignored), else None."""
        root = Path(self.root).resolve()
        for ext in (".jpg", ".png", ".jpeg"):
            path = self.root / "images" / f"{int(item)}{ext}"
            if path.is_file() and path.resolve().is_relative_to(root):
                return path
        return None

    def notes(self) -> list[str]:
        """What loading left out, in words (empty when nothing was)."""
        if not any(self.dropped.values()):
            return []
        parts = " and ".join(f"{n} {split}" for split, n in self.dropped.items() if n)
        return [f"{self.root}: dropped {parts} rows of users without training rows"]

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


NPY_MAGIC, ZIP_MAGIC, PICKLE_MAGIC = b"\x93NUMPY", b"PK\x03\x04", b"\x80"


def _npy_kind_problem(head: bytes) -> str | None:
    """What a feature file is when its first bytes are not a .npy header (None when they are)."""
    if head.startswith(NPY_MAGIC):
        return None
    if head.startswith(ZIP_MAGIC):
        return "features must be a .npy array, not an .npz archive (or a zip)"
    if head.startswith(PICKLE_MAGIC):
        return "is a Python pickle, not a .npy array (refused: loading it could run code)"
    return "not a .npy file (no NumPy header)" if head else "empty file, not a .npy array"


def _check_npy_size(handle, path: Path) -> None:
    """The data the header announces is what the file holds (checked before anything is
    allocated: a header may claim terabytes)."""
    version = np.lib.format.read_magic(handle)
    if version not in ((1, 0), (2, 0)):
        return  # np.load reads (and checks) the rarer versions itself
    fmt = np.lib.format
    shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(handle)
    if dtype.hasobject:
        return  # refused by np.load below, with its own message
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    held = os.fstat(handle.fileno()).st_size - handle.tell()
    if expected != held:
        raise DataError(f"the header announces shape {shape} ({expected} bytes of data) but the file holds "
                        f"{held}: truncated or not a .npy file", path)


def _read_npy(path: Path) -> np.ndarray:
    try:
        with open(path, "rb") as handle:  # closed even when np.load fails half-way
            problem = _npy_kind_problem(handle.read(len(NPY_MAGIC)))
            if problem is not None:
                raise DataError(problem, path)
            handle.seek(0)
            _check_npy_size(handle, path)
            handle.seek(0)
            return np.load(handle, allow_pickle=False)
    except DataError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError("holds Python objects (an object array); refused, loading it could run code",
                            path) from None
        raise DataError(f"unreadable .npy file ({str(exc).splitlines()[0][:100]})", path) from None
    except Exception as exc:  # OSError, EOFError, …
        raise DataError(f"unreadable .npy file ({type(exc).__name__})", path) from None


def _load_feature(root: Path, name: str, n_items: int, required: bool) -> np.ndarray | None:
    path = root / name
    if not optional_regular(path, DataError):
        if required:
            raise DataError("missing feature file (required; pass require_features=False to load "
                            "interactions only)", path)
        return None
    arr = _read_npy(path)
    if arr.ndim != 2:
        raise DataError(f"features must be a 2-D array, got shape {getattr(arr, 'shape', '?')}", path)
    if arr.dtype.kind not in "fiub":
        raise DataError(f"features must be numeric, got dtype {arr.dtype}", path)
    if arr.shape[0] != n_items:
        raise DataError(f"feature rows ({arr.shape[0]}) != item count in the .inter file ({n_items})", path)
    if arr.shape[1] == 0:
        raise DataError(f"features have zero width (shape {arr.shape})", path)
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad_rows = ~np.isfinite(arr).all(axis=1)
    if bad_rows.any():
        raise DataError(f"{int(bad_rows.sum())} rows contain NaN or inf (first: row "
                        f"{int(np.flatnonzero(bad_rows)[0])})", path)
    return arr


def _load_items(root: Path, n_items: int) -> pd.DataFrame | None:
    path = root / "items.csv"
    if not optional_regular(path, DataError):
        return None
    items = read_items_csv(path)
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


def _load_planted(root: Path, n_users: int) -> dict[str, np.ndarray] | None:
    path = root / "planted_truth.npz"
    if not optional_regular(path, DataError):
        return None
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as z:
            planted = {k: z[k] for k in z.files}
    except Exception as exc:  # ValueError, OSError, EOFError, zipfile.BadZipFile, …
        raise DataError(f"unreadable planted truth ({exc.__class__.__name__})", path) from None
    if "reliance" in planted:
        reliance = planted["reliance"]
        if reliance.dtype.kind not in "fiu" or reliance.shape != (n_users, 3):
            raise DataError(f"reliance must be a numeric [{n_users}, 3] array, got {reliance.dtype} "
                            f"{list(reliance.shape)}", path)
        planted["reliance"] = reliance.astype(np.float32)
    return planted


def _synthetic_flag(features: dict, default: bool, path: Path) -> bool:
    """``synthetic`` of features.json (true or false), else ``default``."""
    value = features.get("synthetic", default)
    if not isinstance(value, bool):
        raise DataError(f"'synthetic' must be true or false, got {value!r:.40}", path)
    return value


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
    splits, dropped = {}, {}
    for value, split in ((1, "valid"), (2, "test")):
        rows = pairs[label == value]
        keep = has_train[rows[:, 0]]
        dropped[split] = int((~keep).sum())
        if not keep.any():
            raise DataError(f"empty {split} split (no rows with x_label {value} for users with "
                            "training interactions)", inter)
        splits[split] = np.ascontiguousarray(rows[keep])
    image_feat = _load_feature(root, FEATURE_FILES[0], n_items, require_features)
    text_feat = _load_feature(root, FEATURE_FILES[1], n_items, require_features)
    planted = _load_planted(root, n_users)
    features = _read_features_json(root / "features.json")
    synthetic = _synthetic_flag(features, planted is not None, root / "features.json")
    return Dataset(
        name=_dataset_name(root, inter), root=root, n_users=n_users, n_items=n_items,
        train=np.ascontiguousarray(train), valid=splits["valid"], test=splits["test"],
        image_feat=image_feat, text_feat=text_feat, items=_load_items(root, n_items),
        fingerprint=_fingerprint(inter, [("image", image_feat), ("text", text_feat)], planted),
        planted=planted, synthetic_features=synthetic, dropped=dropped,
        attribute_modalities=attribute_modalities(features))


def _read_features_json(path: Path) -> dict:
    """The dataset's optional features.json (what featurized it, what its world shows), or {}."""
    if not optional_regular(path, DataError):
        return {}
    raw = read_json_file(path, DataError)
    if not isinstance(raw, dict):
        raise DataError(f"expected a JSON object, got a {type(raw).__name__}", path)
    return raw


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
