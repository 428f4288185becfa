"""Bronze layer: typed, UTC, deduplicated klines on a complete grid, gaps flagged, in the lake."""

from collections.abc import Iterator

from dagster import AssetCheckResult, AssetExecutionContext, Config, MetadataValue, Output
from pydantic import Field
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crypto_assets.bronze.transforms import BRONZE_KEY, clean_klines
from crypto_assets.checks import quality_check_specs
from crypto_assets.ingestion.binance import INTERVAL_MS
from crypto_assets.partitions import daily_asset, window_input
from crypto_assets.pipeline_config import GAP_POLICIES, load_pipeline_config
from crypto_assets.publishing import publish
from crypto_assets.universe import load_universe

_CONFIG = load_pipeline_config()


class BronzeConfig(Config):
    """Per-run override of ``bronze.gap_policy`` in config/pipeline.yaml (e.g. from the launchpad)."""

    gap_policy: str = Field(default=_CONFIG.gap_policy, description=f"one of {GAP_POLICIES}")


@daily_asset(
    "bronze",
    time_column="open_time",
    # carry_forward fills a gap at 00:00 from the previous day's last close.
    ins={"raw_klines": window_input("raw_klines", days_before=1)},
    check_specs=quality_check_specs("bronze_klines", keys="(token, interval, open_time)"),
)
def bronze_klines(
    context: AssetExecutionContext, config: BronzeConfig, raw_klines: DataFrame
) -> Iterator[Output | AssetCheckResult]:
    """Klines, one row per (token, interval, open_time): DECIMAL(38,18) prices and volumes (PEPE's
    1e-8 ticks and 1e13 volumes exact), UTC timestamps, the canonical token and its category,
    source and ingestion time kept. Dedup: the latest ingestion wins. Every slot of a series'
    day inside the token's listing is present: a bar the exchange did not deliver (an outage) is
    a row with ``is_gap = true``, left null or carried forward (``bronze.gap_policy``).
    """
    if config.gap_policy not in GAP_POLICIES:
        raise ValueError(f"gap_policy {config.gap_policy!r} is not one of {GAP_POLICIES}")
    universe = load_universe()
    window = context.partition_time_window
    cleaned = clean_klines(
        raw_klines,
        pair_tokens={pair: token.symbol for pair, token in universe.pairs().items()},
        token_categories={t.symbol: t.category for t in universe.tokens},
        listings=[
            (token.symbol, listing.start, listing.end)
            for token in universe.tokens
            for listing in token.listings
        ],
        start=window.start,
        end=window.end,
        intervals=tuple(INTERVAL_MS),
        gap_policy=config.gap_policy,
        max_carry_seconds=_CONFIG.max_carry_seconds,
    )
    gaps = F.sum(F.col("is_gap").cast("int"))
    yield from publish(
        context,
        cleaned,
        time_column="open_time",
        keys=BRONZE_KEY,
        observed=~F.col("is_gap"),
        extra_aggregates={"gap_rows": gaps},
        extra_metadata={"gap_policy": MetadataValue.text(config.gap_policy)},
    )
