"""The emulator over real HTTP and WebSocket connections."""

import asyncio
import json
import time
from datetime import UTC, datetime

import httpx
import pytest
import websockets
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from crypto_assets.emulator.app import EmulatorConfig, create_app
from crypto_assets.emulator.market import Market
from crypto_assets.universe import load_universe

DAY = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp() * 1000)


def test_exchange_info_lists_every_pair_with_its_status(emulator_url: str):
    response = httpx.get(f"{emulator_url}/api/v3/exchangeInfo")
    assert response.status_code == 200
    assert int(response.headers["X-MBX-USED-WEIGHT-1M"]) >= 20
    body = response.json()
    statuses = {s["symbol"]: s["status"] for s in body["symbols"]}
    assert statuses["BTCUSDT"] == "TRADING" and statuses["BUSDUSDT"] == "BREAK"
    assert {"PEPEUSDT", "FETUSDT", "TAOUSDT"} <= set(statuses)
    assert body["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
    one = httpx.get(f"{emulator_url}/api/v3/exchangeInfo", params={"symbol": "ETHUSDT"}).json()
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]


def test_klines_with_real_parameters(emulator_url: str):
    response = httpx.get(
        f"{emulator_url}/api/v3/klines",
        params={"symbol": "BTCUSDT", "interval": "1m", "startTime": DAY, "limit": 1000},
    )
    rows = response.json()
    assert response.status_code == 200 and len(rows) == 1000
    assert rows[0][0] == DAY and rows[-1][0] == DAY + 999 * 60_000
    default = httpx.get(
        f"{emulator_url}/api/v3/klines",
        params={"symbol": "BTCUSDT", "interval": "1h", "startTime": DAY - 30 * 86_400_000},
    ).json()
    assert len(default) == 500  # Binance's default limit


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"interval": "1m"}, -1102),
        ({"symbol": "NOPEUSDT", "interval": "1m"}, -1121),
        ({"symbol": "BTCUSDT", "interval": "7m"}, -1120),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": 1001}, -1130),
        ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "yesterday"}, -1100),
        ({"symbol": "BTCUSDT", "interval": "1m", "startTime": 10, "endTime": 5}, -1023),
    ],
)
def test_bad_requests_get_binance_errors(emulator_url: str, params: dict, code: int):
    response = httpx.get(f"{emulator_url}/api/v3/klines", params=params)
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_request_weight_limit_answers_429_with_retry_after():
    now = [DAY + 5_000]
    app = create_app(Market(load_universe()), EmulatorConfig(weight_limit=10, clock=lambda: now[0]))
    with TestClient(app) as client:
        codes = [
            client.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m"}).status_code
            for _ in range(6)
        ]
        assert codes == [200] * 5 + [429]
        limited = client.get("/api/v3/ping")
        assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
        now[0] += 60_000  # next minute: the budget is back
        assert client.get("/api/v3/ping").status_code == 200


def test_a_scaled_weight_window_names_its_used_weight_header_after_itself():
    config = EmulatorConfig(weight_window_seconds=6.0, clock=lambda: DAY + 5_000)
    with TestClient(create_app(Market(load_universe()), config)) as client:
        headers = client.get("/api/v3/ping").headers
    assert headers["X-MBX-USED-WEIGHT-6S"] == headers["X-MBX-USED-WEIGHT"] == "1"
    assert "X-MBX-USED-WEIGHT-1M" not in headers


def test_kline_and_trade_streams_over_websocket(emulator_url: str):
    ws_url = emulator_url.replace("http", "ws")

    async def scenario() -> tuple[list[dict], dict, list[dict]]:
        async with websockets.connect(f"{ws_url}/stream?streams=btcusdt@kline_1m/ethusdt@trade") as ws:
            messages = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(6)]
        async with websockets.connect(f"{ws_url}/ws") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["solusdt@kline_1m"], "id": 7}))
            ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
            raw = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(1)]
        return messages, ack, raw

    messages, ack, raw = asyncio.run(scenario())
    streams = {m["stream"] for m in messages}
    assert streams == {"btcusdt@kline_1m", "ethusdt@trade"}
    kline = next(m["data"] for m in messages if m["stream"] == "btcusdt@kline_1m")
    assert kline["e"] == "kline" and kline["k"]["i"] == "1m" and kline["k"]["x"] is False
    assert float(kline["k"]["l"]) <= float(kline["k"]["c"]) <= float(kline["k"]["h"])
    trade = next(m["data"] for m in messages if m["stream"] == "ethusdt@trade")
    assert trade["e"] == "trade" and float(trade["p"]) > 0
    assert ack == {"result": None, "id": 7}
    assert raw[0]["e"] == "kline" and raw[0]["s"] == "SOLUSDT"


def test_closed_stream_candle_equals_the_rest_candle():
    minute = DAY + 60_000
    now = [minute + 59_000]
    market = Market(load_universe())
    app = create_app(
        market, EmulatorConfig(clock=lambda: now[0], kline_push_seconds=0.0, trade_push_seconds=0.05)
    )
    with TestClient(app) as client, client.websocket_connect("/ws/btcusdt@kline_1m") as ws:
        first = ws.receive_json()
        assert first["k"]["x"] is False and first["k"]["t"] == minute
        now[0] = minute + 61_000  # the minute rolls over
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            message = ws.receive_json()
            if message["k"]["x"]:
                break
    rest = market.klines("BTCUSDT", "1m", start_ms=minute, end_ms=minute, limit=1, now_ms=now[0])[0]
    k = message["k"]
    assert [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"]] == rest[:7]


def test_the_trade_tape_is_what_the_kline_counts_the_stream_sends_and_rest_serves():
    minute = DAY + 60_000
    now = [minute + 30_000]
    market = Market(load_universe())
    app = create_app(
        market, EmulatorConfig(clock=lambda: now[0], kline_push_seconds=0.0, trade_push_seconds=0.01)
    )
    with TestClient(app) as client:
        with client.websocket_connect("/ws/ethusdt@trade") as ws:
            now[0] = minute + 40_000  # the trades of these ten seconds are pushed, in order
            streamed = [ws.receive_json() for _ in range(5)]
        now[0] = minute + 120_000
        kline = market.klines("ETHUSDT", "1m", start_ms=minute, end_ms=minute, limit=1, now_ms=now[0])[0]
        tape = market.trade_tape("ETHUSDT", minute, now[0])
        assert len(tape) == kline[8] and [t["id"] for t in tape] == list(
            range(tape[0]["id"], tape[-1]["id"] + 1)
        )
        assert tape[0]["price"] == kline[1] and tape[-1]["price"] == kline[4]
        assert all(minute + 30_000 < t["T"] <= minute + 40_000 for t in streamed)
        assert [t["t"] for t in streamed] == sorted(t["t"] for t in streamed)
        page = client.get(
            "/api/v3/historicalTrades", params={"symbol": "ETHUSDT", "fromId": tape[10]["id"], "limit": 5}
        )
        assert [t["id"] for t in page.json()] == [t["id"] for t in tape[10:15]]
        assert page.headers["X-MBX-USED-WEIGHT-1M"] == "25"
        assert client.get("/api/v3/historicalTrades", params={"symbol": "NOPE"}).json()["code"] == -1121


def test_invalid_stream_name_is_refused(emulator_url: str):
    async def scenario() -> None:
        async with websockets.connect(f"{emulator_url.replace('http', 'ws')}/ws/nope@kline_1m") as ws:
            await asyncio.wait_for(ws.recv(), 5)

    with pytest.raises(websockets.ConnectionClosed) as info:
        asyncio.run(scenario())
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008


def test_the_server_closes_a_stream_connection_at_its_lifetime():
    """Binance closes every connection at 24 hours; the emulator at ``connection_lifetime_seconds``."""
    app = create_app(
        Market(load_universe()),
        EmulatorConfig(kline_push_seconds=0.05, trade_push_seconds=0.05, connection_lifetime_seconds=0.5),
    )
    started = time.monotonic()
    with TestClient(app) as client, client.websocket_connect("/ws/btcusdt@trade") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            while time.monotonic() - started < 10:
                ws.receive_json()
    assert closed.value.code == 1001 and 0.5 <= time.monotonic() - started < 5


def test_archive_files_kept_on_disk_are_served_again_byte_for_byte(tmp_path):
    """Benchmarks pre-build the archive once (--archive-cache): a second emulator serves the
    same bytes from disk, and the checksum file agrees."""
    url = "/data/spot/monthly/klines/ETHUSDT/1m/ETHUSDT-1m-2024-02.zip"
    first = create_app(Market(load_universe()), EmulatorConfig(archive_cache=tmp_path))
    with TestClient(first) as client:
        built = client.get(url)
    assert built.status_code == 200 and (tmp_path / "ETHUSDT-1m-2024-02.zip").read_bytes() == built.content
    again = create_app(Market(load_universe()), EmulatorConfig(archive_cache=tmp_path))
    with TestClient(again) as client:
        assert client.get(url).content == built.content
        checksum = client.get(url + ".CHECKSUM").text.split()[0]
    import hashlib

    assert checksum == hashlib.sha256(built.content).hexdigest()
