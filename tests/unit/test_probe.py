"""Held-out linear probes on hand-checkable toys: a label the features state is read perfectly, a
random one at chance; identical feature sets are fully redundant, independent ones not at all."""
from __future__ import annotations

import numpy as np
import pytest

from magnet.data.probe import chance_accuracy, held_out_split, modality_redundancy, probe_accuracy

RNG = np.random.default_rng(0)
N = 800


def test_split_is_seeded_and_disjoint() -> None:
    train, test = held_out_split(N, 0.8, seed=3)
    assert (len(train), len(test)) == (640, 160)
    assert not np.intersect1d(train, test).size and len(np.union1d(train, test)) == N
    again, _ = held_out_split(N, 0.8, seed=3)
    other, _ = held_out_split(N, 0.8, seed=4)
    assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_perfectly_predictable_label_reads_one() -> None:
    labels = RNG.integers(0, 6, N)
    features = np.hstack([np.eye(6)[labels] + 0.05 * RNG.normal(size=(N, 6)), RNG.normal(size=(N, 200))])
    assert probe_accuracy(features, labels) == 1.0
    assert probe_accuracy(features, np.array(["abcdef"[k] for k in labels])) == 1.0  # any label type


def test_random_label_reads_near_chance() -> None:
    features = RNG.normal(size=(N, 200))
    for seed in range(3):
        labels = RNG.integers(0, 8, N)
        accuracy, chance = probe_accuracy(features, labels, seed=seed), chance_accuracy(labels, seed=seed)
        assert accuracy <= chance + 0.1, (accuracy, chance)


def test_chance_is_the_held_out_majority_share() -> None:
    labels = np.array([0] * 90 + [1] * 10)
    _, test = held_out_split(100, 0.8, seed=0)
    assert chance_accuracy(labels) == pytest.approx(np.mean(labels[test] == 0))


def test_identical_feature_sets_are_redundant() -> None:
    a = RNG.normal(size=(N, 120))
    out = modality_redundancy(a, a.copy())
    assert out["image_from_text"] > 0.99 and out["text_from_image"] > 0.99 and out["redundancy"] > 0.99
    assert (out["n_components"], out["n_train"], out["n_test"]) == (32, 640, 160)
    mixed = modality_redundancy(a, a @ RNG.normal(size=(120, 64)))  # a linear image of the other
    assert mixed["text_from_image"] > 0.99


def test_independent_feature_sets_are_not_redundant() -> None:
    out = modality_redundancy(RNG.normal(size=(N, 120)), RNG.normal(size=(N, 90)))
    assert out["image_from_text"] < 0.05 and out["text_from_image"] < 0.05 and out["redundancy"] < 0.05


def test_one_way_redundancy() -> None:
    """Text = image plus independent information: text predicts the image, not the reverse."""
    a = RNG.normal(size=(N, 40))
    s = np.hstack([a, 3.0 * RNG.normal(size=(N, 120))])
    out = modality_redundancy(a, s)
    assert out["image_from_text"] > 0.95 and out["text_from_image"] < 0.6


@pytest.mark.parametrize("call, match", [
    (lambda: probe_accuracy(np.zeros((10, 3)), np.zeros(9)), "rows"),
    (lambda: probe_accuracy(np.full((10, 3), np.nan), np.zeros(10)), "NaN"),
    (lambda: probe_accuracy(np.zeros((10, 3)), np.zeros(10), train_fraction=1.0), "train_fraction"),
    (lambda: probe_accuracy(np.zeros((10, 3)), np.zeros(10), ridge=-1.0), "ridge"),
    (lambda: modality_redundancy(np.zeros((10, 3)), np.zeros((11, 3))), "rows"),
    (lambda: modality_redundancy(np.zeros((10, 3)), np.zeros((10, 3)), n_components=0), "n_components"),
])
def test_bad_inputs_are_one_line_errors(call, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
