"""Raw layer: what the sources sent, per UTC day, into the lake."""

from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
from dagster import AssetCheckResult, AssetExecutionContext, MetadataValue, Output
from dagster_pyspark import LazyPySparkResource

from crypto_assets.checks import quality_check_specs
from crypto_assets.partitions import daily_asset
from crypto_assets.publishing import publish
from crypto_assets.raw.fetch import EXCHANGE_SOURCES, PairReport, fetch_klines, fetch_plan
from crypto_assets.raw.merge import merge_raw
from crypto_assets.raw.schema import RAW_KLINES_SCHEMA
from crypto_assets.universe import load_universe
from resources.exchange import BinanceResource
from resources.parquet_io import LakeResource


@daily_asset(
    "raw",
    time_column="open_time",
    check_specs=quality_check_specs("raw_klines", ohlc=False, keys="(symbol, interval, open_time)"),
)
def raw_klines(
    context: AssetExecutionContext, binance: BinanceResource, pyspark: LazyPySparkResource, lake: LakeResource
) -> Iterator[Output | AssetCheckResult]:
    """1-minute klines of every listed token for one UTC day, exactly as Binance sent them.

    Pairs are the universe's dated listings for the day, confirmed against exchangeInfo. Each
    pair's day comes from the bulk archive (SHA-256 verified, ms or µs timestamps) or, for days
    the archive does not have yet, from the REST API (pages of 1,000 under the shared weight
    budget). Prices and volumes stay the exchange's decimal strings; rows carry their source and
    ingestion time; candles still open are never written.
    """
    window = context.partition_time_window
    universe = load_universe()
    use_archive = binance.klines_source == "archive"
    frames: list[pd.DataFrame] = []
    reports: list[PairReport] = []
    not_listed: set[str] = set()
    with binance.client() as rest, binance.archive_client() as archive:
        listed = rest.trading_symbols()
        for period_start, period_end, monthly in fetch_plan(window.start, window.end, use_archive):
            active = universe.active_pairs(period_start, period_end)
            pairs = sorted(p for p in active if p in listed)
            not_listed |= set(active) - set(pairs)
            frame, period_reports = fetch_klines(
                rest,
                archive if use_archive else None,
                pairs,
                period_start,
                period_end,
                datetime.now(UTC),
                monthly=monthly,
            )
            frames.append(frame)
            reports += period_reports
        used_weight = rest.used_weight
        rate_limited = rest.http.rate_limited
    if not_listed:
        context.log.warning(f"listed in the universe but unknown to the exchange: {sorted(not_listed)}")
    # Empty frames are left out of the concat (pandas warns on them) unless all are empty.
    frame = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    spark = pyspark.spark_session
    raw = (
        spark.createDataFrame(frame, schema=RAW_KLINES_SCHEMA)
        if len(frame)
        else spark.createDataFrame([], schema=RAW_KLINES_SCHEMA)
    )
    # Re-delivering a day replaces the exchange's rows and keeps rows a user imported from files.
    previous = lake.read_partitions("raw", "raw_klines", list(context.partition_keys))
    raw = merge_raw(previous, raw, replaced_sources=EXCHANGE_SOURCES)
    sources = sorted({r.source for r in reports if r.rows})
    yield from publish(
        context,
        raw,
        time_column="open_time",
        keys=("symbol", "interval", "open_time"),
        token_column="symbol",
        ohlc=False,
        extra_metadata={
            "rows_per_pair": MetadataValue.json(_total_rows(reports)),
            "source_per_pair": MetadataValue.json({r.pair: r.source for r in reports if r.rows}),
            "sources": MetadataValue.text(", ".join(sources) or "none"),
            "pairs_not_on_exchange": MetadataValue.json(sorted(not_listed)),
            "exchange_used_weight_1m": MetadataValue.int(used_weight or 0),
            "http_429_received": MetadataValue.int(rate_limited),
        },
    )


def _total_rows(reports: list[PairReport]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for report in reports:
        totals[report.pair] = totals.get(report.pair, 0) + report.rows
    return totals
