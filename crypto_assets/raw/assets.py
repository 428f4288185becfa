"""Raw layer: what the sources sent, per UTC day, into the lake."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path

import pandas as pd
from dagster import AssetCheckResult, AssetExecutionContext, Config, MetadataValue, Output
from dagster_pyspark import LazyPySparkResource
from pydantic import Field

from crypto_assets.checks import quality_check_specs, validator_specs
from crypto_assets.ingestion.binance import INTERVAL_MS
from crypto_assets.live.agreement import agreement_spec_validators, stream_agreement
from crypto_assets.partitions import daily_asset
from crypto_assets.pipeline_config import load_pipeline_config
from crypto_assets.publishing import publish
from crypto_assets.raw.fetch import EXCHANGE_SOURCES, PairReport, fetch_klines, fetch_plan
from crypto_assets.raw.fetch import INTERVAL as MINUTE
from crypto_assets.raw.fetched import FetchedPeriods
from crypto_assets.raw.merge import exchange_rows, merge_raw
from crypto_assets.raw.schema import RAW_KEY, RAW_KLINES_SCHEMA
from crypto_assets.universe import load_universe
from resources.exchange import BinanceResource
from resources.parquet_io import LakeResource

_INTERVALS = load_pipeline_config().ingest_intervals


class RawKlinesConfig(Config):
    """Which kline intervals a run fetches (default ``ingestion.intervals`` of pipeline.yaml), and
    from which day each one: the warm-up fetches 605 days of ``1d`` and, in the same run, ``1h``
    from the last 30 of them only."""

    intervals: list[str] = Field(default=list(_INTERVALS), description="kline intervals, e.g. [1m, 1h, 1d]")
    interval_starts: dict[str, str] = Field(
        default={},
        description="interval -> first day fetched (YYYY-MM-DD) when later than the run's first day",
    )

    def starts(self, window_start: datetime, window_end: datetime) -> dict[str, datetime]:
        """Interval -> the first moment fetched (the window's start, or the interval's own later
        start); intervals starting at or after ``window_end`` are left out. Unknown intervals and
        malformed starts are refused."""
        unknown = sorted(set(self.intervals) - set(INTERVAL_MS))
        if unknown or not self.intervals:
            raise ValueError(
                f"intervals {unknown or '[]'} are not Binance kline intervals {list(INTERVAL_MS)}"
            )
        stray = sorted(set(self.interval_starts) - set(self.intervals))
        if stray:
            raise ValueError(f"interval_starts names {stray}, which are not among intervals {self.intervals}")
        starts = dict.fromkeys(self.intervals, window_start)
        for interval, day in self.interval_starts.items():
            try:
                first = datetime.combine(date.fromisoformat(day), time(), UTC)
            except ValueError:
                raise ValueError(
                    f"interval_starts[{interval!r}] = {day!r} is not a day (YYYY-MM-DD)"
                ) from None
            starts[interval] = max(window_start, first)
        return {i: t for i, t in starts.items() if t < window_end}


@daily_asset(
    "raw",
    time_column="open_time",
    check_specs=[
        *quality_check_specs(
            "raw_klines", ohlc=False, keys="(venue, market, symbol, interval, open_time, source)"
        ),
        *validator_specs("raw_klines", agreement_spec_validators()),
    ],
)
def raw_klines(
    context: AssetExecutionContext,
    config: RawKlinesConfig,
    binance: BinanceResource,
    pyspark: LazyPySparkResource,
    lake: LakeResource,
) -> Iterator[Output | AssetCheckResult]:
    """Klines of every listed token for one UTC day, exactly as Binance sent them, at each
    configured interval: 1m for the days a run refines, and the exchange's own 1h and 1d klines
    (the look-back history of the features is fetched at that grain, not as minutes).

    Pairs are the universe's dated listings for the day, confirmed against exchangeInfo. Each
    pair's minutes come from the bulk archive (SHA-256 verified, ms or µs timestamps; monthly
    files for whole months), falling back to the REST API; its 1h and 1d klines come from REST
    ranges (pages of 1,000 under the shared weight budget). Prices and volumes stay the
    exchange's decimal strings; rows carry their source, interval and ingestion time; candles
    still open are never written.

    Transient faults (429, 5xx, timeouts, cut or corrupted bodies) are retried; an archive day
    that stays corrupted or unavailable comes from REST instead (``archive_fallbacks``). When a
    run fails anyway, the pair-periods it had fetched are kept and its retry fetches only the
    rest (``pairs_reused``); nothing reaches the partitions before every pair is in.
    """
    window = context.partition_time_window
    starts = config.starts(window.start, window.end)
    universe = load_universe()
    use_archive = binance.klines_source == "archive"
    frames: list[pd.DataFrame] = []
    reports: list[PairReport] = []
    not_listed: set[str] = set()
    kept = FetchedPeriods(lake.root, binance.rest_url, binance.archive_url, binance.klines_source)
    with binance.client() as rest, binance.archive_client() as archive:
        listed = rest.trading_symbols()
        for interval, start in starts.items():
            # Minutes come from the archive; coarser klines from REST ranges. A pair's 605 daily
            # bars are one request (weight 2) instead of 20 monthly files and their checksums of
            # ~30 rows each, whose parsing cost more than the bars: 20 s against 29 s for the
            # warm-up's 1d history, measured side by side (the note in README's benchmarks).
            archive_grain = use_archive and interval == MINUTE
            for period_start, period_end, monthly in fetch_plan(start, window.end, archive_grain, interval):
                active = universe.active_pairs(period_start, period_end)
                pairs = sorted(p for p in active if p in listed)
                not_listed |= set(active) - set(pairs)
                frame, period_reports = fetch_klines(
                    rest,
                    archive if archive_grain else None,
                    pairs,
                    period_start,
                    period_end,
                    datetime.now(UTC),
                    monthly=monthly,
                    interval=interval,
                    kept=kept,
                )
                frames.append(frame)
                day = period_start.date().isoformat()
                reports += [
                    PairReport(f"{r.pair} {interval}", r.rows, r.source, r.fallback and f"{day}: {r.fallback}", r.reused)
                    for r in period_reports
                ]  # fmt: skip
        used_weight = rest.used_weight
        rate_limited = rest.http.rate_limited
        unreadable = rest.http.unreadable + archive.http.unreadable
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
    # Re-delivering a day replaces the exchange's rows of the fetched intervals, and keeps other
    # intervals and rows a user imported from files.
    previous = lake.read_partitions("raw", "raw_klines", list(context.partition_keys))
    raw = merge_raw(
        previous,
        raw,
        exchange_rows(
            EXCHANGE_SOURCES, {i: int(t.timestamp() * 1000) for i, t in starts.items()}, "binance", "spot"
        ),
    )
    sources = sorted({r.source for r in reports if r.rows})
    yield from publish(
        context,
        raw,
        time_column="open_time",
        keys=RAW_KEY,
        token_column="symbol",
        ohlc=False,
        # The closed days' streamed minutes (if the stream ran) against the exchange's.
        validators=[stream_agreement(Path(lake.root), window.start, window.end)],
        extra_metadata={
            "rows_per_pair": MetadataValue.json(_total_rows(reports)),
            "source_per_pair": MetadataValue.json({r.pair: r.source for r in reports if r.rows}),
            "sources": MetadataValue.text(", ".join(sources) or "none"),
            "intervals_fetched": MetadataValue.json({i: t.date().isoformat() for i, t in starts.items()}),
            "pairs_not_on_exchange": MetadataValue.json(sorted(not_listed)),
            "exchange_used_weight_1m": MetadataValue.int(used_weight or 0),
            "http_429_received": MetadataValue.int(rate_limited),
            "unreadable_bodies_retried": MetadataValue.int(unreadable),
            "archive_fallbacks": MetadataValue.json({r.pair: r.fallback for r in reports if r.fallback}),
            "pairs_reused": MetadataValue.int(sum(r.reused for r in reports)),
        },
    )
    # The partitions hold them now: a later run of these days fetches afresh.
    kept.discard_used()


def _total_rows(reports: list[PairReport]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for report in reports:
        totals[report.pair] = totals.get(report.pair, 0) + report.rows
    return totals
