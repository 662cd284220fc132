"""Where the dashboard may read checkpoints from (app/paths.py)."""
from __future__ import annotations

from app.paths import resolve_under, root_from_args
from tests.hostile import REPO


def test_root_resolution(tmp_path, monkeypatch):
    assert root_from_args(["--checkpoints", str(tmp_path)], {}) == tmp_path.resolve()
    assert root_from_args([f"--checkpoints={tmp_path}"], {}) == tmp_path.resolve()
    assert root_from_args([], {"MAGNET_CHECKPOINTS": str(tmp_path)}) == tmp_path.resolve()
    assert root_from_args([], {}) == (REPO / "checkpoints").resolve()


def test_resolve_under_rejects_escapes(tmp_path):
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    assert resolve_under(root, "") == root.resolve()
    assert resolve_under(root, "a/b") == (root / "a" / "b").resolve()
    assert resolve_under(root, "a/../a/b") == (root / "a" / "b").resolve()
    for bad in ("..", "../outside", "a/../../outside", str(tmp_path / "outside"), "/etc", "link", "a\x00b"):
        assert resolve_under(root, bad) is None, bad
