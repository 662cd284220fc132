"""The command line: every bad input is one ``error:`` line on stderr and exit status 2, and
leaves nothing behind."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from magnet.pipeline import make_config
from tests.hostile import (REPO, copy_ckpt, data_line, edit_json, link_to, make_dataset, make_fifo, set_feature,
                           snapshot, truncate, with_value)

pytestmark = pytest.mark.slow  # runs the CLI in subprocesses

# --------------------------------------------------------------------------------------------
# corrupt inputs: one "error:" line on stderr, exit status 2
# --------------------------------------------------------------------------------------------

def _truncate_weights(d: Path) -> None:
    truncate(d / "model.safetensors")

def _other_dataset(d: Path) -> None:
    edit_json(d / "config.json", lambda c: c["dataset"].__setitem__("fingerprint", "0" * 64))


@pytest.mark.parametrize(("corrupt", "needle"), [
    pytest.param(_truncate_weights, "model.safetensors", id="truncated-weights"),
    pytest.param(_other_dataset, "another dataset", id="another-dataset"),
])
def test_cli_evaluate_corrupt_checkpoint(tiny_checkpoints, tmp_path, corrupt, needle) -> None:
    d = copy_ckpt(tiny_checkpoints, tmp_path, with_dataset=True)
    corrupt(d)
    before = snapshot(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
    proc = subprocess.run([sys.executable, "-m", "magnet", "evaluate", str(d)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{proc.stderr}"
    assert lines[0].startswith("error:") and needle in lines[0], lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert snapshot(tmp_path) == before


def _nan_feature(d: Path) -> None:
    set_feature("image_feat.npy", lambda a: with_value(a, np.nan))(d)


def _id_beyond_int64(d: Path) -> None:
    data_line(3, f"2\t{10 ** 20}\t5\t1\t0")(d)


@pytest.mark.parametrize(("corrupt", "needle"), [
    pytest.param(_nan_feature, "image_feat.npy", id="nan-feature"),
    pytest.param(_id_beyond_int64, "toy.inter", id="id-beyond-int64"),
])
def test_cli_train_corrupt_dataset(tmp_path, corrupt, needle) -> None:
    root = make_dataset(tmp_path / "toy")
    corrupt(root)
    before = snapshot(tmp_path)
    out = tmp_path / "runs" / "ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "magnet", "train", "--data", str(root), "--out", str(out),
                           "--epochs", "1", "--quiet", "--projection", "pca"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{proc.stderr}"
    assert lines[0].startswith("error:") and needle in lines[0], lines[0]
    assert not out.exists(), "a checkpoint directory was written for a dataset that failed to load"
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir()), f"leftovers: {sorted(runs.iterdir())}"
    after = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("runs")}
    assert after == before, "partial output left behind"


def test_cli_train_and_evaluate(tmp_path):
    cache = tmp_path / "cache"
    env = {"MAGNET_CACHE": str(cache), "PATH": "/usr/bin:/bin"}
    out = tmp_path / "bo"
    # A config file (as `magnet tune` writes) carries data, variant and epochs: no flags needed.
    config = make_config("synthetic:tiny", "behaviour_only", epochs=2)
    (tmp_path / "bo.json").write_text(config.to_json())
    run = subprocess.run([sys.executable, "-m", "magnet", "train", "--config", str(tmp_path / "bo.json"),
                          "--out", str(out), "--projection", "pca", "--quiet"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "recall@20" in run.stdout and (out / "model.safetensors").is_file()
    written = json.loads((out / "config.json").read_text())["run"]
    assert (written["data"], written["variant"], written["train"]["epochs"]) == ("synthetic:tiny", "behaviour_only", 2)
    ev = subprocess.run([sys.executable, "-m", "magnet", "evaluate", str(out), "--json"], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)
    assert ev.returncode == 0, ev.stderr
    stored = json.loads((out / "metrics.json").read_text())
    assert json.loads(ev.stdout)["test"]["recall@20"] == pytest.approx(stored["test"]["recall@20"], abs=1e-6)


@pytest.mark.parametrize("args, phrase", [
    (["train", "--data", "/nonexistent/dir", "--out", "x"], "/nonexistent/dir"),
    (["train", "--data", "synthetic:nope", "--out", "x"], "nope"),
    (["train", "--variant", "bogus", "--out", "x"], "invalid choice"),
    (["train", "--epochs", "0", "--out", "x"], "--epochs must be >= 1"),
    (["evaluate", "/nonexistent/ckpt"], "checkpoint directory not found"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, args, phrase):
    run = subprocess.run([sys.executable, "-m", "magnet", *args], cwd=tmp_path,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and phrase in lines[0], run.stderr
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------------------------
# issue 18 in real processes: nothing hangs, nothing is lost
# --------------------------------------------------------------------------------------------
def _foreign_out(tmp: Path) -> list[str]:
    (tmp / "x" / "keep").mkdir(parents=True)
    (tmp / "x" / "keep" / "a").write_text("1")
    return ["train", "--data", "synthetic:tiny", "--out", "x"]


def _fifo_inter(tmp: Path) -> list[str]:
    root = make_dataset(tmp / "toy")
    make_fifo(root / "toy.inter")
    return ["train", "--data", "toy", "--out", "ck"]


def _dev_zero_features(tmp: Path) -> list[str]:
    root = make_dataset(tmp / "toy")
    link_to(root / "image_feat.npy", "/dev/zero")
    return ["train", "--data", "toy", "--out", "ck"]


@pytest.mark.parametrize(("make", "needle"), [
    pytest.param(_foreign_out, "not a MAGNET checkpoint", id="foreign-out"),
    pytest.param(lambda tmp: ["train", "--data", "synthetic:tiny", "--out", "."], "working directory", id="out-dot"),
    pytest.param(_fifo_inter, "FIFO", id="fifo-inter"),
    pytest.param(_dev_zero_features, "device", id="dev-zero-features"),
])
def test_cli_refuses_at_once_in_a_real_process(tmp_path, make, needle) -> None:
    argv = make(tmp_path)
    before = snapshot(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MAGNET_CACHE": str(tmp_path / ".cache")}
    proc = subprocess.run([sys.executable, "-m", "magnet", *argv, "--epochs", "1", "--quiet", "--projection", "pca"],
                          cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr[-2000:]
    assert snapshot(tmp_path) == before, "files changed (or a hidden snapshot appeared)"
