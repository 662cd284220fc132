"""Helpers for hostile and careless inputs, shared by the unit, integration and app tests:
a pickle payload that proves code ran, tree snapshots that prove nothing was written, one-line
error checks, a valid toy MMRec dataset to corrupt, and byte-level corruptions."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from magnet.errors import MagnetError

REPO = Path(__file__).resolve().parents[1]


class Evil:
    """Unpickling this creates ``marker``: proof that a loader executed pickled code."""

    def __init__(self, marker: Path) -> None:
        self.marker = Path(marker)

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (dot-files included) -> content hash, or "<dir>"."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = "<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_one_line(exc: BaseException, name: str) -> None:
    msg = str(exc)
    assert msg.strip(), "empty error message"
    assert "\n" not in msg and "\r" not in msg, f"multi-line message: {msg!r}"
    assert name in msg, f"message does not name {name!r}: {msg!r}"
    assert "Traceback" not in msg


def assert_refused(load, target: Path, error: type, name: str, tree: Path) -> None:
    """``load(target)`` raises ``error`` in one line naming ``name`` and leaves ``tree`` untouched."""
    before = snapshot(tree)
    with pytest.raises(MagnetError) as info:
        load(target)
    assert isinstance(info.value, error), type(info.value)
    assert_one_line(info.value, name)
    assert snapshot(tree) == before, "loading changed files on disk"


def copy_ckpt(tiny_checkpoints: Path, tmp_path: Path, variant: str = "full",
              with_dataset: bool = False) -> Path:
    """Copy ``tiny/<variant>`` (and ``tiny/dataset``) into ``tmp_path/tiny``; returns the copy."""
    dst = tmp_path / "tiny" / variant
    shutil.copytree(tiny_checkpoints / "tiny" / variant, dst)
    if with_dataset:
        shutil.copytree(tiny_checkpoints / "tiny" / "dataset", tmp_path / "tiny" / "dataset")
    return dst


def edit_json(path: Path, fn: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data, indent=2))


def cfg(fn: Callable[[dict], None]) -> Callable[[Path], None]:
    return lambda d: edit_json(d / "config.json", fn)


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def garbage(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).bytes(n)


def truncate(path: Path, size: int | None = None) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 if size is None else size])


def rename_tensor(d: Path) -> None:
    state = load_file(str(d / "model.safetensors"))
    key = sorted(state)[0]
    state["not_a_" + key.replace(".", "_")] = state.pop(key)
    save_file(state, str(d / "model.safetensors"))


def drop_tensor(d: Path) -> None:
    state = load_file(str(d / "model.safetensors"))
    state.pop(sorted(state)[-1])
    save_file(state, str(d / "model.safetensors"))


HEADER = "itemID\tuserID\trating\ttimestamp\tx_label"
N_USERS, N_ITEMS = 4, 5


def base_rows() -> list[tuple[int, int, int]]:
    """(item, user, x_label): every user has 2 train, 1 valid, 1 test; items 0..4 all used."""
    rows = []
    for u in range(N_USERS):
        for j, label in enumerate((0, 0, 1, 2)):
            rows.append(((u + j) % N_ITEMS, u, label))
    return rows


def write_inter(path: Path, rows, header: str = HEADER) -> None:
    lines = [header] + [f"{i}\t{u}\t5\t{1000 + k}\t{x}" for k, (i, u, x) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")


def make_dataset(root: Path) -> Path:
    root.mkdir(parents=True)
    write_inter(root / "toy.inter", base_rows())
    rng = np.random.default_rng(0)
    np.save(root / "image_feat.npy", rng.normal(size=(N_ITEMS, 6)).astype(np.float32))
    np.save(root / "text_feat.npy", rng.normal(size=(N_ITEMS, 8)).astype(np.float32))
    return root


def rows_with(fn: Callable[[list], list]) -> Callable[[Path], None]:
    return lambda d: write_inter(d / "toy.inter", fn(base_rows()))


def set_feature(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        np.save(d / name, fn(np.load(d / name)))
    return mutate


def with_value(arr: np.ndarray, value: float) -> np.ndarray:
    arr = arr.copy()
    arr[2, 1] = value
    return arr


def replace_text(old: str, new: str) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        p = d / "toy.inter"
        p.write_text(p.read_text().replace(old, new, 1))
    return mutate


def data_line(k: int, text: str) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        p = d / "toy.inter"
        lines = p.read_text().splitlines()
        lines[k] = text
        p.write_text("\n".join(lines) + "\n")
    return mutate
