"""Resumable, deterministic training: kill a run mid-way, resume, get the uninterrupted result."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains, or runs the CLI in subprocesses

ROOT = Path(__file__).resolve().parents[2]
RUN = {"train": {"batch_size": 64, "epochs": 6, "patience": 50},
       "routing": {"window": 10, "ramp_steps": 20}}


def train_cmd(out: Path, config: Path, resume: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "magnet", "train", "--data", "synthetic:tiny", "--out", str(out),
           "--config", str(config), "--projection", "pca", "--quiet", "--device", "cpu"]
    return cmd + (["--resume"] if resume else [])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("resume")
    config = base / "run.json"
    config.write_text(json.dumps(RUN))
    env = {**os.environ, "MAGNET_CACHE": str(base / "cache"), "OMP_NUM_THREADS": "1"}
    reference = base / "reference"
    done = subprocess.run(train_cmd(reference, config), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return base, config, env, reference


def outcome(path: Path) -> tuple[dict, dict, list]:
    metrics = json.loads((path / "metrics.json").read_text())
    switch = json.loads((path / "switch.json").read_text())
    return metrics["valid"], switch, [h["recall@20"] for h in metrics["history"]]


def test_same_seed_same_metrics_and_switch(setup):
    base, config, env, reference = setup
    again = base / "again"
    run = subprocess.run(train_cmd(again, config), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert outcome(again) == outcome(reference)
    assert json.loads((again / "metrics.json").read_text())["test"] == \
        json.loads((reference / "metrics.json").read_text())["test"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_resumes_to_the_same_result(setup, sig):
    base, config, env, reference = setup
    out = base / f"killed-{sig.name}"
    snap = out.parent / f".{out.name}.snapshot"
    proc = subprocess.Popen(train_cmd(out, config), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline:
        state = snap / "state.json"
        if state.is_file() and json.loads(state.read_text())["loop"]["epoch"] >= 2:
            break
        if proc.poll() is not None:
            pytest.fail("training ended before it could be interrupted")
        time.sleep(0.05)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=30)
    assert not out.exists(), "no checkpoint may appear for an interrupted run"
    epoch_at_kill = json.loads((snap / "state.json").read_text())["loop"]["epoch"]
    assert 2 <= epoch_at_kill < RUN["train"]["epochs"]
    resumed = subprocess.run(train_cmd(out, config, resume=True), cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr
    assert outcome(out) == outcome(reference)
    assert not snap.exists(), "the snapshot is removed once the checkpoint is written"
    trace, ref_trace = (p / "trace.csv" for p in (out, reference))
    assert trace.read_text() == ref_trace.read_text()


# --------------------------------------------------------------------------------------------
# a malformed snapshot is one line naming it (issue 18, class 3), never a traceback
# --------------------------------------------------------------------------------------------
from magnet.errors import CheckpointError  # noqa: E402
from tests.hostile import assert_one_line, make_fifo, truncate  # noqa: E402
from tests.integration.test_trainer import tiny_trainer  # noqa: E402


def _state(fn):
    def mutate(snap: Path) -> None:
        meta = json.loads((snap / "state.json").read_text())
        fn(meta)
        (snap / "state.json").write_text(json.dumps(meta))
    return mutate


def _tensors(fn):
    def mutate(snap: Path) -> None:
        from safetensors.torch import load_file, save_file

        tensors = load_file(str(snap / "tensors.safetensors"))
        fn(tensors)
        save_file(tensors, str(snap / "tensors.safetensors"))
    return mutate


def _nan_embedding(t) -> None:
    t["model.encoder.embedding"][0, 0] = float("nan")


def _shrink_moment(t) -> None:
    key = next(k for k in t if k.endswith(".exp_avg"))
    t[key] = t[key].flatten()[:3].clone()


SNAPSHOT_CASES = [
    pytest.param(lambda s: (s / "state.json").write_text("[]"), id="state-a-list"),
    pytest.param(lambda s: (s / "state.json").write_text("{"), id="state-not-json"),
    pytest.param(lambda s: make_fifo(s / "state.json"), id="state-fifo"),
    pytest.param(_state(lambda m: m.pop("fingerprint")), id="no-fingerprint"),
    pytest.param(_state(lambda m: m.__setitem__("loop", [1])), id="loop-a-list"),
    pytest.param(_state(lambda m: m["loop"].__setitem__("epoch", "2")), id="loop-epoch-text"),
    pytest.param(_state(lambda m: m["loop"].__setitem__("extra", 1)), id="loop-extra-field"),
    pytest.param(_state(lambda m: m["loop"].__setitem__("best_score", float("nan"))), id="loop-nan-score"),
    pytest.param(_state(lambda m: m["controller"].__setitem__("step", "x")), id="controller-step-text"),
    pytest.param(_state(lambda m: m["controller"].pop("h_ema")), id="controller-no-ema"),
    pytest.param(_state(lambda m: m["controller"].__setitem__("switch", {"step": "a"})), id="controller-bad-switch"),
    pytest.param(_state(lambda m: m.__setitem__("param_groups", [])), id="no-param-groups"),
    pytest.param(lambda s: truncate(s / "tensors.safetensors"), id="tensors-truncated"),
    pytest.param(_tensors(_nan_embedding), id="tensors-nan-weights"),
    pytest.param(_tensors(_shrink_moment), id="tensors-adam-moment-shape"),
    pytest.param(_tensors(lambda t: t.pop("rng.generator")), id="tensors-no-generator-state"),
]


@pytest.fixture(scope="module")
def one_epoch_snapshot(tmp_path_factory) -> Path:
    snap = tmp_path_factory.mktemp("snap") / ".ck.snapshot"
    tiny_trainer("full", epochs=2).fit(snapshot=snap)  # the same config as the resumes below
    return snap


@pytest.mark.parametrize("corrupt", SNAPSHOT_CASES)
def test_malformed_snapshot_is_one_line(one_epoch_snapshot, tmp_path, corrupt):
    import shutil

    snap = tmp_path / ".ck.snapshot"
    shutil.copytree(one_epoch_snapshot, snap)
    corrupt(snap)
    with pytest.raises(CheckpointError) as info:
        tiny_trainer("full", epochs=2).fit(snapshot=snap, resume=True)
    assert_one_line(info.value, ".ck.snapshot")


def test_an_intact_snapshot_resumes(one_epoch_snapshot, tmp_path):
    """Control: the copy resumes when uncorrupted, so each failure above is its corruption's."""
    import shutil

    shutil.copytree(one_epoch_snapshot, tmp_path / ".ck.snapshot")
    state = tiny_trainer("full", epochs=2).fit(snapshot=tmp_path / ".ck.snapshot", resume=True)
    assert state.epochs_run == 2
