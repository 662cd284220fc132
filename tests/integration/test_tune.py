"""`magnet tune`: a 2-trial Optuna study on synthetic:tiny through the CLI, its resumption, and
the winner retraining to exactly the valid score the study recorded."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path
from typing import Iterator

import optuna
import pandas as pd
import pytest
import torch

from magnet.cli import main
from magnet.config import RunConfig, validate_config
from magnet.data import DEFAULT_CACHE, load_dataset
from magnet.errors import ConfigError
from magnet.pipeline import make_config
from magnet.trainer import Trainer
from magnet.tune import (SEARCH_SPACE, Param, check_space, make_objective, space_for_variant, space_markdown,
                         suggest_config, trials_table)

pytestmark = pytest.mark.slow  # trains, or runs the CLI in subprocesses

ROOT = Path(__file__).resolve().parents[2]
# Small and quick: 2 epochs of 4 steps, the routing switch forced early by the fallback.
TINY_BASE = {"model": {"embedding_dim": 16}, "train": {"batch_size": 512, "epochs": 2},
             "routing": {"window": 5, "max_coverage_steps": 6}}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: on a shared 2-core machine two OpenMP threads are ~5x slower here
    (the same reason conftest.py runs its subprocess with OMP_NUM_THREADS=1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tune(out: Path, base: Path, *extra: str) -> tuple[int, str]:
    """``magnet tune`` on synthetic:tiny in-process; returns (exit status, stdout)."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["tune", "--data", "synthetic:tiny", "--out", str(out), "--config", str(base),
                     "--device", "cpu", "--seed", "3", "--quiet", *extra])
    return code, stdout.getvalue()


@pytest.fixture(scope="module")
def base_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tune-base") / "base.json"
    path.write_text(json.dumps(TINY_BASE))
    return path


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory, base_json: Path) -> Path:
    out = tmp_path_factory.mktemp("tune") / "study"
    code, stdout = tune(out, base_json, "--trials", "2", "--budget-minutes", "10")
    assert code == 0
    assert "best config written to" in stdout and "| trial | state |" in stdout
    return out


def load_study(out: Path) -> optuna.Study:
    return optuna.load_study(study_name="magnet-full", storage=f"sqlite:///{out / 'study.db'}")


def test_tune_writes_study_table_and_best_config(study_dir: Path) -> None:
    for name in ("study.db", "best_config.json", "best.json", "trials.csv", "trials.md"):
        assert (study_dir / name).is_file(), name
    study = load_study(study_dir)
    assert len(study.trials) == 2
    table = pd.read_csv(study_dir / "trials.csv")
    assert list(table["trial"]) == [0, 1] and set(table["state"]) <= {"COMPLETE", "PRUNED"}
    assert {p.path for p in SEARCH_SPACE} <= set(table.columns)
    best = json.loads((study_dir / "best.json").read_text())
    assert best["trials"] == 2 and best["metric"] == "valid recall@20"
    assert best["best_value"] == study.best_value and best["best_trial"] == study.best_trial.number
    assert "test" not in json.dumps(best)  # selection never looks at the test split


def test_best_config_retrains_to_recorded_valid_score(study_dir: Path) -> None:
    config = RunConfig.from_json_file(study_dir / "best_config.json")
    assert config.data == "synthetic:tiny" and config.variant == "full" and config.train.seed == 3
    assert config.train.epochs == 2 and config.model.embedding_dim == 16  # base config kept
    best = load_study(study_dir).best_trial
    for path, value in best.params.items():
        section, _, name = path.partition(".")
        assert getattr(getattr(config, section), name) == value
    # `train --config best_config.json` (no --data/--variant) runs this very config
    assert make_config(config.data, config.variant, config).to_dict() == config.to_dict()
    data = load_dataset(config.data, cache_dir=DEFAULT_CACHE)
    state = Trainer(config, data, progress=False).fit()
    assert state.metrics["valid"]["recall@20"] == pytest.approx(best.value, abs=1e-6)
    assert state.best_epoch == best.user_attrs["best_epoch"]


def test_rerun_resumes_the_study(study_dir: Path, base_json: Path, tmp_path: Path) -> None:
    out = tmp_path / "study"
    shutil.copytree(study_dir, out)
    code, _ = tune(out, base_json, "--trials", "1")
    assert code == 0
    trials = load_study(out).trials
    assert len(trials) == 3
    assert trials[2].params not in (trials[0].params, trials[1].params)  # sampler reseeded past them
    assert len(pd.read_csv(out / "trials.csv")) == 3 and json.loads((out / "best.json").read_text())["trials"] == 3


def test_resume_with_another_seed_is_refused(study_dir: Path, base_json: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "study"
    shutil.copytree(study_dir, out)
    code = main(["tune", "--data", "synthetic:tiny", "--out", str(out), "--config", str(base_json),
                 "--device", "cpu", "--seed", "4", "--quiet", "--trials", "1"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "different base_config" in lines[0], lines
    assert len(load_study(out).trials) == 2


@pytest.mark.parametrize("args, phrase", [
    (["--trials", "0"], "--trials must be >= 1"),
    (["--budget-minutes", "0"], "--budget-minutes must be a positive number"),
    (["--budget-minutes", "nan"], "--budget-minutes must be a positive number"),
    (["--epochs", "0"], "--epochs must be >= 1"),
])
def test_bad_arguments_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           args: list[str], phrase: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["tune", "--data", "synthetic:tiny", "--out", str(tmp_path / "x"), *args])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(lines) == 1 and lines[0].startswith("error:") and phrase in lines[0]
    assert not (tmp_path / "x").exists()


def fixed_params() -> dict[str, object]:
    return {"model.expert_kind": "mlp", "model.expert_hidden": 32, "train.content_weight_decay": 0.3,
            "model.router_rank": 16,
            "model.fusion_gamma_init": 0.0, "model.learn_fusion_gamma": False,
            "train.lr": 2e-3, "train.expert_lr_scale": 0.5,
            "train.router_lr_scale": 4.0, "train.expert_weight_decay": 0.01, "train.reg_weight": 1e-5,
            "train.loss": "softmax", "train.n_negatives": 16, "train.softmax_tau": 0.8,
            "train.vc_weight": 0.05, "graph.aug_weight": 1.5, "graph.knn_k": 17, "routing.tau_cov": 3.0,
            "routing.tau_spec": 0.2, "routing.k_spec": 1, "routing.ramp_steps": 150,
            "routing.lb_weight": 0.02, "routing.conf_weight": 0.005}


def test_suggest_config_sets_dotted_paths() -> None:
    base = RunConfig.from_dict(TINY_BASE)
    config = suggest_config(optuna.trial.FixedTrial(fixed_params()), base)
    validate_config(config)
    assert config.model.expert_hidden == 32 and config.train.lr == 2e-3
    assert config.model.expert_kind == "mlp" and config.train.content_weight_decay == 0.3
    assert config.train.expert_lr_scale == 0.5 and config.train.router_lr_scale == 4.0
    assert config.train.expert_weight_decay == 0.01 and config.train.reg_weight == 1e-5
    assert config.train.vc_weight == 0.05 and config.graph.aug_weight == 1.5 and config.graph.knn_k == 17
    assert config.routing.tau_cov == 3.0 and config.routing.tau_spec == 0.2 and config.routing.k_spec == 1
    assert config.routing.ramp_steps == 150 and config.routing.lb_weight == 0.02
    assert config.routing.conf_weight == 0.005
    assert config.model.fusion_gamma_init == 0.0 and config.model.learn_fusion_gamma is False
    assert config.model.router_rank == 16
    assert config.train.loss == "softmax" and config.train.n_negatives == 16 and config.train.softmax_tau == 0.8
    assert isinstance(config.graph.knn_k, int) and isinstance(config.train.lr, float)
    assert config.train.epochs == 2 and config.model.embedding_dim == 16  # untuned fields from base
    assert base.train.lr == RunConfig().train.lr  # base not modified


def test_variant_pins_win_and_are_not_sampled() -> None:
    base = make_config("synthetic:tiny", "no_routing_reg")
    space = space_for_variant(SEARCH_SPACE, "no_routing_reg")
    assert {p.path for p in space} == {p.path for p in SEARCH_SPACE} - {"routing.lb_weight", "routing.conf_weight"}
    config = suggest_config(optuna.trial.FixedTrial(fixed_params()), base, SEARCH_SPACE)
    assert config.routing.lb_weight == 0.0 and config.routing.conf_weight == 0.0  # the variant wins
    assert [p.path for p in space_for_variant(SEARCH_SPACE, "behaviour_only")] == [
        "train.lr", "train.reg_weight", "train.loss", "train.n_negatives", "train.softmax_tau"]


def test_search_space_is_checked_and_documented() -> None:
    check_space(SEARCH_SPACE)
    with pytest.raises(ConfigError, match="not a RunConfig field"):
        check_space([Param("train.learning_rate", "float", 1e-4, 1e-2)])
    assert space_markdown() in (ROOT / "docs" / "TUNING.md").read_text()


def test_pruned_trial_is_recorded() -> None:
    """A trial pruned at its first evaluation keeps its epoch bookkeeping and shows in the table."""
    base = make_config("synthetic:tiny", "full", RunConfig.from_dict(TINY_BASE), "cpu")
    data = load_dataset("synthetic:tiny", cache_dir=DEFAULT_CACHE)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0),
                                pruner=optuna.pruners.ThresholdPruner(lower=2.0))  # recall < 2: always
    study.optimize(make_objective(base, data, SEARCH_SPACE), n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs["epochs_run"] == 1 and trial.user_attrs["best_epoch"] == 1
    table = trials_table(study, SEARCH_SPACE, "recall@20")
    assert table.loc[0, "state"] == "PRUNED" and table.loc[0, "epochs_run"] == 1


def test_a_diverging_trial_is_recorded_as_failed_and_the_study_goes_on(tmp_path, monkeypatch) -> None:
    import magnet.tune as tune
    from magnet.errors import TrainingError

    class Diverging(Trainer):
        def fit(self, *args, **kwargs):
            raise TrainingError("train.lr: the loss became NaN at step 3")

    monkeypatch.setattr(tune, "Trainer", Diverging)
    result = tune.run_study("synthetic:tiny", tmp_path / "study", trials=2, budget_minutes=5.0,
                            base_config=RunConfig.from_dict(TINY_BASE), device="cpu", seed=3)
    assert result.counts["fail"] == 2 and result.best_config is None
    assert set(pd.read_csv(tmp_path / "study" / "trials.csv")["state"]) == {"FAIL"}
