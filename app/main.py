"""MAGNET Studio — interpretability dashboard over MAGNET checkpoints.

    streamlit run app/main.py                         # checkpoints/ beside app/
    streamlit run app/main.py -- --checkpoints DIR    # another checkpoint root
    MAGNET_CHECKPOINTS=DIR streamlit run app/main.py
"""
from __future__ import annotations

import sys
from pathlib import Path

_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

import streamlit as st  # noqa: E402

from app import state  # noqa: E402
from app.paths import ASSETS  # noqa: E402
from app.theme import stylesheet  # noqa: E402

PAGES = (
    ("views/overview.py", "Overview", ":material/dashboard:", "overview"),
    ("views/routing.py", "Routing dynamics", ":material/timeline:", "routing"),
    ("views/experts.py", "Experts", ":material/hub:", "experts"),
    ("views/case_studies.py", "Case studies", ":material/person_search:", "case-studies"),
    ("views/faithfulness.py", "Faithfulness", ":material/verified:", "faithfulness"),
    ("views/compare.py", "Compare", ":material/compare_arrows:", "compare"),
    ("views/embedding.py", "Embedding map", ":material/scatter_plot:", "embedding"),
)

st.set_page_config(page_title="MAGNET Studio", page_icon=str(ASSETS / "favicon.png"), layout="wide")
st.logo(str(ASSETS / "logo.svg"), size="large")
st.html(f"<style>{stylesheet()}</style>")
here = Path(__file__).resolve().parent
nav = st.navigation([st.Page(str(here / path), title=title, icon=icon, url_path=url, default=(j == 0))
                     for j, (path, title, icon, url) in enumerate(PAGES)])
st.session_state["_selection"] = state.sidebar()
nav.run()
