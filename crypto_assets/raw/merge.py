"""How new raw rows join a raw partition that may already hold rows from other sources."""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

RAW_KEY = ("symbol", "interval", "open_time")


def merge_raw(existing: DataFrame | None, new: DataFrame, replaced_sources: Iterable[str]) -> DataFrame:
    """``existing`` minus the rows of ``replaced_sources``, plus ``new``; one row per key.

    A source re-delivering a day replaces its own rows (an exchange re-fetch, the same file
    imported again); rows of other sources (a user's file import, another interval) stay. Where
    two sources give the same (symbol, interval, open_time), the latest ingestion wins.
    """
    sources = list(replaced_sources)
    combined = new if existing is None else existing.where(~F.col("source").isin(sources)).unionByName(new)
    latest = Window.partitionBy(*RAW_KEY).orderBy(F.col("ingested_at").desc(), F.col("source"))
    return combined.withColumn("_rank", F.row_number().over(latest)).where("_rank = 1").drop("_rank")
