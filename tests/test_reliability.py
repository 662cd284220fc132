"""Reliability: corrupted, truncated, hostile and mismatched inputs (checkpoints and MMRec datasets).

Every case must raise a :class:`magnet.errors.MagnetError` subclass whose message is one line and
names the offending file, must never execute pickled code, and must leave no partial output.
The fixture's checkpoints are never modified: each test works on a copy under ``tmp_path``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from magnet.checkpoint import REQUIRED_FILES, load_checkpoint
from magnet.data.mmrec import load_mmrec
from magnet.errors import CheckpointError, DataError, MagnetError
from magnet.fileio import write_atomic_dir

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# 1. safe loading: nothing is ever unpickled
# --------------------------------------------------------------------------------------------

def test_evil_payload_is_live(tmp_path: Path) -> None:
    """Control: the payload used below really does create its marker when unpickled."""
    marker = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(Evil(marker)))
    assert marker.exists()
    marker2 = tmp_path / "control-marker-torch"
    buf = io.BytesIO()
    torch.save({"w": Evil(marker2)}, buf)
    buf.seek(0)
    torch.load(buf, weights_only=False)
    assert marker2.exists()


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_pickle_as_model_safetensors_is_refused(tiny_checkpoints, tmp_path, writer) -> None:
    d = copy_ckpt(tiny_checkpoints, tmp_path)
    marker = tmp_path / "PWNED"
    payload = {"encoder.embedding": Evil(marker)}
    with open(d / "model.safetensors", "wb") as fh:
        pickle.dump(payload, fh) if writer == "pickle" else torch.save(payload, fh)
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(d)
    assert_one_line(info.value, "model.safetensors")
    assert not marker.exists(), "the loader executed pickled code"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["model.pt", "model.pth"])
def test_pickle_weights_instead_of_safetensors_are_refused(tiny_checkpoints, tmp_path, name) -> None:
    """A torch pickle in place of model.safetensors: refused as missing weights, never loaded."""
    d = copy_ckpt(tiny_checkpoints, tmp_path)
    marker = tmp_path / "PWNED"
    (d / "model.safetensors").unlink()
    torch.save({"encoder.embedding": Evil(marker)}, d / name)
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(d)
    assert_one_line(info.value, "model.safetensors")
    assert not marker.exists(), "the loader executed pickled code"
    assert snapshot(tmp_path) == before


def test_stray_pickle_files_are_ignored(tiny_checkpoints, tmp_path) -> None:
    """model.pt / model.pth next to a good model.safetensors are never opened."""
    d = copy_ckpt(tiny_checkpoints, tmp_path)
    marker = tmp_path / "PWNED"
    for name in ("model.pt", "model.pth", "optimizer.pt"):
        torch.save({"x": Evil(marker)}, d / name)
    ckpt = load_checkpoint(d)
    assert ckpt.model is not None
    assert not marker.exists(), "the loader executed pickled code"


@pytest.mark.parametrize("name", ["projection.npz", "planted_truth.npz"])
def test_object_array_npz_is_refused(tiny_checkpoints, tmp_path, name) -> None:
    d = copy_ckpt(tiny_checkpoints, tmp_path)
    marker = tmp_path / "PWNED"
    np.savez(d / name, item_xy=np.array([Evil(marker)], dtype=object),
             user_xy=np.zeros((3, 2)), reliance=np.array([Evil(marker)], dtype=object))
    assert not marker.exists()
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(d)
    assert_one_line(info.value, name)
    assert not marker.exists(), "the loader executed pickled code"
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------
# 2a. checkpoint fuzz table
# --------------------------------------------------------------------------------------------

def _missing(name: str) -> Callable[[Path], None]:
    return lambda d: (d / name).unlink()


CKPT_CASES: list = [
    *[pytest.param(_missing(n), n, id=f"missing-{n}") for n in REQUIRED_FILES],
    pytest.param(lambda d: truncate(d / "model.safetensors"), "model.safetensors", id="safetensors-half"),
    pytest.param(lambda d: truncate(d / "model.safetensors", 10), "model.safetensors",
                 id="safetensors-10-bytes"),
    pytest.param(lambda d: truncate(d / "model.safetensors", 0), "model.safetensors",
                 id="safetensors-empty"),
    pytest.param(lambda d: (d / "model.safetensors").write_bytes(garbage(4096)), "model.safetensors",
                 id="safetensors-random-bytes"),
    pytest.param(lambda d: [(d / "model.safetensors").unlink(), (d / "model.safetensors").mkdir()],
                 "model.safetensors", id="safetensors-is-a-directory"),
    pytest.param(lambda d: (d / "config.json").write_text('{"format_version": 1, "run": {'),
                 "config.json", id="config-invalid-json"),
    pytest.param(lambda d: (d / "config.json").write_bytes(garbage(300)), "config.json",
                 id="config-binary"),
    pytest.param(lambda d: (d / "config.json").write_text("[1, 2, 3]"), "config.json",
                 id="config-not-an-object"),
    pytest.param(cfg(lambda c: c.__setitem__("format_version", 99)), "config.json",
                 id="config-format-version-99"),
    pytest.param(cfg(lambda c: c.pop("format_version")), "config.json", id="config-no-format-version"),
    pytest.param(cfg(lambda c: c.pop("run")), "config.json", id="config-missing-run"),
    pytest.param(cfg(lambda c: c.__setitem__("run", "full")), "config.json", id="config-run-not-object"),
    pytest.param(cfg(lambda c: c.pop("dataset")), "config.json", id="config-missing-dataset"),
    pytest.param(cfg(lambda c: c["run"].__setitem__("colour", "blue")), "config.json",
                 id="config-unknown-run-field"),
    pytest.param(cfg(lambda c: c["run"]["model"].__setitem__("depth", 3)), "config.json",
                 id="config-unknown-model-field"),
    pytest.param(cfg(lambda c: c["run"]["model"].__setitem__("embedding_dim", "64")), "config.json",
                 id="config-embedding-dim-string"),
    pytest.param(cfg(lambda c: c["run"]["train"].__setitem__("topks", [5, "x"])), "config.json",
                 id="config-topks-wrong-type"),
    pytest.param(cfg(lambda c: c["run"].__setitem__("model", 7)), "config.json",
                 id="config-model-not-object"),
    pytest.param(cfg(lambda c: c["dataset"].pop("n_users")), "config.json", id="config-no-n-users"),
    pytest.param(cfg(lambda c: c["dataset"].__setitem__("n_items", "eighty")), "config.json",
                 id="config-n-items-not-a-number"),
    # shape mismatches between config.json and the tensors: the message names the weights file
    pytest.param(cfg(lambda c: c["run"]["model"].__setitem__("embedding_dim", 32)), "model.safetensors",
                 id="config-embedding-dim-changed"),
    pytest.param(cfg(lambda c: c["dataset"].__setitem__("n_items", c["dataset"]["n_items"] + 1)),
                 "model.safetensors", id="config-n-items-changed"),
    pytest.param(cfg(lambda c: c["dataset"].__setitem__("image_dim", 7)), "model.safetensors",
                 id="config-image-dim-changed"),
    pytest.param(rename_tensor, "model.safetensors", id="safetensors-renamed-tensor"),
    pytest.param(drop_tensor, "model.safetensors", id="safetensors-missing-tensor"),
    pytest.param(lambda d: (d / "metrics.json").write_text('{"valid": {"recall@20": 0.3'), "metrics.json",
                 id="metrics-invalid-json"),
    pytest.param(lambda d: (d / "metrics.json").write_bytes(garbage(200, 1)), "metrics.json",
                 id="metrics-binary"),
    pytest.param(lambda d: (d / "switch.json").write_text("{step: 3}"), "switch.json",
                 id="switch-invalid-json"),
    pytest.param(lambda d: (d / "switch.json").write_text(""), "switch.json", id="switch-empty"),
    pytest.param(lambda d: (d / "trace.csv").write_bytes(garbage(2000, 2)), "trace.csv",
                 id="trace-binary-garbage"),
    pytest.param(lambda d: (d / "trace.csv").write_bytes(bytes(range(256)) * 4), "trace.csv",
                 id="trace-all-byte-values"),
    pytest.param(lambda d: (d / "trace.csv").write_text(""), "trace.csv", id="trace-empty"),
    pytest.param(lambda d: (d / "projection.npz").write_bytes(garbage(500, 3)), "projection.npz",
                 id="projection-garbage"),
    pytest.param(lambda d: truncate(d / "projection.npz"), "projection.npz", id="projection-truncated"),
    pytest.param(lambda d: truncate(d / "projection.npz", 0), "projection.npz", id="projection-empty"),
    pytest.param(lambda d: (d / "planted_truth.npz").write_bytes(garbage(500, 4)), "planted_truth.npz",
                 id="planted-garbage"),
    # the checkpoint's run config is validated before a model is built
    pytest.param(cfg(lambda c: c["run"]["model"].__setitem__("embedding_dim", 0)), "config.json",
                 id="config-embedding-dim-zero",
                 marks=pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")),
    pytest.param(cfg(lambda c: c["run"]["model"].__setitem__("embedding_dim", -3)), "config.json",
                 id="config-embedding-dim-negative"),
    pytest.param(cfg(lambda c: c["run"].__setitem__("variant", "bogus")), "config.json",
                 id="config-unknown-variant"),
]


def assert_refused(load, target: Path, error: type, name: str, tree: Path) -> None:
    """``load(target)`` raises ``error`` in one line naming ``name`` and leaves ``tree`` untouched."""
    before = snapshot(tree)
    with pytest.raises(MagnetError) as info:
        load(target)
    assert isinstance(info.value, error), type(info.value)
    assert_one_line(info.value, name)
    assert snapshot(tree) == before, "loading changed files on disk"


@pytest.mark.parametrize(("corrupt", "name"), CKPT_CASES)
def test_corrupt_checkpoint(tiny_checkpoints, tmp_path, corrupt, name) -> None:
    d = copy_ckpt(tiny_checkpoints, tmp_path)
    corrupt(d)
    assert_refused(load_checkpoint, d, CheckpointError, name, tmp_path)


def test_checkpoint_path_problems(tmp_path) -> None:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "nowhere")
    assert_one_line(info.value, "nowhere")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "afile")
    assert_one_line(info.value, "afile")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "empty")
    assert_one_line(info.value, "config.json")


def test_checkpoint_for_another_dataset(tiny_checkpoints, tmp_path) -> None:
    from magnet.restore import evaluate_checkpoint

    d = copy_ckpt(tiny_checkpoints, tmp_path, with_dataset=True)
    edit_json(d / "config.json", lambda c: c["dataset"].__setitem__("fingerprint", "0" * 64))
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError) as info:
        evaluate_checkpoint(d, device="cpu")
    assert_one_line(info.value, "config.json")
    assert "another dataset" in str(info.value)
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------
# 2b. dataset fuzz table
# --------------------------------------------------------------------------------------------

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


def _rows(fn: Callable[[list], list]) -> Callable[[Path], None]:
    return lambda d: write_inter(d / "toy.inter", fn(base_rows()))


def _set_feat(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        np.save(d / name, fn(np.load(d / name)))
    return mutate


def _with(arr: np.ndarray, value: float) -> np.ndarray:
    arr = arr.copy()
    arr[2, 1] = value
    return arr


def _replace_text(old: str, new: str) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        p = d / "toy.inter"
        p.write_text(p.read_text().replace(old, new, 1))
    return mutate


def _data_line(k: int, text: str) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        p = d / "toy.inter"
        lines = p.read_text().splitlines()
        lines[k] = text
        p.write_text("\n".join(lines) + "\n")
    return mutate


_ZIP = npz_bytes(a=np.ones((N_ITEMS, 6), np.float32))

DATA_CASES: list = [
    pytest.param(lambda d: write_inter(d / "toy.inter", base_rows(),
                                       HEADER.replace("userID", "userId")), "toy.inter", id="wrong-column-name"),
    pytest.param(lambda d: write_inter(d / "toy.inter", base_rows(), HEADER.replace("\t", ",")),
                 "toy.inter", id="comma-separated"),
    pytest.param(_data_line(3, "2\tbob\t5\t1\t0"), "toy.inter", id="non-integer-user-id"),
    pytest.param(_data_line(3, "2.5\t0\t5\t1\t0"), "toy.inter", id="fractional-item-id"),
    pytest.param(_data_line(3, "2\t\t5\t1\t0"), "toy.inter", id="empty-user-id"),
    pytest.param(_data_line(3, "-1\t0\t5\t1\t0"), "toy.inter", id="negative-item-id"),
    pytest.param(_data_line(3, "2\t-4\t5\t1\t0"), "toy.inter", id="negative-user-id"),
    pytest.param(_rows(lambda r: [(i if i != 2 else 7, u, x) for i, u, x in r]), "toy.inter",
                 id="non-contiguous-item-id"),
    pytest.param(_rows(lambda r: [(i, u if u != 1 else 9, x) for i, u, x in r]), "toy.inter",
                 id="non-contiguous-user-id"),
    pytest.param(_rows(lambda r: r + [r[0]]), "toy.inter", id="duplicate-row"),
    pytest.param(_rows(lambda r: r + [(r[0][0], r[0][1], 2)]), "toy.inter", id="duplicate-pair-other-split"),
    pytest.param(_rows(lambda r: [(i, u, 7 if x == 2 else x) for i, u, x in r]), "toy.inter", id="x-label-7"),
    pytest.param(_rows(lambda r: [(i, u, 1 if x == 2 else x) for i, u, x in r]), "toy.inter",
                 id="empty-test-split"),
    pytest.param(_rows(lambda r: [(i, u, 2 if x == 1 else x) for i, u, x in r]), "toy.inter",
                 id="empty-valid-split"),
    pytest.param(_rows(lambda r: [(i, u, 1 if x == 0 else x) for i, u, x in r]), "toy.inter",
                 id="empty-train-split"),
    pytest.param(_rows(lambda r: []), "toy.inter", id="header-only"),
    pytest.param(lambda d: (d / "toy.inter").write_text(""), "toy.inter", id="empty-inter-file"),
    pytest.param(lambda d: (d / "toy.inter").write_bytes(garbage(800, 5)), "toy.inter", id="inter-binary"),
    pytest.param(_set_feat("image_feat.npy", lambda a: _with(a, np.nan)), "image_feat.npy", id="nan-feature"),
    pytest.param(_set_feat("text_feat.npy", lambda a: _with(a, np.inf)), "text_feat.npy", id="inf-feature"),
    pytest.param(_set_feat("image_feat.npy", lambda a: a[:-1]), "image_feat.npy", id="feature-rows-lt-items"),
    pytest.param(_set_feat("text_feat.npy", lambda a: np.vstack([a, a[:1]])), "text_feat.npy",
                 id="feature-rows-gt-items"),
    pytest.param(_set_feat("image_feat.npy", lambda a: a[:, 0]), "image_feat.npy", id="feature-1d"),
    pytest.param(_set_feat("image_feat.npy", lambda a: a[None]), "image_feat.npy", id="feature-3d"),
    pytest.param(_set_feat("text_feat.npy", lambda a: a.astype(str)), "text_feat.npy", id="feature-strings"),
    pytest.param(lambda d: (d / "text_feat.npy").unlink(), "text_feat.npy", id="missing-text-feat"),
    pytest.param(lambda d: (d / "image_feat.npy").unlink(), "image_feat.npy", id="missing-image-feat"),
    pytest.param(lambda d: (d / "image_feat.npy").write_bytes(garbage(600, 6)), "image_feat.npy",
                 id="feature-garbage-bytes"),
    pytest.param(lambda d: (d / "text_feat.npy").write_bytes(b""), "text_feat.npy", id="feature-empty-file"),
    pytest.param(lambda d: truncate(d / "image_feat.npy"), "image_feat.npy", id="feature-truncated-npy"),
    pytest.param(lambda d: shutil.copy(d / "toy.inter", d / "copy.inter"), "copy.inter", id="two-inter-files"),
    pytest.param(lambda d: (d / "toy.inter").unlink(), ".inter", id="no-inter-file"),
    pytest.param(lambda d: (d / "items.csv").write_bytes(garbage(300, 7)), "items.csv", id="items-csv-binary"),
    pytest.param(lambda d: (d / "items.csv").write_text("id,title\n0,a\n"), "items.csv",
                 id="items-csv-no-itemID"),
    pytest.param(lambda d: (d / "items.csv").write_text("itemID,title\n0,a\n0,b\n"), "items.csv",
                 id="items-csv-duplicate-id"),
    pytest.param(lambda d: (d / "features.json").write_text("{synthetic: yes"), "features.json",
                 id="features-json-invalid"),
    pytest.param(lambda d: (d / "planted_truth.npz").write_bytes(garbage(400, 8)), "planted_truth.npz",
                 id="planted-garbage"),
    # np.load sees the zip magic and raises zipfile.BadZipFile: must become a DataError
    pytest.param(lambda d: (d / "image_feat.npy").write_bytes(_ZIP[: len(_ZIP) // 2]), "image_feat.npy",
                 id="feature-truncated-zip"),
    pytest.param(lambda d: (d / "planted_truth.npz").write_bytes(_ZIP[: len(_ZIP) // 2]), "planted_truth.npz",
                 id="planted-truncated-zip"),
    # a huge id must be refused before any allocation sized by it
    pytest.param(_data_line(3, f"{10 ** 15}\t0\t5\t1\t0"), "toy.inter", id="huge-item-id"),
]


def test_toy_dataset_is_valid(tmp_path) -> None:
    """Control: the uncorrupted toy dataset loads, so every failure below is due to its corruption."""
    data = load_mmrec(make_dataset(tmp_path / "toy"))
    assert (data.n_users, data.n_items) == (N_USERS, N_ITEMS)
    assert len(data.train) == 2 * N_USERS and len(data.valid) == len(data.test) == N_USERS
    assert data.image_feat.shape == (N_ITEMS, 6) and data.text_feat.shape == (N_ITEMS, 8)


@pytest.mark.parametrize(("corrupt", "name"), DATA_CASES)
def test_corrupt_dataset(tmp_path, corrupt, name) -> None:
    root = make_dataset(tmp_path / "toy")
    corrupt(root)
    assert_refused(load_mmrec, root, DataError, name, tmp_path)


def test_pickled_feature_file_is_refused(tmp_path) -> None:
    root = make_dataset(tmp_path / "toy")
    marker = tmp_path / "PWNED"
    np.save(root / "image_feat.npy", np.array([Evil(marker)] * N_ITEMS, dtype=object), allow_pickle=True)
    with open(root / "text_feat.npy", "wb") as fh:
        pickle.dump(Evil(marker), fh)
    with pytest.raises(DataError) as info:
        load_mmrec(root)
    assert_one_line(info.value, "image_feat.npy")
    np.save(root / "image_feat.npy", np.zeros((N_ITEMS, 6), np.float32))
    with pytest.raises(DataError) as info:
        load_mmrec(root)
    assert_one_line(info.value, "text_feat.npy")
    assert not marker.exists(), "the loader executed pickled code"


@pytest.mark.parametrize("big", [10 ** 19, 10 ** 20], ids=["uint64", "beyond-uint64"])
def test_id_beyond_int64(tmp_path, big) -> None:
    import warnings

    root = make_dataset(tmp_path / "toy")
    _data_line(3, f"2\t{big}\t5\t1\t0")(root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError) as info:
            load_mmrec(root)
    assert_one_line(info.value, "toy.inter")
    assert "negative" not in str(info.value), f"misleading message: {info.value}"
    assert not caught, f"warnings leaked: {[str(w.message) for w in caught]}"


def test_dataset_path_problems(tmp_path) -> None:
    with pytest.raises(DataError) as info:
        load_mmrec(tmp_path / "nowhere")
    assert_one_line(info.value, "nowhere")
    (tmp_path / "afile.inter").write_text(HEADER + "\n")
    with pytest.raises(DataError) as info:
        load_mmrec(tmp_path / "afile.inter")
    assert_one_line(info.value, "afile.inter")


# --------------------------------------------------------------------------------------------
# 3. command line: one "error:" line on stderr, exit status 2
# --------------------------------------------------------------------------------------------

def _truncate_weights(d: Path) -> None:
    truncate(d / "model.safetensors")


def _other_dataset(d: Path) -> None:
    edit_json(d / "config.json", lambda c: c["dataset"].__setitem__("fingerprint", "0" * 64))


@pytest.mark.parametrize(("corrupt", "needle"), [
    pytest.param(_truncate_weights, "model.safetensors", id="truncated-weights"),
    pytest.param(_other_dataset, "another dataset", id="another-dataset"),
])
def test_cli_evaluate_corrupt_checkpoint(tiny_checkpoints, tmp_path, corrupt, needle) -> None:
    d = copy_ckpt(tiny_checkpoints, tmp_path, with_dataset=True)
    corrupt(d)
    before = snapshot(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
    proc = subprocess.run([sys.executable, "-m", "magnet", "evaluate", str(d)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{proc.stderr}"
    assert lines[0].startswith("error:") and needle in lines[0], lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert snapshot(tmp_path) == before


def _nan_feature(d: Path) -> None:
    _set_feat("image_feat.npy", lambda a: _with(a, np.nan))(d)


def _id_beyond_int64(d: Path) -> None:
    _data_line(3, f"2\t{10 ** 20}\t5\t1\t0")(d)


@pytest.mark.parametrize(("corrupt", "needle"), [
    pytest.param(_nan_feature, "image_feat.npy", id="nan-feature"),
    pytest.param(_id_beyond_int64, "toy.inter", id="id-beyond-int64"),
])
def test_cli_train_corrupt_dataset(tmp_path, corrupt, needle) -> None:
    root = make_dataset(tmp_path / "toy")
    corrupt(root)
    before = snapshot(tmp_path)
    out = tmp_path / "runs" / "ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "magnet", "train", "--data", str(root), "--out", str(out),
                           "--epochs", "1", "--quiet", "--projection", "pca"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{proc.stderr}"
    assert lines[0].startswith("error:") and needle in lines[0], lines[0]
    assert not out.exists(), "a checkpoint directory was written for a dataset that failed to load"
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir()), f"leftovers: {sorted(runs.iterdir())}"
    after = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("runs")}
    assert after == before, "partial output left behind"


# --------------------------------------------------------------------------------------------
# 4. atomic directory writes
# --------------------------------------------------------------------------------------------

def _existing_target(tmp_path: Path) -> Path:
    target = tmp_path / "out" / "ckpt"
    (target / "sub").mkdir(parents=True)
    (target / "a.txt").write_text("old a")
    (target / "sub" / "b.bin").write_bytes(b"\x00old b")
    return target


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_write_atomic_dir_failure_keeps_old_contents(tmp_path, exc_type) -> None:
    target = _existing_target(tmp_path)
    before = snapshot(target)
    seen: list[Path] = []

    def writer(tmp: Path) -> None:
        seen.append(tmp)
        (tmp / "a.txt").write_text("new a, half written")
        raise exc_type("writer crashed")

    with pytest.raises(exc_type):
        write_atomic_dir(target, writer)
    assert seen and seen[0].parent == target.parent and seen[0] != target
    assert snapshot(target) == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["ckpt"], "temp dir left behind"


def test_write_atomic_dir_failure_without_previous_target(tmp_path) -> None:
    target = tmp_path / "out" / "fresh"

    def writer(tmp: Path) -> None:
        (tmp / "x.txt").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_atomic_dir(target, writer)
    assert not target.exists()
    assert list(target.parent.iterdir()) == [], "temp dir left behind"


def test_write_atomic_dir_success_replaces_wholly(tmp_path) -> None:
    target = _existing_target(tmp_path)

    def writer(tmp: Path) -> None:
        (tmp / "new.txt").write_text("new")
        (tmp / "nested").mkdir()
        (tmp / "nested" / "c.txt").write_text("c")

    write_atomic_dir(target, writer)
    assert sorted(snapshot(target)) == ["nested", "nested/c.txt", "new.txt"]
    assert (target / "new.txt").read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["ckpt"], "temp or old dir left behind"
    write_atomic_dir(target, lambda tmp: (tmp / "only.txt").write_text("2"))
    assert sorted(snapshot(target)) == ["only.txt"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["ckpt"]
