"""How new raw rows join a raw partition that may already hold rows from other sources."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

RAW_KEY = ("symbol", "interval", "open_time")


def merge_raw(
    existing: DataFrame | None,
    new: DataFrame,
    replaced_sources: Iterable[str],
    replaced_intervals: Mapping[str, int] | None = None,
) -> DataFrame:
    """``existing`` minus the rows of ``replaced_sources``, plus ``new``; one row per key.

    A source re-delivering a day replaces its own rows (an exchange re-fetch, the same file
    imported again); rows of other sources (a user's file import) stay. With
    ``replaced_intervals`` (interval -> first open time in epoch ms that was fetched), only those
    intervals from those times are replaced: fetching a day's 1d kline keeps its 1m rows. Where
    two sources give the same (symbol, interval, open_time), the latest ingestion wins.
    """
    replaced = F.col("source").isin(list(replaced_sources))
    if replaced_intervals is not None:
        fetched = F.lit(False)
        for interval, since_ms in replaced_intervals.items():
            fetched = fetched | ((F.col("interval") == interval) & (F.col("open_time") >= since_ms))
        replaced = replaced & fetched
    combined = new if existing is None else existing.where(~replaced).unionByName(new)
    latest = Window.partitionBy(*RAW_KEY).orderBy(F.col("ingested_at").desc(), F.col("source"))
    return combined.withColumn("_rank", F.row_number().over(latest)).where("_rank = 1").drop("_rank")
