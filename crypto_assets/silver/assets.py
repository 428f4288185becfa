"""Silver layer: resampled bars, engineered features and hourly USD markets, in the lake.

The assets are built from config/pipeline.yaml: one ``silver_bars_<interval>`` per bar interval
and one ``silver_features_<interval>`` per feature interval, each reading exactly the look-back
its windows need.
"""

from collections.abc import Iterator

from dagster import AssetCheckResult, AssetExecutionContext, AssetIn, AssetsDefinition, Output
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crypto_assets.checks import (
    EVERY_TOKEN_HAS_A_SOURCE,
    quality_check_specs,
    validation_result,
    validator_specs,
)
from crypto_assets.partitions import daily_asset, window_input
from crypto_assets.pipeline_config import load_pipeline_config, parse_duration
from crypto_assets.publishing import publish
from crypto_assets.raw.coingecko_assets import RAW_COINGECKO_SCHEMA
from crypto_assets.silver import validators as v
from crypto_assets.silver.config import (
    BAR_COLUMNS,
    DOUBLE_BAR_COLUMNS,
    HISTORY,
    FeaturePlan,
    feature_input,
    feature_plans,
)
from crypto_assets.silver.transformers import (
    canonical_bars,
    finer_intervals,
    hourly_token_markets,
    interval_mismatches,
    resample_bars,
)
from crypto_assets.silver.utils import in_window
from crypto_assets.universe import load_universe

CONFIG = load_pipeline_config()
KEYS = ("token", "open_time")
BAR_TYPES = {
    "token": "string", "category": "string", "symbol": "string", "open_time": "timestamp",
    **dict.fromkeys(DOUBLE_BAR_COLUMNS, "double"), "trade_count": "bigint", "vwap": "double", "bar_source": "string",
    "bars_observed": "int", "is_complete": "boolean", "is_gap": "boolean", "realized_vol_intrabar": "double",
}  # fmt: skip
PRICE_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    **dict.fromkeys(("open", "high", "low", "close", "vwap"), (0.0, None)),
    **dict.fromkeys(("volume", "quote_volume", "trade_count", "taker_buy_base_volume"), (0.0, None)),
    "realized_vol_intrabar": (0.0, None),
}


def bars_validators() -> list[v.Validator]:
    return [v.value_ranges(PRICE_BOUNDS)]


def build_bars_asset(interval: str) -> AssetsDefinition:
    name = f"silver_bars_{interval}"
    validators = bars_validators()
    # Compared only at grains the exchange's own klines are ingested at (1h, 1d by default).
    consistency = (
        v.cross_interval_consistency(interval, lambda bronze: interval_mismatches(bronze, interval))
        if interval in CONFIG.ingest_intervals
        else None
    )

    @daily_asset(
        "silver",
        name=name,
        time_column="open_time",
        ins={"bronze_klines": AssetIn()},
        check_specs=[
            *quality_check_specs(name, keys="(token, open_time)"),
            *validator_specs(name, [*validators, *([consistency] if consistency else [])]),
        ],
        description=(
            f"{interval} bars per token, one per slot from the best source: the exchange's own"
            f" {interval} kline when it delivered one, else resampled from the finest interval bronze"
            " has (1m from the exchange, or imported coarser bars); bar_source names the winner."
            " OHLC from observed bars, summed volumes, bars observed / expected, is_complete,"
            " is_gap, and the annualised volatility of the finest source bars inside each bar"
            " (realized_vol_intrabar)."
        ),
    )
    def _bars(
        context: AssetExecutionContext, bronze_klines: DataFrame
    ) -> Iterator[Output | AssetCheckResult]:
        # Read once: the bars and the consistency check both scan bronze (hundreds of small daily
        # files in a history backfill).
        canonical = canonical_bars(bronze_klines, load_universe().canonical_series())
        bronze = canonical.cache() if consistency is not None else canonical
        bars = resample_bars(bronze, interval)
        yield from publish(
            context,
            bars,
            time_column="open_time",
            keys=KEYS,
            observed=~F.col("is_gap"),
            coverage=_no_source_data(bronze, interval),
            validators=validators,
            extra_aggregates={
                f"bars_from_{source}": F.sum((F.col("bar_source") == source).cast("int"))
                for source in _bar_sources(interval)
            },
        )
        if consistency is not None:
            yield validation_result(consistency, consistency.run(bronze))
            bronze.unpersist()

    return _bars


def _no_source_data(bronze: DataFrame, interval: str) -> tuple[list[str], dict[str, str]] | None:
    """For an interval that is only resampled (5m: not an ingested interval), when the range has
    no klines of it or finer: no token can have bars, so coverage says that once instead of
    listing every token as missing. None otherwise (coverage as usual)."""
    if interval in CONFIG.ingest_intervals:
        return None
    sources = [interval, *finer_intervals(interval)]
    if not bronze.where(F.col("interval").isin(sources)).isEmpty():
        return None
    return [], {
        "*": f"no {'/'.join(sorted(sources))} klines in range: {interval} bars are resampled from them"
    }


def _bar_sources(interval: str) -> list[str]:
    return [f"native_{interval}", *[f"resampled_{i}" for i in finer_intervals(interval)]]


def feature_validators(plan: FeaturePlan) -> list[v.Validator]:
    columns = plan.columns
    complete = f"{HISTORY} >= {plan.lookback_bars} AND NOT is_gap"
    return [
        v.schema(
            [(c, BAR_TYPES[c]) for c in BAR_COLUMNS]
            + [(HISTORY, "int")]
            + [(c.name, "double") for c in columns]
        ),
        v.value_ranges({**PRICE_BOUNDS, **{c.name: (c.low, c.high) for c in columns}}),
        v.null_rates([c.name for c in columns if not c.by_source], complete, CONFIG.max_null_rate),
        v.feature_warm_up({c.name: c.warm_up for c in columns if c.warm_up}, HISTORY),
        v.stablecoin_peg(CONFIG.stablecoins, CONFIG.peg_threshold, parse_duration(plan.interval)),
    ]


def build_features_asset(plan: FeaturePlan) -> AssetsDefinition:
    name = f"silver_features_{plan.interval}"
    validators = feature_validators(plan)
    listed = ", ".join(c.name for c in plan.columns)

    @daily_asset(
        "silver",
        name=name,
        time_column="open_time",
        ins={
            f"silver_bars_{plan.interval}": window_input(
                f"silver_bars_{plan.interval}", days_before=plan.lookback_days
            )
        },
        check_specs=[
            *quality_check_specs(name, keys="(token, open_time)"),
            *validator_specs(name, validators),
        ],
        metadata={"lookback_days": plan.lookback_days, "lookback_bars": plan.lookback_bars},
        description=(
            f"Features of {plan.interval} bars, one row per token and bar, from config/pipeline.yaml:"
            f" {listed}. Windows read {plan.lookback_days} earlier day(s) of bars, so a day computed"
            " alone equals the same day computed with the whole history; a value is null until its"
            " window is full (history_bars counts the observed bars behind each row)."
        ),
    )
    def _features(context: AssetExecutionContext, **inputs: DataFrame) -> Iterator[Output | AssetCheckResult]:
        window = context.partition_time_window
        bars = feature_input(inputs[f"silver_bars_{plan.interval}"])
        features = in_window(plan.apply(bars), "open_time", window.start, window.end)
        yield from publish(
            context,
            features,
            time_column="open_time",
            keys=KEYS,
            observed=~F.col("is_gap"),
            validators=validators,
            extra_aggregates={"gap_rows": F.sum(F.col("is_gap").cast("int"))},
        )

    return _features


MARKET_VALIDATORS = [
    v.value_ranges({"price_usd": (0.0, None), "market_cap_usd": (0.0, None), "volume_usd_24h": (0.0, None)}),
    v.usd_peg("price_usd", "hour", CONFIG.stablecoins, CONFIG.peg_threshold),
]


@daily_asset(
    "silver",
    time_column="hour",
    # Optional: a replay of imported files has no CoinGecko data; the day is then empty.
    ins={"raw_coingecko_markets": window_input("raw_coingecko_markets", optional=True)},
    check_specs=[
        *quality_check_specs(
            "silver_token_markets", ohlc=False, keys="(token, hour)", coverage_check=EVERY_TOKEN_HAS_A_SOURCE
        ),
        *validator_specs("silver_token_markets", MARKET_VALIDATORS),
    ],
)
def silver_token_markets(
    context: AssetExecutionContext, raw_coingecko_markets: DataFrame | None, pyspark: LazyPySparkResource
) -> Iterator[Output | AssetCheckResult]:
    """USD price, market cap, 24h volume and implied circulating supply of all 37 tokens, one row
    per token and hour (the hour's last CoinGecko point), with the stablecoins' deviation from
    $1. Depegs beyond the threshold are flagged by the stablecoin_peg check, never dropped."""
    universe = load_universe()
    points = raw_coingecko_markets
    if points is None:
        context.log.warning("no raw_coingecko_markets for the window: no USD market data")
        points = pyspark.spark_session.createDataFrame([], RAW_COINGECKO_SCHEMA)
    hourly = hourly_token_markets(
        points,
        token_categories={t.symbol: t.category for t in universe.tokens},
        stablecoins=list(CONFIG.stablecoins),
    )
    yield from publish(
        context,
        hourly,
        time_column="hour",
        keys=("token", "hour"),
        ohlc=False,
        coverage=(universe.symbols, {}),
        coverage_check=EVERY_TOKEN_HAS_A_SOURCE,
        validators=MARKET_VALIDATORS,
    )


silver_bars = [build_bars_asset(interval) for interval in CONFIG.bar_intervals]
silver_features = [build_features_asset(plan) for plan in feature_plans().values()]
SILVER_ASSETS = [*silver_bars, *silver_features, silver_token_markets]
