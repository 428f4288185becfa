"""How every layer hands a DataFrame to its IO manager: metadata and check results in one pass."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Failure,
    MetadataValue,
    Output,
)
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from crypto_assets.checks import (
    TOKEN_COVERAGE,
    day_check_results,
    day_metadata,
    quality_results,
    summary_metadata,
    validation_result,
)
from crypto_assets.instance_storage import PER_DAY_CHECKS_MAX_DAYS
from crypto_assets.partitions import daily_partitions
from crypto_assets.quality import (
    EMPTY_DAY,
    QualitySummary,
    any_null,
    ohlc_violation,
    summarize,
    summarize_days,
)
from crypto_assets.silver.validators import Validator
from crypto_assets.universe import load_universe


def expected_coverage(
    start: datetime, end: datetime, *, by_pair: bool = False
) -> tuple[list[str], dict[str, str]]:
    """Tokens (or their pairs) with a Binance listing in ``[start, end)``, and why others have none.

    Over a multi-day window a token counts as expected if it was listed on any of the days.
    """
    universe = load_universe()
    active = universe.active_pairs(start, end)
    expected = sorted(active) if by_pair else sorted({token.symbol for token in active.values()})
    return expected, universe.unavailable(start, end)


def publish(
    context: AssetExecutionContext,
    frame: DataFrame,
    *,
    time_column: str,
    keys: tuple[str, ...],
    token_column: str = "token",
    ohlc: bool = True,
    coverage: tuple[list[str], Mapping[str, str]] | None = None,
    coverage_check: str = TOKEN_COVERAGE,
    extra_metadata: Mapping[str, Any] | None = None,
    observed: Column | None = None,
    extra_aggregates: Mapping[str, Column] | None = None,
    validators: Sequence[Validator] = (),
) -> Iterator[Output | AssetCheckResult]:
    """Yield the frame (to the IO manager) with metadata, then the quality check results.

    ``coverage`` is (expected tokens, why others are missing); by default the tokens with a
    Binance listing in the window. ``observed`` marks real bars (gap rows are not held to OHLC
    consistency nor count as coverage); ``extra_aggregates`` become metadata; ``validators``
    become check results. The frame is cached so the summary, the preview, the validators and
    the write share one computation.
    """
    window = context.partition_time_window
    expected, unavailable = coverage or expected_coverage(
        window.start, window.end, by_pair=token_column == "symbol"
    )
    cached = frame.cache()
    try:
        # Validators made of aggregations ride in the summary's one pass: a Spark job each
        # (~1-2 s on small frames, mostly planning) adds up over a run's assets.
        folded = {
            index: validator.aggregates(cached)
            for index, validator in enumerate(validators)
            if validator.aggregates is not None
        }
        shared = {
            _folded_name(index, name): column
            for index, columns in folded.items()
            for name, column in columns.items()
        }
        summary = summarize(
            cached,
            keys=keys,
            time_column=time_column,
            token_column=token_column,
            observed=observed,
            extra_aggregates={**(extra_aggregates or {}), **shared},
        )
        folded_values = {
            index: {name: summary.extra[_folded_name(index, name)] for name in columns}
            for index, columns in folded.items()
        }
        refuse_blocking_failures(context, cached, summary, keys=keys, observed=observed, ohlc=ohlc)
        preview = cached.orderBy(*keys).limit(5).toPandas()
        metadata: dict[str, Any] = {
            **summary_metadata(summary, preview),
            "not_available_from_source": MetadataValue.json(dict(sorted(unavailable.items()))),
            **{name: _metadata_value(value) for name, value in summary.extra.items() if name not in shared},
            **(extra_metadata or {}),
        }
        partitions = context.partition_key_range
        context.log.info(
            f"{context.asset_key.to_user_string()} {partitions.start}..{partitions.end}: {summary.rows} rows,"
            f" {len(summary.tokens)} tokens"
        )
        days = context.partition_keys if context.has_partition_key_range else []
        per_day = summarize_days(cached, time_column, token_column, observed) if len(days) > 1 else {}
        if len(days) > 1:
            # Each day's materialization carries its own counts, not the run's totals.
            for day in days:
                context.add_asset_metadata(day_metadata(per_day.get(day, EMPTY_DAY)), partition_key=day)
        yield Output(cached, metadata=metadata)
        if 1 < len(days) <= PER_DAY_CHECKS_MAX_DAYS:
            _log_day_checks(
                context,
                days,
                per_day,
                coverage,
                by_pair=token_column == "symbol",
                ohlc=ohlc,
                coverage_check=coverage_check,
            )
        yield from quality_results(
            summary,
            expected_tokens=expected,
            unavailable=unavailable,
            ohlc=ohlc,
            coverage_check=coverage_check,
        )
        for index, validator in enumerate(validators):
            if index in folded_values and validator.judge is not None:
                result = validation_result(validator, validator.judge(cached, folded_values[index]))
            else:
                result = validation_result(validator, validator.run(cached))
            log_range_result_per_day(context, result)
            yield result
    finally:
        cached.unpersist()


def _folded_name(index: int, name: str) -> str:
    return f"__validator_{index}__{name}"


# Each day's check results are events of their own (~10 ms each in the instance's storage): a
# month of days gets them; a deep-history range (years, a warm-up) records its checks for the
# range, its counts still per day, so that five years stay minutes, not hours. The instance's
# storage plans such a range's checks as one execution too (no day left PLANNED / SKIPPED).


def log_range_result_per_day(context: AssetExecutionContext, result: AssetCheckResult) -> None:
    """A check judged over a range run's whole frame (a validator), recorded on each of its days
    too, as the per-day checks are: otherwise each day's evaluation stays planned for ever (shown
    as not evaluated in the UI). Its metadata says it was judged over the range."""
    days = context.partition_keys if context.has_partition_key_range else []
    if not 1 < len(days) <= PER_DAY_CHECKS_MAX_DAYS:
        return
    metadata = {**(result.metadata or {}), "judged_over": MetadataValue.text(f"{days[0]}..{days[-1]}")}
    blocking = result.severity == AssetCheckSeverity.ERROR  # as validation_result sets it
    for day in days:
        _log_on_day(context, result, day, blocking=blocking, metadata=metadata)


def _log_on_day(
    context: AssetExecutionContext,
    result: AssetCheckResult,
    day: str,
    *,
    blocking: bool,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """``result`` recorded on the partition ``day`` (Dagster records a range's results for the
    run only; the evaluation event is the one way to put a result on a day)."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation

    context.log_event(
        AssetCheckEvaluation(
            asset_key=context.asset_key,
            check_name=str(result.check_name),
            passed=bool(result.passed),
            metadata=metadata if metadata is not None else result.metadata,
            severity=result.severity,
            description=result.description,
            blocking=blocking,
            partition=day,
        )
    )


def _log_day_checks(
    context: AssetExecutionContext,
    days: Sequence[str],
    per_day: Mapping[str, Any],
    coverage: tuple[list[str], Mapping[str, str]] | None,
    *,
    by_pair: bool,
    ohlc: bool,
    coverage_check: str,
) -> None:
    """A multi-day run records every day's check results on that day's partition, as a one-day
    run does (Dagster records a range's results for the run only): a day's checks can be read in
    the UI, and a day without rows fails its coverage."""
    for day in days:
        window = daily_partitions.time_window_for_partition_key(day)
        expected, unavailable = coverage or expected_coverage(window.start, window.end, by_pair=by_pair)
        for result in day_check_results(
            per_day.get(day, EMPTY_DAY),
            expected_tokens=expected,
            unavailable=unavailable,
            ohlc=ohlc,
            coverage_check=coverage_check,
        ):
            _log_on_day(context, result, day, blocking=result.check_name != coverage_check)


SHOWN_COLUMNS = ("token", "venue", "market", "symbol", "interval", "open_time", "time", "hour", "source")


def refuse_blocking_failures(
    context: AssetExecutionContext,
    frame: DataFrame,
    summary: QualitySummary,
    *,
    keys: Sequence[str],
    observed: Column | None,
    ohlc: bool,
    shown: int = 10,
) -> None:
    """Fail before the write when a blocking check would fail: the IO manager then never swaps
    the partition in, so the previous version of the day stays, and the error names the rows."""
    counts = {
        "duplicate_key_rows": summary.duplicate_keys,
        "null_key_rows": summary.null_keys,
        "ohlc_violations": summary.ohlc_violations if ohlc else 0,
    }
    if not any(counts.values()):
        return
    null_key = any_null(keys)
    duplicate = F.count(F.lit(1)).over(Window.partitionBy(*keys)) > 1
    real = F.lit(True) if observed is None else observed
    bad_ohlc = real & ohlc_violation(frame) if ohlc else F.lit(False)
    reason = (
        F.when(null_key, F.lit("null key"))
        .when(duplicate, F.lit("duplicate key"))
        .when(F.coalesce(bad_ohlc, F.lit(True)), F.lit("OHLC inconsistent"))
    )
    columns = [name for name in SHOWN_COLUMNS if name in frame.columns]
    offending = (
        frame.withColumn("problem", reason)
        .where(F.col("problem").isNotNull())
        .select("problem", *columns)
        .limit(shown)
        .toPandas()
    )
    partitions = context.partition_key_range
    found = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    rows = "\n".join(
        "  " + ", ".join(f"{k}={row[k]}" for k in ("problem", *columns)) for _, row in offending.iterrows()
    )
    raise Failure(
        description=(
            f"{context.asset_key.to_user_string()} {partitions.start}..{partitions.end} not published, the"
            f" previous version stays: blocking checks fail ({found}). First offending rows:\n{rows}"
        ),
        metadata={
            **{k: MetadataValue.int(v) for k, v in counts.items()},
            "offending_rows": MetadataValue.md(offending.to_markdown(index=False)),
        },
    )


def _metadata_value(value: Any) -> Any:
    if value is None:
        return MetadataValue.null()
    if isinstance(value, bool | int):
        return MetadataValue.int(int(value))
    if isinstance(value, float):
        return MetadataValue.float(value)
    return MetadataValue.text(str(value))
