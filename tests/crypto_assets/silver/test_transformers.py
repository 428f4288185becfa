import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from crypto_assets.bronze.transforms import AMOUNT
from crypto_assets.pipeline_config import PipelineConfigError, load_pipeline_config
from crypto_assets.silver.config import build_plan
from crypto_assets.silver.transformers import TRANSFORMERS, interval_mismatches, resample_bars

T0 = datetime(2026, 1, 1)


def _bronze(spark, closes: dict[int, float | None], interval: str = "1m", step: int = 60, token: str = "BTC"):
    rows = []
    for i, close in closes.items():
        rows.append(
            {"token": token, "category": "Layer 1", "symbol": f"{token}USDT", "interval": interval,
             "open_time": T0 + timedelta(seconds=i * step), "open": close, "high": None if close is None else close + 1,
             "low": None if close is None else close - 1, "close": close, "volume": None if close is None else 2.0,
             "quote_volume": None if close is None else 2.0 * close, "trade_count": None if close is None else 3,
             "taker_buy_base_volume": None if close is None else 1.0, "taker_buy_quote_volume": None, "is_gap": close is None,
             "source": "t", "ingested_at": T0}
        )  # fmt: skip
    frame = spark.createDataFrame(pd.DataFrame(rows))
    for column in (
        "open",
        "high",
        "low",
        "close",
        "volume",
        "quote_volume",
        "taker_buy_base_volume",
        "taker_buy_quote_volume",
    ):
        frame = frame.withColumn(column, frame[column].cast(AMOUNT))
    return frame


def test_resampling_to_5m_keeps_gaps_visible(spark):
    closes: dict[int, float | None] = {i: 100.0 + i for i in range(10)}
    closes[7] = None  # a gap row of bronze (leave_missing)
    bars = resample_bars(_bronze(spark, closes), "5m").orderBy("open_time").collect()
    first, second = bars
    assert (first["open"], first["close"], first["high"], first["low"]) == (100, 104, 105, 99)
    assert (
        first["volume"] == 10 and first["trade_count"] == 15 and first["is_complete"] and not first["is_gap"]
    )
    assert second["bars_observed"] == 4 and second["bars_expected"] == 5 and not second["is_complete"]
    assert second["close"] == Decimal(109) and second["open"] == Decimal(105)
    assert first["vwap"] == pytest.approx(float(first["quote_volume"]) / 10)
    # Intrabar volatility: stdev of the 1m log returns inside the bar, annualised.
    returns = [math.log((101 + i) / (100 + i)) for i in range(4)]
    expected = pd.Series(returns).std() * math.sqrt(365 * 24 * 60)
    assert first["realized_vol_intrabar"] == pytest.approx(expected, rel=1e-12)


def test_the_exchanges_own_bar_wins_then_the_finest_source(spark):
    # Hour 0: minutes and the exchange's 1h bar; hour 1: minutes only; hour 2: a 1h gap row only.
    minutes = _bronze(spark, {i: 10.0 + (i % 3) for i in range(120)})
    hours = _bronze(spark, {0: 99.0, 2: None}, interval="1h", step=3600)
    bars = resample_bars(minutes.unionByName(hours), "1h").orderBy("open_time").collect()
    assert [b["bar_source"] for b in bars] == ["native_1h", "resampled_1m", None]
    assert bars[0]["close"] == 99 and bars[0]["bars_expected"] == 1 and bars[0]["is_complete"]
    # The intrabar volatility still comes from the minutes when the exchange's bar wins.
    assert bars[0]["realized_vol_intrabar"] == pytest.approx(bars[1]["realized_vol_intrabar"], rel=1e-12)
    assert bars[1]["close"] == 12 and bars[1]["bars_expected"] == 60 and bars[1]["is_complete"]
    assert bars[2]["is_gap"] and bars[2]["close"] is None and bars[2]["bars_observed"] == 0
    # A gap row of the exchange's bar does not hide minutes that were delivered.
    gap_hour = _bronze(spark, {0: None}, interval="1h", step=3600)
    first = resample_bars(minutes.unionByName(gap_hour), "1h").orderBy("open_time").first()
    assert first is not None and first["bar_source"] == "resampled_1m" and not first["is_gap"]


def test_mismatches_between_the_exchanges_bar_and_its_minutes_are_listed(spark):
    minutes = {i: 10.0 for i in range(60)}
    agree = _bronze(spark, {0: 10.0}, interval="1h", step=3600)
    # The exchange's 1h bar: open = high - 1 = low + 1 = close, volume 2 (the helper's shape), so a
    # flat hour of 60 minutes has high 11 and low 9 like the bar: only volumes and trades differ.
    found = interval_mismatches(_bronze(spark, minutes).unionByName(agree), "1h").collect()
    assert len(found) == 1 and set(found[0]["fields"]) == {
        "volume",
        "quote_volume",
        "trade_count",
        "taker_buy_base_volume",
    }
    assert found[0]["bars_observed"] == 60
    # Minutes that add up to the exchange's bar: nothing listed, the slot still compared.
    one_minute = _bronze(spark, {0: 10.0})
    same = interval_mismatches(one_minute.unionByName(agree), "1h").collect()
    assert len(same) == 1 and same[0]["fields"] == []


def test_every_configured_feature_is_registered_and_documented():
    config = load_pipeline_config()
    for interval in config.features:
        plan = build_plan(interval, config)
        assert plan.lookback_days >= 1
        for column in plan.columns:
            assert column.description
    assert {"returns", "rsi", "macd", "bollinger", "atr", "btc_beta"} <= set(TRANSFORMERS)


def test_a_bad_feature_line_stops_at_load_time():
    config = load_pipeline_config()
    from dataclasses import replace

    from crypto_assets.pipeline_config import FeatureLine

    unknown = replace(config, features={"1h": (FeatureLine("stochastic", {}),)})
    with pytest.raises(PipelineConfigError, match="unknown feature 'stochastic'"):
        build_plan("1h", unknown)
    bad = replace(config, features={"1h": (FeatureLine("rsi", {"length": 14}),)})
    with pytest.raises(PipelineConfigError, match="bad parameters"):
        build_plan("1h", bad)
    uneven = replace(config, features={"1d": (FeatureLine("returns", {"horizons": ["36h"]}),)})
    with pytest.raises(PipelineConfigError, match="not a whole number of 1d bars"):
        build_plan("1d", uneven)


def test_returns_never_span_a_gap(real_hourly_features):
    from pyspark.sql import functions as F

    outage = datetime(2023, 3, 24, 14, tzinfo=UTC)
    row = real_hourly_features.where(
        (F.col("token") == "BTC") & (F.col("open_time") == F.lit(outage))
    ).first()
    # 14:00 follows the 12:00-13:00 outage: no 1h return, a 4h return (from 10:00) exists.
    assert row["return_1h"] is None and row["return_4h"] is not None
    assert row["rsi_14"] is not None  # bar-based indicators continue over observed bars


def test_bollinger_pct_b_is_null_on_a_flat_window_despite_rounding():
    """Real USDC, 2022-05-07 21:00 -> 05-08 01:00: twenty closes of 1.0003, whose mean comes out
    1.0002999999999997; the band is 9e-16 wide and %B was 0.75."""
    import numpy as np

    from crypto_assets.silver.transformers import FeatureContext, bollinger

    feature = bollinger(FeatureContext("1h", load_pipeline_config()), window=20)
    closes = np.array([1.0003] * 20 + [1.0004])
    bars = pd.DataFrame({"close": closes, "seconds": np.arange(21) * 3600})
    values = feature.recursion(bars)
    assert np.isnan(values["bb_pct_b_20"][19])  # flat: no band to be a share of
    window = closes[1:]  # a real band (one tick up) keeps its %B
    sd = window.std()
    expected = (closes[-1] - (window.mean() - 2 * sd)) / (4 * sd)
    assert values["bb_pct_b_20"][20] == pytest.approx(expected, rel=1e-9)
