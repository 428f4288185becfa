"""Jobs: selections of assets that run together."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from crypto_assets.partitions import daily_partitions

LAYERS = ("raw", "bronze", "silver", "gold")

market_data_job = define_asset_job(
    name="market_data_job",
    selection=AssetSelection.groups(*LAYERS),
    partitions_def=daily_partitions,
    description="One UTC day through every layer: exchange -> raw -> bronze -> silver -> gold (warehouse).",
)
