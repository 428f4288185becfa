"""Binance spot REST client: exchangeInfo and paginated klines under a shared weight budget.

Failures follow :mod:`crypto_assets.ingestion.http`: 429 honours ``Retry-After`` and pauses every
worker, 418 stops at once, 5xx and timeouts back off with jitter, bad payloads name the field.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd

from crypto_assets.ingestion.http import (
    Banned,
    MalformedPayload,
    RequestBudget,
    RequestRejected,
    RetryingHttp,
    SourceError,
    Unavailable,
)

__all__ = [
    "Banned", "BinanceClient", "Kline", "MalformedPayload", "RequestRejected", "SourceError",
    "Unavailable", "parse_kline",
]  # fmt: skip

KLINE_FIELDS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "trade_count", "taker_buy_base_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip
INTERVAL_MS: dict[str, int] = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000,
    "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000,
}  # fmt: skip
MAX_KLINES_PER_REQUEST = 1000
# Request weights, as Binance documents them.
WEIGHT_KLINES = 2
WEIGHT_EXCHANGE_INFO = 20
WEIGHT_HISTORICAL_TRADES = 25
MAX_TRADES_PER_REQUEST = 1000


@dataclass(frozen=True)
class Kline:
    """One kline row as Binance sends it: prices and volumes kept as the exact decimal strings."""

    open_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    close_time: int
    quote_volume: str
    trade_count: int
    taker_buy_base_volume: str
    taker_buy_quote_volume: str


def parse_kline(row: Any) -> Kline:
    """Validate one 12-field kline row; raise :class:`MalformedPayload` naming what is wrong."""
    return klines_from_frame(klines_frame([row]))[0]


def klines_from_frame(frame: pd.DataFrame) -> list[Kline]:
    """A validated kline frame as :class:`Kline` rows (python ints and decimal strings)."""
    return [Kline(**row) for row in frame.to_dict("records")]


FRAME_COLUMNS = KLINE_FIELDS[:11]
_INT_FIELDS = ("open_time", "close_time", "trade_count")
_PRICE_FIELDS = ("open", "high", "low", "close")


def klines_frame(rows: list) -> pd.DataFrame:
    """Validate kline rows in bulk (vectorised) and return them as a frame of the 11 fields.

    The one kline validator (:func:`parse_kline` is this for a single row), vectorised: the
    backfill hot path parses millions of rows. Times and counts are int64 (booleans refused);
    prices and volumes stay strings, checked numeric.
    """
    if not rows:
        return pd.DataFrame(
            {name: pd.Series(dtype="int64" if name in _INT_FIELDS else object) for name in FRAME_COLUMNS}
        )
    if not all(isinstance(row, list) and len(row) >= 11 for row in rows):
        bad = next(row for row in rows if not (isinstance(row, list) and len(row) >= 11))
        raise MalformedPayload(f"kline row must be a list of 12 fields, got {str(bad)[:120]!r}")
    return validate_kline_frame(
        pd.DataFrame.from_records([row[:11] for row in rows], columns=list(FRAME_COLUMNS))
    )


def validate_kline_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Check the 11 kline fields column by column: integer times and counts, numeric decimal strings."""
    for name in FRAME_COLUMNS:
        column = frame[name]
        kind = pd.api.types.infer_dtype(column, skipna=False)
        if name in _INT_FIELDS:
            if kind != "integer":
                raise MalformedPayload(
                    f"kline field {name} must be an integer, got {column.iloc[0]!r} ({kind})"
                )
        elif kind != "string":
            raise MalformedPayload(f"kline field {name} must be a decimal string, got {kind} values")
        else:
            try:
                numbers = column.to_numpy().astype(float)  # C-speed; the slow path names the culprit
            except ValueError:
                value = column[pd.to_numeric(column, errors="coerce").isna()].iloc[0]
                raise MalformedPayload(f"kline field {name} is not a number: {value!r}") from None
            # 'inf' and 'nan' parse as floats but are no price or volume; a price of 0 is none.
            bad = ~np.isfinite(numbers) | ((numbers <= 0) if name in _PRICE_FIELDS else (numbers < 0))
            if bad.any():
                what = "a positive price" if name in _PRICE_FIELDS else "a non-negative finite number"
                raise MalformedPayload(f"kline field {name} is not {what}: {column[bad].iloc[0]!r}")
    for name in _INT_FIELDS:
        frame[name] = frame[name].astype("int64")
    return frame


def used_weight_header(window_seconds: float) -> str:
    """Binance's name for the weight used in a window: X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter),
    e.g. -1M for a minute, -10S for ten seconds."""
    seconds = int(window_seconds)
    if seconds != window_seconds or seconds <= 0:
        raise ValueError(f"a weight window is a whole number of seconds, not {window_seconds}")
    for letter, size in (("D", 86_400), ("H", 3_600), ("M", 60)):
        if seconds % size == 0:
            return f"X-MBX-USED-WEIGHT-{seconds // size}{letter}"
    return f"X-MBX-USED-WEIGHT-{seconds}S"


class BinanceClient:
    """Synchronous, thread-safe client for Binance's public spot REST API (or anything speaking it).

    Every request spends its documented weight from a shared :class:`RequestBudget` (Binance's
    REQUEST_WEIGHT per minute, 6000 by default), kept in step with the server's count of the same
    window (``X-MBX-USED-WEIGHT-1M`` for a minute).
    """

    def __init__(
        self,
        base_url: str,
        *,
        weight_per_minute: int = 6000,
        weight_window_seconds: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        **http_options: Any,
    ) -> None:
        self.budget = RequestBudget(weight_per_minute, weight_window_seconds, clock=clock, sleep=sleep)
        self.http = RetryingHttp(
            base_url, transport=transport, sleep=sleep, budget=self.budget, **http_options
        )
        self.base_url = self.http.base_url
        self.used_weight: int | None = None  # last X-MBX-USED-WEIGHT-1M seen

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> BinanceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _observe_weight(self, response: httpx.Response) -> None:
        weight = response.headers.get("X-MBX-USED-WEIGHT-1M")
        if weight and weight.isdigit():
            self.used_weight = int(weight)
        # The server's count joins ours only when it is counted over the same window: a minute's
        # 22 says nothing about a 2-second window of 20 (and would stall it window after window).
        own = response.headers.get(used_weight_header(self.budget.window_seconds))
        if own and own.isdigit():
            self.budget.observe(int(own))

    def _get(self, path: str, params: dict[str, Any] | None = None, weight: int = 1) -> Any:
        return self.http.get_json(path, params, cost=weight, on_response=self._observe_weight)

    # ------------------------------------------------------------------ endpoints
    def exchange_info(self) -> dict[str, Any]:
        body = self._get("/api/v3/exchangeInfo", weight=WEIGHT_EXCHANGE_INFO)
        if not isinstance(body, dict) or not isinstance(body.get("symbols"), list):
            raise MalformedPayload("exchangeInfo has no 'symbols' list")
        return body

    def trading_symbols(self) -> dict[str, str]:
        """symbol -> status for every symbol exchangeInfo lists."""
        return {s["symbol"]: s.get("status", "UNKNOWN") for s in self.exchange_info()["symbols"]}

    def historical_trades(
        self, symbol: str, from_id: int, limit: int = MAX_TRADES_PER_REQUEST
    ) -> list[dict[str, Any]]:
        """Trades of ``symbol`` from id ``from_id`` on (``/api/v3/historicalTrades``), oldest
        first, each checked: integer id and time, positive decimal price and quantity."""
        page = self._get(
            "/api/v3/historicalTrades",
            {"symbol": symbol, "fromId": from_id, "limit": limit},
            weight=WEIGHT_HISTORICAL_TRADES,
        )
        if not isinstance(page, list):
            raise MalformedPayload(
                f"historicalTrades for {symbol} must be a JSON array, got {str(page)[:120]!r}"
            )
        for trade in page:
            ok = (
                isinstance(trade, dict)
                and all(
                    isinstance(trade.get(f), int) and not isinstance(trade.get(f), bool)
                    for f in ("id", "time")
                )
                and isinstance(trade.get("isBuyerMaker"), bool)
                and all(_positive_decimal(trade.get(f)) for f in ("price", "qty"))
            )
            if not ok:
                raise MalformedPayload(f"historicalTrades for {symbol}: malformed trade {str(trade)[:160]!r}")
        return page

    def klines(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[Kline]:
        """Klines opening in ``[start_ms, end_ms)`` as :class:`Kline` rows."""
        return klines_from_frame(self.klines_frame(symbol, interval, start_ms, end_ms))

    def klines_frame(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        """Klines opening in ``[start_ms, end_ms)``, paging by ``startTime`` with ``limit=1000``,
        as one validated frame (the backfill hot path)."""
        if interval not in INTERVAL_MS:
            raise ValueError(f"unsupported interval {interval!r}; one of {sorted(INTERVAL_MS)}")
        pages: list[pd.DataFrame] = []
        cursor = start_ms
        while cursor < end_ms:
            params = {"symbol": symbol, "interval": interval, "startTime": cursor, "endTime": end_ms - 1}
            page = self._get(
                "/api/v3/klines", {**params, "limit": MAX_KLINES_PER_REQUEST}, weight=WEIGHT_KLINES
            )
            if not isinstance(page, list):
                raise MalformedPayload(f"klines for {symbol} must be a JSON array, got {str(page)[:120]!r}")
            if not page:
                break
            frame = klines_frame(page)
            times = frame["open_time"].to_numpy()
            if times[0] < cursor or (len(times) > 1 and not (times[1:] > times[:-1]).all()):
                raise MalformedPayload(f"klines for {symbol} are not strictly ascending from {cursor}")
            pages.append(frame[frame["open_time"] < end_ms])
            cursor = int(times[-1]) + INTERVAL_MS[interval]
            if len(page) < MAX_KLINES_PER_REQUEST or times[-1] >= end_ms:
                break
        return pd.concat(pages, ignore_index=True) if pages else klines_frame([])


def _positive_decimal(value: Any) -> bool:
    try:
        number = float(value) if isinstance(value, str) else float("nan")
    except ValueError:
        return False
    return number > 0 and number != float("inf")
