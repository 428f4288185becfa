"""Real 2023 Binance bars (hourly) through bronze and silver resampling, once per session."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from crypto_assets.bronze.transforms import clean_klines
from crypto_assets.ingestion.binance import INTERVAL_MS
from crypto_assets.raw.file_import import read_file
from crypto_assets.raw.schema import RAW_KLINES_SCHEMA
from crypto_assets.silver.config import feature_input
from crypto_assets.silver.transformers import resample_bars
from crypto_assets.universe import load_universe, series_key

# BTC (the beta reference), PEPE (1e-6 prices, listed 2023-05-05 18:00), USDC (suspended until
# 2023-03-11 14:00, a stablecoin), ETH. All four have the 2023-03-24 outage.
TOKENS = ("BTC", "ETH", "PEPE", "USDC")
YEAR = (datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 12, 31, tzinfo=UTC))


@pytest.fixture(scope="session")
def real_bronze(spark, real_data):
    raw = pd.concat(
        [read_file(real_data / "binance_spot_1h_2023" / f"{t}USDT_1h.csv.gz").rows for t in TOKENS],
        ignore_index=True,
    )
    universe = load_universe()
    bronze = clean_klines(
        spark.createDataFrame(raw, RAW_KLINES_SCHEMA),
        series_tokens=universe.series_tokens(),
        token_categories={t.symbol: t.category for t in universe.tokens},
        listings=[
            (series_key(lst.exchange, lst.market, lst.pair), lst.start, lst.end)
            for t in universe.tokens
            for lst in t.listings
        ],
        start=YEAR[0],
        end=YEAR[1],
        intervals=tuple(INTERVAL_MS),
    )
    return bronze.localCheckpoint()


@pytest.fixture(scope="session")
def real_hourly_bars(real_bronze):
    return feature_input(resample_bars(real_bronze, "1h")).localCheckpoint()


@pytest.fixture(scope="session")
def real_hourly_features(real_hourly_bars):
    """The whole year's hourly features, computed once."""
    from crypto_assets.silver.config import feature_plans

    return feature_plans()["1h"].apply(real_hourly_bars).localCheckpoint()
