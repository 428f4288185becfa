"""Entry point of the dashboard: ``streamlit run dashboard/app.py`` (``make dashboard``).

The sidebar's filters live here, not in the pages, so they keep their values when a user moves
between pages."""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts this folder on sys.path, not the repository: make `dashboard` importable
# from a plain checkout as well as from the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamlit as st

from dashboard import ui

PAGES = [
    st.Page("views/overview.py", title="Market overview", icon=":material/monitoring:", default=True),
    st.Page(
        "views/explorer.py", title="Token explorer", icon=":material/candlestick_chart:", url_path="explorer"
    ),
    st.Page("views/categories.py", title="Categories", icon=":material/category:", url_path="categories"),
    st.Page("views/correlations.py", title="Correlations", icon=":material/hub:", url_path="correlations"),
    st.Page("views/predictions.py", title="Predictions", icon=":material/target:", url_path="predictions"),
    st.Page("views/venues.py", title="Venues", icon=":material/compare_arrows:", url_path="venues"),
    st.Page("views/live.py", title="Live", icon=":material/sensors:", url_path="live"),
    st.Page("views/health.py", title="Data health", icon=":material/health_and_safety:", url_path="health"),
]

st.set_page_config(page_title="crypto-analytics", page_icon=":material/insights:", layout="wide")
st.sidebar.title("crypto-analytics")
ui.live_marker()
st.session_state["filters"] = ui.sidebar()
st.navigation(PAGES).run()
