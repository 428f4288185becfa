"""How klines are fetched: archive first, REST for what the archive lacks.

1m comes a day (daily archive file) or a month (monthly file) at a time. Coarser klines (1h, 1d)
can come as monthly archive files for whole months and as one paginated REST range for the rest
(``fetch_plan``); raw_klines takes them from REST only: a year of a pair's 1d klines is one
request, not 12 monthly files and their checksums.

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
DAY = timedelta(days=1)
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
    interval: str = INTERVAL,
) -> tuple[pd.DataFrame, list[PairReport]]:
    """``interval`` klines of ``pairs`` opening in ``[start, end)``, in the raw schema.

    ``[start, end)`` is one period of :func:`fetch_plan`: with ``monthly`` one whole calendar
    month (a monthly archive file per pair), else one UTC day for 1m (a daily archive file) or
    any range for coarser intervals (REST pages). A file the archive has not published falls
    back to REST. Candles still open at ``now`` are dropped: a candle is final only once its
    close time has passed.
    """
    ingested_at = datetime.now(UTC)

    def one(pair: str) -> tuple[pd.DataFrame, PairReport]:
        klines: pd.DataFrame | None = None
        source = SOURCE_REST
        if archive is not None and (monthly or interval == INTERVAL):
            klines = (
                archive.fetch_frame(monthly_path(pair, interval, start.year, start.month))
                if monthly
                else archive.day_frame(pair, interval, start.date())
            )
            source = SOURCE_ARCHIVE
        if klines is None:
            klines, source = rest.klines_frame(pair, interval, _ms(start), _ms(end)), SOURCE_REST
        open_time, close_time = klines["open_time"], klines["close_time"]
        final = klines[(open_time >= _ms(start)) & (open_time < _ms(end)) & (close_time < _ms(now))]
        return frame_to_raw(pair, interval, final, source, ingested_at), PairReport(pair, len(final), source)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(one, pairs))
    frames = [frame for frame, _ in results if len(frame)]
    combined = (
        pd.concat(frames, ignore_index=True)
        if frames
        else frame_to_raw("", interval, klines_frame([]), "", ingested_at)
    )
    return combined, [report for _, report in results]


def fetch_plan(
    start: datetime, end: datetime, use_archive: bool, interval: str = INTERVAL
) -> list[tuple[datetime, datetime, bool]]:
    """Split ``[start, end)`` into fetch periods ``(start, end, monthly)``: whole calendar months
    (one monthly archive file per pair instead of ~30 daily ones) when the archive is used;
    otherwise single days for 1m, and for coarser intervals the longest ranges between months
    (REST returns 1,000 of them per request)."""
    periods: list[tuple[datetime, datetime, bool]] = []
    cursor = start
    while cursor < end:
        month_end = (cursor.replace(day=28) + timedelta(days=4)).replace(day=1)
        if use_archive and cursor.day == 1 and cursor.hour == 0 and month_end <= end:
            periods.append((cursor, month_end, True))
            cursor = month_end
            continue
        step_end = cursor + DAY
        if interval != INTERVAL:
            step_end = min(month_end, end) if use_archive else end
        if periods and not periods[-1][2] and periods[-1][1] == cursor and interval != INTERVAL:
            periods[-1] = (periods[-1][0], step_end, False)
        else:
            periods.append((cursor, step_end, False))
        cursor = step_end
    return periods
