"""Binance's public bulk archive (data.binance.vision) layout: zipped daily/monthly kline CSVs.

``/data/spot/{daily|monthly}/klines/<PAIR>/<interval>/<PAIR>-<interval>-<date>.zip`` and the
same name plus ``.CHECKSUM`` (``<sha256>  <file name>``). Files have no header and, as on the
real archive, spot timestamps switch from milliseconds to microseconds on 2025-01-01. A file
exists only once its period is over (plus ``archive_lag_days``) and if the pair traded in it.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crypto_assets.emulator.market import DAY_MS, INTERVAL_MINUTES, Market, day_rows

if TYPE_CHECKING:
    from crypto_assets.emulator.app import EmulatorConfig

MICROSECONDS_FROM = date(2025, 1, 1)
_NAME = re.compile(
    r"^(?P<pair>[A-Z0-9]+)-(?P<interval>\w+)-(?P<period>\d{4}-\d{2}(?:-\d{2})?)\.zip(?P<checksum>\.CHECKSUM)?$"
)


def _not_found(key: str) -> Response:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code><Key>{key}</Key></Error>"
    return Response(body, status_code=404, media_type="application/xml")


def to_csv(rows: list[list], microseconds: bool) -> bytes:
    scale = 1000 if microseconds else 1
    lines = []
    for row in rows:
        fields = [str(row[0] * scale), *row[1:6], str((row[6] + 1) * scale - 1), *[str(v) for v in row[7:]]]
        lines.append(",".join(fields))
    return ("\n".join(lines) + "\n").encode() if lines else b""


def routes(market: Market, config: EmulatorConfig) -> list[Route]:
    @lru_cache(maxsize=256)
    def build(pair: str, interval: str, period: str, data_version: int) -> bytes | None:
        # data_version: a data fault (minutes dropped from the 1m stream) invalidates built files.
        cached = (
            config.archive_cache / f"{pair}-{interval}-{period}.zip"
            if config.archive_cache is not None and data_version == 0
            else None
        )
        if cached is not None and cached.exists():
            return cached.read_bytes() or None
        payload = _build(pair, interval, period)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            staging = cached.with_name(f".{cached.name}.{os.getpid()}")
            staging.write_bytes(payload or b"")  # empty: the pair did not trade in the period
            os.replace(staging, cached)
        return payload

    def _build(pair: str, interval: str, period: str) -> bytes | None:
        days = _days(period)
        rows: list[list] = []
        for day in days:
            start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
            rows += day_rows(market, pair, interval, start, start + DAY_MS)
        if not rows:
            return None
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{pair}-{interval}-{period}.csv", to_csv(rows, days[0] >= MICROSECONDS_FROM))
        return buffer.getvalue()

    def serve(request: Request) -> Response:
        name = request.path_params["name"]
        match = _NAME.match(name)
        kind = request.path_params["kind"]
        if (
            match is None
            or match["pair"] != request.path_params["pair"]
            or match["interval"] != request.path_params["interval"]
            or match["interval"] not in INTERVAL_MINUTES
            or match["pair"] not in market.listings
            or (kind == "daily") != (len(match["period"]) == 10)
        ):
            return _not_found(request.url.path)
        days = _days(match["period"])
        published = datetime.fromtimestamp(config.clock() / 1000, UTC).date() - timedelta(
            days=config.archive_lag_days
        )
        if days[-1] >= published:
            return _not_found(request.url.path)
        payload = build(match["pair"], match["interval"], match["period"], market.data_version)
        if payload is None:
            return _not_found(request.url.path)
        zip_name = name.removesuffix(".CHECKSUM")
        if match["checksum"]:
            return Response(f"{hashlib.sha256(payload).hexdigest()}  {zip_name}\n", media_type="text/plain")
        return Response(payload, media_type="application/zip")

    return [Route("/data/spot/{kind:str}/klines/{pair:str}/{interval:str}/{name:str}", serve)]


def _days(period: str) -> list[date]:
    if len(period) == 10:
        return [date.fromisoformat(period)]
    first = date.fromisoformat(period + "-01")
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return [first + timedelta(days=i) for i in range((following - first).days)]
