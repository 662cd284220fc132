"""Short end-to-end runs on the synthetic catalog: train → checkpoint → reload → re-evaluate."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from magnet import load_checkpoint
from magnet.checkpoint import REQUIRED_FILES
from magnet.data import load_dataset
from magnet.pipeline import make_config, train_run
from magnet.restore import evaluate_checkpoint

pytestmark = pytest.mark.slow  # trains, or runs the CLI in subprocesses

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return load_dataset("synthetic:tiny", cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def tiny_full(tmp_path_factory, tiny_data):
    config = make_config("synthetic:tiny", "full", epochs=12, device="cpu")
    config.train.batch_size = 256  # several steps per epoch, so the trigger can fire
    config.routing.window = 10
    out = tmp_path_factory.mktemp("ckpt") / "full"
    train_run(config, out, data=tiny_data, projection="pca", progress=False)
    return out


def test_checkpoint_directory_is_complete(tiny_full):
    for name in REQUIRED_FILES + ("planted_truth.npz",):
        assert (tiny_full / name).is_file(), name
    info = json.loads((tiny_full / "config.json").read_text())
    assert info["format_version"] == 1 and info["device"] == "cpu"
    assert info["dataset"]["name"] == "synthetic-tiny" and len(info["dataset"]["fingerprint"]) == 64
    assert not list(tiny_full.parent.glob(".full.tmp-*")), "temporary directory left behind"


def test_reload_reproduces_stored_metrics(tiny_full):
    ckpt, metrics = evaluate_checkpoint(tiny_full)
    for split in ("valid", "test"):
        for key in ("recall@20", "ndcg@20", "precision@10", "map@50"):
            assert metrics[split][key] == pytest.approx(ckpt.metrics[split][key], abs=1e-6)
        assert metrics[split]["buckets"]["tail"]["recall@20"] == pytest.approx(
            ckpt.metrics[split]["buckets"]["tail"]["recall@20"], abs=1e-6)


def test_loss_goes_down_and_trace_is_logged_every_step(tiny_full):
    ckpt = load_checkpoint(tiny_full)
    trace = ckpt.trace
    assert list(trace["step"]) == list(range(len(trace)))
    first, last = trace[trace.epoch == 1].bpr.mean(), trace[trace.epoch == trace.epoch.max()].bpr.mean()
    assert last < first
    assert ckpt.switch["reason"] in ("trigger", "fallback")
    assert int(ckpt.switch["step"]) <= len(trace)
    shares = trace[[c for c in trace.columns if c.startswith("share_")]].to_numpy()
    np.testing.assert_allclose(shares.sum(1), 1.0, atol=1e-5)
    spec = trace[trace.step >= ckpt.switch["step"]]
    assert (spec.regime == "specialization").all() and (trace[trace.step < ckpt.switch["step"]].regime == "coverage").all()


def test_projection_shapes(tiny_full, tiny_data):
    ckpt = load_checkpoint(tiny_full, load_model=False)
    assert ckpt.projection["item_xy"].shape == (tiny_data.n_items, 2)
    assert ckpt.projection["user_xy"].shape == (tiny_data.n_users, 2)


def test_full_beats_popularity_on_demo_valid(tmp_path):
    """On the synthetic demo catalog a short `full` run must clear the popularity ranking."""
    data = load_dataset("synthetic:demo", cache_dir=ROOT / ".magnet_cache")
    config = make_config("synthetic:demo", "full", epochs=8, device="cpu")
    out = train_run(config, tmp_path / "demo-full", data=data, projection="pca", progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["valid"]["recall@20"] > 1.1 * metrics["popularity"]["valid"]["recall@20"]






def test_encoded_cache_matches_reencoding_and_is_ignored_when_stale(tiny_full, tiny_data, tmp_path):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from magnet.checkpoint import ENCODED_FILE, CheckpointError, read_encoded
    from magnet.explain import ExplainContext

    ckpt = load_checkpoint(tiny_full)
    cached = read_encoded(tiny_full, ckpt.model.channel_shape())
    assert cached is not None and cached.shape[0] == 3
    fast = ExplainContext.load(ckpt, data=tiny_data)  # from the cache
    copy = tmp_path / "full"
    shutil.copytree(tiny_full, copy)
    (copy / ENCODED_FILE).unlink()
    slow = ExplainContext.load(copy, data=tiny_data)  # graphs + encoder
    torch.testing.assert_close(fast.pre.h, slow.pre.h)
    users = np.arange(5)
    torch.testing.assert_close(fast.scores(users), slow.scores(users))
    # a cache written for other weights is ignored, not trusted
    tensors = load_file(str(tiny_full / ENCODED_FILE))
    save_file({"h": tensors["h"] + 1.0}, str(copy / ENCODED_FILE), metadata={"model_sha256": "0" * 64})
    assert read_encoded(copy, ckpt.model.channel_shape()) is None
    # a corrupt one is a one-line error naming the file
    (copy / ENCODED_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match=ENCODED_FILE):
        read_encoded(copy, ckpt.model.channel_shape())


def test_router_fields_are_saved_and_older_checkpoints_load_as_they_were_trained(tiny_full, tiny_data, tmp_path):
    ckpt = load_checkpoint(tiny_full)
    assert ckpt.config.model.router == "cue" and ckpt.model.uses_cues
    assert ckpt.model.cues.item_A.shape[0] == tiny_data.n_items  # the cues travel with the weights
    # The low-rank bilinear router, then a checkpoint written before model.router_rank and
    # model.router existed: the full-width bilinear router it was trained with.
    config = make_config("synthetic:tiny", "full", epochs=1, device="cpu")
    config.model.router = "bilinear"
    low_rank = load_checkpoint(train_run(config, tmp_path / "low", data=tiny_data, projection="pca", progress=False))
    assert low_rank.config.model.router_rank == 32 and low_rank.model.router.proj.shape == (32, 192)
    config.model.router_rank = 0
    out = tmp_path / "old"
    train_run(config, out, data=tiny_data, projection="pca", progress=False)
    info = json.loads((out / "config.json").read_text())
    del info["run"]["model"]["router_rank"], info["run"]["model"]["router"]
    (out / "config.json").write_text(json.dumps(info))
    old = load_checkpoint(out)
    assert old.config.model.router == "bilinear" and old.config.model.router_rank == 0 and old.model.router.rank == 0
    assert old.model.router.q.shape == (9, 192)
    _, metrics = evaluate_checkpoint(out)
    assert metrics["valid"]["recall@20"] == pytest.approx(old.metrics["valid"]["recall@20"], abs=1e-6)


@pytest.fixture(scope="module")
def tiny_id_graph(tmp_path_factory):
    from magnet.data import load_dataset
    from magnet.pipeline import make_config, train_run

    data = load_dataset("synthetic:tiny", cache_dir=tmp_path_factory.mktemp("cache"))
    config = make_config("synthetic:tiny", "full", epochs=3, device="cpu")
    config.train.batch_size = 256
    config.graph.content_channels = "id_graph"
    out = tmp_path_factory.mktemp("ckpt") / "id_graph"
    train_run(config, out, data=data, projection="pca", progress=False)
    return out, data


def test_checkpoint_saves_loads_and_scores_identically(tiny_id_graph, tmp_path):
    import shutil

    from magnet import load_checkpoint
    from magnet.checkpoint import ENCODED_FILE
    from magnet.explain import ExplainContext
    from magnet.restore import evaluate_checkpoint

    out, data = tiny_id_graph
    ckpt, metrics = evaluate_checkpoint(out)  # rebuilds graphs (with the modality graphs) and re-encodes
    assert ckpt.config.graph.content_channels == "id_graph"
    assert "encoder.embedding_image" in ckpt.model.state_dict()
    for split in ("valid", "test"):
        for key in ("recall@20", "ndcg@20"):
            assert metrics[split][key] == pytest.approx(ckpt.metrics[split][key], abs=1e-6)
    fast = ExplainContext.load(load_checkpoint(out), data=data)  # channels from encoded.safetensors
    copy = tmp_path / "id_graph"
    shutil.copytree(out, copy)
    (copy / ENCODED_FILE).unlink()
    slow = ExplainContext.load(copy, data=data)  # graphs + encoder
    assert fast.pre.h.shape == slow.pre.h.shape == (3, data.n_users + data.n_items,
                                                    ckpt.config.model.embedding_dim)
    torch.testing.assert_close(fast.pre.h, slow.pre.h)
    users = np.arange(5)
    torch.testing.assert_close(fast.scores(users), slow.scores(users))
