from datetime import UTC, datetime, timedelta

import httpx
import pytest

from crypto_assets.ingestion.coingecko import DEMO_KEY_HEADER, CoinGeckoClient
from crypto_assets.ingestion.http import MalformedPayload

pytestmark = pytest.mark.integration
DAY = datetime(2024, 3, 1, tzinfo=UTC)


def _url(emulator_url: str) -> str:
    return f"{emulator_url}/coingecko/api/v3"


def test_market_chart_granularity_follows_coingecko(emulator_url):
    with CoinGeckoClient(_url(emulator_url), calls_per_minute=1000) as client:
        five_minutes = client.market_chart_range("bitcoin", DAY, DAY + timedelta(hours=23))
        hourly = client.market_chart_range("bitcoin", DAY, DAY + timedelta(days=30))
        daily = client.market_chart_range("bitcoin", DAY, DAY + timedelta(days=120))
    assert five_minutes[1].time_ms - five_minutes[0].time_ms == 5 * 60_000
    assert hourly[1].time_ms - hourly[0].time_ms == 3_600_000
    assert daily[1].time_ms - daily[0].time_ms == 86_400_000
    point = hourly[0]
    assert 3e4 < point.price_usd < 3e5 and point.market_cap_usd == pytest.approx(point.price_usd * 1.98e7)


def test_stablecoins_without_a_binance_pair_get_usd_prices(emulator_url):
    with CoinGeckoClient(_url(emulator_url), calls_per_minute=1000) as client:
        for coin in ("tether", "dai", "usd-coin"):
            prices = [p.price_usd for p in client.market_chart_range(coin, DAY, DAY + timedelta(days=2))]
            assert prices and all(0.98 < p < 1.02 for p in prices), coin
        markets = client.markets(["tether", "pepe"])
    assert {m["id"] for m in markets} == {"tether", "pepe"} and all(m["market_cap"] > 0 for m in markets)


def test_rate_limit_429_is_retried(emulator_url, faults):
    faults("/coingecko/api/v3/coins/bitcoin", "429", count=1, retry_after=1)
    with CoinGeckoClient(_url(emulator_url), calls_per_minute=1000) as client:
        assert client.market_chart_range("bitcoin", DAY, DAY + timedelta(days=1))
        assert client.http.rate_limited == 1


def test_api_key_goes_in_the_documented_header():
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={"prices": "nope"})

    client = CoinGeckoClient("http://cg.test/api/v3", api_key="k-123", transport=httpx.MockTransport(handler))
    with pytest.raises(MalformedPayload, match="prices"):
        client.market_chart_range("bitcoin", DAY, DAY + timedelta(days=1))
    assert seen[0][DEMO_KEY_HEADER] == "k-123"


def test_client_budget_stays_under_the_plan_the_server_enforces():
    """Server and client on one fake clock: 12 calls at 5/min span three minutes and get no 429,
    while a client that ignores the plan is answered 429."""
    from starlette.testclient import TestClient

    from crypto_assets.emulator.app import EmulatorConfig, create_app
    from crypto_assets.emulator.market import Market
    from crypto_assets.universe import load_universe

    class FakeTime:
        now = DAY.timestamp() + 5.0

        def sleep(self, seconds: float) -> None:
            self.now += seconds

    fake = FakeTime()
    config = EmulatorConfig(coingecko_calls_per_minute=5, clock=lambda: int(fake.now * 1000))
    transport = TestClient(create_app(Market(load_universe()), config))._transport
    start = fake.now
    with CoinGeckoClient(
        "http://testserver/coingecko/api/v3",
        calls_per_minute=5,
        transport=transport,
        sleep=fake.sleep,
        clock=lambda: fake.now,
    ) as polite:
        for _ in range(12):
            polite.markets(["bitcoin"])
        assert polite.http.rate_limited == 0
    assert int(fake.now // 60) - int(start // 60) == 2  # 5 + 5 + 2 calls: three minutes
    with CoinGeckoClient(
        "http://testserver/coingecko/api/v3",
        calls_per_minute=100,
        transport=transport,
        sleep=fake.sleep,
        clock=lambda: fake.now,
        max_retries=0,
    ) as greedy:
        with pytest.raises(Exception, match="HTTP 429"):
            for _ in range(12):
                greedy.markets(["bitcoin"])
