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
import gc
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
BABY_SPEC = "synthfeat:../shared/data/baby-interactions"
SMALL_SPEC = "synthetic:tiny"
SCALING_SPECS = ("synthetic:baby", "synthetic:baby2x", "synthetic:baby4x")
# MMRec's Amazon Electronics: 192,403 users x 63,001 items, 1,689,188 interactions.
ELECTRONICS = {"n_users": 192_403, "n_items": 63_001, "n_interactions": 1_689_188}
BATCH = 2048  # TrainConfig.batch_size, the batch every scaling run trains with
MB = 1024 * 1024

# metric -> (unit, target text, comparison value, explanation); None target = information only.
METRICS: dict[str, tuple[str, str | None, float | None, str]] = {
    "graph_knn_s": ("s", "≤ 5 s", 5.0, "content kNN item graphs from the features (image + text, merged)"),
    "graph_build_s": ("s", None, None, "build_graphs with content: kNN graphs + every sparse operator"),
    "init_bo_s": ("s", None, None, "Trainer construction (graphs, model), behaviour_only"),
    "init_full_s": ("s", None, None, "Trainer construction (graphs, feature reduction, model), full"),
    "epoch_bo_s": ("s", "≤ 5 s", 5.0, "one training epoch, behaviour_only"),
    "epoch_full_s": ("s", None, None, "one training epoch, full"),
    "full_over_bo": ("×", "≤ 2", 2.0, "epoch_full_s / epoch_bo_s"),
    "eval_bo_s": ("s", "≤ 1 s", 1.0, "valid+test full ranking, all users, one pass, behaviour_only"),
    "eval_full_s": ("s", "≤ 6 s", 6.0, "valid+test full ranking, all users, one pass, full"),
    "eval_full_extra_mb": ("MB", None, None, "memory the full evaluation adds on top of the process"),
    "peak_rss_mb": ("MB", "≤ 2048 MB", 2048.0, "peak RSS of `magnet train --variant full --epochs 2`"),
    "train_cli_s": ("s", None, None, "wall time of that child run (load, 2 epochs, evals, save)"),
    "explain_ms": ("ms", "≤ 50 ms", 50.0, "one user's case study (top-10 explained), model loaded"),
    "dashboard_first_load_s": ("s", "≤ 3 s", 3.0, "light checkpoint + overview facts + ExplainContext.load"),
    "dashboard_routing_table_s": ("s", None, None, "Experts page table: routing of 2,000 users' top-20"),
}
SCALING_METRICS = ("graph_knn_s", "epoch_bo_s", "epoch_full_s", "eval_bo_s", "eval_full_s")


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


# ----------------------------------------------------------------------------- helpers
def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class PeakMemory:
    """Extra memory a block needs above what the process held when it began: CUDA allocator peak
    on a GPU, else resident memory sampled every 2 ms from /proc/self/statm."""

    def __init__(self, device: Any) -> None:
        self.cuda = device.type == "cuda"
        self.extra: float | None = None

    def __enter__(self) -> "PeakMemory":
        if self.cuda:
            import torch
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        self.base = _rss_bytes()
        self.peak = self.base
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.stop.wait(0.002):
            rss = _rss_bytes()
            if rss is not None and self.peak is not None:
                self.peak = max(self.peak, rss)

    def __exit__(self, *exc: Any) -> None:
        if self.cuda:
            import torch
            torch.cuda.synchronize()
            self.extra = (torch.cuda.max_memory_allocated() - self.base) / MB
            return
        self.stop.set()
        self.thread.join()
        rss = _rss_bytes()
        if self.base is not None and rss is not None:
            self.extra = (max(self.peak, rss) - self.base) / MB


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        from magnet.trainer import resolve_device

        self.args = args
        self.torch = torch
        self.device = resolve_device(args.device)
        self.records: list[dict[str, Any]] = []
        self.datasets: dict[str, dict[str, Any]] = {}
        self.errors: list[str] = []
        self.save: Callable[[], None] | None = None
        self.scaling_result: dict[str, Any] | None = None

    def sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def timed(self, fn: Callable[[], Any]) -> tuple[float, Any]:
        self.sync()
        start = time.perf_counter()
        out = fn()
        self.sync()
        return time.perf_counter() - start, out

    def repeat(self, fn: Callable[[], Any], n: int) -> list[float]:
        return [self.timed(fn)[0] for _ in range(n)]

    def record(self, dataset: str, metric: str, samples: list[float] | float, scale: float = 1.0,
               **extra: Any) -> float:
        samples = [float(s) * scale for s in (samples if isinstance(samples, list) else [samples])]
        value = statistics.median(samples)
        unit, target, limit, what = METRICS[metric]
        applies = self.args.preset == "baby" and limit is not None
        self.records.append({"metric": metric, "dataset": dataset, "value": value, "unit": unit,
                             "target": target, "pass": (value <= limit) if applies else None,
                             "samples": samples, "what": what, **extra})
        return value

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------------- pieces
    def load(self, spec: str, mmrec_features: bool = False):
        from magnet.data import load_dataset
        from magnet.data.synthfeat import item_factors, make_features

        data = load_dataset(spec, cache_dir=self.args.cache)
        if mmrec_features:  # scaling presets: MMRec-shaped features (4096/384) like Baby's
            image, text = make_features(item_factors(data.train[:, 0], data.train[:, 1],
                                                     data.n_users, data.n_items))
            data.image_feat, data.text_feat, data.synthetic_features = image, text, True
        return data

    def describe(self, name: str, spec: str, data: Any, note: str = "") -> None:
        self.datasets[name] = {
            "spec": spec, "n_users": data.n_users, "n_items": data.n_items,
            "n_train": int(len(data.train)), "n_valid": int(len(data.valid)), "n_test": int(len(data.test)),
            "n_interactions": int(len(data.train) + len(data.valid) + len(data.test)),
            "image_dim": None if data.image_feat is None else int(data.image_feat.shape[1]),
            "text_dim": None if data.text_feat is None else int(data.text_feat.shape[1]),
            "synthetic_features": bool(data.synthetic_features), "note": note}

    def graphs(self, name: str, data: Any, repeats: int) -> None:
        from magnet.config import GraphConfig
        from magnet.graphs import build_graphs, content_graph

        cfg = GraphConfig()
        self.log(f"{name}: graph construction")
        self.record(name, "graph_knn_s", self.repeat(
            lambda: content_graph(data.image_feat, data.text_feat, data.train, cfg), repeats))
        if "graph_build_s" in self.wanted:
            self.record(name, "graph_build_s", self.repeat(
                lambda: build_graphs(data.train, data.n_users, data.n_items, cfg, data.image_feat,
                                     data.text_feat, with_content=True), repeats))

    def train_and_eval(self, name: str, spec: str, data: Any, variant: str, repeats: int) -> float:
        """Time ``repeats`` epochs (after one warm-up epoch) of the real ``Trainer.fit`` loop, then
        ``repeats`` valid+test evaluations (the first is ``fit``'s own final one); returns the
        median epoch seconds.

        The per-epoch validation inside ``fit`` is answered by a stub (its cost is what
        ``eval_*`` measures) so that the epochs are timed alone and the bench stays affordable at
        4× Baby; ``on_evaluate`` marks the end of each epoch."""
        from magnet.pipeline import make_config
        from magnet.trainer import Trainer

        short = "bo" if variant == "behaviour_only" else "full"
        config = make_config(spec, variant, None, str(self.device), repeats + 1, 999)
        config.train.eval_every = 1
        config.train.patience = 10 ** 6
        self.log(f"{name}: {variant}: building the trainer")
        seconds, trainer = self.timed(lambda: Trainer(config, data, progress=False))
        if f"init_{short}_s" in self.wanted:
            self.record(name, f"init_{short}_s", seconds)
        evaluate, samples, marks = trainer.evaluate, [], []
        memory = PeakMemory(self.device)

        def timed_evaluate(splits):
            if tuple(splits) == ("valid",):  # validation during fit: stubbed, see the docstring
                return {"valid": {config.train.select_metric: 0.0}}
            with memory:  # fit's final valid+test evaluation: timed, and its memory measured
                seconds, result = self.timed(lambda: evaluate(splits))
            samples.append(seconds)
            return result

        def on_evaluate(epoch: int, valid: dict) -> None:
            self.sync()
            marks.append(time.perf_counter())

        trainer.evaluate = timed_evaluate
        self.log(f"{name}: {variant}: {repeats + 1} epochs through Trainer.fit")
        start = time.perf_counter()
        trainer.fit(on_evaluate=on_evaluate)
        bounds = [start] + marks
        epochs = [bounds[j + 1] - bounds[j] for j in range(len(marks))]
        value = self.record(name, f"epoch_{short}_s", epochs[1:] or epochs, first_epoch_s=epochs[0],
                            steps_per_epoch=math.ceil(len(data.train) / config.train.batch_size))
        self.log(f"{name}: {variant}: epochs {', '.join(f'{e:.2f}' for e in epochs)} s; evaluating")
        samples += [self.timed(lambda: evaluate(("valid", "test")))[0] for _ in range(repeats - len(samples))]
        self.record(name, f"eval_{short}_s", samples, batch_users=config.train.eval_batch_users)
        if short == "full" and "eval_full_extra_mb" in self.wanted and memory.extra is not None:
            self.record(name, "eval_full_extra_mb", max(memory.extra, 0.0),
                        method="cuda max_memory_allocated" if self.device.type == "cuda"
                        else "/proc/self/statm sampled every 2 ms")
        del trainer, evaluate
        gc.collect()
        return value

    def child_env(self) -> dict[str, str]:
        threads = str(self.args.threads)
        return {**os.environ, "MAGNET_CACHE": str(Path(self.args.cache).resolve()), "OMP_NUM_THREADS": threads,
                "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "PYTHONPATH": os.pathsep.join(
                    [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}

    def peak_rss(self, name: str, spec: str, out: Path) -> None:
        """Peak RSS of a whole ``magnet train`` run in a child process; leaves its checkpoint."""
        cmd = [sys.executable, "-m", "magnet", "train", "--data", spec, "--variant", "full", "--epochs", "2",
               "--projection", "pca", "--quiet", "--out", str(out), "--device", self.device.type]
        time_bin = Path("/usr/bin/time")
        use_time = time_bin.is_file() and os.access(time_bin, os.X_OK)
        if use_time:
            cmd = [str(time_bin), "-v"] + cmd
        env = self.child_env()
        self.log(f"{name}: peak RSS of `{' '.join(cmd[cmd.index('-m') - 1:])}`")
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"training child failed ({proc.returncode}): {proc.stderr[-1500:]}")
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr) if use_time else None
        if match:
            kb, method = int(match.group(1)), "/usr/bin/time -v"
        else:
            kb, method = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "getrusage(RUSAGE_CHILDREN)"
            if not sys.platform.startswith("linux"):
                kb //= 1024  # macOS reports bytes
        self.record(name, "peak_rss_mb", kb / 1024, method=method)
        self.record(name, "train_cli_s", wall)

    def explain_child(self, name: str, ckpt: Path) -> None:
        """:meth:`explain` in a fresh process, like the dashboard's (its imports are not timed), and
        with the same code as the child run that wrote the checkpoint."""
        cmd = [sys.executable, str(Path(__file__).resolve()), "--explain-checkpoint", str(ckpt),
               "--repeats", str(self.args.repeats), "--threads", str(self.args.threads),
               "--preset", self.args.preset, "--device", self.args.device]
        proc = subprocess.run(cmd, env=self.child_env(), capture_output=True, text=True)
        sys.stderr.write(proc.stderr if proc.returncode == 0 else "")
        if proc.returncode != 0:
            raise RuntimeError(f"explanation child failed ({proc.returncode}): {proc.stderr[-1500:]}")
        for record in json.loads(proc.stdout.strip().splitlines()[-1]):
            self.records.append({**record, "dataset": name})

    def explain(self, name: str, ckpt: Path, repeats: int) -> None:
        from app.analysis import final_routing, most_used
        from magnet.checkpoint import load_checkpoint
        from magnet.explain import ExplainContext, case_study, routing_table, sample_users

        torch = self.torch

        def first_load():  # what the dashboard computes when a checkpoint is first opened
            light = load_checkpoint(ckpt, load_model=False)
            most_used(final_routing(light.trace)["gates"])
            with torch.no_grad():
                return ExplainContext.load(ckpt)

        self.log(f"{name}: dashboard first load and case studies")
        loads = [self.timed(first_load) for _ in range(repeats)]
        self.record(name, "dashboard_first_load_s", [s for s, _ in loads])
        ctx = loads[-1][1]
        with torch.no_grad():
            seconds, _ = self.timed(lambda: routing_table(ctx, top_n=20, max_users=2000))
        self.record(name, "dashboard_routing_table_s", seconds)
        users = sample_users(ctx, 20, seed=0)
        with torch.no_grad():
            case_study(ctx, int(users[0]), 10)  # warm-up
            latencies = [self.timed(lambda u=u: case_study(ctx, int(u), 10))[0] for u in users]
        self.record(name, "explain_ms", latencies, scale=1000.0, users=len(users))

    # ------------------------------------------------------------------------- runs
    wanted: tuple[str, ...] = tuple(METRICS)

    def stage(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run one stage; a failure is recorded (and fails the run at the end) but the other stages
        still run, and everything measured so far is written out."""
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - a bench reports, it does not stop at the first error
            import traceback

            traceback.print_exc()
            line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            self.errors.append(f"{what}: {type(exc).__name__}: {line[:300]}")
            self.log(f"FAILED {what}: {line[:300]}")
            return None
        finally:
            if self.save is not None:
                self.save()

    def dataset(self, spec: str, work: Path) -> None:
        repeats = self.args.repeats
        self.log(f"loading {spec}")
        data = self.stage(f"load {spec}", lambda: self.load(spec))
        if data is None:
            return
        name = data.name if data.name not in self.datasets else f"{data.name}#{len(self.datasets)}"
        self.describe(name, spec, data, "real interactions, synthetic features" if spec.startswith(
            "synthfeat:") else "")
        self.stage(f"{name} graphs", lambda: self.graphs(name, data, repeats))
        bo = self.stage(f"{name} behaviour_only",
                        lambda: self.train_and_eval(name, spec, data, "behaviour_only", repeats))
        full = self.stage(f"{name} full", lambda: self.train_and_eval(name, spec, data, "full", repeats))
        if bo and full:
            self.record(name, "full_over_bo", full / bo)
        del data
        gc.collect()
        ckpt = work / f"{name}-full"
        self.stage(f"{name} peak RSS", lambda: self.peak_rss(name, spec, ckpt))
        if ckpt.is_dir():
            self.stage(f"{name} explanation", lambda: self.explain_child(name, ckpt))

    def scaling(self) -> dict[str, Any]:
        repeats = 1
        self.wanted = SCALING_METRICS
        rows = []
        for spec in self.args.scaling_data:
            self.log(f"scaling: loading {spec}")
            data = self.stage(f"load {spec}", lambda: self.load(spec, mmrec_features=True))
            if data is None:
                continue
            name = f"scaling/{spec.split(':', 1)[-1]}"  # never the name of a --data dataset
            self.describe(name, spec, data, "synthetic interactions; MMRec-shaped synthetic features "
                          "(magnet.data.synthfeat) substituted in memory")
            first = len(self.records)
            self.stage(f"{name} graphs", lambda: self.graphs(name, data, repeats))
            for variant in ("behaviour_only", "full"):
                self.stage(f"{name} {variant}",
                           lambda: self.train_and_eval(name, spec, data, variant, repeats))
            for r in self.records[first:]:  # scaling rows are information, not checked against targets
                r["pass"] = None
            rows.append({**self.datasets[name], "name": name,
                         **{r["metric"]: r["value"] for r in self.records[first:]}})
            del data
            gc.collect()
            complete = [r for r in rows if all(m in r for m in SCALING_METRICS)]
            self.scaling_result = project(complete) if complete else None  # saved after every preset
        return self.scaling_result


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares y = a + b·x."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx > 0 else 0.0
    return my - b * mx, b


def steps(row: dict[str, Any]) -> int:
    """Training steps per epoch of a scaling row."""
    return math.ceil(row["n_train"] / BATCH)


def graph_size(row: dict[str, Any]) -> int:
    """What one full-graph training step touches: 2 × training pairs (the bipartite CSR's
    entries) + every node's embedding row."""
    return 2 * row["n_train"] + row["n_users"] + row["n_items"]


def project(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-step and per-interaction costs of the scaling runs and a projection to Electronics.

    A training step propagates the whole graph (as LightGCN does), so its cost grows with the
    graph and an epoch, steps × step, grows with interactions × graph size: epochs are projected
    as the target's steps × a least-squares line of seconds per step in graph size."""
    base = rows[0]
    train_share = base["n_train"] / base["n_interactions"]
    target = {**ELECTRONICS, "n_train": round(ELECTRONICS["n_interactions"] * train_share)}
    size = {"step": graph_size, "eval": lambda r: r["n_users"] * r["n_items"],
            "graph": lambda r: r["n_items"] ** 2}
    models = {"graph_knn_s": ("graph", "n_items² (all-pairs similarity)"),
              "epoch_bo_s": ("step", "graph size"), "epoch_full_s": ("step", "graph size"),
              "eval_bo_s": ("eval", "users × items (full ranking)"),
              "eval_full_s": ("eval", "users × items (full ranking)")}
    table = []
    for row in rows:
        out = {"dataset": row["name"], "n_users": row["n_users"], "n_items": row["n_items"],
               "n_train": row["n_train"], **{m: row.get(m) for m in SCALING_METRICS}}
        out["step_bo_ms"] = 1e3 * row["epoch_bo_s"] / steps(row)
        out["step_full_ms"] = 1e3 * row["epoch_full_s"] / steps(row)
        out["epoch_bo_us_per_interaction"] = 1e6 * row["epoch_bo_s"] / row["n_train"]
        out["epoch_full_us_per_interaction"] = 1e6 * row["epoch_full_s"] / row["n_train"]
        out["epoch_bo_ratio_vs_1x"] = row["epoch_bo_s"] / base["epoch_bo_s"]
        out["epoch_full_ratio_vs_1x"] = row["epoch_full_s"] / base["epoch_full_s"]
        out["step_full_ratio_vs_1x"] = out["step_full_ms"] / (1e3 * base["epoch_full_s"] / steps(base))
        out["graph_ratio_vs_1x"] = graph_size(row) / graph_size(base)
        out["interactions_ratio_vs_1x"] = row["n_train"] / base["n_train"]
        table.append(out)
    if len(rows) < 2:
        return {"rows": table, "projection": None}
    projection = {"dataset": "electronics (PROJECTION, not measured)", **target, "by": {}}
    for metric, (kind, what) in models.items():
        xs = [float(size[kind](r)) for r in rows]
        if kind == "step":  # fit seconds per step, then scale by the target's steps
            ys = [float(r[metric]) / steps(r) for r in rows]
            a, b = _fit(xs, ys)
            projection[metric] = max(a + b * float(size[kind](target)), 0.0) * steps(target)
            projection["by"][metric] = (f"{steps(target):,} steps × least-squares line of seconds per step "
                                        f"in {what} (2·train pairs + nodes) through the {len(rows)} scaling runs")
            continue
        ys = [float(r[metric]) for r in rows]
        a, b = _fit(xs, ys)
        projection[metric] = max(a + b * float(size[kind](target)), 0.0)
        projection["by"][metric] = f"least-squares line in {what} through the {len(rows)} scaling runs"
    projection["image_feat_mb"] = target["n_items"] * 4096 * 4 / MB
    return {"rows": table, "projection": projection}


# ----------------------------------------------------------------------------- output
def fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if unit == "MB":
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def status(rec: dict[str, Any]) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a" if rec["target"] else "info"}[rec["pass"]]


def main_table(records: list[dict[str, Any]]) -> list[list[str]]:
    rows = [["metric", "dataset", "median", "min", "n", "unit", "target", "status"]]
    for r in records:
        rows.append([r["metric"], r["dataset"], fmt(r["value"], r["unit"]), fmt(min(r["samples"]), r["unit"]),
                     str(len(r["samples"])), r["unit"], r["target"] or "", status(r)])
    return rows


def scaling_tables(scaling: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    cols = ["dataset", "n_users", "n_items", "n_train", *SCALING_METRICS, "step_bo_ms", "step_full_ms",
            "step_full_ratio_vs_1x", "graph_ratio_vs_1x", "epoch_full_ratio_vs_1x", "interactions_ratio_vs_1x"]
    rows = [cols] + [[str(r["dataset"])] + [fmt(float(r[c])) if not isinstance(r[c], int) else f"{r[c]:,}"
                                            for c in cols[1:]] for r in scaling["rows"]]
    p = scaling["projection"]
    proj = [["metric", "projected value", "model"]]
    if p is None:
        return rows, proj + [["—", "—", "needs two complete scaling runs"]]
    for metric, how in p["by"].items():
        proj.append([metric, f"{fmt(p[metric])} s", how])
    proj.append(["image_feat_mb", f"{p['image_feat_mb']:,.0f} MB", "n_items × 4096 float32 (memory, exact)"])
    return rows, proj


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def md_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    parts = [f"# MAGNET bench: {meta['preset']} preset on {meta['device_name']}", "",
             f"Command: `{meta['command']}`  ", f"When: {meta['created_at']} · commit `{meta['git_commit'][:10]}` · "
             f"torch {meta['torch_version']} · {meta['threads']} threads · medians of {meta['repeats']} · "
             f"load average {meta['loadavg_start']} → {meta['loadavg_end']}", "",
             "## Datasets", "", md_table([["name", "spec", "users", "items", "train", "valid", "test",
                                             "image_dim", "text_dim", "synthetic features"]] + [
                 [n, f"`{d['spec']}`", f"{d['n_users']:,}", f"{d['n_items']:,}", f"{d['n_train']:,}",
                  f"{d['n_valid']:,}", f"{d['n_test']:,}", str(d["image_dim"]), str(d["text_dim"]),
                  str(d["synthetic_features"])] for n, d in result["datasets"].items()]),
             "", "## Results", "", md_table(main_table(result["results"]))]
    if result.get("scaling"):
        rows, proj = scaling_tables(result["scaling"])
        parts += ["", "## Scaling (synthetic presets, MMRec-shaped synthetic features)", "", md_table(rows),
                  "", "### Electronics scale — PROJECTION (linear extrapolation, not measured)", "",
                  f"{ELECTRONICS['n_users']:,} users × {ELECTRONICS['n_items']:,} items, "
                  f"{ELECTRONICS['n_interactions']:,} interactions "
                  f"(~{(result['scaling']['projection'] or {}).get('n_train', 0):,} train).", "", md_table(proj)]
    if result["notes"]:
        parts += ["", "## Notes", ""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy/torch start their pools
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import torch

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
