"""Naive baselines every model is measured against: a model must beat the best of them."""

from __future__ import annotations

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
