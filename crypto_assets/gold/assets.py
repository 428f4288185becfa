"""Gold layer: the ML-ready hourly table, loaded into Snowflake."""

from collections.abc import Iterator

from dagster import AssetCheckResult, AssetExecutionContext, Output
from pyspark.sql import DataFrame

from crypto_assets.checks import quality_check_specs
from crypto_assets.gold.transforms import hourly_market_features
from crypto_assets.partitions import daily_asset
from crypto_assets.publishing import publish


@daily_asset(
    "gold",
    time_column="bar_time",
    io_manager_key="warehouse_io_manager",
    kinds=("spark", "snowflake"),
    # partition_expr: the column whose day window the warehouse replaces on each run.
    metadata={"partition_expr": "BAR_TIME"},
    check_specs=quality_check_specs("gold_market_features", keys="(token, bar_time)"),
)
def gold_market_features(
    context: AssetExecutionContext, silver_features: DataFrame
) -> Iterator[Output | AssetCheckResult]:
    """One row per token and hour: OHLCV, VWAP, taker-buy ratio, 1h simple and log returns,
    realised volatility and completeness, with the token's category. Loaded into the warehouse
    table GOLD_MARKET_FEATURES, replacing the day's rows in one transaction.
    """
    hourly = hourly_market_features(silver_features)
    yield from publish(context, hourly, time_column="bar_time", keys=("token", "bar_time"))
