"""Atomic writes (magnet.fileio): a failure leaves the old contents, a success replaces them
wholly."""
from __future__ import annotations

from pathlib import Path

import pytest

from magnet.fileio import write_atomic_dir
from tests.hostile import snapshot

# --------------------------------------------------------------------------------------------
# atomic directory writes
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
