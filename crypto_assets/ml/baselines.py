"""Naive baselines every model is measured against: a model must beat the best of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd

ALWAYS_UP = "always_up"
YESTERDAYS_SIGN = "yesterdays_sign"
BASE_RATE = "base_rate"
BASELINES = (ALWAYS_UP, YESTERDAYS_SIGN, BASE_RATE)


def baseline_probabilities(name: str, test: pd.DataFrame, train_up: pd.Series, past_return: str) -> pd.Series:
    """P(up) of baseline ``name`` on ``test`` rows: always up (1), the sign of the trailing return
    (``past_return``, known at prediction time; 0.5 when unknown), or the training set's share of
    up moves."""
    if name == ALWAYS_UP:
        return pd.Series(1.0, index=test.index)
    if name == YESTERDAYS_SIGN:
        past = test[past_return]
        return (past > 0).astype(float).where(past.notna(), 0.5)
    if name == BASE_RATE:
        return pd.Series(float(train_up.mean()) if len(train_up) else 0.5, index=test.index)
    raise ValueError(f"unknown baseline {name!r}; one of {BASELINES}")


def baseline_returns(name: str, test: pd.DataFrame, train_target: pd.Series, past_return: str) -> pd.Series:
    """Predicted forward return of a baseline: momentum (the trailing return), or the training mean."""
    if name == YESTERDAYS_SIGN:
        return test[past_return]
    return pd.Series(float(train_target.mean()) if len(train_target) else 0.0, index=test.index)


# A token's own rate is shrunk toward every token's with this many bars' weight: a token listed
# yesterday gets the market's rate, not the share of its first few hours.
PRIOR_WEIGHT = 24.0


def last_known_day(day: date, horizon: pd.Timedelta) -> date:
    """The last UTC day all of whose targets are known at ``day``'s start: a target of the bar at
    t is known at t + horizon, so every bar of day d is known once d + 1 day + horizon <= day."""
    moment = pd.Timestamp(day) - horizon - pd.Timedelta(days=1)
    return moment.floor("D").date()


def rolling_base_rates(
    known: pd.DataFrame, tokens: Sequence[str], days: Sequence[date], horizon: pd.Timedelta
) -> pd.DataFrame:
    """Per token and day D of ``days``: the share of up moves (``up_rate``) and the mean target
    (``mean_return``) among the targets known at D's start (see :func:`last_known_day`), each
    token's shrunk toward every token's by :data:`PRIOR_WEIGHT` bars; 0.5 and 0.0 when nothing is
    known. ``known`` holds per token and day: ``ups``, ``n`` and ``total`` (sum of targets); a
    token of ``tokens`` without any gets every token's rate.

    A day's value depends only on the days before it, never on the range it is computed in: a
    610-day run and 610 single-day runs give the same rates."""
    wanted = pd.DataFrame(
        [(t, d, pd.Timestamp(last_known_day(d, horizon))) for t in sorted(set(tokens)) for d in days],
        columns=["token", "dt", "cutoff"],
    )
    if wanted.empty:
        return pd.DataFrame(columns=["token", "dt", "up_rate", "mean_return"])
    if known.empty:
        return wanted.assign(up_rate=0.5, mean_return=0.0)[["token", "dt", "up_rate", "mean_return"]]
    daily = known.assign(day=pd.to_datetime(known["dt"])).sort_values("day")
    per_token = (
        daily.groupby("token")[["ups", "n", "total"]].cumsum().assign(token=daily["token"], day=daily["day"])
    )
    pooled = daily.groupby("day")[["ups", "n", "total"]].sum().cumsum().reset_index()
    merged = pd.merge_asof(
        wanted.sort_values("cutoff"), per_token.sort_values("day"), left_on="cutoff", right_on="day",
        by="token", direction="backward",
    )  # fmt: skip
    merged = pd.merge_asof(
        merged.sort_values("cutoff"), pooled.sort_values("day"), left_on="cutoff", right_on="day",
        direction="backward", suffixes=("", "_all"),
    )  # fmt: skip
    for column in ("ups", "n", "total", "ups_all", "n_all", "total_all"):
        merged[column] = merged[column].fillna(0.0).astype(float)
    pooled_rate = (merged["ups_all"] / merged["n_all"]).where(merged["n_all"] > 0, 0.5)
    pooled_mean = (merged["total_all"] / merged["n_all"]).where(merged["n_all"] > 0, 0.0)
    merged["up_rate"] = (merged["ups"] + PRIOR_WEIGHT * pooled_rate) / (merged["n"] + PRIOR_WEIGHT)
    merged["mean_return"] = (merged["total"] + PRIOR_WEIGHT * pooled_mean) / (merged["n"] + PRIOR_WEIGHT)
    return (
        merged[["token", "dt", "up_rate", "mean_return"]].sort_values(["dt", "token"]).reset_index(drop=True)
    )
