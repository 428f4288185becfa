"""Validators: pure Spark checks of a layer's DataFrame, each one aggregation. No Dagster here:
``crypto_assets.checks`` turns them into asset checks (blocking where bad data must stop)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


@dataclass(frozen=True)
class Validation:
    passed: bool
    details: dict[str, Any]


@dataclass(frozen=True)
class Validator:
    """A named rule: ``blocking`` ones stop downstream assets when they fail.

    A rule that is only aggregations also gives them as ``aggregates`` (name -> column for the
    frame) and ``judge`` (their values -> the validation): ``crypto_assets.publishing`` computes
    them in the frame's one summary pass instead of a Spark job per rule. ``run`` is the same
    rule on its own.
    """

    name: str
    description: str
    blocking: bool
    run: Callable[[DataFrame], Validation]
    aggregates: Callable[[DataFrame], dict[str, Column]] | None = None
    # (the frame, the aggregates' values) -> the validation; it may read the frame again to name
    # offending rows, only when there are some.
    judge: Callable[[DataFrame, Mapping[str, Any]], Validation] | None = None


def aggregating(
    name: str,
    description: str,
    blocking: bool,
    aggregates: Callable[[DataFrame], dict[str, Column]],
    judge: Callable[[DataFrame, Mapping[str, Any]], Validation],
) -> Validator:
    """A validator made of aggregations only: ``run`` computes them in one pass and judges."""

    def run(frame: DataFrame) -> Validation:
        columns = aggregates(frame)
        row = frame.agg(*[c.alias(k) for k, c in columns.items()]).first() if columns else None
        return judge(frame, row.asDict() if row is not None else {})

    return Validator(name, description, blocking, run, aggregates, judge)


SCHEMA = "schema"
VALUE_RANGES = "value_ranges"
NULL_RATES = "null_rates"
FEATURE_WARM_UP = "feature_warm_up"
STABLECOIN_PEG = "stablecoin_peg"
CROSS_INTERVAL_CONSISTENCY = "cross_interval_consistency"


def _bad_number(column: Column) -> Column:
    return F.isnan(column) | (F.abs(column) == F.lit(float("inf")))


def schema(expected: Sequence[tuple[str, str]]) -> Validator:
    """The frame has exactly these columns, in this order, with these Spark types."""

    def run(frame: DataFrame) -> Validation:
        actual = [(f.name, f.dataType.simpleString()) for f in frame.schema.fields]
        missing = [c for c in expected if c not in actual]
        unexpected = [c for c in actual if c not in expected]
        return Validation(
            passed=actual == list(expected),
            details={"missing_or_retyped": missing, "unexpected": unexpected, "columns": len(actual)},
        )

    return Validator(SCHEMA, "Columns and types are exactly the documented schema.", True, run)


def value_ranges(bounds: Mapping[str, tuple[float | None, float | None]]) -> Validator:
    """Every non-null value of each column lies in its [low, high] and is a finite number."""

    def present(frame: DataFrame) -> dict[str, tuple[float | None, float | None]]:
        return {c: b for c, b in bounds.items() if c in frame.columns}

    def aggregates(frame: DataFrame) -> dict[str, Column]:
        columns: dict[str, Column] = {}
        for column, (low, high) in present(frame).items():
            value = F.col(column).cast("double")
            bad = _bad_number(value)
            if low is not None:
                bad = bad | (value < F.lit(low))
            if high is not None:
                bad = bad | (value > F.lit(high))
            columns[column] = F.sum(F.coalesce(bad, F.lit(False)).cast("int"))
        return columns

    def judge(_frame: DataFrame, values: Mapping[str, Any]) -> Validation:
        checked = {c: b for c, b in bounds.items() if c in values}
        violations = {c: int(values[c] or 0) for c in checked if (values[c] or 0) > 0}
        return Validation(
            passed=not violations,
            details={
                "violations": violations,
                "bounds": {c: [lo, hi] for c, (lo, hi) in checked.items()},
            },
        )

    return aggregating(
        VALUE_RANGES,
        "Every value is finite and inside its documented range (RSI 0-100, correlations -1..1, ...).",
        True,
        aggregates,
        judge,
    )


def null_rates(columns: Sequence[str], complete: str, max_rate: float) -> Validator:
    """Among rows whose whole look-back is observed (``complete``, a SQL condition), each column's
    null rate is at most ``max_rate``: a feature that should exist but is missing points at a bug
    or bad input."""

    def aggregates(frame: DataFrame) -> dict[str, Column]:
        # Conditional sums, not a filter, so that they share the frame's one summary pass.
        counted = F.coalesce(F.expr(complete), F.lit(False))
        present = [c for c in columns if c in frame.columns]
        return {
            "_rows": F.sum(counted.cast("int")),
            **{c: F.sum((counted & F.col(c).isNull()).cast("int")) for c in present},
        }

    def judge(_frame: DataFrame, values: Mapping[str, Any]) -> Validation:
        rows = int(values.get("_rows") or 0)
        rates = {c: round(int(values[c] or 0) / rows, 6) for c in columns if c in values} if rows else {}
        high = {c: r for c, r in rates.items() if r > max_rate}
        return Validation(
            passed=not high,
            details={"complete_rows": rows, "max_null_rate": max_rate, "above_max": high},
        )

    return aggregating(
        NULL_RATES,
        f"Warmed-up, gap-free rows have every feature (null rate at most {max_rate:.0%}).",
        False,
        aggregates,
        judge,
    )


def feature_warm_up(warm_ups: Mapping[str, int], history: str) -> Validator:
    """No feature is emitted before its warm-up: a value needs ``warm_ups[column]`` observed
    bars of history (``history`` counts them), so a partial window never passes for a full one."""

    def aggregates(frame: DataFrame) -> dict[str, Column]:
        present = {c: w for c, w in warm_ups.items() if c in frame.columns}
        if not present:
            return {}
        return {
            **{
                c: F.sum((F.col(c).isNotNull() & (F.col(history) < F.lit(w))).cast("int"))
                for c, w in present.items()
            },
            "_warming": F.sum((F.col(history) < F.lit(max(present.values()))).cast("int")),
        }

    def judge(_frame: DataFrame, values: Mapping[str, Any]) -> Validation:
        present = {c: w for c, w in warm_ups.items() if c in values}
        early = {c: int(values[c] or 0) for c in present if (values[c] or 0) > 0}
        return Validation(
            passed=not early,
            details={
                "early_values": early,
                "rows_in_warm_up": int(values.get("_warming") or 0),
                "warm_up_bars": dict(present),
            },
        )

    return aggregating(
        FEATURE_WARM_UP,
        "No feature has a value before its warm-up (enough observed bars of history).",
        True,
        aggregates,
        judge,
    )


# A consensus of USDT-quoted stablecoins measures USDT itself only with at least this many.
MIN_CONSENSUS = 3


def peg_episodes(breaches: pd.DataFrame, step_seconds: int) -> list[dict[str, Any]]:
    """Consecutive breach slots per token -> one episode each: start, end (last slot's end),
    slots, the extreme USD price and whether it was below or above the peg."""
    episodes: list[dict[str, Any]] = []
    for token, rows in breaches.sort_values(["token", "time"]).groupby("token", sort=True):
        times = pd.to_datetime(rows["time"])
        new = times.diff().dt.total_seconds().fillna(step_seconds * 2) > step_seconds
        for _, episode in rows.groupby(new.cumsum().to_numpy()):
            worst = episode.loc[(episode["extreme"] - 1).abs().idxmax()]
            episodes.append(
                {
                    "token": token,
                    "start": str(pd.Timestamp(episode["time"].iloc[0])),
                    "end": str(pd.Timestamp(episode["time"].iloc[-1]) + pd.Timedelta(seconds=step_seconds)),
                    "slots": len(episode),
                    "extreme_usd": round(float(worst["extreme"]), 6),
                    "side": "below" if worst["extreme"] < 1 else "above",
                }
            )
    return episodes


def stablecoin_peg(
    stablecoins: Sequence[str], threshold: float, step_seconds: int, shown: int = 50
) -> Validator:
    """Stablecoins measured against USD, not USDT (a warning; nothing is dropped).

    Bars are USDT-quoted, so a USDT wobble moves every stablecoin together. The USD price of one
    USDT is taken as 1 / the median of the stablecoins' USDT closes in the slot (with at least
    ``MIN_CONSENSUS`` of them; else USDT is assumed at par and the details say so). Each
    stablecoin's high and low in USD are held to ``1 +- threshold``; USDT itself is reported when
    the consensus puts it off its peg. Each breach is one episode: start, end, extreme.
    """
    coins = [c for c in stablecoins if c != "USDT"]

    def run(frame: DataFrame) -> Validation:
        bars = frame.where(F.col("token").isin(coins) & ~F.col("is_gap") & F.col("close").isNotNull())
        consensus = bars.groupBy("open_time").agg(
            F.percentile_approx(F.col("close").cast("double"), 0.5, 10_000).alias("_median"),
            F.count(F.lit(1)).alias("_coins"),
        )
        usd_per_usdt = F.when(F.col("_coins") >= MIN_CONSENSUS, 1 / F.col("_median")).otherwise(F.lit(1.0))
        priced = bars.join(consensus, on="open_time").select(
            "token",
            F.col("open_time").alias("time"),
            (F.col("low").cast("double") * usd_per_usdt).alias("_low"),
            (F.col("high").cast("double") * usd_per_usdt).alias("_high"),
        )
        low, high = F.col("_low"), F.col("_high")
        coin_breaches = priced.where((low < 1 - threshold) | (high > 1 + threshold)).select(
            "token", "time", F.when(1 - low >= high - 1, low).otherwise(high).alias("extreme")
        )
        usdt = consensus.where(F.col("_coins") >= MIN_CONSENSUS).select(
            F.lit("USDT").alias("token"),
            F.col("open_time").alias("time"),
            (1 / F.col("_median")).alias("extreme"),
        )
        usdt_breaches = usdt.where(F.abs(F.col("extreme") - 1) > threshold)
        found = coin_breaches.unionByName(usdt_breaches).toPandas()
        row = consensus.agg(
            F.sum((F.col("_coins") >= MIN_CONSENSUS).cast("int")).alias("measured"),
            F.count("*").alias("slots"),
        ).first()
        episodes = peg_episodes(found, step_seconds) if len(found) else []
        evaluated = int(row["slots"] or 0) if row else 0
        return Validation(
            # No stablecoin bar in range: nothing was evaluated, which is not a pass.
            passed=not episodes and evaluated > 0,
            details={
                **({} if evaluated else {"nothing_evaluated": "no stablecoin bars in range"}),
                "evaluated_slots": evaluated,
                "episodes": episodes[:shown],
                "episode_count": len(episodes),
                "breached_slots": {t: int(n) for t, n in found.groupby("token").size().items()}
                if len(found)
                else {},
                "threshold": threshold,
                "usdt_measured_slots": int(row["measured"] or 0) if row else 0,
                "usdt_assumed_at_par_slots": int((row["slots"] or 0) - (row["measured"] or 0)) if row else 0,
            },
        )

    return Validator(
        STABLECOIN_PEG,
        f"Stablecoins within {threshold:.0%} of $1 in USD, highs and lows included: USDT-quoted bars"
        f" are converted with USDT's USD price (1 / the median stablecoin close, from {MIN_CONSENSUS}"
        " coins), so a USDT move is reported as USDT's. Each breach is an episode (start, end,"
        " extreme); flagged, never dropped.",
        False,
        run,
    )


def usd_peg(price: str, time_column: str, stablecoins: Sequence[str], threshold: float) -> Validator:
    """Stablecoin USD prices (CoinGecko) more than ``threshold`` off $1, as episodes (a warning)."""

    def run(frame: DataFrame) -> Validation:
        off = frame.where(
            F.col("token").isin(list(stablecoins)) & (F.abs(F.col(price) - 1) > F.lit(threshold))
        ).select("token", F.col(time_column).alias("time"), F.col(price).cast("double").alias("extreme"))
        found = off.toPandas()
        episodes = peg_episodes(found, 3600) if len(found) else []
        evaluated = frame.where(F.col("token").isin(list(stablecoins)) & F.col(price).isNotNull()).count()
        return Validation(
            passed=not episodes and evaluated > 0,  # nothing evaluated is not a pass
            details={
                **({} if evaluated else {"nothing_evaluated": f"no stablecoin {price} in range"}),
                "evaluated_rows": evaluated,
                "episodes": episodes[:50],
                "episode_count": len(episodes),
                "threshold": threshold,
                "price": price,
            },
        )

    return Validator(
        STABLECOIN_PEG,
        f"Stablecoins (USDT included) within {threshold:.0%} of $1 in USD; each breach an episode"
        " (start, end, extreme), flagged and kept.",
        False,
        run,
    )


def quote_peg(
    stablecoins: Sequence[str], threshold: float, markets: DataFrame | None = None, shown: int = 50
) -> Validator:
    """Stablecoins priced in USD by every evidence the lake holds (a warning): cross rates on each
    venue that quotes both USD and the stablecoin (Binance.US BTCUSD / BTCUSDC, at the minute
    when the lake has minutes) and CoinGecko's hourly USD prices (``markets``: every stablecoin,
    quote asset or not). Each breach of ``1 +- threshold`` by the hour's low or high is an
    episode per stablecoin and evidence."""

    def run(frame: DataFrame) -> Validation:
        rates = frame.where(
            F.col("quote_asset").isin(list(stablecoins)) & F.col("quote_usd_source").isNotNull()
        ).select(
            F.col("quote_asset").alias("token"),
            F.col("quote_usd_source").alias("evidence"),
            F.col("bar_time").alias("time"),
            F.col("quote_usd_low").cast("double").alias("_low"),
            F.col("quote_usd_high").cast("double").alias("_high"),
        )
        if markets is not None:
            hours = frame.agg(F.min("bar_time").alias("_first"), F.max("bar_time").alias("_last")).first()
            quoted = markets.where(
                F.col("token").isin(list(stablecoins))
                & F.col("price_usd").isNotNull()
                & F.col("hour").between(hours["_first"], hours["_last"])
            ).select(
                "token",
                F.lit("coingecko").alias("evidence"),
                F.col("hour").alias("time"),
                F.col("price_usd").cast("double").alias("_low"),
                F.col("price_usd").cast("double").alias("_high"),
            )
            rates = rates.unionByName(quoted)
        rates = rates.distinct()
        low, high = F.col("_low"), F.col("_high")
        found = (
            rates.where((low < 1 - threshold) | (high > 1 + threshold))
            .select(
                "token", "evidence", "time", F.when(1 - low >= high - 1, low).otherwise(high).alias("extreme")
            )
            .toPandas()
        )
        episodes = [
            {**episode, "evidence": evidence}
            for evidence, rows in (found.groupby("evidence", sort=True) if len(found) else [])
            for episode in peg_episodes(rows, 3600)
        ]
        episodes.sort(key=lambda e: (e["start"], e["token"]))
        measured = {
            f"{r['token']} via {r['evidence']}": int(r["hours"])
            for r in rates.groupBy("token", "evidence").agg(F.count(F.lit(1)).alias("hours")).collect()
        }
        return Validation(
            passed=not episodes and bool(measured),  # nothing measured is not a pass
            details={
                **({} if measured else {"nothing_evaluated": "no stablecoin-quoted series with a USD price"}),
                "measured_hours": measured,
                "episodes": episodes[:shown],
                "episode_count": len(episodes),
                "threshold": threshold,
            },
        )

    return Validator(
        STABLECOIN_PEG,
        f"Stablecoin quote assets within {threshold:.0%} of $1 by every USD evidence in the lake:"
        " cross rates on venues that quote USD too (BTCUSD / BTCUSDC on Binance.US) and CoinGecko's"
        " USD prices; each breach an episode per evidence (start, end, extreme), flagged and kept.",
        False,
        run,
    )


def cross_interval_consistency(
    interval: str, mismatches: Callable[[DataFrame], DataFrame], listed: int = 50
) -> Validator:
    """Run on bronze: where the exchange's own ``interval`` bar and the finer bars resampled to
    it both exist they must agree; each slot that does not is listed (missing or corrected
    minutes). A warning: silver keeps the exchange's bar either way."""

    def run(bronze: DataFrame) -> Validation:
        slots = mismatches(bronze)
        # One pass counts both; the slots are listed (a second pass) only when some disagree.
        row = slots.agg(
            F.count(F.lit(1)).alias("compared"),
            F.sum((F.size("fields") > 0).cast("int")).alias("mismatched"),
        ).first()
        compared = int(row["compared"]) if row else 0
        found = int(row["mismatched"] or 0) if row else 0
        bad = slots.where(F.size("fields") > 0).orderBy("open_time", "token")
        listing = [
            {
                "token": r["token"],
                "slot": r["open_time"].isoformat(sep=" "),
                "fields": list(r["fields"]),
                "from": r["resampled_from"],
                "bars_observed": f"{r['bars_observed']}/{r['bars_expected']}",
            }
            for r in (bad.limit(listed).collect() if found else [])
        ]
        return Validation(
            passed=found == 0,
            details={"slots_compared": compared, "slots_mismatched": found, "mismatches": listing},
        )

    return Validator(
        CROSS_INTERVAL_CONSISTENCY,
        f"Where both exist, finer bars resampled to {interval} equal the exchange's own {interval} bar"
        " (OHLC and trade count exactly, volumes to 8 decimals); mismatched slots are listed.",
        False,
        run,
    )
