"""Schedules and sensors: when jobs run. Knows jobs, not transforms."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    schedule,
)

from crypto_assets.jobs import TARGET_LOOKAHEAD_DAYS, market_data_job, ml_training_job, targets_refresh_job
from crypto_assets.ml.config import load_ml_config
from sensors.automation import automation_sensor
from sensors.run_failures import run_failure_recorder


@schedule(
    job=market_data_job,
    cron_schedule="15 0 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    name="daily_market_data_schedule",
)
def daily_market_data_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    """00:15 UTC: yesterday through every layer; then the gold tables of the days before, whose
    forward-return targets could only be computed now that yesterday exists."""
    yesterday = (context.scheduled_execution_time - timedelta(days=1)).date()
    day = yesterday.isoformat()
    yield RunRequest(run_key=day, partition_key=day)
    first = (yesterday - timedelta(days=TARGET_LOOKAHEAD_DAYS)).isoformat()
    last = (yesterday - timedelta(days=1)).isoformat()
    yield RunRequest(
        run_key=f"targets-{first}-{last}",
        job_name=targets_refresh_job.name,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


@schedule(
    job=ml_training_job,
    cron_schedule=load_ml_config().train_cron,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    name="weekly_model_training_schedule",
)
def weekly_model_training_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    """Retrain on the latest year of labelled gold rows (ml.train_cron, Mondays 03:00 UTC by
    default); the candidate serves only if its promotion_gate check passes."""
    return RunRequest(run_key=context.scheduled_execution_time.strftime("train-%Y-%m-%d"))


schedules = [daily_market_data_schedule, weekly_model_training_schedule]
sensors = [run_failure_recorder, automation_sensor]
