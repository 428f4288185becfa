"""Bronze layer: typed, UTC, deduplicated klines in the lake."""

from collections.abc import Iterator

from dagster import AssetCheckResult, AssetExecutionContext, Output
from pyspark.sql import DataFrame

from crypto_assets.bronze.transforms import clean_klines
from crypto_assets.checks import quality_check_specs
from crypto_assets.partitions import daily_asset
from crypto_assets.publishing import publish
from crypto_assets.universe import load_universe


@daily_asset(
    "bronze",
    time_column="open_time",
    check_specs=quality_check_specs("bronze_klines", keys="(token, open_time)"),
)
def bronze_klines(
    context: AssetExecutionContext, raw_klines: DataFrame
) -> Iterator[Output | AssetCheckResult]:
    """1-minute klines, one row per token and minute: typed (DECIMAL(38,18) prices and volumes),
    UTC timestamps, mapped to the canonical token and its category, deduplicated (latest
    ingestion wins). Blocking checks: no duplicate (token, minute), no null keys, OHLC consistency.
    """
    universe = load_universe()
    window = context.partition_time_window
    cleaned = clean_klines(
        raw_klines,
        pair_tokens={pair: token.symbol for pair, token in universe.pairs().items()},
        token_categories={t.symbol: t.category for t in universe.tokens},
        start=window.start,
        end=window.end,
    )
    yield from publish(context, cleaned, time_column="open_time", keys=("token", "open_time"))
