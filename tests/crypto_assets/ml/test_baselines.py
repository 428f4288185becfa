"""The base rate the predictions fall back on: per token, from what was known at each day's start,
the same whichever way a range is split into runs."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from crypto_assets.ml.baselines import PRIOR_WEIGHT, last_known_day, rolling_base_rates

DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(40)]
H24 = pd.Timedelta("24h")


@pytest.fixture
def known() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        [
            (t, d, float(rng.integers(0, 25)), 24.0, float(rng.normal(0, 0.01)))
            for t in ("BTC", "ETH")
            for d in DAYS
        ],
        columns=["token", "dt", "ups", "n", "total"],
    )


def test_a_range_at_once_equals_its_days_one_by_one(known: pd.DataFrame):
    """The bug: a 610-day run served 0.5 everywhere (the base rate known before the *range*), the
    same day alone 0.4643."""
    days = DAYS[10:]
    whole = rolling_base_rates(known, ["BTC", "ETH", "SOL"], days, H24)
    alone = pd.concat([rolling_base_rates(known, ["BTC", "ETH", "SOL"], [d], H24) for d in days])
    pd.testing.assert_frame_equal(whole, alone.sort_values(["dt", "token"]).reset_index(drop=True))
    assert whole["up_rate"].nunique() > 20  # it moves from day to day


def test_only_targets_known_at_the_days_start_count(known: pd.DataFrame):
    day = DAYS[20]
    # 24h targets of day D-1's bars end inside day D: not known at its start.
    assert last_known_day(day, H24) == day - timedelta(days=2)
    assert last_known_day(day, pd.Timedelta("1h")) == day - timedelta(days=2)
    before = rolling_base_rates(known, ["BTC"], [day], H24)
    changed = known.copy()
    changed.loc[changed["dt"] >= day - timedelta(days=1), "ups"] = 0.0  # the future, and D-1
    assert rolling_base_rates(changed, ["BTC"], [day], H24).equals(before)
    seen = known[(known["token"] == "BTC") & (known["dt"] <= day - timedelta(days=2))]
    pooled = known[known["dt"] <= day - timedelta(days=2)]
    pooled_rate = pooled["ups"].sum() / pooled["n"].sum()
    expected = (seen["ups"].sum() + PRIOR_WEIGHT * pooled_rate) / (seen["n"].sum() + PRIOR_WEIGHT)
    assert before["up_rate"].iloc[0] == pytest.approx(expected)


def test_a_new_token_gets_every_tokens_rate_and_nothing_known_gives_a_coin_flip(known: pd.DataFrame):
    rates = rolling_base_rates(known, ["BTC", "ETH", "NEW"], [DAYS[5]], H24).set_index("token")
    pooled = known[known["dt"] <= DAYS[3]]
    assert rates.loc["NEW", "up_rate"] == pytest.approx(pooled["ups"].sum() / pooled["n"].sum())
    empty = known.iloc[0:0]
    first = rolling_base_rates(empty, ["BTC"], [DAYS[0]], H24)
    assert first[["up_rate", "mean_return"]].iloc[0].tolist() == [0.5, 0.0]
    assert rolling_base_rates(known, ["BTC"], [DAYS[1]], H24)["up_rate"].iloc[0] == 0.5  # nothing known yet
