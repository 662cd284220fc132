"""Compare two to five checkpoints (the ablations) side by side."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app import analysis, charts, state
from app.tables import rounded, show_table
from magnet.explain import family_sums, utilization

SET_KEY = "cmp_set"

sel = state.require_selection()
st.title("Compare checkpoints")
found = state.all_checkpoints()
found.setdefault(sel.name, sel.path)
names = list(found)
if len(names) < 2:
    st.info("Only one checkpoint under the root: nothing to compare.")
    st.stop()
if SET_KEY not in st.session_state or not set(st.session_state[SET_KEY]) <= set(names):
    parent = str(sel.path.parent)
    siblings = [n for n in names if str(found[n].parent) == parent]
    default = ([sel.name] + [n for n in siblings if n != sel.name])[:5]
    st.session_state[SET_KEY] = default if len(default) >= 2 else names[:2]
chosen = st.multiselect("Checkpoints (2 to 5)", names, key=SET_KEY, max_selections=5)
if len(chosen) < 2:
    st.warning("Pick at least two checkpoints.")
    st.stop()


def opened(loader, names: list[str]) -> dict:
    """``loader`` of each checkpoint named; one that cannot be opened gets a one-line warning and
    is left out, so one bad sibling never stops the page."""
    out = {}
    for n in names:
        value = state.attempt(loader, found[n], what=f"checkpoint {n}", show=st.warning)
        if value is not None:
            out[n] = value
    return out


ckpts = opened(state.light, chosen)
if len(ckpts) < 2:
    st.warning("Fewer than two of the chosen checkpoints can be opened: nothing to compare.")
    st.stop()
chosen = list(ckpts)
table = pd.DataFrame([analysis.metrics_row(n, c) for n, c in ckpts.items()])
for column in ("switch_step", "best_epoch"):
    table[column] = table[column].astype("Int64")  # integers with a missing value, not 153.000000
st.subheader("Test metrics (like the paper's ablation table)")
fmt = {k: "{:.4f}" for k in (*analysis.METRIC_COLUMNS, "tail_recall@20", "valid_recall@20")}
st.dataframe(rounded(table).style.format(fmt, na_rep="—").highlight_max(
    subset=[*analysis.METRIC_COLUMNS, "tail_recall@20"], color="#dbe7f7"), key="cmp_table", hide_index=True)
st.download_button("Download the compare table (CSV)", table.to_csv(index=False).encode(),
                   file_name="compare.csv", mime="text/csv", key="cmp_download")

st.plotly_chart(charts.entropy_overlay({n: (c.trace, c.switch, c.variant) for n, c in ckpts.items()}),
                key="cmp_entropy")

st.subheader("Utilization by role family")
cols = st.columns(len(chosen))
rows = {}
with_experts = [n for n in chosen if ckpts[n].config.model.use_experts]
for col, name in zip(cols, chosen):
    if name not in with_experts:
        col.info(f"{name}: behaviour-only, no experts.")
tables = opened(state.routing_table, with_experts)
for name, routed in tables.items():
    rows[name] = family_sums(utilization(routed))[0].iloc[0]
if rows:
    frame = pd.DataFrame(rows).T
    st.plotly_chart(charts.family_bars(frame, "role", "Utilization by role family per checkpoint", "checkpoint"),
                    key="cmp_roles")

st.subheader("Per-user rank differences")
ranks = opened(state.held_out_ranks, chosen)
if len(ranks) < 2:
    st.info("Fewer than two of the chosen checkpoints can be ranked: no per-user comparison.")
    st.stop()
chosen = list(ranks)
ref = st.selectbox("Reference checkpoint", chosen, key="cmp_ref")
per_user = pd.DataFrame({n: r.groupby("user")["rank"].mean() for n, r in ranks.items()})
others = [n for n in chosen if n != ref]
other = st.selectbox("Compared with", others, key="cmp_other")
diff = (per_user[other] - per_user[ref]).dropna()
c = st.columns(3)
c[0].metric(f"Users better under {other}", int((diff < 0).sum()))
c[1].metric(f"Users better under {ref}", int((diff > 0).sum()))
c[2].metric("Median rank change", f"{diff.median():+.1f}")
st.plotly_chart(charts.rank_diff_hist(diff, ref, other), key="cmp_hist")
summary = per_user.assign(**{f"{n} − {ref}": per_user[n] - per_user[ref] for n in others})
summary.index.name = "user"
st.caption("Mean rank of each user's held-out test items under each checkpoint (training items masked).")
show_table(summary.sort_values(f"{other} − {ref}"), key="cmp_users", digits=1)
