"""Faithfulness: are this checkpoint's explanations true? Measured against the model itself
(knocking each modality out of an item) and, on synthetic data, against the planted reliance."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app import charts, state
from app.tables import show_table

#: The per-user reliance is flagged when its agreement with the users' own knockouts is less
#: than this above chance.
USER_KNOCKOUT_MARGIN = 0.10

sel = state.require_selection()
st.title(f"Faithfulness · {sel.name}")
st.caption("An explanation shown here is one that has been measured. Each recommended item's explanation names "
           "the modality with the largest share of its score; knocking a modality out of the item (its channel "
           "set to the catalogue mean, its cue to the average) tests that claim. A user's modality reliance is "
           "the routing's, averaged over their top-20 and read relative to other users; it is checked against what "
           "knocking each modality out does to that user's list (relative to other users' too) and, on synthetic "
           "data, against the reliance planted when the data was generated.")

fid = state.guarded(state.fidelity, sel.path)
report = fid.report
red = report.get("redundancy")
if red and red["warn"]:
    st.warning(f"Appearance and semantics carry largely the same information here (held-out redundancy "
               f"{red['redundancy']:.2f} > {red['threshold']:.2f}: each modality's features predict most of the "
               "other's). Nothing in the data can tell an appearance-driven user from a semantics-driven one, so "
               "no explanation can either: read A-versus-S statements on this checkpoint with that in mind.")

ko, users_ko, planted = report["knockout"], report["knockout_users"], report.get("planted")
st.markdown("**Per recommended item**: the modality named first")
c = st.columns(3)
c[0].metric("Names the knockout that hurts most", f"{ko['top_agreement']:.2f}", f"{ko['top_agreement'] - ko['chance']:+.2f} vs chance",
            help=f"Share of {report['n_pairs']:,} top-{report['top_n']} items whose named modality is the one whose "
                 f"knockout lowers the score most (chance {ko['chance']:.2f}).")
c[1].metric("Leaves the top-20 when the named modality goes", f"{ko['pn_named']:.2f}",
            f"{ko['pn_named'] - ko['pn_random']:+.2f} vs a random modality",
            help="Share of items that drop out of the top-20 when the named modality is knocked out, against the "
                 "same for a modality drawn at random.")
st.markdown("**Per user**: modality reliance relative to other users")
c = st.columns(3)
c[0].metric("Agrees with the user's own knockouts", f"{users_ko['top_agreement']:.2f}",
            f"{users_ko['top_agreement'] - users_ko['chance']:+.2f} vs chance",
            help=f"Share of {report['n_users']} users whose largest reliance relative to other users is the modality "
                 "whose knockouts hurt their top-20 most relative to other users' (chance "
                 f"{users_ko['chance']:.2f}).")
if planted:
    c[1].metric("Recovers the planted top modality", f"{planted['top_modality_accuracy']:.2f}",
                f"{planted['top_modality_accuracy'] - planted['majority_rate']:+.2f} vs majority",
                help=f"Share of {report['n_users']} users whose largest recovered reliance (relative to other users) "
                     f"is their planted top modality; always guessing the most common one scores "
                     f"{planted['majority_rate']:.2f}.")
    c[2].metric("Rank agreement with planted reliance", f"{planted['spearman']:+.2f}",
                help="Mean per-user Spearman correlation between recovered (relative) and planted reliance.")
else:
    c[1].info("No planted truth: this dataset is not synthetic, so only the knockout tests apply.")
if report["has_experts"] and users_ko["top_agreement"] < users_ko["chance"] + USER_KNOCKOUT_MARGIN:
    st.warning(f"On this checkpoint a user's modality reliance does not track what knocking modalities out does to "
               f"their recommendations ({users_ko['top_agreement']:.2f} against chance {users_ko['chance']:.2f}): the "
               "router sends pairs to experts whose modality contributes little to the score. Read the per-item "
               "contributions on Case studies, which the knockouts confirm, rather than the per-user reliance.")

st.plotly_chart(charts.faithfulness_bars(report), key="fid_bars")
if fid.per_user is not None and planted:
    st.plotly_chart(charts.planted_scatter(fid.per_user, planted["per_modality_pearson"]), key="fid_scatter")

with st.expander("Every explanation measured"):
    rows = []
    for name, entry in report["by_estimator"].items():
        row = {"explanation": name, **{f"knockout {k}": v for k, v in entry["knockout"].items() if k != "chance"}}
        for key, label in (("planted", "planted raw"), ("planted_relative", "planted relative")):
            if key in entry:
                row[f"{label}: top modality"] = entry[key]["top_modality_accuracy"]
                row[f"{label}: spearman"] = entry[key]["spearman"]
        rows.append(row)
    show_table(pd.DataFrame(rows), key="fid_table", digits=3, hide_index=True)
    st.caption(f"gates: the routing's reliance Σₑ gₑ·wₑ; contribution: the exact share of the score. Shown in the "
               f"dashboard: {report['estimators']['item']} per item, {report['estimators']['user']} (relative to "
               f"other users) per user. {report['n_users']} users sampled; command: "
               f"`magnet fidelity {sel.name} --users {report['n_users']}`.")
