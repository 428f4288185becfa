"""Bronze: typed, UTC, deduplicated klines on a complete bar grid, gaps flagged. Pure Spark."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crypto_assets.pipeline_config import DAY_SECONDS, parse_duration

# 38 digits with 18 decimals: PEPE's 1e-8 ticks and 1e13 volumes both fit with no rounding.
AMOUNT = T.DecimalType(38, 18)
PRICES = ("open", "high", "low", "close")
VOLUMES = ("volume", "quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume")
BRONZE_KEY = ("token", "interval", "open_time")
BRONZE_COLUMNS = (
    "token", "category", "symbol", "interval", "open_time", "open", "high", "low", "close", "volume",
    "quote_volume", "trade_count", "taker_buy_base_volume", "taker_buy_quote_volume", "is_gap",
    "source", "ingested_at",
)  # fmt: skip
LISTING_SCHEMA = T.StructType(
    [
        T.StructField("token", T.StringType(), False),
        T.StructField("listed_from", T.TimestampType(), False),
        T.StructField("listed_until", T.TimestampType(), True),
    ]
)


def lookup(mapping: Mapping[str, str], key: Column) -> Column:
    """``mapping[key]`` as a Spark map literal (null for unknown keys)."""
    if not mapping:
        return F.lit(None).cast("string")
    pairs = [F.lit(v) for kv in sorted(mapping.items()) for v in kv]
    return F.create_map(*pairs)[key]


def interval_seconds(interval: Column, intervals: Sequence[str]) -> Column:
    return lookup({i: str(parse_duration(i)) for i in intervals}, interval).cast("long")


def typed_klines(raw: DataFrame, pair_tokens: Mapping[str, str]) -> DataFrame:
    """Raw decimal strings and epoch milliseconds as DECIMAL(38,18) and UTC timestamps."""
    return raw.select(
        lookup(pair_tokens, F.col("symbol")).alias("token"),
        F.col("symbol"),
        F.col("interval"),
        F.timestamp_millis(F.col("open_time")).alias("open_time"),
        *[F.col(c).cast(AMOUNT).alias(c) for c in (*PRICES, *VOLUMES)],
        F.col("trade_count").cast("long").alias("trade_count"),
        F.col("source"),
        F.col("ingested_at"),
    )


def latest_ingestion(typed: DataFrame) -> DataFrame:
    """Dedup rule: for one (token, interval, open_time), the most recently ingested row wins (a
    re-fetch corrects a row, it never adds one). Rows of unknown pairs keep a null token, which
    the blocking ``no_null_keys`` check reports instead of dropping them silently."""
    latest_first = Window.partitionBy("token", "symbol", "interval", "open_time").orderBy(
        F.col("ingested_at").desc(), F.col("source")
    )
    return typed.withColumn("_rank", F.row_number().over(latest_first)).where("_rank = 1").drop("_rank")


def expected_grid(observed: DataFrame, listings: DataFrame, intervals: Sequence[str]) -> DataFrame:
    """Every interval start a series should have: for each (token, interval, UTC day) with at
    least one bar, the day's slots inside the token's listings. A series absent for a whole day
    gets no grid (it is reported by the ``token_coverage`` check, not filled)."""
    step = interval_seconds(F.col("interval"), intervals)
    days = (
        observed.where(F.col("token").isNotNull())
        .groupBy("token", "interval", F.date_trunc("day", "open_time").alias("day"))
        .agg(F.min("symbol").alias("symbol"))
    )
    start = F.unix_timestamp("day")
    slots = days.select(
        "token",
        "interval",
        "symbol",
        F.explode(F.sequence(start, start + F.lit(DAY_SECONDS) - step, step)).alias("_slot"),
    ).withColumn("open_time", F.timestamp_seconds("_slot"))
    listed = (F.col("open_time") >= F.col("listed_from")) & (
        F.col("listed_until").isNull() | (F.col("open_time") < F.col("listed_until"))
    )
    return (
        slots.join(F.broadcast(listings), on="token", how="inner")
        .where(listed)
        .select("token", "interval", "symbol", "open_time")
        .distinct()
    )


def fill_gaps(bars: DataFrame, gap_policy: str, max_carry_seconds: int) -> DataFrame:
    """``carry_forward``: a gap row takes the last observed close (no older than ``max_carry``)
    as open, high, low and close, with zero volumes. It stays ``is_gap = true``."""
    if gap_policy != "carry_forward":
        return bars
    previous = (
        Window.partitionBy("token", "interval")
        .orderBy(F.unix_timestamp("open_time"))
        .rangeBetween(-max_carry_seconds, -1)
    )
    carried = F.last(F.when(~F.col("is_gap"), F.col("close")), ignorenulls=True).over(previous)
    filled = bars.withColumn("_carried", carried)
    zero = F.lit(0).cast(AMOUNT)
    fillable = F.col("is_gap") & F.col("_carried").isNotNull()
    return filled.select(
        *[
            F.when(fillable, F.col("_carried")).otherwise(F.col(c)).alias(c) if c in PRICES
            else F.when(fillable, zero).otherwise(F.col(c)).alias(c) if c in VOLUMES
            else F.when(fillable, F.lit(0).cast("long")).otherwise(F.col(c)).alias(c) if c == "trade_count"
            else F.col(c)
            for c in bars.columns
        ]
    )  # fmt: skip


def clean_klines(
    raw: DataFrame,
    pair_tokens: Mapping[str, str],
    token_categories: Mapping[str, str],
    listings: Sequence[tuple[str, datetime, datetime | None]],
    start: datetime,
    end: datetime,
    intervals: Sequence[str],
    gap_policy: str = "leave_missing",
    max_carry_seconds: int = DAY_SECONDS,
) -> DataFrame:
    """Bronze rows for bars opening in ``[start, end)``: one per (token, interval, open_time).

    ``raw`` may hold the previous day too (look-back for ``carry_forward``). Observed bars keep
    their source and ingestion time; every slot of the grid the exchange did not deliver is a
    row with ``is_gap = true`` (null prices, or carried forward: see :func:`fill_gaps`).
    """
    lookback_start = start - timedelta(seconds=max_carry_seconds if gap_policy == "carry_forward" else 0)
    observed = latest_ingestion(
        typed_klines(raw, pair_tokens).where(
            (F.col("open_time") >= F.lit(lookback_start)) & (F.col("open_time") < F.lit(end))
        )
    ).withColumn("is_gap", F.lit(False))
    spark = raw.sparkSession
    listing_frame = spark.createDataFrame(
        [
            (token, since.replace(tzinfo=None), until.replace(tzinfo=None) if until else None)
            for token, since, until in listings
        ],
        LISTING_SCHEMA,
    )
    in_window = observed.where(F.col("open_time") >= F.lit(start))
    missing = expected_grid(in_window, listing_frame, intervals).join(
        observed.select(*BRONZE_KEY), on=list(BRONZE_KEY), how="left_anti"
    )
    gaps = missing.select(
        "token", "symbol", "interval", "open_time",
        *[F.lit(None).cast(AMOUNT).alias(c) for c in (*PRICES, *VOLUMES)],
        F.lit(None).cast("long").alias("trade_count"),
        F.lit(None).cast("string").alias("source"),
        F.lit(None).cast("timestamp").alias("ingested_at"),
        F.lit(True).alias("is_gap"),
    )  # fmt: skip
    bars = fill_gaps(observed.unionByName(gaps), gap_policy, max_carry_seconds)
    return (
        bars.where(F.col("open_time") >= F.lit(start))
        .withColumn("category", lookup(token_categories, F.col("token")))
        .select(*BRONZE_COLUMNS)
    )
