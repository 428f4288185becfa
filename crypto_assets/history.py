"""How much kline history each grain needs, and which days a run must warm up first.

Features look back (1h: 26 days of bars, 1d: 605 days for the MACD signal to converge); a fresh
lake has none of it. Rather than fetching the look-back at 1m (~28 M klines for the daily
features), a run first fetches the exchange's own coarser klines for the days before it, per
``ingestion.history`` in config/pipeline.yaml. Pure Python: the CLI plans with it, Dagster runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from crypto_assets.pipeline_config import DAY_SECONDS, load_pipeline_config, parse_duration

# gold_correlations reads this grain's bars over the correlation window.
CORRELATION_INTERVAL = "1h"


@lru_cache(maxsize=8)
def history_days(interval: str) -> int:
    """Days of ``interval`` klines fetched before a run's first day (``ingestion.history``)."""
    config = load_pipeline_config()
    span = (config.history or {}).get(interval)
    if span is None:
        return 0
    if span != "auto":
        return parse_duration(span) // DAY_SECONDS
    from crypto_assets.silver.config import feature_plans

    plans = feature_plans()
    days = plans[interval].lookback_days if interval in plans else 0
    if interval == CORRELATION_INTERVAL:
        days = max(days, parse_duration(config.correlation_window) // DAY_SECONDS)
    return days


@dataclass(frozen=True)
class WarmUp:
    """The history days a run still lacks, per interval (each list ascending)."""

    missing: dict[str, list[date]]

    @property
    def days(self) -> int:
        return len({d for days in self.missing.values() for d in days})

    def _wanted(self) -> dict[date, list[str]]:
        """Day -> the intervals it lacks, sorted."""
        wanted: dict[date, list[str]] = {}
        for interval, days in sorted(self.missing.items()):
            for day in days:
                wanted.setdefault(day, []).append(interval)
        return wanted

    def segments(self) -> list[tuple[list[str], list[str]]]:
        """Consecutive days that fetch the same intervals, as (partition keys, intervals): on a
        fresh lake 575 days of 1d only, then 30 days of 1h and 1d; on the next day's run just
        the one day that slid into the look-back. Each is one run that refines only the bars of
        its intervals (no 5m or 1h bars for days that have only daily klines)."""
        wanted = self._wanted()
        out: list[tuple[list[str], list[str]]] = []
        previous: date | None = None
        for day in sorted(wanted):
            if out and previous == day - timedelta(days=1) and out[-1][1] == wanted[day]:
                out[-1][0].append(day.isoformat())
            else:
                out.append(([day.isoformat()], wanted[day]))
            previous = day
        return out

    def refinement_runs(self, raw_days: set[str]) -> list[WarmUpRun]:
        """For a run that fetches nothing (``--no-ingest``): the missing days whose raw klines
        are in the lake already (imported), refined raw -> bronze -> the bars they lack, one run per
        stretch of consecutive days."""
        present = {i: [d for d in days if d.isoformat() in raw_days] for i, days in self.missing.items()}
        present = {i: days for i, days in present.items() if days}
        return [WarmUpRun(keys, [], {}, bars) for keys, bars in WarmUp(present).segments()] if present else []

    def runs(self) -> list[WarmUpRun]:
        """The warm-up as few runs as possible: per stretch of consecutive days, one run fetches
        every interval (each from the first day it is wanted) through raw and bronze, with the
        bars of the intervals wanted on every day of the stretch; an interval wanted on the
        stretch's last days only gets a run of its bars over those days. On a fresh lake: 605 days
        of 1d klines plus 1h for the last 30, then 30 days of 1h bars (the look-back of 1h is
        shorter). Stretches where an interval has holes fall back to :meth:`segments`."""
        wanted = self._wanted()
        stretches: list[list[date]] = []
        for day in sorted(wanted):
            if stretches and stretches[-1][-1] == day - timedelta(days=1):
                stretches[-1].append(day)
            else:
                stretches.append([day])
        runs: list[WarmUpRun] = []
        for stretch in stretches:
            per_interval = {
                i: [d for d in stretch if i in wanted[d]]
                for i in sorted(set().union(*(wanted[d] for d in stretch)))
            }
            if any(days != stretch[len(stretch) - len(days) :] for days in per_interval.values()):
                runs += [
                    WarmUpRun(keys, intervals, {}, intervals)
                    for keys, intervals in WarmUp(per_interval).segments()
                ]
                continue
            keys = [d.isoformat() for d in stretch]
            full = [i for i, days in per_interval.items() if len(days) == len(stretch)]
            starts = {i: days[0].isoformat() for i, days in per_interval.items() if len(days) < len(stretch)}
            runs.append(WarmUpRun(keys, list(per_interval), starts, full))
            runs += [WarmUpRun([d.isoformat() for d in per_interval[i]], [], {}, [i]) for i in sorted(starts)]
        return runs


@dataclass(frozen=True)
class WarmUpRun:
    """One warm-up run: raw and bronze fetch ``intervals`` over ``keys`` (none: bars only), each
    interval from ``starts[interval]`` when later than the first day; ``bars`` are the intervals
    whose silver bars the run refines over ``keys``."""

    keys: list[str]
    intervals: list[str]
    starts: dict[str, str]
    bars: list[str]


def warm_up_plan(
    first_day: date,
    have: Callable[[str], set[str]],
    intervals: Iterable[str] | None = None,
    earliest: date | None = None,
) -> WarmUp | None:
    """The history a run starting on ``first_day`` still lacks, or None when the lake is warm.

    ``have(interval)`` gives the days whose ``silver_bars_<interval>`` partition exists (their
    history is in the lake already); ``earliest`` is the first day that can exist at all.
    """
    config = load_pipeline_config()
    missing: dict[str, list[date]] = {}
    for interval in intervals if intervals is not None else (config.history or {}):
        first = first_day - timedelta(days=history_days(interval))
        if earliest is not None:
            first = max(first, earliest)
        present = have(interval)
        days = [first + timedelta(days=i) for i in range((first_day - first).days)]
        days = [d for d in days if d.isoformat() not in present]
        if days:
            missing[interval] = days
    return WarmUp(missing) if missing else None


# What "warm" means for a first run: these hourly indicators, and every daily feature that does
# not depend on what the source provides, are filled on the rows that are not gaps.
WARM_HOURLY_FEATURES = ("rsi_14", "macd_signal", "bb_pct_b_20", "realized_vol_7d", "beta_btc_7d")


def warm_daily_features() -> list[str]:
    from crypto_assets.silver.config import feature_plans

    columns = feature_plans()["1d"].columns
    return [c.name for c in columns if not c.by_source or c.name.startswith("beta_btc_")]


def non_null_shares_sql(table: str, columns: list[str] | tuple[str, ...]) -> str:
    """Per token, the share of non-gap rows of ``table`` where each column is filled."""
    shares = ", ".join(f"COUNT({c}) / COUNT(*) AS {c}" for c in columns)
    return f"SELECT TOKEN, {shares} FROM {table} WHERE NOT IS_GAP GROUP BY TOKEN ORDER BY TOKEN"
