"""Reading an MMRec interaction file (``<name>.inter``): find it, parse and type-check it, and
check that ids are contiguous. Every problem is a one-line :class:`DataError` naming the file."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..fileio import require_regular

REQUIRED_COLUMNS: tuple[str, ...] = ("userID", "itemID", "x_label")


def find_inter(root: Path) -> Path:
    """The one ``*.inter`` file of dataset directory ``root``."""
    if not root.exists():
        raise DataError("dataset directory does not exist", root)
    if not root.is_dir():
        raise DataError("dataset path is not a directory", root)
    try:
        names = os.listdir(root)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DataError(f"cannot read the dataset directory ({reason})", root) from None
    inters = sorted(root / n for n in names if n.endswith(".inter") and not n.startswith("."))
    if not inters:
        raise DataError("no .inter file found in the dataset directory", root)
    if len(inters) > 1:
        raise DataError(f"found {len(inters)} .inter files ({', '.join(p.name for p in inters)}); "
                        "expected exactly one", root)
    return require_regular(inters[0], DataError)


def read_inter(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read and type-check ``<name>.inter``: returns ``(user, item, x_label)`` int64 arrays.
    Only a regular file is opened (a FIFO or /dev/zero would block or never end); a UTF-8
    byte-order mark before the header is allowed."""
    require_regular(path, DataError)
    with open(path, "r", encoding="utf-8-sig", errors="replace") as fh:
        header = fh.readline(1 << 16).rstrip("\r\n").split("\t")
    header = [h.strip() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)} in header "
                        f"(expected tab-separated itemID userID rating timestamp x_label)", path)
    try:
        df = pd.read_csv(path, sep="\t", usecols=list(REQUIRED_COLUMNS), engine="c", encoding="utf-8-sig")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot parse the file ({str(exc).splitlines()[0][:120]})", path) from exc
    if len(df) == 0:
        raise DataError("contains no interactions", path)
    out = []
    for col in REQUIRED_COLUMNS:
        values = df[col]
        if values.dtype.kind in "iu":
            if values.max() >= 2 ** 62:
                row = int(np.argmax(values.to_numpy() >= 2 ** 62))
                raise DataError(f"{col} {values.iloc[row]} on data row {row + 1} is too large for an id", path)
            arr = values.to_numpy(np.int64)
        else:
            num = pd.to_numeric(values, errors="coerce")
            bad = num.isna() | (num.notna() & (num.fillna(0) % 1 != 0)) | (num.abs() >= 2 ** 62)
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(f"non-integer {col} '{values.iloc[row]}' on data row {row + 1} "
                                f"({int(bad.sum())} rows affected)", path)
            arr = num.to_numpy(np.int64)
        if (arr < 0).any():
            row = int(np.flatnonzero(arr < 0)[0])
            raise DataError(f"negative {col} {arr[row]} on data row {row + 1}", path)
        out.append(arr)
    user, item, label = out
    bad = ~np.isin(label, (0, 1, 2))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"x_label must be 0, 1 or 2 (found {label[row]} on data row {row + 1}, "
                        f"{int(bad.sum())} rows affected)", path)
    return user, item, label


def check_contiguous(ids: np.ndarray, what: str, path: Path) -> int:
    """Number of ids, after checking that ``ids`` cover 0..n-1 without a gap."""
    n = int(ids.max()) + 1
    if n > len(ids):  # more ids than rows can never be contiguous; avoid a huge bincount
        raise DataError(f"{what} ids are not contiguous: largest id {n - 1} but only {len(ids)} rows", path)
    present = np.bincount(ids, minlength=n) > 0
    if not present.all():
        first = int(np.flatnonzero(~present)[0])
        raise DataError(f"{what} ids are not contiguous 0..{n - 1}: id {first} is missing "
                        f"({int((~present).sum())} missing)", path)
    return n


def read_items_csv(path: Path) -> pd.DataFrame:
    """``items.csv`` as read (a BOM tolerated); a DataError naming it when it cannot be parsed."""
    try:
        return pd.read_csv(path, encoding="utf-8-sig")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot parse items.csv ({str(exc).splitlines()[0][:100]})", path) from None


__all__ = ["REQUIRED_COLUMNS", "check_contiguous", "find_inter", "read_inter", "read_items_csv"]
