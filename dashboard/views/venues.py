"""Venues: one token on every venue and market the lake holds (Binance spot, Binance.US,
futures...), in USD side by side, the basis against the canonical pair, and what each quote
asset (USDT, USDC) was worth in dollars: where an imported venue and a stablecoin de-peg show."""

import pandas as pd
import streamlit as st

from crypto_assets.pipeline_config import load_pipeline_config
from dashboard import charts, data, ui

filters = ui.current_filters()
st.title("Venues")
with ui.friendly_errors(), st.spinner("Loading the venues…"):
    try:
        tokens = ui.load(data.venue_tokens(filters.start, filters.end, filters.tokens))
    except data.TableMissing:
        tokens = None
if tokens is None or tokens.empty:
    st.info(
        f"GOLD_VENUE_PRICES has no rows between {filters.start} and {filters.end}: run `make run`"
        " (every venue in bronze lands there, the canonical Binance spot pairs included)."
    )
    st.stop()
labels = {f"{r.token} ({r.series} series)": r.token for r in tokens.itertuples()}
token = labels[st.selectbox("Token", list(labels), key="venue_token")]

with ui.friendly_errors(), st.spinner(f"Loading {token} on every venue…"):
    prices = ui.load(data.venue_prices(token, filters.start, filters.end))
prices["series"] = prices["venue"] + "/" + prices["market"] + " " + prices["symbol"]
prices["price"] = prices["close_usd"].fillna(prices["close"]).astype(float)
unconverted = sorted(prices.loc[prices["close_usd"].isna() & prices["close"].notna(), "series"].unique())
st.plotly_chart(
    charts.lines(prices, "bar_time", "price", "series", f"{token}: hourly close per venue", "price (USD)"),
    width="stretch",
    key="venue-prices",
)
st.caption(
    "Each pair's close converted to USD with its quote asset's dollar price of the hour (a cross"
    " rate on the same venue, else CoinGecko; USD pairs as they are)."
    + (f" Not converted (no USD price of the quote): {', '.join(unconverted)}." if unconverted else "")
)

others = prices[~prices["is_canonical"].astype(bool)]
if others.empty:
    st.info(
        f"Only {token}'s canonical Binance spot pair is in the lake for these days. Other venues and"
        " markets come from files: `crypto-analytics import BTCUSDC_1m.csv --venue binance_us`, then"
        " `crypto-analytics run --no-ingest` over their days."
    )
else:
    basis = others.dropna(subset=["basis_usd_bps"]).astype({"basis_usd_bps": float})
    st.plotly_chart(
        charts.lines(
            basis, "bar_time", "basis_usd_bps", "series", f"{token}: basis to the canonical pair, in USD",
            "basis (bp)",
        ),
        width="stretch",
        key="venue-basis",
    )  # fmt: skip
    st.caption(
        "close in USD / the canonical pair's close in USD - 1, in basis points. In quote units"
        " (basis_bps in the table) a pair quoted in a de-pegged stablecoin sits apart by the de-peg."
    )

summary = (
    prices.groupby(["venue", "market", "symbol", "quote_asset"], sort=True)
    .agg(
        hours=("bar_time", "count"),
        gap_hours=("is_gap", "sum"),
        mean_basis_bps=("basis_bps", lambda s: s.astype(float).mean()),
        mean_basis_usd_bps=("basis_usd_bps", lambda s: s.astype(float).mean()),
        max_abs_basis_usd_bps=("basis_usd_bps", lambda s: s.astype(float).abs().max()),
        usd_price_from=("quote_usd_source", lambda s: ", ".join(sorted({str(v).split(" ")[0] for v in s.dropna()}))),
    )
    .reset_index()
    .round(2)
)  # fmt: skip
ui.table(summary, f"venues-{token}-{filters.start}-{filters.end}")

st.subheader("Quote assets in USD")
with ui.friendly_errors():
    quotes = ui.load(data.quote_prices(filters.start, filters.end))
if quotes.empty:
    st.info("No USD price of a quote asset in range (no CoinGecko data, no venue that quotes USD too).")
    st.stop()
threshold = load_pipeline_config().peg_threshold
quotes["evidence"] = quotes["quote_asset"] + " via " + quotes["source"].str.split(" ").str[0]
worst = quotes.assign(
    usd=quotes[["quote_usd_low", "quote_usd_high"]]
    .astype(float)
    .apply(lambda r: r.iloc[0] if 1 - r.iloc[0] >= r.iloc[1] - 1 else r.iloc[1], axis=1)
)
fig = charts.lines(
    worst, "bar_time", "usd", "evidence", "Each quote asset's furthest price from $1 in the hour", "USD"
)
for level in (1 - threshold, 1 + threshold):
    fig.add_hline(y=level, line_dash="dot", line_color="#c44")
st.plotly_chart(fig, width="stretch", key="quote-usd")
breaches = worst[(worst["usd"] - 1).abs() > threshold]
st.caption(
    f"Dotted: the peg band, $1 +- {threshold:.0%} (gold_venue_prices' stablecoin_peg check). "
    + (
        f"{len(breaches)} hour(s) outside it, worst {breaches['usd'].iloc[(breaches['usd'] - 1).abs().argmax()]:.4f}"
        f" ({breaches['evidence'].iloc[(breaches['usd'] - 1).abs().argmax()]})."
        if len(breaches)
        else "No hour outside it."
    )
)
shown = pd.DataFrame(breaches[["bar_time", "evidence", "usd", "source"]]).round({"usd": 5})
if len(shown):
    ui.table(shown, f"peg-breaches-{filters.start}-{filters.end}")
