"""Live: the stream's closed minutes as GOLD_LIVE_MARKET holds them (`make live`), refreshed
every 15 s: how old the newest bar is, a token's last two hours of 1m candles, and each token's
latest minute with its trade features."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from dashboard import charts, data, ui

WINDOW = timedelta(hours=2)
REFRESH_SECONDS = 15

st.title("Live")
st.caption(
    "Closed 1m candles from `crypto-analytics stream`, refined by the live slice (bronze rules,"
    " trade features, past-only 15m/60m features) and loaded into GOLD_LIVE_MARKET about a minute"
    " after each close. Start it with `make live`."
)


@st.fragment(run_every=REFRESH_SECONDS)
def live_view() -> None:
    now = datetime.now(UTC)
    since = (now - WINDOW).replace(tzinfo=None)
    try:
        minutes = ui.load_live(data.live_minutes(since, ()))
    except data.TableMissing:
        st.info(
            "No live data yet: the warehouse has no GOLD_LIVE_MARKET. Run `make live` (the Dagster"
            " daemon and the stream); the first minutes arrive about a minute after they close."
        )
        return
    except data.DashboardDataError as exc:
        st.error(str(exc))
        return
    observed = minutes[~minutes["is_gap"].astype(bool)] if not minutes.empty else minutes
    if observed.empty:
        st.info("No closed minute in the last two hours: is `crypto-analytics stream` running?")
        return
    newest = pd.Timestamp(observed["close_time"].max()).tz_localize(UTC)
    age = (now - newest).total_seconds()
    tokens = sorted(observed["token"].unique())
    label = "Live" if age <= ui.LIVE_STALE_SECONDS else "Stale"
    st.badge(
        f"{label}: newest bar closed {ui.age_text(age)} ago ({newest:%H:%M} UTC), {len(tokens)} tokens",
        icon=":material/sensors:",
        color="red" if label == "Live" else "gray",
    )
    token = st.selectbox(
        "Token", tokens, index=tokens.index("BTC") if "BTC" in tokens else 0, key="live_token"
    )
    bars = minutes[minutes["token"] == token].sort_values("bar_time")
    st.plotly_chart(charts.candlestick(bars, token, "1m", overlays=["VWAP"], panels=[]), width="stretch")
    latest = (
        observed.sort_values("bar_time")
        .groupby("token", as_index=False)
        .tail(1)
        .assign(latency_s=lambda f: (f["loaded_at"] - f["close_time"]).dt.total_seconds().round(1))
    )
    ui.table(
        latest[
            [
                "token",
                "category",
                "bar_time",
                "close",
                "return_15m",
                "return_60m",
                "realized_volatility_60m",
                "trades",
                "trade_imbalance",
                "vwap",
                "largest_trade_quote",
                "latency_s",
            ]
        ].sort_values("token"),
        "live_latest",
        caption="Each token's newest closed minute. trade_imbalance: (taker buy - taker sell) / both, in"
        " base volume; largest_trade_quote: the minute's largest trade in quote currency; latency_s:"
        " from the candle's close to the load that last wrote it.",
    )


live_view()
