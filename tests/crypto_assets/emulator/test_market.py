from datetime import UTC, datetime

import numpy as np
import pytest

from crypto_assets.emulator.market import (
    EPOCH_MS,
    INTERVAL_MINUTES,
    Market,
    price_decimals,
    quantity_decimals,
)
from crypto_assets.universe import load_universe

DAY = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp() * 1000)
NOW = DAY + 3 * 86_400_000


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(load_universe())


def test_same_minute_same_bar_whatever_the_request(market: Market):
    page = market.klines("BTCUSDT", "1m", start_ms=DAY, end_ms=None, limit=1000, now_ms=NOW)
    later = market.klines("BTCUSDT", "1m", start_ms=DAY + 500 * 60_000, end_ms=None, limit=10, now_ms=NOW)
    assert page[500:510] == later
    assert (
        Market(load_universe()).klines("BTCUSDT", "1m", start_ms=DAY, end_ms=None, limit=5, now_ms=NOW)
        == page[:5]
    )
    other_seed = Market(load_universe(), seed=1).klines(
        "BTCUSDT", "1m", start_ms=DAY, end_ms=None, limit=5, now_ms=NOW
    )
    assert other_seed != page[:5]


def test_rows_have_binance_shape_and_consistent_ohlc(market: Market):
    for pair in ("BTCUSDT", "PEPEUSDT", "USDCUSDT"):
        rows = market.klines(pair, "1m", start_ms=DAY, end_ms=None, limit=1000, now_ms=NOW)
        assert len(rows) == 1000
        for row in rows:
            assert len(row) == 12 and isinstance(row[0], int) and isinstance(row[6], int)
            o, h, low, c = (float(x) for x in row[1:5])
            assert low <= min(o, c) <= max(o, c) <= h
            assert row[6] == row[0] + 59_999
        # consecutive minutes join: open equals the previous close
        assert all(rows[i][1] == rows[i - 1][4] for i in range(1, len(rows)))


def test_price_levels_and_volumes_are_of_the_right_order(market: Market):
    def close(pair: str) -> float:
        return float(market.klines(pair, "1d", start_ms=DAY, end_ms=None, limit=1, now_ms=NOW)[0][4])

    assert 3e4 < close("BTCUSDT") < 3e5
    assert 1e-6 < close("PEPEUSDT") < 1e-4
    assert 0.98 < close("USDCUSDT") < 1.02
    pepe_volume = float(market.klines("PEPEUSDT", "1d", start_ms=DAY, end_ms=None, limit=1, now_ms=NOW)[0][5])
    assert pepe_volume > 1e12  # tens of trillions of PEPE a day, like the real market


def test_aggregated_intervals_equal_their_minutes(market: Market):
    hour = market.klines("ETHUSDT", "1h", start_ms=DAY, end_ms=None, limit=1, now_ms=NOW)[0]
    minutes = market.klines("ETHUSDT", "1m", start_ms=DAY, end_ms=None, limit=60, now_ms=NOW)
    assert hour[1] == minutes[0][1] and hour[4] == minutes[-1][4]
    assert float(hour[2]) == max(float(m[2]) for m in minutes)
    assert float(hour[3]) == min(float(m[3]) for m in minutes)
    assert hour[8] == sum(m[8] for m in minutes)
    assert float(hour[5]) == pytest.approx(sum(float(m[5]) for m in minutes))
    assert set(INTERVAL_MINUTES) >= {"1m", "5m", "1h", "4h", "1d"}


def test_listing_lifecycle(market: Market):
    listing = int(datetime(2023, 5, 5, tzinfo=UTC).timestamp() * 1000)
    rows = market.klines("PEPEUSDT", "1h", start_ms=listing, end_ms=None, limit=24, now_ms=NOW)
    assert datetime.fromtimestamp(rows[0][0] / 1000, UTC) == datetime(2023, 5, 5, 18, tzinfo=UTC)
    busd = market.klines("BUSDUSDT", "1h", start_ms=None, end_ms=None, limit=3, now_ms=NOW)
    assert datetime.fromtimestamp(busd[-1][0] / 1000, UTC) == datetime(2023, 12, 15, 4, tzinfo=UTC)
    assert not market.is_trading("AGIXUSDT", NOW) and market.is_trading("FETUSDT", NOW)


def test_no_future_candles_and_the_open_candle_is_last(market: Market):
    now = DAY + 10 * 60_000 + 30_000  # 00:10:30
    rows = market.klines("BTCUSDT", "1m", start_ms=DAY, end_ms=None, limit=1000, now_ms=now)
    assert len(rows) == 11
    assert rows[-1][6] > now  # still open


def test_end_time_only_returns_the_last_candles(market: Market):
    end = DAY + 100 * 60_000
    rows = market.klines("BTCUSDT", "1m", start_ms=None, end_ms=end, limit=10, now_ms=NOW)
    assert [r[0] for r in rows] == [DAY + m * 60_000 for m in range(91, 101)]
    # The per-candle path (endTime only) and the 1m fast path (startTime) agree to the digit.
    assert rows == market.klines(
        "BTCUSDT", "1m", start_ms=DAY + 91 * 60_000, end_ms=None, limit=10, now_ms=NOW
    )


def test_precision_helpers():
    assert price_decimals(95_000) == 2 and price_decimals(0.000011) == 8
    assert quantity_decimals(95_000) == 5 and quantity_decimals(0.000011) == 0


def test_coarse_klines_are_their_minutes_resampled_over_whole_days(market: Market):
    """The vectorised 1h/1d path equals the per-candle aggregation, on a listing day too."""
    pepe_listing = int(datetime(2023, 5, 5, tzinfo=UTC).timestamp() * 1000)
    for pair, start in (("BTCUSDT", DAY), ("PEPEUSDT", pepe_listing)):
        for interval in ("5m", "1h", "1d"):
            rows = market.klines(
                pair, interval, start_ms=start, end_ms=start + 2 * 86_400_000 - 1, limit=1000, now_ms=NOW
            )
            step = INTERVAL_MINUTES[interval]
            assert rows and rows == [market._candle(pair, r[0], step, NOW) for r in rows]
    # PEPE opened at 18:00: its first daily kline opens at midnight and holds 6 hours.
    first_day = market.klines("PEPEUSDT", "1d", start_ms=pepe_listing, end_ms=None, limit=1, now_ms=NOW)[0]
    hours = market.klines(
        "PEPEUSDT", "1h", start_ms=pepe_listing, end_ms=pepe_listing + 86_400_000 - 1, limit=24, now_ms=NOW
    )
    assert len(hours) == 6 and first_day[1] == hours[0][1] and first_day[4] == hours[-1][4]


def test_dropped_minutes_leave_the_exchanges_coarser_klines_whole():
    market = Market(load_universe())
    before = market.klines("ETHUSDT", "1h", start_ms=DAY, end_ms=None, limit=2, now_ms=NOW)
    market.drop_minutes("ETHUSDT", DAY + 10 * 60_000, 5)
    minutes = market.klines("ETHUSDT", "1m", start_ms=DAY, end_ms=None, limit=60, now_ms=NOW)
    assert len(minutes) == 60 and minutes[9][0] == DAY + 9 * 60_000 and minutes[10][0] == DAY + 15 * 60_000
    assert market.klines("ETHUSDT", "1h", start_ms=DAY, end_ms=None, limit=2, now_ms=NOW) == before
    market.restore_minutes()
    assert (
        len(market.klines("ETHUSDT", "1m", start_ms=DAY, end_ms=DAY + 3_599_999, limit=60, now_ms=NOW)) == 60
    )


def test_days_computed_together_equal_each_day_alone(market: Market):
    # Years of 1h/1d klines derive their minutes many days at a time; the 1m path one day at a
    # time: both must see the same minutes, bit for bit, or the cross-interval check would fire.
    import numpy as np

    days = np.array([3000, 3001, 3450, 3999])
    together = market.days_bars("PEPEUSDT", days)
    for row, day in enumerate(days):
        alone = Market(load_universe()).day_bars("PEPEUSDT", int(day))
        for name in ("open", "high", "low", "close", "volume", "quote_volume", "trades", "taker_base"):
            assert np.array_equal(getattr(together, name)[row], getattr(alone, name)), name


def test_coarse_klines_equal_their_minutes_across_a_page_of_many_days(market: Market):
    # A 1d page spans hundreds of days in one batch; each candle still equals its own minutes.
    start = DAY - 400 * 86_400_000
    daily = market.klines("ETHUSDT", "1d", start_ms=start, end_ms=None, limit=1000, now_ms=NOW)
    assert len(daily) == 404  # 400 days before DAY, DAY and the 2 after it, the day opening at NOW
    for candle in (daily[0], daily[137], daily[-2]):
        minutes = market.klines("ETHUSDT", "1m", start_ms=candle[0], end_ms=candle[6], limit=1000, now_ms=NOW)
        minutes += market.klines(
            "ETHUSDT", "1m", start_ms=candle[0] + 1000 * 60_000, end_ms=candle[6], limit=1000, now_ms=NOW
        )
        assert candle[1] == minutes[0][1] and candle[4] == minutes[-1][4]
        assert float(candle[2]) == max(float(m[2]) for m in minutes)
        assert candle[8] == sum(m[8] for m in minutes)


def test_a_minutes_close_alone_equals_its_days_bars(market: Market):
    """CoinGecko's points read single minutes of thousands of days: ``closes_at`` draws only the
    price steps, and must give the very closes ``day_bars`` has (unsorted instants, repeated days,
    the first and last minute of a day)."""
    day_ms, minute_ms = 86_400_000, 60_000
    first = int(datetime(2023, 3, 1, tzinfo=UTC).timestamp() * 1000)
    at = np.array(
        [first + 40 * day_ms + 7 * minute_ms, first, first + day_ms - 1, first + 3 * day_ms + 59_999]
    )
    at = np.concatenate([at, first + np.arange(0, 400) * day_ms + 12 * 3_600_000])
    for pair in ("BTCUSDT", "PEPEUSDT", "USDTUSD"):
        expected = [
            market.day_bars(pair, (int(a) - EPOCH_MS) // day_ms).close[
                (int(a) - EPOCH_MS) % day_ms // minute_ms
            ]
            for a in at
        ]
        assert market.closes_at(pair, at).tolist() == expected
    with pytest.raises(ValueError, match="outside the emulated range"):
        market.closes_at("BTCUSDT", np.array([EPOCH_MS - day_ms]))


def test_a_burst_minutes_trade_ids_stay_below_the_next_minutes():
    """BTC traded 10,920 times in this emulated minute (14,676 in another before the market's
    volatility clustered): with 10,000 ids a minute a burst's last ids were the next minute's
    first ones, and the lake's dedup by trade id dropped them."""
    market = Market(load_universe())
    burst = 1_796_561_820_000  # 2026-12-06 12:57 UTC
    now = burst + 10 * 60_000
    kline = market.klines("BTCUSDT", "1m", start_ms=burst, end_ms=burst, limit=1, now_ms=now)[0]
    assert kline[8] > 10_000
    this, following = (market.trade_tape("BTCUSDT", m, now) for m in (burst, burst + 60_000))
    assert len(this) == kline[8] and this[-1]["id"] < following[0]["id"]
