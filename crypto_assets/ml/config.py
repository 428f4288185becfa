"""The ``ml:`` section of pipeline.yaml, validated when the code location loads."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from crypto_assets.pipeline_config import DEFAULT_PIPELINE_PATH, PipelineConfigError, parse_duration


@dataclass(frozen=True)
class MlConfig:
    """Built by :func:`parse_ml_config` (every field documented in pipeline.yaml's ``ml:``)."""

    table: str
    target: str
    horizon: pd.Timedelta
    past_return: str
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    training_window: pd.Timedelta
    min_training: pd.Timedelta
    folds: int
    embargo: pd.Timedelta
    seed: int
    classifier: dict[str, Any]
    regressor: dict[str, Any]
    promotion_tolerance: float
    leak_correlation: float
    train_cron: str
    volatility: VolConfig

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.features, *self.categorical)


@dataclass(frozen=True)
class VolConfig:
    """``ml.volatility``: the volatility forecast's training (see pipeline.yaml)."""

    training_window: pd.Timedelta
    min_training: pd.Timedelta
    folds: int
    embargo: pd.Timedelta
    ridge: float
    promotion_tolerance: float


def parse_vol_config(section: dict[str, Any]) -> VolConfig:
    folds = int(section.get("folds", 4))
    ridge = float(section.get("ridge", 10_000))
    if folds < 1:
        raise PipelineConfigError("ml.volatility.folds: at least 1")
    if ridge < 0:
        raise PipelineConfigError("ml.volatility.ridge: 0 or more")
    return VolConfig(
        training_window=_duration(section, "training_window", "365d", "ml.volatility."),
        min_training=_duration(section, "min_training", "7d", "ml.volatility."),
        folds=folds,
        embargo=_duration(section, "embargo", "24h", "ml.volatility."),
        ridge=ridge,
        promotion_tolerance=float(section.get("promotion_tolerance", 0.002)),
    )


def _duration(section: dict, key: str, default: str, prefix: str = "ml.") -> pd.Timedelta:
    return pd.Timedelta(seconds=parse_duration(str(section.get(key, default)), f"{prefix}{key}"))


def parse_ml_config(raw: dict[str, Any]) -> MlConfig:
    section = raw.get("ml") or {}
    features = tuple(str(f) for f in section.get("features") or ())
    if not features:
        raise PipelineConfigError("ml.features: at least one feature")
    target = str(section.get("target", "target_return_24h"))
    if not target.startswith("target_"):
        raise PipelineConfigError(f"ml.target: {target!r} is not a gold target column (target_...)")
    leaked = [f for f in features if f.startswith("target_")]
    if leaked:
        raise PipelineConfigError(f"ml.features: {leaked} are targets (the future), never features")
    folds = int(section.get("folds", 4))
    if folds < 1:
        raise PipelineConfigError("ml.folds: at least 1")
    return MlConfig(
        table=str(section.get("table", "gold_market_features")),
        target=target,
        horizon=_duration(section, "horizon", "24h"),
        past_return=str(section.get("past_return", "return_24h")),
        features=features,
        categorical=tuple(str(c) for c in section.get("categorical") or ()),
        training_window=_duration(section, "training_window", "365d"),
        min_training=_duration(section, "min_training", "30d"),
        folds=folds,
        embargo=_duration(section, "embargo", "24h"),
        seed=int(section.get("seed", 20231)),
        classifier=dict(section.get("classifier") or {}),
        regressor=dict(section.get("regressor") or {}),
        promotion_tolerance=float(section.get("promotion_tolerance", 0.002)),
        leak_correlation=float(section.get("leak_correlation", 0.5)),
        train_cron=str(section.get("train_cron", "0 3 * * 1")),
        volatility=parse_vol_config(section.get("volatility") or {}),
    )


def load_ml_config(path: str | Path | None = None) -> MlConfig:
    chosen = Path(path or os.environ.get("PIPELINE_CONFIG") or DEFAULT_PIPELINE_PATH)
    with open(chosen, encoding="utf-8") as handle:
        return parse_ml_config(yaml.safe_load(handle) or {})
