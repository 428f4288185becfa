"""Token explorer: candles with volume, Bollinger and VWAP overlays, MACD / RSI / ATR panels, for
any token, date range and interval. Outages are drawn as gaps, not as lines across them."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from dashboard import analytics, charts, data, ui

filters = ui.current_filters()
st.title("Token explorer")
tokens = filters.shown_tokens
left, middle, right = st.columns([1, 2, 2])
token = left.selectbox(
    "Token", tokens, index=tokens.index("BTC") if "BTC" in tokens else 0, key="explorer_token"
)
overlays = middle.multiselect("Overlays", charts.OVERLAYS, default=["Bollinger"], key="explorer_overlays")
panels = right.multiselect("Panels", charts.PANELS, default=["RSI"], key="explorer_panels")

with ui.friendly_errors(), st.spinner(f"Loading {token} {filters.interval} bars…"):
    bars = ui.load(data.bars(filters.interval, token, filters.start, filters.end))
if bars.empty:
    st.info(f"No {filters.interval} bars for {token} between {filters.start} and {filters.end}.")
    st.stop()
start = pd.Timestamp(filters.start)
end = pd.Timestamp(filters.end + timedelta(days=1))
grid = analytics.on_grid(bars, filters.interval, start, end)
missing = int(grid["is_gap"].sum())
not_loaded = int(grid["not_loaded"].sum())
gaps = missing - not_loaded
st.caption(
    f"{len(grid) - missing} of {len(grid)} {filters.interval} bars observed"
    + (f"; {gaps} missing or gap bars (exchange) are shaded red and left blank" if gaps else "")
    + (f"; {not_loaded} bars not loaded (days never run) are shaded grey" if not_loaded else "")
    + "."
)
st.plotly_chart(
    charts.candlestick(grid, token, filters.interval, overlays, panels), width="stretch", key="candles"
)
# The bars behind the chart, as CSV (a grid of every bar would only repeat the chart).
st.download_button(
    f"Download these {filters.interval} bars (CSV)",
    grid.to_csv(index=False).encode(),
    file_name=f"{token}-{filters.interval}-{filters.start}-{filters.end}.csv",
    mime="text/csv",
    key="download-bars",
)
