"""Is each planted intent visible in one modality only? Held-out linear probes on generated
worlds (docs/SPEC_AS_BUILT.md §1, "Separable worlds").

For each seed and modality overlap a world of the preset's size is generated in a temporary
directory (not the cache), and a ridge probe (``magnet.data.probe``: fit on a seeded 80% of the
items, scored on the other 20%) reads each attribute from the picture features and from the
title features. Printed as a Markdown table: probe accuracy image / text per attribute, the
held-out majority share (chance) in brackets, and the modality redundancy (mean held-out R² of
each feature set's top 32 principal components predicted from the other).

Usage: .venv/bin/python bench/world_probes.py [--preset demo] [--seeds 999 7] [--overlaps 0 0.3 1]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from magnet.data.probe import chance_accuracy, modality_redundancy, probe_accuracy  # noqa: E402
from magnet.data.synthetic import SYNTHETIC_PRESETS, generate_synthetic  # noqa: E402
from magnet.fileio import frame_markdown  # noqa: E402

ATTRIBUTES: tuple[str, ...] = ("colour", "pattern", "material", "age_stage", "category")


def world_probes(root: Path) -> dict[str, object]:
    """One table row for a generated world directory."""
    items = pd.read_csv(root / "items.csv")
    image, text = np.load(root / "image_feat.npy"), np.load(root / "text_feat.npy")
    row: dict[str, object] = {}
    for column in ATTRIBUTES:
        labels = items[column].to_numpy()
        row[column] = (f"{probe_accuracy(image, labels):.3f} / {probe_accuracy(text, labels):.3f} "
                       f"({chance_accuracy(labels):.3f})")
    red = modality_redundancy(image, text)
    row["redundancy (A←S / S←A)"] = (f"{red['redundancy']:.3f} ({red['image_from_text']:.3f} / "
                                      f"{red['text_from_image']:.3f})")
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=list(SYNTHETIC_PRESETS), default="demo")
    parser.add_argument("--seeds", type=int, nargs="+", default=[999, 7])
    parser.add_argument("--overlaps", type=float, nargs="+", default=[0.0, 0.3, 1.0])
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="world-probes-") as tmp:
        for seed in args.seeds:
            for overlap in args.overlaps:
                root = generate_synthetic(Path(tmp) / f"s{seed}-o{overlap}", **SYNTHETIC_PRESETS[args.preset],
                                          seed=seed, modality_overlap=overlap)
                rows.append({"seed": seed, "overlap": f"{overlap:g}", **world_probes(root)})
    print(f"synthetic:{args.preset}; probe accuracy image / text (held-out chance)\n")
    print(frame_markdown(pd.DataFrame(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
