"""The live slice's transforms: ``DataFrame -> DataFrame``, no Dagster.

The stream (``crypto-analytics stream``) lands closed 1m klines and every trade in
``lake/stream``; these turn one UTC hour of them into the raw, bronze, silver and gold rows of
the live tables. Features look only backwards (the hour before is the look-back), so a minute's
row never changes once a later minute arrives.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crypto_assets.raw.schema import RAW_KLINES_SCHEMA

MINUTE_S = 60
AMOUNT = T.DecimalType(38, 18)
SERIES = ("venue", "market", "symbol")
# Trade features per minute, from the trades themselves (the kline's own count and taker
# volumes stay beside them: a difference means trades are missing).
TRADE_MINUTE_COLUMNS = (
    "trades",
    "buy_volume",
    "sell_volume",
    "trade_imbalance",
    "vwap",
    "largest_trade_quote",
)
# Past-only windows over the minutes: (name, seconds).
WINDOWS = (("15m", 15 * MINUTE_S), ("60m", 60 * MINUTE_S))
# A rolling statistic needs this share of its window's minutes observed (as silver.min_fraction).
MIN_FRACTION = 0.8


def _ms_to_ts(column: str) -> Column:
    return F.timestamp_millis(F.col(column))


def stream_klines_to_raw(stream: DataFrame, start: datetime, end: datetime) -> DataFrame:
    """Stream klines opening in ``[start, end)`` in the raw klines' schema: one row per
    (venue, market, symbol, open_time); a minute both streamed and repaired from REST keeps the
    stream's (they are the exchange's same closed candle)."""
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    preferred = Window.partitionBy(*SERIES, "interval", "open_time").orderBy(
        F.when(F.col("source") == "binance_ws", 0).otherwise(1), F.col("ingested_at").desc()
    )
    return (
        stream.where((F.col("interval") == "1m") & F.col("open_time").between(start_ms, end_ms - 1))
        .withColumn("_rank", F.row_number().over(preferred))
        .where("_rank = 1")
        .select(*[F.col(f.name).cast(f.dataType) for f in RAW_KLINES_SCHEMA.fields])
    )


def trade_minutes(trades: DataFrame, start: datetime, end: datetime) -> DataFrame:
    """Per series and minute opening in ``[start, end)``: trade count, taker buy and sell
    volumes (``buyer_is_maker`` true: the seller took liquidity), their imbalance in [-1, 1],
    VWAP and the largest trade in quote currency. Trades are deduplicated by id first (the
    stream never writes one twice; this keeps the rows exact if it ever did)."""
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    quantity = F.col("quantity").cast(AMOUNT)
    notional = F.col("price").cast("double") * F.col("quantity").cast("double")
    buy = F.sum(F.when(~F.col("buyer_is_maker"), quantity).otherwise(F.lit(0).cast(AMOUNT)))
    sell = F.sum(F.when(F.col("buyer_is_maker"), quantity).otherwise(F.lit(0).cast(AMOUNT)))
    minutes = (
        trades.where(F.col("trade_time").between(start_ms, end_ms - 1))
        .dropDuplicates([*SERIES, "trade_id"])
        .withColumn("open_time", F.timestamp_seconds(F.floor(F.col("trade_time") / 60_000) * MINUTE_S))
        .groupBy(*SERIES, "open_time")
        .agg(
            F.count(F.lit(1)).alias("trades"),
            buy.cast(AMOUNT).alias("buy_volume"),
            sell.cast(AMOUNT).alias("sell_volume"),
            (F.sum(notional) / F.sum(quantity.cast("double"))).alias("vwap"),
            F.max(notional).alias("largest_trade_quote"),
        )
    )
    # In doubles: a DECIMAL(38,18) quotient would be rounded to 6 decimals.
    buys, sells = F.col("buy_volume").cast("double"), F.col("sell_volume").cast("double")
    return minutes.withColumn(
        "trade_imbalance", F.when(buys + sells > 0, (buys - sells) / (buys + sells))
    ).select(*SERIES, "open_time", *TRADE_MINUTE_COLUMNS)


def with_trade_minutes(bronze: DataFrame, minutes: DataFrame) -> DataFrame:
    """Bronze 1m rows with their minute's trade features (null where no trade was held)."""
    return bronze.join(minutes, on=[*SERIES, "open_time"], how="left")


def live_features(bars: DataFrame, start: datetime, end: datetime) -> DataFrame:
    """Past-only features of the minutes opening in ``[start, end)``; ``bars`` also holds the
    look-back (the hour before). Windows are over time, not rows: a missing minute (a gap row)
    never stretches a window, and a window with too few observed minutes is null."""
    seconds = F.col("open_time").cast("long")
    series = Window.partitionBy(*SERIES).orderBy(seconds)
    close = F.col("close").cast("double")
    frame = bars.withColumn(
        "_prev_close", F.first(close).over(series.rangeBetween(-MINUTE_S, -MINUTE_S))
    ).withColumn("return_1m", F.log(close / F.col("_prev_close")))
    for name, span in WINDOWS:
        window = series.rangeBetween(-(span - MINUTE_S), 0)
        observed = F.count(F.when(~F.col("is_gap"), 1)).over(window)
        enough = observed >= F.lit(MIN_FRACTION * span / MINUTE_S)
        back = F.first(close).over(series.rangeBetween(-span, -span))
        buy = F.sum(F.col("buy_volume").cast("double")).over(window)
        sell = F.sum(F.col("sell_volume").cast("double")).over(window)
        frame = (
            frame.withColumn(f"return_{name}", F.log(close / back))
            .withColumn(
                f"realized_volatility_{name}",
                F.when(enough, F.sqrt(F.sum(F.col("return_1m") * F.col("return_1m")).over(window))),
            )
            .withColumn(
                f"vwap_{name}",
                F.when(
                    enough,
                    F.sum(F.col("quote_volume").cast("double")).over(window)
                    / F.sum(F.col("volume").cast("double")).over(window),
                ),
            )
            .withColumn(
                f"trade_imbalance_{name}", F.when(enough & (buy + sell > 0), (buy - sell) / (buy + sell))
            )
        )
    return frame.where((F.col("open_time") >= F.lit(start)) & (F.col("open_time") < F.lit(end))).drop(
        "_prev_close"
    )


FEATURE_COLUMNS = (
    "return_1m",
    *[
        f"{kind}_{name}"
        for name, _ in WINDOWS
        for kind in ("return", "realized_volatility", "vwap", "trade_imbalance")
    ],
)


def live_market(features: DataFrame, loaded_at: datetime) -> DataFrame:
    """The warehouse's live table: one row per token and minute, prices as doubles beside the
    exact decimals bronze keeps, and when the row was loaded (its latency is
    ``loaded_at - close_time``)."""
    return features.select(
        F.to_date("open_time").alias("dt"),
        F.col("open_time").alias("bar_time"),
        "token",
        "category",
        "symbol",
        "quote_asset",
        (F.col("open_time") + F.expr("INTERVAL 1 MINUTE")).alias("close_time"),
        *[
            F.col(c).cast("double").alias(c)
            for c in ("open", "high", "low", "close", "volume", "quote_volume")
        ],
        F.col("trade_count").cast("long").alias("trade_count"),
        F.col("taker_buy_base_volume").cast("double").alias("taker_buy_base_volume"),
        "is_gap",
        F.col("trades").cast("long").alias("trades"),
        F.col("buy_volume").cast("double").alias("buy_volume"),
        F.col("sell_volume").cast("double").alias("sell_volume"),
        "trade_imbalance",
        "vwap",
        "largest_trade_quote",
        *FEATURE_COLUMNS,
        F.lit(loaded_at).cast("timestamp").alias("loaded_at"),
    )
