from datetime import UTC, datetime

from dagster import build_schedule_context

from crypto_assets.definitions import defs
from crypto_assets.jobs import TARGET_LOOKAHEAD_DAYS
from sensors import daily_market_data_schedule


def test_daily_run_then_the_gold_days_whose_targets_it_completes():
    context = build_schedule_context(scheduled_execution_time=datetime(2024, 3, 10, 0, 15, tzinfo=UTC))
    day, targets = list(daily_market_data_schedule(context))
    assert day.partition_key == "2024-03-09" and day.job_name is None  # the schedule's own job
    assert TARGET_LOOKAHEAD_DAYS == 7
    assert targets.job_name == "targets_refresh_job"
    assert targets.tags["dagster/asset_partition_range_start"] == "2024-03-02"
    assert targets.tags["dagster/asset_partition_range_end"] == "2024-03-08"
    job = defs.resolve_job_def("targets_refresh_job")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {
        "gold_market_features",
        "gold_daily_market_features",
        "ml_performance",  # the model's live performance on the outcomes that just arrived
        "vol_forecasts",  # the realised volatility of the forecasts' next 24 hours
    }


def test_weekly_training_schedule():
    from sensors import weekly_model_training_schedule

    context = build_schedule_context(scheduled_execution_time=datetime(2024, 3, 11, 3, 0, tzinfo=UTC))
    request = weekly_model_training_schedule(context)
    assert request.run_key == "train-2024-03-11"
    assert weekly_model_training_schedule.cron_schedule == "0 3 * * 1"
    assert weekly_model_training_schedule.job_name == "ml_training_job"
