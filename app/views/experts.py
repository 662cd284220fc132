"""Experts: utilization by role family and anchor — overall, over training, by user activity and
item popularity; the anchor × role heatmap; collapse at a glance."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app import analysis, charts, state
from app.tables import show_table
from magnet.explain import activity_bucket, family_sums, trace_family_shares, utilization
from magnet.vocab import ACTIVITY_NAMES, BUCKET_NAMES, EXPERT_NAMES

sel = state.require_selection()
ckpt = state.guarded(state.light, sel.path)
st.title(f"Experts · {sel.name}")
if not ckpt.config.model.use_experts:
    st.info("This is a behaviour-only (LightGCN) checkpoint: it has no experts to show.")
    st.stop()

table = state.guarded(state.routing_table, sel.path)
n_users = table["user"].nunique() if not table.empty else 0
st.caption(f"Utilization = mean gate over every (user, recommended item) pair in the top-20 of "
           f"{n_users} users, routed as at evaluation time.")
util = utilization(table)
row = util.iloc[0]
roles, anchors = family_sums(util)

collapsed = analysis.collapsed_experts(row)
if collapsed:
    st.error(f"Expert collapse: {len(collapsed)} of 9 experts get under 1 % of the routing weight: "
             + ", ".join(collapsed))
else:
    st.success(f"No collapse: all 9 experts get at least 1 % of the routing weight "
               f"(smallest {row.min():.3f}, largest {row.max():.3f}; uniform is {1/9:.3f}).")

c = st.columns(6)
for col, (name, value) in zip(c, list(roles.iloc[0].items()) + list(anchors.iloc[0].items())):
    col.metric(f"{name} share", f"{value:.3f}")

left, right = st.columns(2)
with left:
    st.plotly_chart(charts.heatmap(analysis.anchor_role_matrix(row), "Utilization: anchor × role"),
                    key="experts_heatmap")
with right:
    st.plotly_chart(charts.expert_bars(row, "Utilization per expert"), key="experts_bars")

st.subheader("Over training")
family = st.radio("Group by", ["role", "anchor", "expert"], horizontal=True, key="experts_family")
frame = trace_family_shares(ckpt.trace, family)
if frame.empty:
    st.info("The trace has no per-expert gates.")
else:
    st.plotly_chart(charts.stacked_area(frame, family), key="experts_area")

st.subheader("By user activity and by item popularity")
table = table.assign(activity=activity_bucket(table["user_activity"].to_numpy()))
by_act = utilization(table, by="activity").reindex([a for a in ACTIVITY_NAMES
                                                     if a in set(table["activity"])])
by_pop = utilization(table, by="item_bucket").reindex([b for b in BUCKET_NAMES
                                                       if b in set(table["item_bucket"])])
kind = st.radio("Families", ["role", "anchor"], horizontal=True, key="experts_split_family")
pick = 0 if kind == "role" else 1
left, right = st.columns(2)
with left:
    st.plotly_chart(charts.family_bars(family_sums(by_act)[pick], kind, f"Utilization by {kind} and user activity",
                                       "user activity (history-length tercile)"), key="experts_activity")
with right:
    st.plotly_chart(charts.family_bars(family_sums(by_pop)[pick], kind,
                                       f"Utilization by {kind} and item popularity", "item popularity bucket"),
                    key="experts_popularity")
with st.expander("Utilization table"):
    show_table(pd.concat({"overall": util.rename(index={0: "all"}), "activity": by_act, "popularity": by_pop})
               [list(EXPERT_NAMES)], key="experts_table", digits=3)
