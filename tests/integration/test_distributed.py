"""Data-parallel training on CPU (gloo, 2 processes): torchrun launch, DDP gradients, sharding."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from magnet.checkpoint import load_checkpoint
from magnet.data import Dataset, load_dataset
from magnet.distributed import (DistContext, all_reduce_mean, broadcast_object, check_divisible_batch,
                                init_distributed, launch_env, pad_to_multiple, shard)
from magnet.errors import ConfigError
from magnet.pipeline import make_config
from magnet.trainer import Trainer

pytestmark = pytest.mark.slow  # trains, or runs the CLI in subprocesses

ROOT = Path(__file__).resolve().parents[2]
WORLD = 2
# Small batches so that an epoch has several steps and the routing switch happens within 2 epochs.
RUN = {"train": {"batch_size": 256, "epochs": 2},
       "routing": {"window": 3, "h_star": 0.5, "max_coverage_steps": 8, "ramp_steps": 4}}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dist-cache")


@pytest.fixture(scope="module")
def tiny(cache: Path) -> Dataset:
    return load_dataset("synthetic:tiny", cache_dir=cache)


# ---------------------------------------------------------------- helpers (no process group)
def test_pad_and_shard_cover_every_index_in_equal_parts():
    order = torch.randperm(11, generator=torch.Generator().manual_seed(0))
    padded = pad_to_multiple(order, 4)
    assert len(padded) == 12 and torch.equal(padded[:11], order) and padded[11] == order[0]
    parts = [shard(padded, r, 4) for r in range(4)]
    assert [len(p) for p in parts] == [3, 3, 3, 3]
    assert torch.equal(torch.cat(parts), padded)  # contiguous, in rank order
    assert set(torch.cat(parts).tolist()) == set(order.tolist())
    assert torch.equal(pad_to_multiple(order[:1], 3), order[:1].repeat(3))  # shorter than world
    assert torch.equal(pad_to_multiple(order[:8], 4), order[:8])


def test_sharding_errors_are_config_errors():
    with pytest.raises(ConfigError, match="evenly"):
        shard(torch.arange(5), 0, 2)
    with pytest.raises(ConfigError, match="outside"):
        shard(torch.arange(4), 2, 2)
    with pytest.raises(ConfigError, match="not divisible by the 3 processes"):
        check_divisible_batch(256, 3)
    check_divisible_batch(256, 2)


def test_trainer_batches_have_the_same_count_on_every_rank(tiny):
    """Each rank gets its equal share of every global batch; together they cover the epoch."""
    config = make_config("synthetic:tiny", "behaviour_only", device="cpu")
    config.train.batch_size = 256
    order = torch.randperm(len(tiny.train), generator=torch.Generator().manual_seed(1))
    single = Trainer(config, tiny, progress=False)._batches(order)
    per_rank = []
    for rank in range(WORLD):
        trainer = Trainer.__new__(Trainer)  # only the batching, no process group needed
        trainer.config, trainer.dist = config, DistContext(rank=rank, world_size=WORLD)
        per_rank.append(trainer._batches(order))
    assert len(per_rank[0]) == len(per_rank[1]) == len(single) == math.ceil(len(tiny.train) / 256)
    for step, whole in enumerate(single):
        a, b = per_rank[0][step], per_rank[1][step]
        assert len(a) == len(b)
        joined = torch.cat([a, b])
        assert torch.equal(joined[:len(whole)], whole) and len(joined) - len(whole) < WORLD


def test_single_process_helpers_are_no_ops(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert launch_env() is None
    ctx = init_distributed("cpu")
    assert (ctx.world_size, ctx.rank, ctx.is_main, ctx.enabled) == (1, 0, True, False)
    x = torch.tensor([1.0, 2.0])
    assert all_reduce_mean(x, ctx) is x and broadcast_object({"a": 1}, ctx) == {"a": 1}
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert launch_env() is None  # torchrun with one process: plain single-process training
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE"):
        launch_env()


# ---------------------------------------------------------------- DDP gradients == full batch
def _fixed_batch(data: Dataset, n: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """users, pos, neg [n]: the same batch in every process."""
    g = torch.Generator().manual_seed(123)
    pairs = torch.from_numpy(data.train.astype(np.int64))[torch.randperm(len(data.train), generator=g)[:n]]
    return pairs[:, 0], pairs[:, 1], torch.randint(data.n_items, (n,), generator=g)


def _decomposable_config():
    """The full model with only loss terms that are means over pairs (BPR, L2, entropy term):
    no logit noise, no load balance, no view-contrastive term."""
    config = make_config("synthetic:tiny", "full", device="cpu", seed=7)
    config.train.vc_weight = 0.0
    config.routing.noise_cov = 0.0
    config.routing.lb_weight = 0.0
    return config


def _gradients(trainer: Trainer, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
               ) -> dict[str, torch.Tensor]:
    params = trainer.schedule.params()
    params = dataclasses.replace(params, route=dataclasses.replace(params.route, noise=0.0), lb_weight=0.0)
    loss, _ = trainer.objective(users, pos, neg, params)
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.backward()  # DDP averages over ranks here
    return {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters()}


def _ddp_worker(rank: int, store: str, data: Dataset, out: str) -> None:
    torch.set_num_threads(1)
    # A file rendezvous: no TCP port to probe in the parent, which another connection could
    # take before rank 0 binds it.
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        ctx = DistContext(rank=rank, world_size=WORLD, local_rank=rank, backend="gloo")
        trainer = Trainer(_decomposable_config(), data, progress=False, dist=ctx)
        users, pos, neg = (shard(t, rank, WORLD) for t in _fixed_batch(data))
        grads = _gradients(trainer, users, pos, neg)
        if rank == 0:
            torch.save(grads, out)
    finally:
        dist.destroy_process_group()
    # Leave without the interpreter's normal shutdown. In about one run in ten (after the
    # compiled-kernel tests of test_catalogue.py ran in the same session), a rank died there
    # with SIGABRT ("terminate called without an active exception": a C++ thread object still
    # joinable when static destructors run), after destroy_process_group had returned and the
    # gradients were saved; faulthandler showed no Python frame. Everything this worker writes
    # is closed by now; an exception above still propagates to mp.spawn as usual.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _spawn_ddp_workers(data: Dataset, tmp_path: Path, out: Path) -> None:
    """Run :func:`_ddp_worker` on WORLD processes (file rendezvous in ``tmp_path``)."""
    mp.spawn(_ddp_worker, args=(str(tmp_path / "rendezvous"), data, str(out)), nprocs=WORLD, join=True)


def test_ddp_gradient_equals_full_batch_gradient(tiny, tmp_path):
    out = tmp_path / "ddp_grads.pt"
    _spawn_ddp_workers(tiny, tmp_path, out)
    ddp = torch.load(out)
    trainer = Trainer(_decomposable_config(), tiny, progress=False)
    batch = _fixed_batch(tiny)
    single = _gradients(trainer, *batch)
    assert ddp.keys() == single.keys()
    for name, grad in single.items():
        torch.testing.assert_close(ddp[name], grad, rtol=1e-4, atol=1e-7, msg=name)
    half = _gradients(trainer, *(shard(t, 0, WORLD) for t in batch))  # what rank 0 alone computes
    for name in ("encoder.embedding", "router.c"):
        assert not torch.allclose(half[name], single[name], rtol=1e-3, atol=1e-6), name


# ---------------------------------------------------------------- torchrun end to end
def test_torchrun_two_processes_write_one_valid_checkpoint(tmp_path, cache):
    config = tmp_path / "run.json"
    config.write_text(json.dumps(RUN))
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MAGNET_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD),
           "-m", "magnet", "train", "--data", "synthetic:tiny", "--device", "cpu", "--out", str(out),
           "--epochs", "2", "--config", str(config), "--projection", "pca", "--quiet"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("checkpoint written to") == 1, "only rank 0 reports"
    ckpt = load_checkpoint(out)
    assert ckpt.info["world_size"] == WORLD
    steps = 2 * math.ceil(ckpt.info["dataset"]["n_train"] / RUN["train"]["batch_size"])
    assert ckpt.info["steps_run"] == steps and len(ckpt.trace) == steps  # global batches, as 1 process
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("valid", "test"):
        assert all(math.isfinite(v) for k, v in metrics[split].items() if "@" in k)
    assert np.isfinite(ckpt.trace[["loss", "H"]].to_numpy()).all()
    assert json.loads((out / "switch.json").read_text())["step"] is not None
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("ddp", "run.json")]
    assert leftovers == [], "snapshots and temp dirs are removed; other ranks write nothing"
