"""Write a cold-tail copy of an MMRec dataset directory (docs/RESULTS.md, #5.3).

The tail items (the ``--tail-quantile`` least popular by training degree, ties by id, as
:func:`magnet.graphs.tail_items`) keep ``--keep`` of their training interactions, drawn with
``--seed``; every other row, and every valid and test row, is kept as it is. The feature files
and ``items.csv``/``features.json`` are copied (``images/`` is linked), so the copy loads
like the original. Use it to ask what content edges do for items with almost no history when
the original's tail is not sparse (the synthetic demo's tail items have ~13 training
interactions each).

Usage: .venv/bin/python bench/cold_tail.py SRC_DIR OUT_DIR [--keep 2] [--seed 0] [--tail-quantile 0.2]
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from magnet.graphs import tail_items  # noqa: E402

COPIED = ("image_feat.npy", "text_feat.npy", "items.csv", "features.json", "planted_truth.npz")


def cold_tail_rows(inter: pd.DataFrame, keep: int, seed: int, tail_quantile: float) -> np.ndarray:
    """Boolean mask [len(inter)] of the rows to keep: all but the training rows of tail items
    beyond ``keep`` per item (a seeded random choice of which ``keep``)."""
    train = inter[inter["x_label"] == 0]
    n_items = int(inter["itemID"].max()) + 1
    tail = tail_items(train[["userID", "itemID"]].to_numpy(), n_items, tail_quantile)
    is_tail_train = ((inter["x_label"] == 0) & tail[inter["itemID"].to_numpy()]).to_numpy()
    rows = np.flatnonzero(is_tail_train)
    # A random order of the tail rows; each item keeps its first ``keep`` rows in that order.
    order = rows[np.random.default_rng(seed).permutation(len(rows))]
    items = inter["itemID"].to_numpy()[order]
    rank = pd.Series(items).groupby(items).cumcount().to_numpy()  # position within its item
    mask = np.ones(len(inter), dtype=bool)
    mask[order[rank >= keep]] = False
    return mask


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--keep", type=int, default=2, help="training interactions each tail item keeps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tail-quantile", type=float, default=0.2)
    args = parser.parse_args()
    inters = sorted(args.src.glob("*.inter"))
    if len(inters) != 1:
        print(f"error: {args.src}: expected one .inter file, found {len(inters)}", file=sys.stderr)
        return 2
    inter = pd.read_csv(inters[0], sep="\t")
    mask = cold_tail_rows(inter, args.keep, args.seed, args.tail_quantile)
    args.out.mkdir(parents=True, exist_ok=True)
    inter[mask].to_csv(args.out / f"{args.out.name}.inter", sep="\t", index=False)
    for name in COPIED:
        if (args.src / name).exists():
            shutil.copy(args.src / name, args.out / name)
    if (args.src / "images").is_dir() and not (args.out / "images").exists():
        (args.out / "images").symlink_to((args.src / "images").resolve())
    print(f"{args.out}: {int(mask.sum())} of {len(inter)} rows "
          f"({len(inter) - int(mask.sum())} training rows of tail items dropped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
