"""Gold layer: the unified, ML- and analytics-ready tables, loaded into Snowflake.

Each table replaces its partition's rows in one transaction (delete the day window, COPY the new
rows), is clustered by ``DT`` and carries a comment on every column (``gold/schema.py``).
"""

from collections.abc import Iterator
from math import ceil

from dagster import AssetCheckResult, AssetExecutionContext, AssetsDefinition, Output
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crypto_assets.checks import quality_check_specs, validator_specs
from crypto_assets.gold.schema import (
    CORRELATION_COLUMNS,
    INDEX_COLUMNS,
    LIVE_COLUMNS,
    VENUE_COLUMNS,
    Column,
    bar_columns,
    data_dictionary,
    market_feature_columns,
    table_schema,
)
from crypto_assets.gold.transforms import category_index, market_features, rolling_correlations, venue_prices
from crypto_assets.partitions import daily_asset, window_input
from crypto_assets.pipeline_config import DAY_SECONDS, bars_in, load_pipeline_config, parse_duration
from crypto_assets.publishing import publish
from crypto_assets.silver import validators as v
from crypto_assets.silver.assets import PRICE_BOUNDS
from crypto_assets.silver.config import BAR_COLUMNS, HISTORY, FeaturePlan, feature_input, feature_plans
from crypto_assets.silver.utils import bar_at, in_window
from crypto_assets.universe import load_universe

CONFIG = load_pipeline_config()
PLANS = feature_plans()
WAREHOUSE = {"io_manager_key": "warehouse_io_manager", "kinds": ("spark", "snowflake")}
TABLE_NAMES = {"1h": "gold_market_features", "1d": "gold_daily_market_features"}


def _schema_validator(columns: list[Column]) -> v.Validator:
    return v.schema([(name, kind) for name, kind, _ in columns])


def _warehouse_metadata(columns: list[Column], partition_expr: str) -> dict:
    # partition_expr: the column whose day window the warehouse replaces on each run.
    return {
        "partition_expr": partition_expr,
        "cluster_by": "DT",
        "dagster/column_schema": table_schema(columns),
    }


def build_market_features_asset(interval: str, name: str) -> AssetsDefinition:
    plan: FeaturePlan = PLANS[interval]
    horizons = {h: bars_in(h, interval, f"gold.targets.{interval}") for h in CONFIG.targets.get(interval, ())}
    ahead_days = ceil(max([n * plan.interval_seconds for n in horizons.values()] or [0]) / DAY_SECONDS)
    columns = market_feature_columns(plan, list(horizons))
    validators = [
        _schema_validator(columns),
        v.value_ranges(
            {
                **PRICE_BOUNDS,
                **{c.name: (c.low, c.high) for c in plan.columns},
                **{f"target_return_{h}": (-1.0, None) for h in horizons},
                "market_cap_usd": (0.0, None),
            }
        ),
    ]
    source = f"silver_features_{interval}"

    @daily_asset(
        "gold",
        name=name,
        time_column="bar_time",
        ins={
            source: window_input(source, days_after=ahead_days),
            "silver_token_markets": window_input("silver_token_markets", optional=True),
        },
        check_specs=[
            *quality_check_specs(name, keys="(token, bar_time)"),
            *validator_specs(name, validators),
        ],
        metadata=_warehouse_metadata(columns, "BAR_TIME"),
        description=(
            f"One row per token and {interval} bar: every silver feature of {source}, the category,"
            f" the USD market cap at the bar's close (CoinGecko, when available) and forward-return"
            f" targets {', '.join(horizons)}. A target of bar t is close(t+h)/close(t) - 1: it starts"
            f" where every feature of bar t ends, so no feature sees the future. Targets of the last"
            f" bars stay null until the next {ahead_days} day(s) are materialized."
        ),
        **WAREHOUSE,
    )
    def _market(context: AssetExecutionContext, **inputs: DataFrame) -> Iterator[Output | AssetCheckResult]:
        window = context.partition_time_window
        table = market_features(
            inputs[source],
            inputs["silver_token_markets"],
            feature_columns=[*BAR_COLUMNS, HISTORY, *(c.name for c in plan.columns)],
            horizons=horizons,
            interval_seconds=plan.interval_seconds,
            start=window.start,
            end=window.end,
        )
        yield from publish(
            context,
            table,
            time_column="bar_time",
            keys=("token", "bar_time"),
            observed=~F.col("is_gap"),
            validators=validators,
        )

    return _market


gold_market_features = build_market_features_asset("1h", TABLE_NAMES["1h"])
gold_daily_market_features = build_market_features_asset("1d", TABLE_NAMES["1d"])

INDEX_VALIDATORS = [
    _schema_validator(INDEX_COLUMNS),
    v.value_ranges(
        {
            "equal_weighted_return": (-1.0, None),
            "cap_weighted_return": (-1.0, None),
            "total_market_cap_usd": (0.0, None),
            "constituents": (1.0, None),
        }
    ),
]


@daily_asset(
    "gold",
    time_column="bar_time",
    ins={
        "silver_features_1h": window_input("silver_features_1h"),
        "silver_features_1d": window_input("silver_features_1d"),
        # Weights are caps at the previous bar's close: 00:00 needs the day before.
        "silver_token_markets": window_input("silver_token_markets", days_before=1, optional=True),
    },
    check_specs=[
        *quality_check_specs("gold_category_index", ohlc=False, keys="(category, interval, bar_time)"),
        *validator_specs("gold_category_index", INDEX_VALIDATORS),
    ],
    metadata=_warehouse_metadata(INDEX_COLUMNS, "BAR_TIME"),
    **WAREHOUSE,
)
def gold_category_index(
    context: AssetExecutionContext,
    silver_features_1h: DataFrame,
    silver_features_1d: DataFrame,
    silver_token_markets: DataFrame | None,
) -> Iterator[Output | AssetCheckResult]:
    """Per category, per hour and per day: the equal-weighted and the market-cap-weighted return
    of its tokens (weights: USD market caps at the previous bar's close). An index level is the
    cumulative product of (1 + return) from any start you choose."""
    window = context.partition_time_window
    frames = [
        category_index(
            frame, silver_token_markets, interval=interval, interval_seconds=parse_duration(interval)
        )
        for interval, frame in (("1h", silver_features_1h), ("1d", silver_features_1d))
    ]
    index = in_window(frames[0].unionByName(frames[1]), "bar_time", window.start, window.end)
    yield from publish(
        context,
        index,
        time_column="bar_time",
        keys=("category", "interval", "bar_time"),
        token_column="category",
        ohlc=False,
        coverage=(sorted({t.category for t in load_universe().tokens}), {}),
        validators=INDEX_VALIDATORS,
    )


CORRELATION_DAYS = parse_duration(CONFIG.correlation_window) // DAY_SECONDS
CORRELATION_VALIDATORS = [
    _schema_validator(CORRELATION_COLUMNS),
    v.value_ranges({"correlation": (-1.0, 1.0), "observations": (0.0, None)}),
]


@daily_asset(
    "gold",
    time_column="dt",
    # Bars, not features: the window's returns need 30 days of 1h bars (fetched at the exchange's
    # 1h grain on a fresh lake), not 30 days of features each with its own 26-day look-back.
    ins={"silver_bars_1h": window_input("silver_bars_1h", days_before=CORRELATION_DAYS)},
    check_specs=[
        *quality_check_specs("gold_correlations", ohlc=False, keys="(dt, token_a, token_b)"),
        *validator_specs("gold_correlations", CORRELATION_VALIDATORS),
    ],
    metadata=_warehouse_metadata(CORRELATION_COLUMNS, "DT"),
    **WAREHOUSE,
)
def gold_correlations(
    context: AssetExecutionContext, silver_bars_1h: DataFrame
) -> Iterator[Output | AssetCheckResult]:
    """The cross-asset correlation matrix of hourly log returns over the trailing window (config
    gold.correlation_window), one row per day and ordered pair of tokens, in long form."""
    window = context.partition_time_window
    hourly = 24 * CORRELATION_DAYS
    bars = feature_input(silver_bars_1h)
    hourly_returns = bars.withColumn("log_return_1h", F.log(F.col("close") / bar_at("close", 1, 3600)))
    matrix = rolling_correlations(
        hourly_returns,
        return_column="log_return_1h",
        window_days=CORRELATION_DAYS,
        min_observations=ceil(hourly * CONFIG.correlation_min_fraction),
        start=window.start,
        end=window.end,
    )
    yield from publish(
        context,
        matrix,
        time_column="dt",
        keys=("dt", "token_a", "token_b"),
        token_column="token_a",
        ohlc=False,
        validators=CORRELATION_VALIDATORS,
    )


VENUE_VALIDATORS = [
    _schema_validator(VENUE_COLUMNS),
    v.value_ranges(
        {
            **dict.fromkeys(
                ("open", "high", "low", "close", "volume", "quote_usd", "close_usd"), (0.0, None)
            ),
            "canonical_close": (0.0, None),
        }
    ),
    v.quote_peg(CONFIG.stablecoins, CONFIG.peg_threshold),
]


@daily_asset(
    "gold",
    time_column="bar_time",
    ins={
        "bronze_klines": window_input("bronze_klines"),
        "silver_token_markets": window_input("silver_token_markets", optional=True),
    },
    check_specs=[
        *quality_check_specs("gold_venue_prices", keys="(venue, market, symbol, bar_time)"),
        *validator_specs("gold_venue_prices", VENUE_VALIDATORS),
    ],
    metadata=_warehouse_metadata(VENUE_COLUMNS, "BAR_TIME"),
    **WAREHOUSE,
)
def gold_venue_prices(
    context: AssetExecutionContext, bronze_klines: DataFrame, silver_token_markets: DataFrame | None
) -> Iterator[Output | AssetCheckResult]:
    """Every venue and market side by side, one row per series (venue, market, pair) and hour:
    the canonical Binance spot pair and whatever else bronze holds (Binance.US, futures), with
    the quote asset, its USD price (a cross rate on the venue, CoinGecko's price, 1 for USD),
    the close in USD and the basis against the canonical pair. Features and targets stay on the
    canonical series; this is where imported venues and stablecoin de-pegs can be looked at."""
    window = context.partition_time_window
    table = venue_prices(
        bronze_klines,
        silver_token_markets,
        canonical_series=sorted(load_universe().canonical_series()),
        start=window.start,
        end=window.end,
    )
    # The peg check also reads CoinGecko's USD price of every stablecoin, quote asset or not.
    peg = v.quote_peg(CONFIG.stablecoins, CONFIG.peg_threshold, markets=silver_token_markets)
    yield from publish(
        context,
        table,
        time_column="bar_time",
        keys=("venue", "market", "symbol", "bar_time"),
        observed=~F.col("is_gap"),
        validators=[*VENUE_VALIDATORS[:-1], peg],
        extra_aggregates={
            "series": F.countDistinct("venue", "market", "symbol"),
            "venues": F.countDistinct("venue", "market"),
        },
    )


def build_bars_asset(interval: str) -> AssetsDefinition:
    """``gold_bars_<interval>``: the silver bars of an interval no feature is computed at (5m),
    in the warehouse for intraday analysis and backtests."""
    name = f"gold_bars_{interval}"
    columns = bar_columns()
    validators = [_schema_validator(columns), v.value_ranges(PRICE_BOUNDS)]
    source = f"silver_bars_{interval}"

    @daily_asset(
        "gold",
        name=name,
        time_column="bar_time",
        ins={source: window_input(source)},
        check_specs=[
            *quality_check_specs(name, keys="(token, bar_time)"),
            *validator_specs(name, validators),
        ],
        metadata=_warehouse_metadata(columns, "BAR_TIME"),
        description=(
            f"{interval} bars per token, as {source} holds them (resampled from the exchange's 1m"
            " klines: OHLC, volumes, taker flow, trade count, VWAP, bars observed, is_gap and the"
            f" intrabar volatility), for intraday analysis and backtests in SQL. Only days with"
            f" minute data have {interval} bars."
        ),
        **WAREHOUSE,
    )
    def _bars(context: AssetExecutionContext, **inputs: DataFrame) -> Iterator[Output | AssetCheckResult]:
        window = context.partition_time_window
        bars = feature_input(in_window(inputs[source], "open_time", window.start, window.end))
        table = bars.select(
            F.to_date("open_time").alias("dt"),
            F.col("open_time").alias("bar_time"),
            *[c for c in BAR_COLUMNS if c != "open_time"],
        )
        minutes = not table.isEmpty()
        yield from publish(
            context,
            table,
            time_column="bar_time",
            keys=("token", "bar_time"),
            observed=~F.col("is_gap"),
            # Without minute data in range no token can have bars: say that once (as silver does).
            coverage=None
            if minutes
            else ([], {"*": f"no 1m klines in range: {interval} bars come from them"}),
            validators=validators,
        )

    return _bars


# Intervals with features reach gold through them; the others (5m) as bars.
BAR_TABLES = [build_bars_asset(interval) for interval in CONFIG.bar_intervals if interval not in PLANS]

GOLD_ASSETS = [
    gold_market_features,
    gold_daily_market_features,
    gold_category_index,
    gold_correlations,
    gold_venue_prices,
    *BAR_TABLES,
]


def gold_dictionary() -> str:
    """The data dictionary of every gold table, from the same schemas the assets declare."""
    tables = {}
    for interval, name in TABLE_NAMES.items():
        horizons = CONFIG.targets.get(interval, ())
        tables[name] = (
            f"one row per token and {interval} bar (key TOKEN, BAR_TIME)",
            GOLD_DESCRIPTIONS[name],
            market_feature_columns(PLANS[interval], list(horizons)),
        )
    tables["gold_category_index"] = (
        "one row per category, interval (1h, 1d) and bar",
        GOLD_DESCRIPTIONS["gold_category_index"],
        INDEX_COLUMNS,
    )
    tables["gold_correlations"] = (
        "one row per day and ordered pair of tokens",
        GOLD_DESCRIPTIONS["gold_correlations"],
        CORRELATION_COLUMNS,
    )
    tables["gold_venue_prices"] = (
        "one row per venue, market, pair and hour",
        GOLD_DESCRIPTIONS["gold_venue_prices"],
        VENUE_COLUMNS,
    )
    for asset in BAR_TABLES:
        name = asset.key.to_user_string()
        tables[name] = (
            f"one row per token and {name.removeprefix('gold_bars_')} bar (key TOKEN, BAR_TIME)",
            GOLD_DESCRIPTIONS[name],
            bar_columns(),
        )
    from crypto_assets.live.assets import gold_live_market

    tables["gold_live_market"] = (
        "one row per token and closed minute of the live stream (key TOKEN, BAR_TIME); replaced one"
        " UTC hour at a time",
        " ".join((gold_live_market.descriptions_by_key[gold_live_market.key] or "").split()),
        LIVE_COLUMNS,
    )
    return data_dictionary(tables)


GOLD_DESCRIPTIONS = {
    asset.key.to_user_string(): " ".join((asset.descriptions_by_key[asset.key] or "").split())
    for asset in GOLD_ASSETS
}
