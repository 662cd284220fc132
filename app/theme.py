"""One palette for the whole dashboard: a colour per anchor, per role, per expert, per bucket.

Anchors are hues (Behaviour blue, Appearance orange, Semantics green); an expert is its anchor's
hue in the shade of its role (Dom dark, Bal medium, Comp light). Role families have their own
colours for role-level charts.
"""
from __future__ import annotations

from functools import lru_cache

import plotly.graph_objects as go

from .paths import ASSETS

ANCHOR_COLORS = {"B": "#3b6fb6", "A": "#e07b39", "S": "#3a9d5d"}
ROLE_COLORS = {"Dom": "#5b3f8c", "Bal": "#c9a227", "Comp": "#2a9d9a"}
EXPERT_COLORS = {
    "B-Dom": "#1f4e8c", "B-Bal": "#3b6fb6", "B-Comp": "#8fb3e3",
    "A-Dom": "#a84f15", "A-Bal": "#e07b39", "A-Comp": "#f3b98c",
    "S-Dom": "#1f6e3a", "S-Bal": "#3a9d5d", "S-Comp": "#94d1a6",
}
BUCKET_COLORS = {"head": "#6c757d", "mid": "#9d7cc1", "tail": "#d1495b"}
ACTIVITY_COLORS = {"light": "#a6cee3", "medium": "#4f8fc0", "heavy": "#1f3f6e"}
REGIME_COLORS = {"coverage": "rgba(59,111,182,0.07)", "specialization": "rgba(224,123,57,0.08)"}
SWITCH_COLOR = "#d1495b"
OTHER_COLOR = "#b0b7c3"
# Checkpoints / variants in comparisons (in order of appearance).
SERIES_COLORS = ("#3b6fb6", "#e07b39", "#3a9d5d", "#9d4edd", "#d1495b", "#6c757d")
VARIANT_COLORS = {"full": "#3b6fb6", "no_routing_reg": "#e07b39", "no_view_contrastive": "#3a9d5d",
                  "fixed_switch": "#9d4edd", "behaviour_only": "#6c757d"}

FONT = dict(family="sans-serif", size=13, color="#1f2430")


def series_color(i: int, name: str | None = None) -> str:
    if name in VARIANT_COLORS:
        return VARIANT_COLORS[name]
    return SERIES_COLORS[i % len(SERIES_COLORS)]


def style(fig: go.Figure, title: str, x: str | None = None, y: str | None = None,
          height: int = 380, legend_title: str | None = None) -> go.Figure:
    """Apply the dashboard's look: a title, axis labels, white background, unified hover."""
    fig.update_layout(title=dict(text=title, x=0.0, xanchor="left"), template="plotly_white",
                      font=FONT, height=height, margin=dict(l=60, r=30, t=60, b=50),
                      legend=dict(title=legend_title), hoverlabel=dict(namelength=-1))
    if x is not None:
        fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    return fig


@lru_cache(maxsize=1)
def placeholder_png() -> bytes:
    """assets/placeholder.png: a grey square saying "no picture", for items without one."""
    return (ASSETS / "placeholder.png").read_bytes()


@lru_cache(maxsize=1)
def stylesheet() -> str:
    """assets/style.css, the dashboard's few CSS adjustments."""
    return (ASSETS / "style.css").read_text()
