"""The ablation suite (spec §6): every variant with the same seed, split and budget, and a
summary table like the paper's (CSV + Markdown)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Sequence

import pandas as pd

from .config import VARIANTS, RunConfig
from .data import DEFAULT_CACHE, Dataset, load_dataset
from .fileio import frame_markdown, markdown_table
from .pipeline import make_config, train_run

SUMMARY_COLUMNS: tuple[str, ...] = ("variant", "recall@10", "ndcg@10", "recall@20", "ndcg@20",
                                    "tail_recall@20", "valid_recall@20", "switch_step", "switch_reason",
                                    "best_epoch", "train_seconds")


def bundle_synthetic(spec: str, out: Path) -> Dataset:
    """Copy a generated synthetic dataset into ``out/dataset`` so the checkpoints beside it
    carry their data (pictures, titles, planted truth) with them."""
    cached = load_dataset(spec, cache_dir=DEFAULT_CACHE)
    target = out / "dataset"
    if target.is_dir():
        existing = load_dataset(str(target))
        if existing.fingerprint == cached.fingerprint:
            return existing
        shutil.rmtree(target)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(cached.root, target)
    return load_dataset(str(target))


def summary_row(checkpoint: Path) -> dict[str, object]:
    """One line of the ablation table from a checkpoint directory's JSON files."""
    metrics = json.loads((checkpoint / "metrics.json").read_text())
    info = json.loads((checkpoint / "config.json").read_text())
    switch = json.loads((checkpoint / "switch.json").read_text())
    test = metrics["test"]  # cut-offs a run's train.topks left out are blank
    return {
        "variant": info["run"]["variant"],
        "recall@10": test.get("recall@10"), "ndcg@10": test.get("ndcg@10"),
        "recall@20": test.get("recall@20"), "ndcg@20": test.get("ndcg@20"),
        "tail_recall@20": test.get("buckets", {}).get("tail", {}).get("recall@20"),
        "valid_recall@20": metrics["valid"].get("recall@20"),
        "switch_step": switch.get("step"), "switch_reason": switch.get("reason"),
        "best_epoch": metrics.get("best_epoch"), "train_seconds": info.get("train_seconds"),
    }


def summary_table(checkpoints: Sequence[Path]) -> pd.DataFrame:
    table = pd.DataFrame([summary_row(c) for c in checkpoints], columns=list(SUMMARY_COLUMNS))
    for column in ("switch_step", "best_epoch"):
        table[column] = table[column].astype("Int64")  # integers with a missing value, not floats
    return table


def run_ablation(data: str, out: str | Path, variants: Sequence[str] = VARIANTS,
                 base: RunConfig | None = None, device: str | None = None, epochs: int | None = None,
                 seed: int | None = None, projection: str = "umap", progress: bool = True,
                 overwrite: bool = False, config_file: str | Path | None = None) -> str:
    """Train ``variants`` into ``out/<variant>`` and write ``out/summary.csv`` and ``out/summary.md``
    (``overwrite`` and ``config_file``: see :func:`magnet.pipeline.train_run`)."""
    out = Path(out)
    dataset = bundle_synthetic(data, out) if data.startswith("synthetic:") else None
    done = []
    for variant in variants:
        config = make_config(data, variant, base, device, epochs, seed)
        done.append(train_run(config, out / variant, data=dataset, projection=projection, progress=progress,
                              overwrite=overwrite, config_file=config_file))
    return write_summary(out, done)


def run_seeds(data: str, out: str | Path, seeds: Sequence[int], variants: Sequence[str] = VARIANTS,
              base: RunConfig | None = None, device: str | None = None, epochs: int | None = None,
              projection: str = "umap", progress: bool = True, overwrite: bool = False,
              config_file: str | Path | None = None) -> str:
    """:func:`run_ablation` once per seed into ``out/seed-<s>``, then the mean ± std table over
    seeds in ``out/summary_seeds.csv`` and ``out/summary_seeds.md`` (returned)."""
    out = Path(out)
    for seed in seeds:
        seed_dir = out / f"seed-{seed}"
        if all((seed_dir / v / "metrics.json").is_file() for v in variants):
            continue  # finished by an earlier (or a parallel `--seed`) run: rerunning only aggregates
        run_ablation(data, seed_dir, variants, base, device, epochs, seed, projection, progress, overwrite,
                     config_file)
    return write_seed_summary(out, [out / f"seed-{seed}" for seed in seeds])


SEED_METRICS: tuple[str, ...] = ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "tail_recall@20",
                                 "valid_recall@20", "valid_ndcg@20", "best_epoch")


def seed_row(checkpoint: Path) -> dict[str, object]:
    """What the several-seed table averages, from one checkpoint (plus the popularity floor)."""
    row = summary_row(checkpoint)
    metrics = json.loads((checkpoint / "metrics.json").read_text())
    row["valid_ndcg@20"] = metrics["valid"]["ndcg@20"]
    return row


def write_seed_summary(out: Path, seed_dirs: Sequence[Path]) -> str:
    """Mean ± sample std over seeds of every variant found in each of ``seed_dirs``; the
    popularity ranking (deterministic) is added as a row of its own."""
    records = []
    for seed_dir in seed_dirs:
        for checkpoint in sorted(p.parent for p in seed_dir.glob("*/metrics.json")):
            records.append({"seed": seed_dir.name, **seed_row(checkpoint)})
    if not records:
        raise FileNotFoundError(f"no checkpoints under {', '.join(map(str, seed_dirs))}")
    raw = pd.DataFrame(records)
    raw.to_csv(out / "summary_seeds_raw.csv", index=False)
    grouped = raw.groupby("variant", sort=False)
    table = pd.DataFrame({"variant": list(grouped.groups), "seeds": grouped.size().to_list()})
    for column in SEED_METRICS:
        values = grouped[column].agg(["mean", "std"]).reset_index(drop=True).astype(float)
        table[column] = values["mean"].to_list()
        table[column + "_std"] = values["std"].fillna(0.0).to_list()
    first = next(p.parent for p in seed_dirs[0].glob("*/metrics.json"))
    pop = json.loads((first / "metrics.json").read_text()).get("popularity")
    table.to_csv(out / "summary_seeds.csv", index=False)
    rows = []
    for row in table.to_dict("records"):
        cells = [f"{row[c]:.1f} ± {row[c + '_std']:.1f}" if c == "best_epoch"
                 else f"{row[c]:.4f} ± {row[c + '_std']:.4f}" for c in SEED_METRICS]
        rows.append([row["variant"], row["seeds"], *cells])
    if pop:
        rows.append(["popularity", "–", f"{pop['test']['recall@10']:.4f}", f"{pop['test']['ndcg@10']:.4f}",
                     f"{pop['test']['recall@20']:.4f}", f"{pop['test']['ndcg@20']:.4f}",
                     f"{pop['test']['buckets']['tail']['recall@20']:.4f}",
                     f"{pop['valid']['recall@20']:.4f}", f"{pop['valid']['ndcg@20']:.4f}", ""])
    markdown = markdown_table(["variant", "seeds", *SEED_METRICS], rows)
    (out / "summary_seeds.md").write_text(markdown + "\n")
    return markdown


def write_summary(out: Path, checkpoints: Sequence[Path]) -> str:
    """Write ``out/summary.csv`` and ``out/summary.md``; return the Markdown."""
    table = summary_table(checkpoints)
    table["train_seconds"] = table["train_seconds"].round(1)
    table.to_csv(out / "summary.csv", index=False)
    seconds = table["train_seconds"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    markdown = frame_markdown(table.assign(train_seconds=seconds))
    (out / "summary.md").write_text(markdown + "\n")
    return markdown
