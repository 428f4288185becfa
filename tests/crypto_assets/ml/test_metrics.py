import numpy as np
import pandas as pd
import pytest

from crypto_assets.ml.baselines import BASELINES, baseline_probabilities
from crypto_assets.ml.metrics import (
    classification_metrics,
    information_coefficient,
    information_coefficients,
    long_short_spread,
)


def _cross_section(seed: int = 7, times: int = 400, tokens: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "open_time": np.repeat(pd.date_range("2023-01-01", periods=times, freq="h"), tokens),
            "signal": rng.normal(size=times * tokens),
        }
    )
    frame["target"] = 0.5 * frame["signal"] + rng.normal(size=len(frame))
    return frame


def test_a_perfect_and_a_useless_classifier():
    up = pd.Series([1, 0, 1, 0, 1, 1])
    perfect = classification_metrics(up, up.astype(float))
    assert perfect["accuracy"] == 1 and perfect["roc_auc"] == 1 and perfect["brier"] < 1e-9
    coin = classification_metrics(up, pd.Series(0.5, index=up.index))
    assert coin["roc_auc"] == 0.5 and coin["brier"] == 0.25 and coin["log_loss"] == pytest.approx(np.log(2))


def test_information_coefficient_and_spread_see_a_real_signal_and_not_noise():
    frame = _cross_section()
    assert information_coefficient(frame, "signal", "target") > 0.3
    assert long_short_spread(frame, "signal", "target") > 1.0
    shuffled = frame.assign(signal=np.random.default_rng(1).permutation(frame["signal"].to_numpy()))
    assert abs(information_coefficient(shuffled, "signal", "target")) < 0.05


def test_baselines():
    test = pd.DataFrame({"return_24h": [0.1, -0.2, None]})
    train_up = pd.Series([1, 1, 0, 1])
    got = {name: baseline_probabilities(name, test, train_up, "return_24h").tolist() for name in BASELINES}
    assert got == {"always_up": [1.0, 1.0, 1.0], "yesterdays_sign": [1.0, 0.0, 0.5], "base_rate": [0.75] * 3}


def test_information_coefficients_per_group_equal_the_spearman_mean_of_each_group():
    """The vectorised IC is, per group, the mean over timestamps of Spearman's correlation (ties
    ranked by their average), skipping timestamps with under 3 rows or a constant side."""
    frame = _cross_section(times=60, tokens=6)
    frame["signal"] = frame["signal"].round(1)  # ties
    frame.loc[frame.index % 9 == 0, "target"] = np.nan
    frame.loc[frame["open_time"] == frame["open_time"].iloc[0], "signal"] = 0.5  # constant: skipped
    frame["group"] = frame["open_time"].dt.hour % 3
    found = information_coefficients(frame, "signal", "target", "open_time", ["group"])

    def by_loop(rows: pd.DataFrame) -> float:
        values = [
            cell["signal"].corr(cell["target"], method="spearman")
            for _, cell in rows.dropna().groupby("open_time")
            if len(cell) >= 3 and cell["signal"].nunique() > 1 and cell["target"].nunique() > 1
        ]
        return float(np.mean(values))

    expected = {group: by_loop(rows) for group, rows in frame.groupby("group")}
    assert found.to_dict() == pytest.approx(expected, rel=1e-12)
    assert information_coefficient(frame, "signal", "target") == pytest.approx(by_loop(frame), rel=1e-12)
    assert np.isnan(information_coefficient(frame.head(2), "signal", "target"))


def test_the_vectorised_long_short_spread_equals_a_qcut_per_timestamp():
    """The bottom and top buckets of pd.qcut over each timestamp's ranks, as the loop it replaced
    computed them (sizes where no rank sits exactly on a bucket edge)."""
    rng = np.random.default_rng(3)
    for tokens in (4, 5, 23, 32):
        frame = _cross_section(seed=tokens, times=120, tokens=tokens)
        frame.loc[rng.random(len(frame)) < 0.05, "signal"] = 0.0  # ties: ranked in order
        expected = []
        for _, group in frame.groupby("open_time"):
            buckets = min(10, len(group) // 2)
            ranked = pd.qcut(group["signal"].rank(method="first"), buckets, labels=False)
            expected.append(
                group["target"][ranked == buckets - 1].mean() - group["target"][ranked == 0].mean()
            )
        assert long_short_spread(frame, "signal", "target") == pytest.approx(np.mean(expected), rel=1e-12)
    assert np.isnan(long_short_spread(frame.iloc[:0], "signal", "target"))
