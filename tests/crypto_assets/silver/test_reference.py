"""Indicator correctness on the real 2023 bars: against the `ta` package (RSI, MACD, ATR,
Bollinger) and against plain pandas references (returns, volatility, VWAP, z-score, beta).

Once warm, values match to 1e-9 relative. Indicators in price units that cross zero (MACD, its
signal and histogram) are compared relative to the close, since a relative error is undefined
at zero.
"""

import math

import numpy as np
import pandas as pd
import pytest
import ta

from crypto_assets.silver.config import feature_plans
from crypto_assets.silver.utils import truncated_ema

PLAN = feature_plans()["1h"]
RTOL = 1e-9


@pytest.fixture(scope="module")
def features(real_hourly_features) -> pd.DataFrame:
    return real_hourly_features.orderBy("token", "open_time").toPandas()


def _close_enough(ours: pd.Series, reference: pd.Series, scale: pd.Series | None = None) -> None:
    both = ours.notna() & reference.notna()
    assert both.sum() > 0
    assert (ours.notna() & ~both).sum() == 0, "we emit values where the reference has none"
    size = reference[both].abs() if scale is None else scale[both].abs()
    error = (ours[both] - reference[both]).abs() / size.clip(lower=1e-300)
    assert error.max() <= RTOL, f"max relative error {error.max():.3e} at {error.idxmax()}"


def _observed(features: pd.DataFrame, token: str) -> pd.DataFrame:
    # The indicators' input as any TA library sees it: the bars the exchange delivered.
    frame = features[(features["token"] == token) & features["close"].notna()]
    return frame.reset_index(drop=True)


@pytest.mark.parametrize("token", ["BTC", "ETH", "PEPE", "USDC"])
def test_rsi_macd_atr_match_ta_once_warm(features, token):
    bars = _observed(features, token)
    close, high, low = bars["close"], bars["high"], bars["low"]
    _close_enough(bars["rsi_14"], ta.momentum.RSIIndicator(close, window=14).rsi())
    _close_enough(
        bars["atr_14"], ta.volatility.AverageTrueRange(high, low, close, window=14).average_true_range()
    )
    macd = ta.trend.MACD(close, window_slow=26, window_fast=12, window_sign=9)
    _close_enough(bars["macd"], macd.macd(), scale=close)
    _close_enough(bars["macd_signal"], macd.macd_signal(), scale=close)
    _close_enough(bars["macd_hist"], macd.macd_diff(), scale=close)
    # Warm-up: null exactly until the truncated windows are full, then always present.
    assert bars["rsi_14"].isna().sum() == bars["rsi_14"].first_valid_index() == 373
    assert bars["macd_signal"].first_valid_index() == 359 + 124 - 1


@pytest.mark.parametrize("token", ["BTC", "ETH", "PEPE", "USDC"])
def test_bollinger_matches_ta_and_a_two_pass_reference(features, token):
    bars = _observed(features, token)
    close = bars["close"]
    bands = ta.volatility.BollingerBands(close, window=20, window_dev=2)
    _close_enough(bars["bb_middle_20"], bands.bollinger_mavg())
    _close_enough(bars["bb_upper_20"], bands.bollinger_hband())
    _close_enough(bars["bb_lower_20"], bands.bollinger_lband())
    # ta's rolling std is an online update: on 1e-6 prices (PEPE) or a pegged 1.000x (USDC) its
    # %B loses digits, so %B and the width are checked against an exact two-pass stdev.
    windows = np.lib.stride_tricks.sliding_window_view(close.to_numpy(), 20)
    mean = windows.mean(axis=1)
    spread = np.sqrt(((windows - mean[:, None]) ** 2).mean(axis=1))
    pad = [np.nan] * 19
    upper, lower = pd.Series([*pad, *(mean + 2 * spread)]), pd.Series([*pad, *(mean - 2 * spread)])
    flat = upper == lower
    _close_enough(
        bars["bb_pct_b_20"],
        ((close - lower) / (upper - lower)).where(~flat),
        scale=pd.Series(1.0, index=close.index),
    )
    _close_enough(
        bars["bb_width_20"],
        (upper - lower) / pd.Series([*pad, *mean]),
        scale=pd.Series(1.0, index=close.index),
    )


@pytest.mark.parametrize("token", ["BTC", "PEPE", "USDC"])
def test_time_window_features_match_pandas_on_the_grid(features, token):
    grid = features[features["token"] == token].set_index("open_time").asfreq("1h")  # slots of the grid
    close = grid["close"]
    for hours, name in ((1, "1h"), (4, "4h"), (24, "24h")):
        _close_enough(
            grid[f"return_{name}"], close / close.shift(hours) - 1, scale=pd.Series(1.0, index=grid.index)
        )
        _close_enough(
            grid[f"log_return_{name}"],
            np.log(close / close.shift(hours)),
            scale=pd.Series(1.0, index=grid.index),
        )
    one = np.log(close / close.shift(1))
    for hours, name in ((24, "24h"), (168, "7d")):
        reference = one.rolling(hours, min_periods=math.ceil(0.8 * hours)).std() * math.sqrt(365 * 24)
        _close_enough(grid[f"realized_vol_{name}"], reference.where(close.notna()))
    typical = (grid["high"] + grid["low"] + close) / 3
    counts = close.rolling(24, min_periods=1).count()
    vwap = (typical * grid["volume"]).rolling(24, min_periods=1).sum() / grid["volume"].rolling(
        24, min_periods=1
    ).sum()
    _close_enough(grid["vwap_24h"], vwap.where((counts >= math.ceil(0.8 * 24)) & close.notna()))
    volume = grid["volume"].rolling(24, min_periods=math.ceil(0.8 * 24))
    zscore = ((grid["volume"] - volume.mean()) / volume.std()).where(close.notna())
    _close_enough(grid["volume_zscore_24h"], zscore, scale=pd.Series(1.0, index=grid.index))


@pytest.mark.parametrize("token", ["ETH", "PEPE"])
def test_beta_and_correlation_to_btc_match_pandas(features, token):
    def returns(symbol: str) -> pd.Series:
        grid = features[features["token"] == symbol].set_index("open_time")["close"].asfreq("1h")
        return np.log(grid / grid.shift(1))

    x, y = returns(token), returns("BTC").reindex(returns(token).index)
    both = x.notna() & y.notna()
    x, y = x.where(both), y.where(both)
    window = 168
    enough = x.rolling(window, min_periods=1).count() >= math.ceil(0.8 * window)
    ours = features[features["token"] == token].set_index("open_time").asfreq("1h")
    observed = ours["close"].notna()
    _close_enough(
        ours["corr_btc_7d"],
        x.rolling(window, min_periods=2).corr(y).where(enough & observed),
        scale=pd.Series(1.0, index=x.index),
    )
    beta = x.rolling(window, min_periods=2).cov(y) / y.rolling(window, min_periods=2).var()
    _close_enough(ours["beta_btc_7d"], beta.where(enough & observed), scale=pd.Series(1.0, index=x.index))


def test_truncated_ema_is_pandas_ewm_over_the_window():
    values = np.random.default_rng(7).normal(size=500)
    ours = truncated_ema(values, 0.1, 50)
    assert np.isnan(ours[:49]).all()
    for end in (49, 200, 499):
        window = pd.Series(values[end - 49 : end + 1])
        assert ours[end] == pytest.approx(window.ewm(alpha=0.1, adjust=False).mean().iloc[-1], rel=1e-13)
