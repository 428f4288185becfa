"""Partition-boundary correctness: a day computed from its look-back partitions alone equals
the same day computed from the whole history, bit for bit."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from pyspark.sql import functions as F

from crypto_assets.silver.config import feature_plans

PLAN = feature_plans()["1h"]


def _day(frame, day: datetime) -> pd.DataFrame:
    out = frame.where(
        (F.col("open_time") >= F.lit(day)) & (F.col("open_time") < F.lit(day + timedelta(days=1)))
    )
    return out.orderBy("token", "open_time").toPandas()


@pytest.mark.parametrize(
    "day",
    [
        datetime(2023, 1, 26, tzinfo=UTC),  # mid warm-up: RSI/ATR warm, MACD signal still null
        datetime(2023, 3, 25, tzinfo=UTC),  # the day after the 12:00-14:00 outage of 2023-03-24
        datetime(2023, 5, 6, tzinfo=UTC),  # PEPE's first full day: its look-back is one evening
    ],
)
def test_day_alone_equals_whole_history(real_hourly_bars, real_hourly_features, day):
    whole = _day(real_hourly_features, day)
    # What the asset reads for day D: its partition plus PLAN.lookback_days earlier ones.
    first = day - timedelta(days=PLAN.lookback_days)
    window = real_hourly_bars.where(
        (F.col("open_time") >= F.lit(first)) & (F.col("open_time") < F.lit(day + timedelta(days=1)))
    )
    alone = _day(PLAN.apply(window), day)
    assert len(alone) == len(whole) > 0
    pd.testing.assert_frame_equal(alone, whole, check_exact=True)
    # Every feature the real data can feed (it has no taker volumes) is exercised by these days.
    computed = [c.name for c in PLAN.columns if not c.by_source or c.name.startswith("corr_")]
    assert alone[computed].notna().any().sum() >= len(computed) - (3 if day.month == 1 else 0)


def test_one_day_less_of_look_back_would_not_be_exact(real_hourly_bars, real_hourly_features):
    # The look-back is what makes it exact: starting one day later changes the day's values.
    day = datetime(2023, 3, 25, tzinfo=UTC)
    first = day - timedelta(days=PLAN.lookback_days - 1)
    short = real_hourly_bars.where(
        (F.col("open_time") >= F.lit(first)) & (F.col("open_time") < F.lit(day + timedelta(days=1)))
    )
    whole = _day(real_hourly_features, day)
    assert not _day(PLAN.apply(short), day).equals(whole)
