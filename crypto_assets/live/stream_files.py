"""The stream's Parquet files (``lake/stream/<table>``) as a Spark DataFrame, for the live slice
and the day-close agreement check."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema

from crypto_assets.streaming.sink import SCHEMAS, files_between


def stream_schema(table: str) -> T.StructType:
    return from_arrow_schema(SCHEMAS[table])


def read_stream(
    spark: SparkSession, lake_root: Path, table: str, start_ms: int, end_ms: int
) -> DataFrame | None:
    """The rows of the stream table's files that may hold times in ``[start_ms, end_ms)`` (chosen
    by their names; rows outside are the caller's to filter), or None when there is no such file."""
    files = files_between(Path(lake_root), table, start_ms, end_ms)
    if not files:
        return None
    return spark.read.schema(stream_schema(table)).parquet(*[str(f) for f in files])
