"""One training run with dotted overrides, printing its valid curve as one JSON line.

Used for the design experiments in docs/RESULTS.md ("what changed the defaults"): every row
there is this command with the overrides shown. Selection is on valid; the test numbers are
read once for the selected epoch and recorded, never compared while choosing.

    python bench/design_run.py --data ../shared/data/ml100k --variant full \\
        --set model.expert_kind=diagonal --set train.content_weight_decay=1.0
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from magnet.config import VARIANTS, RunConfig  # noqa: E402
from magnet.data import DEFAULT_CACHE, load_dataset  # noqa: E402
from magnet.pipeline import make_config  # noqa: E402
from magnet.restore import needs_features  # noqa: E402
from magnet.trainer import Trainer  # noqa: E402


def parse_override(text: str) -> tuple[str, str, object]:
    """``section.field=value`` with value parsed as JSON when it can be (numbers, true/false)."""
    path, _, raw = text.partition("=")
    section, _, name = path.partition(".")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return section, name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/ml100k")
    parser.add_argument("--variant", choices=VARIANTS, default="full")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log", type=Path, help="append the JSON line to this file too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    raw = RunConfig().to_dict()
    for text in args.set:
        section, name, value = parse_override(text)
        raw[section][name] = value
    config = make_config(args.data, args.variant, RunConfig.from_dict(raw), "cpu", None, args.seed)
    data = load_dataset(args.data, cache_dir=DEFAULT_CACHE, require_features=needs_features(config))
    curve: list[float] = []
    start = time.perf_counter()
    state = Trainer(config, data, progress=False).fit(
        on_evaluate=lambda epoch, valid: curve.append(round(valid[config.train.select_metric], 4)))
    m = state.metrics
    line = json.dumps({"variant": args.variant, "set": args.set, "seed": config.train.seed,
                       "valid_recall@20": round(m["valid"]["recall@20"], 4), "best_epoch": m["best_epoch"],
                       "test_recall@20": round(m["test"]["recall@20"], 4),
                       "test_ndcg@20": round(m["test"]["ndcg@20"], 4),
                       "seconds": round(time.perf_counter() - start), "valid_curve": curve})
    print(line)
    if args.log:
        with args.log.open("a") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
