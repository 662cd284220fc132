"""Where a `full` training step's time goes, by switching its parts off (docs/BENCHMARKS.md).

Times `Trainer.step` (forward, backward, Adam) on the same batches for:

- ``behaviour_only`` — the LightGCN reference of the full/behaviour-only ratio;
- ``full`` — the default model;
- ``full, no InfoNCE`` — ``train.vc_weight=0``;
- ``full, no InfoNCE, no augmented view`` — also γ frozen at 0, so the augmented view of B is
  never propagated. What remains over behaviour-only is the content rows, experts and router.

Each row builds its own `Trainer` (graphs, model, optimiser) in this process, runs
``--warmup`` steps, then times ``--steps`` steps one by one and prints the median and the
ratio to behaviour-only. Batches are fixed by a seed, so every row sees the same pairs.

Usage: .venv/bin/python bench/step_breakdown.py [--data SPEC] [--threads 2] [--steps 40]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="synthfeat:../shared/data/baby-interactions")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--cache", default=".magnet_cache")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: CUDA when available (each step is then bracketed by synchronize)")
    return parser.parse_args(argv)


#: (row name, variant, config sections overriding the defaults, as in a ``--config`` file)
ROWS: tuple[tuple[str, str, dict[str, dict[str, object]]], ...] = (
    ("behaviour_only", "behaviour_only", {}),
    ("full", "full", {}),
    ("full, no InfoNCE", "full", {"train": {"vc_weight": 0.0}}),
    ("full, no InfoNCE, no augmented view", "full",
     {"train": {"vc_weight": 0.0}, "model": {"learn_fusion_gamma": False, "fusion_gamma_init": 0.0}}),
)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import torch

    from magnet.config import RunConfig
    from magnet.data import load_dataset
    from magnet.pipeline import make_config
    from magnet.trainer import Trainer

    torch.set_num_threads(args.threads)
    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    data = load_dataset(args.data, cache_dir=args.cache)
    n_batches = args.warmup + args.steps
    print(f"{args.data} on {device}: {args.threads} threads, median of {args.steps} steps after {args.warmup}\n")
    print("| model | ms per step | × behaviour_only |\n|---|---|---|")
    reference = None
    for name, variant, overrides in ROWS:
        raw = RunConfig().to_dict()
        for section, fields in overrides.items():
            raw[section].update(fields)
        config = make_config(args.data, variant, RunConfig.from_dict(raw), device, 1, 999)
        trainer = Trainer(config, data, progress=False)
        pairs = trainer.train_pairs
        order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(0))
        size = config.train.batch_size
        if len(pairs) < size * n_batches:
            order = order.repeat(size * n_batches // len(pairs) + 1)
        params = trainer.schedule.params()
        times = []
        for b in range(n_batches):
            batch = pairs[order[b * size:(b + 1) * size]]
            neg = trainer.sampler.sample(batch[:, 0], config.train.n_negatives)
            users, pos, neg = (t.to(trainer.device) for t in (batch[:, 0], batch[:, 1], neg))
            sync()
            start = time.perf_counter()
            trainer.step(users, pos, neg, params)
            sync()
            if b >= args.warmup:
                times.append(time.perf_counter() - start)
        ms = statistics.median(times) * 1000
        reference = reference or ms
        print(f"| {name} | {ms:.1f} | {ms / reference:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
