"""Market overview: the latest price, 1h/24h/7d change, volume and market cap of every token by
category, a heat map of the last day's hourly returns, and what changed most since yesterday."""

import pandas as pd
import streamlit as st

from dashboard import analytics, charts, data, ui

filters = ui.current_filters()
st.title("Market overview")
with ui.friendly_errors(), st.spinner("Loading the latest bars…"):
    recent = ui.load(data.recent_hourly(filters.end, filters.tokens))
    daily = ui.load(data.daily_on(filters.end, filters.tokens))
snap = analytics.snapshot(recent, daily)
if snap.empty:
    st.info(f"No hourly bars for the chosen tokens on {filters.end} or the day before.")
    st.stop()

as_of = snap["bar_time"].max()
st.caption(f"As of the bar opening {as_of:%Y-%m-%d %H:%M} UTC · prices in USDT, caps in USD (CoinGecko)")
cols = st.columns(4)
cols[0].metric("Tokens", len(snap))
caps = snap["market_cap_usd"].dropna()
cols[1].metric("Total market cap", f"${caps.sum() / 1e9:,.1f} B" if len(caps) else "n/a (no CoinGecko data)")
cols[2].metric("24h volume", f"${snap['volume_24h_usd'].sum() / 1e9:,.2f} B")
median = snap["change_24h"].median()
cols[3].metric("Median 24h change", "n/a" if median != median else f"{median * 100:+.2f} %")

shown = pd.DataFrame(
    {
        "token": snap["token"],
        "category": snap["category"],
        "price": snap["close"].astype(float).map(analytics.price_text),
        "1h %": (snap["change_1h"] * 100).round(2),
        "24h %": (snap["change_24h"] * 100).round(2),
        "7d %": (snap["change_7d"] * 100).round(2),
        "24h volume $M": (snap["volume_24h_usd"] / 1e6).round(2),
        "volume vs day before %": (snap["volume_change"] * 100).round(1),
        "market cap $B": (snap["market_cap_usd"] / 1e9).round(3),
        "cap vs day before %": (snap["market_cap_change"] * 100).round(2),
    }
)
st.subheader("Tokens by category")
ui.table(shown.sort_values(["category", "market cap $B"], ascending=[True, False]), "overview", all_rows=True)

st.subheader("Hourly returns, last 24 bars")
order = snap.sort_values(["category", "token"])["token"].tolist()
st.plotly_chart(charts.returns_heatmap(recent, order), width="stretch", key="returns-heatmap")

st.subheader("What changed most since yesterday")
changes = analytics.biggest_changes(
    snap,
    {
        "change_24h": "price 24h",
        "volume_change": "volume vs day before",
        "market_cap_change": "cap vs day before",
    },
)
ui.table(changes, "biggest-changes", caption="The five largest moves either way per measure, in percent.")
