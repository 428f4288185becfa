"""How klines are fetched: archive first, REST for what the archive lacks or cannot deliver.

1m comes a day (daily archive file) or a month (monthly file) at a time. Coarser klines (1h, 1d)
can come as monthly archive files for whole months and as one paginated REST range for the rest
(``fetch_plan``); raw_klines takes them from REST only: a year of a pair's 1d klines is one
request, not 12 monthly files and their checksums.

An archive file that stays unavailable or corrupted after the client's retries (a checksum that
never matches, a zip that is not a zip) is not the end of the run: the same minutes come from
REST, and the report says so and why. What each pair's period delivered is kept
(:mod:`crypto_assets.raw.fetched`) the moment it arrives, so a run that fails on another pair
is retried without fetching it again.

Pure Python (httpx clients, pandas): no Dagster, so the CLI and benchmarks use it directly.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from crypto_assets.ingestion.binance import BinanceClient, klines_frame
from crypto_assets.ingestion.binance_archive import BinanceArchiveClient, daily_path, monthly_path
from crypto_assets.ingestion.http import Unavailable, UnreadableBody
from crypto_assets.raw.fetched import Fetched, FetchedPeriods
from crypto_assets.raw.schema import frame_to_raw

log = logging.getLogger(__name__)

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
    fallback: str = ""  # why the archive was not used, when it was asked first
    reused: bool = False  # kept from an earlier, failed run instead of fetched


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
    kept: FetchedPeriods | None = None,
) -> tuple[pd.DataFrame, list[PairReport]]:
    """``interval`` klines of ``pairs`` opening in ``[start, end)``, in the raw schema.

    ``[start, end)`` is one period of :func:`fetch_plan`: with ``monthly`` one whole calendar
    month (a monthly archive file per pair), else one UTC day for 1m (a daily archive file) or
    any range for coarser intervals (REST pages). A file the archive has not published falls
    back to REST, and so does one that stays unavailable or unreadable after the retries.
    Candles still open at ``now`` are dropped: a candle is final only once its close time has
    passed. With ``kept``, a pair's closed period already fetched by an earlier run is reused,
    and each one fetched now is kept as soon as it arrives.
    """
    ingested_at = datetime.now(UTC)
    store = kept if end <= now else None  # an open period would resume with candles missing

    def one(pair: str) -> tuple[pd.DataFrame, PairReport]:
        earlier = store.get(pair, interval, start, end, monthly) if store is not None else None
        if earlier is not None:
            report = PairReport(pair, len(earlier.frame), earlier.source, earlier.fallback, reused=True)
            return earlier.frame, report
        klines, source, fallback = _fetch_pair(rest, archive, pair, interval, start, end, monthly)
        open_time, close_time = klines["open_time"], klines["close_time"]
        final = klines[(open_time >= _ms(start)) & (open_time < _ms(end)) & (close_time < _ms(now))]
        raw = frame_to_raw(pair, interval, final, source, ingested_at)
        if store is not None:
            store.put(pair, interval, start, end, monthly, Fetched(raw, source, fallback))
        return raw, PairReport(pair, len(final), source, fallback)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(one, pairs))
    frames = [frame for frame, _ in results if len(frame)]
    combined = (
        pd.concat(frames, ignore_index=True)
        if frames
        else frame_to_raw("", interval, klines_frame([]), "", ingested_at)
    )
    return combined, [report for _, report in results]


def _fetch_pair(
    rest: BinanceClient,
    archive: BinanceArchiveClient | None,
    pair: str,
    interval: str,
    start: datetime,
    end: datetime,
    monthly: bool,
) -> tuple[pd.DataFrame, str, str]:
    """A pair's klines of one period, their source, and why the archive was passed over."""
    fallback = ""
    if archive is not None and (monthly or interval == INTERVAL):
        path = (
            monthly_path(pair, interval, start.year, start.month)
            if monthly
            else daily_path(pair, interval, start.date())
        )
        try:
            klines = archive.fetch_frame(path)
        except (UnreadableBody, Unavailable) as exc:
            # The archive is another host than the API: the same minutes are one REST range away.
            fallback = f"{type(exc).__name__}: {exc}"
            log.warning("%s %s: archive failed after its retries, fetching from REST instead: %s",
                        pair, start.date(), fallback)  # fmt: skip
        else:
            if klines is not None:
                return klines, SOURCE_ARCHIVE, ""
            # Not published yet (the archive trails by a day or so): REST as usual, no fallback.
    return rest.klines_frame(pair, interval, _ms(start), _ms(end)), SOURCE_REST, fallback


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
