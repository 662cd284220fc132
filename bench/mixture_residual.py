"""What the expert mixture adds on top of the behaviour base of a trained checkpoint
(docs/RESULTS.md, ml100k fifth round).

The final score is ŷ = base + mixture, base = ⟨h^B_u, h^B_i⟩. This scores the checkpoint's
valid and test splits (full ranking, training items masked) with ŷ_α = base + α · mixture for
a few α (α = 0: the base alone, α = 1: the model as trained), and reports how much of the
mixture is a per-user rescaling of the base: the Pearson correlation of mixture and base over
each user's catalogue, averaged over users. A correlation near 1 means the mixture mostly
rescales the base and leaves the ranking where the base put it. Last, the mean norm of the
items' rows in each channel (B, A, S): content channels near zero cannot contribute.

Usage: .venv/bin/python bench/mixture_residual.py CHECKPOINT [--alphas 0 0.5 1 2]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from magnet.evaluate import evaluate  # noqa: E402
from magnet.explain import ExplainContext  # noqa: E402


def per_user_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of the rows of a and b [B, I] → [B]."""
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0])
    args = parser.parse_args()
    ctx = ExplainContext.load(args.checkpoint)
    model, pre, data = ctx.model, ctx.pre, ctx.data
    if not model.use_experts:
        print(f"{args.checkpoint}: variant {ctx.ckpt.variant} has no mixture")
        return 1
    h_b, nu = pre.h[0], model.n_users

    def parts(users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        base = h_b[users] @ h_b[nu:].T
        return base, model.score_users(pre, users) - base

    splits = {"valid": data.valid, "test": data.test}
    print(f"checkpoint: {args.checkpoint}  variant: {ctx.ckpt.variant}")
    print("| α | valid R@20 | test R@20 | test NDCG@20 |\n|---|---|---|---|")
    for alpha in args.alphas:
        def score(users: torch.Tensor, alpha: float = alpha) -> torch.Tensor:
            base, mixture = parts(users)
            return base + alpha * mixture
        result = evaluate(score, data.n_users, data.n_items, data.train, splits)
        print(f"| {alpha:g} | {result['valid']['recall@20']:.4f} | {result['test']['recall@20']:.4f} "
              f"| {result['test']['ndcg@20']:.4f} |")
    corr, std_ratio = [], []
    with torch.no_grad():
        for users in torch.arange(data.n_users).split(1024):
            base, mixture = parts(users)
            corr.append(per_user_correlation(base, mixture))
            std_ratio.append(mixture.std(1) / base.std(1).clamp_min(1e-12))
    print(f"mean per-user corr(base, mixture): {torch.cat(corr).mean():.4f}; "
          f"mean per-user std(mixture)/std(base): {torch.cat(std_ratio).mean():.3f}")
    norms = pre.h[:, nu:].norm(dim=-1).mean(dim=1)  # [C]: mean item-row norm per channel
    print("mean item norm of the channels B / A / S: " + " / ".join(f"{float(v):.4g}" for v in norms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
