"""Window helpers for silver's transformers: Spark for bar lookups, numpy for the per-token pass.

Two kinds of windows, both bounded in time so that a day computed with its look-back gives
exactly the values the whole history gives:
- **time windows** (returns, volatility, VWAP, z-scores, correlations): the bars opening in the
  last ``n`` intervals; a missing bar is missing, never stretched over;
- **observed-bar windows** (RSI, MACD, Bollinger, ATR, as every TA library counts them): the last
  ``n`` bars the exchange delivered, taken from at most ``n * (1 + gap_allowance)`` intervals back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window, WindowSpec
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

SECONDS_PER_YEAR = 365 * 86_400


def in_window(frame: DataFrame, column: str, start: datetime, end: datetime) -> DataFrame:
    """Rows of ``frame`` whose ``column`` lies in ``[start, end)`` (a partition's time window)."""
    return frame.where((F.col(column) >= F.lit(start)) & (F.col(column) < F.lit(end)))


def by_time(partition: str = "token") -> WindowSpec:
    return Window.partitionBy(partition).orderBy(F.unix_timestamp("open_time"))


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


def annualise(bar_seconds: int) -> float:
    return math.sqrt(SECONDS_PER_YEAR / bar_seconds)


def min_count(bars: int, fraction: float) -> int:
    return max(2, math.ceil(bars * fraction))


# --- Per-token numpy pass ---------------------------------------------------------------------
# An EMA is a recursion: SQL windows cannot express it, and Spark's array lambdas run it ~100x
# slower than numpy. Sliding aggregates are no better in Spark: its sliding frame re-aggregates the
# whole frame for every row (a 168-bar correlation is 168 updates per row and aggregate), ~10 s
# for a 605-day look-back of daily bars. So every windowed feature runs per token in one
# vectorised pass (Arrow): each value is computed from its own window only, in a fixed order
# (oldest first), never from a running total, so a value is bit-identical whatever history
# precedes its window (the day-alone = whole-history guarantee).


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


def _windows(values: np.ndarray, bars: int) -> Iterator[np.ndarray]:
    """The ``j``-th element of every trailing window of ``bars`` values, oldest first (NaN before
    the first value): ``bars`` aligned arrays as long as ``values``."""
    padded = np.concatenate([np.full(bars - 1, np.nan), values])
    for j in range(bars):
        yield padded[j : j + len(values)]


def rolling_count(present: np.ndarray, bars: int) -> np.ndarray:
    """How many of the last ``bars`` slots are ``present`` (integers: a running total is exact)."""
    total = np.concatenate([[0], np.cumsum(present, dtype=np.int64)])
    return total[1:] - total[np.maximum(np.arange(1, len(present) + 1) - bars, 0)]


def rolling_sum(values: np.ndarray, bars: int) -> np.ndarray:
    """Sum of the non-NaN values among the last ``bars`` slots, added oldest first (0 if none)."""
    acc = np.zeros(len(values))
    for window in _windows(values, bars):
        acc += np.where(np.isnan(window), 0.0, window)
    return acc


@dataclass(frozen=True)
class Moments:
    """Over trailing windows, the slots where both series are present: their count, means, and
    sums of squared (``sxx``, ``syy``) and cross (``sxy``) deviations from the means."""

    count: np.ndarray
    mean_x: np.ndarray
    mean_y: np.ndarray
    sxx: np.ndarray
    syy: np.ndarray
    sxy: np.ndarray

    def sample_std_x(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count >= 2, np.sqrt(self.sxx / (self.count - 1)), np.nan)


def rolling_moments(x: np.ndarray, y: np.ndarray | None, bars: int) -> Moments:
    """:class:`Moments` of ``x`` and ``y`` over the last ``bars`` slots, two-pass (means first);
    ``y`` None: of ``x`` alone (``y`` fields repeat ``x``'s)."""
    both = ~np.isnan(x) if y is None else ~(np.isnan(x) | np.isnan(y))
    x = np.where(both, x, np.nan)
    count = rolling_count(both, bars)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x = rolling_sum(x, bars) / count
    sxx = np.zeros(len(x))
    if y is None:
        for wx in _windows(x, bars):
            dx = np.where(np.isnan(wx), 0.0, wx - mean_x)
            sxx += dx * dx
        return Moments(count, mean_x, mean_x, sxx, sxx, sxx)
    y = np.where(both, y, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_y = rolling_sum(y, bars) / count
    syy, sxy = np.zeros(len(x)), np.zeros(len(x))
    for wx, wy in zip(_windows(x, bars), _windows(y, bars), strict=True):
        dx = np.where(np.isnan(wx), 0.0, wx - mean_x)
        dy = np.where(np.isnan(wy), 0.0, wy - mean_y)
        sxx += dx * dx
        syy += dy * dy
        sxy += dx * dy
    return Moments(count, mean_x, mean_y, sxx, syy, sxy)


@dataclass(frozen=True)
class Grid:
    """One token's bars on the dense grid of its interval, from its first to its last slot: a slot
    without a row is NaN in every column, as is a gap row's close. ``observed`` marks rows with a
    close; ``log_return`` is the 1-bar log return (NaN across a missing bar); the column ``_btc``
    is BTC's 1-bar log return at the same slot."""

    interval_seconds: int
    columns: Mapping[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def shifted(self, name: str, bars: int) -> np.ndarray:
        """``name`` of the slot ``bars`` intervals earlier (NaN before the grid starts)."""
        values = self.columns[name]
        if bars >= len(values):
            return np.full(len(values), np.nan)
        return np.concatenate([np.full(bars, np.nan), values[: len(values) - bars]])

    @cached_property
    def observed(self) -> np.ndarray:
        return ~np.isnan(self.columns["close"])

    @cached_property
    def log_return(self) -> np.ndarray:
        return log_ratio(self.columns["close"], self.shifted("close", 1))


def log_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ln(a / b), NaN where either is missing or the ratio is not positive (as Spark's ``log``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = a / b
        return np.where(ratio > 0, np.log(np.where(ratio > 0, ratio, 1.0)), np.nan)


Recursion = Callable[[pd.DataFrame], dict[str, np.ndarray]]
WindowCompute = Callable[[Grid], dict[str, np.ndarray]]
# Grid columns handed to window features (NaN where missing).
GRID_COLUMNS = ("close", "high", "low", "volume", "_btc")


def per_token(
    bars: DataFrame,
    columns: Sequence[str],
    interval_seconds: int,
    recursion: Recursion | None = None,
    windows: WindowCompute | None = None,
    integer_columns: Sequence[str] = (),
) -> DataFrame:
    """Add ``columns`` (double; ``integer_columns`` int) computed per token: ``recursion`` on the
    token's observed bars (rows with a close, oldest first, with ``seconds`` = open time in epoch
    seconds; gap rows get null), ``windows`` on its dense :class:`Grid` (one value per slot; the
    rows take their slot's value)."""
    schema = StructType(
        [
            *bars.schema.fields,
            *[StructField(c, IntegerType() if c in integer_columns else DoubleType(), True) for c in columns],
        ]
    )

    def run(rows: pd.DataFrame) -> pd.DataFrame:
        rows = rows.sort_values("open_time", kind="stable").reset_index(drop=True)
        seconds = rows["open_time"].dt.as_unit("s").astype("int64").to_numpy()
        results: dict[str, np.ndarray] = {}
        if recursion is not None:
            observed = rows[rows["close"].notna()].reset_index()
            observed["seconds"] = seconds[observed["index"].to_numpy()]
            for name, values in (recursion(observed) if len(observed) else {}).items():
                out = np.full(len(rows), np.nan)
                out[observed["index"].to_numpy()] = values
                results[name] = out
        if windows is not None and len(rows):
            slot = (seconds - seconds[0]) // interval_seconds
            dense: dict[str, np.ndarray] = {}
            for name in GRID_COLUMNS:
                if name in rows:
                    column = np.full(int(slot[-1]) + 1, np.nan)
                    column[slot] = rows[name].to_numpy(dtype=np.float64, na_value=np.nan)
                    dense[name] = column
            for name, values in windows(Grid(interval_seconds, dense)).items():
                results[name] = values[slot]
        for column in columns:
            values = results.get(column, np.full(len(rows), np.nan))
            rows[column] = pd.array(values, dtype="Int32") if column in integer_columns else values
        return rows

    return bars.groupBy("token").applyInPandas(run, schema=schema)
