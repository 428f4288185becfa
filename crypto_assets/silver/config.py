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
from crypto_assets.silver.transformers import BTC, Feature, FeatureColumn, FeatureContext, build_feature
from crypto_assets.silver.utils import Grid, Recursion, bar_at, per_token, rolling_count

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
        """Bars (with look-back rows) -> bars with every feature and ``history_bars``: one
        per-token numpy pass for the windowed and recursive features (with BTC's 1-bar log
        return joined by slot, for the betas), then the row-wise Spark transforms."""
        numpy_features = [f for f in self.features if f.recursion is not None or f.windows is not None]
        columns = [c.name for f in numpy_features for c in f.columns]
        recursions = [f.recursion for f in numpy_features if f.recursion is not None]
        windows = [f.windows for f in numpy_features if f.windows is not None]
        lookback = self.lookback_bars

        def grid_features(grid: Grid) -> dict[str, np.ndarray]:
            out: dict[str, np.ndarray] = {HISTORY: rolling_count(grid.observed, lookback)}
            for compute in windows:
                out.update(compute(grid))
            return out

        frame = per_token(
            bars.join(F.broadcast(btc_returns(bars, self.interval_seconds)), on="open_time", how="left"),
            [*columns, HISTORY],
            self.interval_seconds,
            recursion=_combined(recursions) if recursions else None,
            windows=grid_features,
            integer_columns=(HISTORY,),
        )
        for feature in self.features:
            if feature.transform is not None:
                frame = feature.transform(frame)
        return frame.select(*BAR_COLUMNS, HISTORY, *[c.name for c in self.columns])


def btc_returns(bars: DataFrame, interval_seconds: int) -> DataFrame:
    """BTC's 1-bar log return per slot (``open_time``, ``_btc``): null across a missing bar."""
    btc = bars.where(F.col("token") == BTC).select("token", "open_time", "close")
    change = F.log(F.col("close") / bar_at("close", 1, interval_seconds))
    return btc.select("open_time", change.alias("_btc"))


def _combined(recursions: list[Recursion]) -> Recursion:
    def compute(bars: pd.DataFrame) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for recursion in recursions:
            out.update(recursion(bars))
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
