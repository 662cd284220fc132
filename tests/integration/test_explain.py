"""Explanations over a real (tiny) checkpoint: exact, normalised, and in words."""
import numpy as np
import pytest

from magnet.explain import (ExplainContext, case_study, case_study_table, family_sums, recommend,
                            reliance_agreement, routing_table, style_label, utilization)
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
    agreement = reliance_agreement(ctx, table)
    assert agreement is not None and -1.0 <= agreement["spearman"] <= 1.0
    assert 0.0 <= agreement["top_modality_accuracy"] <= 1.0 and agreement["n_users"] == 50
