import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from crypto_assets.gold.transforms import category_index, market_features, rolling_correlations
from crypto_assets.pipeline_config import load_pipeline_config
from crypto_assets.silver.config import BAR_COLUMNS, HISTORY, build_plan

T0 = datetime(2024, 1, 1, tzinfo=UTC)
PLAN = build_plan("1h", load_pipeline_config())
FEATURES = [*BAR_COLUMNS, HISTORY, *(c.name for c in PLAN.columns)]
HORIZONS = {"1h": 1, "4h": 4, "24h": 24}


def _bars(spark, days: int = 30, tokens=("BTC", "ETH"), seed: int = 3, bump_after: datetime | None = None):
    rng = np.random.default_rng(seed)
    rows = []
    for token in tokens:
        price = 100.0
        for i in range(days * 24):
            at = (T0 + timedelta(hours=i)).replace(tzinfo=None)
            price *= math.exp(rng.normal(0, 0.01))
            close = price * (1.5 if bump_after and at >= bump_after.replace(tzinfo=None) else 1)
            rows.append(
                {"token": token, "category": "Layer 1", "symbol": f"{token}USDT", "open_time": at, "open": close,
                 "high": close * 1.01, "low": close * 0.99, "close": close, "volume": 10.0 + i % 7, "quote_volume": 1000.0,
                 "trade_count": 5, "taker_buy_base_volume": 4.0, "vwap": close, "bar_source": "native_1h", "bars_observed": 60, "is_complete": True,
                 "is_gap": False, "realized_vol_intrabar": 0.5}
            )  # fmt: skip
    return spark.createDataFrame(pd.DataFrame(rows))


def _gold(spark, bars, start: datetime, end: datetime) -> pd.DataFrame:
    features = PLAN.apply(bars)
    table = market_features(
        features,
        None,
        feature_columns=FEATURES,
        horizons=HORIZONS,
        interval_seconds=3600,
        start=start,
        end=end,
    )
    return table.orderBy("token", "bar_time").toPandas()


def test_targets_are_the_future_returns_and_features_never_see_the_future(spark):
    day = T0 + timedelta(days=28)
    gold = _gold(spark, _bars(spark), day, day + timedelta(days=1))
    btc = gold[gold["token"] == "BTC"].reset_index(drop=True)
    # The target of bar t is the 1h/4h return that bar t+h will show as a feature.
    future = _gold(spark, _bars(spark), day, day + timedelta(days=2))
    future = future[future["token"] == "BTC"].set_index("bar_time")
    for name, hours in HORIZONS.items():
        later = future[f"return_{name}"].reindex(btc["bar_time"] + pd.Timedelta(hours=hours)).to_numpy()
        np.testing.assert_allclose(btc[f"target_return_{name}"], later, rtol=1e-12)
    # Changing every price after noon changes no feature before noon, and no target whose
    # horizon ends before noon.
    noon = day + timedelta(hours=12)
    changed = _gold(spark, _bars(spark, bump_after=noon), day, day + timedelta(days=1))
    before = gold["bar_time"] < noon.replace(tzinfo=None)
    feature_columns = [c for c in gold.columns if not c.startswith("target_")]
    pd.testing.assert_frame_equal(gold.loc[before, feature_columns], changed.loc[before, feature_columns])
    unchanged_target = gold["bar_time"] + pd.Timedelta(hours=4) < noon.replace(tzinfo=None)
    pd.testing.assert_series_equal(
        gold.loc[unchanged_target, "target_return_4h"], changed.loc[unchanged_target, "target_return_4h"]
    )
    assert not gold.loc[~unchanged_target & before, "target_return_4h"].equals(
        changed.loc[~unchanged_target & before, "target_return_4h"]
    )


def test_targets_are_null_where_the_future_is_not_there(spark):
    bars = _bars(spark, days=2)
    gold = _gold(spark, bars, T0 + timedelta(days=1), T0 + timedelta(days=2))
    last = gold[gold["bar_time"] == gold["bar_time"].max()]
    assert last["target_return_1h"].isna().all() and last["target_return_24h"].isna().all()
    assert gold["target_return_24h"].isna().all() and gold["target_return_1h"].notna().sum() == 2 * 23


def test_category_index_weights_by_the_previous_market_cap(spark):
    rows = [
        ("BTC", "Layer 1", T0, 0.10), ("ETH", "Layer 1", T0, -0.10), ("SOL", "Layer 1", T0, None),
        ("DOGE", "Meme", T0, 0.02),
    ]  # fmt: skip
    features = spark.createDataFrame(
        pd.DataFrame(
            [
                {"token": t, "category": c, "open_time": at.replace(tzinfo=None), "return_1h": r}
                for t, c, at, r in rows
            ]
        )
    )
    previous = (T0 - timedelta(hours=1)).replace(tzinfo=None)
    markets = spark.createDataFrame(
        pd.DataFrame(
            [
                {
                    "token": "BTC",
                    "hour": previous,
                    "market_cap_usd": 3e12,
                    "price_usd": 1.0,
                    "circulating_supply": 1.0,
                },
                {
                    "token": "ETH",
                    "hour": previous,
                    "market_cap_usd": 1e12,
                    "price_usd": 1.0,
                    "circulating_supply": 1.0,
                },
                # A cap known only after the bar opened must not weigh it.
                {
                    "token": "DOGE",
                    "hour": T0.replace(tzinfo=None),
                    "market_cap_usd": 1e10,
                    "price_usd": 1.0,
                    "circulating_supply": 1.0,
                },
            ]
        )
    )
    index = (
        category_index(features, markets, interval="1h", interval_seconds=3600)
        .toPandas()
        .set_index("category")
    )
    layer1 = index.loc["Layer 1"]
    assert layer1["constituents"] == 2 and layer1["cap_weighted_constituents"] == 2
    assert layer1["equal_weighted_return"] == pytest.approx(0.0, abs=1e-15)
    assert layer1["cap_weighted_return"] == pytest.approx((3 * 0.10 - 1 * 0.10) / 4)
    assert layer1["total_market_cap_usd"] == pytest.approx(4e12)
    assert index.loc["Meme", "cap_weighted_return"] is None or np.isnan(
        index.loc["Meme", "cap_weighted_return"]
    )


def test_rolling_correlations_match_pandas(spark):
    bars = _bars(spark, days=12, tokens=("BTC", "ETH", "SOL"))
    features = PLAN.apply(bars)
    start, end = T0 + timedelta(days=10), T0 + timedelta(days=12)
    matrix = rolling_correlations(
        features, return_column="log_return_1h", window_days=7, min_observations=100, start=start, end=end
    ).toPandas()
    assert len(matrix) == 2 * 9  # two days, 3x3 pairs (both orders and the diagonal)
    returns = (
        features.select("token", "open_time", "log_return_1h")
        .toPandas()
        .pivot(index="open_time", columns="token")
    )
    returns.columns = returns.columns.droplevel(0)
    for day in (start, start + timedelta(days=1)):
        window = returns[
            (returns.index >= (day - timedelta(days=6)).replace(tzinfo=None))
            & (returns.index < (day + timedelta(days=1)).replace(tzinfo=None))
        ]
        reference = window.corr()
        got = matrix[matrix["dt"] == day.date()]
        for row in got.itertuples():
            assert row.correlation == pytest.approx(reference.loc[row.token_a, row.token_b], rel=1e-9)
        assert set(got[got["token_a"] == got["token_b"]]["correlation"]) == {1.0}
