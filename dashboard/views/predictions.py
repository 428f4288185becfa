"""Predictions: the latest prediction per token, and how the served predictions really do
against the realised 24h outcome and the naive baselines, per day and per category."""

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboard import analytics, data, ui

filters = ui.current_filters()
st.title("Predictions")
with ui.friendly_errors(), st.spinner("Loading predictions…"):
    try:
        latest = ui.load(data.latest_predictions(filters.tokens))
    except data.TableMissing:
        latest = None
if latest is None:
    st.info(
        "No predictions yet: ML_PREDICTIONS is written by the model's assets (`make run`, or the "
        "ml_prediction_job in the Dagster UI). See the README's section on the model."
    )
    st.stop()
if latest.empty:
    st.info("ML_PREDICTIONS is empty for the chosen tokens.")
    st.stop()
version = str(latest["model_version"].iloc[0])
served_by = (
    "the naive baseline (no model passed the promotion gate yet)"
    if version.startswith("baseline:")
    else f"model {version}"
)
st.caption(
    f"Probability that the {latest['horizon'].iloc[0]} return is positive, for the bar opening "
    f"{latest['bar_time'].max():%Y-%m-%d %H:%M} UTC (each token at its latest bar), served by {served_by}."
)
fig = px.bar(
    latest.sort_values("p_up"), x="token", y="p_up", color="category", title="P(up) per token, latest bar",
    range_y=[0, 1],
)  # fmt: skip
fig.add_hline(y=0.5, line_dash="dot", line_color="#888")
st.plotly_chart(fig, width="stretch", key="latest-predictions")
shown = latest.copy()
shown["p_up"] = shown["p_up"].astype(float).round(3)
shown["predicted_return_pct"] = (shown["predicted_return"].astype(float) * 100).round(3)
ui.table(shown.drop(columns=["predicted_return"]), "predictions-latest")

st.subheader("Live accuracy against realised outcomes")
with ui.friendly_errors(), st.spinner("Loading performance…"):
    try:
        perf = ui.load(data.performance(filters.start, filters.end))
    except data.TableMissing:
        perf = None
if perf is None or perf.empty:
    st.info(
        f"No realised outcomes between {filters.start} and {filters.end} yet: a 24h prediction is "
        "scored the day after its outcome is known (ML_PERFORMANCE)."
    )
    st.stop()
overall = perf[perf["scope"] == "all"]
summary = analytics.latest_performance(perf)
left, right = st.columns(2)
metric = left.radio("Metric", ["accuracy", "ic", "brier"], horizontal=True, key="prediction_metric")
by = right.radio("By", ["day", "category"], horizontal=True, key="prediction_breakdown")
if by == "day":
    # Days as categories: one day on a date axis is drawn as milliseconds around midnight.
    days = overall.assign(dt=pd.to_datetime(overall["dt"]).dt.strftime("%Y-%m-%d"))
    fig = px.line(
        days, x="dt", y=metric, color="predictor", markers=True, title=f"{metric} per day, all tokens"
    )
    fig.update_xaxes(type="category", title_text="day (UTC)")
else:
    fig = px.bar(
        summary[summary["scope"] != "all"], x="scope", y=metric, color="predictor", barmode="group",
        title=f"{metric} per category, {filters.start} to {filters.end}",
    )  # fmt: skip
st.plotly_chart(fig, width="stretch", key="performance-chart")
ui.table(summary.round(4), f"performance-{filters.start}-{filters.end}")
