"""The cross-venue table: every series bronze holds, its quote asset's USD price, the basis."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from pyspark.sql import DataFrame

from crypto_assets.bronze.transforms import clean_klines
from crypto_assets.gold.transforms import venue_prices
from crypto_assets.ingestion.binance import INTERVAL_MS
from crypto_assets.raw.schema import RAW_KLINES_SCHEMA
from crypto_assets.silver.validators import quote_peg
from crypto_assets.universe import load_universe

DAY = datetime(2023, 3, 11, tzinfo=UTC)
# The USDC de-peg on Binance.US, 2023-03-11: one USDC bought 0.875 USD at 07:50.
USDC_USD = {7 * 60 + 49: 0.90, 7 * 60 + 50: 0.875, 7 * 60 + 51: 0.88}


def _row(venue: str, symbol: str, minute: int, close: float) -> dict:
    ms = int((DAY + timedelta(minutes=minute)).timestamp() * 1000)
    text = f"{close:.8f}"
    return {
        "venue": venue, "market": "spot", "symbol": symbol, "open_time": ms, "open": text, "high": text,
        "low": text, "close": text, "volume": "1", "close_time": ms + INTERVAL_MS["1m"] - 1,
        "quote_volume": None, "trade_count": None, "taker_buy_base_volume": None,
        "taker_buy_quote_volume": None, "interval": "1m", "source": "test", "ingested_at": datetime(2023, 3, 12),
    }  # fmt: skip


@pytest.fixture(scope="module")
def frame(spark) -> DataFrame:
    btc_usd = 20_000.0
    rows = []
    for minute in range(7 * 60, 9 * 60):
        usdc = USDC_USD.get(minute, 0.92 if minute < 8 * 60 else 0.95)
        rows += [
            _row("binance", "BTCUSDT", minute, btc_usd),  # canonical: USDT at par
            _row("binance_us", "BTCUSD", minute, btc_usd),
            _row("binance_us", "BTCUSDC", minute, btc_usd / usdc),
            _row("binance_us", "ETHUSD", minute, 1_500.0),
            _row("binance_us", "ETHUSDC", minute, 1_500.0 / usdc),
        ]
    universe = load_universe()
    raw = spark.createDataFrame(pd.DataFrame(rows), schema=RAW_KLINES_SCHEMA)
    bronze = clean_klines(
        raw,
        series_tokens=universe.series_tokens(),
        token_categories={t.symbol: t.category for t in universe.tokens},
        listings=[],
        start=DAY,
        end=DAY + timedelta(days=1),
        intervals=tuple(INTERVAL_MS),
        series_quotes=universe.series_quotes(),
    )
    markets = spark.createDataFrame(
        pd.DataFrame(
            {
                "token": ["USDT", "USDT"],
                "hour": [DAY + timedelta(hours=h) for h in (7, 8)],
                "price_usd": [1.0, 1.001],
            }
        )
    )
    out = venue_prices(
        bronze, markets, canonical_series=universe.canonical_series(), start=DAY, end=DAY + timedelta(days=1)
    )
    return out.cache()


@pytest.fixture(scope="module")
def table(frame: DataFrame) -> pd.DataFrame:
    return frame.toPandas().set_index(["symbol", "bar_time"]).sort_index()


def test_bronze_carries_the_quote_asset(spark) -> None:
    quotes = load_universe().series_quotes()
    assert quotes["binance_us/spot/BTCUSDC"] == "USDC"
    assert quotes["binance_us/spot/BTCUSD"] == "USD"
    assert quotes["binance/coinm_futures/BTCUSD_PERP"] == "USD"
    assert quotes["binance/spot/BTCUSDT"] == "USDT"


def test_every_venue_has_its_hourly_bars_keyed_apart(table: pd.DataFrame) -> None:
    assert set(table.index.get_level_values("symbol")) == {
        "BTCUSDT",
        "BTCUSD",
        "BTCUSDC",
        "ETHUSD",
        "ETHUSDC",
    }
    hour = pd.Timestamp("2023-03-11 07:00")
    row = table.loc[("BTCUSDC", hour)]
    assert (row["venue"], row["market"], row["token"], row["quote_asset"]) == (
        "binance_us",
        "spot",
        "BTC",
        "USDC",
    )
    assert not row["is_canonical"] and table.loc[("BTCUSDT", hour), "is_canonical"]
    assert row["bars_observed"] == 60


def test_cross_rate_prices_the_quote_at_its_extreme(table: pd.DataFrame) -> None:
    row = table.loc[("BTCUSDC", pd.Timestamp("2023-03-11 07:00"))]
    assert row["quote_usd_low"] == pytest.approx(0.875)
    assert row["quote_usd_high"] == pytest.approx(0.92)
    assert row["quote_usd"] == pytest.approx(0.92)  # the hour's last minute
    assert row["quote_usd_source"] == "cross:binance_us/spot BTC,ETH USD/USDC 1m"
    # In quote units BTCUSDC sits 1/0.92 - 1 above the canonical BTCUSDT; in USD they agree.
    assert row["basis_bps"] == pytest.approx((1 / 0.92 - 1) * 1e4)
    assert row["basis_usd_bps"] == pytest.approx(0.0, abs=1e-6)
    assert row["close_usd"] == pytest.approx(20_000.0)


def test_usd_pairs_are_at_par_and_usdt_comes_from_coingecko(table: pd.DataFrame) -> None:
    usd = table.loc[("BTCUSD", pd.Timestamp("2023-03-11 08:00"))]
    assert (usd["quote_usd"], usd["quote_usd_source"]) == (1.0, "par")
    usdt = table.loc[("BTCUSDT", pd.Timestamp("2023-03-11 08:00"))]
    assert (usdt["quote_usd"], usdt["quote_usd_source"]) == (pytest.approx(1.001), "coingecko")
    assert usdt["basis_bps"] == 0.0 and usdt["canonical_symbol"] == "BTCUSDT"


def test_the_peg_check_sees_the_de_peg_at_the_minute_by_cross_rate(frame: DataFrame) -> None:
    result = quote_peg(["USDT", "USDC"], 0.02).run(frame)
    assert not result.passed
    (episode,) = result.details["episodes"]
    assert episode["token"] == "USDC" and episode["extreme_usd"] == pytest.approx(0.875)
    assert (episode["start"], episode["end"]) == ("2023-03-11 07:00:00", "2023-03-11 09:00:00")
    assert episode["evidence"] == "cross:binance_us/spot BTC,ETH USD/USDC 1m"
    assert result.details["measured_hours"] == {
        "USDC via cross:binance_us/spot BTC,ETH USD/USDC 1m": 2,
        "USDT via coingecko": 2,
    }


def test_the_peg_check_with_nothing_to_measure_does_not_pass(frame: DataFrame) -> None:
    result = quote_peg(["USDT", "USDC"], 0.02).run(frame.where("quote_asset = 'USD'"))
    assert not result.passed and result.details["nothing_evaluated"]


def test_the_peg_check_reads_coingecko_for_every_stablecoin(spark, frame: DataFrame) -> None:
    # Binance spot has no USDC bar before 14:00 on 2023-03-11; CoinGecko's hourly USD price does.
    markets = spark.createDataFrame(
        pd.DataFrame(
            {
                "token": ["USDC", "USDC", "DAI", "BTC"],
                "hour": [DAY + timedelta(hours=h) for h in (7, 8, 7, 7)],
                "price_usd": [0.88, 0.97, 0.999, 20_000.0],
            }
        )
    )
    result = quote_peg(["USDT", "USDC", "DAI"], 0.02, markets=markets).run(frame)
    by_evidence = {(e["token"], e["evidence"]): e for e in result.details["episodes"]}
    assert set(by_evidence) == {("USDC", "coingecko"), ("USDC", "cross:binance_us/spot BTC,ETH USD/USDC 1m")}
    assert by_evidence[("USDC", "coingecko")]["extreme_usd"] == pytest.approx(0.88)
    assert result.details["measured_hours"]["DAI via coingecko"] == 1
