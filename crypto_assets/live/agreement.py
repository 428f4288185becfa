"""The day-close agreement: a closed day's streamed minutes against the exchange's own (archive
or REST) minutes in raw_klines, slot by slot. Both are the exchange's final candles, so every
difference is a defect of one path: a kline the stream got wrong, or a minute one side lacks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crypto_assets.live.stream_files import read_stream
from crypto_assets.raw.fetch import EXCHANGE_SOURCES
from crypto_assets.raw.schema import KLINE_VALUES
from crypto_assets.silver.validators import Validation, Validator

STREAM_AGREEMENT = "stream_agreement"
KEY = ("venue", "market", "symbol", "open_time")
COMPARED = KLINE_VALUES
AMOUNT = T.DecimalType(38, 18)
SHOWN = 50


def disagreements(stream: DataFrame, exchange: DataFrame) -> DataFrame:
    """One row per slot that differs: (venue, market, symbol, open_time, what), ``what`` being
    the fields whose values differ (compared as numbers: "0.10000000" equals "0.1"), or
    "not in the stream" / "not from the exchange". Slots outside a series' streamed span (before
    the stream started, after it stopped) are not compared."""
    streamed = _one_per_slot(stream.where(F.col("interval") == "1m"), prefer="binance_ws")
    fetched = _one_per_slot(
        exchange.where((F.col("interval") == "1m") & F.col("source").isin(*EXCHANGE_SOURCES)), prefer=None
    )
    span = streamed.groupBy("venue", "market", "symbol").agg(
        F.min("open_time").alias("_first"), F.max("open_time").alias("_last")
    )
    within = fetched.join(span, on=["venue", "market", "symbol"]).where(
        F.col("open_time").between(F.col("_first"), F.col("_last"))
    )
    s = streamed.select(*KEY, *[_number(c).alias(f"s_{c}") for c in COMPARED], F.lit(True).alias("_s"))
    e = within.select(*KEY, *[_number(c).alias(f"e_{c}") for c in COMPARED], F.lit(True).alias("_e"))
    joined = s.join(e, on=list(KEY), how="full")
    fields = F.array_compact(
        F.array(*[F.when(~F.col(f"s_{c}").eqNullSafe(F.col(f"e_{c}")), F.lit(c)) for c in COMPARED])
    )
    what = (
        F.when(F.col("_s").isNull(), F.lit("not in the stream"))
        .when(F.col("_e").isNull(), F.lit("not from the exchange"))
        .otherwise(F.array_join(fields, ", "))
    )
    return joined.select(*KEY, what.alias("what")).where(F.col("what") != "")


def _number(column: str) -> F.Column:
    return F.col(column).cast("long" if column == "trade_count" else AMOUNT)


def _one_per_slot(frame: DataFrame, prefer: str | None) -> DataFrame:
    order = [F.col("ingested_at").desc()]
    if prefer:
        order.insert(0, F.when(F.col("source") == prefer, 0).otherwise(1))
    ranked = Window.partitionBy(*KEY).orderBy(*order)
    return frame.withColumn("_rank", F.row_number().over(ranked)).where("_rank = 1").drop("_rank")


def stream_agreement(lake_root: Path, start: datetime, end: datetime) -> Validator:
    """raw_klines' check on closed days: the stream's minutes of ``[start, end)`` (if it ran)
    against the exchange's; every slot that differs is counted and the first ones listed."""
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)

    def run(frame: DataFrame) -> Validation:
        stream = read_stream(frame.sparkSession, lake_root, "klines", start_ms, end_ms)
        if stream is None:
            return Validation(
                passed=True, details={"stream_minutes": 0, "note": "no stream data for these days"}
            )
        # Read once: the comparison and the count of streamed minutes both use it.
        stream = stream.where(F.col("open_time").between(start_ms, end_ms - 1)).localCheckpoint()
        differing = disagreements(stream, frame).localCheckpoint()
        count = differing.count()
        shown = [
            {**r.asDict(), "open_time": _iso(r["open_time"])}
            for r in differing.orderBy("symbol", "open_time").limit(SHOWN).collect()
        ]
        return Validation(
            passed=count == 0,
            details={
                "stream_minutes": stream.select(*KEY).distinct().count(),
                "slots_differing": count,
                "slots": shown,
            },
        )

    return Validator(STREAM_AGREEMENT, DESCRIPTION, False, run)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


DESCRIPTION = (
    "When a day closes, the minutes `crypto-analytics stream` landed for it (lake/stream/klines)"
    " equal the exchange's archive/REST minutes of raw_klines, field by field, within each pair's"
    " streamed span: every slot that differs (or that one side lacks) is counted and listed"
    " (warning). Passes with stream_minutes = 0 when no stream ran that day."
)


def agreement_spec_validators() -> Sequence[Validator]:
    """The validator as check specs see it (its run needs a run's window and lake)."""
    return [Validator(STREAM_AGREEMENT, DESCRIPTION, False, _never)]


def _never(_: DataFrame) -> Validation:  # pragma: no cover - specs only
    raise AssertionError("built per run by stream_agreement()")
