"""The ablation variants of spec §6 in one table: what each one switches (``overrides``, dotted
:class:`~magnet.config.RunConfig` paths) and which fields it makes irrelevant (``ignores``),
so that :func:`magnet.config.apply_variant` and the tuner's search space read the same facts.

A path ending in "." stands for a whole section (``"graph."``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Variant:
    """One ablation: ``overrides`` applied on top of any config; ``ignores``: fields the
    variant does not use (so a tuner does not sample them)."""

    description: str
    overrides: dict[str, Any] = field(default_factory=dict)
    ignores: tuple[str, ...] = ()

    @property
    def pinned(self) -> tuple[str, ...]:
        """Paths a tuner must not sample for this variant: what it overrides or ignores."""
        return tuple(self.overrides) + self.ignores


VARIANT_TABLE: dict[str, Variant] = {
    "full": Variant("the complete model"),
    "no_routing_reg": Variant(
        "no load-balance, entropy-bonus or confidence terms",
        {"routing.lb_weight": 0.0, "routing.ent_weight_cov": 0.0, "routing.conf_weight": 0.0}),
    "no_view_contrastive": Variant("no view-contrastive loss", {"train.vc_weight": 0.0}),
    "fixed_switch": Variant("coverage → specialization at a fixed step instead of the entropy trigger",
                            {"routing.switch_mode": "fixed"}),
    "behaviour_only": Variant(
        "LightGCN: the behaviour score alone, no experts and no content view",
        {"model.use_experts": False, "model.use_aug_view": False, "train.vc_weight": 0.0},
        ("model.expert_kind", "model.expert_hidden", "model.router", "model.router_rank", "model.cue_dim",
         "model.cue_scale_init", "model.fusion_gamma_init",
         "model.learn_fusion_gamma", "train.content_weight_decay", "train.expert_lr_scale",
         "train.router_lr_scale", "train.expert_weight_decay", "graph.", "routing.")),
}

VARIANTS: tuple[str, ...] = tuple(VARIANT_TABLE)


def matches(path: str, patterns: tuple[str, ...]) -> bool:
    """Whether dotted ``path`` is one of ``patterns`` or lies in a section ``"name."`` of them."""
    return any(path == p or (p.endswith(".") and path.startswith(p)) for p in patterns)
