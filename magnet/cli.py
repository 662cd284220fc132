"""Command line: ``python -m magnet train|evaluate|ablate|tune …``.

Every user-facing error prints one line ``error: <file>: <problem>`` and exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .config import MAX_EPOCHS, SEED_LIMIT, VARIANTS, RunConfig, validate_config
from .errors import ConfigError, MagnetError
from .projection import METHODS

DATA_HELP = ("MMRec directory, or a synthetic world: synthetic:<tiny|demo|baby|baby2x|baby4x> with optional "
             "@seed=N,overlap=0..1,users=N,items=N,interactions=N (e.g. synthetic:demo@seed=7,overlap=0.3)")


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments in one line with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message}\n")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None,
                   help=DATA_HELP + " (default: the --config file's data, else synthetic:demo)")
    p.add_argument("--config", type=Path, help="JSON run config (e.g. from `magnet tune`); CLI flags override it")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="default: auto")
    p.add_argument("--epochs", type=int, help="maximum epochs (early stopping on valid may end sooner)")
    p.add_argument("--seed", type=int)
    p.add_argument("--projection", choices=METHODS, default="umap",
                   help="2-D map stored in the checkpoint (umap, or pca for speed)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="magnet", description="MAGNET: train, evaluate and ablate checkpoints.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train one variant and write a checkpoint directory")
    _add_common(train)
    train.add_argument("--variant", choices=VARIANTS, default=None,
                       help="default: the --config file's variant, else full")
    train.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    train.add_argument("--resume", action="store_true",
                       help="continue from the last per-epoch snapshot of this --out, if there is one")
    train.add_argument("--overwrite", action="store_true",
                       help="replace --out even when it is a directory that is not a MAGNET checkpoint")

    ev = sub.add_parser("evaluate", help="re-evaluate a checkpoint on its dataset")
    ev.add_argument("checkpoint", type=Path)
    ev.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    ev.add_argument("--json", action="store_true", help="print the metrics as JSON")
    ev.add_argument("--cache-encoded", action="store_true",
                    help="also write the checkpoint's encoded.safetensors (dashboard loads it instead "
                         "of rebuilding graphs)")

    fid = sub.add_parser("fidelity", help="measure how faithful a checkpoint's explanations are")
    fid.add_argument("checkpoint", type=Path)
    fid.add_argument("--users", type=int, default=400, help="users sampled (default 400)")
    fid.add_argument("--top", type=int, default=20, help="recommendations per user (default 20)")
    fid.add_argument("--seed", type=int, default=0, help="seed of the user sample")
    fid.add_argument("--json", action="store_true", help="print the measures as JSON")

    ab = sub.add_parser("ablate", help="train every variant with the same seed and budget")
    _add_common(ab)
    ab.add_argument("--out", type=Path, required=True, help="folder that receives one checkpoint per variant")
    ab.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ab.add_argument("--seeds", nargs="+", type=int,
                    help="several seeds: one ablation per seed in OUT/seed-<s>, then the mean ± std "
                         "table OUT/summary_seeds.md")
    ab.add_argument("--overwrite", action="store_true",
                    help="write into --out even when it holds files that are not ours")
    _add_tune(sub)
    return parser


def _add_tune(sub: argparse._SubParsersAction) -> None:
    tune = sub.add_parser("tune", help="search hyper-parameters with Optuna, selecting on the valid split")
    tune.add_argument("--data", required=True, help=DATA_HELP)
    tune.add_argument("--trials", type=int, default=20, help="new trials in this run (default 20)")
    tune.add_argument("--budget-minutes", type=float, default=60.0,
                      help="start no new trial after this many minutes (default 60)")
    tune.add_argument("--out", type=Path, required=True,
                      help="study folder: study.db (rerun to resume), best_config.json, trials.csv/md")
    tune.add_argument("--config", type=Path, help="base JSON run config for every untuned field")
    tune.add_argument("--variant", choices=VARIANTS, default="full")
    tune.add_argument("--study-name", help="default magnet-<variant>")
    tune.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="default: auto")
    tune.add_argument("--epochs", type=int, help="maximum epochs per trial (early stopping and pruning may end sooner)")
    tune.add_argument("--seed", type=int, help="training seed of every trial (and the sampler's)")
    tune.add_argument("--quiet", action="store_true", help="no per-trial log lines")


def _run_tune(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``magnet tune``: run or resume a study, print its table and where the best config is."""
    if args.trials < 1:
        parser.error(f"--trials must be >= 1, got {args.trials}")
    if not 0 < args.budget_minutes < float("inf"):
        parser.error(f"--budget-minutes must be a positive number, got {args.budget_minutes}")
    from .tune import run_study

    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    base = _base_config(args)
    if base is not None:
        validate_config(base, args.config)
    result = run_study(args.data, args.out, trials=args.trials, budget_minutes=args.budget_minutes,
                       base_config=base, variant=args.variant, seed=args.seed,
                       device=args.device, epochs=args.epochs, study_name=args.study_name, log=log)
    print(result.markdown)
    c = result.counts
    print(f"{c['trials']} trials ({c['complete']} complete, {c['pruned']} pruned, {c['fail']} failed) "
          f"in {result.storage}")
    if result.best_config is None:
        print("error: no trial has completed yet; see trials.md", file=sys.stderr)
        return 2
    print(f"best valid {result.metric} {result.best_value:.4f} (trial {result.best_trial})")
    print(f"best config written to {result.best_config}")
    print(f"retrain: python -m magnet train --config {result.best_config} --out <checkpoint dir>")
    return 0


def _run_fidelity(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``magnet fidelity``: knockout and (synthetic data) planted-truth faithfulness."""
    for name in ("users", "top"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    from .explain import ExplainContext
    from .explain.fidelity import fidelity, fidelity_text

    report = fidelity(ExplainContext.load(args.checkpoint), n_users=args.users, top_n=args.top, seed=args.seed)
    print(json.dumps(report, indent=2) if args.json else fidelity_text(report))
    return 0


def _check_numbers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The numeric flags, before anything is loaded: --epochs, --seed and --seeds."""
    epochs = getattr(args, "epochs", None)
    if epochs is not None and epochs < 1:
        parser.error(f"--epochs must be >= 1, got {epochs}")
    if epochs is not None and epochs > MAX_EPOCHS:
        parser.error(f"--epochs must be <= {MAX_EPOCHS}, got {epochs}")
    seeds = [getattr(args, "seed", None), *(getattr(args, "seeds", None) or [])]
    for seed in seeds:
        if seed is not None and not 0 <= seed < SEED_LIMIT:
            parser.error(f"--seed must be in 0..{SEED_LIMIT - 1}, got {seed}")


def _check_device(device: str | None, source: str | Path | None) -> None:
    """A one-line error for a CUDA device on a machine without one (before anything is loaded)."""
    if device is not None and device.startswith("cuda") and not _cuda():
        raise ConfigError(f"device {device} was asked for but no CUDA device is available "
                          "(use --device cpu or auto)", source or "--device")


def _base_config(args: argparse.Namespace) -> RunConfig | None:
    return RunConfig.from_json_file(args.config) if getattr(args, "config", None) else None


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_numbers(parser, args)
    # heavy imports only after the arguments are known to be good
    from . import pipeline, restore
    from .evaluate import metric_table
    from .inputs import resolve_device

    base = _base_config(args) if args.command in ("train", "ablate") else None
    if args.command in ("train", "ablate") and args.data is None:
        args.data = base.data if base is not None else "synthetic:demo"
    if args.command == "train":
        variant = args.variant or (base.variant if base is not None else "full")
        config = pipeline.make_config(args.data, variant, base, args.device, args.epochs, args.seed)
        validate_config(config, args.config)
        _check_device(config.device, None if args.device else args.config)
        out = pipeline.train_run(config, args.out, projection=args.projection, progress=not args.quiet,
                                 log=lambda m: print(m, file=sys.stderr), resume=args.resume,
                                 overwrite=args.overwrite, config_file=args.config)
        if not pipeline.is_main_process():
            return 0  # under torchrun only rank 0 reports (and only it wrote the checkpoint)
        metrics = json.loads((out / "metrics.json").read_text())
        print(metric_table(metrics, config.train.topks))
        print(f"checkpoint written to {out}")
    elif args.command == "evaluate":
        _check_device(args.device, None)
        device = str(resolve_device(args.device))
        ckpt, metrics = restore.evaluate_checkpoint(args.checkpoint, device=device,
                                                    cache_encoded=args.cache_encoded)
        if args.json:
            print(json.dumps(metrics, indent=2))
        else:
            print(f"{ckpt.path} ({ckpt.variant} on {ckpt.info['dataset']['name']})")
            print(metric_table(metrics, ckpt.config.train.topks))
    elif args.command == "fidelity":
        return _run_fidelity(parser, args)
    elif args.command == "ablate":
        print(_run_ablate(args, base, pipeline))
    elif args.command == "tune":
        _check_device(args.device, None)
        return _run_tune(parser, args)
    return 0


def _run_ablate(args: argparse.Namespace, base: RunConfig | None, pipeline) -> str:
    """``magnet ablate``: the output folder and the config checked first, then every variant."""
    from .ablation import run_ablation, run_seeds

    _check_device(args.device or (base.device if base else None), None if args.device else args.config)
    if base is not None:
        validate_config(base, args.config)
    inputs = pipeline.input_paths(args.data, None, args.config)
    out = pipeline.check_ablation_output(args.out, args.variants, inputs, args.overwrite, args.seeds)
    common = dict(variants=args.variants, base=base, device=args.device, epochs=args.epochs,
                  projection=args.projection, progress=not args.quiet, overwrite=args.overwrite,
                  config_file=args.config)
    if args.seeds:
        return run_seeds(args.data, out, args.seeds, **common)
    return run_ablation(args.data, out, seed=args.seed, **common)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except MagnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system refused (permissions, a full disk, a read-only folder)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
