"""Deterministic synthetic baby-products catalog with planted per-user modality reliance, in
which each intent is visible in one modality only (a *separable world*).

Each user mixes three planted intents (``reliance`` over B, A, S):
B (behaviour) -> popularity-weighted item of the user's latent co-purchase community, which no
content shows;
A (appearance) -> item of the user's preferred colour (preferred pattern favoured 4:1): colour
and pattern are drawn in the pictures and never named in titles;
S (semantics) -> item of the user's preferred material (preferred age stage favoured 4:1):
material and age stage are stated in titles and never drawn.
Neutral attributes: category (shape in the picture, noun in the title), size and brand (title
only). ``modality_overlap`` ∈ [0, 1] gives each item, independently with that probability, its
cross-modal attributes in the other modality too (title names colour and pattern; the picture
draws a material badge and age dots): 1 is a fully confounded world. Pictures are rendered with
Pillow and featurized; titles are featurized; the split follows the MMRec per-user rule.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..vocab import MODALITIES
from .featurize import BuiltinImageFeaturizer, BuiltinTextFeaturizer, Featurizer
from .render import render_item

CATEGORIES: tuple[str, ...] = ("feeding", "diapering", "bath", "nursery", "toys", "clothing")
CATEGORY_PROBS: tuple[float, ...] = (0.22, 0.16, 0.14, 0.14, 0.18, 0.16)
NOUNS: dict[str, tuple[str, ...]] = {
    "feeding": ("Feeding Bottle", "Sippy Cup", "Bib", "Suction Bowl"),
    "diapering": ("Diaper Pack", "Wipes Pack", "Changing Pad", "Diaper Caddy"),
    "bath": ("Bath Tub", "Hooded Towel", "Bath Seat", "Wash Basin"),
    "nursery": ("Crib", "Crib Sheet", "Bassinet", "Sleep Sack"),
    "toys": ("Plush Star", "Rattle", "Stacking Toy", "Teether"),
    "clothing": ("Bodysuit", "T-Shirt", "Romper", "Sleeper"),
}
SIZES: dict[str, tuple[str, ...]] = {  # neutral, title only; no age words (age stage is its own intent)
    "feeding": ("4oz", "8oz", "11oz"),
    "diapering": ("Travel", "Standard", "Bulk"),
    "bath": ("Compact", "Standard", "Large"),
    "nursery": ("Mini", "Standard", "Full Size"),
    "toys": ("Mini", "Medium", "Jumbo"),
    "clothing": ("Slim Fit", "Regular Fit", "Relaxed Fit"),
}
COLOURS: dict[str, tuple[int, int, int]] = {
    "Sunny Yellow": (240, 200, 40), "Ocean Blue": (40, 90, 200), "Mint Green": (70, 190, 130),
    "Blush Pink": (240, 140, 175), "Cherry Red": (205, 35, 45), "Lavender": (150, 110, 205),
    "Charcoal Grey": (75, 75, 85), "Tangerine": (245, 125, 25),
}
PATTERNS: tuple[str, ...] = ("plain", "striped", "dotted", "checked")
PATTERN_WORDS: dict[str, str] = {"plain": "Solid", "striped": "Striped", "dotted": "Polka Dot",
                                 "checked": "Checked"}
# Semantic attributes (titles only; under overlap also drawn). Material -> corner badge (shape,
# flat fill); age stage -> that many dots along the bottom edge in the stage's ink. The fills sit
# in colour-histogram cells (4 levels per channel) that no item colour, tint, outline or
# background uses, so a picture featurizer can read them when they are drawn.
MATERIALS: dict[str, tuple[str, tuple[int, int, int]]] = {
    "Organic Cotton": ("circle", (96, 160, 32)), "Bamboo": ("square", (160, 224, 32)),
    "Silicone": ("triangle", (32, 224, 224)), "Merino Wool": ("diamond", (160, 32, 96)),
    "Linen": ("hexagon", (160, 160, 96)), "Recycled Polyester": ("pentagon", (32, 32, 160)),
}
AGE_STAGES: dict[str, tuple[int, int, int]] = {
    "Newborn": (224, 32, 160), "Infant": (32, 160, 32), "Toddler": (96, 32, 32), "Preschool": (32, 96, 96),
}
SHAPE_SCALE = 0.8  # silhouettes leave a margin for the badge and the dots
WORLD_VERSION = 2  # 1: the first, confounded demo world; 2: separable worlds with modality_overlap
ITEM_COLUMNS: tuple[str, ...] = ("itemID", "title", "category", "colour", "pattern", "material", "age_stage",
                                 "size", "community", "brand", "popularity")
BRANDS: tuple[str, ...] = ("Nestling", "Little Owl", "Bumblebee", "Cuddle Co", "Tiny Tots", "Sprout",
                           "Moonbeam", "Pebble", "Happy Hippo", "Wren & Co", "Dewdrop", "Kiwi Kids")
DEFAULT_SEED = 999

SYNTHETIC_PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"n_users": 150, "n_items": 80, "n_interactions": 2_000, "image_size": 32},
    "demo": {"n_users": 2_000, "n_items": 800, "n_interactions": 30_000, "image_size": 48},
    "baby": {"n_users": 19_445, "n_items": 7_050, "n_interactions": 160_792, "image_size": 32},
    "baby2x": {"n_users": 38_890, "n_items": 14_100, "n_interactions": 321_584, "image_size": 32},
    "baby4x": {"n_users": 77_780, "n_items": 28_200, "n_interactions": 643_168, "image_size": 32},
}


def _title(brand: str, age: str, material: str, noun: str, size: str, appearance: str | None) -> str:
    """``"<brand> <age> <material> <noun>, <size>"``, plus ``", <colour> <pattern>"`` for an item
    whose appearance is also written (modality overlap)."""
    title = f"{brand} {age} {material} {noun}, {size}"
    return title if appearance is None else f"{title}, {appearance}"


def _catalog(rng: np.random.Generator, n_items: int, overlap: float) -> pd.DataFrame:
    """Item attributes: one row per item 0..n_items-1 (strings + ints + popularity weight).
    ``shared`` marks the items whose attributes are written into both modalities; it is drawn
    from the same stream for every ``overlap`` (u < overlap), so worlds that differ only in the
    overlap share every other draw and the shared items of a smaller overlap are a subset."""
    cat = rng.choice(len(CATEGORIES), size=n_items, p=np.asarray(CATEGORY_PROBS))
    colour = rng.integers(0, len(COLOURS), size=n_items)
    pattern = rng.integers(0, len(PATTERNS), size=n_items)
    material = rng.integers(0, len(MATERIALS), size=n_items)
    age = rng.integers(0, len(AGE_STAGES), size=n_items)
    size = rng.integers(0, 3, size=n_items)
    noun = rng.integers(0, 4, size=n_items)
    brand = rng.integers(0, len(BRANDS), size=n_items)
    n_comm = max(2, int(round(n_items / 40)))
    community = rng.integers(0, n_comm, size=n_items)
    community[rng.permutation(n_items)[:n_comm]] = np.arange(n_comm)  # no empty community
    rank = rng.permutation(n_items)
    popularity = 1.0 / (rank + 1.0) ** 0.9  # Zipf-like long tail
    shared = rng.random(n_items) < overlap
    colour_names, material_names, age_names = list(COLOURS), list(MATERIALS), list(AGE_STAGES)
    titles = [_title(BRANDS[b], age_names[a], material_names[m], NOUNS[CATEGORIES[k]][o], SIZES[CATEGORIES[k]][s],
                     f"{colour_names[c]} {PATTERN_WORDS[PATTERNS[p]]}" if both else None)
              for b, a, m, o, s, k, c, p, both in zip(brand, age, material, noun, size, cat, colour, pattern, shared)]
    return pd.DataFrame({
        "itemID": np.arange(n_items), "title": titles,
        "category": [CATEGORIES[k] for k in cat], "colour": [colour_names[c] for c in colour],
        "pattern": [PATTERNS[p] for p in pattern], "material": [material_names[m] for m in material],
        "age_stage": [age_names[a] for a in age], "size": [SIZES[CATEGORIES[k]][s] for k, s in zip(cat, size)],
        "community": community, "brand": [BRANDS[b] for b in brand],
        "popularity": popularity.astype(np.float32),
        "category_id": cat, "colour_id": colour, "pattern_id": pattern, "material_id": material,
        "age_id": age, "shared": shared,
    })


def _reliance(rng: np.random.Generator, n_users: int) -> np.ndarray:
    """``[n_users, 3]`` float32 rows summing to 1, each with a clear top modality (>= 0.6)."""
    mix = -np.sort(-rng.dirichlet([1.0, 1.0, 1.0], size=n_users), axis=1)
    sorted_r = 0.4 * np.eye(3)[0] + 0.6 * mix  # descending: top >= 0.6, second <= 0.3
    order = np.argsort(rng.random((n_users, 3)), axis=1)  # random placement of the sorted values
    out = np.zeros_like(sorted_r)
    np.put_along_axis(out, order, sorted_r, axis=1)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def _degrees(rng: np.random.Generator, n_users: int, n_items: int, n_interactions: int) -> np.ndarray:
    """Long-tailed per-user interaction counts, min 3, sum close to ``n_interactions``."""
    cap = max(3, min(n_items // 3, 400))
    extra_total = max(n_interactions - 3 * n_users, 0)
    raw = rng.lognormal(0.0, 1.0, size=n_users)
    extra = raw / raw.sum() * extra_total
    for _ in range(5):  # redistribute what the cap cuts off
        extra = np.minimum(extra, cap - 3)
        missing = extra_total - extra.sum()
        room = extra < cap - 3
        if missing < 1 or not room.any():
            break
        extra[room] += missing * raw[room] / raw[room].sum()
    extra = np.minimum(extra, cap - 3)
    base = np.floor(extra)
    base += rng.random(n_users) < (extra - base)  # stochastic rounding keeps the total
    return (3 + base).astype(np.int64)


def _draw_from_pools(rng: np.random.Generator, keys: np.ndarray, pools: dict[int, tuple[np.ndarray, np.ndarray]]
                     ) -> np.ndarray:
    """For each draw with pool key ``keys[j]`` sample one item from ``pools[key] = (items, probs)``."""
    out = np.empty(len(keys), dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    bounds = np.flatnonzero(np.diff(sorted_keys)) + 1
    for chunk in np.split(order, bounds):
        if len(chunk) == 0:
            continue
        items, probs = pools[int(keys[chunk[0]])]
        out[chunk] = items[rng.choice(len(items), size=len(chunk), p=probs)]
    return out


def _pools(key: np.ndarray, weight: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    pools = {}
    for k in np.unique(key):
        items = np.flatnonzero(key == k)
        w = weight[items]
        pools[int(k)] = (items, w / w.sum())
    return pools


def _preference_pools(primary: np.ndarray, n_primary: int, secondary: np.ndarray, n_secondary: int,
                      pop: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Pools keyed ``p * n_secondary + s``: the items whose ``primary`` attribute is p (every item
    when there is none), weighted by sqrt-popularity with ``secondary == s`` favoured 4:1."""
    pools = {}
    for p in range(n_primary):
        idx = np.flatnonzero(primary == p)
        if len(idx) == 0:
            idx = np.arange(len(primary))
        for s in range(n_secondary):
            w = np.sqrt(pop[idx]) * np.where(secondary[idx] == s, 4.0, 1.0)
            pools[p * n_secondary + s] = (idx, w / w.sum())
    return pools


def _interactions(rng: np.random.Generator, items: pd.DataFrame, users: dict[str, np.ndarray],
                  degrees: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample interactions without duplicate (user, item).

    Returns ``(user [n], item [n], modality [n] int8)`` with modality 0/1/2 = B/A/S, 3 = noise.
    """
    n_users, n_items = len(degrees), len(items)
    pop = items["popularity"].to_numpy(np.float64)
    comm = items["community"].to_numpy()
    col, pat = items["colour_id"].to_numpy(), items["pattern_id"].to_numpy()
    mat, age = items["material_id"].to_numpy(), items["age_id"].to_numpy()
    n_pat, n_age = len(PATTERNS), len(AGE_STAGES)
    # pools: B by community (popularity-weighted); A by (preferred colour, preferred pattern);
    # S by (preferred material, preferred age stage). Matching pattern / age is favoured 4:1.
    pools_b = _pools(comm, pop)
    pools_a = _preference_pools(col, len(COLOURS), pat, n_pat, pop)
    pools_s = _preference_pools(mat, len(MATERIALS), age, n_age, pop)
    pools_n = {0: (np.arange(n_items), pop / pop.sum())}
    key_b = users["community"]
    key_a = users["colour"] * n_pat + users["pattern"]
    key_s = users["material"] * n_age + users["age"]
    cum = np.cumsum(users["reliance"].astype(np.float64), axis=1)

    have = np.zeros(n_users, dtype=np.int64)
    seen = np.zeros(0, dtype=np.int64)
    out_u, out_i, out_m = [], [], []
    for round_ in range(12):
        need = degrees - have
        if need.sum() == 0:
            break
        u = np.repeat(np.arange(n_users), need)
        if round_ < 8:
            m = (rng.random(len(u))[:, None] > cum[u]).sum(axis=1).astype(np.int8)
            m = np.minimum(m, 2).astype(np.int8)
            m[rng.random(len(u)) < noise] = 3
        else:  # late rounds: fill the remainder with global popularity-weighted items
            m = np.full(len(u), 3, dtype=np.int8)
        item = np.empty(len(u), dtype=np.int64)
        for mod, pools, keys in ((0, pools_b, key_b), (1, pools_a, key_a), (2, pools_s, key_s),
                                 (3, pools_n, np.zeros(n_users, dtype=np.int64))):
            sel = np.flatnonzero(m == mod)
            if len(sel):
                item[sel] = _draw_from_pools(rng, keys[u[sel]], pools)
        if round_ >= 10:  # last resort: uniform over the catalog
            item = rng.integers(0, n_items, size=len(u))
        code = u * n_items + item
        _, first = np.unique(code, return_index=True)
        keep = np.zeros(len(code), dtype=bool)
        keep[first] = True
        keep &= ~np.isin(code, seen)
        out_u.append(u[keep]); out_i.append(item[keep]); out_m.append(m[keep])
        seen = np.concatenate([seen, code[keep]])
        have += np.bincount(u[keep], minlength=n_users)
    user = np.concatenate(out_u)
    item = np.concatenate(out_i)
    mod = np.concatenate(out_m)
    order = np.lexsort((np.arange(len(user)), user))
    return user[order], item[order], mod[order]


def mmrec_split(rng: np.random.Generator, user: np.ndarray, n_users: int) -> np.ndarray:
    """MMRec per-user split of rows sorted by user: ``[n]`` int8 x_label (0 train, 1 valid, 2 test).

    Each user's rows are shuffled; fewer than 10 -> 1 valid + 1 test; otherwise
    round(10%) valid and round(10%) test (half rounds up). The rest is train.
    """
    n = len(user)
    counts = np.bincount(user, minlength=n_users)
    order = np.lexsort((rng.random(n), user))  # shuffled within user
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[user[order]]
    n_eval = np.where(counts < 10, 1, np.floor(counts * 0.1 + 0.5)).astype(np.int64)
    label = np.zeros(n, dtype=np.int8)
    r, k = rank, n_eval[user]
    label[r < k] = 1
    label[(r >= k) & (r < 2 * k)] = 2
    return label


def _resolve_featurizers(featurizers: Any) -> tuple[Featurizer, Featurizer]:
    if featurizers is None:
        return BuiltinImageFeaturizer(), BuiltinTextFeaturizer()
    if isinstance(featurizers, Mapping):
        return (featurizers.get("image") or BuiltinImageFeaturizer(),
                featurizers.get("text") or BuiltinTextFeaturizer())
    image, text = featurizers
    return image or BuiltinImageFeaturizer(), text or BuiltinTextFeaturizer()


def _render_and_featurize(items: pd.DataFrame, out_dir: Path, image_size: int,
                          image_featurizer: Featurizer) -> np.ndarray:
    """Render one picture per distinct (category, colour, pattern[, material, age stage for the
    shared items]), write ``images/<itemID>.png`` for every item, return image features
    ``[n_items, d_A]`` float32. Size is not drawn (it is a title-only, neutral attribute)."""
    shared = items["shared"].to_numpy()
    keys = np.column_stack([items["category_id"], items["colour_id"], items["pattern_id"],
                            np.where(shared, items["material_id"], -1), np.where(shared, items["age_id"], -1)])
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    colour_rgb, badges, inks = list(COLOURS.values()), list(MATERIALS.values()), list(AGE_STAGES.values())
    pictures, blobs = [], []
    for k, c, p, m, a in uniq:
        img = render_item(CATEGORIES[k], colour_rgb[c], PATTERNS[p], image_size=image_size, scale=SHAPE_SCALE,
                          badge=badges[m] if m >= 0 else None, dots=(a + 1, inks[a]) if a >= 0 else None)
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=False)
        pictures.append(img)
        blobs.append(buf.getvalue())
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    for item, j in enumerate(inverse):
        (image_dir / f"{item}.png").write_bytes(blobs[j])
    feat = np.asarray(image_featurizer(pictures), dtype=np.float32)
    return feat[inverse]


def check_overlap(modality_overlap: Any) -> float:
    """``modality_overlap`` as a float in [0, 1], else a one-line ValueError naming it."""
    try:
        value = float(modality_overlap)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"modality_overlap must be a finite number in [0, 1], got {modality_overlap!r}")
    return value


def world_description(overlap: float, n_shared: int, n_items: int) -> dict[str, Any]:
    """What a generated world plants where (written into ``features.json``)."""
    return {
        "version": WORLD_VERSION, "modality_overlap": overlap, "items_in_both_modalities": n_shared,
        "n_items": n_items,
        "appearance": {"attributes": ["colour", "pattern"], "shown_by": "pictures"},
        "semantics": {"attributes": ["material", "age_stage"], "shown_by": "titles"},
        "behaviour": {"attributes": ["community"], "shown_by": "interactions only"},
        "neutral": {"category": "pictures (shape) and titles (noun)", "size": "titles", "brand": "titles"},
        "overlap_items": "titles also name colour and pattern; pictures also draw a material badge "
                         "(top-left shape and fill) and age-stage dots (1-4 along the bottom edge)",
    }


def generate_synthetic(out_dir: str | Path, n_users: int, n_items: int, n_interactions: int,
                       seed: int = DEFAULT_SEED, image_size: int = 48, featurizers: Any = None,
                       noise: float = 0.03, modality_overlap: float = 0.0) -> Path:
    """Write a complete synthetic MMRec directory (a separable world, see the module docstring)
    and return its path.

    Files: ``synthetic.inter``, ``image_feat.npy`` ``[n_items, d_A]``, ``text_feat.npy``
    ``[n_items, d_S]``, ``items.csv`` (itemID, title, category, colour, pattern, material,
    age_stage, size, community, brand, popularity), ``images/<itemID>.png``, ``planted_truth.npz``
    (``reliance`` ``[n_users, 3]`` float32 over B/A/S, ``user_colour``/``user_pattern``/
    ``user_material``/``user_age``/``user_community`` ``[n_users]``, ``item_community`` and
    ``item_overlap`` (bool: attributes in both modalities) ``[n_items]``,
    ``interaction_modality`` ``[n_rows]`` aligned with ``synthetic.inter`` (0/1/2 = B/A/S,
    3 = noise), ``modalities``, ``modality_overlap`` (0-d float)), ``features.json`` and
    ``README.txt``. ``featurizers``: None (built-in), ``{"image": f, "text": g}`` or
    ``(image, text)``. ``modality_overlap`` ∈ [0, 1]: the chance that an item's attributes are
    written into both modalities (1 = the confounded world). Deterministic given ``seed``; the
    interactions do not depend on ``modality_overlap``.
    """
    if n_users < 1 or n_items < 10 or n_interactions < 3 * n_users:
        raise ValueError("need n_users >= 1, n_items >= 10 and n_interactions >= 3 * n_users")
    overlap = check_overlap(modality_overlap)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    image_featurizer, text_featurizer = _resolve_featurizers(featurizers)
    rng = np.random.default_rng(seed)
    items = _catalog(rng, n_items, overlap)
    n_comm = int(items["community"].max()) + 1
    users = {
        "reliance": _reliance(rng, n_users),
        "colour": rng.integers(0, len(COLOURS), size=n_users),
        "pattern": rng.integers(0, len(PATTERNS), size=n_users),
        "material": rng.integers(0, len(MATERIALS), size=n_users),
        "age": rng.integers(0, len(AGE_STAGES), size=n_users),
        "community": rng.integers(0, n_comm, size=n_users),
    }
    degrees = _degrees(rng, n_users, n_items, n_interactions)
    user, item, modality = _interactions(rng, items, users, degrees, noise)
    label = mmrec_split(rng, user, n_users)
    timestamp = 1_600_000_000 + rng.integers(0, 30_000_000, size=len(user))
    inter = pd.DataFrame({"itemID": item, "userID": user, "rating": np.ones(len(user), dtype=np.int64),
                          "timestamp": timestamp, "x_label": label})
    inter.to_csv(out / "synthetic.inter", sep="\t", index=False)

    items[list(ITEM_COLUMNS)].to_csv(out / "items.csv", index=False)
    np.save(out / "image_feat.npy", _render_and_featurize(items, out, image_size, image_featurizer))
    titles = items["title"].tolist()
    np.save(out / "text_feat.npy", np.asarray(text_featurizer(titles), dtype=np.float32))
    shared = items["shared"].to_numpy()
    np.savez(out / "planted_truth.npz", reliance=users["reliance"], user_colour=users["colour"],
             user_pattern=users["pattern"], user_material=users["material"], user_age=users["age"],
             user_community=users["community"], item_community=items["community"].to_numpy(),
             item_overlap=shared, interaction_modality=modality, modalities=np.array(MODALITIES),
             modality_overlap=np.array(overlap, dtype=np.float64))
    world = world_description(overlap, int(shared.sum()), n_items)
    (out / "features.json").write_text(json.dumps({
        "synthetic": True, "image_featurizer": image_featurizer.name,
        "text_featurizer": text_featurizer.name, "world": world}, indent=2))
    (out / "README.txt").write_text(
        "SYNTHETIC DATA generated by magnet.data.synthetic.generate_synthetic "
        f"(seed={seed}, n_users={n_users}, n_items={n_items}, requested interactions={n_interactions}, "
        f"written={len(user)}, modality_overlap={overlap:g}).\nNot real users or products. Pictures are "
        f"rendered shapes; image features ({image_featurizer.name}) come from the pictures, text "
        f"features ({text_featurizer.name}) from the titles.\n"
        "A separable world (version 2): appearance intent (A) is keyed on colour and pattern, which "
        "only the pictures show; semantic intent (S) on material and age stage, which only the titles "
        "state; behaviour intent (B) on co-consumption communities that no content shows. Category is "
        "in both (shape, noun); size and brand are in titles only.\n"
        f"Modality overlap {overlap:g}: {int(shared.sum())} of {n_items} items also have their colour and "
        "pattern named in the title and their material (a top-left badge: shape and fill) and age stage "
        "(1-4 dots along the bottom edge) drawn in the picture (planted_truth.npz: item_overlap).\n"
        "planted_truth.npz holds each user's planted modality reliance over (B behaviour, A appearance, "
        "S semantics), the per-user preferred colour, pattern, material, age stage and community, and "
        "the intent behind each interaction.\n")
    return out


__all__ = ["generate_synthetic", "mmrec_split", "check_overlap", "SYNTHETIC_PRESETS", "CATEGORIES", "COLOURS",
           "PATTERNS", "MATERIALS", "AGE_STAGES", "WORLD_VERSION", "ITEM_COLUMNS"]
