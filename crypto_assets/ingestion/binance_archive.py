"""Binance's public bulk archive (data.binance.vision): the fast path for deep history.

One zipped CSV per pair, interval and day (or month), verified against its ``.CHECKSUM``
(SHA-256) before a single row is used. Spot files switched ``open_time`` / ``close_time`` from
milliseconds to microseconds on 2025-01-01: both are read, and rows come out in milliseconds,
the same :class:`Kline` as the REST client's. A file that is not published yet is ``None``,
so the caller can fall back to REST for that day. A file that does not match its checksum, or is
not a zip, is downloaded again with its ``.CHECKSUM`` (a corrupted download is transient), with
the client's retry budget and backoff; after that :class:`ChecksumMismatch` or
:class:`~crypto_assets.ingestion.http.UnreadableBody` is raised, and the caller falls back to REST.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import date
from typing import Any

import httpx
import pandas as pd

from crypto_assets.ingestion.binance import (
    FRAME_COLUMNS,
    INTERVAL_MS,
    Kline,
    klines_frame,
    klines_from_frame,
    validate_kline_frame,
)
from crypto_assets.ingestion.http import MalformedPayload, NotFound, RetryingHttp, UnreadableBody

MICROSECOND_THRESHOLD = 10**14  # ms timestamps are ~1.7e12 until year 5138; µs are ~1.7e15


class ChecksumMismatch(UnreadableBody):
    """The archive file does not match its published SHA-256: never used (downloaded again)."""


def daily_path(pair: str, interval: str, day: date) -> str:
    return f"/data/spot/daily/klines/{pair}/{interval}/{pair}-{interval}-{day.isoformat()}.zip"


def monthly_path(pair: str, interval: str, year: int, month: int) -> str:
    return f"/data/spot/monthly/klines/{pair}/{interval}/{pair}-{interval}-{year:04d}-{month:02d}.zip"


def archive_frame(text: str) -> pd.DataFrame:
    """An archive CSV as a validated kline frame (vectorised; times in milliseconds)."""
    table = pd.read_csv(io.StringIO(text), header=None, dtype=str, keep_default_na=False)
    if len(table) and not str(table.iloc[0, 0]).strip().isdigit():
        table = table.iloc[1:]  # a header line, as in some copies of the archive
    if len(table) == 0:
        return klines_frame([])
    if table.shape[1] < 11:
        raise MalformedPayload(f"archive rows have {table.shape[1]} fields, expected 12")
    frame = table.iloc[:, :11].copy()
    frame.columns = list(FRAME_COLUMNS)
    for name in ("open_time", "close_time", "trade_count"):
        numbers = pd.to_numeric(frame[name], errors="coerce")
        if numbers.isna().any():
            raise MalformedPayload(f"archive field {name} must be an integer")
        frame[name] = numbers.astype("int64")
    for name in ("open_time", "close_time"):
        frame[name] = frame[name].where(frame[name] < MICROSECOND_THRESHOLD, frame[name] // 1000)
    return validate_kline_frame(frame.reset_index(drop=True))


def parse_archive_csv(text: str) -> list[Kline]:
    """Rows of an archive CSV as :class:`Kline` (12 columns; a header line is skipped)."""
    return klines_from_frame(archive_frame(text))


class BinanceArchiveClient:
    """Downloads, verifies and parses archive files."""

    def __init__(
        self, base_url: str, *, transport: httpx.BaseTransport | None = None, **http_options: Any
    ) -> None:
        self.http = RetryingHttp(base_url, transport=transport, **http_options)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> BinanceArchiveClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def fetch_frame(self, path: str) -> pd.DataFrame | None:
        """The verified rows of one archive file as a kline frame, or None when not published."""
        text = self.http.read(lambda: self._verified_text(path))
        return None if text is None else archive_frame(text)

    def fetch(self, path: str) -> list[Kline] | None:
        """The verified rows of one archive file, or None when it is not published."""
        frame = self.fetch_frame(path)
        return None if frame is None else klines_from_frame(frame)

    def _verified_text(self, path: str) -> str | None:
        """One download of the file and its checksum, verified and unzipped."""
        try:
            payload = self.http.get(path).content
            published = self.http.get(path + ".CHECKSUM").text
        except NotFound:
            return None
        expected = published.strip().split()[0].lower() if published.strip() else ""
        actual = hashlib.sha256(payload).hexdigest()
        if actual != expected:
            raise ChecksumMismatch(
                f"{path}: SHA-256 {actual} does not match the published {expected or '(empty)'}"
            )
        try:
            with zipfile.ZipFile(io.BytesIO(payload)) as archive:
                names = [n for n in archive.namelist() if n.endswith(".csv")]
                if len(names) != 1:
                    raise MalformedPayload(f"{path}: expected one CSV in the zip, found {names}")
                return archive.read(names[0]).decode()
        except zipfile.BadZipFile as exc:
            raise UnreadableBody(f"{path}: not a valid zip file ({exc})") from exc

    def day(self, pair: str, interval: str, day: date) -> list[Kline] | None:
        frame = self.day_frame(pair, interval, day)
        return None if frame is None else klines_from_frame(frame)

    def day_frame(self, pair: str, interval: str, day: date) -> pd.DataFrame | None:
        if interval not in INTERVAL_MS:
            raise ValueError(f"unsupported interval {interval!r}")
        return self.fetch_frame(daily_path(pair, interval, day))
