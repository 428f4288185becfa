"""Bronze layer: typed, UTC, deduplicated klines on a complete grid, gaps flagged, in the lake."""

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MetadataValue,
    Output,
)
from pydantic import Field
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from crypto_assets.bronze.transforms import (
    BRONZE_KEY,
    clean_klines,
    outside_listing,
    quarantined_klines,
    series_column,
)
from crypto_assets.checks import quality_check_specs, validator_specs
from crypto_assets.ingestion.binance import INTERVAL_MS
from crypto_assets.partitions import daily_asset, daily_partitions, window_input
from crypto_assets.pipeline_config import GAP_POLICIES, load_pipeline_config
from crypto_assets.publishing import log_range_result_per_day, publish
from crypto_assets.silver.validators import Validation, Validator, aggregating
from crypto_assets.universe import load_universe, series_key

_CONFIG = load_pipeline_config()
BARS_WITHIN_LISTING = "bars_within_listing"
RAW_ROWS_VALID = "raw_rows_valid"
QUARANTINE_SHOWN = 20
# The token is part of the checked key: a row whose pair the universe does not map (a null
# token) is a null key, and blocks the partition before it is published.
CHECKED_KEY = ("token", *BRONZE_KEY)


def universe_listings() -> list[tuple[str, datetime, datetime | None]]:
    return [
        (series_key(listing.exchange, listing.market, listing.pair), listing.start, listing.end)
        for token in load_universe().tokens
        for listing in token.listings
    ]


def bars_within_listing(shown: int = 20) -> Validator:
    """Real bars outside the universe's listing dates: kept, and named (the universe is wrong).
    Counted in the frame's summary pass; the bars are listed (one more pass) only when found."""

    def aggregates(_frame: DataFrame) -> dict[str, Column]:
        return {"outside": F.sum(outside_listing(universe_listings()).cast("int"))}

    def judge(frame: DataFrame, values: Mapping[str, Any]) -> Validation:
        found = int(values.get("outside") or 0)
        outside = (
            frame.where(outside_listing(universe_listings()))
            .withColumn("_series", series_column())
            .orderBy("_series", "interval", "open_time")
            .limit(shown)
            .collect()
            if found
            else []
        )
        rows = [
            {
                "series": r["_series"],
                "interval": r["interval"],
                "open_time": str(r["open_time"]),
                "source": r["source"],
            }
            for r in outside
        ]
        return Validation(passed=found == 0, details={"bars_outside_listing": found, "bars": rows})

    return aggregating(
        BARS_WITHIN_LISTING,
        "Every real bar of a series with dated listings (config/universe.yaml) falls inside one:"
        " a bar outside is kept and named here (warning), since the exchange's data wins.",
        False,
        aggregates,
        judge,
    )


VALIDATORS = [bars_within_listing()]


class BronzeConfig(Config):
    """Per-run override of ``bronze.gap_policy`` in config/pipeline.yaml (e.g. from the launchpad)."""

    gap_policy: str = Field(default=_CONFIG.gap_policy, description=f"one of {GAP_POLICIES}")


@daily_asset(
    "bronze",
    time_column="open_time",
    # carry_forward fills a gap at 00:00 from the previous day's last close.
    ins={"raw_klines": window_input("raw_klines", days_before=1)},
    check_specs=[
        *quality_check_specs("bronze_klines", keys="(token, venue, market, symbol, interval, open_time)"),
        *validator_specs("bronze_klines", VALIDATORS),
        AssetCheckSpec(
            RAW_ROWS_VALID,
            asset="bronze_klines",
            description="Every raw row of the days is a possible bar (positive finite prices,"
            " non-negative volumes); the others are quarantined, named with their source, and the"
            " day is published without them.",
            partitions_def=daily_partitions,
        ),
    ],
)
def bronze_klines(
    context: AssetExecutionContext, config: BronzeConfig, raw_klines: DataFrame
) -> Iterator[Output | AssetCheckResult]:
    """Klines, one row per series and slot (venue, market, pair, interval, open_time): every
    venue and market kept apart, DECIMAL(38,18) prices and volumes (PEPE's 1e-8 ticks and 1e13
    volumes exact), UTC timestamps, the token, its category and the quote asset (BTCUSD, BTCUSDC
    and BTCUSDT are all BTC, in three currencies), source and ingestion time kept.
    Dedup: the latest ingestion of a slot wins, whichever source. Every slot between a series'
    real first and last bars is present: a bar the exchange did not deliver (an outage) is a row
    with ``is_gap = true``, left null or carried forward (``bronze.gap_policy``). A day that fails
    a blocking check is not published: the previous version of the day stays.
    """
    if config.gap_policy not in GAP_POLICIES:
        raise ValueError(f"gap_policy {config.gap_policy!r} is not one of {GAP_POLICIES}")
    universe = load_universe()
    window = context.partition_time_window
    cleaned = clean_klines(
        raw_klines,
        series_tokens=universe.series_tokens(),
        series_quotes=universe.series_quotes(),
        token_categories={t.symbol: t.category for t in universe.tokens},
        listings=universe_listings(),
        start=window.start,
        end=window.end,
        intervals=tuple(INTERVAL_MS),
        gap_policy=config.gap_policy,
        max_carry_seconds=_CONFIG.max_carry_seconds,
    )
    gaps = F.sum(F.col("is_gap").cast("int"))
    # One source's bad row never fails the day: it is left out (its slot a gap unless another
    # source has it) and named here.
    quarantined = quarantined_klines(raw_klines, window.start, window.end)
    shown = [
        row.asDict() for row in quarantined.orderBy("open_time", "symbol").limit(QUARANTINE_SHOWN).collect()
    ]
    quarantined_rows = quarantined.count() if shown else 0
    yield from publish(
        context,
        cleaned,
        time_column="open_time",
        keys=CHECKED_KEY,
        observed=~F.col("is_gap"),
        validators=VALIDATORS,
        extra_aggregates={"gap_rows": gaps},
        extra_metadata={
            "gap_policy": MetadataValue.text(config.gap_policy),
            "rows_quarantined": MetadataValue.int(quarantined_rows),
        },
    )
    quarantine = AssetCheckResult(
        check_name=RAW_ROWS_VALID,
        passed=not shown,
        severity=AssetCheckSeverity.WARN,
        description=None if not shown else f"quarantined, e.g. {_quarantine_line(shown[0])}",
        metadata={
            "rows_quarantined": quarantined_rows,
            "quarantined": MetadataValue.json([{**r, "open_time": str(r["open_time"])} for r in shown]),
        },
    )
    log_range_result_per_day(context, quarantine)
    yield quarantine


def _quarantine_line(row: Mapping[str, Any]) -> str:
    return (
        f"{row['source']} {row['venue']}/{row['market']} {row['symbol']} {row['interval']}"
        f" {row['open_time']}: {row['reason']}"
    )
