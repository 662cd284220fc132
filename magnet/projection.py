"""2-D maps of user and item embeddings, computed once when a checkpoint is exported."""
from __future__ import annotations

import numpy as np

from .errors import ConfigError
from .threads import torch_thread_budget

METHODS: tuple[str, ...] = ("umap", "pca")


def pca_2d(x: np.ndarray) -> np.ndarray:
    """First two principal components of x [n, d] → [n, 2] float32 (deterministic signs)."""
    centred = x - x.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    comps = vt[:2]
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(1)])
    out = centred @ (comps * signs[:, None]).T
    if out.shape[1] < 2:
        out = np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
    return out.astype(np.float32)


def project_2d(x: np.ndarray, method: str = "umap", seed: int = 0) -> np.ndarray:
    """Project x [n, d] to [n, 2] with UMAP (cosine metric) or PCA."""
    if method == "pca":
        return pca_2d(x)
    if method != "umap":
        raise ConfigError(f"unknown projection method {method!r}; choose one of {', '.join(METHODS)}")
    import umap  # imported lazily: ~2–20 s, and its first fit JIT-compiles (~40 s)

    reducer = umap.UMAP(n_components=2, n_neighbors=15, min_dist=0.1, metric="cosine",
                        random_state=seed)
    with torch_thread_budget():
        return reducer.fit_transform(x).astype(np.float32)


def project_nodes(x: np.ndarray, n_users: int, method: str = "umap", seed: int = 0
                  ) -> dict[str, np.ndarray]:
    """Project users and items jointly (so users sit near the items they like).

    x [n_users + n_items, d] → {"user_xy": [U, 2], "item_xy": [I, 2], "method": str array}.
    """
    xy = project_2d(x, method, seed)
    return {"user_xy": xy[:n_users], "item_xy": xy[n_users:], "method": np.array(method)}
