"""How every layer hands a DataFrame to its IO manager: metadata and check results in one pass."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from dagster import AssetCheckResult, AssetExecutionContext, MetadataValue, Output
from pyspark.sql import DataFrame

from crypto_assets.checks import TOKEN_COVERAGE, quality_results, summary_metadata
from crypto_assets.quality import summarize
from crypto_assets.universe import load_universe


def expected_coverage(
    start: datetime, end: datetime, *, by_pair: bool = False
) -> tuple[list[str], dict[str, str]]:
    """Tokens (or their pairs) with a Binance listing in ``[start, end)``, and why others have none.

    Over a multi-day window a token counts as expected if it was listed on any of the days.
    """
    universe = load_universe()
    active = universe.active_pairs(start, end)
    expected = sorted(active) if by_pair else sorted({token.symbol for token in active.values()})
    return expected, universe.unavailable(start, end)


def publish(
    context: AssetExecutionContext,
    frame: DataFrame,
    *,
    time_column: str,
    keys: tuple[str, ...],
    token_column: str = "token",
    ohlc: bool = True,
    coverage: tuple[list[str], Mapping[str, str]] | None = None,
    coverage_check: str = TOKEN_COVERAGE,
    extra_metadata: Mapping[str, Any] | None = None,
) -> Iterator[Output | AssetCheckResult]:
    """Yield the frame (to the IO manager) with metadata, then the quality check results.

    ``coverage`` is (expected tokens, why others are missing); by default the tokens with a
    Binance listing in the window. The frame is cached so the summary, the preview and the
    write share one computation.
    """
    window = context.partition_time_window
    expected, unavailable = coverage or expected_coverage(
        window.start, window.end, by_pair=token_column == "symbol"
    )
    cached = frame.cache()
    try:
        summary = summarize(cached, keys=keys, time_column=time_column, token_column=token_column)
        preview = cached.orderBy(*keys).limit(5).toPandas()
        metadata: dict[str, Any] = {
            **summary_metadata(summary, preview),
            "not_available_from_source": MetadataValue.json(dict(sorted(unavailable.items()))),
            **(extra_metadata or {}),
        }
        partitions = context.partition_key_range
        context.log.info(
            f"{context.asset_key.to_user_string()} {partitions.start}..{partitions.end}: {summary.rows} rows,"
            f" {len(summary.tokens)} tokens"
        )
        yield Output(cached, metadata=metadata)
        yield from quality_results(
            summary,
            expected_tokens=expected,
            unavailable=unavailable,
            ohlc=ohlc,
            coverage_check=coverage_check,
        )
    finally:
        cached.unpersist()
