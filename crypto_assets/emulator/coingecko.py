"""CoinGecko's public API v3, the parts the pipeline uses, under ``/coingecko/api/v3``.

``/coins/list``, ``/coins/markets`` and ``/coins/{id}/market_chart/range`` with CoinGecko's
automatic granularity (<= 1 day: 5-minute points, <= 90 days: hourly, more: daily) and its
free-plan rate limit (429 past ``coingecko_calls_per_minute``). USD prices follow the same
seeded model as the exchange (times USDT's own small peg wobble), so both sources agree.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crypto_assets.emulator.market import DAY_MS, MINUTE_MS, Market

if TYPE_CHECKING:
    from crypto_assets.emulator.app import EmulatorConfig

PREFIX = "/coingecko/api/v3"
# Circulating supply (order of magnitude, 2024-2025): market cap = price x supply.
SUPPLY: dict[str, float] = {
    "USDT": 1.4e11, "USDC": 6.0e10, "DAI": 5.0e9, "BUSD": 6.0e7, "TUSD": 4.9e8, "XRP": 5.7e10,
    "UNI": 6.0e8, "AAVE": 1.5e7, "COMP": 9.0e6, "SUSHI": 2.8e8, "MKR": 8.8e5, "CAKE": 2.9e8,
    "CRV": 1.2e9, "BTC": 1.98e7, "ETH": 1.2e8, "SOL": 4.7e8, "AVAX": 4.1e8, "ADA": 3.5e10,
    "DOT": 1.5e9, "DOGE": 1.46e11, "SHIB": 5.89e14, "FLOKI": 9.6e12, "PEPE": 4.2e14, "CKB": 4.5e10,
    "SAND": 2.4e9, "MANA": 1.9e9, "AXS": 1.5e8, "ENJ": 1.8e9, "THETA": 1.0e9, "LINK": 6.2e8,
    "GRT": 9.5e9, "RUNE": 3.4e8, "AGIX": 1.3e9, "OCEAN": 6.0e8, "FET": 2.4e9, "NEAR": 1.2e9, "TAO": 8.0e6,
}  # fmt: skip
ALL_EXCHANGES_VOLUME_FACTOR = 3.0  # CoinGecko aggregates every exchange, not just Binance


class _RateLimit:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.calls: dict[tuple[str, int], int] = defaultdict(int)
        self.lock = threading.Lock()

    def allow(self, client: str, at_ms: int) -> bool:
        minute = at_ms // 60_000
        with self.lock:
            self.calls[(client, minute)] += 1
            return self.calls[(client, minute)] <= self.per_minute


def routes(market: Market, config: EmulatorConfig) -> list[Route]:
    tokens = {t.coingecko_id: t for t in market.universe.tokens}
    limit = _RateLimit(config.coingecko_calls_per_minute)

    def model_pair(symbol: str) -> str:
        token = market.universe.token(symbol)
        return next((lst.pair for lst in token.listings if lst.exchange == "binance"), f"{symbol}USD")

    def usd_prices(symbol: str, at_ms: np.ndarray) -> np.ndarray:
        usdt_usd = market.closes_at("USDTUSD", at_ms)
        if symbol == "USDT":
            return usdt_usd
        pair = model_pair(symbol)
        return market.closes_at(pair, at_ms) * (1.0 if pair.endswith("USD") else usdt_usd)

    def daily_volume(symbol: str) -> float:
        from crypto_assets.emulator.profiles import profile_for

        return profile_for(model_pair(symbol)).daily_quote_volume * ALL_EXCHANGES_VOLUME_FACTOR

    def limited(handler):  # noqa: ANN001, ANN202 - a local decorator
        def wrapped(request: Request) -> JSONResponse:
            client = request.client.host if request.client else "unknown"
            if not limit.allow(client, config.clock()):
                return JSONResponse(
                    {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}},
                    status_code=429,
                    headers={"Retry-After": str(60 - (config.clock() // 1000) % 60)},
                )
            return handler(request)

        return wrapped

    def coins_list(_: Request) -> JSONResponse:
        return JSONResponse(
            [{"id": cid, "symbol": t.symbol.lower(), "name": t.name} for cid, t in tokens.items()]
        )

    def markets(request: Request) -> JSONResponse:
        if request.query_params.get("vs_currency", "").lower() != "usd":
            return JSONResponse({"error": "invalid vs_currency"}, status_code=400)
        ids = [i for i in request.query_params.get("ids", "").split(",") if i] or list(tokens)
        now = config.clock()
        rows = []
        for cid in ids:
            token = tokens.get(cid)
            if token is None:
                continue
            price = float(usd_prices(token.symbol, np.array([now]))[0])
            rows.append(
                {
                    "id": cid, "symbol": token.symbol.lower(), "name": token.name,
                    "current_price": price, "market_cap": price * SUPPLY.get(token.symbol, 1e9),
                    "total_volume": daily_volume(token.symbol),
                    "circulating_supply": SUPPLY.get(token.symbol, 1e9),
                    "last_updated": f"{np.datetime64(now, 'ms')}Z",
                }
            )  # fmt: skip
        return JSONResponse(rows)

    def market_chart_range(request: Request) -> JSONResponse:
        token = tokens.get(request.path_params["coin_id"])
        if token is None:
            return JSONResponse({"error": "coin not found"}, status_code=404)
        try:
            start = int(float(request.query_params["from"]) * 1000)
            end = int(float(request.query_params["to"]) * 1000)
        except (KeyError, ValueError):
            return JSONResponse({"error": "from and to (UNIX seconds) are required"}, status_code=400)
        if request.query_params.get("vs_currency", "").lower() != "usd":
            return JSONResponse({"error": "invalid vs_currency"}, status_code=400)
        end = min(end, config.clock())
        span = end - start
        step = 5 * MINUTE_MS if span <= DAY_MS else 60 * MINUTE_MS if span <= 90 * DAY_MS else DAY_MS
        first = -(-start // step) * step
        times = np.arange(first, end + 1, step, dtype=np.int64)
        prices = usd_prices(token.symbol, times) if len(times) else np.array([])
        supply = SUPPLY.get(token.symbol, 1e9)
        volume = daily_volume(token.symbol)
        as_points = lambda values: [[int(t), float(v)] for t, v in zip(times, values, strict=True)]  # noqa: E731
        return JSONResponse(
            {
                "prices": as_points(prices),
                "market_caps": as_points(prices * supply),
                "total_volumes": as_points(np.full(len(times), volume)),
            }
        )

    return [
        Route(f"{PREFIX}/ping", limited(lambda _: JSONResponse({"gecko_says": "(V3) To the Moon!"}))),
        Route(f"{PREFIX}/coins/list", limited(coins_list)),
        Route(f"{PREFIX}/coins/markets", limited(markets)),
        Route(f"{PREFIX}/coins/{{coin_id:str}}/market_chart/range", limited(market_chart_range)),
    ]
