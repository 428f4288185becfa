"""The volatility forecast: each token's realised variance over the next 24 hours, from its hourly
bars, beside the baselines every risk desk starts from. Pure pandas / scikit-learn; the Dagster
assets (``ml.vol_assets``) read the lake and store the results.

Units: a *variance* here is the variance of log returns over 24 hours (the sum of the squared
hourly log returns of a day); shown as annualised volatility, ``sqrt(variance * 365)``.

- Target: ``sum(r[t+1..t+24]^2)``, the realised variance of the 24 hourly returns after bar t
  (known at t + 24h; at least 20 of them observed, scaled to 24).
- Baselines, scored on the same rows: the last 24 hours' realised variance (a random walk), an
  EWMA of squared hourly returns (RiskMetrics; its lambda chosen inside each training fold from
  :data:`EWMA_LAMBDAS`, 0.94 among them) and HAR-RV (Corsi 2009) in logs: a linear regression of
  the log target on the log 1-day, 1-week and 1-month realised variance, fitted inside each
  training fold, with the lognormal correction ``exp(s^2 / 2)`` so it forecasts the variance, not
  its median.
- Model: gradient boosting with the gamma deviance, which is twice QLIKE: it minimises the very
  loss it is judged by. Features: HAR's three, range-based estimators (Parkinson, Garman-Klass),
  the EWMA, BTC's, the category's and the market's variance, volume against its month, the last
  day's return (volatility rises after falls), hour of day and weekday.
- Scores: QLIKE (``y/f - log(y/f) - 1``: robust to noise in the realised proxy, Patton 2011) and
  the RMSE of log variance, overall and per category.

Stablecoins are left out: their risk is the peg (``peg_deviation``), and a price that sits on its
tick for a day has a realised variance of 0, which QLIKE cannot score.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crypto_assets.ml.splits import FoldError, walk_forward_folds

TIME = "bar_time"
HOURS = 24
HORIZON = pd.Timedelta(hours=HOURS)
FLOOR = 1e-10  # a daily variance below this (a 0.001 % daily vol) is taken as this, before logs
EWMA_LAMBDAS = (0.94, 0.97, 0.98, 0.99, 0.995, 0.998)
RISKMETRICS = 0.94
EWMA_WINDOW = 720  # hours: the EWMA's look-back (0.995**720 = 0.027 of the weight left out)
TARGET = "target_var_24h"
MODEL = "model"
LAST_24H = "last_24h"
EWMA = "ewma"
HAR = "har_rv"
BASELINES = (LAST_24H, EWMA, HAR)
PREDICTORS = (MODEL, *BASELINES)
HAR_INPUTS = ("log_rv_1d", "log_rv_1w", "log_rv_1m")
MIN_TRAINING_ROWS = 100
# The model's ridge penalty on standardised inputs, in rows' worth of evidence: a prior, not
# tuned on the benchmark (a year of hourly rows is ~250 k; the default run's ~10 k).
RIDGE = 10_000.0
# HAR-X: HAR's three inputs and what the literature adds to them. Range-based estimators use the
# whole hour's path, not two closes (Parkinson 1980, Garman-Klass 1980); BTC's, the category's
# and the market's variance lead a token's; volatility rises after falls (the leverage effect:
# the negative part of the last day's log return); weekends are quieter; volume leads variance.
FEATURES = (
    *HAR_INPUTS,
    "log_rv_4h",
    "log_parkinson_1d",
    "log_garman_klass_1d",
    "log_ewma",
    "log_btc_rv_1d",
    "log_category_rv_1d",
    "log_market_rv_1d",
    "falling_24h",
    "weekend",
    "volume_ratio_1m",
)
# Rolling windows in hours, with the share of them that must be observed.
WINDOWS = {"4h": (4, 1.0), "1d": (24, 0.8), "1w": (168, 0.5), "1m": (720, 0.5)}


def annualised_vol(variance: pd.Series | np.ndarray | float) -> Any:
    """A 24h variance as an annualised volatility (a fraction: 0.6 is 60 %)."""
    return np.sqrt(np.asarray(variance, dtype=float) * 365.0)


def hourly_grid(bars: pd.DataFrame) -> pd.DataFrame:
    """Every hour of every token between its first and last bar, in time order; hours without a
    bar (an outage, a gap row) have null prices. ``bars``: bar_time, token, category, open, high,
    low, close, volume (more columns are ignored)."""
    frame = bars[[TIME, "token", "category", "open", "high", "low", "close", "volume"]].copy()
    frame[TIME] = pd.to_datetime(frame[TIME], utc=True).dt.tz_convert(None)
    for column in ("open", "high", "low", "close", "volume"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame = frame.dropna(subset=["close"]).drop_duplicates([TIME, "token"], keep="last")
    pieces = []
    for token, rows in frame.groupby("token", sort=True):
        rows = rows.set_index(TIME).sort_index()
        hours = pd.date_range(rows.index.min(), rows.index.max(), freq="h")
        full = rows.reindex(hours)
        full["token"], full["category"] = token, rows["category"].iloc[-1]
        pieces.append(full.rename_axis(TIME).reset_index())
    if not pieces:
        return frame.iloc[0:0]
    return pd.concat(pieces, ignore_index=True)


def _log(values: pd.Series) -> pd.Series:
    return np.log(values.clip(lower=FLOOR))


def finite_ewma(values: pd.Series, lam: float, window: int = EWMA_WINDOW) -> pd.Series:
    """The EWMA of the last ``window`` observed values (weights ``lam**k``, normalised to 1).

    From the recursion ``y[n] = lam y[n-1] + (1 - lam) x[n]`` (``y[0] = x[0]``) over the observed
    values: ``y[n] - lam**window y[n-window]`` is exactly the last ``window`` terms, whatever the
    start; before ``window`` values, ``y[n] - lam**(n+1) x[0]`` is all of them. An infinite EWMA
    would depend on where the loaded history starts, so a day forecast alone and inside a range
    would differ (at lambda 0.995 by ~3 % a month in); this one does not once ``window`` values
    precede. An outage hour is skipped (neither a zero return nor a restart: it carries the last
    value); null before ``HOURS`` observations."""
    observed = values.dropna()
    if observed.empty:
        return pd.Series(np.nan, index=values.index)
    x = observed.to_numpy(float)
    y = observed.ewm(alpha=1 - lam, adjust=False).mean().to_numpy()
    count = np.arange(1, len(x) + 1)
    earlier = np.concatenate((np.full(window, np.nan), y))[: len(y)]
    full = count > window
    total = np.where(full, y - lam**window * earlier, y - lam**count * x[0])
    weight = np.where(full, 1 - lam**window, 1 - lam**count)
    smoothed = pd.Series(total / weight, index=observed.index).where(count >= HOURS)
    return smoothed.reindex(values.index).ffill().where(values.notna().cumsum() >= HOURS)


def _token_features(rows: pd.DataFrame) -> pd.DataFrame:
    """Per-token columns of one token's hourly grid (time-ordered, one row per hour)."""
    out = pd.DataFrame(index=rows.index)
    log_close = np.log(rows["close"])
    r = log_close.diff()
    r2 = r**2
    for name, (hours, share) in WINDOWS.items():
        out[f"rv_{name}"] = r2.rolling(hours, min_periods=max(1, math.ceil(hours * share))).mean() * HOURS
    log_range = np.log(rows["high"] / rows["low"])
    parkinson = log_range**2 / (4 * math.log(2))
    garman_klass = 0.5 * log_range**2 - (2 * math.log(2) - 1) * np.log(rows["close"] / rows["open"]) ** 2
    out["parkinson_1d"] = parkinson.rolling(HOURS, min_periods=20).mean() * HOURS
    out["garman_klass_1d"] = garman_klass.clip(lower=0).rolling(HOURS, min_periods=20).mean() * HOURS
    for lam in EWMA_LAMBDAS:
        out[f"ewma_{lam}"] = finite_ewma(r2, lam) * HOURS
    volume = rows["volume"]
    out["volume_ratio_1m"] = np.log(
        (volume.rolling(HOURS, min_periods=20).mean() / volume.rolling(720, min_periods=360).mean()).clip(
            lower=1e-6
        )
    )
    out["return_24h"] = log_close - log_close.shift(HOURS)
    # The target: the next 24 hours' squared returns (a reversed rolling mean, shifted onto t).
    ahead = r2[::-1].rolling(HOURS, min_periods=20).mean()[::-1].shift(-1) * HOURS
    out[TARGET] = ahead
    return out


def volatility_frame(bars: pd.DataFrame, stablecoins: Sequence[str] = (), btc: str = "BTC") -> pd.DataFrame:
    """Features and target per token and hour (see the module's docstring), one row per hour of
    each non-stablecoin token's grid; a row at t uses bars up to t only, its target the 24 after."""
    grid = hourly_grid(bars)
    grid = grid[~grid["token"].isin(set(stablecoins))].reset_index(drop=True)
    if grid.empty:
        return grid.assign(**{c: pd.Series(dtype=float) for c in (*FEATURES, TARGET)})
    parts = [_token_features(rows) for _, rows in grid.groupby("token", sort=False)]
    frame = pd.concat([grid, pd.concat(parts)], axis=1)
    for name in ("rv_4h", "rv_1d", "rv_1w", "rv_1m", "parkinson_1d", "garman_klass_1d"):
        frame[f"log_{name}"] = _log(frame[name])
    frame["log_ewma"] = _log(frame[f"ewma_{RISKMETRICS}"])
    # Cross-asset: BTC's, the category's and the market's (mean log) variance of the same hour.
    btc_rv = frame.loc[frame["token"] == btc].set_index(TIME)["log_rv_1d"]
    frame["log_btc_rv_1d"] = frame[TIME].map(btc_rv)
    frame["log_category_rv_1d"] = frame.groupby(["category", TIME])["log_rv_1d"].transform("mean")
    frame["log_market_rv_1d"] = frame.groupby(TIME)["log_rv_1d"].transform("mean")
    frame["falling_24h"] = frame["return_24h"].clip(upper=0)
    frame["weekend"] = (frame[TIME].dt.weekday >= 5).astype(float)
    frame["hour"] = frame[TIME].dt.hour.astype(float)
    frame["weekday"] = frame[TIME].dt.weekday.astype(float)
    return frame


def qlike(realised: np.ndarray, forecast: np.ndarray) -> float:
    ratio = np.asarray(realised, dtype=float) / np.asarray(forecast, dtype=float)
    return float(np.mean(ratio - np.log(ratio) - 1.0))


def rmse_log(realised: np.ndarray, forecast: np.ndarray) -> float:
    error = np.log(np.asarray(realised, dtype=float)) - np.log(np.asarray(forecast, dtype=float))
    return float(np.sqrt(np.mean(error**2)))


def scores(rows: pd.DataFrame) -> pd.DataFrame:
    """QLIKE, RMSE of log variance and the row count, metric rows x predictor columns."""
    return pd.DataFrame(
        {
            p: {
                "qlike": qlike(rows[TARGET], rows[p]),
                "rmse_log_var": rmse_log(rows[TARGET], rows[p]),
                "rows": float(len(rows)),
            }
            for p in PREDICTORS
        }
    )


@dataclass(frozen=True)
class LogLinear:
    """A regression of the log target on ``columns`` (logs of variances, mostly), forecasting
    ``exp(x b) * mean(exp(residuals))``: Duan's (1983) smearing estimate of the mean, so the
    variance and not its median (``exp(x b)`` alone; the forecast QLIKE scores). The lognormal
    ``exp(s^2 / 2)`` assumes normal residuals; a market with jumps has fatter ones, and
    smearing is also the scale that minimises QLIKE on the training rows. A missing input
    takes its training mean."""

    columns: tuple[str, ...]
    coefficients: tuple[float, ...]
    means: tuple[float, ...]
    log_smearing: float

    @classmethod
    def fit(
        cls, rows: pd.DataFrame, columns: Sequence[str], ridge: float = 0.0, free: Sequence[str] = ()
    ) -> LogLinear:
        """Least squares, with a ``ridge`` penalty on the standardised coefficients of the
        columns not in ``free`` (never the intercept): a fixed amount of shrinkage that matters
        on a few weeks of rows (the default run's) and fades on a year's."""
        means = rows[list(columns)].astype(float).mean().fillna(0.0)
        x = cls._matrix(rows, columns, means.to_numpy())
        y = np.log(rows[TARGET].to_numpy(float))
        scale = x[:, 1:].std(axis=0)
        scale[scale == 0] = 1.0
        z = np.column_stack([np.ones(len(x)), (x[:, 1:] - means.to_numpy()) / scale])
        penalty = np.diag([0.0, *(0.0 if c in free else ridge for c in columns)])
        gamma = np.linalg.solve(z.T @ z + penalty, z.T @ y)
        beta = np.concatenate(([gamma[0] - (gamma[1:] * means.to_numpy() / scale).sum()], gamma[1:] / scale))
        residuals = y - x @ beta
        smearing = float(np.log(np.mean(np.exp(residuals))))
        return cls(tuple(columns), tuple(map(float, beta)), tuple(map(float, means)), smearing)

    @staticmethod
    def _matrix(rows: pd.DataFrame, columns: Sequence[str], means: np.ndarray) -> np.ndarray:
        values = rows[list(columns)].to_numpy(float)
        values = np.where(np.isnan(values), means, values)
        return np.column_stack([np.ones(len(rows)), values])

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        x = self._matrix(rows, self.columns, np.asarray(self.means))
        return np.exp(x @ np.asarray(self.coefficients) + self.log_smearing)

    def describe(self) -> dict[str, float]:
        return {
            name: round(b, 5) for name, b in zip(("intercept", *self.columns), self.coefficients, strict=True)
        }


def fit_har(rows: pd.DataFrame) -> LogLinear:
    """HAR-RV (Corsi 2009) in logs."""
    return LogLinear.fit(rows, HAR_INPUTS)


def fit_model(rows: pd.DataFrame, features: Sequence[str] = FEATURES, ridge: float = RIDGE) -> LogLinear:
    """The model: HAR-X, HAR extended with ``features`` (see :data:`FEATURES`), the extensions
    shrunk by ``ridge`` and HAR's own terms not: on little data it stays close to HAR, on a
    year of hours the extensions speak."""
    return LogLinear.fit(rows, features, ridge, free=HAR_INPUTS)


def best_lambda(rows: pd.DataFrame) -> float:
    """The EWMA decay with the lowest QLIKE on ``rows`` (training rows: chosen in the fold)."""
    losses = {lam: qlike(rows[TARGET], rows[f"ewma_{lam}"]) for lam in EWMA_LAMBDAS}
    return min(losses, key=lambda lam: (losses[lam], lam))


def scorable(frame: pd.DataFrame) -> pd.Series:
    """Rows every predictor can forecast and QLIKE can score: a positive target, HAR's inputs and
    every EWMA present."""
    needed = [*HAR_INPUTS, "rv_1d", *(f"ewma_{lam}" for lam in EWMA_LAMBDAS)]
    return (frame[TARGET] > 0) & frame[needed].notna().all(axis=1)


@dataclass
class VolEvaluation:
    """Out-of-fold forecasts of the model and the baselines on the same rows, and their scores."""

    folds: list[dict[str, Any]]
    predictions: pd.DataFrame  # bar_time, token, category, fold, target and one column per predictor
    overall: pd.DataFrame
    per_category: pd.DataFrame  # (category, metric) rows x predictors
    fit_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def value(self, metric: str, predictor: str = MODEL) -> float:
        return float(self.overall.loc[metric, predictor])

    def best_baseline(self, metric: str = "qlike") -> str:
        return str(self.overall.loc[metric, list(BASELINES)].astype(float).idxmin())

    def categories_won(self, against: str = HAR) -> list[str]:
        table = self.per_category.xs("qlike", level="metric")
        return sorted(table.index[table[MODEL] < table[against]])


def evaluate(
    frame: pd.DataFrame,
    *,
    folds: int,
    min_training: pd.Timedelta,
    embargo: pd.Timedelta,
    features: Sequence[str] = FEATURES,
    ridge: float = RIDGE,
    shuffle_target: bool = False,
    seed: int = 0,
) -> VolEvaluation:
    """Walk-forward over ``frame`` (from :func:`volatility_frame`): each fold fits the model,
    HAR's regression and the EWMA's lambda on the past up to a purge of the 24h horizon (and the
    embargoes), then all four forecast the fold's rows. ``shuffle_target`` permutes the training
    targets (a leakage test: no skill may survive it). Raises :class:`FoldError` with too little
    history."""
    rows = frame[scorable(frame)].sort_values([TIME, "token"]).reset_index(drop=True)
    if rows.empty:
        raise FoldError(
            "no hour has both a known next-24h variance and the baselines' look-back (HAR's month"
            " needs 15 days of hourly bars) yet"
        )
    plan = walk_forward_folds(
        rows[TIME], folds=folds, min_train=min_training, horizon=HORIZON, embargo=embargo
    )
    rng = np.random.default_rng(seed)
    pieces, described, fit_seconds = [], [], 0.0
    for fold in plan:
        train, test = fold.train_mask(rows[TIME]), fold.test_mask(rows[TIME])
        if train.sum() < MIN_TRAINING_ROWS or not test.any():
            continue
        train_rows = rows[train]
        if shuffle_target:
            train_rows = train_rows.assign(**{TARGET: rng.permutation(train_rows[TARGET].to_numpy())})
        started = time.perf_counter()
        model = fit_model(train_rows, features, ridge)
        fit_seconds += time.perf_counter() - started
        har = fit_har(train_rows)
        lam = best_lambda(train_rows)
        test_rows = rows[test]
        out = test_rows[[TIME, "token", "category", TARGET]].copy()
        out["fold"] = fold.number
        out[MODEL] = model.predict(test_rows)
        out[LAST_24H] = test_rows["rv_1d"].clip(lower=FLOOR)
        out[EWMA] = test_rows[f"ewma_{lam}"].clip(lower=FLOOR)
        out[HAR] = har.predict(test_rows)
        pieces.append(out)
        described.append({**fold.describe(train, test), "ewma_lambda": lam, "har": har.describe()})
    if not pieces:
        raise FoldError(f"no fold had {MIN_TRAINING_ROWS} training rows and a test row")
    predictions = pd.concat(pieces, ignore_index=True)
    per_category = pd.concat(
        {c: scores(g) for c, g in predictions.groupby("category", sort=True)}, names=["category", "metric"]
    )
    return VolEvaluation(described, predictions, scores(predictions), per_category, fit_seconds)


@dataclass(frozen=True)
class VolGate:
    passed: bool
    reasons: list[str]


def promotion_gate(evaluation: VolEvaluation, serving: dict[str, float] | None, tolerance: float) -> VolGate:
    """Serve only a model with a lower QLIKE and a lower RMSE of log variance than every baseline
    on the validation folds, and not worse than the serving model (by more than ``tolerance``,
    relative)."""
    reasons: list[str] = []
    for metric, label in (("qlike", "QLIKE"), ("rmse_log_var", "RMSE of log variance")):
        best = evaluation.best_baseline(metric)
        mine, theirs = evaluation.value(metric), evaluation.value(metric, best)
        if not mine < theirs:
            reasons.append(f"{label} {mine:.4f} is not below the best baseline's ({best}: {theirs:.4f})")
        if serving and mine > serving[metric] * (1 + tolerance):
            reasons.append(f"{label} {mine:.4f} is worse than the serving model's {serving[metric]:.4f}")
    if reasons:
        return VolGate(False, reasons)
    best = evaluation.best_baseline()
    return VolGate(
        True,
        [
            f"QLIKE {evaluation.value('qlike'):.4f} beats the best baseline ({best}:"
            f" {evaluation.value('qlike', best):.4f}); RMSE of log variance"
            f" {evaluation.value('rmse_log_var'):.4f} vs {evaluation.value('rmse_log_var', evaluation.best_baseline('rmse_log_var')):.4f}"
        ],
    )


def fit_final(
    frame: pd.DataFrame, features: Sequence[str] = FEATURES, ridge: float = RIDGE
) -> tuple[LogLinear, LogLinear, float]:
    """The model, HAR and the EWMA's lambda refit on every scorable row (what serves)."""
    rows = frame[scorable(frame)]
    return fit_model(rows, features, ridge), fit_har(rows), best_lambda(rows)


def forecast(frame: pd.DataFrame, model: LogLinear | None, har: LogLinear | None, lam: float) -> pd.DataFrame:
    """Per row of ``frame`` with the last day's variance: the served model's 24h variance
    forecast (null without a model) and the baselines' beside it (HAR null without a fit or its
    inputs), and the realised variance where the next 24 hours are known."""
    frame = frame[frame["rv_1d"].notna()]
    out = frame[[TIME, "token", "category"]].copy()
    out[MODEL] = model.predict(frame) if model is not None and len(frame) else np.nan
    out[LAST_24H] = frame["rv_1d"].clip(lower=FLOOR)
    out[EWMA] = frame[f"ewma_{lam}"].clip(lower=FLOOR)
    has_inputs = frame[list(HAR_INPUTS)].notna().all(axis=1)
    out[HAR] = np.nan
    if har is not None and has_inputs.any():
        out.loc[has_inputs, HAR] = har.predict(frame[has_inputs])
    out[TARGET] = frame[TARGET]
    return out.reset_index(drop=True)
