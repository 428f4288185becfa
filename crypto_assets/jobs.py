"""Jobs: selections of assets that run together."""

from __future__ import annotations

import math

from dagster import AssetSelection, define_asset_job

from crypto_assets.freshness import FRESHNESS_SELECTION
from crypto_assets.live.assets import live_partitions
from crypto_assets.partitions import daily_partitions
from crypto_assets.pipeline_config import DAY_SECONDS, load_pipeline_config, parse_duration

LAYERS = ("raw", "bronze", "silver", "gold")

# The model's daily assets (predictions, live performance) follow gold in the same run.
ML_DAILY = ("ml_predictions", "ml_performance", "vol_forecasts")

market_data_job = define_asset_job(
    name="market_data_job",
    selection=(AssetSelection.groups(*LAYERS) | AssetSelection.assets(*ML_DAILY)) - FRESHNESS_SELECTION,
    partitions_def=daily_partitions,
    description=(
        "UTC days through every layer: exchange -> raw -> bronze -> silver -> gold (warehouse),"
        " then the serving model's predictions and their live performance."
    ),
)

ml_training_job = define_asset_job(
    name="ml_training_job",
    selection=AssetSelection.assets(
        "ml_candidate_model", "ml_serving_model", "vol_candidate_model", "vol_serving_model"
    ),
    description=(
        "Train and evaluate candidate models (the direction model on the warehouse's gold table,"
        " the volatility model on the lake's hourly bars); promote each only if its blocking gate"
        " check passes (weekly, and by `crypto-analytics run` while no model serves)."
    ),
)

ml_prediction_job = define_asset_job(
    name="ml_prediction_job",
    selection=AssetSelection.assets(*ML_DAILY) - FRESHNESS_SELECTION,
    partitions_def=daily_partitions,
    description="Predictions of the serving model (or the best baseline) and their live performance, per day.",
)

refinement_job = define_asset_job(
    name="refinement_job",
    selection=AssetSelection.groups(*LAYERS[1:]) - FRESHNESS_SELECTION,
    partitions_def=daily_partitions,
    description=(
        "UTC days from the raw data already in the lake (fetched or imported) through bronze ->"
        " silver -> gold; a range runs as one Spark job per asset."
    ),
)

history_job = define_asset_job(
    name="history_job",
    selection=AssetSelection.assets(
        "raw_klines", "bronze_klines", *[f"silver_bars_{i}" for i in load_pipeline_config().bar_intervals]
    )
    - FRESHNESS_SELECTION,
    partitions_def=daily_partitions,
    description=(
        "Look-back history at the exchange's coarser grain (raw 1h/1d klines -> bronze -> silver"
        " bars) for the days before a range, so its features are warm: `crypto-analytics run` plans"
        " it from ingestion.history in pipeline.yaml (config: raw_klines.intervals)."
    ),
)

# The longest forward-return horizon of gold.targets, in days: a day's targets are complete once
# this many later days exist.
TARGET_LOOKAHEAD_DAYS = math.ceil(
    max(parse_duration(h) for horizons in load_pipeline_config().targets.values() for h in horizons)
    / DAY_SECONDS
)

targets_refresh_job = define_asset_job(
    name="targets_refresh_job",
    selection=AssetSelection.assets(
        "gold_market_features", "gold_daily_market_features", "ml_performance", "vol_forecasts"
    )
    - FRESHNESS_SELECTION,
    partitions_def=daily_partitions,
    description=(
        "Re-materialize the gold market tables of recent days so their forward targets fill in,"
        " the model's live performance on those outcomes, and the volatility forecasts' realised"
        " outcomes."
    ),
)

live_job = define_asset_job(
    name="live_job",
    selection=AssetSelection.groups("live"),
    partitions_def=live_partitions,
    description=(
        "One UTC hour of the live slice: the stream's closed minutes and trades -> raw -> bronze"
        " -> silver -> GOLD_LIVE_MARKET; launched by live_slice_sensor as minutes arrive."
    ),
)
