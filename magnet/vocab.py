"""The project's vocabulary, in one torch-free module that the model, the explanations and the
dashboard all import: modalities, anchors, roles, the nine expert names and their triplet
templates, popularity buckets, activity terciles, and the words each is shown with.

Experts are ordered anchor-major: index ``e`` is anchor ``ANCHORS[e // 3]`` in role
``ROLES[e % 3]``, so ``EXPERT_NAMES`` reads B-Dom, B-Bal, B-Comp, A-Dom, …, S-Comp.
"""
from __future__ import annotations

MODALITIES: tuple[str, ...] = ("B", "A", "S")
"""Behaviour (co-interactions), Appearance (image features), Semantics (text features)."""
ANCHORS: tuple[str, ...] = MODALITIES
ROLES: tuple[str, ...] = ("Dom", "Bal", "Comp")
EXPERT_NAMES: tuple[str, ...] = tuple(f"{a}-{r}" for a in ANCHORS for r in ROLES)
N_EXPERTS = len(EXPERT_NAMES)
N_MODALITIES = len(MODALITIES)

ROLE_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "Dom": (0.70, 0.15, 0.15),
    "Bal": (0.40, 0.30, 0.30),
    "Comp": (0.20, 0.40, 0.40),
}
"""Each role's triplet: the first weight goes to the anchor, the other two to the remaining
modalities in (B, A, S) order."""

BUCKET_NAMES: tuple[str, ...] = ("head", "mid", "tail")
"""Item popularity buckets by training degree (see :func:`magnet.evaluate.popularity_buckets`)."""
ACTIVITY_NAMES: tuple[str, ...] = ("light", "medium", "heavy")
"""User history-length terciles."""

MODALITY_NAMES: dict[str, str] = {"B": "Behaviour", "A": "Appearance", "S": "Semantics"}
MODALITY_LABELS: dict[str, str] = {m: f"{m} · {name}" for m, name in MODALITY_NAMES.items()}
MODALITY_WORDS: dict[str, str] = {"B": "behaviour (co-interactions)", "A": "appearance (images)",
                                  "S": "semantics (titles and attributes)"}
MODALITY_SOURCES: dict[str, str] = {"B": "co-interaction signal", "A": "picture", "S": "title"}
"""What knocking a modality out of an item takes away, in words ("without its picture …")."""
ROLE_NAMES: dict[str, str] = {"Dom": "Dominant", "Bal": "Balanced", "Comp": "Complementary"}


def expert_anchor(e: int) -> str:
    """Anchor modality of expert index ``e``."""
    return ANCHORS[e // len(ROLES)]


def expert_role(e: int) -> str:
    """Role family of expert index ``e``."""
    return ROLES[e % len(ROLES)]


def experts_of_role(role: str) -> list[str]:
    """Names of the three experts of role family ``role``, in anchor order."""
    return [n for n in EXPERT_NAMES if n.endswith(f"-{role}")]


def experts_of_anchor(anchor: str) -> list[str]:
    """Names of the three experts anchored on modality ``anchor``, in role order."""
    return [n for n in EXPERT_NAMES if n.startswith(f"{anchor}-")]


def template_rows(role_weights: dict[str, tuple[float, float, float]] | None = None
                  ) -> tuple[tuple[float, float, float], ...]:
    """The triplet templates as rows over (B, A, S), one per expert in ``EXPERT_NAMES`` order."""
    role_weights = role_weights or ROLE_WEIGHTS
    rows = []
    for e in range(N_EXPERTS):
        anchor = MODALITIES.index(expert_anchor(e))
        first, *rest = role_weights[expert_role(e)]
        row = [0.0] * N_MODALITIES
        row[anchor] = first
        others = [m for m in range(N_MODALITIES) if m != anchor]
        row[others[0]], row[others[1]] = rest
        rows.append((row[0], row[1], row[2]))
    return tuple(rows)


def style_words(expert: str) -> str:
    """How a routing style is said, e.g. "Behaviour-anchored, Balanced" for ``B-Bal``."""
    anchor, role = expert.split("-")
    return f"{MODALITY_NAMES[anchor]}-anchored, {ROLE_NAMES[role]}"
