"""Hyper-parameter search with Optuna (``python -m magnet tune``).

A study samples run configs from a declared search space (:data:`SEARCH_SPACE`), trains each
one with :class:`~magnet.trainer.Trainer` and maximises the best **valid** value of the config's
``train.select_metric`` (recall@20 by default). The test split is never used to choose anything:
the trainer does evaluate it once for the final model, and this module throws that away.

* Storage: Optuna's RDB storage in ``<out>/study.db`` (SQLite), so running the same command again
  resumes the study (the new trials are added to the old ones).
* Sampler: TPE, seeded with ``seed`` + the number of trials already in the study, so a resumed
  study is reproducible and does not re-draw the points of the first session.
* Pruner: median rule on the valid metric reported after every evaluation (step = epoch).
* Budget: at most ``trials`` new trials and no new trial after ``budget_minutes``.

Outputs in ``out``: ``study.db``, ``best_config.json`` (a full :class:`RunConfig` that
``python -m magnet train --config`` accepts), ``best.json`` (summary), ``trials.csv`` and
``trials.md`` (one row per trial).
"""
from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import optuna
import pandas as pd

from .config import RunConfig, apply_variant, validate_config
from .data import DEFAULT_CACHE, Dataset, load_dataset
from .errors import ConfigError, MagnetError, TrainingError
from .fileio import frame_markdown, write_text_atomic
from .pipeline import make_config
from .inputs import needs_features
from .trainer import Trainer, TrainerCallback
from .variants import VARIANT_TABLE, matches

Log = Callable[[str], None]


class TuneError(MagnetError):
    """A study cannot be run or resumed as asked."""


# ---------------------------------------------------------------------------- search space
@dataclass(frozen=True)
class Param:
    """One tuned field of :class:`RunConfig`, addressed by its dotted ``path`` (``train.lr``).

    ``kind`` is ``float`` (``low``..``high``, log scale when ``log``), ``int`` (``low``..``high``
    in steps of ``step``) or ``categorical`` (one of ``choices``); ``why`` is for the docs."""

    path: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: int = 1
    choices: tuple[Any, ...] = ()
    why: str = ""

    def suggest(self, trial: optuna.trial.BaseTrial) -> Any:
        """Draw this parameter from ``trial`` (the Optuna parameter name is ``path``)."""
        if self.kind == "float":
            return trial.suggest_float(self.path, float(self.low), float(self.high), log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.path, int(self.low), int(self.high), step=self.step, log=self.log)
        if self.kind == "categorical":
            return trial.suggest_categorical(self.path, list(self.choices))
        raise ConfigError(f"search space: {self.path} has unknown kind {self.kind!r}")

    def range_text(self) -> str:
        """The range as written in docs/TUNING.md."""
        if self.kind == "categorical":
            return "{" + ", ".join(str(c) for c in self.choices) + "}"
        text = f"{self.low:g} – {self.high:g}"
        return text + (f" (step {self.step})" if self.kind == "int" and self.step != 1 else "")

    def scale_text(self) -> str:
        if self.kind == "categorical":
            return "categorical"
        return ("log" if self.log else "linear") + (" int" if self.kind == "int" else "")


SEARCH_SPACE: tuple[Param, ...] = (
    Param("model.expert_kind", "categorical", choices=("diagonal", "mlp"),
          why="expert projections: a learned per-dimension metric, or a residual 2-layer MLP"),
    Param("model.expert_hidden", "categorical", choices=(16, 32, 64),
          why="width of each expert's projection MLP (used by expert_kind mlp only)"),
    Param("model.router_rank", "categorical", choices=(0, 16, 32, 64),
          why="rank of the router's bilinear term (0 = diagonal over all 3d dims; 32 halves catalogue scoring)"),
    Param("model.fusion_gamma_init", "categorical", choices=(0.0, 0.1),
          why="initial fusion scalar γ of h^B = h^B_int + γ·h^B_aug"),
    Param("model.learn_fusion_gamma", "categorical", choices=(True, False),
          why="learn γ, or keep it at its initial value (0 and fixed: h^B is plain LightGCN; best on ml100k)"),
    Param("train.lr", "float", 3e-4, 1e-2, log=True,
          why="base Adam step (graph encoder / ID embeddings group)"),
    Param("train.expert_lr_scale", "float", 0.1, 10.0, log=True,
          why="lr multiplier of the expert-projection parameter group"),
    Param("train.router_lr_scale", "float", 0.1, 10.0, log=True,
          why="lr multiplier of the router parameter group"),
    Param("train.expert_weight_decay", "float", 1e-3, 0.5, log=True,
          why="L2 decay on the expert MLPs (keeps content experts from overfitting)"),
    Param("train.content_weight_decay", "float", 1e-2, 3.0, log=True,
          why="L2 decay on the content projections W_A, W_S (they overfit first on ml100k)"),
    Param("train.reg_weight", "float", 1e-6, 1e-1, log=True,
          why="L2 on the batch's ID embeddings (best on valid: 1e-3 ml100k, 1e-2 Baby and the demo)"),
    Param("train.loss", "categorical", choices=("bpr", "softmax"),
          why="ranking loss: BPR (spec) or sampled softmax over the negatives (best on ml100k)"),
    Param("train.n_negatives", "categorical", choices=(1, 16, 64),
          why="uniform negatives per positive (BPR averages its pairs; softmax normalises over them)"),
    Param("train.softmax_tau", "float", 0.5, 2.0, log=True,
          why="temperature of the sampled softmax (used by loss softmax only)"),
    Param("train.vc_weight", "float", 1e-3, 0.3, log=True,
          why="view-contrastive (InfoNCE) weight between the two behaviour views"),
    Param("graph.aug_weight", "float", 0.1, 3.0, log=True,
          why="weight of the content (item-item) edges in the augmented view"),
    Param("graph.knn_k", "int", 5, 30,
          why="neighbours per item in the content kNN graphs"),
    Param("routing.tau_cov", "float", 1.0, 5.0, log=True,
          why="router temperature in the coverage regime (start of the τ schedule)"),
    Param("routing.tau_spec", "float", 0.1, 1.0, log=True,
          why="router temperature once specialised (end of the τ schedule; below tau_cov)"),
    Param("routing.k_spec", "int", 1, 3,
          why="Top-K experts per pair once specialised (K; coverage uses k_cov = 3)"),
    Param("routing.ramp_steps", "int", 0, 500, step=50,
          why="steps over which τ, K, noise and the entropy term move to their specialised values"),
    Param("routing.lb_weight", "float", 1e-3, 0.1, log=True,
          why="load-balance regulariser (both regimes)"),
    Param("routing.conf_weight", "float", 1e-3, 0.1, log=True,
          why="confidence regulariser once specialised"),
)

def check_space(space: Sequence[Param]) -> None:
    """Raise :class:`ConfigError` if a path is not a field of :class:`RunConfig` or repeats."""
    defaults = RunConfig().to_dict()
    seen: set[str] = set()
    for p in space:
        section, _, name = p.path.partition(".")
        if not isinstance(defaults.get(section), dict) or name not in defaults[section]:
            raise ConfigError(f"search space: {p.path} is not a RunConfig field")
        if p.path in seen:
            raise ConfigError(f"search space: {p.path} appears twice")
        if p.kind not in ("float", "int", "categorical"):
            raise ConfigError(f"search space: {p.path} has unknown kind {p.kind!r}")
        seen.add(p.path)


def space_for_variant(space: Sequence[Param], variant: str) -> tuple[Param, ...]:
    """``space`` without the parameters that ``variant`` pins or ignores
    (:attr:`magnet.variants.Variant.pinned`)."""
    if variant not in VARIANT_TABLE:
        raise ConfigError(f"unknown variant {variant!r}")
    pinned = VARIANT_TABLE[variant].pinned
    return tuple(p for p in space if not matches(p.path, pinned))


def suggest_config(trial: optuna.trial.BaseTrial, base: RunConfig,
                   space: Sequence[Param] = SEARCH_SPACE) -> RunConfig:
    """A copy of ``base`` with every parameter of ``space`` drawn from ``trial``; the variant's
    switches of ``base`` are re-applied last so they always win. Raises ``ConfigError`` if the
    result is not a valid config."""
    raw = base.to_dict()
    for p in space:
        section, _, name = p.path.partition(".")
        raw[section][name] = p.suggest(trial)
    config = apply_variant(RunConfig.from_dict(raw, source="search space"), base.variant)
    validate_config(config)
    return config


def space_markdown(space: Sequence[Param] = SEARCH_SPACE) -> str:
    """The search space as a Markdown table (the one in docs/TUNING.md)."""
    rows = ["| parameter | range | scale | why |", "|---|---|---|---|"]
    rows += [f"| `{p.path}` | {p.range_text()} | {p.scale_text()} | {p.why} |" for p in space]
    return "\n".join(rows)


# ---------------------------------------------------------------------------- study
@dataclass
class TuneSettings:
    """Knobs of the search itself (not of the model)."""

    trials: int = 20  # new trials in this invocation
    budget_minutes: float = 60.0  # no new trial starts after this
    sampler_startup_trials: int = 10  # random trials before TPE models the space
    pruner_startup_trials: int = 3  # completed trials before the median pruner may prune
    pruner_warmup_epochs: int = 2  # never prune before this many epochs of a trial
    heartbeat_seconds: int = 60  # a RUNNING trial silent for 3x this (killed run) is marked FAIL

    def check(self) -> None:
        if self.trials < 1:
            raise ConfigError(f"--trials must be >= 1, got {self.trials}")
        if not (self.budget_minutes > 0) or math.isinf(self.budget_minutes):
            raise ConfigError(f"--budget-minutes must be a positive number, got {self.budget_minutes}")


@dataclass
class StudyResult:
    """What a finished (or resumed) study reports."""

    study_name: str
    storage: str
    out_dir: Path
    metric: str
    table: pd.DataFrame
    best_value: float | None = None
    best_trial: int | None = None
    best_config: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def markdown(self) -> str:
        return frame_markdown(self.table, ".4g")


def storage_url(out_dir: Path) -> str:
    """``sqlite:///<absolute out_dir>/study.db``."""
    return f"sqlite:///{(Path(out_dir) / 'study.db').resolve()}"


def study_identity(config: RunConfig, data: Dataset, space: Sequence[Param]) -> dict[str, Any]:
    """What must not change between the sessions of one study (the device may)."""
    run = config.to_dict()
    run.pop("device")
    return {"data": config.data, "fingerprint": data.fingerprint, "variant": config.variant,
            "base_config": run, "space": [p.path for p in space]}


def open_study(storage: str, study_name: str, identity: dict[str, Any], seed: int,
               settings: TuneSettings) -> optuna.Study:
    """Create the study, or load it (refusing one made for other data/config/space)."""
    with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna; we rely on it knowingly
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = optuna.storages.RDBStorage(storage, heartbeat_interval=settings.heartbeat_seconds,
                                         grace_period=3 * settings.heartbeat_seconds)
    study = optuna.create_study(
        storage=rdb, study_name=study_name, direction="maximize", load_if_exists=True,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=settings.pruner_startup_trials,
                                           n_warmup_steps=settings.pruner_warmup_epochs))
    # Seeded past the trials already stored: a resumed session draws new points, reproducibly.
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials),
                                               n_startup_trials=settings.sampler_startup_trials)
    stored = study.user_attrs.get("identity")
    if stored is None:
        study.set_user_attr("identity", identity)
    elif stored != identity:
        changed = sorted(k for k in identity if stored.get(k) != identity[k])
        raise TuneError(f"study {study_name!r} was made with a different {', '.join(changed)}; "
                        "use another --out (or --study-name) for a new study", storage)
    return study


class PruneOnValid(TrainerCallback):
    """Reports every valid ``metric`` to an Optuna trial and prunes it (raising
    :class:`optuna.TrialPruned` out of :meth:`Trainer.fit`) when the pruner says so; records the
    trial's best epoch and epochs run when it does."""

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial, self.metric = trial, metric
        self.best_epoch, self.best_value = 0, -math.inf

    def on_evaluate(self, trainer: Trainer, epoch: int, valid: dict[str, Any]) -> None:
        value = float(valid[self.metric])
        if value > self.best_value:
            self.best_epoch, self.best_value = epoch, value
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.trial.set_user_attr("best_epoch", self.best_epoch)
            self.trial.set_user_attr("epochs_run", epoch)
            raise optuna.TrialPruned(f"valid {self.metric} {value:.4f} at epoch {epoch}")


def make_objective(base: RunConfig, data: Dataset, space: Sequence[Param]
                   ) -> Callable[[optuna.Trial], float]:
    """Objective: train one sampled config; return its best valid ``select_metric``.

    The valid metric is reported after every evaluation for pruning. Stored per trial:
    ``config`` (the full RunConfig), ``best_epoch``, ``epochs_run``, ``valid`` (scalar metrics)."""
    metric = base.train.select_metric

    def objective(trial: optuna.Trial) -> float:
        config = suggest_config(trial, base, space)
        trial.set_user_attr("config", config.to_dict())
        state = Trainer(config, data, progress=False).fit(callbacks=[PruneOnValid(trial, metric)])
        valid = {k: v for k, v in state.metrics["valid"].items() if k != "buckets"}  # never "test"
        trial.set_user_attr("best_epoch", int(state.best_epoch))
        trial.set_user_attr("epochs_run", int(state.epochs_run))
        trial.set_user_attr("valid", valid)
        return float(valid[metric])

    return objective


def trials_table(study: optuna.Study, space: Sequence[Param], metric: str) -> pd.DataFrame:
    """One row per trial: number, state, value, best epoch, epochs run, seconds, parameters."""
    rows = []
    for t in study.trials:
        duration = t.duration.total_seconds() if t.duration is not None else None
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name,
                               f"valid_{metric}": t.value, "best_epoch": t.user_attrs.get("best_epoch"),
                               "epochs_run": t.user_attrs.get("epochs_run"),
                               "seconds": None if duration is None else round(duration, 1)}
        row.update({p.path: t.params.get(p.path) for p in space})
        rows.append(row)
    columns = ["trial", "state", f"valid_{metric}", "best_epoch", "epochs_run", "seconds",
               *(p.path for p in space)]
    table = pd.DataFrame(rows, columns=columns)
    for column in ("best_epoch", "epochs_run"):
        table[column] = table[column].astype("Int64")
    return table


def write_outputs(study: optuna.Study, out_dir: Path, space: Sequence[Param], metric: str) -> StudyResult:
    """Write ``trials.csv``, ``trials.md``, ``best.json`` and (once a trial completed)
    ``best_config.json`` from the whole study, previous sessions included."""
    table = trials_table(study, space, metric)
    write_text_atomic(out_dir / "trials.csv", table.to_csv(index=False))
    write_text_atomic(out_dir / "trials.md", frame_markdown(table, ".4g") + "\n")
    states = [t.state for t in study.trials]
    counts = {"trials": len(states), **{s.name.lower(): states.count(s) for s in optuna.trial.TrialState}}
    result = StudyResult(study.study_name, storage_url(out_dir), out_dir, metric, table, counts=counts)
    identity = study.user_attrs.get("identity", {})
    summary: dict[str, Any] = {"study_name": study.study_name, "metric": f"valid {metric}", **counts,
                               **{k: identity.get(k) for k in ("data", "fingerprint", "variant")},
                               "best_value": None, "best_trial": None}
    if counts["complete"]:
        best = study.best_trial
        result.best_value, result.best_trial = float(best.value), best.number
        result.best_config = out_dir / "best_config.json"
        write_text_atomic(result.best_config, RunConfig.from_dict(best.user_attrs["config"]).to_json() + "\n")
        summary.update(best_value=result.best_value, best_trial=best.number,
                       best_epoch=best.user_attrs.get("best_epoch"), best_params=best.params,
                       best_valid=best.user_attrs.get("valid"), best_config="best_config.json")
    write_text_atomic(out_dir / "best.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return result


def run_study(data_spec: str, out_dir: str | Path, trials: int = 20, budget_minutes: float = 60.0,
              base_config: RunConfig | None = None, variant: str = "full", seed: int | None = None,
              device: str | None = None, epochs: int | None = None, study_name: str | None = None,
              storage: str | None = None, data: Dataset | None = None,
              space: Sequence[Param] = SEARCH_SPACE, settings: TuneSettings | None = None,
              log: Log | None = None) -> StudyResult:
    """Run (or resume) a study on ``data_spec`` and write its outputs to ``out_dir``.

    ``base_config`` gives every untuned field; ``variant``, ``device``, ``epochs`` (max epochs per
    trial) and ``seed`` (training seed of every trial, and the sampler's) override it as in
    ``train``. ``data`` skips loading when the caller already has the dataset."""
    settings = replace(settings or TuneSettings(), trials=trials, budget_minutes=budget_minutes)
    settings.check()
    check_space(space)
    log = log or (lambda message: None)
    base = make_config(data_spec, variant, base_config, device, epochs, seed)
    validate_config(base)
    space = space_for_variant(space, variant)
    if data is None:
        data = load_dataset(data_spec, cache_dir=DEFAULT_CACHE, require_features=needs_features(base))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    storage = storage or storage_url(out_dir)
    study_name = study_name or f"magnet-{variant}"
    metric = base.train.select_metric

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        value = "" if trial.value is None else f" valid {metric} {trial.value:.4f}"
        seconds = trial.duration.total_seconds() if trial.duration is not None else float("nan")
        log(f"trial {trial.number} {trial.state.name.lower()}{value} "
            f"(best epoch {trial.user_attrs.get('best_epoch')}, {seconds:.1f} s)")
        write_outputs(study, out_dir, space, metric)

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        study = open_study(storage, study_name, study_identity(base, data, space), base.train.seed, settings)
        log(f"study {study_name} in {storage}: {len(study.trials)} earlier trial(s); "
            f"up to {settings.trials} more within {settings.budget_minutes:g} min")
        # A diverging trial (a TrainingError: its loss went non-finite) is recorded as failed,
        # and the study goes on with the next one.
        study.optimize(make_objective(base, data, space), n_trials=settings.trials,
                       timeout=settings.budget_minutes * 60.0, callbacks=[after_trial], gc_after_trial=True,
                       catch=(TrainingError,))
    finally:
        optuna.logging.set_verbosity(verbosity)
    return write_outputs(study, out_dir, space, metric)


__all__ = ["Param", "PruneOnValid", "SEARCH_SPACE", "StudyResult", "TuneError", "TuneSettings",
           "check_space", "make_objective", "run_study", "space_for_variant", "space_markdown",
           "suggest_config", "trials_table", "write_outputs"]
