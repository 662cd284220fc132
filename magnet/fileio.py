"""How the project writes files: atomically (never a half-written file or directory), JSON that
understands numpy scalars, and GitHub Markdown tables; and how it reads them safely: only
regular files (a FIFO or a device never hangs a reader), JSON of a bounded size and depth with
one-line errors. Torch-free."""
from __future__ import annotations

import errno
import json
import math
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .errors import MagnetError

MAX_JSON_BYTES = 64 << 20
"""Largest JSON file read (64 MiB: a checkpoint's metrics.json with a long history is < 1 MiB)."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def require_regular(path: str | Path, error: type[MagnetError] = MagnetError) -> Path:
    """``path`` when it is a regular file (links followed); otherwise raise ``error`` naming it.
    FIFOs, devices, sockets and directories are never opened: reading one may block or never end."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error("file not found", path) from None
    except OSError as exc:
        raise error(f"cannot read it ({exc.strerror or type(exc).__name__})", path) from None
    if not stat.S_ISREG(mode):
        raise error(f"is {_kind(mode)}, not a regular file", path)
    return Path(path)


def optional_regular(path: str | Path, error: type[MagnetError] = MagnetError) -> bool:
    """False when nothing is at ``path``; True for a regular file; ``error`` for anything else
    (a FIFO, a device, a directory, a dangling link)."""
    if not os.path.lexists(path):
        return False
    require_regular(path, error)
    return True


def read_json_file(path: str | Path, error: type[MagnetError] = MagnetError,
                   max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse the JSON file ``path`` (a UTF-8 byte-order mark is allowed). Every problem is one
    ``error`` naming the file: not a regular file, larger than ``max_bytes``, not UTF-8, not
    JSON, nested too deeply, an integer too long to convert."""
    require_regular(path, error)
    try:
        size = os.stat(path).st_size
        if size > max_bytes:
            raise error(f"too large for a JSON file ({size / 2**20:.0f} MiB; at most {max_bytes >> 20} MiB)", path)
        text = Path(path).read_bytes().decode("utf-8-sig")
        return json.loads(text)
    except UnicodeDecodeError:
        raise error("not a UTF-8 text file", path) from None
    except json.JSONDecodeError as exc:
        raise error(f"not valid JSON ({exc.msg} at line {exc.lineno})", path) from None
    except RecursionError:
        raise error("not valid JSON (nested too deeply)", path) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise error(f"not valid JSON ({str(exc).splitlines()[0][:100]})", path) from None
    except OSError as exc:
        raise error(f"cannot read it ({exc.strerror or type(exc).__name__})", path) from None


def some_names(names: Sequence[str], shown: int = 3) -> str:
    """``a, b, c, …``: the first ``shown`` of ``names``, and an ellipsis when there are more."""
    return ", ".join(names[:shown]) + (", …" if len(names) > shown else "")


def writable_dir(path: str | Path) -> str | None:
    """None when a file can be created in directory ``path`` (tried, not guessed: permission
    bits do not tell for root, read-only mounts or immutable folders); else the reason."""
    try:
        with tempfile.TemporaryFile(dir=path, prefix=".magnet-probe-"):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def share_like_new_files(root: Path) -> None:
    """Give ``root`` and everything under it the modes a plain ``open``/``mkdir`` would have
    given them: ``mkdtemp`` makes folders 0700 and safetensors writes files 0600, which would
    hide a checkpoint from the other users of a shared machine."""
    mask = _current_umask()
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def write_file_atomic(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp)`` on a temporary sibling of ``path``, then rename it to ``path``:
    readers see the old file or the new one, never a part of it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        writer(tmp)
        share_like_new_files(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`write_file_atomic`)."""
    write_file_atomic(path, lambda tmp: tmp.write_text(text))


def write_atomic_dir(final: str | Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_dir)`` then move tmp_dir to ``final`` (replacing it) in one rename.

    A crash in ``writer`` leaves ``final`` as it was; the temp dir lives beside ``final``.
    """
    final = Path(final)
    if os.path.lexists(final) and not final.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a directory; refusing to replace it",
                                 str(final))
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        writer(tmp)
        share_like_new_files(tmp)
        if final.exists():
            old = final.parent / f".{final.name}.old-{os.getpid()}-{time.time_ns()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def build_cached_dir(target: Path, complete: Callable[[Path], bool], build: Callable[[Path], None]) -> Path:
    """``target``, built once: when ``complete(target)`` is false, ``build(tmp)`` fills a
    temporary sibling that is then renamed into place (an incomplete leftover is replaced; a
    concurrent builder that finished first wins). Returns ``target``."""
    if complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        build(tmp)
        if target.exists():
            if complete(target):
                return target
            shutil.rmtree(target, ignore_errors=True)
        share_like_new_files(tmp)
        os.replace(tmp, target)
    except OSError:
        if complete(target):
            return target
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def json_default(value: Any) -> Any:
    """``json.dumps(default=…)`` for numpy scalars and arrays."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def cell_text(value: Any, float_format: str = ".4f") -> str:
    """A table cell: blank for None, pandas' NA and NaN; floats with ``float_format``."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == "<NA>":
        return ""
    return format(value, float_format) if isinstance(value, float) else str(value)


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]], float_format: str = ".4f") -> str:
    """A GitHub Markdown table; cells go through :func:`cell_text` and ``|`` is escaped."""
    def line(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(cell_text(c, float_format).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "|".join("---" for _ in header) + "|", *(line(r) for r in rows)])


def frame_markdown(frame: Any, float_format: str = ".4f") -> str:
    """:func:`markdown_table` of a pandas DataFrame's columns and rows."""
    return markdown_table(list(frame.columns), frame.itertuples(index=False), float_format)
