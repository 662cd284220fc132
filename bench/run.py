"""MAGNET Studio performance bench: one process, one table (docs/BENCHMARKS.md).

    .venv/bin/python bench/run.py                         # Baby (real interactions, synthetic features)
    .venv/bin/python bench/run.py --scaling               # + synthetic 1x/2x/4x Baby and a projection
    .venv/bin/python bench/run.py --scaling-only          # that section alone
    .venv/bin/python bench/run.py --preset small          # CI smoke run on synthetic:tiny (~30 s)
    .venv/bin/python bench/run.py --device auto           # the same bench on CUDA when there is one

Per dataset it measures, in this order and in this one process (so ratios are comparable):
graph construction (content kNN graphs, then every operator), seconds per training epoch of
``behaviour_only`` and ``full`` (the real ``Trainer.fit`` loop; validation time subtracted, first
epoch dropped as warm-up), full-ranking valid+test evaluation from one pass of scores, peak RSS
of a whole short ``python -m magnet train`` run (a child process under ``/usr/bin/time -v``),
one user's case-study latency with the model loaded, and the dashboard's first load of that
checkpoint. Values are medians over ``--repeats``. Results go to ``<out>.json`` and ``<out>.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

BABY_SPEC = "synthfeat:../shared/data/baby-interactions"
SMALL_SPEC = "synthetic:tiny"
SCALING_SPECS = ("synthetic:baby", "synthetic:baby2x", "synthetic:baby4x")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="MAGNET Studio performance bench (docs/BENCHMARKS.md)")
    p.add_argument("--data", nargs="+", default=None,
                   help=f"dataset specs (default: {BABY_SPEC}; --preset small: {SMALL_SPEC})")
    p.add_argument("--preset", choices=("baby", "small"), default="baby",
                   help="baby: targets apply; small: synthetic:tiny, one repeat, for CI")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, default=2, help="torch/OpenMP threads (default 2)")
    p.add_argument("--repeats", type=int, default=None, help="timed repetitions (default 3; small 1)")
    p.add_argument("--scaling", action="store_true",
                   help="also time synthetic:baby/baby2x/baby4x and project to Electronics scale")
    p.add_argument("--scaling-only", action="store_true", help="the scaling section alone (no --data runs)")
    p.add_argument("--scaling-data", nargs="+", default=list(SCALING_SPECS),
                   help=f"specs of the scaling section, smallest first (default: {' '.join(SCALING_SPECS)})")
    p.add_argument("--cache", type=Path, default=Path(os.environ.get("MAGNET_CACHE", ".magnet_cache")),
                   help="dataset cache folder (default $MAGNET_CACHE or .magnet_cache)")
    p.add_argument("--out", type=Path, default=None,
                   help="write <out>.json and <out>.md (default bench/results/<preset>-<device>)")
    p.add_argument("--explain-checkpoint", type=Path, help=argparse.SUPPRESS)  # internal: child of the bench
    args = p.parse_args(argv)
    if args.scaling_only:
        args.scaling, args.data = True, []
    if args.data is None:
        args.data = [SMALL_SPEC if args.preset == "small" else BABY_SPEC]
    if args.repeats is None:
        args.repeats = 1 if args.preset == "small" else 3
    if args.repeats < 1 or args.threads < 1:
        p.error("--repeats and --threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy/torch start their pools
    for path in (REPO, REPO / "bench"):  # the library, and the bench's own modules when imported
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    import torch
    from measure import Bench
    from report import main_table, markdown, scaling_tables, text_table

    from magnet.checkpoint import device_name, git_commit

    torch.set_num_threads(args.threads)
    bench = Bench(args)
    if args.explain_checkpoint is not None:  # child mode: measure, print the records as JSON
        bench.explain(args.explain_checkpoint.name, args.explain_checkpoint, args.repeats)
        print(json.dumps(bench.records))
        return 0
    stem = "scaling" if args.scaling_only else args.preset
    out = args.out or REPO / "bench" / "results" / f"{stem}-{bench.device.type}"
    out.parent.mkdir(parents=True, exist_ok=True)
    load_start = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    started = time.perf_counter()
    command = " ".join(["bench/run.py"] + (argv if argv is not None else sys.argv[1:]))
    result: dict[str, Any] = {"scaling": None}

    def save() -> None:  # after every stage, so that a crash keeps what was measured
        rss = sorted({r["method"] for r in bench.records if r["metric"] == "peak_rss_mb"})
        notes = [f"peak RSS measured with {', '.join(rss)}"] if rss else []
        if any(r["pass"] is False for r in bench.records):
            notes.append("FAIL rows miss their target on this machine")
        notes += [f"ERROR {e}" for e in bench.errors]
        result.update({
            "meta": {"preset": args.preset, "command": command,
                     "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "git_commit": git_commit(), "torch_version": torch.__version__,
                     "python_version": platform.python_version(), "device": bench.device.type,
                     "device_name": device_name(str(bench.device)), "threads": args.threads,
                     "cpu_count": os.cpu_count(), "repeats": args.repeats, "loadavg_start": load_start,
                     "loadavg_end": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
                     "bench_seconds": round(time.perf_counter() - started, 1)},
            "datasets": bench.datasets, "results": bench.records, "scaling": bench.scaling_result,
            "errors": bench.errors, "notes": notes})
        Path(f"{out}.json").write_text(json.dumps(result, indent=2) + "\n")
        Path(f"{out}.md").write_text(markdown(result))

    bench.save = save
    work = Path(tempfile.mkdtemp(prefix="magnet-bench-"))
    try:
        for spec in args.data:
            bench.dataset(spec, work)
        if args.scaling:
            bench.stage("scaling", bench.scaling)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        save()
    print(text_table(main_table(bench.records)))
    if result["scaling"]:
        rows, proj = scaling_tables(result["scaling"])
        print("\nscaling (synthetic presets, MMRec-shaped synthetic features)")
        print(text_table(rows))
        print("\nElectronics scale — PROJECTION (linear extrapolation, not measured)")
        print(text_table(proj))
    for error in bench.errors:
        print(f"ERROR {error}")
    print(f"\nwrote {out}.json and {out}.md ({result['meta']['bench_seconds']} s)")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
