"""The one partitioning scheme of the platform: UTC days, complete days only."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from dagster import (
    AssetIn,
    AssetKey,
    AssetsDefinition,
    AutomationCondition,
    BackfillPolicy,
    DailyPartitionsDefinition,
    asset,
)

from crypto_assets.automation import follows_upstream

# Two parameters the platform relies on are flagged beta in Dagster 1.13 (backfill policies,
# and look-back mappings reaching before the first partition). Both are stable in practice;
# keep their notices out of every CLI run's output.
warnings.filterwarnings("ignore", message=".*`backfill_policy`.*")
warnings.filterwarnings("ignore", message=".*allow_nonexistent_upstream_partitions.*")
# market_data_job spans ingestion (a month per run) and refinement (one run): Dagster uses the
# stricter policy for the job, as intended.
warnings.filterwarnings("ignore", message=".*varying BackfillPolicies.*")

# Binance's first spot klines (BTCUSDT, ETHUSDT) are from 2017-08-17: the default first day.
# PARTITIONS_START moves it (e.g. to the first day a deployment keeps), so the UI's partition
# bars and launch dialog show the days that exist rather than years of empty ones; the warm-up
# never fetches history before it. end_offset=0: the last partition is yesterday, so the
# still-open day is never materialized as if it were final.
BINANCE_FIRST_DAY = "2017-08-17"


def first_day(value: str | None = None) -> str:
    """The first daily partition: ``value``, else ``PARTITIONS_START``, else Binance's first day."""
    raw = (
        value if value is not None else os.environ.get("PARTITIONS_START", "")
    ).strip() or BINANCE_FIRST_DAY
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"PARTITIONS_START={raw!r}: expected a date like 2024-01-01") from None
    if day.isoformat() < BINANCE_FIRST_DAY or day >= datetime.now(UTC).date():
        raise ValueError(f"PARTITIONS_START={raw}: must be between {BINANCE_FIRST_DAY} and yesterday (UTC)")
    return day.isoformat()


FIRST_DAY = first_day()
daily_partitions = DailyPartitionsDefinition(start_date=FIRST_DAY, timezone="UTC", end_offset=0)

# Ingestion backfills up to a month of days per run: one CoinGecko call per token per run (and
# CoinGecko keeps hourly points up to 90 days), one monthly archive file per pair.
MAX_DAYS_PER_RUN = 31
ingestion_backfill_policy = BackfillPolicy.multi_run(max_partitions_per_run=MAX_DAYS_PER_RUN)
# Refinement (bronze, silver, gold) backfills any range as ONE run: Spark processes the range in
# one job per asset, reading each look-back once; each day is still written as its own partition.
refinement_backfill_policy = BackfillPolicy.single_run()


def daily_asset(
    layer: str,
    *,
    time_column: str,
    io_manager_key: str = "lake_io_manager",
    kinds: tuple[str, ...] = ("spark", "parquet"),
    metadata: dict[str, Any] | None = None,
    backfill_policy: BackfillPolicy | None = None,
    automation_condition: AutomationCondition | None = None,
    **kwargs: Any,
) -> Callable[[Callable[..., Any]], AssetsDefinition]:
    """``@asset`` with what every dataset of the platform shares: daily UTC partitions, the
    layer's backfill policy, the layer as group, and the metadata the IO managers read (``layer`` for
    the lake path, ``partition_time_column`` to split multi-day runs into days). Every layer but
    raw follows its upstream days by itself (crypto_assets/automation.py); raw is fetched by the
    schedule, imports and backfills."""
    return asset(
        partitions_def=daily_partitions,
        backfill_policy=backfill_policy
        or (ingestion_backfill_policy if layer == "raw" else refinement_backfill_policy),
        io_manager_key=io_manager_key,
        group_name=layer,
        metadata={"layer": layer, "partition_time_column": time_column, **(metadata or {})},
        kinds=set(kinds),
        automation_condition=automation_condition or (None if layer == "raw" else follows_upstream()),
        **kwargs,
    )


def window_input(asset: str, *, days_before: int = 0, days_after: int = 0, optional: bool = False) -> AssetIn:
    """An input that reads ``asset``'s days ``[D - days_before, D + days_after]`` for day D (for a
    range, around the whole range) as one DataFrame. Days not materialized (before the first
    day, the still-open day, a look-back nobody backfilled) are left out, not an error: windows
    that lack history stay null (warm-up) and targets that lack a future stay null. An
    ``optional`` input (a source that may not have been ingested) loads as None when absent.

    Dagster sees a same-day dependency; the lake IO manager widens the read by the window. Were
    the window a partition mapping, Dagster would treat every day a window touches as upstream of
    the day: a UI backfill of three days of gold would also target the days whose look-back or
    look-ahead reaches them (a 605-day look-back: 605 more days), and one new raw day would ask
    automation to recompute two years of daily features."""
    return AssetIn(
        key=AssetKey(asset),
        metadata={
            "allow_missing_partitions": True,
            "optional": optional,
            "days_before": days_before,
            "days_after": days_after,
        },
    )
