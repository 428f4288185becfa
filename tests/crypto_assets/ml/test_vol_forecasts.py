"""A day's volatility forecasts do not depend on how a range is split into runs."""

from pathlib import Path

import pandas as pd

from crypto_assets.ml import volatility as vol
from crypto_assets.ml.vol_assets import forecast_frame, vol_registry
from tests.crypto_assets.ml.test_volatility import START, garch_bars


def _window(bars: pd.DataFrame, first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
    """What vol_forecasts loads for days [first, last]: 30 days before to the day after."""
    inside = (bars["bar_time"] >= first - pd.Timedelta(days=30)) & (
        bars["bar_time"] < last + pd.Timedelta(days=2)
    )
    return bars[inside]


def test_a_range_at_once_equals_its_days_one_by_one(tmp_path: Path):
    bars = garch_bars(hours=24 * 45, tokens=("BTC", "ETH", "DOGE"))
    registry = vol_registry(tmp_path)
    model, har, _ = vol.fit_final(
        vol.volatility_frame(bars[bars["bar_time"] < START + pd.Timedelta(days=35)])
    )
    registry.save_models(
        "harx-test", {"model": model, "har": har, "ewma_lambda": 0.995}, {"gate": {"passed": True}}
    )
    registry.promote("harx-test", "test")
    days = [START + pd.Timedelta(days=d) for d in range(36, 41)]
    whole, version = forecast_frame(
        _window(bars, days[0], days[-1]), registry, days[0], days[-1] + pd.Timedelta(days=1)
    )
    alone = pd.concat(
        [forecast_frame(_window(bars, d, d), registry, d, d + pd.Timedelta(days=1))[0] for d in days],
        ignore_index=True,
    )
    assert version == "harx-test"
    assert len(whole) == 5 * 24 * 3 and whole["model_version"].eq("harx-test").all()
    pd.testing.assert_frame_equal(
        whole.sort_values(["bar_time", "token"]).reset_index(drop=True),
        alone.sort_values(["bar_time", "token"]).reset_index(drop=True),
        rtol=1e-9,
    )
