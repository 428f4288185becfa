"""The live slice: the stream's closed minutes through raw, bronze, silver and gold, an hour per
partition, driven by ``live_slice_sensor`` (sensors/live.py) a few seconds after each flush.

Why runs of an hourly slice and not one long-lived run: each run is an ordinary Dagster run
(lineage, checks, logs, retries in the UI; a failed one is simply superseded by the next), and
a run costs ~20-40 s here (process, Spark session, four small Spark jobs, one warehouse load),
well inside the 2-minute budget from candle close to warehouse. A long-lived run would save the
start-up but hold a Spark session and a run slot forever and show as one endless run. The
sensor never launches a second live run while one is in flight: runs go back to back, each
taking every minute that arrived meanwhile.
"""

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSpec,
    HourlyPartitionsDefinition,
    MetadataValue,
    Output,
    asset,
)
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crypto_assets.bronze.assets import universe_listings
from crypto_assets.bronze.transforms import clean_klines
from crypto_assets.gold.schema import LIVE_COLUMNS, table_schema
from crypto_assets.live.stream_files import read_stream, stream_schema
from crypto_assets.live.transforms import (
    live_features,
    live_market,
    stream_klines_to_raw,
    trade_minutes,
    with_trade_minutes,
)
from crypto_assets.universe import load_universe
from resources.parquet_io import LakeResource

LIVE_GROUP = "live"
# Where the lake keeps the slice: lake/live/<asset>/dt=YYYY-MM-DDTHH (kept apart from the daily
# layers, whose folders are days).
LIVE_LAYER = "live"
HOUR_FORMAT = "%Y-%m-%dT%H"


def live_start() -> str:
    """The first hour the slice keeps (``LIVE_START``, a date): the UI lists hours from it."""
    raw = os.environ.get("LIVE_START", "").strip() or "2026-12-01"
    try:
        day = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"LIVE_START={raw!r}: expected a date like 2026-12-01") from None
    return day.strftime("%Y-%m-%dT00")


def freshness_sla_seconds() -> float:
    """How long a streamed token may go without a closed minute (``LIVE_FRESHNESS_SLA``, s)."""
    raw = os.environ.get("LIVE_FRESHNESS_SLA", "").strip() or "180"
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"LIVE_FRESHNESS_SLA={raw!r}: expected seconds, e.g. 180") from None
    if value <= 60:
        raise ValueError(f"LIVE_FRESHNESS_SLA={raw}: must exceed 60 s (a minute closes every 60 s)")
    return value


# end_offset=1: the hour under way is a partition (its closed minutes are final rows; the
# next run adds the ones that close later).
live_partitions = HourlyPartitionsDefinition(
    start_date=live_start(), fmt=HOUR_FORMAT, timezone="UTC", end_offset=1
)

stream_klines = AssetSpec(
    "stream_klines",
    group_name=LIVE_GROUP,
    kinds={"websocket", "parquet"},
    description="Closed 1m klines of Binance's kline streams as `crypto-analytics stream` lands"
    " them (lake/stream/klines), every lost minute repaired from REST and recorded in"
    " lake/stream/gaps. Written by the stream process, not by Dagster.",
)
stream_trades = AssetSpec(
    "stream_trades",
    group_name=LIVE_GROUP,
    kinds={"websocket", "parquet"},
    description="Every trade of Binance's trade streams (lake/stream/trades), one row per trade id,"
    " skipped ids fetched from /api/v3/historicalTrades. Written by the stream process.",
)

STREAM_FRESH = "stream_fresh"


def _live_asset(**kwargs: object):  # noqa: ANN202 - a decorator factory
    return asset(
        partitions_def=live_partitions,
        group_name=LIVE_GROUP,
        io_manager_key=kwargs.pop("io_manager_key", "lake_io_manager"),
        kinds=kwargs.pop("kinds", {"spark", "parquet"}),
        metadata={"layer": LIVE_LAYER, **kwargs.pop("metadata", {})},  # type: ignore[dict-item]
        **kwargs,  # type: ignore[arg-type]
    )


def _window_ms(context: AssetExecutionContext) -> tuple[datetime, datetime, int, int]:
    window = context.partition_time_window
    return window.start, window.end, int(window.start.timestamp() * 1000), int(window.end.timestamp() * 1000)


def _read_stream(lake: LakeResource, table: str, start_ms: int, end_ms: int) -> DataFrame:
    spark = lake.pyspark.spark_session
    stream = read_stream(spark, Path(lake.root), table, start_ms, end_ms)
    return stream if stream is not None else spark.createDataFrame([], schema=stream_schema(table))


def _with_previous_hour(lake: LakeResource, asset: str, frame: DataFrame, start: datetime) -> DataFrame:
    """``frame`` (the hour's rows of ``asset``) with the hour before as look-back, if it exists."""
    previous = (start - timedelta(hours=1)).strftime(HOUR_FORMAT)
    before = lake.read_partitions(LIVE_LAYER, asset, [previous])
    return frame if before is None else frame.unionByName(before)


@_live_asset(
    deps=[stream_klines],
    check_specs=[
        AssetCheckSpec(
            STREAM_FRESH,
            asset="raw_live_klines",
            description="Every token the stream delivered in the last two hours has a closed minute"
            " no older than the SLA (LIVE_FRESHNESS_SLA, 180 s by default): a token whose stream"
            " fell silent is named with the age of its last minute.",
            partitions_def=live_partitions,
        )
    ],
)
def raw_live_klines(
    context: AssetExecutionContext, lake: LakeResource
) -> Iterator[Output | AssetCheckResult]:
    """The hour's closed 1m klines from the stream, in the raw klines' schema (decimal strings,
    source ``binance_ws``, or ``binance_rest`` for a minute the stream missed and REST
    repaired): one row per series and minute."""
    start, end, start_ms, end_ms = _window_ms(context)
    # The hour before too: the freshness check looks back two hours for the tokens it expects.
    recent = _read_stream(lake, "klines", start_ms - 3_600_000, end_ms).localCheckpoint()
    raw = stream_klines_to_raw(recent, start, end).localCheckpoint()
    rows = raw.count()
    newest = raw.agg(F.max("close_time")).first()[0]
    yield Output(
        raw,
        metadata={
            "rows": MetadataValue.int(rows),
            "newest_close": MetadataValue.text(_iso(newest) if newest is not None else "none"),
        },
    )
    yield _freshness(recent, min(time.time(), end.timestamp()))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp((ms + 1) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _freshness(recent: DataFrame, as_of: float) -> AssetCheckResult:
    sla = freshness_sla_seconds()
    last = {
        r["symbol"]: int(r["last_close"])
        for r in recent.where(F.col("interval") == "1m")
        .groupBy("symbol")
        .agg(F.max("close_time").alias("last_close"))
        .collect()
    }
    ages = {symbol: round(as_of - (close + 1) / 1000) for symbol, close in sorted(last.items())}
    silent = {symbol: age for symbol, age in ages.items() if age > sla}
    if not last:
        return AssetCheckResult(
            check_name=STREAM_FRESH,
            passed=False,
            severity=AssetCheckSeverity.WARN,
            description="no closed minute streamed in the last two hours: is `crypto-analytics stream` running?",
        )
    return AssetCheckResult(
        check_name=STREAM_FRESH,
        passed=not silent,
        severity=AssetCheckSeverity.WARN,
        description=None
        if not silent
        else f"{len(silent)} of {len(last)} tokens silent beyond {sla:.0f} s: "
        + ", ".join(f"{s} ({a} s)" for s, a in list(silent.items())[:10]),
        metadata={
            "tokens": MetadataValue.int(len(last)),
            "silent": MetadataValue.json(silent),
            "oldest_age_seconds": MetadataValue.int(max(ages.values())),
        },
    )


@_live_asset(deps=[stream_trades])
def bronze_live_klines(
    context: AssetExecutionContext, raw_live_klines: DataFrame, lake: LakeResource
) -> Output[DataFrame]:
    """The hour's minutes after the bronze rules (typed DECIMAL(38,18) prices and volumes, UTC
    timestamps, token, category and quote asset, one row per series and minute, a minute the
    stream and REST both lack a row with ``is_gap = true``), with the minute's trade features
    from the trades themselves: ``trades``, taker ``buy_volume`` / ``sell_volume``,
    ``trade_imbalance`` ((buy - sell) / (buy + sell)), ``vwap``, ``largest_trade_quote``."""
    start, end, start_ms, end_ms = _window_ms(context)
    universe = load_universe()
    raw = _with_previous_hour(lake, "raw_live_klines", raw_live_klines, start)
    newest = raw_live_klines.agg(F.max("open_time")).first()[0]
    # Up to the newest closed minute: the minutes after it have not closed yet (not gaps).
    until = min(end, datetime.fromtimestamp(newest / 1000 + 60, UTC)) if newest is not None else start
    bronze = clean_klines(
        raw,
        series_tokens=universe.series_tokens(),
        series_quotes=universe.series_quotes(),
        token_categories={t.symbol: t.category for t in universe.tokens},
        listings=universe_listings(),
        # Bronze's grid is made per UTC day: the hour's day, then the hour is kept.
        start=start.replace(hour=0),
        end=until,
        intervals=("1m",),
    ).where((F.col("open_time") >= F.lit(start)) & (F.col("open_time") < F.lit(until)))
    minutes = trade_minutes(_read_stream(lake, "trades", start_ms, end_ms), start, end)
    joined = with_trade_minutes(bronze, minutes).localCheckpoint()
    counts = joined.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.col("is_gap").cast("int")).alias("gaps"),
        F.sum(F.when(~F.col("is_gap") & (F.col("trades") != F.col("trade_count")), 1).otherwise(0)).alias(
            "short"
        ),
    ).first()
    return Output(
        joined,
        metadata={
            "rows": MetadataValue.int(int(counts["rows"])),
            "gap_rows": MetadataValue.int(int(counts["gaps"] or 0)),
            # Minutes whose trades held differ from the kline's count: trades still being repaired.
            "minutes_with_trades_missing": MetadataValue.int(int(counts["short"] or 0)),
        },
    )


@_live_asset()
def silver_live_features(
    context: AssetExecutionContext, bronze_live_klines: DataFrame, lake: LakeResource
) -> Output[DataFrame]:
    """Past-only features per series and minute: ``return_1m``; 15m and 60m log returns,
    realized volatility (root of summed squared 1m returns), VWAP and trade imbalance, each null
    until 80 % of its window's minutes are observed. The hour before is the look-back, so a
    minute's features never change when later minutes arrive."""
    start, end, _, _ = _window_ms(context)
    bars = _with_previous_hour(lake, "bronze_live_klines", bronze_live_klines, start)
    features = live_features(bars, start, end).localCheckpoint()
    return Output(features, metadata={"rows": MetadataValue.int(features.count())})


@_live_asset(
    io_manager_key="warehouse_io_manager",
    kinds={"spark", "snowflake"},
    metadata={
        "partition_expr": "BAR_TIME",
        "cluster_by": "DT",
        "dagster/column_schema": table_schema(LIVE_COLUMNS),
    },
)
def gold_live_market(silver_live_features: DataFrame) -> Output[DataFrame]:
    """GOLD_LIVE_MARKET: one row per token and closed minute of the live hours, loaded within
    about a minute of the candle's close: OHLCV, the kline's trade count and taker volume, the
    minute's trade features, the past-only 15m/60m features, ``is_gap``, and ``loaded_at`` (the
    load's time: ``loaded_at - close_time`` is the row's latency). Each run replaces its hour."""
    table = live_market(silver_live_features, datetime.now(UTC).replace(tzinfo=None)).localCheckpoint()
    newest = table.agg(F.max("close_time")).first()[0]
    return Output(
        table,
        metadata={
            "rows": MetadataValue.int(table.count()),
            "newest_close": MetadataValue.text(str(newest) if newest is not None else "none"),
        },
    )


LIVE_ASSETS = [raw_live_klines, bronze_live_klines, silver_live_features, gold_live_market]
LIVE_SPECS = [stream_klines, stream_trades]
