"""The sensor that evaluates the assets' automation conditions (crypto_assets/automation.py)."""

from __future__ import annotations

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus

# On by default: `make dev`'s daemon evaluates it every 30 s. A tick that requests many days of
# one asset launches a backfill, which runs them as the assets' backfill policies allow (one
# Spark run per refinement range).
automation_sensor = AutomationConditionSensorDefinition(
    "layers_follow_upstream",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description=(
        "Requests bronze, silver, gold and the model's daily assets for the days whose upstream"
        " changed (a fetch, an import, a backfill of raw alone), as their automation conditions say."
    ),
)
