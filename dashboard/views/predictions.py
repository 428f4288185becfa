"""Predictions: the volatility forecast (served model or baseline, beside HAR-RV and the last
24 hours), forecast against realised, the gate's verdict and scores; then the direction model's
honest state, its P(up) per token and how the served predictions really do."""

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboard import analytics, data, ui

VOL_NAMES = {
    "forecast": "served forecast",
    "model": "model (HAR-X)",
    "har_rv": "HAR-RV",
    "ewma": "EWMA",
    "last_24h": "last 24h",
    "realized": "realised",
}


def _optional(query: data.Query) -> pd.DataFrame | None:
    """A query whose table may not exist yet (None then)."""
    try:
        return ui.load(query)
    except data.TableMissing:
        return None


def _latest_run(runs: pd.DataFrame | None, kind: str) -> pd.Series | None:
    if runs is None or runs.empty or kind not in set(runs["kind"]):
        return None
    return runs[runs["kind"] == kind].iloc[0]


def _percent(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        out[column] = (out[column].astype(float) * 100).round(1)
    return out


filters = ui.current_filters()
st.title("Predictions")
with ui.friendly_errors(), st.spinner("Loading forecasts…"):
    runs = _optional(data.model_runs())
    vols = _optional(data.latest_vol_forecasts(filters.tokens))

st.header("Volatility over the next 24 hours")
vol_run = _latest_run(runs, "volatility")
if vols is None or vols.empty:
    st.info(
        "No volatility forecasts yet: VOL_FORECASTS is written by the vol_forecasts asset (`make run`,"
        " or ml_prediction_job in the Dagster UI) for every non-stablecoin token and hour."
    )
else:
    version = str(vols["model_version"].iloc[0])
    trained = (
        f" Latest candidate {vol_run['model_version']} ({int(vol_run['training_rows']):,} training rows,"
        f" {vol_run['training_start']} to {vol_run['training_end']}): {vol_run['verdict']}."
        if vol_run is not None
        else ""
    )
    if version.startswith("baseline:"):
        st.warning(
            f"No volatility model has passed its gate yet: the forecasts come from the best baseline,"
            f" **{version.removeprefix('baseline:')}**.{trained}",
            icon=":material/gpp_maybe:",
        )
    else:
        st.success(f"Served by **{version}**, which beat every baseline out of fold.{trained}")
    st.caption(
        "Annualised volatility forecast for the 24 hours after each token's latest hour"
        f" ({vols['bar_time'].max():%Y-%m-%d %H:%M} UTC), beside HAR-RV and the last 24 hours' realised"
        " volatility. Stablecoins are left out: their risk is the peg (Data health)."
    )
    long = vols.melt(
        id_vars=["token", "category"], value_vars=["forecast", "har_rv", "last_24h"], var_name="predictor"
    )
    long["predictor"] = long["predictor"].map(VOL_NAMES)
    long["value"] = long["value"].astype(float) * 100
    fig = px.bar(
        long, x="token", y="value", color="predictor", barmode="group",
        title="Annualised volatility, next 24h (%)", labels={"value": "%"},
    )  # fmt: skip
    st.plotly_chart(fig, width="stretch", key="vol-latest")
    shown = _percent(vols, ["forecast", "har_rv", "ewma", "last_24h"]).rename(
        columns={c: f"{VOL_NAMES[c]} %" for c in ("forecast", "har_rv", "ewma", "last_24h")}
    )
    ui.table(shown, "volatility-latest")

    st.subheader("Forecast against realised")
    tokens = list(vols["token"])
    token = st.selectbox(
        "Token", tokens, index=tokens.index("BTC") if "BTC" in tokens else 0, key="vol_token"
    )
    with ui.friendly_errors(), st.spinner("Loading history…"):
        history = ui.load(data.vol_forecast_history(token, 7))
        backtest = _optional(data.vol_backtest(token))
    known = int(history["realized"].notna().sum())
    st.caption(
        f"{token}: each hour's forecast of the next 24 hours and the volatility those 24 hours then had"
        f" (known for {known} of the {len(history)} hours shown; the last day's are not in yet)."
    )
    lines = history.melt(
        id_vars=["bar_time"], value_vars=["realized", "forecast", "har_rv", "ewma"], var_name="series"
    )
    lines["series"] = lines["series"].map(VOL_NAMES)
    lines["value"] = lines["value"].astype(float) * 100
    fig = px.line(
        lines.dropna(), x="bar_time", y="value", color="series",
        title=f"{token}: forecast vs realised 24h volatility (%), last 7 days", labels={"value": "%"},
    )  # fmt: skip
    st.plotly_chart(fig, width="stretch", key="vol-history")
    if backtest is not None and len(backtest):
        walk = backtest.melt(
            id_vars=["bar_time"], value_vars=["realized", "model", "har_rv", "ewma"], var_name="series"
        )
        walk["series"] = walk["series"].map(VOL_NAMES)
        walk["value"] = walk["value"].astype(float) * 100
        fig = px.line(
            walk, x="bar_time", y="value", color="series",
            title=f"{token}: walk-forward validation of {backtest['model_version'].iloc[0]} (out of fold, %)",
            labels={"value": "%"},
        )  # fmt: skip
        st.plotly_chart(fig, width="stretch", key="vol-backtest")

    if vol_run is not None:
        st.subheader("The gate: out-of-fold scores")
        with ui.friendly_errors():
            metrics = _optional(data.model_metrics(str(vol_run["model_version"])))
        if metrics is not None and len(metrics):
            table = metrics[metrics["metric"].isin(["qlike", "rmse_log_var"])].pivot_table(
                index=["scope", "metric"], columns="predictor", values="value"
            )
            table = table.reset_index()
            st.caption(
                "Lower is better. QLIKE (y/f - log(y/f) - 1) is the loss that ranks variance forecasts"
                " correctly with a noisy realised proxy; RMSE of log variance beside it. A model serves"
                " only with both below every baseline's."
            )
            ui.table(table[table["scope"] == "all"].round(4), "volatility-gate")
            with st.expander("Per category"):
                ui.table(table[table["scope"] != "all"].round(4), "volatility-gate-per-category")

st.header("Direction: P(up) over 24 hours")
direction_run = _latest_run(runs, "direction")
with ui.friendly_errors(), st.spinner("Loading predictions…"):
    latest = _optional(data.latest_predictions(filters.tokens))
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
if version.startswith("baseline:"):
    verdict = (
        f" Latest candidate {direction_run['model_version']}: {direction_run['verdict']}."
        if direction_run is not None
        else ""
    )
    st.info(
        "No direction model has beaten its baselines: the direction of a 24h return is close to"
        f" unpredictable, so P(up) comes from **{version.removeprefix('baseline:')}**"
        + (
            " (each token's share of up moves among the outcomes known at each day's start: near 0.5"
            " by nature, not a fault)."
            if version == "baseline:base_rate"
            else "."
        )
        + verdict,
        icon=":material/info:",
    )
    served_by = "the naive baseline"
else:
    served_by = f"model {version}"
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
