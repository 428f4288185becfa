"""How one UTC day of klines is fetched: archive first, REST for what the archive lacks.

Pure Python (httpx clients, pandas): no Dagster, so the CLI and benchmarks use it directly.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from crypto_assets.ingestion.binance import BinanceClient, klines_frame
from crypto_assets.ingestion.binance_archive import BinanceArchiveClient, monthly_path
from crypto_assets.raw.schema import frame_to_raw

INTERVAL = "1m"
SOURCE_REST = "binance_rest"
SOURCE_ARCHIVE = "binance_archive"
EXCHANGE_SOURCES = (SOURCE_REST, SOURCE_ARCHIVE)
FETCH_THREADS = 4


@dataclass(frozen=True)
class PairReport:
    pair: str
    rows: int
    source: str


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def fetch_klines(
    rest: BinanceClient,
    archive: BinanceArchiveClient | None,
    pairs: list[str],
    start: datetime,
    end: datetime,
    now: datetime,
    threads: int = FETCH_THREADS,
    monthly: bool = False,
) -> tuple[pd.DataFrame, list[PairReport]]:
    """1m klines of ``pairs`` opening in ``[start, end)``, in the raw schema.

    ``[start, end)`` is one UTC day, or with ``monthly`` one whole calendar month. With an
    ``archive`` client, each pair's period comes from its verified daily (or monthly) archive
    file, or from REST when the file is not published. Candles still open at ``now`` are
    dropped: a candle is final only once its close time has passed.
    """
    ingested_at = datetime.now(UTC)

    def one(pair: str) -> tuple[pd.DataFrame, PairReport]:
        klines: pd.DataFrame | None = None
        source = SOURCE_REST
        if archive is not None:
            klines = (
                archive.fetch_frame(monthly_path(pair, INTERVAL, start.year, start.month))
                if monthly
                else archive.day_frame(pair, INTERVAL, start.date())
            )
            source = SOURCE_ARCHIVE
        if klines is None:
            klines, source = rest.klines_frame(pair, INTERVAL, _ms(start), _ms(end)), SOURCE_REST
        open_time, close_time = klines["open_time"], klines["close_time"]
        final = klines[(open_time >= _ms(start)) & (open_time < _ms(end)) & (close_time < _ms(now))]
        return frame_to_raw(pair, INTERVAL, final, source, ingested_at), PairReport(pair, len(final), source)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(one, pairs))
    frames = [frame for frame, _ in results if len(frame)]
    combined = (
        pd.concat(frames, ignore_index=True)
        if frames
        else frame_to_raw("", INTERVAL, klines_frame([]), "", ingested_at)
    )
    return combined, [report for _, report in results]


def fetch_plan(start: datetime, end: datetime, use_archive: bool) -> list[tuple[datetime, datetime, bool]]:
    """Split ``[start, end)`` into fetch periods: whole calendar months (one monthly archive file
    per pair instead of ~30 daily ones) when the archive is used, single days otherwise."""
    periods: list[tuple[datetime, datetime, bool]] = []
    cursor = start
    while cursor < end:
        month_end = (cursor.replace(day=28) + timedelta(days=4)).replace(day=1)
        if use_archive and cursor.day == 1 and cursor.hour == 0 and month_end <= end:
            periods.append((cursor, month_end, True))
            cursor = month_end
        else:
            periods.append((cursor, cursor + timedelta(days=1), False))
            cursor += timedelta(days=1)
    return periods
