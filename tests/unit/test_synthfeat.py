"""Synthetic features for interaction-only data (``synthfeat:``), as documented."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from magnet.data import load_dataset
from magnet.data.synthfeat import IMAGE_DIM, TEXT_DIM, synthfeat_dir
from magnet.errors import DataError


def _write_inter(root: Path, rows: list[tuple[int, int, int]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=["userID", "itemID", "x_label"])
    frame["rating"], frame["timestamp"] = 1.0, 0
    path = root / "toy.inter"
    frame[["itemID", "userID", "rating", "timestamp", "x_label"]].to_csv(path, sep="\t", index=False)
    return path


def _toy_rows(n_users: int = 40, n_items: int = 30, seed: int = 0) -> list[tuple[int, int, int]]:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        others = np.setdiff1d(np.arange(n_items), [u % n_items])
        items = np.concatenate([[u % n_items], rng.choice(others, size=7, replace=False)])  # every item appears
        labels = [0] * 6 + [1, 2]
        rows += [(u, int(i), lab) for i, lab in zip(items, labels)]
    return rows


def test_synthfeat_features(tmp_path: Path) -> None:
    source = tmp_path / "src"
    inter = _write_inter(source, _toy_rows())
    cache = tmp_path / "cache"
    data = load_dataset(f"synthfeat:{source}", cache_dir=cache)
    assert data.synthetic_features
    assert data.image_feat.shape == (data.n_items, IMAGE_DIM) and data.image_feat.dtype == np.float32
    assert data.text_feat.shape == (data.n_items, TEXT_DIM) and data.text_feat.dtype == np.float32
    assert (data.image_feat >= 0).all() and (data.image_feat == 0).any()
    assert np.allclose(np.linalg.norm(data.text_feat, axis=1), 1.0, atol=1e-4)
    root = Path(data.root)
    assert root.parent == cache.resolve() and root.name.startswith("synthfeat-toy-")
    assert (root / "toy.inter").is_symlink() and (root / "toy.inter").resolve() == inter.resolve()
    assert json.loads((root / "features.json").read_text())["synthetic"] is True
    assert not list(cache.glob(".tmp-*"))

    # the second load uses the cache: the feature files are not rewritten
    stamp = (root / "image_feat.npy").stat().st_mtime_ns
    again = load_dataset(f"synthfeat:{source}", cache_dir=cache)
    assert (root / "image_feat.npy").stat().st_mtime_ns == stamp
    assert np.array_equal(again.image_feat, data.image_feat) and again.fingerprint == data.fingerprint


def test_synthfeat_uses_train_rows_only(tmp_path: Path) -> None:
    rows = _toy_rows()
    a = synthfeat_dir(_write_inter(tmp_path / "a", rows).parent, tmp_path / "cache")
    changed = list(rows)
    held_out = [j for j, r in enumerate(rows) if r[2] != 0]
    users_items = {(u, i) for u, i, _ in rows}
    for j in held_out[:20]:  # move valid/test rows to other (existing, unused) items
        u, i, lab = changed[j]
        new = next(k for k in range(30) if (u, k) not in users_items)
        users_items.add((u, new))
        changed[j] = (u, new, lab)
    inter_b = _write_inter(tmp_path / "b", changed)
    b = synthfeat_dir(inter_b.parent, tmp_path / "cache")
    assert a != b
    for name in ("image_feat.npy", "text_feat.npy"):
        assert np.array_equal(np.load(a / name), np.load(b / name)), name

    train_changed = list(rows)  # ... while moving a train row does change them
    u, i, _ = train_changed[0]
    train_changed[0] = (u, next(k for k in range(30) if (u, k) not in {(x, y) for x, y, _ in rows}), 0)
    c = synthfeat_dir(_write_inter(tmp_path / "c", train_changed).parent, tmp_path / "cache")
    assert not np.array_equal(np.load(a / "image_feat.npy"), np.load(c / "image_feat.npy"))


def test_synthfeat_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"synthfeat:{tmp_path / 'nope'}", cache_dir=tmp_path / "cache")
