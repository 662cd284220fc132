"""Hostile and careless command lines, round two (issue 18), run in this process: every refusal is
one ``error: <file>: <problem>`` line with exit status 2, comes before anything is trained, and
leaves every file as it was. The few cases that train use the toy dataset for one epoch."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.hostile import assert_cli_error, make_dataset, read_only, run_cli, snapshot

FAST = ["--epochs", "1", "--quiet", "--projection", "pca"]
TOY_RUN = {"train": {"topks": [1, 2], "select_metric": "recall@2"}}


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """A working directory holding the toy dataset ``toy/`` and its run config ``toy.json``."""
    monkeypatch.chdir(tmp_path)
    make_dataset(tmp_path / "toy")
    (tmp_path / "toy.json").write_text(json.dumps(TOY_RUN))
    return tmp_path


def refused(work: Path, argv: list[str], name: str) -> str:
    """``magnet argv`` is refused in one line naming ``name``, at once, changing nothing."""
    before, began = snapshot(work), time.perf_counter()
    line = assert_cli_error(run_cli(argv), name)
    assert time.perf_counter() - began < 20, "refused only after training"
    assert snapshot(work) == before, "a refused command changed files"
    return line


def train(*args: str) -> list[str]:
    return ["train", "--data", "toy", "--config", "toy.json", *args, *FAST]


# --------------------------------------------------------------------------------------------
# class 1: the user's files are never lost
# --------------------------------------------------------------------------------------------
def _foreign_dir(work: Path) -> str:
    (work / "x" / "keep").mkdir(parents=True)
    (work / "x" / "keep" / "a").write_text("1")
    return "x"


def _a_file(work: Path) -> str:
    (work / "notes.txt").write_text("mine")
    return "notes.txt"


def _checkpoint_plus_file(work: Path) -> str:
    (work / "ck").mkdir()
    (work / "ck" / "config.json").write_text('{"format_version": 1}')
    (work / "ck" / "thesis.tex").write_text("mine")
    return "ck"


def _symlink_to_foreign(work: Path) -> str:
    _foreign_dir(work)
    (work / "ln").symlink_to(work / "x")
    return "ln"


@pytest.mark.parametrize(("make", "name"), [
    pytest.param(_foreign_dir, "not a MAGNET checkpoint", id="non-empty-folder"),
    pytest.param(_a_file, "not a directory", id="a-file"),
    pytest.param(_checkpoint_plus_file, "thesis.tex", id="checkpoint-holding-a-foreign-file"),
    pytest.param(_symlink_to_foreign, "not a MAGNET checkpoint", id="link-to-a-foreign-folder"),
    pytest.param(lambda w: ".", "working directory", id="dot"),
    pytest.param(lambda w: "..", "working directory", id="parent-of-cwd"),
    pytest.param(lambda w: "toy", "toy", id="out-is-the-data"),
    pytest.param(lambda w: "toy/ckpt", "toy", id="out-inside-the-data"),
    pytest.param(lambda w: "./toy/../toy", "toy", id="out-is-the-data-spelled-otherwise"),
    pytest.param(lambda w: ".magnet_cache", ".magnet_cache", id="out-is-the-cache"),
])
def test_train_out_refused(work, make, name) -> None:
    line = refused(work, train("--out", make(work)), name)
    assert "refus" in line or "choose" in line


def test_out_holding_the_config_is_refused(work) -> None:
    (work / "runs").mkdir()
    (work / "runs" / "run.json").write_text(json.dumps(TOY_RUN))
    refused(work, ["train", "--data", "toy", "--config", "runs/run.json", "--out", "runs", *FAST], "runs")


@pytest.mark.parametrize(("make", "name"), [
    pytest.param(_a_file, "not a directory", id="a-file"),
    pytest.param(_foreign_dir, "not ours", id="foreign-folder"),
    pytest.param(lambda w: "toy", "toy", id="into-the-data"),
    pytest.param(lambda w: ".", "not ours", id="dot"),
])
def test_ablate_out_refused(work, make, name) -> None:
    refused(work, ["ablate", "--data", "toy", "--config", "toy.json", "--out", make(work),
                   "--variants", "behaviour_only", *FAST], name)


def test_read_only_output_folder_is_refused_before_training(work) -> None:
    (work / "ro").mkdir()
    with read_only(work / "ro"):
        refused(work, train("--out", "ro/ck"), "ro")


def test_read_only_working_directory_is_refused_before_training(work) -> None:
    with read_only(work):
        refused(work, train("--out", "ck"), str(work))


# --------------------------------------------------------------------------------------------
# class 2 and 3: absurd or broken settings, refused before training, naming the config file
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("section", "name", "value"), [
    ("graph", "n_ui_layers", 10 ** 6), ("train", "n_negatives", 10 ** 5), ("model", "embedding_dim", 10 ** 8),
    ("train", "lr", float("inf")), ("train", "softmax_tau", 1e-300), ("train", "eval_batch_users", 0),
    ("train", "select_metric", "recall@020"), ("routing", "h_star", 1.2), ("routing", "max_coverage_steps", -1),
    ("routing", "k_spec", 10), ("train", "n_negatives", 5), ("train", "topks", [2, 6]),
])
def test_config_values_refused_naming_the_file(work, section, name, value) -> None:
    raw = json.loads(json.dumps(TOY_RUN))
    raw.setdefault(section, {})[name] = value
    (work / "bad.json").write_text(json.dumps(raw))
    line = refused(work, ["train", "--data", "toy", "--config", "bad.json", "--out", "ck", *FAST], "bad.json")
    assert f"{section}.{name}" in line


def test_data_bounds_without_a_config_name_the_data(work) -> None:
    line = refused(work, ["train", "--data", "toy", "--out", "ck", *FAST], "toy")
    assert "train.topks" in line and "5 items" in line


@pytest.mark.parametrize(("argv", "name"), [
    (["train", "--data", "toy", "--out", "ck", "--seed", "-1"], "--seed"),
    (["train", "--data", "toy", "--out", "ck", "--seed", str(2 ** 32)], "--seed"),
    (["ablate", "--data", "toy", "--out", "ab", "--seeds", "1", "-5"], "--seed"),
    (["train", "--data", "toy", "--out", "ck", "--epochs", str(10 ** 9)], "--epochs"),
    (["train", "--data", "toy", "--out", "ck", "--config", "."], "regular file"),
    (["train", "--data", "toy", "--out", "ck", "--config", "nested.json"], "nested.json"),
    (["train", "--data", "toy", "--out", "ck", "--config", "nowhere.json"], "nowhere.json"),
])
def test_bad_arguments_refused(work, argv, name) -> None:
    (work / "nested.json").write_text("[" * 100_000 + "]" * 100_000)
    refused(work, argv, name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_gpu(work) -> None:
    refused(work, train("--out", "ck", "--device", "cuda"), "--device")
    (work / "gpu.json").write_text(json.dumps({**TOY_RUN, "device": "cuda"}))
    refused(work, ["train", "--data", "toy", "--config", "gpu.json", "--out", "ck", *FAST], "gpu.json")
    refused(work, ["evaluate", "--device", "cuda", "toy"], "--device")


def test_malformed_snapshot_is_one_line(work) -> None:
    snap = work / ".ck.snapshot"
    snap.mkdir()
    (snap / "state.json").write_text('{"snapshot_version": 1, "loop": []}')
    refused(work, train("--out", "ck", "--resume"), "state.json")


# --------------------------------------------------------------------------------------------
# runs that train (toy data, one epoch)
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_own_checkpoints_are_replaced_foreign_ones_only_with_overwrite(work) -> None:
    assert run_cli(train("--out", "ck"))[0] == 0
    assert run_cli(train("--out", "ck"))[0] == 0, "our own checkpoint is replaced without a word"
    _foreign_dir(work)
    assert run_cli(train("--out", "x", "--overwrite"))[0] == 0
    assert (work / "x" / "model.safetensors").is_file() and not (work / "x" / "keep").exists()
    assert sorted(p.name for p in work.iterdir() if p.name.startswith(".") and p.name != ".magnet_cache") == []


def _huge_features(work: Path) -> None:
    feat = np.load(work / "toy" / "image_feat.npy")
    np.save(work / "toy" / "image_feat.npy", (feat * 1e30).astype(np.float32))


@pytest.mark.slow
def test_a_diverging_run_stops_and_leaves_nothing(work) -> None:
    """Finite but huge features overflow the projections: the loss goes NaN at the first step."""
    _huge_features(work)
    line = assert_cli_error(run_cli(train("--out", "ck")), "ck")
    assert "diverged" in line and "no checkpoint written" in line
    assert not (work / "ck").exists() and not (work / ".ck.snapshot").exists()


@pytest.mark.slow
def test_notes_for_a_resume_without_snapshot_and_dropped_rows(work) -> None:
    inter = work / "toy" / "toy.inter"
    inter.write_text(inter.read_text() + "0\t4\t5\t9\t1\n1\t4\t5\t9\t2\n")  # user 4: no training rows
    code, _, err = run_cli(train("--out", "ck", "--resume"))
    assert code == 0, err
    assert "no snapshot to resume from" in err and "training from epoch 1" in err
    assert "dropped 1 valid and 1 test rows" in err


@pytest.mark.slow
def test_ablate_reruns_into_its_own_folder_only(work) -> None:
    argv = ["ablate", "--data", "toy", "--config", "toy.json", "--out", "ab", "--variants", "behaviour_only", *FAST]
    assert run_cli(argv)[0] == 0
    assert run_cli(argv)[0] == 0, "an ablation folder of ours is written again"
    (work / "ab" / "thesis.tex").write_text("mine")
    refused(work, argv, "thesis.tex")
    assert run_cli([*argv, "--overwrite"])[0] == 0
    assert (work / "ab" / "thesis.tex").read_text() == "mine", "--overwrite replaces checkpoints, not the rest"


@pytest.mark.slow
def test_out_inside_a_generated_dataset_is_refused(work) -> None:
    """The folder of a generated dataset is known once it is loaded: still before training."""
    from magnet.data import DEFAULT_CACHE, load_dataset

    root = load_dataset("synthetic:tiny", cache_dir=DEFAULT_CACHE).root
    refused(work, ["train", "--data", "synthetic:tiny", "--out", str(root / "ck"), *FAST], root.name)
