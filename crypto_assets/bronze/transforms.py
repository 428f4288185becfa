"""Bronze: typed, UTC, deduplicated klines, one row per token and minute. Pure Spark."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

# Bronze is the 1-minute grid; coarser imported bars (1h files) stay in raw until resampled.
INTERVAL = "1m"
# 38 digits with 18 decimals: PEPE's 1e-8 ticks and 1e13 volumes both fit with no rounding.
AMOUNT = T.DecimalType(38, 18)
BRONZE_COLUMNS = (
    "token", "category", "symbol", "open_time", "open", "high", "low", "close", "volume",
    "quote_volume", "trade_count", "taker_buy_base_volume", "taker_buy_quote_volume",
    "source", "ingested_at",
)  # fmt: skip


def _lookup(mapping: Mapping[str, str], key: Column) -> Column:
    if not mapping:
        return F.lit(None).cast("string")
    pairs = [F.lit(v) for kv in sorted(mapping.items()) for v in kv]
    return F.create_map(*pairs)[key]


def clean_klines(
    raw: DataFrame,
    pair_tokens: Mapping[str, str],
    token_categories: Mapping[str, str],
    start: datetime,
    end: datetime,
) -> DataFrame:
    """Type and deduplicate raw klines for the window ``[start, end)``.

    Dedup rule: for one (token, open_time), the most recently ingested row wins (a re-fetch
    corrects a row; it never adds one). Rows of unknown pairs keep a null token, which the
    blocking ``no_null_keys`` check then reports instead of dropping them silently.
    """
    typed = raw.select(
        _lookup(pair_tokens, F.col("symbol")).alias("token"),
        F.col("symbol"),
        F.timestamp_millis(F.col("open_time")).alias("open_time"),
        *[F.col(c).cast(AMOUNT).alias(c) for c in ("open", "high", "low", "close", "volume")],
        F.col("quote_volume").cast(AMOUNT).alias("quote_volume"),
        F.col("trade_count").cast("long").alias("trade_count"),
        F.col("taker_buy_base_volume").cast(AMOUNT).alias("taker_buy_base_volume"),
        F.col("taker_buy_quote_volume").cast(AMOUNT).alias("taker_buy_quote_volume"),
        F.col("source"),
        F.col("ingested_at"),
        F.col("interval").alias("_interval"),
    ).where(
        (F.col("open_time") >= F.lit(start))
        & (F.col("open_time") < F.lit(end))
        & (F.col("_interval") == INTERVAL)
    )
    latest_first = Window.partitionBy("token", "symbol", "open_time").orderBy(F.col("ingested_at").desc())
    deduplicated = (
        typed.withColumn("_rank", F.row_number().over(latest_first))
        .where(F.col("_rank") == 1)
        .drop("_rank", "_interval")
    )
    return deduplicated.withColumn("category", _lookup(token_categories, F.col("token"))).select(
        *BRONZE_COLUMNS
    )
