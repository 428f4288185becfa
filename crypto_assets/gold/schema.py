"""The documented schemas of the gold tables: one source for the Dagster column schema (shown in
the UI), the Snowflake column comments and docs/data-dictionary.md."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import TableColumn, TableSchema

from crypto_assets.silver.config import BAR_COLUMNS, HISTORY, FeaturePlan
from crypto_assets.silver.transformers import FeatureColumn

Column = tuple[str, str, str]  # name, Spark type, description

COMMON: dict[str, tuple[str, str]] = {
    "dt": ("date", "UTC day of the row; the table's partition and clustering key."),
    "bar_time": ("timestamp", "Bar open time, UTC (TIMESTAMP_NTZ, UTC wall clock)."),
    "token": ("string", "Canonical token symbol (universe.yaml)."),
    "category": ("string", "Token category: Payment, DeFi, Layer 1, Meme, NFT or Infrastructure."),
    "symbol": ("string", "Exchange pair the bars come from, e.g. BTCUSDT (prices in USDT)."),
    "open": ("double", "First observed price of the bar."),
    "high": ("double", "Highest price of the bar."),
    "low": ("double", "Lowest price of the bar."),
    "close": ("double", "Last observed price of the bar."),
    "volume": ("double", "Base-asset volume."),
    "quote_volume": ("double", "Quote-asset (USDT) volume; null where the source lacks it."),
    "trade_count": ("bigint", "Number of trades; null where the source lacks it."),
    "taker_buy_base_volume": ("double", "Base volume bought by takers; null where the source lacks it."),
    "vwap": ("double", "The bar's own VWAP: quote_volume / volume."),
    "bar_source": (
        "string",
        "Where the bar comes from: native_<interval> (a kline of the bar's own interval, fetched from the exchange or imported; preferred) or resampled_<interval> (from finer bars); null on a gap.",
    ),
    "bars_observed": ("int", "Source bars the exchange delivered inside this bar."),
    "is_complete": ("boolean", "True when every source bar of the interval was delivered."),
    "is_gap": ("boolean", "True when no source bar was delivered (an outage): features are null."),
    "realized_vol_intrabar": (
        "double",
        "Annualised volatility of the source bars' log returns inside the bar.",
    ),
    HISTORY: ("int", "Observed bars in the longest feature look-back: warm-up and gap indicator."),
    "market_cap_usd": (
        "double",
        "CoinGecko USD market cap at the bar's close (last hourly point); null if unavailable.",
    ),
    "price_usd": ("double", "CoinGecko USD price at the bar's close; null if unavailable."),
    "circulating_supply": ("double", "Implied circulating supply: market_cap_usd / price_usd."),
}
INDEX_COLUMNS: list[Column] = [
    ("dt", "date", COMMON["dt"][1]),
    ("category", "string", COMMON["category"][1]),
    ("interval", "string", "Bar interval of the index: 1h or 1d."),
    ("bar_time", "timestamp", COMMON["bar_time"][1]),
    ("constituents", "int", "Tokens of the category with a return for the bar."),
    ("equal_weighted_return", "double", "Mean 1-bar simple return of the constituents."),
    ("cap_weighted_constituents", "int", "Constituents with a market cap at the previous bar's close."),
    (
        "cap_weighted_return",
        "double",
        "Market-cap-weighted 1-bar return; weights are caps at the previous close.",
    ),
    ("total_market_cap_usd", "double", "Sum of the weights (USD market caps at the previous close)."),
]
CORRELATION_COLUMNS: list[Column] = [
    ("dt", "date", "Day whose trailing window the correlation covers (window ends at the day's end)."),
    ("token_a", "string", "First token of the pair."),
    ("token_b", "string", "Second token of the pair (both orders and the diagonal are stored)."),
    (
        "correlation",
        "double",
        "Pearson correlation of hourly log returns over the window, clamped to [-1, 1].",
    ),
    ("observations", "int", "Hours in the window where both tokens have a return."),
    ("window_days", "int", "Length of the trailing window in days."),
]

VENUE_COLUMNS: list[Column] = [
    ("dt", "date", COMMON["dt"][1]),
    ("bar_time", "timestamp", "Hour the bar opens, UTC."),
    ("token", "string", COMMON["token"][1]),
    ("category", "string", COMMON["category"][1]),
    ("venue", "string", "Exchange the series trades on: binance (canonical), binance_us, ..."),
    ("market", "string", "Market of the venue: spot, usdm_futures or coinm_futures."),
    ("symbol", "string", "The venue's pair, e.g. BTCUSDC."),
    ("quote_asset", "string", "Asset the prices are quoted in: USDT, USDC, USD..."),
    ("is_canonical", "boolean", "True for the series silver and gold features are computed from."),
    ("open", "double", "First observed price of the hour, in the quote asset."),
    ("high", "double", "Highest price of the hour, in the quote asset."),
    ("low", "double", "Lowest price of the hour, in the quote asset."),
    ("close", "double", "Last observed price of the hour, in the quote asset."),
    ("volume", "double", COMMON["volume"][1]),
    ("quote_volume", "double", "Quote-asset volume; null where the source lacks it."),
    ("trade_count", "bigint", COMMON["trade_count"][1]),
    ("bar_source", "string", COMMON["bar_source"][1]),
    ("bars_observed", "int", "Source bars the venue delivered inside the hour."),
    ("is_gap", "boolean", "True when the venue delivered no bar in the hour."),
    (
        "quote_usd",
        "double",
        "USD price of one unit of the quote asset at the hour's close: 1 for USD, a cross rate on the"
        " same venue (BTCUSD / BTCUSDC) where it quotes USD too, else CoinGecko's USD price.",
    ),
    (
        "quote_usd_low",
        "double",
        "Lowest USD price of the quote asset in the hour (cross rates at the finest bars).",
    ),
    ("quote_usd_high", "double", "Highest USD price of the quote asset in the hour."),
    (
        "quote_usd_source",
        "string",
        "Where quote_usd comes from: par, coingecko, or cross:<venue>/<market> <tokens> USD/<quote> <interval>.",
    ),
    ("close_usd", "double", "close x quote_usd: the close in USD."),
    ("canonical_symbol", "string", "The token's canonical pair (Binance spot), the basis reference."),
    ("canonical_close", "double", "Close of the canonical pair in the same hour."),
    ("basis_bps", "double", "close / canonical_close - 1, in basis points (quote units, not converted)."),
    ("basis_usd_bps", "double", "close_usd / the canonical close in USD - 1, in basis points."),
]


def bar_columns() -> list[Column]:
    """gold_bars_<interval>: the silver bars as they are, for intervals without features (5m)."""
    return [(n, *COMMON[n]) for n in ("dt", "bar_time", *BAR_COLUMNS) if n != "open_time"]


def _feature(column: FeatureColumn) -> Column:
    return column.name, "double", column.description


def market_feature_columns(plan: FeaturePlan, horizons: Sequence[str]) -> list[Column]:
    """gold_market_features (1h) and gold_daily_market_features (1d), in table order."""
    columns: list[Column] = [(n, *COMMON[n]) for n in ("dt", "bar_time")]
    columns += [(n, *COMMON[n]) for n in (*BAR_COLUMNS, HISTORY) if n != "open_time"]
    columns += [_feature(c) for c in plan.columns]
    columns += [(n, *COMMON[n]) for n in ("market_cap_usd", "price_usd", "circulating_supply")]
    for h in horizons:
        columns.append(
            (
                f"target_return_{h}",
                "double",
                f"TARGET: close {h} later / close - 1 (forward; never a feature).",
            )
        )
        columns.append((f"target_log_return_{h}", "double", f"TARGET: ln(close {h} later / close)."))
    return columns


def table_schema(columns: Sequence[Column]) -> TableSchema:
    return TableSchema(columns=[TableColumn(name, kind, description=text) for name, kind, text in columns])


def _snowflake_type(kind: str) -> str:
    return {
        "string": "VARCHAR",
        "double": "FLOAT",
        "int": "NUMBER(38,0)",
        "bigint": "NUMBER(38,0)",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP_NTZ",
    }[kind]


def data_dictionary(tables: dict[str, tuple[str, str, list[Column]]]) -> str:
    """docs/data-dictionary.md: ``tables`` maps a table to (grain, description, columns)."""
    lines = [
        "# Data dictionary: the gold tables",
        "",
        "Generated by `crypto-analytics docs` from `crypto_assets/gold/schema.py` and",
        "`crypto_assets/config/pipeline.yaml` (a test fails when it is out of date). The same",
        "descriptions are the Snowflake column comments and the column schemas in the Dagster UI.",
        "",
        "Every table lives in `$SNOWFLAKE_DATABASE.$SNOWFLAKE_SCHEMA` (default `CRYPTO.ANALYTICS`), is",
        "clustered by `DT` and is replaced one UTC day at a time in a single transaction, so re-running",
        "a partition never duplicates or loses a row.",
    ]
    for table, (grain, description, columns) in tables.items():
        lines += ["", f"## {table.upper()}", "", f"Grain: {grain}. {description}", ""]
        lines += ["| column | type | description |", "|---|---|---|"]
        lines += [f"| `{n.upper()}` | {_snowflake_type(k)} | {d.replace('|', '/')} |" for n, k, d in columns]
    return "\n".join(lines) + "\n"


def _live(name: str, text: str, kind: str = "double") -> Column:
    return name, kind, text


# gold_live_market (crypto_assets/live): one row per token and closed minute of the live stream.
LIVE_COLUMNS: list[Column] = [
    (n, *COMMON[n]) for n in ("dt", "bar_time", "token", "category", "symbol")
] + [
    _live("quote_asset", "Currency the pair is quoted in (USDT for the stream's pairs).", "string"),
    _live("close_time", "Minute close time, UTC: bar_time + 1 minute.", "timestamp"),
    *[(n, *COMMON[n]) for n in ("open", "high", "low", "close", "volume", "quote_volume", "trade_count")],
    (("taker_buy_base_volume", *COMMON["taker_buy_base_volume"])),
    _live("is_gap", "True for a minute neither the stream nor its REST repair delivered (prices null).", "boolean"),
    _live("trades", "Trades of the minute held in the lake (the trade stream, skipped ids repaired from"
          " REST); equals trade_count once every trade is in.", "bigint"),
    _live("buy_volume", "Base volume of the minute's trades whose buyer took liquidity (maker flag false)."),
    _live("sell_volume", "Base volume of the minute's trades whose seller took liquidity (maker flag true)."),
    _live("trade_imbalance", "(buy_volume - sell_volume) / (buy_volume + sell_volume), in [-1, 1]."),
    _live("vwap", "The minute's VWAP from its trades: sum(price x quantity) / sum(quantity)."),
    _live("largest_trade_quote", "The minute's largest trade, price x quantity in the quote currency."),
    _live("return_1m", "ln(close / the previous minute's close); null after a gap."),
    _live("return_15m", "ln(close / close 15 minutes earlier)."),
    _live("realized_volatility_15m", "sqrt(sum of squared 1m log returns over the last 15 minutes); null"
          " below 80 % of them observed."),
    _live("vwap_15m", "sum(quote_volume) / sum(volume) over the last 15 minutes; same warm-up rule."),
    _live("trade_imbalance_15m", "Taker buy minus sell over both, over the last 15 minutes' trades."),
    _live("return_60m", "ln(close / close 60 minutes earlier)."),
    _live("realized_volatility_60m", "As realized_volatility_15m, over 60 minutes."),
    _live("vwap_60m", "As vwap_15m, over 60 minutes."),
    _live("trade_imbalance_60m", "As trade_imbalance_15m, over 60 minutes."),
    _live("loaded_at", "When the load that wrote this row ran, UTC: loaded_at - close_time is its latency.",
          "timestamp"),
]  # fmt: skip
