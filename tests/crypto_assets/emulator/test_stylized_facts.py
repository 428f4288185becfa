"""The emulated market has the stylized facts of real crypto markets (figures of the real 2023
Binance year in crypto_assets/emulator/market.py's docstring): risk can be learnt from it."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from crypto_assets.emulator.market import DAY_MS, Market
from crypto_assets.emulator.profiles import Depeg, parse_depegs
from crypto_assets.universe import load_universe

START = int(pd.Timestamp("2025-01-01", tz="UTC").timestamp() * 1000)
DAYS = 180
PAIRS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT", "UNIUSDT", "LINKUSDT", "USDCUSDT")


@pytest.fixture(scope="module")
def hourly() -> dict[str, pd.DataFrame]:
    market = Market(load_universe())
    out = {}
    for pair in PAIRS:
        rows, cursor, end = [], START, START + DAYS * DAY_MS - 1
        while cursor < end:
            page = market.klines(pair, "1h", start_ms=cursor, end_ms=end, limit=1000, now_ms=end + DAY_MS)
            rows += page
            cursor = page[-1][0] + 3_600_000
        out[pair] = pd.DataFrame(
            [(r[0], float(r[4]), float(r[7])) for r in rows], columns=["open_time", "close", "quote_volume"]
        ).set_index("open_time")
    return out


def _returns(hourly: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.DataFrame({p: np.log(f["close"]).diff() for p, f in hourly.items() if p != "USDCUSDT"}).dropna()


def test_volatility_clusters_at_every_lag_of_a_day(hourly):
    absolute = _returns(hourly).abs()
    for lag in range(1, 25):
        assert (absolute.apply(lambda s, lag=lag: s.autocorr(lag)) > 0.03).all(), lag
    assert absolute.apply(lambda s: s.autocorr(1)).median() > 0.1


def test_returns_have_fat_tails(hourly):
    kurtosis = _returns(hourly).kurt() + 3  # pandas gives the excess
    assert (kurtosis > 3).all() and kurtosis.median() > 5


def test_volume_rises_with_volatility_and_varies_from_day_to_day(hourly):
    returns = _returns(hourly)
    for pair in returns.columns:
        volume = np.log(hourly[pair]["quote_volume"].reindex(returns.index))
        assert np.corrcoef(volume, returns[pair].abs())[0, 1] > 0.2, pair
        daily = hourly[pair]["quote_volume"].groupby(hourly[pair].index // DAY_MS).sum()
        assert daily.pct_change().abs().median() > 0.05, pair  # not the same volume every day


def test_volume_follows_the_hour_and_the_weekday(hourly):
    frame = hourly["BTCUSDT"]
    when = pd.to_datetime(frame.index, unit="ms")
    by_hour = frame["quote_volume"].groupby(when.hour).mean()
    assert by_hour.idxmax() in range(12, 18) and by_hour.idxmin() in range(0, 6)
    by_weekday = frame["quote_volume"].groupby(when.weekday).mean()
    assert by_weekday[[5, 6]].mean() < 0.95 * by_weekday[[0, 1, 2, 3, 4]].mean()


def test_tokens_move_with_the_market(hourly):
    returns = _returns(hourly)
    betas = returns.cov()["BTCUSDT"].drop("BTCUSDT") / returns["BTCUSDT"].var()
    correlations = returns.corrwith(returns["BTCUSDT"]).drop("BTCUSDT")
    assert betas.between(0.6, 2.0).all() and correlations.between(0.35, 0.9).all()


def test_a_stablecoin_sits_at_its_peg(hourly):
    close = hourly["USDCUSDT"]["close"]
    assert (close - 1).abs().max() < 0.005


def test_a_depeg_is_configurable_and_the_default_is_usdcs_of_march_2023(monkeypatch):
    assert parse_depegs("USDCUSDT:2023-03-10:3d:0.88") == (Depeg("USDCUSDT", date(2023, 3, 10), 3, 0.88),)
    assert parse_depegs("none") == ()
    with pytest.raises(ValueError, match="PAIR:YYYY-MM-DD"):
        parse_depegs("USDC 2023-03-10")
    start = int(pd.Timestamp("2024-06-01", tz="UTC").timestamp() * 1000)

    def lowest(depegs: str) -> float:
        monkeypatch.setenv("EMULATOR_DEPEGS", depegs)
        rows = Market(load_universe()).klines(
            "USDCUSDT", "1h", start_ms=start, end_ms=start + 4 * DAY_MS, limit=200, now_ms=start + 9 * DAY_MS
        )
        return min(float(r[4]) for r in rows)

    assert lowest("USDCUSDT:2024-06-01:2d:0.9") < 0.93
    assert lowest("none") > 0.995
