"""Freshness per layer: yesterday's partition of each dataset must exist by the layer's deadline.

The deadlines are configuration (``freshness`` in pipeline.yaml). A check fails (WARN) when, at
its evaluation, the latest complete day is not materialized although its deadline has passed:
raw late means the exchange fetch did not run; gold late with raw on time means refinement is
stuck. The freshness sensor of ``make dev`` runs them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from dagster import (
    AssetChecksDefinition,
    AssetsDefinition,
    AssetSelection,
    build_time_partition_freshness_checks,
)

from crypto_assets.assets import ASSETS
from crypto_assets.pipeline_config import PipelineConfig, load_pipeline_config

# Dagster 1.13 prefers FreshnessPolicy, which judges an asset by the time of its last update. A
# daily dataset is fresh when its latest complete DAY exists, whichever day was updated last (a
# backfill of 2023 is not news): these partition-aware checks say that, and their results are
# check evaluations that the UI, the dashboard's health page and CI read like any other check.
warnings.filterwarnings("ignore", message=".*build_time_partition_freshness_checks.*")
warnings.filterwarnings("ignore", message=".*build_sensor_for_freshness_checks.*")


def deadline_cron(seconds_after_midnight: int) -> str:
    """12600 (3h30m) -> ``"30 3 * * *"``: the daily tick by which a day must exist."""
    hours, minutes = divmod(seconds_after_midnight // 60, 60)
    return f"{minutes} {hours} * * *"


def freshness_checks(
    assets: Sequence[AssetsDefinition], config: PipelineConfig
) -> list[AssetChecksDefinition]:
    """One freshness check per daily dataset of a layer that has a deadline."""
    checks: list[AssetChecksDefinition] = []
    for layer, seconds in sorted((config.freshness or {}).items()):
        members = [
            a
            for a in assets
            if a.partitions_def is not None
            and a.group_names_by_key
            and layer in a.group_names_by_key.values()
        ]
        if members:
            checks.extend(
                build_time_partition_freshness_checks(assets=members, deadline_cron=deadline_cron(seconds))
            )
    return checks


FRESHNESS_CHECKS = freshness_checks(ASSETS, load_pipeline_config())
# The jobs leave them out: a run of 2023 must not report that yesterday is missing. The freshness
# sensor runs them on their own.
FRESHNESS_SELECTION = AssetSelection.checks(*FRESHNESS_CHECKS)
