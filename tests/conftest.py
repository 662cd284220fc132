"""Shared fixtures. ``tiny_checkpoints``: the five ablation checkpoints on synthetic:tiny, built
once per session (3 epochs, small batches so that the routing switch happens, PCA projection).

Markers: ``slow`` (trains, runs the CLI or a server; every test that uses ``tiny_checkpoints``
is marked slow here) and ``browser`` (needs Debian's chromium). ``pytest -m "not slow"`` is the
fast inner loop; ``make test`` runs everything."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_RUN = {"train": {"batch_size": 256, "epochs": 3},
            "routing": {"window": 5, "h_star": 0.5, "fixed_switch_step": 8, "ramp_steps": 6,
                        "max_coverage_steps": 15}}


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint root holding ``tiny/{full,no_routing_reg,no_view_contrastive,fixed_switch,
    behaviour_only,dataset}``; returns the root."""
    root = tmp_path_factory.mktemp("ckpt-root")
    config = root / "tiny_run.json"
    config.write_text(json.dumps(TINY_RUN))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "magnet", "ablate", "--data", "synthetic:tiny",
                           "--out", str(root / "tiny"), "--epochs", "3", "--projection", "pca", "--quiet",
                           "--config", str(config)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    config.unlink()
    return root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the session's ablation checkpoints (about 20 s to build) are slow."""
    for item in items:
        if "tiny_checkpoints" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
