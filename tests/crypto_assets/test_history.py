from datetime import date, timedelta

from crypto_assets.history import history_days, warm_up_plan
from crypto_assets.silver.config import feature_plans

FIRST = date(2026, 11, 27)


def test_auto_history_covers_every_look_back():
    plans = feature_plans()
    assert history_days("1d") == plans["1d"].lookback_days == 605
    # 1h: the features' 26 days, or the correlation window (30 d), whichever is longer.
    assert history_days("1h") == max(plans["1h"].lookback_days, 30) == 30
    assert history_days("1m") == 0


def test_a_fresh_lake_warms_up_in_two_stretches():
    plan = warm_up_plan(FIRST, lambda _: set())
    assert plan is not None
    assert plan.missing["1d"][0] == FIRST - timedelta(days=605) and len(plan.missing["1d"]) == 605
    assert plan.missing["1h"][0] == FIRST - timedelta(days=30) and plan.days == 605
    (daily, daily_intervals), (hourly, hourly_intervals) = plan.segments()
    assert daily_intervals == ["1d"] and len(daily) == 575
    assert hourly_intervals == ["1d", "1h"] and len(hourly) == 30 and hourly[-1] == "2026-11-26"


def test_a_warm_lake_fetches_only_what_is_missing():
    def days(n: int) -> set[str]:
        return {(FIRST - timedelta(days=i)).isoformat() for i in range(1, n + 1)}

    assert warm_up_plan(FIRST, lambda _: days(700)) is None
    # Yesterday's run left everything but the oldest day of the daily look-back.
    plan = warm_up_plan(FIRST, lambda i: days(604) if i == "1d" else days(30))
    assert plan is not None and plan.segments() == [([(FIRST - timedelta(days=605)).isoformat()], ["1d"])]
    # Never before the first day that can exist.
    early = warm_up_plan(date(2017, 9, 1), lambda _: set(), earliest=date(2017, 8, 17))
    assert early is not None and early.segments()[0][0][0] == "2017-08-17"


def test_a_fresh_lake_warms_up_in_one_ingest_run_and_one_run_of_hourly_bars():
    plan = warm_up_plan(FIRST, lambda _: set())
    assert plan is not None
    ingest, hourly = plan.runs()
    # Raw and bronze once over the 605 days: 1d from the first day, 1h from the last 30 only.
    assert len(ingest.keys) == 605 and ingest.keys[-1] == "2026-11-26"
    assert ingest.intervals == ["1d", "1h"] and ingest.starts == {"1h": "2026-10-28"}
    assert ingest.bars == ["1d"]
    # The hourly bars only where there are hourly klines, without fetching again.
    assert hourly.keys[0] == "2026-10-28" and len(hourly.keys) == 30
    assert hourly.intervals == [] and hourly.bars == ["1h"]


def test_the_next_days_warm_up_is_one_run_and_holes_fall_back_to_segments():
    def days(n: int, skip: int | None = None) -> set[str]:
        return {(FIRST - timedelta(days=i)).isoformat() for i in range(1, n + 1) if i != skip}

    # The day that slid into each look-back (a different day per interval): one run each.
    plan = warm_up_plan(FIRST, lambda i: days(604) if i == "1d" else days(29))
    assert plan is not None
    daily, hourly = plan.runs()
    assert daily.keys == [(FIRST - timedelta(days=605)).isoformat()] and daily.intervals == ["1d"]
    assert hourly.keys == [(FIRST - timedelta(days=30)).isoformat()] and hourly.intervals == ["1h"]
    assert daily.bars == ["1d"] and hourly.bars == ["1h"] and daily.starts == hourly.starts == {}
    # A day both intervals lack: one run fetching and refining both.
    [both] = warm_up_plan(FIRST, lambda i: days(605, skip=3) if i == "1d" else days(30, skip=3)).runs()
    assert both.keys == [(FIRST - timedelta(days=3)).isoformat()] and both.bars == ["1d", "1h"]
    # 1h missing one day inside the 1d stretch (a hole, not the stretch's last days): segments.
    holes = warm_up_plan(FIRST, lambda i: set() if i == "1d" else days(30, skip=10))
    assert holes is not None
    runs = holes.runs()
    assert [(r.keys, r.intervals) for r in runs] == [(k, i) for k, i in holes.segments()]
    assert all(r.bars == r.intervals and r.starts == {} for r in runs)


def test_a_run_that_fetches_nothing_refines_the_look_back_raw_already_holds():
    """`run --no-ingest` over imported days started its indicators cold although the days before
    the range were in raw: RSI/ATR null for 16 days, 62 % of daily RSI null."""
    from datetime import date, timedelta

    from crypto_assets.history import WarmUp

    first = date(2023, 6, 1)
    missing = {
        "1d": [first - timedelta(days=n) for n in range(605, 0, -1)],
        "1h": [first - timedelta(days=n) for n in range(30, 0, -1)],
    }
    imported = {(date(2023, 1, 1) + timedelta(days=n)).isoformat() for n in range(151)}  # Jan..May
    runs = WarmUp(missing).refinement_runs(imported)
    assert all(run.intervals == [] and run.starts == {} for run in runs)  # nothing fetched
    assert [(run.keys[0], run.keys[-1], run.bars) for run in runs] == [
        ("2023-01-01", "2023-05-01", ["1d"]),
        ("2023-05-02", "2023-05-31", ["1d", "1h"]),
    ]
    assert WarmUp(missing).refinement_runs(set()) == []  # nothing imported: nothing to refine
