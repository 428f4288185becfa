"""The raw layer's contract: klines exactly as the exchange sent them, plus where and when."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

# Prices and volumes stay the exchange's decimal strings: raw never rounds, so bronze can be
# rebuilt from it at any time with any precision policy.
RAW_KLINES_SCHEMA = T.StructType(
    [
        # Provenance: the same pair on another venue or market is another series, never a
        # correction of this one (Binance.US BTCUSDT is not Binance spot BTCUSDT).
        T.StructField("venue", T.StringType(), False),
        T.StructField("market", T.StringType(), False),
        T.StructField("symbol", T.StringType(), False),
        T.StructField("open_time", T.LongType(), False),
        T.StructField("open", T.StringType(), False),
        T.StructField("high", T.StringType(), False),
        T.StructField("low", T.StringType(), False),
        T.StructField("close", T.StringType(), False),
        T.StructField("volume", T.StringType(), False),
        T.StructField("close_time", T.LongType(), False),
        T.StructField("quote_volume", T.StringType(), True),
        T.StructField("trade_count", T.LongType(), True),
        T.StructField("taker_buy_base_volume", T.StringType(), True),
        T.StructField("taker_buy_quote_volume", T.StringType(), True),
        T.StructField("interval", T.StringType(), False),
        T.StructField("source", T.StringType(), False),
        T.StructField("ingested_at", T.TimestampType(), False),
    ]
)


# The values of a kline (after its key), in the exchange's field order: what two deliveries of
# the same closed candle must agree on.
KLINE_VALUES = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trade_count",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
)
# One row per key and source: sources never overwrite each other in raw; bronze picks the winner.
RAW_KEY = ("venue", "market", "symbol", "interval", "open_time", "source")
SERIES = ("venue", "market", "symbol", "interval")
PROVENANCE_DEFAULTS = {"venue": "binance", "market": "spot"}


def with_provenance(frame: DataFrame) -> DataFrame:
    """Partitions written before venue and market were recorded held Binance spot rows only."""
    for column, value in PROVENANCE_DEFAULTS.items():
        if column not in frame.columns:
            frame = frame.withColumn(column, F.lit(value))
    return frame


def frame_to_raw(
    symbol: str,
    interval: str,
    klines: pd.DataFrame,
    source: str,
    ingested_at: datetime,
    venue: str = "binance",
    market: str = "spot",
) -> pd.DataFrame:
    """A validated kline frame (see ``ingestion.binance.klines_frame``) in the raw schema."""
    frame = klines.copy()
    frame.insert(0, "symbol", symbol)
    frame.insert(0, "market", market)
    frame.insert(0, "venue", venue)
    frame["interval"] = interval
    frame["source"] = source
    frame["ingested_at"] = pd.Timestamp(ingested_at).tz_convert("UTC").tz_localize(None)
    return frame[[f.name for f in RAW_KLINES_SCHEMA.fields]]
