"""The sensor that runs the layers' freshness checks (crypto_assets/freshness.py) when they are due."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import (
    AssetChecksDefinition,
    DefaultSensorStatus,
    SensorDefinition,
    build_sensor_for_freshness_checks,
)


def build_freshness_sensor(checks: Sequence[AssetChecksDefinition]) -> SensorDefinition:
    # On by default: a stale layer is visible in the UI (and on the dashboard's health page)
    # without anybody remembering to look.
    return build_sensor_for_freshness_checks(
        freshness_checks=checks,
        name="layer_freshness_sensor",
        minimum_interval_seconds=300,
        default_status=DefaultSensorStatus.RUNNING,
    )
