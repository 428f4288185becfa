"""Raw layer: what the sources sent, per UTC day, into the lake."""

from collections.abc import Iterator
from datetime import UTC, datetime

from dagster import AssetCheckResult, AssetExecutionContext, MetadataValue, Output, asset
from dagster_pyspark import LazyPySparkResource

from crypto_assets.checks import quality_check_specs
from crypto_assets.partitions import daily_partitions
from crypto_assets.publishing import publish
from crypto_assets.raw.fetch import fetch_klines
from crypto_assets.raw.schema import RAW_KLINES_SCHEMA
from crypto_assets.universe import load_universe
from resources.exchange import BinanceResource


@asset(
    partitions_def=daily_partitions,
    io_manager_key="lake_io_manager",
    group_name="raw",
    metadata={"layer": "raw"},
    kinds={"spark", "parquet"},
    check_specs=quality_check_specs("raw_klines", ohlc=False, keys="(symbol, open_time)"),
)
def raw_klines(
    context: AssetExecutionContext, binance: BinanceResource, pyspark: LazyPySparkResource
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
    active = universe.active_pairs(window.start, window.end)
    use_archive = binance.klines_source == "archive"
    with binance.client() as rest, binance.archive_client() as archive:
        listed = rest.trading_symbols()
        pairs = sorted(p for p in active if p in listed)
        not_listed = sorted(set(active) - set(pairs))
        if not_listed:
            context.log.warning(f"listed in the universe but unknown to the exchange: {not_listed}")
        frame, reports = fetch_klines(
            rest, archive if use_archive else None, pairs, window.start, window.end, datetime.now(UTC)
        )
        used_weight = rest.used_weight
        rate_limited = rest.http.rate_limited
    spark = pyspark.spark_session
    raw = (
        spark.createDataFrame(frame, schema=RAW_KLINES_SCHEMA)
        if len(frame)
        else spark.createDataFrame([], schema=RAW_KLINES_SCHEMA)
    )
    sources = sorted({r.source for r in reports if r.rows})
    yield from publish(
        context,
        raw,
        time_column="open_time",
        keys=("symbol", "open_time"),
        token_column="symbol",
        ohlc=False,
        extra_metadata={
            "rows_per_pair": MetadataValue.json({r.pair: r.rows for r in reports}),
            "source_per_pair": MetadataValue.json({r.pair: r.source for r in reports}),
            "sources": MetadataValue.text(", ".join(sources) or "none"),
            "pairs_not_on_exchange": MetadataValue.json(not_listed),
            "exchange_used_weight_1m": MetadataValue.int(used_weight or 0),
            "http_429_received": MetadataValue.int(rate_limited),
        },
    )
