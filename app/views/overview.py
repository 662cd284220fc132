"""Overview: what the chosen checkpoint is, how well it ranks, and its headline routing facts."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app import charts, state
from app.charts import REASON_TEXT
from app.tables import show_table
from magnet.explain import final_routing, has_expert_trace, most_used

sel = state.require_selection()
ckpt = state.guarded(state.light, sel.path)
info, metrics, ds = ckpt.info, ckpt.metrics, ckpt.info.get("dataset", {})

st.title(f"Overview · {sel.name}")
st.caption(f"Variant **{ckpt.variant}** on dataset **{ds.get('name', '?')}** "
           f"(`{ds.get('spec', '?')}`) · created {info.get('created_at', '?')} · commit "
           f"`{str(info.get('git_commit', '?'))[:10]}`")

c = st.columns(5)
c[0].metric("Dataset", str(ds.get("name", "?")))
c[1].metric("Variant", ckpt.variant)
c[2].metric("Device", str(info.get("device_name") or info.get("device", "?")))
seconds = info.get("train_seconds")
c[3].metric("Training time (s)", "—" if seconds is None else f"{seconds:.1f}")
c[4].metric("Epochs (best)", f"{info.get('epochs_run', '?')} ({metrics.get('best_epoch', info.get('best_epoch', '?'))})")
st.caption(f"{ds.get('n_users', '?')} users × {ds.get('n_items', '?')} items · "
           f"{ds.get('n_train', '?')} training / {ds.get('n_valid', '?')} valid / {ds.get('n_test', '?')} test "
           f"interactions · synthetic features: {ds.get('synthetic_features', False)}")

st.subheader("Test metrics")
test = metrics.get("test", {})
keys = [k for k in ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "recall@50", "ndcg@50") if k in test]
pop = metrics.get("popularity", {}).get("test", {})
cols = st.columns(len(keys) or 1)
for col, key in zip(cols, keys):
    delta = None
    if key in pop:
        delta = f"{test[key] - pop[key]:+.4f} vs popularity"
    col.metric(f"Test {key}", f"{test[key]:.4f}", delta)

left, right = st.columns([3, 2])
with left:
    st.plotly_chart(charts.bucket_bars(metrics, "test", popularity=pop or None), key="overview_buckets")
with right:
    rows = []
    for split in ("valid", "test"):
        m = metrics.get(split, {})
        rows.append({"split": split, **{k: m.get(k) for k in keys}, "users": m.get("n_users")})
    if pop:
        rows.append({"split": "test (popularity)", **{k: pop.get(k) for k in keys}, "users": pop.get("n_users")})
    show_table(pd.DataFrame(rows).set_index("split"), key="overview_metrics_table")
    st.caption(f"Model selected by {metrics.get('selected_by', 'valid recall@20')} at epoch {metrics.get('best_epoch')}.")

st.subheader("Routing at a glance")
facts = final_routing(ckpt.trace)
switch = ckpt.switch
c = st.columns(4)
c[0].metric("Switch step", "none" if switch.get("step") is None else str(switch["step"]),
            help="First training step in the specialization regime (switch.json).")
c[1].metric("Switch reason", REASON_TEXT.get(switch.get("reason"), str(switch.get("reason"))))
c[2].metric("Final H", "—" if facts["H"] is None else f"{facts['H']:.4f}",
            help=f"Routing entropy of the last training step; H* = {ckpt.config.routing.h_star:g}")
c[3].metric("Final EMA of H", "—" if facts["H_ema"] is None else f"{facts['H_ema']:.4f}")
top = most_used(facts["gates"])
if top and has_expert_trace(ckpt.trace):
    st.markdown("**Most-used experts** (mean gate, last 10 % of training steps): "
                + ", ".join(f"{n} {w:.2f}" for n, w in top))
    st.plotly_chart(charts.expert_bars(facts["gates"], "Mean gate per expert at the end of training"),
                    key="overview_experts")
else:
    st.info("This checkpoint has no experts (behaviour-only LightGCN): nothing is routed.")
