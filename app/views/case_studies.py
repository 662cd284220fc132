"""Case studies: one user's history and recommendations, each explained (experts, modalities,
ranks vs the baseline, cue). Deep link: ``?user=ID`` (with ``&ckpt=NAME``)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app import charts, state
from app.tables import show_table
from app.theme import placeholder_png
from magnet.vocab import MODALITIES, MODALITY_LABELS

USER_KEY = "cs_user"
ITEM_KEY = "cs_item"

sel = state.require_selection()
ctx = state.guarded(state.context, sel.path)
data = ctx.data
n_users = int(data.n_users)
st.title(f"Case studies · {sel.name}")


def parse_user(text: str | None) -> int | None:
    try:
        user = int(str(text).strip())
    except (TypeError, ValueError):
        return None
    return user if 0 <= user < n_users else None


def set_user(user: int) -> None:
    st.session_state[USER_KEY] = int(user)
    st.session_state["_cs_user"] = int(user)
    st.session_state.pop(ITEM_KEY, None)
    st.query_params["user"] = str(int(user))
    st.session_state["_cs_qp"] = str(int(user))


def on_pick() -> None:
    set_user(st.session_state[USER_KEY])


# --- which user: ?user= deep link, else the last one shown, else the first active user
activity = ctx.activity()
qp = st.query_params.get("user")
if qp is not None and qp != st.session_state.get("_cs_qp"):
    st.session_state["_cs_qp"] = qp
    user = parse_user(qp)
    if user is None:
        st.session_state["_cs_bad"] = qp
    else:
        st.session_state.pop("_cs_bad", None)
        st.session_state[USER_KEY] = user
        st.session_state["_cs_user"] = user
        st.session_state.pop(ITEM_KEY, None)
if st.session_state.get("_cs_bad") is not None and st.query_params.get("user") == st.session_state["_cs_bad"]:
    st.warning(f"User “{st.session_state['_cs_bad']}” does not exist in this dataset (user ids are 0–{n_users - 1}); "
               "showing another user instead.")
current = st.session_state.get("_cs_user")
if current is None or not 0 <= int(current) < n_users:
    current = int(np.flatnonzero(activity > 0)[0]) if (activity > 0).any() else 0
    st.session_state["_cs_user"] = current
st.session_state[USER_KEY] = int(current)
if st.query_params.get("user") is None:
    st.query_params["user"] = str(int(current))
    st.session_state["_cs_qp"] = str(int(current))

top = st.columns([3, 1, 1, 2])
user = top[0].selectbox("User (type to search)", list(range(n_users)), key=USER_KEY, on_change=on_pick,
                        format_func=lambda u: f"user {u} · {activity[u]} training items")
top[1].button("◀ Previous", key="cs_prev", on_click=set_user, args=((int(user) - 1) % n_users,),
              width="stretch")
top[2].button("Next ▶", key="cs_next", on_click=set_user, args=((int(user) + 1) % n_users,),
              width="stretch")
n = top[3].slider("Recommendations", 5, 20, 10, key="cs_n")
st.caption(f"Shareable link: `?ckpt={sel.name}&user={user}` · baseline: "
           f"{sel.baseline_name or 'none (pick one in the sidebar)'}")


def card(col, item: int, caption: str) -> None:
    path = data.image_path(item)
    col.image(str(path) if path is not None else placeholder_png(), caption=caption, width="stretch")


def grid(items: list[int], captions: list[str], per_row: int = 5) -> None:
    for start in range(0, len(items), per_row):
        cols = st.columns(per_row)
        for col, item, cap in zip(cols, items[start:start + per_row], captions[start:start + per_row]):
            card(col, item, cap)


history = ctx.history(int(user))
with st.expander(f"History: {len(history)} training items", expanded=True):
    if len(history) == 0:
        st.info("This user has no training interactions.")
    shown = [int(i) for i in history[:10]]
    grid(shown, [data.item_title(i) for i in shown], per_row=10)
    if len(history) > 10:
        st.caption(f"… and {len(history) - 10} more.")

explanations, table = state.guarded(state.case_study, sel.path, int(user), int(n), sel.baseline_path)
st.subheader(f"Top-{n} recommendations")
grid([ex.item for ex in explanations],
     [f"#{ex.rank} {data.item_title(ex.item)}" + ("" if ex.baseline_rank is None else f" (baseline #{ex.baseline_rank})")
      for ex in explanations])

by_rank = {ex.rank: ex for ex in explanations}
choice = st.selectbox("Explain recommendation", list(by_rank), key=ITEM_KEY,
                      format_func=lambda r: f"#{r} {data.item_title(by_rank[r].item)} (item {by_rank[r].item})")
ex = by_rank[choice]
title = data.item_title(ex.item)
st.markdown(f"#### Why #{ex.rank}: {title}")
left, right = st.columns([1, 3])
with left:
    card(st, ex.item, f"item {ex.item}")
with right:
    c = st.columns(4)
    c[0].metric("Rank (MAGNET)", str(ex.rank))
    c[1].metric("Rank (baseline)", "—" if ex.baseline_rank is None else str(ex.baseline_rank),
                None if ex.baseline_rank is None else f"{ex.baseline_rank - ex.rank:+d} places gained",
                help=f"Rank of this item under {sel.baseline_name or 'no baseline'}")
    c[2].metric("Score", f"{ex.score:.4f}")
    c[3].metric("Routing style", ex.style.split(",")[0], help=ex.style)
    active = ex.active_experts()
    st.markdown("**Experts activated:** " + (", ".join(f"{nm} {w:.2f}" for nm, w in active) or "none"))
    st.markdown(f"**Routing style:** {ex.style}")
    st.markdown(f"**Key cue:** {ex.cue}")
    st.info(ex.sentence(title))

left, right = st.columns(2)
with left:
    if active:
        st.plotly_chart(charts.expert_weight_bars(active, f"Experts activated for “{title}”"), key="cs_experts")
    show_table(pd.DataFrame(active, columns=["expert", "weight"]), key="cs_expert_table", digits=3, hide_index=True)
with right:
    st.plotly_chart(charts.contribution_bars(ex.contribution_share, ex.rank, ex.knockout_ranks,
                                             f"What each modality contributes to “{title}”"), key="cs_modality")
    if ex.knockout_ranks is not None:
        st.caption("Each bar is the modality's exact share of the score; #a→#b is the item's rank if that "
                   "modality were knocked out of it (its channel set to the catalogue mean, its cue to the "
                   "average), every other item unchanged. " + ex.knockout_sentence())

st.markdown("#### This user's modality reliance")
reliance = state.guarded(state.user_reliance, sel.path) if ctx.has_experts else pd.DataFrame()
if reliance.empty or int(user) not in reliance.index:
    st.info("Behaviour-only checkpoint: every recommendation relies on behaviour alone." if not ctx.has_experts
            else "This user is not among the users whose routing was sampled.")
else:
    row = reliance.loc[int(user)]
    relative = np.array([row[f"relative_{m}"] for m in MODALITIES])
    planted = ctx.ckpt.planted or data.planted
    truth = np.asarray(planted["reliance"])[int(user)] if planted is not None and "reliance" in planted else None
    st.plotly_chart(charts.user_reliance_bars(relative, truth, int(user)), key="cs_user_reliance")
    st.caption(f"Relative to other users: how much more this user's top-20 leans on each modality (the routing's "
               f"reliance Σₑ gₑ·wₑ, averaged over the top-20) than the {len(reliance)} users sampled, in standard "
               "deviations. The Faithfulness page checks this figure against the users' own knockouts and, on "
               "synthetic data, against planted truth.")

st.markdown("#### What if a modality were switched off?")
off = st.radio("Switch off for every item", ["none", *MODALITIES], horizontal=True, key="cs_whatif",
               format_func=lambda m: "nothing" if m == "none" else MODALITY_LABELS[m])
if off != "none":
    without = state.guarded(state.without, sel.path, int(user), off, int(n))
    current = pd.DataFrame({"rank": [e.rank for e in explanations], "title": [data.item_title(e.item) for e in explanations]})
    left, right = st.columns(2)
    left.markdown("**Full model**")
    show_table(current, key="cs_whatif_before", where=left, hide_index=True)
    right.markdown(f"**Without {MODALITY_LABELS[off]}**")
    show_table(without[["rank", "title", "rank_before"]].rename(columns={"rank_before": "was #"}),
               key="cs_whatif_after", where=right, hide_index=True)
    kept = len(set(without["item"]) & {e.item for e in explanations})
    st.caption(f"{kept} of the {n} recommendations stay in the top-{n} without {MODALITY_LABELS[off]}.")

st.download_button("Download this case study (CSV)", table.to_csv(index=False).encode(),
                   file_name=f"case_study_{sel.name.replace('/', '_')}_user{user}.csv", mime="text/csv",
                   key="cs_download")
with st.expander("All recommendations as a table"):
    show_table(table, key="cs_table", hide_index=True)

st.subheader("Typical cases")
if sel.baseline_path is None:
    st.info("Pick a baseline checkpoint in the sidebar to see which held-out items each model finds.")
else:
    typical = state.guarded(state.typical_cases, sel.path, sel.baseline_path)
    counts = typical.attrs
    if counts:
        st.caption(f"Of {counts['pairs']:,} held-out (user, item) pairs, this model puts {counts['only_model']:,} in its "
                   f"top-20 that the baseline does not, and the baseline {counts['only_baseline']:,} that this model "
                   "does not. Per routing style, the clearest of each:")
    if typical.empty:
        st.info("No held-out item is in one model's top-20 and not the other's.")
    else:
        show_table(typical, key="cs_typical", hide_index=True)
        pick = st.selectbox("Open a typical case", list(typical.index), key="cs_typical_pick",
                            format_func=lambda j: f"user {typical.loc[j, 'user']} · {typical.loc[j, 'outcome']} · "
                                                  f"#{typical.loc[j, 'rank']} vs #{typical.loc[j, 'baseline_rank']}")
        st.button("Open this user", key="cs_typical_open", on_click=set_user,
                  args=(int(typical.loc[pick, "user"]),))
