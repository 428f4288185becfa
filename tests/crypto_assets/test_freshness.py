"""Freshness per layer: run for real against an instance, with and without yesterday's partition."""

from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    AssetMaterialization,
    AssetSelection,
    AssetSpec,
    DagsterInstance,
    Definitions,
    build_sensor_context,
    define_asset_job,
)

from crypto_assets.definitions import ASSETS, FRESHNESS_CHECKS, defs
from crypto_assets.freshness import deadline_cron, freshness_checks
from crypto_assets.partitions import daily_partitions
from crypto_assets.pipeline_config import PipelineConfigError, parse_pipeline_config


def _checked(checks) -> dict[str, str]:
    return {
        spec.asset_key.to_user_string(): check.node_def.name for check in checks for spec in check.check_specs
    }


def test_every_daily_dataset_of_each_layer_has_a_freshness_check():
    checked = _checked(FRESHNESS_CHECKS)
    layered = {
        key.to_user_string()
        for a in ASSETS
        for key, group in a.group_names_by_key.items()
        if group in ("raw", "bronze", "silver", "gold")
    }
    assert set(checked) == layered and "raw_klines" in checked and "gold_market_features" in checked
    assert deadline_cron(3600) == "0 1 * * *" and deadline_cron(90 * 60) == "30 1 * * *"


def test_a_deadline_is_a_time_of_day():
    with pytest.raises(PipelineConfigError, match=r"freshness\.raw"):
        parse_pipeline_config({"freshness": {"raw": "2d"}})
    with pytest.raises(PipelineConfigError, match="not one of the layers"):
        parse_pipeline_config({"freshness": {"platinum": "1h"}})
    config = parse_pipeline_config({"freshness": {"raw": "45m"}})
    assert _checked(freshness_checks(ASSETS, config)).keys() == {"raw_klines", "raw_coingecko_markets"}


def test_raw_without_yesterday_fails_its_check_and_passes_once_it_lands():
    raw_check = next(c for c in FRESHNESS_CHECKS if "raw_klines" in _checked([c]))
    specs = [AssetSpec(s.asset_key, partitions_def=daily_partitions) for s in raw_check.check_specs]
    job = Definitions(
        assets=specs,
        asset_checks=[raw_check],
        jobs=[define_asset_job("freshness", selection=AssetSelection.all_asset_checks())],
    ).resolve_job_def("freshness")
    instance = DagsterInstance.ephemeral()
    stale = job.execute_in_process(instance=instance)
    assert {e.asset_key.to_user_string(): e.passed for e in stale.get_asset_check_evaluations()} == {
        "raw_klines": False,
        "raw_coingecko_markets": False,
    }
    # The latest day that must exist by now (the deadline 01:00 UTC may not have passed yet today).
    now = datetime.now(UTC)
    for days_ago in (1, 2):
        day = (now - timedelta(days=days_ago)).date().isoformat()
        instance.report_runless_asset_event(AssetMaterialization("raw_klines", partition=day))
    fresh = job.execute_in_process(instance=instance)
    assert {e.asset_key.to_user_string(): e.passed for e in fresh.get_asset_check_evaluations()} == {
        "raw_klines": True,
        "raw_coingecko_markets": False,
    }


def test_the_freshness_sensor_requests_the_checks_that_are_due():
    sensor = defs.resolve_sensor_def("layer_freshness_sensor")
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, definitions=defs)
        request = sensor(context)
    # Never run before: every check is due, in one run of checks only (no asset is materialized).
    assert request.asset_selection is None
    assert {key.asset_key.to_user_string() for key in request.asset_check_keys} == set(
        _checked(FRESHNESS_CHECKS)
    )
