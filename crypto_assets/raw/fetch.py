"""How one UTC day of klines is fetched: archive first, REST for what the archive lacks.

Pure Python (httpx clients, pandas): no Dagster, so the CLI and benchmarks use it directly.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from crypto_assets.ingestion.binance import BinanceClient
from crypto_assets.ingestion.binance_archive import BinanceArchiveClient
from crypto_assets.raw.schema import frame_to_raw, klines_to_pandas

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
) -> tuple[pd.DataFrame, list[PairReport]]:
    """1m klines of ``pairs`` opening in ``[start, end)`` (one UTC day), in the raw schema.

    With an ``archive`` client, each pair's day comes from its verified archive file, or from
    REST when the file is not published yet. Candles still open at ``now`` are dropped: a
    candle is final only once its close time has passed.
    """
    ingested_at = datetime.now(UTC)

    def one(pair: str) -> tuple[pd.DataFrame, PairReport]:
        klines: pd.DataFrame | None = None
        source = SOURCE_REST
        if archive is not None:
            klines = archive.day_frame(pair, INTERVAL, start.date())
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
        else klines_to_pandas("", INTERVAL, [], "", ingested_at)
    )
    return combined, [report for _, report in results]
