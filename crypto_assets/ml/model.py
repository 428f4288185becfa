"""Training, walk-forward evaluation against baselines, the promotion rule. Pure pandas and
scikit-learn: the Dagster assets (``ml.assets``) only read the warehouse and store the results.

Models: ``HistGradientBoostingClassifier`` (P(up over the horizon)) and ``...Regressor`` (the
forward return), one across all tokens, with the category as a categorical feature; both take
the nulls of warm-up and gaps natively.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crypto_assets.ml.baselines import BASELINES, baseline_probabilities, baseline_returns
from crypto_assets.ml.config import MlConfig
from crypto_assets.ml.metrics import classification_metrics, information_coefficient, long_short_spread
from crypto_assets.ml.splits import FoldError, walk_forward_folds
from crypto_assets.universe import CATEGORIES

if TYPE_CHECKING:  # scikit-learn is imported where a model is built (~1.5 s at import)
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

TIME = "bar_time"
MODEL = "model"


class LeakError(ValueError):
    """A feature that carries the target (the future): training refuses it."""


def training_frame(gold: pd.DataFrame, config: MlConfig) -> pd.DataFrame:
    """Rows a model may learn from: a real bar (not a gap) whose target is already known."""
    frame = gold.copy()
    frame.columns = [c.lower() for c in frame.columns]
    frame[TIME] = pd.to_datetime(frame[TIME])
    known = frame[config.target].notna() & ~frame["is_gap"].astype(bool)
    return frame[known].sort_values([TIME, "token"]).reset_index(drop=True)


def design(frame: pd.DataFrame, features: Sequence[str], categorical: Sequence[str]) -> pd.DataFrame:
    """The feature matrix: numeric features as floats, categories as fixed integer codes (the same
    code for a category in every model version, whatever the training data held)."""
    matrix = frame[list(features)].astype(float)
    for column in categorical:
        levels = CATEGORIES if column == "category" else sorted(frame[column].dropna().unique())
        matrix[column] = pd.Categorical(frame[column], categories=list(levels)).codes.astype(float)
        matrix.loc[matrix[column] < 0, column] = np.nan
    return matrix


def usable_features(frame: pd.DataFrame, config: MlConfig) -> tuple[tuple[str, ...], dict[str, str]]:
    """The configured features the data can carry: one with fewer than two distinct values (e.g.
    taker volumes, absent from 6-column files) is left out, and named with the reason."""
    left_out = {
        f: "all null" if frame[f].isna().all() else "a single value"
        for f in config.features
        if frame[f].nunique(dropna=True) < 2
    }
    return tuple(f for f in config.features if f not in left_out), left_out


def leaking_features(frame: pd.DataFrame, config: MlConfig) -> dict[str, float]:
    """Features whose rank correlation with the target is implausibly high: built from the future."""
    found: dict[str, float] = {}
    for feature in config.features:
        pair = frame[[feature, config.target]].dropna()
        if len(pair) < 30 or pair[feature].nunique() < 2:
            continue
        rho = pair[feature].rank().corr(pair[config.target].rank())
        if abs(rho) > config.leak_correlation:
            found[feature] = round(float(rho), 4)
    return found


def _models(
    config: MlConfig, features: Sequence[str]
) -> tuple[HistGradientBoostingClassifier, HistGradientBoostingRegressor]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    categorical = [len(features) + i for i in range(len(config.categorical))] or None
    common = {"random_state": config.seed, "early_stopping": False, "categorical_features": categorical}
    return (
        HistGradientBoostingClassifier(**common, **config.classifier),
        HistGradientBoostingRegressor(**common, **config.regressor),
    )


@dataclass
class Evaluation:
    """Out-of-fold predictions of the model and the baselines, and their metrics."""

    folds: list[dict[str, Any]]
    features: tuple[str, ...]  # the features used (see usable_features)
    left_out: dict[str, str]
    predictions: pd.DataFrame  # one row per test row: time, token, category, target, model and baselines
    overall: pd.DataFrame  # metric rows x predictor columns
    per_category: pd.DataFrame  # (category, metric) rows x predictor columns
    importance: dict[str, float] = field(default_factory=dict)

    def value(self, metric: str, predictor: str = MODEL) -> float:
        return float(self.overall.loc[metric, predictor])

    def best_baseline(self) -> str:
        """The baseline with the lowest Brier score (a proper score: calibration and sharpness)."""
        return str(self.overall.loc["brier", list(BASELINES)].astype(float).idxmin())


def _score(predictions: pd.DataFrame) -> pd.DataFrame:
    predictors = [MODEL, *BASELINES]
    up = predictions["up"]
    table: dict[str, dict[str, float]] = {}
    for name in predictors:
        scores = classification_metrics(up, predictions[f"p_{name}"])
        scores["ic"] = information_coefficient(predictions, f"r_{name}", "target", TIME)
        scores["long_short_spread"] = long_short_spread(predictions, f"r_{name}", "target", TIME)
        table[name] = scores
    return pd.DataFrame(table)


def evaluate(frame: pd.DataFrame, config: MlConfig, importance: bool = True) -> Evaluation:
    """Walk-forward: for each fold, fit on the purged, embargoed past, predict the fold; the
    baselines predict the same rows. Raises :class:`FoldError` with too little history and
    :class:`LeakError` when a feature carries the target."""
    leaks = leaking_features(frame, config)
    if leaks:
        raise LeakError(f"features correlate with the target beyond {config.leak_correlation}: {leaks}")
    folds = walk_forward_folds(
        frame[TIME],
        folds=config.folds,
        min_train=config.min_training,
        horizon=config.horizon,
        embargo=config.embargo,
    )
    features, left_out = usable_features(frame, config)
    matrix = design(frame, features, config.categorical)
    up = (frame[config.target] > 0).astype(int)
    pieces, described = [], []
    last_fit = None
    for fold in folds:
        train, test = fold.train_mask(frame[TIME]), fold.test_mask(frame[TIME])
        if up[train].nunique() < 2 or not test.any():
            continue
        classifier, regressor = _models(config, features)
        classifier.fit(matrix[train], up[train])
        regressor.fit(matrix[train], frame.loc[train, config.target])
        rows = frame.loc[test, [TIME, "token", "category", config.past_return]].copy()
        rows["target"], rows["up"], rows["fold"] = frame.loc[test, config.target], up[test], fold.number
        rows[f"p_{MODEL}"] = classifier.predict_proba(matrix[test])[:, 1]
        rows[f"r_{MODEL}"] = regressor.predict(matrix[test])
        for name in BASELINES:
            rows[f"p_{name}"] = baseline_probabilities(name, rows, up[train], config.past_return)
            rows[f"r_{name}"] = baseline_returns(
                name, rows, frame.loc[train, config.target], config.past_return
            )
        pieces.append(rows)
        described.append(fold.describe(train, test))
        last_fit = (classifier, matrix[test], up[test])
    if not pieces:
        raise FoldError("no fold had both classes to train on")
    predictions = pd.concat(pieces, ignore_index=True)
    overall = _score(predictions)
    per_category = pd.concat(
        {category: _score(group) for category, group in predictions.groupby("category", sort=True)},
        names=["category", "metric"],
    )
    weights: dict[str, float] = {}
    if importance and last_fit is not None:
        # Permutation importance on the last validation fold: the drop in ROC-AUC when a column
        # is shuffled (near 0: the model does not use it; negative: noise).
        classifier, x_test, y_test = last_fit
        if y_test.nunique() == 2:
            from sklearn.inspection import permutation_importance

            found = permutation_importance(
                classifier, x_test, y_test, scoring="roc_auc", n_repeats=3, random_state=config.seed
            )
            weights = {
                c: round(float(m), 5) for c, m in zip(x_test.columns, found.importances_mean, strict=True)
            }
    return Evaluation(described, features, left_out, predictions, overall, per_category, weights)


@dataclass(frozen=True)
class Gate:
    """The promotion rule's verdict, with its reasons (shown in the UI)."""

    passed: bool
    reasons: list[str]


def promotion_gate(evaluation: Evaluation, serving: dict[str, float] | None, tolerance: float) -> Gate:
    """Promote only a model better than the best baseline on the validation folds (lower Brier
    and higher ROC-AUC) and not worse than the serving model (by more than ``tolerance``)."""
    reasons: list[str] = []
    baseline = evaluation.best_baseline()
    brier, auc = evaluation.value("brier"), evaluation.value("roc_auc")
    base_brier = evaluation.value("brier", baseline)
    base_auc = max(
        evaluation.value("roc_auc", b) for b in BASELINES if not math.isnan(evaluation.value("roc_auc", b))
    )
    if not brier < base_brier:
        reasons.append(f"Brier {brier:.5f} is not below the best baseline's ({baseline}: {base_brier:.5f})")
    if not auc > base_auc:
        reasons.append(f"ROC-AUC {auc:.4f} is not above the best baseline's {base_auc:.4f}")
    if serving:
        if brier > serving["brier"] + tolerance:
            reasons.append(f"Brier {brier:.5f} is worse than the serving model's {serving['brier']:.5f}")
        if auc < serving["roc_auc"] - tolerance:
            reasons.append(f"ROC-AUC {auc:.4f} is worse than the serving model's {serving['roc_auc']:.4f}")
    return Gate(not reasons, reasons or [f"beats {baseline} (Brier {base_brier:.5f}) and the serving model"])


def fit_final(
    frame: pd.DataFrame, config: MlConfig, features: Sequence[str] | None = None
) -> tuple[HistGradientBoostingClassifier, HistGradientBoostingRegressor]:
    """Both models refit on every labelled row of the training window (what serves predictions),
    on ``features`` (default: the usable ones)."""
    features = tuple(features) if features is not None else usable_features(frame, config)[0]
    classifier, regressor = _models(config, features)
    matrix = design(frame, features, config.categorical)
    classifier.fit(matrix, (frame[config.target] > 0).astype(int))
    regressor.fit(matrix, frame[config.target])
    return classifier, regressor
