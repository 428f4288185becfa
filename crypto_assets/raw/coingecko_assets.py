"""Raw layer: CoinGecko's USD market data per token, per UTC day, into the lake."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    MetadataValue,
    Output,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import types as T

from crypto_assets.checks import EVERY_TOKEN_HAS_A_SOURCE, quality_check_specs
from crypto_assets.ingestion.http import Banned, SourceError
from crypto_assets.partitions import daily_asset
from crypto_assets.publishing import publish
from crypto_assets.universe import load_universe
from resources.exchange import CoinGeckoResource

SOURCE = "coingecko"
RAW_COINGECKO_SCHEMA = T.StructType(
    [
        T.StructField("token", T.StringType(), False),
        T.StructField("coingecko_id", T.StringType(), False),
        T.StructField("time", T.TimestampType(), False),
        T.StructField("price_usd", T.DoubleType(), False),
        T.StructField("market_cap_usd", T.DoubleType(), True),
        T.StructField("volume_usd", T.DoubleType(), True),
        T.StructField("source", T.StringType(), False),
        T.StructField("ingested_at", T.TimestampType(), False),
    ]
)


@daily_asset(
    "raw",
    time_column="time",
    check_specs=quality_check_specs(
        "raw_coingecko_markets", ohlc=False, keys="(token, time)", coverage_check=EVERY_TOKEN_HAS_A_SOURCE
    ),
)
def raw_coingecko_markets(
    context: AssetExecutionContext, coingecko: CoinGeckoResource, pyspark: LazyPySparkResource
) -> Iterator[Output | AssetCheckResult]:
    """USD price, market cap and total volume of all 37 tokens from CoinGecko, as received.

    One ``/coins/{id}/market_chart/range`` call per token per run, under the plan's rate limit
    (so a month-long backfill run costs 37 calls, not 37 a day). Points keep CoinGecko's own
    granularity (5-minute for one day, hourly up to 90 days). This is the USD source of USDT, DAI
    and every stablecoin peg, and of market-cap weights. A token CoinGecko cannot serve is
    listed in the metadata and fails the ``every_token_has_a_source`` warning check.
    """
    window = context.partition_time_window
    universe = load_universe()
    ingested_at = datetime.now(UTC).replace(tzinfo=None)
    rows: list[dict] = []
    failures: dict[str, str] = {}
    with coingecko.client() as client:
        for token in universe.tokens:
            try:
                points = client.market_chart_range(
                    token.coingecko_id, window.start, window.end - timedelta(seconds=1)
                )
            except Banned:
                raise
            except SourceError as exc:  # one token's failure is reported, not fatal to the others
                failures[token.symbol] = str(exc)
                continue
            rows += [
                {
                    "token": token.symbol, "coingecko_id": token.coingecko_id,
                    "time": datetime.fromtimestamp(p.time_ms / 1000, UTC).replace(tzinfo=None),
                    "price_usd": p.price_usd, "market_cap_usd": p.market_cap_usd, "volume_usd": p.volume_usd,
                    "source": SOURCE, "ingested_at": ingested_at,
                }
                for p in points
                if window.start.timestamp() * 1000 <= p.time_ms < window.end.timestamp() * 1000
            ]  # fmt: skip
        calls, waited = client.http.responses, client.budget.waited_seconds
    spark = pyspark.spark_session
    frame = (
        spark.createDataFrame(pd.DataFrame(rows), schema=RAW_COINGECKO_SCHEMA)
        if rows
        else spark.createDataFrame([], RAW_COINGECKO_SCHEMA)
    )
    yield from publish(
        context,
        frame,
        time_column="time",
        keys=("token", "time"),
        ohlc=False,
        # Every token is expected here: a failed call is the reason it is missing.
        coverage=(universe.symbols, failures),
        coverage_check=EVERY_TOKEN_HAS_A_SOURCE,
        extra_metadata={
            "api_calls": MetadataValue.int(calls),
            "rate_limit_wait_seconds": MetadataValue.float(round(waited, 1)),
        },
    )
