"""Data-quality summaries of a layer's DataFrame, computed in one Spark aggregation.

Pure Spark (no Dagster): the asset checks in ``checks.py`` turn a summary into check results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T


@dataclass(frozen=True)
class QualitySummary:
    rows: int
    duplicate_keys: int
    null_keys: int
    ohlc_violations: int
    tokens: tuple[str, ...]
    first_time: datetime | None
    last_time: datetime | None
    extra: dict[str, Any] = field(default_factory=dict)


def any_null(keys: Sequence[str]) -> Column:
    """True where any of ``keys`` is null."""
    null = F.lit(False)
    for key in keys:
        null = null | F.col(key).isNull()
    return null


def ohlc_violation(frame: DataFrame) -> Column:
    """True where low > open/close, high < open/close, low > high, or open/close is missing;
    always False for a frame without OHLC columns."""
    if not {"open", "high", "low", "close"} <= set(frame.columns):
        return F.lit(False)
    o, h, lo, c = (F.col(n) for n in ("open", "high", "low", "close"))
    return (lo > o) | (lo > c) | (h < o) | (h < c) | (lo > h) | o.isNull() | c.isNull()


def summarize(
    frame: DataFrame,
    keys: tuple[str, ...],
    time_column: str,
    token_column: str = "token",
    observed: Column | None = None,
    extra_aggregates: Mapping[str, Column] | None = None,
) -> QualitySummary:
    """Row count, duplicate and null keys, OHLC violations and coverage: one pass for the
    counts, one for the distinct keys.

    OHLC consistency means low <= min(open, close) and max(open, close) <= high, and low <= high.
    A frame without OHLC columns reports 0 violations. ``observed`` marks the rows that hold a
    real bar (flagged gap rows are not): only those are held to OHLC consistency and count for
    coverage. ``extra_aggregates`` ride along in the same pass, into ``summary.extra``.
    """
    real = F.lit(True) if observed is None else observed
    null_key = any_null(keys)
    bad_ohlc = ohlc_violation(frame)
    # The distinct count is its own aggregation: beside the others, Spark plans a distinct
    # aggregate with an Expand that copies every row once per aggregate group, which made the
    # summary 7.6 s instead of 2.9 s on a month of bronze minutes (1.4 M rows, measured).
    row = frame.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(null_key.cast("int")).alias("null_keys"),
        F.sum((real & F.coalesce(bad_ohlc, F.lit(True))).cast("int")).alias("ohlc_violations"),
        F.array_sort(F.collect_set(F.when(real, F.col(token_column)))).alias("tokens"),
        *[column.alias(name) for name, column in (extra_aggregates or {}).items()],
        F.min(time_column).alias("first_time"),
        F.max(time_column).alias("last_time"),
    ).first()
    assert row is not None
    rows = int(row["rows"])
    distinct = frame.agg(F.count_distinct(F.when(~null_key, F.struct(*[F.col(k) for k in keys])))).first()
    distinct_keys = int(distinct[0]) if distinct is not None else 0
    return QualitySummary(
        rows=rows,
        # Rows with a null key are not counted as distinct keys: they are reported as null keys.
        duplicate_keys=rows - int(row["null_keys"] or 0) - distinct_keys,
        null_keys=int(row["null_keys"] or 0),
        ohlc_violations=int(row["ohlc_violations"] or 0),
        tokens=tuple(row["tokens"] or ()),
        first_time=row["first_time"],
        last_time=row["last_time"],
        extra={name: row[name] for name in (extra_aggregates or {})},
    )


@dataclass(frozen=True)
class DaySummary:
    """What one UTC day of a multi-day frame holds: its own rows, tokens and time range."""

    rows: int
    tokens: tuple[str, ...]
    first_time: Any
    last_time: Any


EMPTY_DAY = DaySummary(rows=0, tokens=(), first_time=None, last_time=None)


def utc_day(frame: DataFrame, time_column: str) -> Column:
    """'YYYY-MM-DD' of ``time_column`` (a timestamp, or the exchange's epoch milliseconds)."""
    column = F.col(time_column)
    if isinstance(frame.schema[time_column].dataType, (T.LongType, T.IntegerType)):
        column = F.timestamp_millis(column)
    return F.date_format(column, "yyyy-MM-dd")


def summarize_days(
    frame: DataFrame, time_column: str, token_column: str = "token", observed: Column | None = None
) -> dict[str, DaySummary]:
    """Per UTC day: rows, tokens with a real bar, first and last time, in one aggregation (days
    without a row are absent: ``EMPTY_DAY``)."""
    real = F.lit(True) if observed is None else observed
    rows = (
        frame.groupBy(utc_day(frame, time_column).alias("_day"))
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.array_sort(F.collect_set(F.when(real, F.col(token_column)))).alias("tokens"),
            F.min(time_column).alias("first_time"),
            F.max(time_column).alias("last_time"),
        )
        .collect()
    )
    return {
        r["_day"]: DaySummary(int(r["rows"]), tuple(r["tokens"] or ()), r["first_time"], r["last_time"])
        for r in rows
    }
