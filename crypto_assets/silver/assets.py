"""Silver layer: per-minute features in the lake."""

from collections.abc import Iterator

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetIn,
    Output,
    TimeWindowPartitionMapping,
)
from pyspark.sql import DataFrame

from crypto_assets.checks import quality_check_specs
from crypto_assets.partitions import daily_asset
from crypto_assets.publishing import publish
from crypto_assets.silver.transforms import LOOKBACK_DAYS, minute_features


@daily_asset(
    "silver",
    time_column="open_time",
    ins={
        "bronze_klines": AssetIn(
            # Rolling windows at 00:00 need the previous day's last minutes: read day D-1 too.
            partition_mapping=TimeWindowPartitionMapping(
                start_offset=-LOOKBACK_DAYS, end_offset=0, allow_nonexistent_upstream_partitions=True
            ),
            # A first backfilled day has no D-1 yet: its early windows start cold (null), not wrong.
            metadata={"allow_missing_partitions": True},
        )
    },
    check_specs=quality_check_specs("silver_features", keys="(token, open_time)"),
)
def silver_features(
    context: AssetExecutionContext, bronze_klines: DataFrame
) -> Iterator[Output | AssetCheckResult]:
    """Per-minute features for one day: 1m simple and log returns (null across gaps) and
    annualised realised volatility over 15 and 60 minutes (null until the window is full),
    computed with the previous day's bars as look-back so day boundaries are seamless.
    """
    window = context.partition_time_window
    features = minute_features(bronze_klines, window.start, window.end)
    yield from publish(context, features, time_column="open_time", keys=("token", "open_time"))
