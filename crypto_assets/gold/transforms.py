"""Gold: the ML-ready hourly market table. Pure Spark."""

from __future__ import annotations

import math

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crypto_assets.silver.transforms import MINUTES_PER_YEAR

GOLD_COLUMNS = (
    "dt", "bar_time", "token", "category", "symbol", "open", "high", "low", "close", "volume",
    "quote_volume", "vwap", "trade_count", "taker_buy_ratio", "return_1h", "log_return_1h",
    "realized_vol_1h", "volatility_60m", "minutes_observed", "is_complete",
)  # fmt: skip


def hourly_market_features(minutes: DataFrame) -> DataFrame:
    """One row per token and hour from 1-minute silver features.

    ``return_1h`` compounds the hour's 1m returns (close-to-close from the previous hour's last
    close); ``realized_vol_1h`` is the annualised stdev of those returns; ``is_complete`` says
    whether all 60 minutes were observed, so a model can drop or weight partial hours.
    """
    hour = F.date_trunc("hour", F.col("open_time")).alias("bar_time")
    grouped = minutes.groupBy("token", "category", "symbol", hour).agg(
        F.min_by("open", "open_time").alias("open"),
        F.max("high").alias("high"),
        F.min("low").alias("low"),
        F.max_by("close", "open_time").alias("close"),
        F.sum("volume").alias("volume"),
        F.sum("quote_volume").alias("quote_volume"),
        F.sum("trade_count").alias("trade_count"),
        F.sum("taker_buy_base_volume").alias("taker_buy_base_volume"),
        F.sum("log_return_1m").alias("log_return_1h"),
        F.stddev_samp("log_return_1m").alias("_std_1m"),
        F.max_by("volatility_60m", "open_time").alias("volatility_60m"),
        F.count(F.lit(1)).alias("minutes_observed"),
    )
    return grouped.select(
        F.to_date("bar_time").alias("dt"),
        "bar_time", "token", "category", "symbol", "open", "high", "low", "close", "volume",
        "quote_volume",
        F.when(F.col("volume") > 0, F.col("quote_volume") / F.col("volume")).alias("vwap"),
        "trade_count",
        F.when(F.col("volume") > 0, F.col("taker_buy_base_volume") / F.col("volume")).alias("taker_buy_ratio"),
        (F.exp("log_return_1h") - 1).alias("return_1h"),
        "log_return_1h",
        (F.col("_std_1m") * math.sqrt(MINUTES_PER_YEAR)).alias("realized_vol_1h"),
        "volatility_60m",
        F.col("minutes_observed").cast("int").alias("minutes_observed"),
        (F.col("minutes_observed") == 60).alias("is_complete"),
    )  # fmt: skip
