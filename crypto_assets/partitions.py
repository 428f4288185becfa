"""The one partitioning scheme of the platform: UTC days, complete days only."""

from __future__ import annotations

from datetime import datetime, timedelta

from dagster import BackfillPolicy, DailyPartitionsDefinition

# Binance's first spot klines (BTCUSDT, ETHUSDT) are from 2017-08-17. end_offset=0: the last
# partition is yesterday, so the still-open day is never materialized as if it were final.
FIRST_DAY = "2017-08-17"
daily_partitions = DailyPartitionsDefinition(start_date=FIRST_DAY, timezone="UTC", end_offset=0)

# A backfill runs up to a month of days per run: one Spark job per layer instead of one per day,
# and one CoinGecko call per token per run instead of per day. Each day stays its own partition.
MAX_DAYS_PER_RUN = 31
backfill_policy = BackfillPolicy.multi_run(max_partitions_per_run=MAX_DAYS_PER_RUN)


def days_in(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The UTC days of the window ``[start, end)`` as (day start, day end) pairs."""
    days = []
    cursor = start
    while cursor < end:
        days.append((cursor, min(end, cursor + timedelta(days=1))))
        cursor += timedelta(days=1)
    return days
