"""Plotly figures of the dashboard (pure: data in, figure out), all styled by app.theme."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from magnet.vocab import ANCHORS, BUCKET_NAMES, EXPERT_NAMES

from . import theme
from .analysis import downsample
from .theme import ANCHOR_COLORS, EXPERT_COLORS, ROLE_COLORS

REASON_TEXT = {"trigger": "entropy trigger", "fixed": "fixed step", "fallback": "fallback (max coverage steps)"}


def bucket_bars(metrics: dict[str, Any], split: str = "test", keys: Sequence[str] = ("recall@20", "ndcg@20"),
                popularity: dict[str, Any] | None = None) -> go.Figure:
    """Grouped bars of metrics per popularity bucket (head/mid/tail), with the popularity floor."""
    buckets = metrics.get(split, {}).get("buckets", {})
    names = [b for b in BUCKET_NAMES if b in buckets]
    fig = go.Figure()
    for j, key in enumerate(keys):
        fig.add_bar(name=f"MAGNET {key}", x=names, y=[buckets[b].get(key) for b in names],
                    marker_color=theme.SERIES_COLORS[j], hovertemplate="%{x}: %{y:.4f}<extra>" + key + "</extra>")
    if popularity:
        pb = popularity.get("buckets", {})
        for j, key in enumerate(keys):
            fig.add_bar(name=f"popularity {key}", x=names, y=[pb.get(b, {}).get(key) for b in names],
                        marker_color=theme.OTHER_COLOR, marker_pattern_shape="/" if j else "",
                        hovertemplate="%{x}: %{y:.4f}<extra>popularity " + key + "</extra>")
    fig.update_layout(barmode="group")
    return theme.style(fig, f"{split.capitalize()} metrics by item popularity bucket",
                       "popularity bucket of the held-out item", "metric value", height=340)


def expert_bars(gates: pd.Series, title: str, y: str = "mean gate") -> go.Figure:
    names = [n for n in EXPERT_NAMES if n in gates.index]
    fig = go.Figure(go.Bar(x=names, y=[float(gates[n]) for n in names],
                           marker_color=[EXPERT_COLORS[n] for n in names],
                           hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    return theme.style(fig, title, "expert (anchor-role)", y, height=320)


def entropy_figure(trace: pd.DataFrame, switch: dict[str, Any], h_star: float, window: int,
                   tau_k: bool = True) -> go.Figure:
    """H, EMA(H), per-pair entropy, H* and the switch; τ and K on a second axis."""
    t = downsample(trace)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(x=t["step"], y=t["H"], name="H (routing entropy)", line=dict(color="#3b6fb6", width=1),
                    opacity=0.6, hovertemplate="step %{x}: H %{y:.4f}<extra></extra>")
    fig.add_scatter(x=t["step"], y=t["H_ema"], name="EMA of H", line=dict(color="#1f3f6e", width=2.5),
                    hovertemplate="step %{x}: EMA %{y:.4f}<extra></extra>")
    if "pair_entropy" in t:
        fig.add_scatter(x=t["step"], y=t["pair_entropy"], name="per-pair entropy",
                        line=dict(color="#3a9d5d", width=1.5, dash="dot"),
                        hovertemplate="step %{x}: per-pair %{y:.4f}<extra></extra>")
    fig.add_hline(y=h_star, line=dict(color="#d1495b", dash="dash"), annotation_text=f"H* = {h_star:g}",
                  annotation_position="top left")
    if tau_k:
        fig.add_scatter(x=t["step"], y=t["tau"], name="temperature τ", line=dict(color="#e07b39", width=1.5),
                        hovertemplate="step %{x}: τ %{y:.3f}<extra></extra>", secondary_y=True)
        fig.add_scatter(x=t["step"], y=t["k"], name="K (experts per pair)", line=dict(color="#9d4edd", shape="hv"),
                        hovertemplate="step %{x}: K %{y}<extra></extra>", secondary_y=True)
    step = switch.get("step")
    if step is not None:
        reason = switch.get("reason", "")
        if reason == "trigger" and window:
            fig.add_vrect(x0=max(0, step - window), x1=step, fillcolor="rgba(209,73,91,0.10)", line_width=0,
                          annotation_text=f"window ({window} steps)", annotation_position="bottom left")
        fig.add_vline(x=step, line=dict(color=theme.SWITCH_COLOR, width=2))
        fig.add_annotation(x=step, y=1.0, yref="paper", showarrow=False, xanchor="left", yanchor="bottom",
                           text=f"switch @ step {step} ({REASON_TEXT.get(reason, reason)})",
                           font=dict(color=theme.SWITCH_COLOR))
    fig.update_yaxes(title_text="entropy (normalised)", secondary_y=False)
    fig.update_yaxes(title_text="τ and K", secondary_y=True, showgrid=False)
    return theme.style(fig, "Routing entropy, its EMA and the coverage → specialization switch",
                       "training step", None, height=430)


#: How the trace's ranking-loss column ("bpr") is labelled for each ``train.loss``.
RANKING_LOSS_NAMES = {"bpr": "BPR", "softmax": "sampled softmax"}


def loss_figure(trace: pd.DataFrame, ranking_loss: str = "bpr") -> go.Figure:
    """Loss terms over training; ``ranking_loss`` is the checkpoint's ``train.loss``."""
    t = downsample(trace)
    cols = [c for c in ("loss", "bpr", "vc", "lb", "entropy_term", "reg") if c in t]
    ranking = RANKING_LOSS_NAMES.get(ranking_loss, ranking_loss)
    names = {"loss": "total loss", "bpr": ranking, "vc": "view-contrastive", "lb": "load balance",
             "entropy_term": "entropy term", "reg": "L2 reg"}
    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"Total and {ranking} loss", "Auxiliary terms"))
    for j, c in enumerate(cols):
        fig.add_scatter(x=t["step"], y=t[c], name=names[c], row=1, col=1 if c in ("loss", "bpr") else 2,
                        line=dict(color=theme.SERIES_COLORS[j % len(theme.SERIES_COLORS)], width=1.5),
                        hovertemplate="step %{x}: %{y:.4g}<extra>" + names[c] + "</extra>")
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text="loss value", row=1, col=1)
    fig.update_yaxes(title_text="term value", row=1, col=2)
    return theme.style(fig, "Loss terms over training", height=360)


def stacked_area(frame: pd.DataFrame, family: str) -> go.Figure:
    colors = {"expert": EXPERT_COLORS, "role": ROLE_COLORS, "anchor": ANCHOR_COLORS}[family]
    fig = go.Figure()
    for col in frame.columns:
        fig.add_scatter(x=frame.index, y=frame[col], name=col, stackgroup="one", mode="lines",
                        line=dict(width=0.5, color=colors.get(col)), fillcolor=colors.get(col),
                        hovertemplate="step %{x}: %{y:.3f}<extra>" + col + "</extra>")
    return theme.style(fig, f"Mean gate by {family} over training (from the trace)", "training step",
                       "share of routing weight", height=360, legend_title=family)


def family_bars(frame: pd.DataFrame, family: str, title: str, x: str) -> go.Figure:
    """Grouped bars: rows of ``frame`` on the x axis, one bar per role/anchor column."""
    colors = ROLE_COLORS if family == "role" else ANCHOR_COLORS
    labels = theme.ROLE_LABELS if family == "role" else theme.ANCHOR_LABELS
    fig = go.Figure()
    for col in frame.columns:
        fig.add_bar(name=labels.get(col, col), x=[str(i) for i in frame.index], y=frame[col],
                    marker_color=colors.get(col), hovertemplate="%{x}: %{y:.3f}<extra>" + labels.get(col, col) + "</extra>")
    fig.update_layout(barmode="group")
    return theme.style(fig, title, x, "mean gate (sums to 1 per group)", height=340, legend_title=family)


def heatmap(matrix: pd.DataFrame, title: str) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=matrix.to_numpy(), x=[theme.ROLE_LABELS[r] for r in matrix.columns],
                               y=[theme.ANCHOR_LABELS[a] for a in matrix.index], colorscale="Blues",
                               zmin=0, text=np.round(matrix.to_numpy(), 3), texttemplate="%{text}",
                               hovertemplate="%{y} × %{x}: %{z:.3f}<extra></extra>",
                               colorbar=dict(title="mean gate")))
    fig.update_yaxes(autorange="reversed")
    return theme.style(fig, title, "role family", "anchor modality", height=360)


def modality_bars(reliance: np.ndarray, contribution: np.ndarray, title: str) -> go.Figure:
    fig = go.Figure()
    labels = [theme.ANCHOR_LABELS[a] for a in ANCHORS]
    fig.add_bar(name="reliance r_m", x=labels, y=reliance, marker_color=[ANCHOR_COLORS[a] for a in ANCHORS],
                hovertemplate="%{x}: reliance %{y:.3f}<extra></extra>", text=np.round(reliance, 2))
    fig.add_bar(name="contribution share", x=labels, y=contribution, marker_color=[ANCHOR_COLORS[a] for a in ANCHORS],
                marker_pattern_shape="/", opacity=0.75, text=np.round(contribution, 2),
                hovertemplate="%{x}: contribution %{y:.3f}<extra></extra>")
    fig.update_layout(barmode="group")
    return theme.style(fig, title, "modality", "share", height=320)


def planted_bars(planted: np.ndarray, recovered: np.ndarray, user: int) -> go.Figure:
    labels = [theme.ANCHOR_LABELS[a] for a in ANCHORS]
    fig = go.Figure()
    fig.add_bar(name="planted", x=labels, y=planted, marker_color=theme.OTHER_COLOR,
                hovertemplate="%{x}: planted %{y:.3f}<extra></extra>")
    fig.add_bar(name="recovered (mean over top-N)", x=labels, y=recovered,
                marker_color=[ANCHOR_COLORS[a] for a in ANCHORS],
                hovertemplate="%{x}: recovered %{y:.3f}<extra></extra>")
    fig.update_layout(barmode="group")
    return theme.style(fig, f"User {user}: planted vs recovered modality reliance", "modality", "reliance",
                       height=320)


def expert_weight_bars(active: list[tuple[str, float]], title: str) -> go.Figure:
    names = [n for n, _ in active]
    fig = go.Figure(go.Bar(x=[w for _, w in active], y=names, orientation="h",
                           marker_color=[EXPERT_COLORS[n] for n in names], text=[f"{w:.2f}" for _, w in active],
                           hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return theme.style(fig, title, "gate weight", "expert", height=260)


def entropy_overlay(traces: dict[str, tuple[pd.DataFrame, dict[str, Any], str]]) -> go.Figure:
    fig = go.Figure()
    for j, (name, (trace, switch, variant)) in enumerate(traces.items()):
        color = theme.series_color(j, variant)
        t = downsample(trace)
        fig.add_scatter(x=t["step"], y=t["H_ema"], name=f"{name} EMA(H)", line=dict(color=color, width=2),
                        hovertemplate="step %{x}: %{y:.4f}<extra>" + name + "</extra>")
        if switch.get("step") is not None:
            fig.add_vline(x=switch["step"], line=dict(color=color, dash="dash", width=1.5))
            fig.add_annotation(x=switch["step"], y=1.0 - 0.07 * j, yref="paper", showarrow=False, xanchor="left",
                               text=f"{name}: switch {switch['step']} ({switch.get('reason')})",
                               font=dict(color=color, size=11))
    return theme.style(fig, "EMA of routing entropy with each switch marked", "training step",
                       "EMA of H", height=420, legend_title="checkpoint")


def rank_diff_hist(diff: pd.Series, ref: str, other: str) -> go.Figure:
    fig = go.Figure(go.Histogram(x=diff, nbinsx=41, marker_color="#3b6fb6",
                                 hovertemplate="rank change %{x}: %{y} users<extra></extra>"))
    fig.add_vline(x=0, line=dict(color="#1f2430", dash="dot"))
    return theme.style(fig, f"Per-user change in mean held-out rank: {other} − {ref} (negative = {other} better)",
                       "rank difference", "users", height=320)


def embedding_scatter(frame: pd.DataFrame, color: str, title: str, colors: dict[str, str] | None,
                      continuous: bool = False, hover: Sequence[str] = ("title",)) -> go.Figure:
    fig = go.Figure()
    custom = frame[list(hover)].astype(str).to_numpy() if hover else None
    tmpl = "<br>".join(f"{h}: %{{customdata[{j}]}}" for j, h in enumerate(hover)) + "<extra></extra>"
    if continuous:
        fig.add_scatter(x=frame["x"], y=frame["y"], mode="markers", customdata=custom, hovertemplate=tmpl,
                          marker=dict(color=frame[color], colorscale="Viridis", size=7, showscale=True,
                                      colorbar=dict(title=color)), name=color)
    else:
        for j, (value, part) in enumerate(frame.groupby(color, sort=True)):
            fallback = theme.OTHER_COLOR if colors else theme.SERIES_COLORS[j % len(theme.SERIES_COLORS)]
            c = (colors or {}).get(str(value), fallback)
            sub = part[list(hover)].astype(str).to_numpy() if hover else None
            fig.add_scatter(x=part["x"], y=part["y"], mode="markers", name=str(value), customdata=sub,
                              hovertemplate=tmpl, marker=dict(color=c, size=7, opacity=0.85))
    return theme.style(fig, title, "projection dim 1", "projection dim 2", height=560, legend_title=color)
