"""The emulator's HTTP and WebSocket front: Binance spot's wire protocol over Starlette.

REST (``/api/v3/...``) and streams (``/ws/<stream>``, ``/stream?streams=a/b``) share one port,
so a single ``BINANCE_REST_URL`` / ``BINANCE_WS_URL`` pair points the pipeline at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from crypto_assets.emulator import archive, coingecko, faults
from crypto_assets.emulator.market import (
    INTERVAL_MINUTES,
    MINUTE_MS,
    TRADE_IDS_PER_MINUTE,
    Market,
    now_ms,
    price_decimals,
    quantity_decimals,
)
from crypto_assets.emulator.profiles import profile_for
from crypto_assets.ingestion.binance import used_weight_header

KLINES_MAX_LIMIT = 1000
KLINES_DEFAULT_LIMIT = 500
# Request weights as documented by Binance for the endpoints served here.
WEIGHTS = {"ping": 1, "time": 1, "exchangeInfo": 20, "klines": 2, "historicalTrades": 25}
TRADES_MAX_LIMIT = 1000


@dataclass
class EmulatorConfig:
    seed: int = 20231
    weight_limit: int = 6000  # REQUEST_WEIGHT per window and client IP, as on Binance
    # Binance counts weight per minute; benchmarks shrink the window to measure minutes in seconds.
    weight_window_seconds: float = 60.0
    coingecko_calls_per_minute: int = 30  # CoinGecko's free (demo) plan
    archive_lag_days: int = 1  # daily archive files appear the day after
    # Built archive files kept on disk (benchmarks pre-build them before the clock starts: the
    # exchange is not what they measure); None: built per request, a few hundred in memory.
    archive_cache: Path | None = field(
        default_factory=lambda: (
            Path(os.environ["EMULATOR_ARCHIVE_CACHE"]) if os.environ.get("EMULATOR_ARCHIVE_CACHE") else None
        )
    )
    latency_ms: float = 0.0  # added to every HTTP answer: a real exchange is 20-200 ms away
    kline_push_seconds: float = 2.0  # Binance pushes 1m kline updates every ~2 s
    trade_push_seconds: float = 0.5
    clock: Callable[[], int] = field(default=now_ms)
    # Binance closes every stream connection at 24 hours; tests shorten it (wall-clock seconds).
    connection_lifetime_seconds: float = 86_400.0


def accelerated_clock(speed: float) -> Callable[[], int]:
    """The exchange's clock in ms: real time, or from now on ``speed`` times faster."""
    if speed <= 0:
        raise ValueError("clock speed must be positive")
    if speed == 1.0:
        return now_ms
    origin = now_ms()
    started = time.monotonic()
    return lambda: origin + int((time.monotonic() - started) * 1000 * speed)


class WeightLedger:
    """Weight used per client IP and window (Binance's X-MBX-USED-WEIGHT-1M), with history."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._used: dict[tuple[str, int], int] = defaultdict(int)
        self.history: dict[int, int] = defaultdict(int)  # window -> weight of all clients
        self.rejected = 0
        self._lock = threading.Lock()

    def charge(self, client: str, weight: int, at_ms: int) -> int:
        window = at_ms // self.window_ms
        with self._lock:
            for key in [k for k in self._used if k[1] < window]:
                del self._used[key]
            self._used[(client, window)] += weight
            self.history[window] += weight
            return self._used[(client, window)]

    def retry_after(self, at_ms: int) -> int:
        return max(1, math.ceil((self.window_ms - at_ms % self.window_ms) / 1000))


def _error(status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg}, status_code=status, headers=headers)


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise _BadParam(
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        ) from None


class _BadParam(Exception):
    pass


def create_app(market: Market, config: EmulatorConfig | None = None) -> Starlette:
    config = config or EmulatorConfig()
    ledger = WeightLedger(int(config.weight_window_seconds * 1000))
    # Named after the window, as Binance does: -1M at the default minute, -6S for a scaled one.
    window_header = used_weight_header(config.weight_window_seconds)
    book = faults.FaultBook()
    calls: dict[str, int] = defaultdict(int)
    klines_served: dict[str, int] = defaultdict(int)  # "SYMBOL interval" -> klines pages answered

    def served(handler: Callable, weight: int = 0) -> Callable:
        """Every HTTP route: armed faults first, then Binance's weight accounting, then the handler."""

        async def wrapped(request: Request) -> Response:
            calls[request.url.path.split("/")[1]] += 1
            if config.latency_ms:
                await asyncio.sleep(config.latency_ms / 1000)
            fault = book.take(request.url.path)
            replaced = await faults.before(fault)
            if replaced is not None:
                return replaced
            headers: dict[str, str] = {}
            if weight:
                at = config.clock()
                client = request.client.host if request.client else "unknown"
                used = ledger.charge(client, weight, at)
                headers = {window_header: str(used), "X-MBX-USED-WEIGHT": str(used)}
                if used > config.weight_limit:
                    ledger.rejected += 1
                    return _error(
                        429, -1003,
                        f"Too many requests; current limit of IP({client}) request weight per minute is "
                        f"{config.weight_limit}. Please use WebSocket Streams for live updates to avoid polling the API.",
                        {**headers, "Retry-After": str(ledger.retry_after(at))},
                    )  # fmt: skip
            try:
                response = handler(request)
                if inspect.isawaitable(response):
                    response = await response
            except _BadParam as exc:
                response = _error(400, -1100, str(exc))
            response.headers.update(headers)
            return faults.after(fault, response)

        return wrapped

    def charged(endpoint: str, handler: Callable[[Request], JSONResponse]) -> Callable:
        return served(handler, WEIGHTS[endpoint])

    async def fault_admin(request: Request) -> JSONResponse:
        return await faults.admin(request, book)

    async def missing_minutes(request: Request) -> JSONResponse:
        """Data fault on demand: ``POST {"pair", "start" (ISO UTC), "minutes"}`` drops minutes
        from the 1m stream only (REST and archive); ``DELETE`` restores them."""
        if request.method == "DELETE":
            market.restore_minutes()
        elif request.method == "POST":
            try:
                payload = await request.json()
                pair, minutes = str(payload["pair"]), int(payload["minutes"])
                start = datetime.fromisoformat(str(payload["start"])).replace(tzinfo=UTC)
                if pair not in market.listings or minutes < 1:
                    raise ValueError(f"unknown pair {pair!r} or minutes < 1")
            except (KeyError, ValueError, TypeError) as exc:
                return JSONResponse({"error": f"expected pair, start, minutes: {exc}"}, status_code=400)
            market.drop_minutes(pair, int(start.timestamp() * 1000), minutes)
        return JSONResponse({pair: len(minutes) for pair, minutes in market.missing_minutes.items()})

    def stats(_: Request) -> JSONResponse:
        windows = sorted(ledger.history.items())
        return JSONResponse(
            {
                "weight_limit": config.weight_limit,
                "weight_window_seconds": config.weight_window_seconds,
                "weight_per_window": [{"window": w, "weight": used} for w, used in windows],
                "rejected_429": ledger.rejected,
                "calls": dict(calls),
                "faults_fired": book.fired,
                "klines_served": dict(klines_served),
            }
        )

    def ping(_: Request) -> JSONResponse:
        return JSONResponse({})

    def server_time(_: Request) -> JSONResponse:
        return JSONResponse({"serverTime": config.clock()})

    def symbol_info(pair: str, at: int) -> dict:
        price = profile_for(pair).price
        tick = f"{10.0 ** -price_decimals(price):.8f}"
        step = f"{10.0 ** -quantity_decimals(price):.8f}"
        return {
            "symbol": pair,
            "status": "TRADING" if market.is_trading(pair, at) else "BREAK",
            "baseAsset": market.base_asset(pair),
            "baseAssetPrecision": 8,
            "quoteAsset": market.universe.quote_asset,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
                {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000000.00000000", "stepSize": step},
            ],
            "permissionSets": [["SPOT"]],
        }  # fmt: skip

    def exchange_info(request: Request) -> JSONResponse:
        at = config.clock()
        wanted: list[str] | None = None
        if symbol := request.query_params.get("symbol"):
            wanted = [symbol]
        elif symbols := request.query_params.get("symbols"):
            try:
                wanted = list(json.loads(symbols))
            except (ValueError, TypeError):
                return _error(400, -1100, "Illegal characters found in parameter 'symbols'.")
        pairs = market.pairs() if wanted is None else wanted
        unknown = [p for p in pairs if p not in market.listings]
        if unknown:
            return _error(400, -1121, "Invalid symbol.")
        return JSONResponse(
            {
                "timezone": "UTC",
                "serverTime": at,
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": config.weight_limit},
                    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
                ],
                "exchangeFilters": [],
                "symbols": [symbol_info(p, at) for p in pairs],
            }
        )  # fmt: skip

    def klines(request: Request) -> JSONResponse:
        symbol = request.query_params.get("symbol")
        interval = request.query_params.get("interval")
        if not symbol:
            return _error(
                400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            )
        if not interval:
            return _error(
                400, -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed."
            )
        if symbol not in market.listings:
            return _error(400, -1121, "Invalid symbol.")
        if interval not in INTERVAL_MINUTES:
            return _error(400, -1120, "Invalid interval.")
        limit = _int_param(request, "limit")
        limit = KLINES_DEFAULT_LIMIT if limit is None else limit
        if not 1 <= limit <= KLINES_MAX_LIMIT:
            return _error(400, -1130, "Data sent for parameter 'limit' is not valid.")
        start = _int_param(request, "startTime")
        end = _int_param(request, "endTime")
        if start is not None and end is not None and start > end:
            return _error(400, -1023, "Start time is greater than end time.")
        rows = market.klines(symbol, interval, start_ms=start, end_ms=end, limit=limit, now_ms=config.clock())
        klines_served[f"{symbol} {interval}"] += 1
        return JSONResponse(rows)

    def historical_trades(request: Request) -> JSONResponse:
        """``/api/v3/historicalTrades``: trades from ``fromId`` (default: the latest), oldest first."""
        symbol = request.query_params.get("symbol")
        if not symbol:
            return _error(
                400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            )
        if symbol not in market.listings:
            return _error(400, -1121, "Invalid symbol.")
        limit = _int_param(request, "limit")
        limit = 500 if limit is None else limit
        if not 1 <= limit <= TRADES_MAX_LIMIT:
            return _error(400, -1130, "Data sent for parameter 'limit' is not valid.")
        at = config.clock()
        from_id = _int_param(request, "fromId")
        if from_id is None:
            minute = (at // MINUTE_MS) * MINUTE_MS
            tape = [t for t in market.trade_tape(symbol, minute, at) if t["time"] <= at]
            trades = tape[-limit:]
        else:
            trades = market.trades_from(symbol, from_id, limit, at)
        return JSONResponse(
            [
                {"id": t["id"], "price": t["price"], "qty": t["quantity"],
                 "quoteQty": f"{float(t['price']) * float(t['quantity']):.8f}", "time": t["time"],
                 "isBuyerMaker": t["buyer_is_maker"], "isBestMatch": True}
                for t in trades
            ]
        )  # fmt: skip

    async def stream_socket(websocket: WebSocket) -> None:
        await _serve_streams(websocket, market, config, stream_faults)

    async def stream_fault_admin(request: Request) -> JSONResponse:
        """``POST /_emulator/stream-faults`` {"kind": drop|stall|duplicate|reorder|skip_trades,
        "count": N, "seconds": S}: the next ``count`` of them on the live streams (``drop``
        closes every open connection at once); ``GET`` the counts fired; ``DELETE`` disarms."""
        if request.method == "DELETE":
            stream_faults.clear()
        elif request.method == "POST":
            body = await request.json()
            try:
                stream_faults.arm(
                    str(body["kind"]), int(body.get("count", 1)), float(body.get("seconds", 5.0))
                )
            except (KeyError, ValueError) as exc:
                return _error(400, -1100, str(exc))
        return JSONResponse(stream_faults.snapshot())

    stream_faults = StreamFaults()

    routes = [
        Route("/_emulator/faults", fault_admin, methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/stats", stats),
        Route("/_emulator/missing-minutes", missing_minutes, methods=["GET", "POST", "DELETE"]),
        *[Route(r.path, served(r.endpoint)) for r in archive.routes(market, config)],
        *[Route(r.path, served(r.endpoint)) for r in coingecko.routes(market, config)],
        Route("/api/v3/ping", charged("ping", ping)),
        Route("/api/v3/time", charged("time", server_time)),
        Route("/api/v3/exchangeInfo", charged("exchangeInfo", exchange_info)),
        Route("/api/v3/klines", charged("klines", klines)),
        Route("/api/v3/historicalTrades", charged("historicalTrades", historical_trades)),
        Route("/_emulator/stream-faults", stream_fault_admin, methods=["GET", "POST", "DELETE"]),
        WebSocketRoute("/ws", stream_socket),
        WebSocketRoute("/ws/{streams:path}", stream_socket),
        WebSocketRoute("/stream", stream_socket),
    ]
    return Starlette(routes=routes)


# ---------------------------------------------------------------------- streams
def _parse_stream(name: str, market: Market) -> tuple[str, str, str] | None:
    """'btcusdt@kline_1m' -> ('BTCUSDT', 'kline', '1m'); 'btcusdt@trade' -> (..., 'trade', '')."""
    pair, _, kind = name.partition("@")
    pair = pair.upper()
    if pair not in market.listings:
        return None
    if kind == "trade":
        return pair, "trade", ""
    if kind.startswith("kline_") and kind.removeprefix("kline_") in INTERVAL_MINUTES:
        return pair, "kline", kind.removeprefix("kline_")
    return None


def _kline_payload(pair: str, interval: str, row: list, closed: bool, fraction: float, at: int) -> dict:
    o, h, low, c = (float(x) for x in row[1:5])
    if not closed:
        # The live candle grows towards its final values during the current minute.
        c_now = o + fraction * (c - o)
        h = max(o, c_now) + fraction * (h - max(o, c))
        low = min(o, c_now) - fraction * (min(o, c) - low)
        c = c_now
    decimals = price_decimals(profile_for(pair).price)
    scale = 1.0 if closed else fraction
    first_id = (row[0] // MINUTE_MS) * TRADE_IDS_PER_MINUTE
    return {
        "e": "kline",
        "E": at,
        "s": pair,
        "k": {
            "t": row[0], "T": row[6], "s": pair, "i": interval,
            # A minute without trades has none to name: -1, as Binance sends.
            "f": first_id if int(row[8] * scale) else -1,
            "L": first_id + int(row[8] * scale) - 1 if int(row[8] * scale) else -1,
            "o": row[1],
            "c": row[4] if closed else f"{round(c, decimals):.8f}",
            "h": row[2] if closed else f"{round(h, decimals):.8f}",
            "l": row[3] if closed else f"{round(low, decimals):.8f}",
            "v": row[5] if closed else f"{float(row[5]) * scale:.8f}",
            "n": row[8] if closed else int(row[8] * scale),
            "x": closed,
            "q": row[7] if closed else f"{float(row[7]) * scale:.8f}",
            "V": row[9] if closed else f"{float(row[9]) * scale:.8f}",
            "Q": row[10] if closed else f"{float(row[10]) * scale:.8f}",
            "B": "0",
        },
    }  # fmt: skip


class StreamFaults:
    """Faults on the live streams, armed through ``/_emulator/stream-faults`` (thread-safe).

    ``drop`` closes every open stream connection once per count; ``stall`` stops sending for
    ``seconds`` (the connection stays open: the client's silence detector must notice);
    ``duplicate`` sends the next frames twice; ``reorder`` swaps the next frame with the one
    after it; ``skip_trades`` leaves the next trades out of the stream (they stay on the tape:
    the REST trade endpoints serve them); ``malformed`` sends a broken frame before the next ones."""

    KINDS = ("drop", "stall", "duplicate", "reorder", "skip_trades", "malformed")

    def __init__(self) -> None:
        self._armed: dict[str, int] = defaultdict(int)
        self.stall_seconds = 5.0
        self.fired: dict[str, int] = defaultdict(int)
        self.drop_epoch = 0  # bumped per drop: every connection opened before it closes
        self._lock = threading.Lock()

    def arm(self, kind: str, count: int, seconds: float) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown stream fault {kind!r}; one of {self.KINDS}")
        with self._lock:
            if kind == "drop":
                self.drop_epoch += count
                self.fired["drop"] += count
                return
            self._armed[kind] += count
            if kind == "stall":
                self.stall_seconds = seconds

    def take(self, kind: str) -> bool:
        with self._lock:
            if self._armed[kind] > 0:
                self._armed[kind] -= 1
                self.fired[kind] += 1
                return True
            return False

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def snapshot(self) -> dict:
        with self._lock:
            return {"armed": dict(self._armed), "fired": dict(self.fired)}


async def _serve_streams(
    websocket: WebSocket, market: Market, config: EmulatorConfig, stream_faults: StreamFaults | None = None
) -> None:
    stream_faults = stream_faults or StreamFaults()
    await websocket.accept()
    epoch = stream_faults.drop_epoch
    combined = websocket.url.path == "/stream"
    names: list[str] = []
    raw = websocket.query_params.get("streams", "") if combined else websocket.path_params.get("streams", "")
    names = [n for n in raw.split("/") if n]
    if any(_parse_stream(n, market) is None for n in names):
        await websocket.close(code=1008, reason="Invalid stream name")
        return
    subscribed: list[str] = list(dict.fromkeys(names))
    held: list[str] = []  # a frame held back to be sent after the next one (reorder)

    async def send(name: str, payload: dict) -> None:
        text = json.dumps({"stream": name, "data": payload} if combined else payload)
        if stream_faults.take("malformed"):
            await websocket.send_text(text[: len(text) // 2])  # a frame cut in half: not JSON
        if stream_faults.take("reorder"):
            held.append(text)
            return
        await websocket.send_text(text)
        if stream_faults.take("duplicate"):
            await websocket.send_text(text)
        while held:
            await websocket.send_text(held.pop(0))

    async def receive_commands() -> None:
        # Binance's live subscription protocol: SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS.
        while True:
            text = await websocket.receive_text()
            try:
                command = json.loads(text)
                method, request_id = command["method"], command.get("id")
            except (ValueError, KeyError, TypeError):
                await websocket.send_text(json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}}))
                continue
            params = command.get("params") or []
            if method == "LIST_SUBSCRIPTIONS":
                await websocket.send_text(json.dumps({"result": subscribed, "id": request_id}))
                continue
            if method not in ("SUBSCRIBE", "UNSUBSCRIBE") or any(
                _parse_stream(p, market) is None for p in params
            ):
                await websocket.send_text(
                    json.dumps({"error": {"code": 2, "msg": "Invalid request"}, "id": request_id})
                )
                continue
            for p in params:
                if method == "SUBSCRIBE" and p not in subscribed:
                    subscribed.append(p)
                if method == "UNSUBSCRIBE" and p in subscribed:
                    subscribed.remove(p)
            await websocket.send_text(json.dumps({"result": None, "id": request_id}))

    async def push() -> None:
        last_open: dict[str, int] = {}
        trades_sent: dict[str, int] = {}  # stream -> trade time sent up to (ms, inclusive)
        next_kline = 0.0
        closes_at = time.monotonic() + config.connection_lifetime_seconds
        while True:
            if stream_faults.drop_epoch != epoch:
                await websocket.close(code=1001, reason="emulated drop")
                return
            if time.monotonic() >= closes_at:
                await websocket.close(code=1001, reason="connection lifetime reached (24 h on Binance)")
                return
            if stream_faults.take("stall"):
                await asyncio.sleep(stream_faults.stall_seconds)
            at = config.clock()
            now = time.monotonic()
            send_klines = now >= next_kline
            if send_klines:
                next_kline = now + config.kline_push_seconds
            for name in list(subscribed):
                parsed = _parse_stream(name, market)
                if parsed is None:
                    continue
                pair, kind, interval = parsed
                if kind == "trade":
                    # The tape's trades since the last push, in order (from now on at connect).
                    since = trades_sent.get(name, at)
                    minute = (since // MINUTE_MS) * MINUTE_MS
                    while minute <= at:
                        for trade in market.trade_tape(pair, minute, at):
                            if since < trade["time"] <= at and not stream_faults.take("skip_trades"):
                                await send(name, {
                                    "e": "trade", "E": at, "s": pair, "t": trade["id"], "p": trade["price"],
                                    "q": trade["quantity"], "T": trade["time"], "m": trade["buyer_is_maker"],
                                    "M": True,
                                })  # fmt: skip
                        minute += MINUTE_MS
                    trades_sent[name] = at
                    continue
                if not send_klines:
                    continue
                step = INTERVAL_MINUTES[interval] * MINUTE_MS
                current_open = (at // step) * step
                previous = last_open.get(name)
                if previous is not None and previous < current_open:
                    # The candles just closed: send them final (x=true), equal to the REST klines
                    # (more than one when the clock runs faster than the pushes).
                    finals = market.klines(
                        pair, interval, start_ms=previous, end_ms=current_open - step, limit=1000, now_ms=at
                    )
                    for final in finals:
                        await send(name, _kline_payload(pair, interval, final, True, 1.0, at))
                last_open[name] = current_open
                live = market.live_candle(pair, at, interval)
                if live:
                    await send(name, _kline_payload(pair, interval, live["row"], False, live["fraction"], at))
            await asyncio.sleep(config.trade_push_seconds)

    receiver = asyncio.create_task(receive_commands())
    pusher = asyncio.create_task(push())
    try:
        done, _ = await asyncio.wait({receiver, pusher}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            exc = task.exception()
            if exc is not None and not isinstance(exc, WebSocketDisconnect):
                raise exc
    except WebSocketDisconnect:
        pass
    finally:
        for task in (receiver, pusher):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await task
