"""The one partitioning scheme of the platform: UTC days, complete days only."""

from __future__ import annotations

from dagster import DailyPartitionsDefinition

# Binance's first spot klines (BTCUSDT, ETHUSDT) are from 2017-08-17. end_offset=0: the last
# partition is yesterday, so the still-open day is never materialized as if it were final.
FIRST_DAY = "2017-08-17"
daily_partitions = DailyPartitionsDefinition(start_date=FIRST_DAY, timezone="UTC", end_offset=0)
