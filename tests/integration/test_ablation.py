"""The several-seed ablation table: mean ± sample std per variant, popularity floor row."""
import json
import shutil

import pandas as pd
import pytest

from magnet.ablation import write_seed_summary


def test_seed_summary_mean_and_std(tiny_checkpoints, tmp_path):
    seeds = []
    for name, r20 in (("seed-1", 0.30), ("seed-2", 0.40)):
        seed_dir = tmp_path / name
        for variant in ("full", "behaviour_only"):
            shutil.copytree(tiny_checkpoints / "tiny" / variant, seed_dir / variant)
        metrics_file = seed_dir / "full" / "metrics.json"
        metrics = json.loads(metrics_file.read_text())
        metrics["test"]["recall@20"] = r20
        metrics_file.write_text(json.dumps(metrics))
        seeds.append(seed_dir)
    markdown = write_seed_summary(tmp_path, seeds)
    table = pd.read_csv(tmp_path / "summary_seeds.csv").set_index("variant")
    assert table.loc["full", "seeds"] == 2
    assert table.loc["full", "recall@20"] == pytest.approx(0.35)
    assert table.loc["full", "recall@20_std"] == pytest.approx(0.0707107, abs=1e-6)  # sample std of .3, .4
    assert table.loc["behaviour_only", "recall@20_std"] == 0.0  # same checkpoint twice
    assert "| full | 2 | " in markdown and "0.3500 ± 0.0707" in markdown
    assert "| popularity | – |" in markdown
    assert len(pd.read_csv(tmp_path / "summary_seeds_raw.csv")) == 4
