"""Silver's feature plan: config/pipeline.yaml resolved into transformers, columns and look-backs.

Pure Python apart from the transforms it hands out; built at import time of the definitions, so
an unknown feature or a bad parameter stops the code location from loading with a clear error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crypto_assets.pipeline_config import (
    DAY_SECONDS,
    PipelineConfig,
    PipelineConfigError,
    load_pipeline_config,
)
from crypto_assets.silver.transformers import Feature, FeatureColumn, FeatureContext, build_feature
from crypto_assets.silver.utils import Recursion, bar_at, per_token, time_window

# Columns every feature table starts with: the bar itself, as doubles.
BAR_COLUMNS = (
    "token", "category", "symbol", "open_time", "open", "high", "low", "close", "volume",
    "quote_volume", "trade_count", "taker_buy_base_volume", "vwap", "bar_source", "bars_observed",
    "is_complete", "is_gap", "realized_vol_intrabar",
)  # fmt: skip
HISTORY = "history_bars"
# Bar columns that features read as doubles (the bars keep exact decimals).
DOUBLE_BAR_COLUMNS = ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_base_volume")


def feature_input(bars: DataFrame) -> DataFrame:
    """``silver_bars_<interval>`` as features read it: the bar columns, prices and volumes as doubles."""
    return bars.select(
        *[F.col(c).cast("double").alias(c) if c in DOUBLE_BAR_COLUMNS else F.col(c) for c in BAR_COLUMNS]
    )


@dataclass(frozen=True)
class FeaturePlan:
    """What silver computes at one interval."""

    interval: str
    interval_seconds: int
    features: tuple[Feature, ...]
    lookback_bars: int

    @property
    def columns(self) -> tuple[FeatureColumn, ...]:
        return tuple(c for f in self.features for c in f.columns)

    @property
    def lookback_days(self) -> int:
        """Whole days of earlier partitions a day needs so that every window is full."""
        return math.ceil(self.lookback_bars * self.interval_seconds / DAY_SECONDS)

    def apply(self, bars: DataFrame) -> DataFrame:
        """Bars (with look-back rows) -> bars with every feature and ``history_bars``."""
        frame = bars.withColumn(
            "_log_return", F.log(F.col("close") / bar_at("close", 1, self.interval_seconds))
        )
        recursions = [f for f in self.features if f.recursion is not None]
        if recursions:
            frame = per_token(frame, [c.name for f in recursions for c in f.columns], _combined(recursions))
        for feature in self.features:
            if feature.transform is not None:
                frame = feature.transform(frame)
        history = F.count("close").over(time_window(self.lookback_bars, self.interval_seconds))
        return frame.withColumn(HISTORY, history.cast("int")).select(
            *BAR_COLUMNS, HISTORY, *[c.name for c in self.columns]
        )


def _combined(features: list[Feature]) -> Recursion:
    def compute(bars: pd.DataFrame) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for feature in features:
            assert feature.recursion is not None
            out.update(feature.recursion(bars))
        return out

    return compute


def build_plan(interval: str, config: PipelineConfig) -> FeaturePlan:
    ctx = FeatureContext(interval, config)
    features = []
    for line in config.features.get(interval, ()):
        try:
            features.append(build_feature(ctx, line.feature, line.params))
        except ValueError as exc:
            raise PipelineConfigError(f"silver.feature_intervals.{interval}: {exc}") from None
    names = [c.name for f in features for c in f.columns]
    clashes = sorted({n for n in names if names.count(n) > 1} | (set(names) & {*BAR_COLUMNS, HISTORY}))
    if clashes:
        raise PipelineConfigError(f"silver.feature_intervals.{interval}: columns defined twice: {clashes}")
    lookback = max([f.lookback_bars for f in features] or [1])
    return FeaturePlan(interval, ctx.seconds, tuple(features), lookback)


@lru_cache(maxsize=8)
def feature_plans() -> dict[str, FeaturePlan]:
    config = load_pipeline_config()
    return {interval: build_plan(interval, config) for interval in config.features}
