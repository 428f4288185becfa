"""Classification and ranking metrics, each one beside the same metric of naive baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

EPSILON = 1e-6


def classification_metrics(up: pd.Series, probability: pd.Series) -> dict[str, float]:
    """Accuracy (at 0.5), ROC-AUC (NaN when only one class is present), log-loss and Brier."""
    y = up.astype(int).to_numpy()
    p = np.clip(probability.astype(float).to_numpy(), EPSILON, 1 - EPSILON)
    both = len(np.unique(y)) == 2
    return {
        "accuracy": float(accuracy_score(y, p >= 0.5)),
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "rows": float(len(y)),
    }


def information_coefficient(
    frame: pd.DataFrame, prediction: str, target: str, time: str = "open_time"
) -> float:
    """Spearman rank correlation between prediction and realised target across tokens, per
    timestamp (at least 3 tokens), then averaged: how well the model ranks tokens."""
    per_time = []
    for _, group in frame[[time, prediction, target]].dropna().groupby(time):
        if len(group) >= 3 and group[prediction].nunique() > 1 and group[target].nunique() > 1:
            per_time.append(group[prediction].rank().corr(group[target].rank()))
    return float(np.mean(per_time)) if per_time else float("nan")


def long_short_spread(
    frame: pd.DataFrame, prediction: str, target: str, time: str = "open_time", quantiles: int = 10
) -> float:
    """Mean realised target of the top prediction decile minus the bottom one, per timestamp
    (deciles shrink to fewer buckets with few tokens), averaged over timestamps."""
    spreads = []
    for _, group in frame[[time, prediction, target]].dropna().groupby(time):
        buckets = min(quantiles, len(group) // 2)
        if buckets < 2:
            continue
        ranked = pd.qcut(group[prediction].rank(method="first"), buckets, labels=False)
        spreads.append(group[target][ranked == buckets - 1].mean() - group[target][ranked == 0].mean())
    return float(np.mean(spreads)) if spreads else float("nan")
