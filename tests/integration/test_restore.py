"""The shipped demo checkpoints load, are of the current format, and reproduce their metrics."""
import json
from pathlib import Path

import pytest

from magnet import FORMAT_VERSION, VARIANTS, find_checkpoints, load_checkpoint
from magnet.restore import evaluate_checkpoint

DEMO = Path(__file__).resolve().parents[2] / "checkpoints" / "demo"


def test_all_five_variants_are_shipped():
    names = sorted(p.name for p in find_checkpoints(DEMO))
    assert names == sorted(VARIANTS)
    assert (DEMO / "summary.md").is_file() and (DEMO / "dataset" / "images").is_dir()


@pytest.mark.parametrize("variant", VARIANTS)
def test_demo_checkpoint_reproduces_metrics(variant):
    path = DEMO / variant
    info = json.loads((path / "config.json").read_text())
    assert info["format_version"] == FORMAT_VERSION
    ckpt = load_checkpoint(path, load_model=False)
    assert ckpt.variant == variant
    _, metrics = evaluate_checkpoint(path)
    for split in ("valid", "test"):
        for key in ("recall@20", "ndcg@20", "recall@10", "ndcg@10"):
            assert metrics[split][key] == pytest.approx(ckpt.metrics[split][key], abs=1e-5), (split, key)


def test_demo_checkpoints_are_small():
    # encoded.safetensors (the optional encoder cache that training writes) is not shipped for
    # the demo (.gitignore), so a local retrain does not count it either
    total = sum(f.stat().st_size for f in DEMO.rglob("*") if f.is_file() and f.name != "encoded.safetensors")
    assert total < 20 * 2**20, f"demo checkpoints take {total / 2**20:.1f} MiB"
