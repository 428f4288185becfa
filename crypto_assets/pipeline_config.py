"""The refinement settings (``config/pipeline.yaml``): bronze's gap policy, silver's bars and
features, gold's targets. Parsed and validated once, at import time of the definitions, so a
bad value stops ``dagster dev`` / ``crypto-analytics run`` before any run starts.

Pure Python (no Dagster, no Spark).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PIPELINE_PATH = Path(__file__).parent / "config" / "pipeline.yaml"
GAP_POLICIES = ("leave_missing", "carry_forward")
DAY_SECONDS = 86_400
_DURATION = re.compile(r"^(\d+)([mhd])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": DAY_SECONDS}


FRESHNESS_LAYERS = ("raw", "bronze", "silver", "gold")


class PipelineConfigError(ValueError):
    """A bad value in the pipeline config, named with its place in the file."""


def parse_duration(value: str, where: str = "duration") -> int:
    """``"15m"``, ``"4h"``, ``"7d"`` -> seconds."""
    match = _DURATION.match(str(value).strip())
    if not match or int(match[1]) == 0:
        raise PipelineConfigError(f"{where}: {value!r} is not a duration like 5m, 4h or 7d")
    return int(match[1]) * _UNIT_SECONDS[match[2]]


def bars_in(duration: str, interval: str, where: str) -> int:
    """How many ``interval`` bars make ``duration``; it must be a whole number of them."""
    seconds, step = parse_duration(duration, where), parse_duration(interval, where)
    if seconds % step:
        raise PipelineConfigError(f"{where}: {duration} is not a whole number of {interval} bars")
    return seconds // step


@dataclass(frozen=True)
class FeatureLine:
    """One configured feature: the transformer's name and its parameters."""

    feature: str
    params: dict[str, Any]


@dataclass(frozen=True)
class PipelineConfig:
    gap_policy: str
    max_carry_seconds: int
    bar_intervals: tuple[str, ...]
    ema_tolerance: float
    gap_allowance: float
    stablecoins: tuple[str, ...]
    peg_threshold: float
    min_fraction: float
    max_null_rate: float
    features: dict[str, tuple[FeatureLine, ...]]
    targets: dict[str, tuple[str, ...]]
    correlation_window: str
    correlation_min_fraction: float
    # Kline intervals fetched for the days a run materializes, and how much history before them
    # each coarser interval is fetched for ("auto": what the features at that grain need).
    ingest_intervals: tuple[str, ...] = ("1m", "1h", "1d")
    history: dict[str, str] | None = None
    # Per layer: how long after midnight UTC yesterday's partitions must exist (seconds).
    freshness: dict[str, int] | None = None


def _fraction(section: dict[str, Any], key: str, default: float, where: str) -> float:
    value = float(section.get(key, default))
    if not 0 <= value <= 1:
        raise PipelineConfigError(f"{where}.{key}: {value} is not between 0 and 1")
    return value


def parse_pipeline_config(raw: dict[str, Any]) -> PipelineConfig:
    bronze, silver, gold = raw.get("bronze", {}), raw.get("silver", {}), raw.get("gold", {})
    policy = bronze.get("gap_policy", "leave_missing")
    if policy not in GAP_POLICIES:
        raise PipelineConfigError(f"bronze.gap_policy: {policy!r} is not one of {GAP_POLICIES}")
    max_carry = parse_duration(bronze.get("max_carry", "1d"), "bronze.max_carry")
    if max_carry > DAY_SECONDS:
        raise PipelineConfigError("bronze.max_carry: at most 1d (bronze reads one previous day)")
    bar_intervals = tuple(silver.get("bar_intervals", ("5m", "1h", "1d")))
    for interval in bar_intervals:
        if DAY_SECONDS % parse_duration(interval, "silver.bar_intervals"):
            raise PipelineConfigError(f"silver.bar_intervals: {interval} does not divide a day")
    features: dict[str, tuple[FeatureLine, ...]] = {}
    for interval, lines in (silver.get("feature_intervals") or {}).items():
        if interval not in bar_intervals:
            raise PipelineConfigError(
                f"silver.feature_intervals.{interval}: not one of silver.bar_intervals {bar_intervals}"
            )
        parsed = []
        for index, line in enumerate(lines or []):
            if not isinstance(line, dict) or "feature" not in line:
                raise PipelineConfigError(
                    f"silver.feature_intervals.{interval}[{index}]: needs a 'feature' key"
                )
            params = {k: v for k, v in line.items() if k != "feature"}
            parsed.append(FeatureLine(str(line["feature"]), params))
        features[str(interval)] = tuple(parsed)
    tolerance = float(silver.get("ema_tolerance", 1e-12))
    if not 0 < tolerance < 1:
        raise PipelineConfigError("silver.ema_tolerance: must be between 0 and 1")
    targets = {str(k): tuple(str(h) for h in v) for k, v in (gold.get("targets") or {}).items()}
    for interval, horizons in targets.items():
        if interval not in features:
            raise PipelineConfigError(f"gold.targets.{interval}: no features are computed at {interval}")
        for horizon in horizons:
            bars_in(horizon, interval, f"gold.targets.{interval}")
    window = str(gold.get("correlation_window", "30d"))
    if parse_duration(window, "gold.correlation_window") % DAY_SECONDS:
        raise PipelineConfigError("gold.correlation_window: a whole number of days")
    ingestion = raw.get("ingestion", {}) or {}
    ingest_intervals = tuple(str(i) for i in ingestion.get("intervals", ("1m", "1h", "1d")))
    if not ingest_intervals:
        raise PipelineConfigError("ingestion.intervals: at least one kline interval")
    for interval in ingest_intervals:
        if DAY_SECONDS % parse_duration(interval, "ingestion.intervals"):
            raise PipelineConfigError(f"ingestion.intervals: {interval} does not divide a day")
    history = {str(k): str(v) for k, v in (ingestion.get("history") or {}).items()}
    for interval, span in history.items():
        if DAY_SECONDS % parse_duration(interval, "ingestion.history"):
            raise PipelineConfigError(f"ingestion.history.{interval}: {interval} does not divide a day")
        if span != "auto" and parse_duration(span, f"ingestion.history.{interval}") % DAY_SECONDS:
            raise PipelineConfigError(f"ingestion.history.{interval}: {span!r} is not 'auto' nor whole days")
    freshness = {
        str(layer): parse_duration(str(deadline), f"freshness.{layer}")
        for layer, deadline in (raw.get("freshness") or {}).items()
    }
    for layer, seconds in freshness.items():
        if layer not in FRESHNESS_LAYERS:
            raise PipelineConfigError(f"freshness.{layer}: not one of the layers {FRESHNESS_LAYERS}")
        if seconds >= DAY_SECONDS or seconds % 60:
            raise PipelineConfigError(f"freshness.{layer}: whole minutes, less than a day after midnight")
    return PipelineConfig(
        gap_policy=policy,
        max_carry_seconds=max_carry,
        bar_intervals=bar_intervals,
        ema_tolerance=tolerance,
        gap_allowance=float(silver.get("gap_allowance", 0.25)),
        stablecoins=tuple(silver.get("stablecoins", ())),
        peg_threshold=float(silver.get("peg_threshold", 0.02)),
        min_fraction=_fraction(silver, "min_fraction", 0.8, "silver"),
        max_null_rate=_fraction(silver, "max_null_rate", 0.01, "silver"),
        features=features,
        targets=targets,
        correlation_window=window,
        correlation_min_fraction=_fraction(gold, "correlation_min_fraction", 0.5, "gold"),
        ingest_intervals=ingest_intervals,
        history=history,
        freshness=freshness,
    )


def load_pipeline_config(path: str | Path | None = None) -> PipelineConfig:
    """``path``, else the file named by ``PIPELINE_CONFIG``, else config/pipeline.yaml; parsed
    once per process and file."""
    return _load(Path(path or os.environ.get("PIPELINE_CONFIG") or DEFAULT_PIPELINE_PATH).resolve())


@lru_cache(maxsize=4)
def _load(path: Path) -> PipelineConfig:
    with open(path, encoding="utf-8") as handle:
        return parse_pipeline_config(yaml.safe_load(handle) or {})
