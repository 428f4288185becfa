"""Raw layer: what the exchange sent, per day, into the lake."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pandas as pd
from dagster import AssetCheckResult, AssetExecutionContext, MetadataValue, Output, asset
from dagster_pyspark import LazyPySparkResource

from crypto_assets.checks import quality_check_specs
from crypto_assets.ingestion.binance import BinanceClient
from crypto_assets.partitions import daily_partitions
from crypto_assets.publishing import publish
from crypto_assets.raw.schema import RAW_KLINES_SCHEMA, klines_to_pandas
from crypto_assets.universe import load_universe
from resources.exchange import BinanceResource

INTERVAL = "1m"
SOURCE = "binance_rest"
FETCH_THREADS = 4


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def fetch_day(
    client: BinanceClient, pairs: list[str], start: datetime, end: datetime, now: datetime
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Fetch 1m klines of ``pairs`` for ``[start, end)``; drop candles still open at ``now``."""
    ingested_at = datetime.now(UTC)

    def one(pair: str) -> pd.DataFrame:
        klines = [
            k
            for k in client.klines(pair, INTERVAL, _ms(start), _ms(end))
            if k.close_time < _ms(now)  # a candle still open is not final: never write it
        ]
        return klines_to_pandas(pair, INTERVAL, klines, SOURCE, ingested_at)

    with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
        frames = dict(zip(pairs, pool.map(one, pairs), strict=True))
    counts = {pair: len(frame) for pair, frame in frames.items()}
    combined = pd.concat(list(frames.values()), ignore_index=True) if frames else pd.DataFrame()
    return combined, counts


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

    Fetched through the REST client (``/api/v3/klines``, pages of 1,000), prices and volumes
    kept as the exchange's decimal strings, with the source and ingestion time. Pairs are the
    universe's listings for the day that exchangeInfo confirms; candles still open are dropped.
    """
    window = context.partition_time_window
    universe = load_universe()
    active = universe.active_pairs(window.start, window.end)
    with binance.client() as client:
        listed = client.trading_symbols()
        pairs = sorted(p for p in active if p in listed)
        not_listed = sorted(set(active) - set(pairs))
        if not_listed:
            context.log.warning(f"listed in the universe but unknown to the exchange: {not_listed}")
        frame, counts = fetch_day(client, pairs, window.start, window.end, datetime.now(UTC))
        used_weight = client.used_weight
    spark = pyspark.spark_session
    raw = (
        spark.createDataFrame(frame, schema=RAW_KLINES_SCHEMA)
        if len(frame)
        else spark.createDataFrame([], schema=RAW_KLINES_SCHEMA)
    )
    yield from publish(
        context,
        raw,
        time_column="open_time",
        keys=("symbol", "open_time"),
        token_column="symbol",
        ohlc=False,
        extra_metadata={
            "rows_per_pair": MetadataValue.json(counts),
            "pairs_not_on_exchange": MetadataValue.json(not_listed),
            "exchange_used_weight_1m": MetadataValue.int(used_weight or 0),
        },
    )
