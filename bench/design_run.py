"""One training run with dotted overrides, printing its valid curve (and, with --fidelity, the
faithfulness of its explanations) as one JSON line.

Used for the design experiments in docs/RESULTS.md ("what changed the defaults"): every row
there is this command with the overrides shown. Selection is on valid; the test numbers are
read once for the selected epoch and recorded, never compared while choosing.

    python bench/design_run.py --data ../shared/data/ml100k --variant full \\
        --set model.expert_kind=diagonal --set train.content_weight_decay=1.0
    python bench/design_run.py --data synthetic:demo --fidelity --out runs/demo-cue
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from magnet.config import VARIANTS, RunConfig  # noqa: E402
from magnet.data import DEFAULT_CACHE, load_dataset  # noqa: E402
from magnet.explain import ExplainContext  # noqa: E402
from magnet.explain.fidelity import fidelity  # noqa: E402
from magnet.pipeline import make_config, train_run  # noqa: E402
from magnet.inputs import needs_features  # noqa: E402


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
    parser.add_argument("--config", type=Path, help="start from this run config (e.g. configs/ml100k.json)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log", type=Path, help="append the JSON line to this file too")
    parser.add_argument("--out", type=Path, help="keep the checkpoint here (default: a temporary folder)")
    parser.add_argument("--fidelity", action="store_true", help="also measure faithfulness on 400 users")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    raw = (RunConfig.from_json_file(args.config) if args.config else RunConfig()).to_dict()
    for text in args.set:
        section, name, value = parse_override(text)
        raw[section][name] = value
    config = make_config(args.data, args.variant, RunConfig.from_dict(raw), "cpu", None, args.seed)
    data = load_dataset(args.data, cache_dir=DEFAULT_CACHE, require_features=needs_features(config))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = train_run(config, args.out or Path(tmp) / "run", data=data, projection="pca", progress=False)
        m = json.loads((out / "metrics.json").read_text())
        line = {"data": args.data, "variant": args.variant, "config": str(args.config or ""), "set": args.set,
                "seed": config.train.seed,
                "valid_recall@20": round(m["valid"]["recall@20"], 4), "best_epoch": m["best_epoch"],
                "test_recall@20": round(m["test"]["recall@20"], 4), "test_ndcg@20": round(m["test"]["ndcg@20"], 4),
                "seconds": round(time.perf_counter() - start),
                "valid_curve": [round(h[config.train.select_metric], 4) for h in m["history"]]}
        if args.fidelity:
            report = fidelity(ExplainContext.load(out, data=data), n_users=400)
            line["fidelity"] = summary(report)
    text = json.dumps(line)
    print(text)
    if args.log:
        with args.log.open("a") as fh:
            fh.write(text + "\n")


def summary(report: dict) -> dict:
    """The headline faithfulness figures of every estimator, rounded."""
    out = {}
    for name, entry in report["by_estimator"].items():
        k = entry["knockout"]
        row = {"ko_top": round(k["top_agreement"], 3), "ko_spearman": round(k["spearman"], 3),
               "pn_named": round(k["pn_named"], 3), "pn_random": round(k["pn_random"], 3),
               "ko_users_top": round(entry["knockout_users"]["top_agreement"], 3)}
        for key, tag in (("planted", "raw"), ("planted_relative", "rel")):
            if key in entry:
                row[f"top_{tag}"] = round(entry[key]["top_modality_accuracy"], 3)
                row[f"spearman_{tag}"] = round(entry[key]["spearman"], 3)
        out[name] = row
    return out


if __name__ == "__main__":
    main()
