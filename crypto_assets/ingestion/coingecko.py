"""CoinGecko client: USD price, market cap and volume per token, under the plan's rate limit.

CoinGecko is where tokens without a Binance USDT pair (USDT itself, DAI) get USD prices, where
stablecoin pegs are tracked and where market-cap weights come from. The free plan allows about
30 calls a minute: a shared :class:`RequestBudget` keeps the client under it. An API key, when
given, goes in the header CoinGecko documents for its plan.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from crypto_assets.ingestion.http import MalformedPayload, RequestBudget, RetryingHttp

DEMO_KEY_HEADER = "x-cg-demo-api-key"
PRO_KEY_HEADER = "x-cg-pro-api-key"


@dataclass(frozen=True)
class MarketPoint:
    coingecko_id: str
    time_ms: int
    price_usd: float
    market_cap_usd: float | None
    volume_usd: float | None


class CoinGeckoClient:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        calls_per_minute: int = 30,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        **http_options: Any,
    ) -> None:
        headers = {}
        if api_key:
            headers[PRO_KEY_HEADER if "pro-api" in base_url else DEMO_KEY_HEADER] = api_key
        self.budget = RequestBudget(calls_per_minute, 60.0, clock=clock, sleep=sleep)
        self.http = RetryingHttp(
            base_url, transport=transport, budget=self.budget, headers=headers, sleep=sleep, **http_options
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> CoinGeckoClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def markets(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        body = self.http.get_json(
            "/coins/markets", {"vs_currency": "usd", "ids": ",".join(ids), "per_page": 250}
        )
        if not isinstance(body, list):
            raise MalformedPayload(f"coins/markets must be a JSON array, got {str(body)[:120]!r}")
        return body

    def market_chart_range(self, coingecko_id: str, start: datetime, end: datetime) -> list[MarketPoint]:
        """Price, market cap and volume points in ``[start, end]`` (granularity chosen by CoinGecko)."""
        body = self.http.get_json(
            f"/coins/{coingecko_id}/market_chart/range",
            {"vs_currency": "usd", "from": int(start.timestamp()), "to": int(end.timestamp())},
        )
        if not isinstance(body, dict) or not isinstance(body.get("prices"), list):
            raise MalformedPayload(f"market_chart/range for {coingecko_id} has no 'prices' list")
        caps = {int(t): v for t, v in body.get("market_caps", [])}
        volumes = {int(t): v for t, v in body.get("total_volumes", [])}
        points = []
        for item in body["prices"]:
            if not (isinstance(item, list) and len(item) == 2):
                raise MalformedPayload(f"market_chart/range for {coingecko_id}: bad point {item!r}")
            time_ms, price = int(item[0]), item[1]
            if price is None:
                continue
            points.append(
                MarketPoint(coingecko_id, time_ms, float(price), caps.get(time_ms), volumes.get(time_ms))
            )
        return points


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
