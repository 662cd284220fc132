"""Embedding map: the checkpoint's stored 2-D projection of items (and users)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app import analysis, charts, state, theme
from app.theme import placeholder_png
from magnet.explain import activity_bucket
from magnet.vocab import BUCKET_NAMES, MODALITIES

sel = state.require_selection()
ckpt = state.guarded(state.light, sel.path)
proj = ckpt.projection
method = str(np.asarray(proj.get("method", "projection")).reshape(-1)[0]).upper()
st.title(f"Embedding map · {sel.name}")
st.caption(f"Stored {method} projection of the final embeddings (computed when the checkpoint was written).")

ctx = state.guarded(state.context, sel.path)
data = ctx.data
table = state.guarded(state.routing_table, sel.path) if ctx.has_experts else pd.DataFrame()
what = st.radio("Show", ["items", "users"], horizontal=True, key="emb_what")

if what == "items":
    xy = np.asarray(proj["item_xy"])
    dom = analysis.item_dominant(table, data.n_items)
    pop = ctx.popularity
    frame = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "item": np.arange(len(xy)),
                          "title": [data.item_title(i) for i in range(len(xy))],
                          "dominant expert": dom["expert"].to_numpy(), "anchor": dom["anchor"].to_numpy(),
                          "popularity bucket": np.array(BUCKET_NAMES)[ctx.buckets[:len(xy)]],
                          "log popularity": np.log1p(pop[:len(xy)])})
    options = ["dominant expert", "anchor", "popularity bucket", "log popularity"]
    if data.items is not None and "category" in data.items.columns:
        frame["category"] = data.items["category"].astype(str).to_numpy()[:len(xy)]
        options.insert(2, "category")
    color = st.selectbox("Colour by", options, key="emb_color_items")
    hover = ["item", "title", color] if color not in ("item", "title") else ["item", "title"]
else:
    xy = np.asarray(proj["user_xy"])
    dom = analysis.user_dominant(table, data.n_users)
    activity = ctx.activity()
    frame = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "user": np.arange(len(xy)),
                          "title": [f"user {u} · {activity[u]} items" for u in range(len(xy))],
                          "dominant expert": dom["expert"].to_numpy(), "anchor": dom["anchor"].to_numpy(),
                          "activity": activity_bucket(activity)[:len(xy)]})
    options = ["dominant expert", "anchor", "activity"]
    planted = ckpt.planted or data.planted
    if planted is not None and "reliance" in planted:
        frame["planted top modality"] = np.array(MODALITIES)[np.asarray(planted["reliance"]).argmax(1)][:len(xy)]
        options.append("planted top modality")
    color = st.selectbox("Colour by", options, key="emb_color_users")
    hover = ["title", color]

palette = {"dominant expert": theme.EXPERT_COLORS, "anchor": theme.ANCHOR_COLORS,
           "planted top modality": theme.ANCHOR_COLORS, "popularity bucket": theme.BUCKET_COLORS,
           "activity": theme.ACTIVITY_COLORS}.get(color)
continuous = color == "log popularity"
fig = charts.embedding_scatter(frame, color, f"{method} map of {what}, coloured by {color}", palette,
                               continuous=continuous, hover=hover)
event = st.plotly_chart(fig, key=f"emb_map_{what}", on_select="rerun", selection_mode="points")

if what == "items":
    picked: list[int] = []
    try:
        points = event.selection.points if event is not None else []
        picked = [int(p["customdata"][0]) for p in points if p.get("customdata")][:5]
    except (AttributeError, KeyError, TypeError, ValueError):
        picked = []
    st.caption("Hover a point for its title; click points (or pick below) to see their pictures.")
    chosen = st.multiselect("Items to show", list(range(len(xy))), default=None, key="emb_items",
                            format_func=lambda i: f"{i} · {data.item_title(i)}", max_selections=5)
    shown = (picked or chosen or list(np.argsort(-ctx.popularity)[:5]))[:5]
    cols = st.columns(5)
    for col, item in zip(cols, shown):
        path = data.image_path(int(item))
        col.image(str(path) if path is not None else placeholder_png(), caption=data.item_title(int(item)),
                  width="stretch")
