"""Where checkpoints may be read from (pure helpers, no Streamlit).

The dashboard reads checkpoint folders only under one configured root. Every folder name that
comes from outside (sidebar box, ``?ckpt=`` query parameter) goes through :func:`resolve_under`,
which resolves symlinks and ``..`` and rejects anything that lands outside the root.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO_ROOT / "checkpoints"
ASSETS = REPO_ROOT / "assets"  # logo, favicon, placeholder picture, CSS
ENV_VAR = "MAGNET_CHECKPOINTS"


def root_from_args(argv: Sequence[str], environ: dict[str, str] | None = None) -> Path:
    """The checkpoint root: ``--checkpoints DIR`` (args after ``streamlit run app/main.py --``),
    else env ``MAGNET_CHECKPOINTS``, else ``checkpoints/`` beside ``app/``. Relative paths are
    taken from the current directory. Returned resolved."""
    environ = os.environ if environ is None else environ
    chosen: str | None = None
    args = list(argv)
    for j, arg in enumerate(args):
        if arg == "--checkpoints" and j + 1 < len(args):
            chosen = args[j + 1]
        elif arg.startswith("--checkpoints="):
            chosen = arg.split("=", 1)[1]
    if not chosen:
        chosen = environ.get(ENV_VAR) or None
    return Path(chosen).expanduser().resolve() if chosen else DEFAULT_ROOT.resolve()


def resolve_under(root: Path, name: str | os.PathLike[str] | None) -> Path | None:
    """``root / name`` resolved, or None when it falls outside ``root`` (absolute paths, ``..``,
    symlinks leading out) or ``name`` has a NUL byte. An empty name means the root itself."""
    root = Path(root).resolve()
    text = "" if name is None else str(name).strip()
    if "\x00" in text:
        return None
    if text in ("", "."):
        return root
    if Path(text).is_absolute() or text.startswith("~"):
        candidate = Path(text).expanduser()
    else:
        candidate = root / text
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError):
        return None
    return resolved if resolved == root or resolved.is_relative_to(root) else None


def relative_name(root: Path, path: Path) -> str:
    """The name a checkpoint has in the UI and in ``?ckpt=``: its path relative to the root."""
    rel = Path(path).resolve().relative_to(Path(root).resolve())
    return rel.as_posix() if str(rel) != "." else "."


def stamp(path: Path) -> str:
    """Changes when a checkpoint directory is rewritten (cache key next to the path)."""
    parts = []
    for name in ("config.json", "model.safetensors", "metrics.json", "trace.csv"):
        try:
            st = (Path(path) / name).stat()
            parts.append(f"{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            parts.append("-")
    return "|".join(parts)
