"""Plotly figures of the dashboard (pure: data in, figure out), all styled by app.theme."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from magnet.vocab import BUCKET_NAMES, EXPERT_NAMES, MODALITIES, MODALITY_LABELS, ROLE_NAMES

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
    labels = ROLE_NAMES if family == "role" else MODALITY_LABELS
    fig = go.Figure()
    for col in frame.columns:
        fig.add_bar(name=labels.get(col, col), x=[str(i) for i in frame.index], y=frame[col],
                    marker_color=colors.get(col), hovertemplate="%{x}: %{y:.3f}<extra>" + labels.get(col, col) + "</extra>")
    fig.update_layout(barmode="group")
    return theme.style(fig, title, x, "mean gate (sums to 1 per group)", height=340, legend_title=family)


def heatmap(matrix: pd.DataFrame, title: str) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=matrix.to_numpy(), x=[ROLE_NAMES[r] for r in matrix.columns],
                               y=[MODALITY_LABELS[a] for a in matrix.index], colorscale="Blues",
                               zmin=0, text=[[f"{v:.3f}" for v in row] for row in matrix.to_numpy()],
                               texttemplate="%{text}",
                               hovertemplate="%{y} × %{x}: %{z:.3f}<extra></extra>",
                               colorbar=dict(title="mean gate")))
    fig.update_yaxes(autorange="reversed")
    return theme.style(fig, title, "role family", "anchor modality", height=360)


def contribution_bars(share: np.ndarray, rank: int, knockout_ranks: np.ndarray | None, title: str) -> go.Figure:
    """Each modality's signed share of the item's score (the exact decomposition), labelled with
    the item's rank without that modality (the knockout that tests the explanation)."""
    labels = [MODALITY_LABELS[m] for m in MODALITIES]
    text = [f"{v:.0%}" for v in share]
    hover = [f"share of the score {v:+.1%}" for v in share]
    if knockout_ranks is not None:
        text = [f"{v:.0%} · #{rank}→#{int(r)}" for v, r in zip(share, knockout_ranks)]
        hover = [f"{h}; without it #{rank} → #{int(r)}" for h, r in zip(hover, knockout_ranks)]
    fig = go.Figure(go.Bar(x=labels, y=[float(v) for v in share], marker_color=[ANCHOR_COLORS[m] for m in MODALITIES],
                           text=text, textposition="outside", customdata=hover,
                           hovertemplate="%{x}: %{customdata}<extra></extra>"))
    fig.update_yaxes(tickformat=".0%")
    return theme.style(fig, title, "modality", "share of the score", height=320)


def user_reliance_bars(relative: np.ndarray, planted: np.ndarray | None, user: int) -> go.Figure:
    """A user's modality reliance relative to other users (z-scores), beside the planted
    reliance when the data has one."""
    labels = [MODALITY_LABELS[m] for m in MODALITIES]
    colors = [ANCHOR_COLORS[m] for m in MODALITIES]
    titles = ["recovered, relative to other users"] + (["planted (share of the user's choices)"] if planted is not None else [])
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles)
    fig.add_bar(x=labels, y=[float(v) for v in relative], marker_color=colors, row=1, col=1, showlegend=False,
                text=[f"{v:+.2f}" for v in relative], textposition="outside",
                hovertemplate="%{x}: %{y:+.2f} std from the average user<extra></extra>")
    fig.update_yaxes(title_text="std from the average user", row=1, col=1)
    if planted is not None:
        fig.add_bar(x=labels, y=[float(v) for v in planted], marker_color=theme.OTHER_COLOR, row=1, col=2,
                    showlegend=False, text=[f"{v:.0%}" for v in planted], textposition="outside",
                    hovertemplate="%{x}: planted %{y:.0%}<extra></extra>")
        fig.update_yaxes(title_text="planted share", tickformat=".0%", row=1, col=2)
    return theme.style(fig, f"User {user}: modality reliance", height=340)


def faithfulness_bars(report: dict[str, Any]) -> go.Figure:
    """The checkpoint's faithfulness figures next to their chance baselines."""
    rows = [("names the knockout that hurts most", report["knockout"]["top_agreement"], report["knockout"]["chance"],
             "chance (1/3)"),
            ("item leaves the top-N when the named modality is knocked out", report["knockout"]["pn_named"],
             report["knockout"]["pn_random"], "a random modality")]
    if report.get("knockout_users"):
        users = report["knockout_users"]
        rows.append(("a user's reliance names their own worst knockout", users["top_agreement"], users["chance"],
                     "chance (1/3)"))
    if report.get("planted"):
        rows.append(("recovers the user's planted top modality", report["planted"]["top_modality_accuracy"],
                     report["planted"]["majority_rate"], "always the most common"))
    names = [r[0] for r in rows]
    fig = go.Figure()
    fig.add_bar(name="measured", x=[r[1] for r in rows], y=names, orientation="h", marker_color=theme.SERIES_COLORS[0],
                text=[f"{r[1]:.2f}" for r in rows], textposition="outside",
                hovertemplate="%{y}: %{x:.3f}<extra>measured</extra>")
    fig.add_bar(name="baseline", x=[r[2] for r in rows], y=names, orientation="h", marker_color=theme.OTHER_COLOR,
                text=[f"{r[2]:.2f} ({r[3]})" for r in rows], textposition="outside",
                hovertemplate="%{y}: %{x:.3f}<extra>baseline</extra>")
    fig.update_layout(barmode="group")
    fig.update_xaxes(range=[0, 1.15])
    fig.update_yaxes(autorange="reversed")
    return theme.style(fig, "Faithfulness against its baselines", "share", None, height=320)


def planted_scatter(per_user: pd.DataFrame, pearson: dict[str, float]) -> go.Figure:
    """Per user and modality: planted share (x) against recovered reliance relative to other
    users (y)."""
    fig = make_subplots(rows=1, cols=len(MODALITIES), shared_yaxes=True,
                        subplot_titles=[f"{MODALITY_LABELS[m]} (r = {pearson[m]:+.2f})" for m in MODALITIES])
    for k, m in enumerate(MODALITIES, start=1):
        fig.add_scatter(x=per_user[f"planted_{m}"], y=per_user[f"relative_{m}"], mode="markers", row=1, col=k,
                        marker=dict(color=ANCHOR_COLORS[m], size=5, opacity=0.6), showlegend=False,
                        customdata=per_user["user"], name=m,
                        hovertemplate="user %{customdata}: planted %{x:.2f}, recovered %{y:+.2f}<extra></extra>")
        fig.update_xaxes(title_text="planted share", tickformat=".0%", row=1, col=k)
    fig.update_yaxes(title_text="recovered, relative to other users", row=1, col=1)
    return theme.style(fig, "Planted vs recovered modality reliance, one point per user", height=360)


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
