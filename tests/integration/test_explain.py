"""Explanations over a real (tiny) checkpoint: exact, normalised, and in words."""
import json

import numpy as np
import pytest

from magnet.explain import (ExplainContext, case_study, case_study_table, family_sums, recommend,
                            knockout_effects, measure, routing_table, style_label, user_reliance,
                            utilization)
from magnet.vocab import EXPERT_NAMES


@pytest.fixture(scope="module")
def ctx(tiny_checkpoints):
    return ExplainContext.load(tiny_checkpoints / "tiny" / "full")


@pytest.fixture(scope="module")
def baseline(tiny_checkpoints):
    return ExplainContext.load(tiny_checkpoints / "tiny" / "behaviour_only")


def test_style_label_names_the_leading_expert():
    gates = np.zeros(9)
    gates[EXPERT_NAMES.index("B-Bal")] = 0.6
    gates[EXPERT_NAMES.index("A-Comp")] = 0.4
    assert style_label(gates) == "Behaviour-anchored, Balanced"


def test_recommendations_exclude_history(ctx):
    items, scores = recommend(ctx, 3, 10)
    assert not set(items) & set(ctx.history(3))
    assert np.all(np.diff(scores) <= 1e-6)


def test_case_study_attribution_is_exact(ctx, baseline):
    explained = case_study(ctx, 3, n=5, baseline=baseline)
    assert [e.rank for e in explained] == [1, 2, 3, 4, 5]
    for ex in explained:
        assert ex.contribution.sum() == pytest.approx(ex.score, rel=1e-4, abs=1e-5)
        assert ex.reliance.sum() == pytest.approx(1.0, abs=1e-5)
        assert ex.gates.sum() == pytest.approx(1.0, abs=1e-5)
        assert np.abs(ex.contribution_share).sum() == pytest.approx(1.0, abs=1e-6)
        assert sum(ex.role_sums().values()) == pytest.approx(1.0, abs=1e-5)
        assert ex.baseline_rank >= 1 and ex.cue
        assert ex.style in ex.sentence("x")
    table = case_study_table(ctx, explained)
    assert len(table) == 5 and {"gate_B-Dom", "reliance_A", "contribution_S", "baseline_rank"} <= set(table.columns)


def test_behaviour_only_relies_on_behaviour(baseline):
    ex = case_study(baseline, 3, n=3)[0]
    np.testing.assert_allclose(ex.reliance, [1, 0, 0])
    assert ex.contribution[0] == pytest.approx(ex.score, rel=1e-5)


def test_routing_aggregates_and_planted_agreement(ctx):
    table = routing_table(ctx, top_n=5, max_users=50)
    assert len(table) == 50 * 5
    util = utilization(table)
    assert float(util.to_numpy().sum()) == pytest.approx(1.0, abs=1e-5)
    roles, anchors = family_sums(util)
    assert float(roles.to_numpy().sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(anchors.to_numpy().sum()) == pytest.approx(1.0, abs=1e-5)
    reliance = user_reliance(table)
    assert len(reliance) == 50
    np.testing.assert_allclose(reliance[["reliance_B", "reliance_A", "reliance_S"]].sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(reliance["relative_A"].mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(reliance["relative_A"].std(ddof=0), 1.0, rtol=1e-5)


def test_fidelity_report_and_knockouts_are_consistent(ctx, baseline):
    fid = measure(ctx, n_users=30, top_n=5)
    report = fid.report
    assert report["n_pairs"] == 150 and set(report["by_estimator"]) == {"gates", "contribution"}
    for entry in report["by_estimator"].values():
        k = entry["knockout"]
        assert 0.0 <= k["top_agreement"] <= 1.0 and -1.0 <= k["spearman"] <= 1.0 and k["chance"] == pytest.approx(1 / 3)
        assert 0.0 <= k["pn_random"] <= 1.0 and 0.0 <= k["pn_named"] <= 1.0
    assert report["planted"] is not None and len(fid.per_user) == 30  # synthetic data: planted truth
    json.dumps(report)  # the CLI prints it
    # a knocked score is the decomposition of the knocked channels, item by item
    user = int(fid.per_user["user"].iloc[0])
    items = ctx.scores([user])[0].topk(5).indices
    drops, ranks = knockout_effects(ctx, np.array([user]), items[None], ctx.scores([user]))
    for k, m in enumerate("BAS"):
        knocked = ctx.model.decompose(ctx.knocked(m), user, items)["score"]
        full = ctx.model.decompose(ctx.pre, user, items)["score"]
        np.testing.assert_allclose(drops[0, :, k].numpy(), (full - knocked).numpy(), rtol=1e-4, atol=1e-5)
    assert (ranks >= 1).all()
    # behaviour-only: only knocking B out changes anything, so B is always named (and is the
    # largest drop unless the mean item happens to score higher) and a random modality is a
    # third as likely to push an item out
    bo = measure(baseline, n_users=30, top_n=5).report["knockout"]
    assert bo["top_agreement"] >= 0.95 and bo["pn_random"] == pytest.approx(bo["pn_named"] / 3)
