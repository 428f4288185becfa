"""How new raw rows join a raw partition that may already hold rows from other sources.

Raw keeps one row per (venue, market, symbol, interval, open_time, source): sources never
overwrite each other here. Which source wins a slot is bronze's decision (the latest ingestion),
so undoing an import (removing its source) brings the rows it shadowed back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from crypto_assets.raw.schema import RAW_KEY, with_provenance


@dataclass(frozen=True)
class Coverage:
    """What one source delivered for one series: the range a re-delivery replaces."""

    source: str
    venue: str
    market: str
    symbol: str
    interval: str
    first_open_ms: int
    last_open_ms: int

    def rows(self) -> Column:
        return (
            (F.col("source") == self.source)
            & (F.col("venue") == self.venue)
            & (F.col("market") == self.market)
            & (F.col("symbol") == self.symbol)
            & (F.col("interval") == self.interval)
            & F.col("open_time").between(self.first_open_ms, self.last_open_ms)
        )


def covered_rows(coverages: Sequence[Coverage]) -> Column:
    """Rows that the re-delivery of ``coverages`` replaces: the same source's rows of the same
    series inside the delivered time range, nothing else."""
    selected = F.lit(False)
    for coverage in coverages:
        selected = selected | coverage.rows()
    return selected


def exchange_rows(sources: Iterable[str], since_ms: Mapping[str, int], venue: str, market: str) -> Column:
    """Rows an exchange re-fetch replaces: its own sources, the fetched intervals from the
    fetched start (a day's 1d kline re-fetched keeps the day's 1m rows)."""
    fetched = F.lit(False)
    for interval, since in since_ms.items():
        fetched = fetched | ((F.col("interval") == interval) & (F.col("open_time") >= since))
    return (
        F.col("source").isin(list(sources))
        & (F.col("venue") == venue)
        & (F.col("market") == market)
        & fetched
    )


def merge_raw(existing: DataFrame | None, new: DataFrame, replaced: Column) -> DataFrame:
    """``existing`` minus the ``replaced`` rows, plus ``new``; one row per raw key (the latest
    ingestion of the same source wins)."""
    combined = new if existing is None else with_provenance(existing).where(~replaced).unionByName(new)
    latest = Window.partitionBy(*RAW_KEY).orderBy(F.col("ingested_at").desc())
    return combined.withColumn("_rank", F.row_number().over(latest)).where("_rank = 1").drop("_rank")
