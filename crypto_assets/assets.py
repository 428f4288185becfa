"""Every asset of the platform, in lineage order: one list for the code location and the jobs."""

from __future__ import annotations

from crypto_assets.bronze.assets import bronze_klines
from crypto_assets.gold.assets import GOLD_ASSETS
from crypto_assets.live.assets import LIVE_ASSETS, LIVE_SPECS
from crypto_assets.ml.assets import ML_DAILY_ASSETS, ML_TRAINING_ASSETS
from crypto_assets.ml.vol_assets import VOL_DAILY_ASSETS, VOL_TRAINING_ASSETS
from crypto_assets.raw.assets import raw_klines
from crypto_assets.raw.coingecko_assets import raw_coingecko_markets
from crypto_assets.silver.assets import SILVER_ASSETS

ASSETS = [
    raw_klines,
    raw_coingecko_markets,
    bronze_klines,
    *SILVER_ASSETS,
    *GOLD_ASSETS,
    *ML_TRAINING_ASSETS,
    *ML_DAILY_ASSETS,
    *VOL_TRAINING_ASSETS,
    *VOL_DAILY_ASSETS,
    *LIVE_ASSETS,
]
# The stream's own tables (written by `crypto-analytics stream`, not by a run): lineage only.
SPECS = LIVE_SPECS
