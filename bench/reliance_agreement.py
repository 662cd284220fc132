"""Recovered vs planted modality reliance on a synthetic checkpoint (docs/RESULTS.md).

Usage: .venv/bin/python bench/reliance_agreement.py checkpoints/demo/full [--top-n 20]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from magnet.explain import ExplainContext, reliance_agreement, routing_table  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--top-n", type=int, default=20)
    args = parser.parse_args()
    ctx = ExplainContext.load(args.checkpoint)
    table = routing_table(ctx, top_n=args.top_n, max_users=ctx.data.n_users)
    result = reliance_agreement(ctx, table)
    if result is None:
        print("no planted truth in this checkpoint (not synthetic data)")
        return 1
    print(f"checkpoint: {args.checkpoint}  users: {result['n_users']}  top-N: {args.top_n}")
    print(f"mean Spearman(planted, recovered reliance): {result['spearman']:.3f}")
    print(f"top modality right: {result['top_modality_accuracy']:.3f} "
          f"(majority-class rate {result['majority_rate']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
