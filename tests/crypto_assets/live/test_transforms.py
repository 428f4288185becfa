"""The live slice's transforms on hand-made minutes and trades."""

import math
from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import SparkSession

from crypto_assets.live.transforms import live_features, trade_minutes

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
MS = int(T0.timestamp() * 1000)


def _trade(i: int, second: int, price: str, qty: str, maker: bool) -> dict:
    return {
        "venue": "binance", "market": "spot", "symbol": "BTCUSDT", "trade_id": i, "price": price,
        "quantity": qty, "trade_time": MS + second * 1000, "buyer_is_maker": maker, "source": "binance_ws",
        "ingested_at": None, "event_time": 0,
    }  # fmt: skip


def test_trade_features_per_minute(spark: SparkSession):
    trades = [
        _trade(1, 1, "100", "2", False),  # taker buy
        _trade(2, 30, "110", "1", True),  # taker sell
        _trade(2, 30, "110", "1", True),  # the same id again: counted once
        _trade(3, 61, "120", "5", False),  # the next minute
    ]
    frame = spark.createDataFrame(trades, schema="venue string, market string, symbol string, trade_id long,"
        " price string, quantity string, trade_time long, buyer_is_maker boolean, source string,"
        " ingested_at timestamp, event_time long")  # fmt: skip
    rows = {
        r["open_time"].replace(tzinfo=None): r
        for r in trade_minutes(frame, T0, T0 + timedelta(hours=1)).collect()
    }
    first = rows[T0.replace(tzinfo=None)]
    assert first["trades"] == 2 and float(first["buy_volume"]) == 2 and float(first["sell_volume"]) == 1
    assert first["trade_imbalance"] == pytest.approx(1 / 3, rel=1e-12)  # not rounded to 6 decimals
    assert first["vwap"] == pytest.approx((200 + 110) / 3)
    assert first["largest_trade_quote"] == pytest.approx(200)
    assert rows[(T0 + timedelta(minutes=1)).replace(tzinfo=None)]["trade_imbalance"] == 1.0


def test_windows_are_past_only_and_null_until_mostly_observed(spark: SparkSession):
    minutes = []
    for m in range(-60, 60):
        gap = m == 5
        close = None if gap else 100.0 * math.exp(0.001 * m)
        minutes.append((T0 + timedelta(minutes=m), close, gap))
    frame = spark.createDataFrame(
        [
            {"venue": "binance", "market": "spot", "symbol": "BTCUSDT", "open_time": t.replace(tzinfo=None),
             "close": c, "volume": 1.0, "quote_volume": c, "is_gap": g, "buy_volume": 1.0, "sell_volume": 0.0}
            for t, c, g in minutes
        ],
        schema="venue string, market string, symbol string, open_time timestamp, close double, volume double,"
        " quote_volume double, is_gap boolean, buy_volume double, sell_volume double",
    )  # fmt: skip
    rows = {
        r["open_time"].replace(tzinfo=None): r
        for r in live_features(frame, T0, T0 + timedelta(hours=1)).collect()
    }
    assert len(rows) == 60  # the look-back hour is read, not written
    at = rows[(T0 + timedelta(minutes=30)).replace(tzinfo=None)]
    assert at["return_1m"] == pytest.approx(0.001)
    assert at["return_15m"] == pytest.approx(0.015)
    assert at["realized_volatility_15m"] == pytest.approx(math.sqrt(15) * 0.001)
    assert at["trade_imbalance_15m"] == 1.0
    # The minute after the gap has no previous close: no 1m return, and the 15m window holds the
    # gap (14 of 15 observed, above 80 %).
    after = rows[(T0 + timedelta(minutes=6)).replace(tzinfo=None)]
    assert after["return_1m"] is None and after["realized_volatility_15m"] is not None
