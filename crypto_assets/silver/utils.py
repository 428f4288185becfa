"""Window helpers for silver's transformers. Pure Spark.

Two kinds of windows, both bounded in time so that a day computed with its look-back gives
exactly the values the whole history gives:
- **time windows** (returns, volatility, VWAP, z-scores, correlations): the bars opening in the
  last ``n`` intervals; a missing bar is missing, never stretched over;
- **observed-bar windows** (RSI, MACD, Bollinger, ATR, as every TA library counts them): the last
  ``n`` bars the exchange delivered, taken from at most ``n * (1 + gap_allowance)`` intervals back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window, WindowSpec
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StructField, StructType

SECONDS_PER_YEAR = 365 * 86_400


def in_window(frame: DataFrame, column: str, start: datetime, end: datetime) -> DataFrame:
    """Rows of ``frame`` whose ``column`` lies in ``[start, end)`` (a partition's time window)."""
    return frame.where((F.col(column) >= F.lit(start)) & (F.col(column) < F.lit(end)))


def by_time(partition: str = "token") -> WindowSpec:
    return Window.partitionBy(partition).orderBy(F.unix_timestamp("open_time"))


def time_window(bars: int, interval_seconds: int) -> WindowSpec:
    """The ``bars`` slots ending with the current one."""
    return by_time().rangeBetween(-(bars - 1) * interval_seconds, 0)


def bar_at(column: str, bars_back: int, interval_seconds: int) -> Column:
    """``column`` of the bar opening exactly ``bars_back`` intervals earlier (negative: later);
    null if that bar is missing."""
    offset = -bars_back * interval_seconds
    return F.first(column).over(by_time().rangeBetween(offset, offset))


def ema_bars(alpha: float, tolerance: float) -> int:
    """Bars after which an EMA's left-out weight ``(1 - alpha) ** n`` is below ``tolerance``."""
    return math.ceil(math.log(tolerance) / math.log(1 - alpha))


def span_bars(bars: int, gap_allowance: float) -> int:
    """Intervals an observed-bar window of ``bars`` may reach back over."""
    return math.ceil(bars * (1 + gap_allowance))


def last_observed(value: Column, bars: int, span: int, interval_seconds: int) -> Column:
    """The last ``bars`` non-null values (oldest first) within ``span`` intervals; null if fewer."""
    history = F.collect_list(value).over(time_window(span, interval_seconds))
    return F.when(F.size(history) >= bars, F.slice(history, -bars, bars))


def annualise(bar_seconds: int) -> float:
    return math.sqrt(SECONDS_PER_YEAR / bar_seconds)


def min_count(bars: int, fraction: float) -> int:
    return max(2, math.ceil(bars * fraction))


# --- Recursive indicators, run per token in pandas -------------------------------------------
# An EMA is a recursion: SQL windows cannot express it, and Spark's array lambdas run it ~100x
# slower than numpy. Each token's rows go through one vectorised pass (Arrow), computing for
# every bar the same truncated recursion: bit-identical whatever history precedes the window.


def truncated_ema(values: np.ndarray, alpha: float, bars: int) -> np.ndarray:
    """``out[i]``: the EMA (``adjust=False``) of ``values[i - bars + 1 .. i]`` seeded with its
    first value; NaN while fewer than ``bars`` values exist."""
    n = len(values)
    out = np.full(n, np.nan)
    if n < bars:
        return out
    keep, take = 1 - alpha, alpha
    acc = values[: n - bars + 1].copy()
    for j in range(1, bars):
        acc = acc * keep + values[j : n - bars + 1 + j] * take
    out[bars - 1 :] = acc
    return out


def within_reach(seconds: np.ndarray, bars: int, span: int, interval_seconds: int) -> np.ndarray:
    """True where the last ``bars`` observed bars all open within ``span`` intervals."""
    n = len(seconds)
    ok = np.zeros(n, dtype=bool)
    if n >= bars:
        oldest = seconds[: n - bars + 1]
        ok[bars - 1 :] = oldest >= seconds[bars - 1 :] - (span - 1) * interval_seconds
    return ok


Recursion = Callable[[pd.DataFrame], dict[str, np.ndarray]]


def per_token(bars: DataFrame, columns: Sequence[str], compute: Recursion) -> DataFrame:
    """Add double ``columns`` computed by ``compute`` on each token's observed bars (rows with a
    close, oldest first, with ``seconds`` = open time in epoch seconds). Gap rows get null."""
    schema = StructType([*bars.schema.fields, *[StructField(c, DoubleType(), True) for c in columns]])

    def run(rows: pd.DataFrame) -> pd.DataFrame:
        rows = rows.sort_values("open_time", kind="stable").reset_index(drop=True)
        observed = rows[rows["close"].notna()].reset_index()
        observed["seconds"] = observed["open_time"].dt.as_unit("s").astype("int64")
        results = compute(observed) if len(observed) else {}
        for column in columns:
            values = np.full(len(rows), np.nan)
            if column in results:
                values[observed["index"].to_numpy()] = results[column]
            rows[column] = values
        return rows

    return bars.groupBy("token").applyInPandas(run, schema=schema)
