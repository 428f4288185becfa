"""The one partitioning scheme of the platform: UTC days, complete days only."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from dagster import AssetsDefinition, BackfillPolicy, DailyPartitionsDefinition, asset

# Two parameters the platform relies on are flagged beta in Dagster 1.13 (backfill policies,
# and look-back mappings reaching before the first partition). Both are stable in practice;
# keep their notices out of every CLI run's output.
warnings.filterwarnings("ignore", message=".*`backfill_policy`.*")
warnings.filterwarnings("ignore", message=".*allow_nonexistent_upstream_partitions.*")

# Binance's first spot klines (BTCUSDT, ETHUSDT) are from 2017-08-17. end_offset=0: the last
# partition is yesterday, so the still-open day is never materialized as if it were final.
FIRST_DAY = "2017-08-17"
daily_partitions = DailyPartitionsDefinition(start_date=FIRST_DAY, timezone="UTC", end_offset=0)

# A backfill runs up to a month of days per run: one Spark job per layer instead of one per day,
# and one CoinGecko call per token per run instead of per day. Each day stays its own partition.
MAX_DAYS_PER_RUN = 31
backfill_policy = BackfillPolicy.multi_run(max_partitions_per_run=MAX_DAYS_PER_RUN)


def daily_asset(
    layer: str,
    *,
    time_column: str,
    io_manager_key: str = "lake_io_manager",
    kinds: tuple[str, ...] = ("spark", "parquet"),
    metadata: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Callable[[Callable[..., Any]], AssetsDefinition]:
    """``@asset`` with what every dataset of the platform shares: daily UTC partitions, the
    backfill policy, the layer as group, and the metadata the IO managers read (``layer`` for
    the lake path, ``partition_time_column`` to split multi-day runs into days)."""
    return asset(
        partitions_def=daily_partitions,
        backfill_policy=backfill_policy,
        io_manager_key=io_manager_key,
        group_name=layer,
        metadata={"layer": layer, "partition_time_column": time_column, **(metadata or {})},
        kinds=set(kinds),
        **kwargs,
    )
