"""Correlations: a clustered heat map of hourly-return correlations for a chosen day and window,
and each token's beta to BTC."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from dashboard import analytics, charts, data, ui

filters = ui.current_filters()
st.title("Correlations")
with ui.friendly_errors(), st.spinner("Loading the days with correlations…"):
    days = ui.load(data.correlation_days())
if days.empty:
    st.info("GOLD_CORRELATIONS is empty: run `make run` to compute it.")
    st.stop()
available = [pd.Timestamp(d).date() for d in days["dt"]]
stored_window = int(days["window_days"].iloc[0])
in_range = [d for d in available if d <= filters.end] or available
left, right = st.columns(2)
day = left.selectbox("Day", in_range, key="correlation_day")
# The stored window comes from gold; shorter ones are computed here from the hourly returns.
windows = {f"{stored_window} days (gold)": None, "14 days": 14, "7 days": 7, "1 day": 1}
window = right.selectbox("Window", list(windows), key="correlation_window")

with ui.friendly_errors(), st.spinner("Computing correlations…"):
    if windows[window] is None:
        matrix = analytics.correlation_matrix(ui.load(data.correlations(day, filters.tokens)))
    else:
        returns = ui.load(
            data.hourly_log_returns(day - timedelta(days=windows[window] - 1), day, filters.tokens)
        )
        matrix = analytics.correlation_from_returns(returns)
if matrix.empty or matrix.notna().sum().sum() == 0:
    st.info(f"Not enough overlapping hourly returns for a {window} window ending {day}.")
    st.stop()
order = analytics.cluster_order(matrix)
st.plotly_chart(
    charts.correlation_heatmap(matrix, order, f"Correlation of hourly log returns, {window} to {day}"),
    width="stretch",
    key="correlation-heatmap",
)
st.caption(
    "Tokens are ordered by average-linkage clustering on 1 - correlation: co-moving tokens sit together."
)
pairs = matrix.reindex(index=order, columns=order).round(3).reset_index(names="token")
st.download_button(
    "Download the matrix (CSV)",
    pairs.to_csv(index=False).encode(),
    file_name=f"correlations-{day}-{window.split()[0]}d.csv",
    mime="text/csv",
    key="download-correlations",
)

st.subheader("Beta to BTC")
with ui.friendly_errors():
    beta = ui.load(data.betas(filters.interval, day, filters.tokens))
if beta.empty:
    st.info(
        f"No beta to BTC on {day} yet (it needs {7 if filters.interval == '1h' else 90} days of history)."
    )
else:
    label = "7 days of hourly returns" if filters.interval == "1h" else "90 days of daily returns"
    st.plotly_chart(
        charts.bars_chart(beta, "token", "beta", "category", f"Beta to BTC over {label}, {day}"),
        width="stretch",
        key="beta-chart",
    )
    ui.table(beta.round({"beta": 3}), f"beta-{filters.interval}-{day}")
