"""Every exchange fault, injected in the emulator and met by the real clients over HTTP."""

from datetime import UTC, datetime

import httpx
import pytest

from crypto_assets.ingestion.binance import BinanceClient
from crypto_assets.ingestion.http import Banned, MalformedPayload, Unavailable

pytestmark = pytest.mark.integration
DAY = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)
HOUR = 3_600_000


def _klines(client: BinanceClient) -> list:
    return client.klines("BTCUSDT", "1m", DAY, DAY + HOUR)


def test_429_honours_retry_after_and_loses_nothing(emulator_url, faults):
    faults("/api/v3/klines", "429", count=2, retry_after=1)
    started = datetime.now(UTC)
    with BinanceClient(emulator_url) as client:
        klines = _klines(client)
        assert client.http.rate_limited == 2
    assert len(klines) == 60 and len({k.open_time for k in klines}) == 60
    assert (datetime.now(UTC) - started).total_seconds() >= 2.0  # waited as told, twice


def test_418_stops_the_run_with_a_clear_error(emulator_url, faults):
    faults("/api/v3/klines", "418", count=5, retry_after=120)
    with BinanceClient(emulator_url) as client, pytest.raises(Banned, match="banned"):
        _klines(client)
    stats = httpx.get(f"{emulator_url}/_emulator/stats").json()
    assert stats["faults_fired"]["418"] >= 1
    armed = httpx.get(f"{emulator_url}/_emulator/faults").json()["armed"]
    assert armed[0]["count"] == 4  # exactly one request was made: no hammering


@pytest.mark.parametrize("kind", ["500", "502", "503", "504"])
def test_5xx_is_retried_with_backoff(emulator_url, faults, kind):
    faults("/api/v3/klines", kind, count=2)
    with BinanceClient(emulator_url, backoff_seconds=0.05) as client:
        assert len(_klines(client)) == 60


def test_persistent_5xx_gives_up_with_a_clear_error(emulator_url, faults):
    faults("/api/v3/klines", "503", count=10)
    with BinanceClient(emulator_url, backoff_seconds=0.01, max_retries=3) as client:
        with pytest.raises(Unavailable, match="HTTP 503 after 4 attempts"):
            _klines(client)


def test_slow_responses_time_out_and_are_retried(emulator_url, faults):
    faults("/api/v3/klines", "slow", count=1, delay=2.0)
    with BinanceClient(emulator_url, timeout=0.5, backoff_seconds=0.05) as client:
        assert len(_klines(client)) == 60


def test_a_truncated_body_is_fetched_again(emulator_url, faults):
    faults("/api/v3/klines", "truncated", count=2)
    with BinanceClient(emulator_url, backoff_seconds=0.05) as client:
        klines = _klines(client)
        assert client.http.unreadable == 2
    assert len(klines) == 60 and len({k.open_time for k in klines}) == 60


def test_a_body_truncated_every_time_fails_naming_the_url_and_attempts(emulator_url, faults):
    faults("/api/v3/klines", "truncated", count=10)
    with BinanceClient(emulator_url, backoff_seconds=0.01, max_retries=2) as client:
        with pytest.raises(MalformedPayload, match=r"/api/v3/klines .*not JSON.*after 3 attempts"):
            _klines(client)


def test_the_budget_keeps_a_fast_client_under_the_weight_limit(emulator_url):
    """A budget of 20 weight per 2 s against the emulator's default 6000/min: no 429."""
    # The emulator counts weight per client address, and the session's other tests spend this
    # minute's on 127.0.0.1: a source address of our own starts from zero, as a new client would.
    own_address = httpx.HTTPTransport(local_address="127.0.0.77")
    with BinanceClient(
        emulator_url, weight_per_minute=20, weight_window_seconds=2.0, transport=own_address
    ) as client:
        for _ in range(15):  # 30 weight: must spill into a second window
            client.klines("ETHUSDT", "1m", DAY, DAY + 60_000)
        assert client.http.rate_limited == 0 and client.budget.waited_seconds > 0
        # One wait into the second window, not one per request: the server's minute count (here
        # above 20 by the tenth request) is not this 2 s window's.
        assert client.budget.waited_seconds <= 2.0
