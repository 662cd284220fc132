"""Atomic writes (magnet.fileio): a failure leaves the old contents, a success replaces them
wholly."""
from __future__ import annotations

from pathlib import Path

import pytest

from magnet.fileio import write_atomic_dir, write_file_atomic
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


def test_write_atomic_dir_never_replaces_a_file(tmp_path) -> None:
    """A file at the target is the user's: it is neither moved aside nor replaced."""
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    with pytest.raises(NotADirectoryError):
        write_atomic_dir(target, lambda tmp: (tmp / "x").write_text("x"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"] and target.read_text() == "mine"


# --------------------------------------------------------------------------------------------
# safe reading: only regular files, JSON with one-line errors
# --------------------------------------------------------------------------------------------
from magnet.errors import DataError  # noqa: E402
from magnet.fileio import optional_regular, read_json_file, require_regular, writable_dir  # noqa: E402
from tests.hostile import assert_one_line, link_to, make_fifo, read_only  # noqa: E402


@pytest.mark.parametrize(("make", "kind"), [
    pytest.param(make_fifo, "a FIFO", id="fifo"),
    pytest.param(lambda p: link_to(p, "/dev/zero"), "a device", id="dev-zero"),
    pytest.param(lambda p: link_to(p, "/dev/urandom"), "a device", id="dev-urandom"),
    pytest.param(lambda p: p.mkdir(), "a directory", id="directory"),
])
def test_special_files_are_never_opened(tmp_path, make, kind) -> None:
    path = make(tmp_path / "x.json") or tmp_path / "x.json"
    for read in (lambda: require_regular(path, DataError), lambda: optional_regular(path, DataError),
                 lambda: read_json_file(path, DataError)):
        with pytest.raises(DataError) as info:
            read()
        assert_one_line(info.value, "x.json")
        assert kind in str(info.value)


def test_optional_regular(tmp_path) -> None:
    assert optional_regular(tmp_path / "absent", DataError) is False
    (tmp_path / "f").write_text("x")
    assert optional_regular(tmp_path / "f", DataError) is True
    link_to(tmp_path / "dangling", tmp_path / "nowhere")
    with pytest.raises(DataError, match="dangling"):
        optional_regular(tmp_path / "dangling", DataError)


@pytest.mark.parametrize(("content", "phrase"), [
    (b'{"a": 1', "not valid JSON"),
    (b"\xff\xfe\x00garbage", "not a UTF-8 text file"),
    (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    (b"1" * 5000, "not valid JSON"),
])
def test_read_json_errors_are_one_line(tmp_path, content, phrase) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_json_file(path, DataError)
    assert_one_line(info.value, "f.json")
    assert phrase in str(info.value)


def test_read_json_size_limit_and_bom(tmp_path) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"a": [1, 2]}')
    assert read_json_file(path, DataError) == {"a": [1, 2]}
    with pytest.raises(DataError, match="too large"):
        read_json_file(path, DataError, max_bytes=4)


def test_writable_dir_is_tried(tmp_path) -> None:
    assert writable_dir(tmp_path) is None
    with read_only(tmp_path):
        assert writable_dir(tmp_path) is not None
    assert writable_dir(tmp_path / "absent") is not None
    assert list(tmp_path.iterdir()) == [], "the probe left a file behind"


def test_written_checkpoints_get_the_umask_modes(tmp_path) -> None:
    """mkdtemp (0700) and safetensors (0600) must not make a checkpoint private."""
    import os

    from safetensors.torch import save_file
    import torch

    def writer(tmp):
        save_file({"w": torch.zeros(2)}, str(tmp / "model.safetensors"))
        (tmp / "sub").mkdir(mode=0o700)
        (tmp / "sub" / "a.txt").write_text("x")

    old = os.umask(0o022)
    try:
        write_atomic_dir(tmp_path / "ck", writer)
        write_file_atomic(tmp_path / "f.safetensors", lambda p: save_file({"w": torch.zeros(1)}, str(p)))
    finally:
        os.umask(old)
    modes = {p.relative_to(tmp_path).as_posix(): p.stat().st_mode & 0o777
             for p in [tmp_path / "ck", *(tmp_path / "ck").rglob("*"), tmp_path / "f.safetensors"]}
    assert modes == {"ck": 0o755, "ck/model.safetensors": 0o644, "ck/sub": 0o755, "ck/sub/a.txt": 0o644,
                     "f.safetensors": 0o644}
