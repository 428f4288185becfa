"""Silver: per-minute features. Pure Spark, gap-aware (a return never spans a missing minute)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

MINUTES_PER_YEAR = 365 * 24 * 60
DEFAULT_VOLATILITY_WINDOWS = (15, 60)
LOOKBACK_DAYS = 1  # the longest window must fit in one previous partition


def minute_returns(bars: DataFrame) -> DataFrame:
    """Add ``return_1m`` and ``log_return_1m`` from the previous minute's close.

    Across a gap (outage, listing start) the previous bar is not the previous minute: the return
    is null rather than a multi-minute move labelled as one minute.
    """
    by_time = Window.partitionBy("token").orderBy("open_time")
    previous_close = F.lag("close_f").over(by_time)
    previous_time = F.lag("open_time").over(by_time)
    contiguous = (F.unix_timestamp("open_time") - F.unix_timestamp(previous_time)) == 60
    return bars.withColumn("close_f", F.col("close").cast("double")).select(
        "*",
        F.when(contiguous, F.col("close_f") / previous_close - 1).alias("return_1m"),
        F.when(contiguous, F.log(F.col("close_f") / previous_close)).alias("log_return_1m"),
    )


def rolling_volatility(frame: DataFrame, minutes: int) -> DataFrame:
    """Annualised realised volatility of 1m log returns over the last ``minutes`` minutes.

    Null until the window holds ``minutes`` returns (warm-up), so a partial window is never
    passed off as a full one.
    """
    window = (
        Window.partitionBy("token")
        .orderBy(F.unix_timestamp("open_time"))
        .rangeBetween(-(minutes - 1) * 60, 0)
    )
    observed = F.count("log_return_1m").over(window)
    volatility = F.stddev_samp("log_return_1m").over(window) * math.sqrt(MINUTES_PER_YEAR)
    return frame.withColumn(f"volatility_{minutes}m", F.when(observed >= minutes, volatility))


def minute_features(
    bronze: DataFrame,
    start: datetime,
    end: datetime,
    volatility_windows: Sequence[int] = DEFAULT_VOLATILITY_WINDOWS,
) -> DataFrame:
    """Features for bars opening in ``[start, end)``; ``bronze`` may include earlier look-back rows."""
    frame = minute_returns(bronze)
    for minutes in volatility_windows:
        frame = rolling_volatility(frame, minutes)
    return frame.where((F.col("open_time") >= F.lit(start)) & (F.col("open_time") < F.lit(end))).select(
        "token", "category", "symbol", "open_time",
        *[F.col(c).cast("double").alias(c) for c in ("open", "high", "low", "close", "volume", "quote_volume")],
        "trade_count",
        F.col("taker_buy_base_volume").cast("double").alias("taker_buy_base_volume"),
        "return_1m", "log_return_1m",
        *[f"volatility_{m}m" for m in volatility_windows],
    )  # fmt: skip
