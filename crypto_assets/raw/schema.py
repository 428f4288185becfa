"""The raw layer's contract: klines exactly as the exchange sent them, plus where and when."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from pyspark.sql import types as T

from crypto_assets.ingestion.binance import Kline

# Prices and volumes stay the exchange's decimal strings: raw never rounds, so bronze can be
# rebuilt from it at any time with any precision policy.
RAW_KLINES_SCHEMA = T.StructType(
    [
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


def frame_to_raw(
    symbol: str, interval: str, klines: pd.DataFrame, source: str, ingested_at: datetime
) -> pd.DataFrame:
    """A validated kline frame (see ``ingestion.binance.klines_frame``) in the raw schema."""
    frame = klines.copy()
    frame.insert(0, "symbol", symbol)
    frame["interval"] = interval
    frame["source"] = source
    frame["ingested_at"] = pd.Timestamp(ingested_at).tz_convert("UTC").tz_localize(None)
    return frame[[f.name for f in RAW_KLINES_SCHEMA.fields]]


def klines_to_pandas(
    symbol: str, interval: str, klines: list[Kline], source: str, ingested_at: datetime
) -> pd.DataFrame:
    """One symbol's klines as a pandas frame in the raw schema's column order."""
    frame = pd.DataFrame(
        [k.__dict__ for k in klines],
        columns=[f.name for f in RAW_KLINES_SCHEMA.fields if f.name in Kline.__dataclass_fields__],
    )
    frame.insert(0, "symbol", symbol)
    frame["interval"] = interval
    frame["source"] = source
    frame["ingested_at"] = pd.Timestamp(ingested_at).tz_convert("UTC").tz_localize(None)
    for column in ("open_time", "close_time", "trade_count"):
        frame[column] = frame[column].astype("int64")
    return frame[[f.name for f in RAW_KLINES_SCHEMA.fields]]
