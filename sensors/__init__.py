"""Schedules and sensors: when jobs run. Knows jobs, not transforms."""

from __future__ import annotations

from dagster import build_schedule_from_partitioned_job

from crypto_assets.jobs import market_data_job

# 00:15 UTC: yesterday's last candle has closed and the exchange has published it.
daily_market_data_schedule = build_schedule_from_partitioned_job(
    market_data_job, hour_of_day=0, minute_of_hour=15, name="daily_market_data_schedule"
)

schedules = [daily_market_data_schedule]
sensors: list = []
