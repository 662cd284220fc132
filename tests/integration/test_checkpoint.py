"""Checkpoints from hostile or careless hands: nothing is ever unpickled, and every corrupted,
truncated or mismatched file gets one line naming it. The fixture's checkpoints are never
modified: each test works on a copy under ``tmp_path``."""
from __future__ import annotations

import io
import pickle
import resource
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from magnet.checkpoint import (REQUIRED_FILES, check_replaceable, foreign_entries, load_checkpoint,
                               load_model_weights, read_info, run_config)
from magnet.errors import CheckpointError
from tests.hostile import (Evil, assert_one_line, assert_refused, cfg, copy_ckpt, drop_tensor, edit_json,
                           garbage, link_to, make_fifo, npz_bytes, rename_tensor, snapshot, truncate)

# --------------------------------------------------------------------------------------------
# safe loading: nothing is ever unpickled
# --------------------------------------------------------------------------------------------

def test_evil_payload_is_live(tmp_path: Path) -> None:
    """Control: the payload used below really does create its marker when unpickled."""
    marker = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(Evil(marker)))
    assert marker.exists()
    marker2 = tmp_path / "control-marker-torch"
    buf = io.BytesIO()
    torch.save({"w": Evil(marker2)}, buf)
    buf.seek(0)
    torch.load(buf, weights_only=False)
    assert marker2.exists()


def _refused_without_running(d: Path, tmp_path: Path, marker: Path) -> None:
    """Loading ``d`` fails with one line naming model.safetensors, runs nothing, writes nothing."""
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(d)
    assert_one_line(info.value, "model.safetensors")
    assert not marker.exists(), "the loader executed pickled code"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_pickle_as_model_safetensors_is_refused(tiny_checkpoints, tmp_path, writer) -> None:
    d = copy_ckpt(tiny_checkpoints, tmp_path)
    marker = tmp_path / "PWNED"
    payload = {"encoder.embedding": Evil(marker)}
    with open(d / "model.safetensors", "wb") as fh:
        pickle.dump(payload, fh) if writer == "pickle" else torch.save(payload, fh)
    _refused_without_running(d, tmp_path, marker)


@pytest.mark.parametrize("name", ["model.pt", "model.pth"])
def test_pickle_weights_instead_of_safetensors_are_refused(tiny_checkpoints, tmp_path, name) -> None:
    """A torch pickle in place of model.safetensors: refused as missing weights, never loaded."""
    d = copy_ckpt(tiny_checkpoints, tmp_path)
    marker = tmp_path / "PWNED"
    (d / "model.safetensors").unlink()
    torch.save({"encoder.embedding": Evil(marker)}, d / name)
    _refused_without_running(d, tmp_path, marker)


def test_stray_pickle_files_are_ignored(tiny_checkpoints, tmp_path) -> None:
    """model.pt / model.pth next to a good model.safetensors are never opened."""
    d = copy_ckpt(tiny_checkpoints, tmp_path)
    marker = tmp_path / "PWNED"
    for name in ("model.pt", "model.pth", "optimizer.pt"):
        torch.save({"x": Evil(marker)}, d / name)
    ckpt = load_checkpoint(d)
    assert ckpt.model is not None
    assert not marker.exists(), "the loader executed pickled code"


@pytest.mark.parametrize("name", ["projection.npz", "planted_truth.npz"])
def test_object_array_npz_is_refused(tiny_checkpoints, tmp_path, name) -> None:
    d = copy_ckpt(tiny_checkpoints, tmp_path)
    marker = tmp_path / "PWNED"
    np.savez(d / name, item_xy=np.array([Evil(marker)], dtype=object),
             user_xy=np.zeros((3, 2)), reliance=np.array([Evil(marker)], dtype=object))
    assert not marker.exists()
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(d)
    assert_one_line(info.value, name)
    assert not marker.exists(), "the loader executed pickled code"
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------
# the corrupted-checkpoint table
# --------------------------------------------------------------------------------------------

def _missing(name: str) -> Callable[[Path], None]:
    return lambda d: (d / name).unlink()


def _set(name: str, fn: Callable[[dict], None]) -> Callable[[Path], None]:
    return lambda d: edit_json(d / name, fn)


def _nan_weights(d: Path) -> None:
    state = load_file(str(d / "model.safetensors"))
    state["encoder.embedding"][3, 1] = float("nan")
    save_file(state, str(d / "model.safetensors"))


def _outside_link(name: str) -> Callable[[Path], None]:
    """``name`` becomes a link to a copy of itself outside the checkpoint directory (the content
    is valid: only where it lies is wrong)."""
    def mutate(d: Path) -> None:
        outside = d.parent.parent / f"outside-{name}"
        shutil.copy(d / name, outside)
        link_to(d / name, outside)
    return mutate


CKPT_CASES: list = [
    *[pytest.param(_missing(n), n, id=f"missing-{n}") for n in REQUIRED_FILES],
    pytest.param(lambda d: truncate(d / "model.safetensors"), "model.safetensors", id="safetensors-half"),
    pytest.param(lambda d: truncate(d / "model.safetensors", 10), "model.safetensors",
                 id="safetensors-10-bytes"),
    pytest.param(lambda d: truncate(d / "model.safetensors", 0), "model.safetensors",
                 id="safetensors-empty"),
    pytest.param(lambda d: (d / "model.safetensors").write_bytes(garbage(4096)), "model.safetensors",
                 id="safetensors-random-bytes"),
    pytest.param(lambda d: [(d / "model.safetensors").unlink(), (d / "model.safetensors").mkdir()],
                 "model.safetensors", id="safetensors-is-a-directory"),
    pytest.param(lambda d: (d / "config.json").write_text('{"format_version": 1, "run": {'),
                 "config.json", id="config-invalid-json"),
    pytest.param(lambda d: (d / "config.json").write_bytes(garbage(300)), "config.json",
                 id="config-binary"),
    pytest.param(lambda d: (d / "config.json").write_text("[1, 2, 3]"), "config.json",
                 id="config-not-an-object"),
    pytest.param(cfg(lambda c: c.__setitem__("format_version", 99)), "config.json",
                 id="config-format-version-99"),
    pytest.param(cfg(lambda c: c.pop("format_version")), "config.json", id="config-no-format-version"),
    pytest.param(cfg(lambda c: c.pop("run")), "config.json", id="config-missing-run"),
    pytest.param(cfg(lambda c: c.__setitem__("run", "full")), "config.json", id="config-run-not-object"),
    pytest.param(cfg(lambda c: c.pop("dataset")), "config.json", id="config-missing-dataset"),
    pytest.param(cfg(lambda c: c["run"].__setitem__("colour", "blue")), "config.json",
                 id="config-unknown-run-field"),
    pytest.param(cfg(lambda c: c["run"]["model"].__setitem__("depth", 3)), "config.json",
                 id="config-unknown-model-field"),
    pytest.param(cfg(lambda c: c["run"]["model"].__setitem__("embedding_dim", "64")), "config.json",
                 id="config-embedding-dim-string"),
    pytest.param(cfg(lambda c: c["run"]["train"].__setitem__("topks", [5, "x"])), "config.json",
                 id="config-topks-wrong-type"),
    pytest.param(cfg(lambda c: c["run"].__setitem__("model", 7)), "config.json",
                 id="config-model-not-object"),
    pytest.param(cfg(lambda c: c["dataset"].pop("n_users")), "config.json", id="config-no-n-users"),
    pytest.param(cfg(lambda c: c["dataset"].__setitem__("n_items", "eighty")), "config.json",
                 id="config-n-items-not-a-number"),
    # shape mismatches between config.json and the tensors: the message names the weights file
    pytest.param(cfg(lambda c: c["run"]["model"].__setitem__("embedding_dim", 32)), "model.safetensors",
                 id="config-embedding-dim-changed"),
    pytest.param(cfg(lambda c: c["dataset"].__setitem__("n_items", c["dataset"]["n_items"] + 1)),
                 "config.json", id="config-n-items-changed"),  # projection.npz disagrees with it
    pytest.param(cfg(lambda c: c["dataset"].__setitem__("image_dim", 7)), "model.safetensors",
                 id="config-image-dim-changed"),
    pytest.param(rename_tensor, "model.safetensors", id="safetensors-renamed-tensor"),
    pytest.param(drop_tensor, "model.safetensors", id="safetensors-missing-tensor"),
    pytest.param(lambda d: (d / "metrics.json").write_text('{"valid": {"recall@20": 0.3'), "metrics.json",
                 id="metrics-invalid-json"),
    pytest.param(lambda d: (d / "metrics.json").write_bytes(garbage(200, 1)), "metrics.json",
                 id="metrics-binary"),
    pytest.param(lambda d: (d / "switch.json").write_text("{step: 3}"), "switch.json",
                 id="switch-invalid-json"),
    pytest.param(lambda d: (d / "switch.json").write_text(""), "switch.json", id="switch-empty"),
    pytest.param(lambda d: (d / "trace.csv").write_bytes(garbage(2000, 2)), "trace.csv",
                 id="trace-binary-garbage"),
    pytest.param(lambda d: (d / "trace.csv").write_bytes(bytes(range(256)) * 4), "trace.csv",
                 id="trace-all-byte-values"),
    pytest.param(lambda d: (d / "trace.csv").write_text(""), "trace.csv", id="trace-empty"),
    pytest.param(lambda d: (d / "projection.npz").write_bytes(garbage(500, 3)), "projection.npz",
                 id="projection-garbage"),
    pytest.param(lambda d: truncate(d / "projection.npz"), "projection.npz", id="projection-truncated"),
    pytest.param(lambda d: truncate(d / "projection.npz", 0), "projection.npz", id="projection-empty"),
    pytest.param(lambda d: (d / "planted_truth.npz").write_bytes(garbage(500, 4)), "planted_truth.npz",
                 id="planted-garbage"),
    # the checkpoint's run config is validated before a model is built
    pytest.param(cfg(lambda c: c["run"]["model"].__setitem__("embedding_dim", 0)), "config.json",
                 id="config-embedding-dim-zero",
                 marks=pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")),
    pytest.param(cfg(lambda c: c["run"]["model"].__setitem__("embedding_dim", -3)), "config.json",
                 id="config-embedding-dim-negative"),
    pytest.param(cfg(lambda c: c["run"].__setitem__("variant", "bogus")), "config.json",
                 id="config-unknown-variant"),
    # issue 18: every file through one typed reader (the dashboard's pages get typed values)
    pytest.param(lambda d: (d / "metrics.json").write_text("[0.1, 0.2]"), "metrics.json", id="metrics-a-list"),
    pytest.param(_set("metrics.json", lambda m: m["test"].__setitem__("recall@20", "high")), "metrics.json",
                 id="metrics-string-metric"),
    pytest.param(_set("metrics.json", lambda m: m["test"]["buckets"].__setitem__("tail", [1])), "metrics.json",
                 id="metrics-bucket-a-list"),
    pytest.param(_set("metrics.json", lambda m: m.pop("test")), "metrics.json", id="metrics-no-test"),
    pytest.param(_set("metrics.json", lambda m: m.__setitem__("popularity", "none")), "metrics.json",
                 id="metrics-popularity-a-string"),
    pytest.param(_set("metrics.json", lambda m: m.__setitem__("history", {"a": 1})), "metrics.json",
                 id="metrics-history-not-a-list"),
    pytest.param(lambda d: (d / "switch.json").write_text("[3, 1]"), "switch.json", id="switch-a-list"),
    pytest.param(_set("switch.json", lambda w: w.__setitem__("step", "12")), "switch.json",
                 id="switch-step-a-string"),
    pytest.param(_set("switch.json", lambda w: w.__setitem__("step", -4)), "switch.json", id="switch-step-negative"),
    pytest.param(_set("switch.json", lambda w: w.__setitem__("reason", 7)), "switch.json", id="switch-reason-wrong"),
    pytest.param(lambda d: (d / "trace.csv").write_text("a,b\n1,2\n"), "trace.csv", id="trace-other-columns"),
    pytest.param(lambda d: (d / "trace.csv").write_text("step,H,H_ema,tau,k,loss\n0,x,0,1,3,0.5\n"),
                 "trace.csv", id="trace-text-in-H"),
    pytest.param(lambda d: np.savez(d / "projection.npz", user_xy=np.zeros((150, 2))), "projection.npz",
                 id="projection-without-item-xy"),
    pytest.param(lambda d: np.savez(d / "projection.npz", item_xy=np.full((80, 2), np.nan),
                                    user_xy=np.zeros((150, 2))), "projection.npz", id="projection-nan"),
    pytest.param(lambda d: np.savez(d / "projection.npz", item_xy=np.zeros(80), user_xy=np.zeros((150, 2))),
                 "projection.npz", id="projection-1d"),
    pytest.param(cfg(lambda c: c.__setitem__("train_seconds", "fast")), "config.json", id="config-train-seconds-text"),
    pytest.param(cfg(lambda c: c.__setitem__("format_version", "1")), "config.json", id="config-format-version-text"),
    pytest.param(cfg(lambda c: c["dataset"].__setitem__("image_dim", "240")), "config.json",
                 id="config-image-dim-text"),
    pytest.param(cfg(lambda c: c["dataset"].__setitem__("n_users", -150)), "config.json", id="config-n-users-negative"),
    pytest.param(cfg(lambda c: c["run"]["train"].__setitem__("topks", [20, 500])), "config.json",
                 id="config-topk-beyond-items"),
    pytest.param(cfg(lambda c: c["run"]["routing"].__setitem__("h_star", 3.0)), "config.json",
                 id="config-h-star-beyond-1"),
    pytest.param(cfg(lambda c: c["run"]["train"].__setitem__("lr", float("nan"))), "config.json",
                 id="config-lr-nan"),
    pytest.param(lambda d: (d / "config.json").write_text("[" * 100_000), "config.json", id="config-deeply-nested"),
    pytest.param(_nan_weights, "model.safetensors", id="weights-nan"),
    pytest.param(lambda d: (d / "planted_truth.npz").write_bytes(npz_bytes(reliance=np.ones((3, 3)))),
                 "planted_truth.npz", id="planted-reliance-wrong-shape"),
    # special files are never opened; links leading out of the checkpoint are refused
    pytest.param(lambda d: make_fifo(d / "config.json"), "config.json", id="config-fifo"),
    pytest.param(lambda d: make_fifo(d / "metrics.json"), "metrics.json", id="metrics-fifo"),
    pytest.param(lambda d: link_to(d / "trace.csv", "/dev/zero"), "trace.csv", id="trace-dev-zero"),
    pytest.param(lambda d: make_fifo(d / "model.safetensors"), "model.safetensors", id="weights-fifo"),
    pytest.param(lambda d: link_to(d / "projection.npz", "/dev/urandom"), "projection.npz",
                 id="projection-dev-urandom"),
    pytest.param(_outside_link("metrics.json"), "metrics.json", id="metrics-link-out"),
    pytest.param(_outside_link("config.json"), "config.json", id="config-link-out"),
    pytest.param(_outside_link("model.safetensors"), "model.safetensors", id="weights-link-out"),
]


@pytest.mark.parametrize(("corrupt", "name"), CKPT_CASES)
def test_corrupt_checkpoint(tiny_checkpoints, tmp_path, corrupt, name) -> None:
    d = copy_ckpt(tiny_checkpoints, tmp_path)
    corrupt(d)
    assert_refused(load_checkpoint, d, CheckpointError, name, tmp_path)


def test_checkpoint_path_problems(tmp_path) -> None:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "nowhere")
    assert_one_line(info.value, "nowhere")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "afile")
    assert_one_line(info.value, "afile")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "empty")
    assert_one_line(info.value, "config.json")


def test_checkpoint_for_another_dataset(tiny_checkpoints, tmp_path) -> None:
    from magnet.restore import evaluate_checkpoint

    d = copy_ckpt(tiny_checkpoints, tmp_path, with_dataset=True)
    edit_json(d / "config.json", lambda c: c["dataset"].__setitem__("fingerprint", "0" * 64))
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError) as info:
        evaluate_checkpoint(d, device="cpu")
    assert_one_line(info.value, "config.json")
    assert "another dataset" in str(info.value)
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------
# issue 18: said as it is; sizes checked against the weights' header before any allocation
# --------------------------------------------------------------------------------------------

def test_format_version_as_text_is_said_so(tiny_checkpoints, tmp_path) -> None:
    d = copy_ckpt(tiny_checkpoints, tmp_path)
    edit_json(d / "config.json", lambda c: c.__setitem__("format_version", "1"))
    with pytest.raises(CheckpointError) as info:
        read_info(d)
    assert "must be an integer" in str(info.value) and "this version reads" not in str(info.value)


@pytest.mark.parametrize("n_users", [20_000_000, 2 ** 31 - 1])
def test_claimed_sizes_are_checked_before_allocating(tiny_checkpoints, tmp_path, n_users) -> None:
    """config.json claiming millions of users: refused against the safetensors header, with no
    allocation sized by the claim (the full table would be n_users x 64 floats, >= 5 GB)."""
    d = copy_ckpt(tiny_checkpoints, tmp_path)
    edit_json(d / "config.json", lambda c: c["dataset"].__setitem__("n_users", n_users))
    info = read_info(d)
    config = run_config(info, d / "config.json")
    peak, began = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    with pytest.raises(CheckpointError) as info_:
        load_model_weights(d, info, config)
    assert_one_line(info_.value, "model.safetensors")
    assert "encoder.embedding" in str(info_.value)
    assert time.perf_counter() - began < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 1_000_000  # KiB: under 1 GB more
    with pytest.raises(CheckpointError, match="projection.npz"):  # the light loader refuses it too
        load_checkpoint(d, load_model=False)


def test_own_checkpoints_are_recognised(tiny_checkpoints, tmp_path) -> None:
    d = copy_ckpt(tiny_checkpoints, tmp_path)
    assert foreign_entries(d) == []
    check_replaceable(d)
    (d / "notes.txt").write_text("mine")
    assert foreign_entries(d) == ["notes.txt"]
    with pytest.raises(CheckpointError, match="also holds notes.txt"):
        check_replaceable(d)
    check_replaceable(d, overwrite=True)
    assert foreign_entries(tmp_path / "tiny") is None  # a folder of checkpoints is not one
    (tmp_path / "file").write_text("x")
    for overwrite in (False, True):  # a file is never replaced
        with pytest.raises(CheckpointError, match="not a directory"):
            check_replaceable(tmp_path / "file", overwrite)


def test_unreadable_folders_are_skipped_when_listing(tmp_path, monkeypatch) -> None:
    from magnet.checkpoint import find_checkpoints
    from tests.hostile import unreadable

    for name in ("a/ck", "b/ck"):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "config.json").write_text("{}")
    with unreadable(tmp_path / "b", monkeypatch):
        assert find_checkpoints(tmp_path) == [tmp_path / "a" / "ck"]


@pytest.mark.parametrize("where", [{"relative_path": "da\x00ta", "path": None}, {"relative_path": None, "path": ""}])
def test_unusable_dataset_paths_are_one_line(tiny_checkpoints, tmp_path, where) -> None:
    from magnet.restore import evaluate_checkpoint

    d = copy_ckpt(tiny_checkpoints, tmp_path)
    edit_json(d / "config.json", lambda c: c["dataset"].update(spec="somewhere", **where))
    with pytest.raises(CheckpointError) as info:
        evaluate_checkpoint(d)
    assert_one_line(info.value, "config.json")
    assert "dataset was not found" in str(info.value)
