"""Binance spot REST client: exchangeInfo and paginated klines, with bounded, explicit retries.

Failure policy (each case raises or retries with a message that says what happened):
- 429: wait ``Retry-After`` seconds (Binance's own instruction), then retry;
- 418: the IP is banned; stop at once with :class:`BinanceBanned`, never hammer;
- 5xx, timeouts, dropped connections: exponential backoff with jitter, at most ``max_retries``;
- other 4xx: :class:`BinanceRequestError` with Binance's ``code`` and ``msg``;
- a body that is not the documented shape: :class:`MalformedPayload`, naming the field.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)

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


class BinanceError(RuntimeError):
    """Base class: every failure of this client is one of these, never a bare httpx error."""


class BinanceBanned(BinanceError):
    """HTTP 418: the IP is banned for ignoring 429s. Retrying would extend the ban."""


class BinanceRequestError(BinanceError):
    """A 4xx that retrying cannot fix (bad symbol, bad interval, bad parameter)."""

    def __init__(self, status: int, code: int | None, msg: str, url: str) -> None:
        super().__init__(f"Binance rejected {url} with HTTP {status} (code {code}): {msg}")
        self.status, self.code, self.msg = status, code, msg


class BinanceUnavailable(BinanceError):
    """Retries exhausted on 5xx / 429 / timeouts."""


class MalformedPayload(BinanceError):
    """The response body is not what the endpoint documents."""


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
    if not isinstance(row, list) or len(row) < 11:
        raise MalformedPayload(f"kline row must be a list of 12 fields, got {str(row)[:120]!r}")
    values: dict[str, Any] = {}
    for name, value in zip(KLINE_FIELDS[:11], row[:11], strict=True):
        if name in ("open_time", "close_time", "trade_count"):
            if not isinstance(value, int) or isinstance(value, bool):
                raise MalformedPayload(f"kline field {name} must be an integer, got {value!r}")
        else:
            if not isinstance(value, str):
                raise MalformedPayload(f"kline field {name} must be a decimal string, got {value!r}")
            try:
                float(value)
            except ValueError:
                raise MalformedPayload(f"kline field {name} is not a number: {value!r}") from None
        values[name] = value
    return Kline(**values)


class BinanceClient:
    """Synchronous client for Binance's public spot REST API (or anything speaking it)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 5,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.used_weight: int | None = None  # last X-MBX-USED-WEIGHT-1M seen
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "crypto-analytics/0.1"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BinanceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport
    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        url = f"{self.base_url}{path}"
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self._http.get(path, params=params)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if last:
                    raise BinanceUnavailable(
                        f"{url}: {type(exc).__name__} after {attempt + 1} attempts: {exc}"
                    ) from exc
                self._backoff(attempt, f"{type(exc).__name__} on {path}")
                continue
            if weight := response.headers.get("X-MBX-USED-WEIGHT-1M"):
                self.used_weight = int(weight) if weight.isdigit() else self.used_weight
            status = response.status_code
            if status == 200:
                try:
                    return response.json()
                except ValueError as exc:
                    raise MalformedPayload(
                        f"{url} returned HTTP 200 with a body that is not JSON: {response.text[:120]!r}"
                    ) from exc
            if status == 418:
                raise BinanceBanned(
                    f"{url}: HTTP 418, this IP is banned by the exchange"
                    f" (Retry-After {response.headers.get('Retry-After', '?')} s). Stopping instead of retrying."
                )
            if status == 429 or status >= 500:
                if last:
                    raise BinanceUnavailable(f"{url}: HTTP {status} after {attempt + 1} attempts")
                if status == 429:
                    wait = _retry_after(response, default=self.backoff_seconds * 2**attempt)
                    log.warning("HTTP 429 on %s: waiting %.1f s as Retry-After asks", path, wait)
                    self._sleep(wait)
                else:
                    self._backoff(attempt, f"HTTP {status} on {path}")
                continue
            code, msg = _error_body(response)
            raise BinanceRequestError(status, code, msg, url)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int, why: str) -> None:
        # Full jitter: spreads retries of concurrent callers instead of synchronising them.
        wait = random.uniform(0, min(self.max_backoff_seconds, self.backoff_seconds * 2**attempt))
        log.warning("%s: retry %d/%d in %.2f s", why, attempt + 1, self.max_retries, wait)
        self._sleep(wait)

    # ------------------------------------------------------------------ endpoints
    def exchange_info(self) -> dict[str, Any]:
        body = self._get("/api/v3/exchangeInfo")
        if not isinstance(body, dict) or not isinstance(body.get("symbols"), list):
            raise MalformedPayload("exchangeInfo has no 'symbols' list")
        return body

    def trading_symbols(self) -> dict[str, str]:
        """symbol -> status for every symbol exchangeInfo lists."""
        return {s["symbol"]: s.get("status", "UNKNOWN") for s in self.exchange_info()["symbols"]}

    def iter_klines(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> Iterator[Kline]:
        """Klines opening in ``[start_ms, end_ms)``, paging by ``startTime`` with ``limit=1000``."""
        if interval not in INTERVAL_MS:
            raise ValueError(f"unsupported interval {interval!r}; one of {sorted(INTERVAL_MS)}")
        step = INTERVAL_MS[interval]
        cursor = start_ms
        while cursor < end_ms:
            page = self._get(
                "/api/v3/klines",
                {
                    "symbol": symbol,
                    "interval": interval,
                    "startTime": cursor,
                    "endTime": end_ms - 1,
                    "limit": MAX_KLINES_PER_REQUEST,
                },
            )
            if not isinstance(page, list):
                raise MalformedPayload(f"klines for {symbol} must be a JSON array, got {str(page)[:120]!r}")
            if not page:
                return
            previous = cursor - 1
            for row in page:
                kline = parse_kline(row)
                if kline.open_time <= previous:
                    raise MalformedPayload(
                        f"klines for {symbol} are not strictly ascending at {kline.open_time}"
                    )
                previous = kline.open_time
                if kline.open_time >= end_ms:
                    return
                yield kline
            cursor = previous + step
            if len(page) < MAX_KLINES_PER_REQUEST:
                return

    def klines(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[Kline]:
        return list(self.iter_klines(symbol, interval, start_ms, end_ms))


def _retry_after(response: httpx.Response, default: float) -> float:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


def _error_body(response: httpx.Response) -> tuple[int | None, str]:
    try:
        body = response.json()
        return body.get("code"), str(body.get("msg", ""))
    except (ValueError, AttributeError):
        return None, response.text[:200]
