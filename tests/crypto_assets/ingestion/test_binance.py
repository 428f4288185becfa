import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from crypto_assets.ingestion.binance import (
    Banned,
    BinanceClient,
    MalformedPayload,
    RequestRejected,
    Unavailable,
    klines_frame,
    parse_kline,
    used_weight_header,
)
from crypto_assets.ingestion.http import UnreadableBody

DAY = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp() * 1000)


class FakeTime:
    """A clock that only moves when somebody sleeps: retries and budgets run instantly."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _client(handler, **kwargs) -> tuple[BinanceClient, list[float]]:
    fake = FakeTime()
    client = BinanceClient(
        "http://exchange.test",
        transport=httpx.MockTransport(handler),
        sleep=fake.sleep,
        clock=lambda: fake.now,
        **kwargs,
    )
    return client, fake.sleeps


def _kline(open_ms: int) -> list:
    return [open_ms, "1.0", "2.0", "0.5", "1.5", "10", open_ms + 59_999, "15", 3, "5", "7.5", "0"]


def test_parses_the_real_captured_klines_response(real_data: Path):
    rows = json.loads((real_data / "binance_rest_responses" / "http_spot_market_klines.json").read_text())
    klines = [parse_kline(row) for row in rows]
    assert klines[0].open_time == 1634943780000
    assert klines[0].open == "60685.22000000"  # kept as the exact decimal string
    assert klines[0].trade_count == 617
    assert all(k.close_time == k.open_time + 59_999 for k in klines)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"open": 1}, "list of 12 fields"),
        ([1, 2, 3], "list of 12 fields"),
        (["x", "1", "1", "1", "1", "1", 2, "1", 1, "1", "1", "0"], "open_time must be an integer"),
        ([1, 1.5, "1", "1", "1", "1", 2, "1", 1, "1", "1", "0"], "open must be a decimal string"),
        ([1, "abc", "1", "1", "1", "1", 2, "1", 1, "1", "1", "0"], "open is not a number"),
        ([1, "1", "inf", "1", "1", "1", 2, "1", 1, "1", "1", "0"], "high is not a positive price: 'inf'"),
        ([1, "1", "1", "1", "0", "1", 2, "1", 1, "1", "1", "0"], "close is not a positive price: '0'"),
        (
            [1, "1", "1", "1", "1", "nan", 2, "1", 1, "1", "1", "0"],
            "volume is not a non-negative finite number",
        ),
        (
            [1, "1", "1", "1", "1", "-2", 2, "1", 1, "1", "1", "0"],
            "volume is not a non-negative finite number",
        ),
    ],
)
def test_malformed_rows_are_named(row, message):
    with pytest.raises(MalformedPayload, match=message):
        parse_kline(row)
    with pytest.raises(MalformedPayload, match=message):  # the vectorised hot path agrees
        klines_frame([_kline(0), row])


def test_vectorised_frame_equals_row_parsing(real_data: Path):
    rows = json.loads((real_data / "binance_rest_responses" / "http_spot_market_klines.json").read_text())
    frame = klines_frame(rows)
    assert frame.to_dict("records") == [parse_kline(row).__dict__ for row in rows]
    assert str(frame["open_time"].dtype) == "int64" and frame["open"].iloc[0] == "60685.22000000"


def test_frame_path_paginates_and_trims_to_the_window():
    def handler(request: httpx.Request) -> httpx.Response:
        start, end = int(request.url.params["startTime"]), int(request.url.params["endTime"])
        return httpx.Response(
            200, json=[_kline(t) for t in range(start, min(end + 1, start + 1000 * 60_000), 60_000)]
        )

    client, _ = _client(handler)
    frame = client.klines_frame("BTCUSDT", "1m", DAY, DAY + 86_400_000)
    assert len(frame) == 1440 and frame["open_time"].is_monotonic_increasing
    assert frame["open_time"].iloc[-1] == DAY + 86_400_000 - 60_000


def test_paginates_by_start_time_with_limit_1000():
    calls: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        calls.append(params)
        start, end = int(params["startTime"]), int(params["endTime"])
        rows = [_kline(t) for t in range(start, min(end + 1, start + 1000 * 60_000), 60_000)]
        return httpx.Response(200, json=rows, headers={"X-MBX-USED-WEIGHT-1M": str(2 * len(calls))})

    client, _ = _client(handler)
    klines = client.klines("BTCUSDT", "1m", DAY, DAY + 86_400_000)
    assert len(klines) == 1440
    assert [int(c["startTime"]) for c in calls] == [DAY, DAY + 1000 * 60_000]
    assert all(c["limit"] == "1000" for c in calls)
    assert client.used_weight == 4


@pytest.mark.parametrize(
    ("seconds", "header"),
    [(60, "X-MBX-USED-WEIGHT-1M"), (6, "X-MBX-USED-WEIGHT-6S"), (3600, "X-MBX-USED-WEIGHT-1H"),
     (86_400, "X-MBX-USED-WEIGHT-1D"), (90, "X-MBX-USED-WEIGHT-90S")],
)  # fmt: skip
def test_the_used_weight_header_is_named_after_its_window(seconds: int, header: str):
    assert used_weight_header(seconds) == header


def test_a_window_is_whole_seconds():
    with pytest.raises(ValueError, match="whole number of seconds"):
        used_weight_header(0.5)


def test_only_the_servers_count_of_the_budgets_own_window_joins_it():
    minute = {"X-MBX-USED-WEIGHT-1M": "5000"}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[_kline(DAY)], headers=minute)

    # A 2 s window of 20 spends its own 2 per request: the minute's 5000 is another window's count.
    client, sleeps = _client(handler, weight_per_minute=20, weight_window_seconds=2.0)
    for _ in range(10):
        client.klines("BTCUSDT", "1m", DAY, DAY + 60_000)
    assert sleeps == [] and client.used_weight == 5000
    # A minute's budget takes it: 5000 + 2 > 5000 allowed, so the next request waits a window.
    client, sleeps = _client(handler, weight_per_minute=5000)
    client.klines("BTCUSDT", "1m", DAY, DAY + 60_000)
    client.klines("BTCUSDT", "1m", DAY, DAY + 60_000)
    assert len(sleeps) == 1


def test_429_waits_for_retry_after_then_succeeds():
    responses = iter(
        [
            httpx.Response(
                429, headers={"Retry-After": "7"}, json={"code": -1003, "msg": "Too many requests"}
            ),
            httpx.Response(200, json=[_kline(DAY)]),
        ]
    )
    client, sleeps = _client(lambda request: next(responses))
    assert len(client.klines("BTCUSDT", "1m", DAY, DAY + 60_000)) == 1
    assert sleeps == [7.0]


def test_418_stops_at_once():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(418, headers={"Retry-After": "120"}, json={"code": -1003, "msg": "banned"})

    client, sleeps = _client(handler)
    with pytest.raises(Banned, match="banned"):
        client.exchange_info()
    assert len(calls) == 1 and sleeps == []


def test_5xx_and_timeouts_back_off_with_jitter_and_give_up():
    attempts = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        if len(attempts) % 2:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(503, text="maintenance")

    client, sleeps = _client(handler, max_retries=3, backoff_seconds=1.0)
    with pytest.raises(Unavailable, match="after 4 attempts"):
        client.klines("BTCUSDT", "1m", DAY, DAY + 60_000)
    assert len(attempts) == 4
    assert len(sleeps) == 3
    assert all(0 <= s <= 2**i for i, s in enumerate(sleeps))


def test_4xx_is_not_retried_and_keeps_binance_code():
    client, sleeps = _client(lambda r: httpx.Response(400, json={"code": -1121, "msg": "Invalid symbol."}))
    with pytest.raises(RequestRejected, match="Invalid symbol") as info:
        client.klines("NOPE", "1m", DAY, DAY + 60_000)
    assert info.value.code == -1121 and sleeps == []


def test_a_body_that_is_not_json_is_fetched_again_then_named():
    bodies = ['[[1634943780000, "60685.2', json.dumps([_kline(DAY)])]
    attempts = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        return httpx.Response(200, text=bodies[min(len(attempts) - 1, 1)])

    client, sleeps = _client(handler, backoff_seconds=1.0)
    assert len(client.klines("BTCUSDT", "1m", DAY, DAY + 60_000)) == 1  # a cut body is transient
    assert len(attempts) == 2 and len(sleeps) == 1 and client.http.unreadable == 1

    client, sleeps = _client(lambda r: httpx.Response(200, text='[[1634943780000, "60685.2'), max_retries=2)
    with pytest.raises(UnreadableBody, match=r"not JSON.*\(after 3 attempts\)"):
        client.klines("BTCUSDT", "1m", DAY, DAY + 60_000)
    assert len(sleeps) == 2  # the 5xx backoff between attempts


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"symbols": "nope"}, "symbols"),
        ([_kline(DAY + 60_000), _kline(DAY)], "ascending"),
        ([[DAY, 1.0, "2", "0.5", "1.5", "10", DAY + 59_999, "15", 3, "5", "7.5", "0"]], "decimal string"),
    ],
)
def test_a_body_that_reads_but_has_the_wrong_shape_fails_at_once(body, message):
    attempts = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        return httpx.Response(200, json=body)

    client, sleeps = _client(handler)
    with pytest.raises(MalformedPayload, match=message) as info:
        if isinstance(body, dict):
            client.exchange_info()
        else:
            client.klines("BTCUSDT", "1m", DAY, DAY + 120_000)
    assert not isinstance(info.value, UnreadableBody)
    assert len(attempts) == 1 and sleeps == []  # asking again would return the same thing


@pytest.mark.integration
def test_a_full_day_from_the_emulator(emulator_url: str):
    with BinanceClient(emulator_url) as client:
        symbols = client.trading_symbols()
        klines = client.klines("PEPEUSDT", "1m", DAY, DAY + 86_400_000)
    assert symbols["BTCUSDT"] == "TRADING"
    assert len(klines) == 1440
    assert klines[0].open_time == DAY and klines[-1].open_time == DAY + 86_340_000
    assert client.used_weight is not None and client.used_weight >= 2


@pytest.mark.integration
def test_listing_start_inside_the_window(emulator_url: str):
    listing_day = int(datetime(2023, 5, 5, tzinfo=UTC).timestamp() * 1000)
    with BinanceClient(emulator_url) as client:
        klines = client.klines("FLOKIUSDT", "1m", listing_day, listing_day + 86_400_000)
    assert len(klines) == 6 * 60  # 18:00 -> 24:00
