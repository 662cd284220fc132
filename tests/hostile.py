"""Helpers for hostile and careless inputs, shared by the unit, integration and app tests:
a pickle payload that proves code ran, tree snapshots that prove nothing was written, one-line
error checks, a valid toy MMRec dataset to corrupt, byte-level corruptions, special files
(FIFOs, devices), folders nobody may write to or read, and the CLI run in this process."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterator

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
    """Every entry under ``root`` (dot-files included) -> content hash, "<dir>", or the target of
    a link / "<special>" for FIFOs and devices (never opened)."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = f"-> {os.readlink(p)}"
        elif p.is_dir():
            out[rel] = "<dir>"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<special>"
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


# ------------------------------------------------------------------------------------------
# special files and folders
# ------------------------------------------------------------------------------------------
def make_fifo(path: Path) -> Path:
    """Replace ``path`` with a FIFO (opening it for reading would block forever)."""
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def link_to(path: Path, target: str | Path) -> Path:
    """Replace ``path`` with a symbolic link to ``target`` (e.g. /dev/zero: reading never ends)."""
    path.unlink(missing_ok=True)
    path.symlink_to(target)
    return path


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """Nothing can be created in folder ``path`` within the block, root included (chattr +i
    there; mode 0555 otherwise)."""
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
            pytest.skip("cannot make a folder read-only for root here (chattr +i failed)")
        try:
            yield path
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(mode)


@contextlib.contextmanager
def unreadable(path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Folder ``path`` cannot be listed within the block (mode 0; for root, whom modes do not
    stop, os.listdir and os.scandir of it raise PermissionError as they would)."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0)
        try:
            yield path
        finally:
            path.chmod(mode)
        return
    for name in ("listdir", "scandir"):
        real = getattr(os, name)

        def refuse(target=".", _real=real):
            if Path(target).resolve() == path.resolve():
                raise PermissionError(13, "Permission denied", str(target))
            return _real(target)
        monkeypatch.setattr(os, name, refuse)
    yield path


# ------------------------------------------------------------------------------------------
# the command line, in this process (refusals must come before any training: fast)
# ------------------------------------------------------------------------------------------
def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``magnet <argv>`` in this process: (exit status, stdout, stderr)."""
    from magnet.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def assert_cli_error(result: tuple[int, str, str], name: str) -> str:
    """Exit status 2 and one ``error: …`` line on stderr naming ``name``; returns the line."""
    code, out, err = result
    lines = err.strip().splitlines()
    assert code == 2, (code, err[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error:"), err[-2000:]
    assert name in lines[0] and "Traceback" not in err, lines[0]
    return lines[0]
