"""Jobs: selections of assets that run together."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from crypto_assets.partitions import daily_partitions

LAYERS = ("raw", "bronze", "silver", "gold")

market_data_job = define_asset_job(
    name="market_data_job",
    selection=AssetSelection.groups(*LAYERS),
    partitions_def=daily_partitions,
    description="UTC days through every layer: exchange -> raw -> bronze -> silver -> gold (warehouse).",
)

refinement_job = define_asset_job(
    name="refinement_job",
    selection=AssetSelection.groups(*LAYERS[1:]),
    partitions_def=daily_partitions,
    description=(
        "UTC days from the raw data already in the lake (fetched or imported) through bronze ->"
        " silver -> gold; a range runs as one Spark job per asset."
    ),
)
