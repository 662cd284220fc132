"""What the bench measures and how: timing with device synchronisation, peak memory, one
dataset's graph/epoch/evaluation/child-run/explanation stages, and the scaling runs."""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from scaling import MB, SCALING_METRICS, project

REPO = Path(__file__).resolve().parents[1]

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
    "eval_full_s": ("s", "≤ 4 s", 4.0, "valid+test full ranking, all users, one pass, full (issue 17)"),
    "eval_full_extra_mb": ("MB", None, None, "memory the full evaluation adds on top of the process"),
    "peak_rss_mb": ("MB", "≤ 2048 MB", 2048.0, "peak RSS of `magnet train --variant full --epochs 2`"),
    "train_cli_s": ("s", None, None, "wall time of that child run (load, 2 epochs, evals, save)"),
    "explain_ms": ("ms", "≤ 50 ms", 50.0, "one user's case study (top-10 explained), model loaded"),
    "dashboard_first_load_s": ("s", "≤ 3 s", 3.0, "light checkpoint + overview facts + ExplainContext.load"),
    "dashboard_routing_table_s": ("s", None, None, "Experts page table: routing of 2,000 users' top-20"),
}


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

        from magnet.inputs import resolve_device

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
        """Time ``repeats`` epochs (after one warm-up epoch) of the real ``Trainer.fit`` loop, as
        the trainer reports them to a :class:`~magnet.trainer.TrainerCallback` (training steps
        only), then ``repeats`` valid+test evaluations; returns the median epoch seconds.

        Validation runs once, after the last epoch (``eval_every`` = epochs), so that the bench
        stays affordable at 4× Baby; its cost is what ``eval_*`` measures."""
        from magnet.pipeline import make_config
        from magnet.trainer import Trainer, TrainerCallback

        class EpochSeconds(TrainerCallback):
            def __init__(self) -> None:
                self.seconds: list[float] = []

            def on_epoch_end(self, trainer: Trainer, epoch: int, seconds: float) -> None:
                self.seconds.append(seconds)

        short = "bo" if variant == "behaviour_only" else "full"
        config = make_config(spec, variant, None, str(self.device), repeats + 1, 999)
        config.train.eval_every = config.train.epochs
        config.train.patience = 10 ** 6
        self.log(f"{name}: {variant}: building the trainer")
        seconds, trainer = self.timed(lambda: Trainer(config, data, progress=False))
        if f"init_{short}_s" in self.wanted:
            self.record(name, f"init_{short}_s", seconds)
        self.log(f"{name}: {variant}: {repeats + 1} epochs through Trainer.fit")
        epochs = EpochSeconds()
        trainer.fit(callbacks=[epochs])
        value = self.record(name, f"epoch_{short}_s", epochs.seconds[1:] or epochs.seconds,
                            first_epoch_s=epochs.seconds[0],
                            steps_per_epoch=math.ceil(len(data.train) / config.train.batch_size))
        self.log(f"{name}: {variant}: epochs {', '.join(f'{e:.2f}' for e in epochs.seconds)} s; evaluating")
        memory = PeakMemory(self.device)

        def evaluate() -> float:
            return self.timed(lambda: trainer.evaluate(("valid", "test")))[0]

        with memory:  # the first evaluation: timed, and its memory measured
            samples = [evaluate()]
        samples += [evaluate() for _ in range(repeats - 1)]
        self.record(name, f"eval_{short}_s", samples, batch_users=config.train.eval_batch_users)
        if short == "full" and "eval_full_extra_mb" in self.wanted and memory.extra is not None:
            self.record(name, "eval_full_extra_mb", max(memory.extra, 0.0),
                        method="cuda max_memory_allocated" if self.device.type == "cuda"
                        else "/proc/self/statm sampled every 2 ms")
        del evaluate  # and with it the trainer (the closure holds it)
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
        cmd = [sys.executable, str(REPO / "bench" / "run.py"), "--explain-checkpoint", str(ckpt),
               "--repeats", str(self.args.repeats), "--threads", str(self.args.threads),
               "--preset", self.args.preset, "--device", self.args.device]
        proc = subprocess.run(cmd, env=self.child_env(), capture_output=True, text=True)
        sys.stderr.write(proc.stderr if proc.returncode == 0 else "")
        if proc.returncode != 0:
            raise RuntimeError(f"explanation child failed ({proc.returncode}): {proc.stderr[-1500:]}")
        for record in json.loads(proc.stdout.strip().splitlines()[-1]):
            self.records.append({**record, "dataset": name})

    def explain(self, name: str, ckpt: Path, repeats: int) -> None:
        from magnet.checkpoint import load_checkpoint
        from magnet.explain import ExplainContext, case_study, final_routing, most_used, routing_table, sample_users

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
        self.stage(f"{name} graphs", lambda d=data: self.graphs(name, d, repeats))
        bo = self.stage(f"{name} behaviour_only",
                        lambda d=data: self.train_and_eval(name, spec, d, "behaviour_only", repeats))
        full = self.stage(f"{name} full", lambda d=data: self.train_and_eval(name, spec, d, "full", repeats))
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
            self.stage(f"{name} graphs", lambda d=data: self.graphs(name, d, repeats))
            for variant in ("behaviour_only", "full"):
                self.stage(f"{name} {variant}",
                           lambda d=data, v=variant: self.train_and_eval(name, spec, d, v, repeats))
            for r in self.records[first:]:  # scaling rows are information, not checked against targets
                r["pass"] = None
            rows.append({**self.datasets[name], "name": name,
                         **{r["metric"]: r["value"] for r in self.records[first:]}})
            del data
            gc.collect()
            complete = [r for r in rows if all(m in r for m in SCALING_METRICS)]
            self.scaling_result = project(complete) if complete else None  # saved after every preset
        return self.scaling_result
