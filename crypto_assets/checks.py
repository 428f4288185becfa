"""Asset checks shared by the layers: specs declared on each asset, results from one summary.

Blocking checks stop downstream assets in the same run when the data is wrong (duplicates,
null keys, impossible candles). Coverage is a warning: an exchange outage or a delisting is a
fact to report, not a reason to stop the pipeline.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from crypto_assets.partitions import daily_partitions
from crypto_assets.quality import DaySummary, QualitySummary
from crypto_assets.silver.validators import Validation, Validator

# Checks are partitioned: each day's results are read on that day, in the UI and over GraphQL.
# Dagster 1.13 marks a partitioned check spec "preview"; a run that fails on it fails loudly.
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")

NO_DUPLICATE_KEYS = "no_duplicate_keys"
NO_NULL_KEYS = "no_null_keys"
OHLC_CONSISTENT = "ohlc_consistent"
TOKEN_COVERAGE = "token_coverage"
EVERY_TOKEN_HAS_A_SOURCE = "every_token_has_a_source"
COVERAGE_DESCRIPTIONS = {
    TOKEN_COVERAGE: "Every token with an exchange listing in the partition has rows (warning only).",
    EVERY_TOKEN_HAS_A_SOURCE: "Every one of the 37 tokens has USD data for the window (warning: reported, never filled).",
}


def quality_check_specs(
    asset: str, *, ohlc: bool = True, keys: str = "(token, time)", coverage_check: str = TOKEN_COVERAGE
) -> list[AssetCheckSpec]:
    specs = [
        AssetCheckSpec(
            NO_DUPLICATE_KEYS,
            asset=asset,
            blocking=True,
            description=f"Exactly one row per {keys}.",
            partitions_def=daily_partitions,
        ),
        AssetCheckSpec(
            NO_NULL_KEYS,
            asset=asset,
            blocking=True,
            description=f"No null in {keys}.",
            partitions_def=daily_partitions,
        ),
        AssetCheckSpec(
            coverage_check,
            asset=asset,
            description=COVERAGE_DESCRIPTIONS[coverage_check],
            partitions_def=daily_partitions,
        ),
    ]
    if ohlc:
        specs.append(
            AssetCheckSpec(
                OHLC_CONSISTENT,
                asset=asset,
                blocking=True,
                description="low <= open, close <= high on every row.",
                partitions_def=daily_partitions,
            )
        )
    return specs


def coverage_result(
    present: Iterable[str],
    expected: Iterable[str],
    unavailable: Mapping[str, str],
    check_name: str = TOKEN_COVERAGE,
) -> AssetCheckResult:
    present_set, expected_set = set(present), set(expected)
    missing = sorted(expected_set - present_set)
    # Nothing expected and nothing there: nothing was evaluated, which is not a pass. Said once,
    # with the reason (e.g. no minute data in range for 5m bars), instead of a token list.
    nothing = not expected_set and not present_set
    return AssetCheckResult(
        check_name=check_name,
        passed=not missing and not nothing,
        description="nothing to evaluate: " + "; ".join(sorted(set(unavailable.values())))
        if nothing
        else None,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "expected_tokens": len(expected_set),
            "present_tokens": len(present_set & expected_set),
            "missing_tokens": MetadataValue.json(missing),
            "unexpected_tokens": MetadataValue.json(sorted(present_set - expected_set)),
            "not_available_from_source": MetadataValue.json(dict(sorted(unavailable.items()))),
        },
    )


def quality_results(
    summary: QualitySummary,
    *,
    expected_tokens: Iterable[str],
    unavailable: Mapping[str, str],
    ohlc: bool = True,
    coverage_check: str = TOKEN_COVERAGE,
) -> list[AssetCheckResult]:
    results = [
        AssetCheckResult(
            check_name=NO_DUPLICATE_KEYS,
            passed=summary.duplicate_keys == 0,
            metadata={"duplicate_rows": summary.duplicate_keys},
        ),
        AssetCheckResult(
            check_name=NO_NULL_KEYS,
            passed=summary.null_keys == 0,
            metadata={"null_key_rows": summary.null_keys},
        ),
        coverage_result(summary.tokens, expected_tokens, unavailable, coverage_check),
    ]
    if ohlc:
        results.append(
            AssetCheckResult(
                check_name=OHLC_CONSISTENT,
                passed=summary.ohlc_violations == 0,
                metadata={"violating_rows": summary.ohlc_violations},
            )
        )
    return results


def day_check_results(
    day: DaySummary,
    *,
    expected_tokens: Iterable[str],
    unavailable: Mapping[str, str],
    ohlc: bool = True,
    coverage_check: str = TOKEN_COVERAGE,
) -> list[AssetCheckResult]:
    """One day's results inside a multi-day run. Its blocking checks passed (a run with any
    blocking failure writes nothing); coverage is the day's own, so a day without rows fails it."""
    passed = QualitySummary(
        rows=day.rows,
        duplicate_keys=0,
        null_keys=0,
        ohlc_violations=0,
        tokens=day.tokens,
        first_time=day.first_time,
        last_time=day.last_time,
    )
    return quality_results(
        passed,
        expected_tokens=expected_tokens,
        unavailable=unavailable,
        ohlc=ohlc,
        coverage_check=coverage_check,
    )


def day_metadata(day: DaySummary | QualitySummary) -> dict[str, MetadataValue]:
    """Rows, tokens and time range of a summary: a whole run's, or in a multi-day run each day's
    own (the run's totals would be wrong for each day)."""
    return {
        "dagster/row_count": MetadataValue.int(day.rows),
        "tokens": MetadataValue.int(len(day.tokens)),
        "token_list": MetadataValue.text(", ".join(day.tokens)),
        "first_time": MetadataValue.text(_readable_time(day.first_time)),
        "last_time": MetadataValue.text(_readable_time(day.last_time)),
    }


def add_day_rows(context: Any, frame: pd.DataFrame, time_column: str) -> None:
    """In a multi-day run, each day's materialization gets that day's own row and token counts
    (a pandas frame's version of the per-day metadata that ``publishing.publish`` records)."""
    days = context.partition_keys if context.has_partition_key_range else []
    if len(days) < 2:
        return
    # Counted in one grouping, not one filter per day (a year of hourly rows, 365 days).
    day_of = pd.to_datetime(frame[time_column]).dt.strftime("%Y-%m-%d") if len(frame) else None
    by_day = frame.groupby(day_of) if day_of is not None else None
    rows = by_day.size() if by_day is not None else pd.Series(dtype=int)
    tokens = by_day["token"].nunique() if by_day is not None and "token" in frame else pd.Series(dtype=int)
    for day in days:
        context.add_asset_metadata(
            {
                "dagster/row_count": MetadataValue.int(int(rows.get(day, 0))),
                "tokens": MetadataValue.int(int(tokens.get(day, 0))),
            },
            partition_key=day,
        )


def _readable_time(value: object) -> str:
    """Raw and bronze key bars by epoch milliseconds (Binance's own unit); the UI shows UTC."""
    if value is None:
        return "no rows"
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")  # Spark's session time zone is UTC
    return str(value)


def summary_metadata(summary: QualitySummary, preview: pd.DataFrame) -> dict[str, MetadataValue]:
    """The metadata every materialization carries: rows, tokens, time range, a preview."""
    return {**day_metadata(summary), "preview": MetadataValue.md(preview.to_markdown(index=False))}


def validator_specs(asset: str, validators: Sequence[Validator]) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(
            v.name,
            asset=asset,
            blocking=v.blocking,
            description=v.description,
            partitions_def=daily_partitions,
        )
        for v in validators
    ]


def validation_result(validator: Validator, validation: Validation) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=validator.name,
        passed=validation.passed,
        severity=AssetCheckSeverity.ERROR if validator.blocking else AssetCheckSeverity.WARN,
        metadata={
            k: MetadataValue.json(v) if isinstance(v, (dict, list)) else v
            for k, v in validation.details.items()
        },
    )
