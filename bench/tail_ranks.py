"""Where the held-out interactions with long-tail items land in each checkpoint's full ranking
(docs/RESULTS.md, issue #5.3).

Tail items are the ``graph.tail_quantile`` least popular by training degree (the buckets of
the evaluation). Bucket Recall@20 only counts tail items that reach a user's top 20, which on
a small catalogue can be none for every model; the rank of each held-out (user, tail item)
pair among that user's candidates (training items masked; 1 = first) shows whether a model
moves them up even when they stay below the top 20. Printed per checkpoint and split: the
number of pairs, the share ranked within the top 20 / 50 / 100 and the median rank.

Usage: .venv/bin/python bench/tail_ranks.py CHECKPOINT [CHECKPOINT ...] [--bucket tail|mid|head]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from magnet.explain import ExplainContext, held_out_pair_ranks  # noqa: E402
from magnet.vocab import BUCKET_NAMES  # noqa: E402


def bucket_ranks(ctx: ExplainContext, pairs: np.ndarray, bucket: int) -> np.ndarray:
    """Ranks [n] of the (user, item) rows of ``pairs`` [N, 2] whose item is in ``bucket``."""
    keep = pairs[ctx.buckets[pairs[:, 1]] == bucket]
    if len(keep) == 0:
        return np.zeros(0, dtype=np.int64)
    return held_out_pair_ranks(ctx, keep)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--bucket", choices=BUCKET_NAMES, default="tail")
    args = parser.parse_args()
    bucket = BUCKET_NAMES.index(args.bucket)
    print(f"| checkpoint | variant | split | {args.bucket} pairs | in top 20 | in top 50 | in top 100 "
          "| median rank |\n|---|---|---|---|---|---|---|---|")
    for path in args.checkpoints:
        ctx = ExplainContext.load(path)
        for split in ("valid", "test"):
            ranks = bucket_ranks(ctx, getattr(ctx.data, split), bucket)
            if len(ranks) == 0:
                print(f"| {path} | {ctx.ckpt.variant} | {split} | 0 | – | – | – | – |")
                continue
            shares = " | ".join(f"{(ranks <= k).mean():.3f}" for k in (20, 50, 100))
            print(f"| {path} | {ctx.ckpt.variant} | {split} | {len(ranks)} | {shares} "
                  f"| {np.median(ranks):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
