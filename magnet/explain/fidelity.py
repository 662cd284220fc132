"""Are the explanations true? Faithfulness measured two ways (spec §8, revised).

* **Against the model** (any data): counterfactual knockout. Knocking modality m out of item i
  replaces i's channel m by the catalogue mean and its m-cue by the average cue
  (:meth:`MAGNET.knock_out`); the drop is score − knocked score. Scoring is pairwise, so the
  knocked score of i does not depend on the other items, and its rank is counted against the
  others' unchanged scores. For an explanation that ranks the modalities of each (user, item):
  ``top_agreement`` = share of top-N items whose first-named modality is the one whose knockout
  lowers the score most (chance 1/3); ``spearman`` = mean rank correlation of the explanation
  with the three drops; ``pn_named`` = share of top-N items that leave the top-N when the named
  modality is knocked out, against ``pn_random`` = the same for a modality drawn uniformly at
  random (its expectation: the mean over the three). A per-user reading is tested against the
  users' own knockouts too (``knockout_users``): each user's mean explanation and mean drops
  over their top-N, both relative to the other users, compared as below.
* **Against planted truth** (synthetic data only): each user's recovered reliance is the mean
  of the explanation over their top-N; ``top_modality_accuracy`` = share of users whose largest
  recovered modality is the planted one, against ``majority_rate`` (always guessing the most
  common planted top modality); ``spearman`` = mean per-user rank correlation;
  ``per_modality_pearson`` = correlation across users, modality by modality. A recovered
  reliance "relative to other users" (each modality standardised across the sampled users)
  is reported beside the raw one.

Explanations measured (``ESTIMATORS``):
  ``gates``         r_m = Σ_e g_e·w_{e,m}: the routing's modality reliance (what the experts the
                    router chose weigh);
  ``contribution``  c_m = Σ_e g_e·c_{e,m} (+ the base in B): the exact additive decomposition.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata

from ..data.probe import modality_redundancy
from ..vocab import MODALITIES
from .aggregates import relative_to_users, sample_users
from .cases import attribution
from .context import ExplainContext
from .counterfactual import knockout_effects

ESTIMATORS: tuple[str, ...] = ("gates", "contribution")
#: The per-user reliance the dashboard shows (relative to other users) and the per-item
#: explanation it names first; chosen by the measurements in docs/RESULTS.md.
USER_ESTIMATOR = "gates"
ITEM_ESTIMATOR = "contribution"


@dataclass
class PairTable:
    """Every (user, top-N item) pair of the sampled users, with what the measures need.

    users [n]; explanations {estimator: [n, 3]}; drops [n, 3] (score − knocked
    score per modality); knocked_ranks [n, 3] (rank of the item with that modality knocked out,
    the other items unchanged)."""

    users: np.ndarray
    explanations: dict[str, np.ndarray]
    drops: np.ndarray
    knocked_ranks: np.ndarray


@torch.no_grad()
def pair_table(ctx: ExplainContext, users: np.ndarray, top_n: int = 20, batch: int = 256) -> PairTable:
    """Score, explain and knock out every modality of the top-``top_n`` of ``users``."""
    rows: list[dict[str, np.ndarray]] = []
    for start in range(0, len(users), batch):
        chunk = users[start:start + batch]
        scores = ctx.scores(chunk)  # [b, I], training items -inf
        top = scores.topk(top_n, dim=1)
        drops, ranks_after = knockout_effects(ctx, chunk, top.indices, scores)  # [b, n, 3] each
        for j, user in enumerate(chunk):
            items = top.indices[j]
            rows.append({"user": np.full(top_n, user), "drop": drops[j].numpy(), "knocked_rank": ranks_after[j].numpy(),
                         **explanations_of(ctx, int(user), items)})
    cat = (lambda key: np.concatenate([r[key] for r in rows]))
    return PairTable(cat("user"), {e: cat(e) for e in ESTIMATORS}, cat("drop"), cat("knocked_rank"))


def explanations_of(ctx: ExplainContext, user: int, items: torch.Tensor) -> dict[str, np.ndarray]:
    """Each estimator's modality values [n, 3] for ``user``'s ``items`` [n]."""
    if not ctx.has_experts:  # behaviour-only: every explanation is behaviour alone
        alone = np.tile(np.array([1.0, 0.0, 0.0], dtype=np.float32), (len(items), 1))
        return {name: alone for name in ESTIMATORS}
    _, reliance, contribution = attribution(ctx, user, items)
    return {"gates": reliance, "contribution": contribution}


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of a with the same row of b ([n, k] each → [n]), ties
    at their average rank; rows with no spread in either are 0."""
    ra = rankdata(a, axis=1)
    rb = rankdata(b, axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    denom = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    return np.where(denom > 0, (ra * rb).sum(1) / np.where(denom > 0, denom, 1.0), 0.0)


def knockout_measures(explanation: np.ndarray, table: PairTable, top_n: int) -> dict[str, float]:
    """How well ``explanation`` [n, 3] names the modality whose knockout matters (see module)."""
    named = explanation.argmax(1)
    leaves = table.knocked_ranks > top_n  # [n, 3]
    rows = np.arange(len(named))
    return {"top_agreement": float((named == table.drops.argmax(1)).mean()),
            "spearman": float(spearman_rows(explanation, table.drops).mean()),
            "pn_named": float(leaves[rows, named].mean()),
            "pn_random": float(leaves.mean()),
            "chance": 1.0 / len(MODALITIES)}


def user_knockout_measures(relative: np.ndarray, relative_drops: np.ndarray) -> dict[str, Any]:
    """A per-user reading against the model: ``relative`` [U, 3], each user's mean explanation
    over their top-N, and ``relative_drops`` [U, 3], their mean knockout drops, both relative to
    the other users (:func:`relative_to_users`), so "leans on A more than other users" is tested
    by "knocking A out hurts this user's list more than other users'". ``top_agreement``: share
    of users whose two relative tops agree (chance 1/3); ``spearman``: mean per-user Spearman;
    ``per_modality_pearson``: across users."""
    found = planted_measures(relative, relative_drops)
    return {"top_agreement": found["top_modality_accuracy"], "spearman": found["spearman"],
            "per_modality_pearson": found["per_modality_pearson"], "chance": 1.0 / len(MODALITIES)}


def per_user(values: np.ndarray, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(users in ascending order, mean of ``values`` [n, 3] over each user's rows)."""
    frame = pd.DataFrame(values, columns=list(MODALITIES)).assign(user=users)
    means = frame.groupby("user", sort=True)[list(MODALITIES)].mean()
    return means.index.to_numpy(), means.to_numpy()


def planted_measures(recovered: np.ndarray, planted: np.ndarray) -> dict[str, Any]:
    """Recovered [U, 3] against planted [U, 3] reliance (see module)."""
    truth_top = planted.argmax(1)
    pearson = {}
    for k, m in enumerate(MODALITIES):
        a, b = recovered[:, k], planted[:, k]
        ok = a.std() > 0 and b.std() > 0
        pearson[m] = float(np.corrcoef(a, b)[0, 1]) if ok else 0.0
    return {"top_modality_accuracy": float((recovered.argmax(1) == truth_top).mean()),
            "majority_rate": float(np.bincount(truth_top, minlength=len(MODALITIES)).max() / len(truth_top)),
            "spearman": float(spearman_rows(recovered, planted).mean()),
            "per_modality_pearson": pearson}


@dataclass
class Fidelity:
    """What :func:`measure` finds: the ``report`` (JSON-ready, see :func:`fidelity`) and, on
    synthetic data, ``per_user`` (user, planted_B/A/S, recovered_B/A/S raw and relative_B/A/S)."""

    report: dict[str, Any]
    per_user: pd.DataFrame | None


def measure(ctx: ExplainContext, n_users: int = 400, top_n: int = 20, seed: int = 0) -> Fidelity:
    """Faithfulness of ``ctx``'s explanations on ``n_users`` sampled users' top-``top_n``."""
    users = sample_users(ctx, n_users, seed=seed)
    table = pair_table(ctx, users, top_n)
    planted = ctx.ckpt.planted or ctx.data.planted
    truth = None if planted is None or "reliance" not in planted else np.asarray(planted["reliance"])
    relative_drops = relative_to_users(per_user(table.drops, table.users)[1])
    by_estimator: dict[str, Any] = {}
    per_user_frame = None
    for name in ESTIMATORS:
        ids, recovered = per_user(table.explanations[name], table.users)
        relative = relative_to_users(recovered)
        entry: dict[str, Any] = {"knockout": knockout_measures(table.explanations[name], table, top_n),
                                 "knockout_users": user_knockout_measures(relative, relative_drops)}
        if truth is not None:
            entry["planted"] = planted_measures(recovered, truth[ids])
            entry["planted_relative"] = planted_measures(relative, truth[ids])
            if name == USER_ESTIMATOR:
                per_user_frame = pd.DataFrame(
                    {"user": ids, **{f"planted_{m}": truth[ids, k] for k, m in enumerate(MODALITIES)},
                     **{f"recovered_{m}": recovered[:, k] for k, m in enumerate(MODALITIES)},
                     **{f"relative_{m}": relative[:, k] for k, m in enumerate(MODALITIES)}})
        by_estimator[name] = entry
    report = {"checkpoint": str(ctx.ckpt.path), "variant": ctx.ckpt.variant, "has_experts": ctx.has_experts,
              "n_users": int(len(users)),
              "n_pairs": int(len(table.users)), "top_n": top_n,
              "estimators": {"user": USER_ESTIMATOR, "item": ITEM_ESTIMATOR},
              "knockout": by_estimator[ITEM_ESTIMATOR]["knockout"],
              "knockout_users": by_estimator[USER_ESTIMATOR]["knockout_users"],
              "planted": by_estimator[USER_ESTIMATOR].get("planted_relative"),
              "by_estimator": by_estimator,
              "redundancy": data_redundancy(ctx)}
    return Fidelity(report, per_user_frame)


def fidelity(ctx: ExplainContext, n_users: int = 400, top_n: int = 20, seed: int = 0) -> dict[str, Any]:
    """The JSON-ready report of :func:`measure`: ``{"checkpoint", "variant", "has_experts", "n_users",
    "n_pairs", "top_n", "estimators": {"user", "item"}, "knockout": {...}, "knockout_users":
    {...}, "planted": {...} or None, "by_estimator": {estimator: {"knockout", "knockout_users",
    "planted", "planted_relative"}}, "redundancy": {...} or None}``. The top-level ``knockout``
    measures the per-item explanation (:data:`ITEM_ESTIMATOR`); ``knockout_users`` and
    ``planted`` the per-user reliance relative to other users (:data:`USER_ESTIMATOR`), against
    the users' own knockouts and against planted truth."""
    return measure(ctx, n_users, top_n, seed).report


#: Above this :func:`data_redundancy`, appearance and semantics largely carry the same
#: information and no explanation can tell which one a user relies on (measured: about 0.3 on a
#: separable synthetic world, 0.7 on the confounded one; docs/RESULTS.md).
REDUNDANCY_WARNING = 0.5


def data_redundancy(ctx: ExplainContext, max_items: int = 4000, seed: int = 0) -> dict[str, float] | None:
    """:func:`magnet.data.probe.modality_redundancy` of the dataset's image and text features on at
    most ``max_items`` items (seeded sample), with ``warn`` when it exceeds
    :data:`REDUNDANCY_WARNING`; None without features."""
    data = ctx.data
    if data.image_feat is None or data.text_feat is None:
        return None
    rows = np.arange(data.n_items)
    if len(rows) > max_items:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_items, replace=False))
    found = modality_redundancy(data.image_feat[rows], data.text_feat[rows], seed=seed)
    return {**{k: float(v) for k, v in found.items()}, "warn": bool(found["redundancy"] > REDUNDANCY_WARNING),
            "threshold": REDUNDANCY_WARNING}


def fidelity_text(report: dict[str, Any]) -> str:
    """The report of :func:`fidelity` as a few lines a person can read."""
    lines = [f"{report['checkpoint']} ({report['variant']}): {report['n_users']} users, top-{report['top_n']}, "
             f"{report['n_pairs']} pairs"]
    for name, entry in report["by_estimator"].items():
        k = entry["knockout"]
        lines.append(f"  {name:<12} knockout: top agreement {k['top_agreement']:.3f} (chance {k['chance']:.3f}), "
                     f"spearman {k['spearman']:+.3f}, leaves top-{report['top_n']} when named knocked out "
                     f"{k['pn_named']:.3f} vs random {k['pn_random']:.3f}")
        u = entry["knockout_users"]
        pearson = ", ".join(f"{m} {v:+.2f}" for m, v in u["per_modality_pearson"].items())
        lines.append(f"  {'':<12} users' knockouts (relative to other users): top agreement {u['top_agreement']:.3f} "
                     f"(chance {u['chance']:.3f}), spearman {u['spearman']:+.3f}, pearson {pearson}")
        for key, label in (("planted", "raw"), ("planted_relative", "relative to other users")):
            if key in entry:
                p = entry[key]
                pearson = ", ".join(f"{m} {v:+.2f}" for m, v in p["per_modality_pearson"].items())
                lines.append(f"  {'':<12} planted ({label}): top modality {p['top_modality_accuracy']:.3f} "
                             f"(majority {p['majority_rate']:.3f}), spearman {p['spearman']:+.3f}, pearson {pearson}")
    red = report.get("redundancy")
    if red:
        lines.append(f"  data: appearance/semantics redundancy {red['redundancy']:.2f}"
                     + (" — the two modalities carry largely the same information" if red["warn"] else ""))
    return "\n".join(lines)
