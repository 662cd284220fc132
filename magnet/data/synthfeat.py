"""Synthetic item features for interaction-only MMRec sets (``synthfeat:<dir>`` specs).

Some benchmark sets ship interactions only (e.g. ``../shared/data/baby-interactions``: the real
Amazon Baby split of MMRec with no image or text features available offline). To run the full
multimodal model on them at the right scale we pair the real interactions with generated
features of MMRec's shapes — image ``[n_items, 4096]`` (VGG-style CNN features) and text
``[n_items, 384]`` (sentence-transformer embeddings) — always labelled synthetic
(``features.json``: ``{"synthetic": true, ...}``, so ``Dataset.synthetic_features`` is True).

How the features are made (deterministic, seed :data:`SEED`):

1. Item latent factors from the TRAIN split only (``x_label == 0``; validation and test rows are
   never read, so no evaluation data leaks into the features): a rank-``k`` (k = 32) truncated
   SVD ``R ≈ U S Vᵀ`` of the binary train user×item matrix; item factors ``F = V √S``, each row
   L2-normalised (items without training interactions get a zero row).
2. Image: ``ReLU(F @ G_A + 0.5·ε)`` with ``G_A`` a fixed Gaussian ``[k, 4096]`` and ``ε``
   standard Gaussian noise — non-negative and about half zeros, like pooled CNN activations.
3. Text: ``normalize(F @ G_S + 1.0·ε)`` with ``G_S`` Gaussian ``[k, 384]``: unit rows like
   sentence embeddings, noisier than the image features.

So the features are informative the way real ones are (items bought together look alike) but
carry nothing beyond the training interactions. They are a stand-in for speed and scale
benchmarks, never for accuracy claims about real content.

Layout: ``<cache_dir>/synthfeat-<name>-<hash>/`` (hash of the resolved ``.inter`` path, its size,
modification time and :data:`VERSION`) holds a symlink to the source ``.inter`` file (never a copy),
``image_feat.npy``, ``text_feat.npy`` and ``features.json``; it is built once, atomically.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from ..errors import DataError
from ..fileio import build_cached_dir
from .inter import check_contiguous, find_inter, read_inter

SEED = 20240611
VERSION = 1
RANK = 32
IMAGE_DIM = 4096
TEXT_DIM = 384
IMAGE_NOISE = 0.5
TEXT_NOISE = 1.0
_FILES = ("image_feat.npy", "text_feat.npy", "features.json")
HOW = (f"synthetic features (magnet.data.synthfeat v{VERSION}): rank-{RANK} truncated SVD of the "
       f"binary train (x_label 0) user-item matrix -> L2-normalised item factors F; "
       f"image = ReLU(F @ Gaussian[{RANK},{IMAGE_DIM}] + {IMAGE_NOISE}*noise); "
       f"text = L2-normalise(F @ Gaussian[{RANK},{TEXT_DIM}] + {TEXT_NOISE}*noise); seed {SEED}. "
       "Not real image or text content.")


def item_factors(user: np.ndarray, item: np.ndarray, n_users: int, n_items: int,
                 rank: int = RANK, seed: int = SEED) -> np.ndarray:
    """``[n_items, rank']`` float64 L2-normalised item factors of the binary matrix given by the
    (user, item) pairs (pass train pairs only); rank' = min(rank, min(shape) - 1)."""
    r = sp.csr_matrix((np.ones(len(user)), (user, item)), shape=(n_users, n_items))
    r.data[:] = 1.0  # duplicates summed by the constructor -> binary
    k = max(1, min(rank, min(n_users, n_items) - 1))
    v0 = np.random.default_rng(seed).standard_normal(min(n_users, n_items))
    _, s, vt = svds(r, k=k, v0=v0)
    order = np.argsort(-s)  # svds returns ascending singular values
    f = vt[order].T * np.sqrt(s[order])
    # fix each factor's sign (SVD is sign-ambiguous): the largest-magnitude entry positive
    signs = np.sign(f[np.argmax(np.abs(f), axis=0), np.arange(f.shape[1])])
    f *= np.where(signs == 0, 1.0, signs)
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    return np.divide(f, norms, out=np.zeros_like(f), where=norms > 0)


def make_features(factors: np.ndarray, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(image ``[n, 4096]``, text ``[n, 384]``) float32 from item factors (see module docstring)."""
    rng = np.random.default_rng(seed + 1)
    n, k = factors.shape
    f = factors.astype(np.float32)
    g_a = rng.standard_normal((k, IMAGE_DIM), dtype=np.float32)
    g_s = rng.standard_normal((k, TEXT_DIM), dtype=np.float32)
    image = f @ g_a
    image += IMAGE_NOISE * rng.standard_normal((n, IMAGE_DIM), dtype=np.float32)
    np.maximum(image, 0.0, out=image)
    text = f @ g_s
    text += TEXT_NOISE * rng.standard_normal((n, TEXT_DIM), dtype=np.float32)
    text /= np.maximum(np.linalg.norm(text, axis=1, keepdims=True), 1e-12)
    return image, text


def _complete(target: Path, inter_name: str) -> bool:
    return (target / inter_name).is_symlink() and all((target / f).is_file() for f in _FILES)


def synthfeat_dir(source: str | Path, cache_dir: str | Path) -> Path:
    """Build (once) and return ``<cache_dir>/synthfeat-<name>-<hash>/`` for the interaction-only
    MMRec directory ``source``; raises a one-line :class:`DataError` on a bad directory."""
    root = Path(source).expanduser().resolve()
    inter = find_inter(root)
    stat = inter.stat()
    key = f"{inter}|{stat.st_size}|{stat.st_mtime_ns}|v{VERSION}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    target = Path(cache_dir).expanduser().resolve() / f"synthfeat-{inter.stem}-{digest}"

    def build(tmp: Path) -> None:
        user, item, label = read_inter(inter)
        n_users = check_contiguous(user, "user", inter)
        n_items = check_contiguous(item, "item", inter)
        train = label == 0
        if not train.any():
            raise DataError("empty train split (no rows with x_label 0)", inter)
        image, text = make_features(item_factors(user[train], item[train], n_users, n_items))
        (tmp / inter.name).symlink_to(inter)
        np.save(tmp / "image_feat.npy", image)
        np.save(tmp / "text_feat.npy", text)
        (tmp / "features.json").write_text(json.dumps({
            "synthetic": True, "how": HOW, "source": str(inter), "version": VERSION, "seed": SEED,
            "rank": RANK, "image_dim": IMAGE_DIM, "text_dim": TEXT_DIM}, indent=2))

    return build_cached_dir(target, lambda d: _complete(d, inter.name), build)


__all__ = ["synthfeat_dir", "item_factors", "make_features", "HOW"]
