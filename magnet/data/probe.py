"""Held-out linear probes: can a feature set read an attribute, and how much of one feature set
does another predict? Closed-form ridge regression in numpy (no new dependency), always fit on a
seeded part of the items and scored on the others — an in-sample probe on a few hundred items ×
hundreds of dimensions overfits (it "reads" random labels well above chance).

- :func:`probe_accuracy`: one-vs-rest ridge classifier, held-out accuracy.
- :func:`chance_accuracy`: the majority-class share of the same held-out items (the bar).
- :func:`modality_redundancy`: held-out R² of predicting each feature set's top principal
  components from the other, both directions (≈ 1 when two modalities carry the same
  information, ≈ 0 when they are independent).
"""
from __future__ import annotations

import numpy as np

DEFAULT_RIDGE = 1.0


def held_out_split(n: int, train_fraction: float = 0.8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded ``(train_rows, test_rows)`` of ``n`` rows: ``round(train_fraction·n)`` for training,
    at least one row in each part."""
    if not 0.0 < float(train_fraction) < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    if n < 2:
        raise ValueError(f"a held-out probe needs at least 2 rows, got {n}")
    perm = np.random.default_rng(seed).permutation(n)
    n_train = min(max(int(round(train_fraction * n)), 1), n - 1)
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


def _matrix(x: np.ndarray, name: str, n: int | None = None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [n, d], got shape {x.shape}")
    if n is not None and x.shape[0] != n:
        raise ValueError(f"{name} has {x.shape[0]} rows, expected {n}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def _standardise(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Centre and scale every column by its mean and std over the training rows (constant
    columns are only centred)."""
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    return (x - mean) / np.where(std > 1e-12, std, 1.0)


def _ridge(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Weights ``[d, k]`` minimising ``|x w − y|² + ridge·|w|²`` (x, y centred): the primal
    solve when d ≤ n, else the dual one (same solution, smaller system)."""
    n, d = x.shape
    if d <= n:
        return np.linalg.solve(x.T @ x + ridge * np.eye(d), x.T @ y)
    return x.T @ np.linalg.solve(x @ x.T + ridge * np.eye(n), y)


def probe_accuracy(features: np.ndarray, labels: np.ndarray, train_fraction: float = 0.8, seed: int = 0,
                   ridge: float = DEFAULT_RIDGE) -> float:
    """Held-out accuracy of a linear one-vs-rest ridge probe reading ``labels [n]`` from
    ``features [n, d]``: standardised on a seeded ``train_fraction`` of the rows, fit there in
    closed form, scored (argmax over classes) on the other rows."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    x = _matrix(features, "features", len(labels))
    if ridge < 0 or not np.isfinite(ridge):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    train, test = held_out_split(len(labels), train_fraction, seed)
    classes, code = np.unique(labels, return_inverse=True)
    x = _standardise(x, train)
    onehot = np.eye(len(classes))[code]
    target_mean = onehot[train].mean(axis=0)
    w = _ridge(x[train], onehot[train] - target_mean, ridge)
    predicted = np.argmax(x[test] @ w + target_mean, axis=1)
    return float(np.mean(predicted == code[test]))


def chance_accuracy(labels: np.ndarray, train_fraction: float = 0.8, seed: int = 0) -> float:
    """Share of the majority class among the held-out rows of :func:`probe_accuracy` (same
    split): what always answering the commonest label would score there."""
    labels = np.asarray(labels)
    _, test = held_out_split(len(labels), train_fraction, seed)
    _, counts = np.unique(labels[test], return_counts=True)
    return float(counts.max() / len(test))


def _held_out_r2(source: np.ndarray, target: np.ndarray, train: np.ndarray, test: np.ndarray,
                 n_components: int, ridge: float) -> tuple[float, int]:
    """Held-out R² (variance-weighted over components) of ridge-predicting the top principal
    components of ``target`` (fit on the training rows) from ``source``; clipped to [0, 1]."""
    t = _standardise(target, train)
    _, _, vt = np.linalg.svd(t[train], full_matrices=False)
    k = int(min(n_components, vt.shape[0], len(train) - 1))
    scores = t @ vt[:k].T  # [n, k], zero mean on the training rows
    s = _standardise(source, train)
    w = _ridge(s[train], scores[train], ridge)
    residual = scores[test] - s[test] @ w
    total = scores[test] - scores[test].mean(axis=0)
    r2 = 1.0 - float((residual ** 2).sum()) / max(float((total ** 2).sum()), 1e-12)
    return float(np.clip(r2, 0.0, 1.0)), k


def modality_redundancy(image_feat: np.ndarray, text_feat: np.ndarray, n_components: int = 32,
                        train_fraction: float = 0.8, seed: int = 0, ridge: float = DEFAULT_RIDGE
                        ) -> dict[str, float | int]:
    """How much of each modality's information the other linearly predicts on held-out items.

    For each direction, the top ``n_components`` principal components of the (standardised)
    target features are ridge-predicted from the other (standardised) features, fit on a seeded
    ``train_fraction`` of the items and scored by R² on the rest (variance-weighted, clipped to
    [0, 1]). Returns ``{"image_from_text", "text_from_image", "redundancy" (their mean),
    "n_components", "n_train", "n_test"}``: ≈ 1 when the two carry the same information (a
    confounded catalogue), ≈ 0 when they are independent.
    """
    a = _matrix(image_feat, "image_feat")
    s = _matrix(text_feat, "text_feat", a.shape[0])
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components!r}")
    if ridge < 0 or not np.isfinite(ridge):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    train, test = held_out_split(a.shape[0], train_fraction, seed)
    if len(train) < 3:
        raise ValueError(f"modality_redundancy needs at least 3 training rows, got {len(train)}")
    image_from_text, k_a = _held_out_r2(s, a, train, test, n_components, ridge)
    text_from_image, k_s = _held_out_r2(a, s, train, test, n_components, ridge)
    return {"image_from_text": image_from_text, "text_from_image": text_from_image,
            "redundancy": 0.5 * (image_from_text + text_from_image),
            "n_components": min(k_a, k_s), "n_train": len(train), "n_test": len(test)}


__all__ = ["DEFAULT_RIDGE", "chance_accuracy", "held_out_split", "modality_redundancy", "probe_accuracy"]
