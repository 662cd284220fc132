"""How the project writes files: atomically (never a half-written file or directory), JSON that
understands numpy scalars, and GitHub Markdown tables. Torch-free."""
from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np


def write_file_atomic(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp)`` on a temporary sibling of ``path``, then rename it to ``path``:
    readers see the old file or the new one, never a part of it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        writer(tmp)
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
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        writer(tmp)
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
        tmp.chmod(0o755)  # mkdtemp makes it 0700
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
