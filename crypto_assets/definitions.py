"""The Dagster code location: every asset, check, job, schedule and resource of the platform."""

from __future__ import annotations

from dagster import Definitions, colored_console_logger, in_process_executor

from crypto_assets.assets import ASSETS, SPECS
from crypto_assets.freshness import FRESHNESS_CHECKS
from crypto_assets.jobs import (
    history_job,
    live_job,
    market_data_job,
    ml_prediction_job,
    ml_training_job,
    refinement_job,
    targets_refresh_job,
)
from crypto_assets.terminal import terminal_logger
from resources.environment import build_resources
from resources.settings import Settings
from sensors import schedules, sensors
from sensors.freshness import build_freshness_sensor
from sensors.live import live_slice_sensor

__all__ = ["ASSETS", "FRESHNESS_CHECKS", "build_definitions", "defs"]


def build_definitions(settings: Settings | None = None) -> Definitions:
    return Definitions(
        assets=[*ASSETS, *SPECS],
        asset_checks=FRESHNESS_CHECKS,
        jobs=[
            market_data_job,
            refinement_job,
            history_job,
            live_job,
            targets_refresh_job,
            ml_training_job,
            ml_prediction_job,
        ],
        schedules=schedules,
        sensors=[*sensors, build_freshness_sensor(FRESHNESS_CHECKS), live_slice_sensor],
        resources=build_resources(settings),
        # One process per run: a Spark JVM per step would cost ~5 s each for small partitions.
        executor=in_process_executor,
        # Dagster's console logger for runs of the UI (its default); the CLI's runs ask for the
        # one-line terminal logger in their run config.
        loggers={"console": colored_console_logger, "terminal": terminal_logger},
    )


defs = build_definitions()
