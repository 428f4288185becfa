import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from crypto_assets.silver.transforms import minute_features

from crypto_assets.gold.transforms import GOLD_COLUMNS, hourly_market_features

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_hourly_bars_from_minutes(spark):
    rows = []
    close = 100.0
    for i in range(120):
        if i == 70:  # a missing minute in the second hour
            continue
        prev, close = close, 100.0 * math.exp(0.001 * math.sin(i))
        rows.append(
            {"token": "ETH", "category": "Layer 1", "symbol": "ETHUSDT",
             "open_time": (T0 + timedelta(minutes=i)).replace(tzinfo=None),
             "open": prev, "high": max(prev, close) + 0.1, "low": min(prev, close) - 0.1, "close": close,
             "volume": 2.0, "quote_volume": 2.0 * close, "trade_count": 3, "taker_buy_base_volume": 1.5}
        )  # fmt: skip
    minutes = minute_features(spark.createDataFrame(pd.DataFrame(rows)), T0, T0 + timedelta(days=1))
    gold = hourly_market_features(minutes).orderBy("bar_time").toPandas()
    assert tuple(gold.columns) == GOLD_COLUMNS
    assert len(gold) == 2
    first, second = gold.iloc[0], gold.iloc[1]
    assert first["minutes_observed"] == 60 and bool(first["is_complete"])
    assert second["minutes_observed"] == 59 and not bool(second["is_complete"])
    assert first["volume"] == pytest.approx(120.0) and first["trade_count"] == 180
    assert first["taker_buy_ratio"] == pytest.approx(0.75)
    assert first["open"] == pytest.approx(rows[0]["open"]) and first["close"] == pytest.approx(
        rows[59]["close"]
    )
    # The first hour's compounded return covers minutes 1..59 (minute 0 has no previous close).
    assert first["return_1h"] == pytest.approx(rows[59]["close"] / rows[0]["close"] - 1, rel=1e-12)
    assert str(first["dt"]) == "2026-01-01"
