"""The faithfulness measures (magnet/explain/fidelity.py) against hand values."""
from __future__ import annotations

import numpy as np
import pytest

from magnet.explain.fidelity import (PairTable, knockout_measures, per_user, planted_measures, relative_to_users,
                                     spearman_rows)


def test_spearman_of_rows_by_hand():
    a = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    b = np.array([[10.0, 20.0, 30.0], [3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(spearman_rows(a, b), [1.0, -1.0, 0.0])
    # ranks (0, 2, 1) against (0, 1, 2): 1 - 6·Σd²/(n(n²-1)) = 1 - 6·2/24 = 0.5
    np.testing.assert_allclose(spearman_rows(np.array([[0.0, 9.0, 4.0]]), np.array([[1.0, 2.0, 3.0]])), [0.5])


def test_knockout_measures_by_hand():
    # four (user, item) pairs in a top-2; the explanation names B, A, S, A
    explanation = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.3, 0.6, 0.1]])
    drops = np.array([[2.0, 0.1, 0.0], [0.5, 1.0, 0.2], [0.3, 0.1, 0.2], [0.0, 0.4, 0.1]])
    knocked_ranks = np.array([[5, 1, 2], [1, 3, 2], [1, 1, 2], [2, 2, 1]])
    table = PairTable(np.zeros(4), {}, drops, knocked_ranks)
    got = knockout_measures(explanation, table, top_n=2)
    assert got["top_agreement"] == pytest.approx(3 / 4)  # pair 3's largest drop is B, not the named S
    assert got["pn_named"] == pytest.approx(2 / 4)  # pairs 1 and 2 leave the top-2 when the named one goes
    assert got["pn_random"] == pytest.approx(2 / 12)  # 2 of the 12 (pair, modality) knockouts leave
    assert got["chance"] == pytest.approx(1 / 3)


def test_planted_measures_and_relative_reliance_by_hand():
    planted = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.1, 0.7], [0.6, 0.3, 0.1]])
    recovered = np.array([[0.5, 0.3, 0.2], [0.4, 0.5, 0.1], [0.5, 0.2, 0.3], [0.6, 0.2, 0.2]])
    got = planted_measures(recovered, planted)
    assert got["top_modality_accuracy"] == pytest.approx(3 / 4)  # user 2's raw top is B, planted S
    assert got["majority_rate"] == pytest.approx(2 / 4)
    assert got["per_modality_pearson"]["B"] == pytest.approx(np.corrcoef(recovered[:, 0], planted[:, 0])[0, 1])
    relative = relative_to_users(recovered)
    np.testing.assert_allclose(relative.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(relative.std(0), 1.0)
    # relative to the other users, user 2's largest is S (0.3 is the highest S in the sample)
    assert relative[2].argmax() == 2


def test_per_user_means_in_user_order():
    values = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    users, means = per_user(values, np.array([7, 3, 7]))
    assert users.tolist() == [3, 7]
    np.testing.assert_allclose(means, [[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])


def test_user_knockout_measures_by_hand():
    """Relative per-user explanation against relative per-user knockout drops."""
    from magnet.explain.fidelity import user_knockout_measures

    # three users, two items each; per-user means: explanation x, drops d
    users = np.array([0, 0, 1, 1, 2, 2])
    x = np.array([[0.6, 0.3, 0.1]] * 2 + [[0.4, 0.5, 0.1]] * 2 + [[0.4, 0.2, 0.4]] * 2)
    d = np.array([[3.0, 0.2, 0.1]] * 2 + [[2.0, 0.9, 0.1]] * 2 + [[2.0, 0.2, 0.5]] * 2)
    def measured(explanation):
        return user_knockout_measures(relative_to_users(per_user(explanation, users)[1]),
                                      relative_to_users(per_user(d, users)[1]))

    got = measured(x)
    # relative to the others every user's top is the same modality in x and d: B, A, S
    assert got["top_agreement"] == pytest.approx(1.0)
    assert got["per_modality_pearson"]["B"] == pytest.approx(1.0)
    assert got["chance"] == pytest.approx(1 / 3)
    # raw, B is everyone's largest drop: the raw reading would agree only for user 0
    swapped = np.array([[0.4, 0.2, 0.4]] * 2 + [[0.4, 0.5, 0.1]] * 2 + [[0.6, 0.3, 0.1]] * 2)
    worse = measured(swapped)  # users 0 and 2 exchanged
    assert worse["top_agreement"] == pytest.approx(1 / 3)
    assert worse["per_modality_pearson"]["B"] == pytest.approx(-0.5)
