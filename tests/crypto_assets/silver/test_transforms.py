import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from crypto_assets.silver.transforms import (
    MINUTES_PER_YEAR,
    minute_features,
    minute_returns,
    rolling_volatility,
)
from pyspark.sql import functions as F

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _bars(spark, closes: list[float], token: str = "BTC", skip: set[int] = frozenset()):
    rows = [
        {"token": token, "category": "Layer 1", "symbol": f"{token}USDT",
         "open_time": (T0 + timedelta(minutes=i)).replace(tzinfo=None), "open": c, "high": c, "low": c, "close": c,
         "volume": 1.0, "quote_volume": c, "trade_count": 1, "taker_buy_base_volume": 0.5}
        for i, c in enumerate(closes) if i not in skip
    ]  # fmt: skip
    return spark.createDataFrame(pd.DataFrame(rows))


def test_returns_are_null_across_gaps(spark):
    out = minute_returns(_bars(spark, [100, 110, 121, 133.1, 100], skip={3})).orderBy("open_time").collect()
    assert out[0]["return_1m"] is None
    assert out[1]["return_1m"] == pytest.approx(0.1)
    assert out[2]["log_return_1m"] == pytest.approx(math.log(1.1))
    assert out[3]["return_1m"] is None  # minute 4 follows minute 2: not a one-minute return


def test_rolling_volatility_waits_for_a_full_window(spark):
    closes = [100 * math.exp(0.001 * ((-1) ** i) * (i % 3)) for i in range(10)]
    frame = rolling_volatility(minute_returns(_bars(spark, closes)), 5).orderBy("open_time").toPandas()
    assert frame["volatility_5m"].iloc[:5].isna().all()  # 4 returns or fewer: warm-up
    expected = frame["log_return_1m"].iloc[5:10].std(ddof=1) * math.sqrt(MINUTES_PER_YEAR)
    assert frame["volatility_5m"].iloc[9] == pytest.approx(expected, rel=1e-9)


def test_day_alone_equals_day_with_history(spark):
    closes = [100 * math.exp(0.002 * math.sin(i / 7)) for i in range(3 * 1440)]
    bronze = _bars(spark, closes)
    day2 = (T0 + timedelta(days=1), T0 + timedelta(days=2))
    # The asset reads D-1 and D; the full history gives the reference values for day D.
    with_lookback = bronze.where(F.col("open_time") < F.lit(day2[1]))
    alone = minute_features(with_lookback.where(F.col("open_time") >= F.lit(T0)), *day2).toPandas()
    full = minute_features(bronze, *day2).toPandas()
    pd.testing.assert_frame_equal(alone, full)
    assert alone["volatility_60m"].notna().all()  # seamless at 00:00: D-1 supplied the look-back
