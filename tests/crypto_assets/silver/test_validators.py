from collections.abc import Callable

import pandas as pd
import pytest

from crypto_assets.silver import validators as v


@pytest.fixture
def frame(spark):
    rows = [
        {"token": "BTC", "close": 100.0, "rsi_14": 55.0, "history_bars": 600},
        {"token": "USDC", "close": 0.97, "rsi_14": 45.0, "history_bars": 600},  # 3% off the peg
        {"token": "ETH", "close": 10.0, "rsi_14": None, "history_bars": 600},  # warm, yet null
        {"token": "PEPE", "close": 1e-6, "rsi_14": None, "history_bars": 3},  # still warming up
    ]
    return spark.createDataFrame(pd.DataFrame(rows))


def test_schema_names_what_is_missing_or_retyped(frame):
    ok = v.schema(
        [("token", "string"), ("close", "double"), ("rsi_14", "double"), ("history_bars", "bigint")]
    )
    assert ok.run(frame).passed
    bad = v.schema([("token", "string"), ("close", "decimal(38,18)"), ("rsi_14", "double")]).run(frame)
    assert not bad.passed and ["close", "decimal(38,18)"] in [
        list(c) for c in bad.details["missing_or_retyped"]
    ]
    assert ("history_bars", "bigint") in bad.details["unexpected"]


def test_value_ranges_count_violations_and_non_finite_values(spark, frame):
    assert v.value_ranges({"rsi_14": (0, 100), "close": (0, None)}).run(frame).passed
    failed = v.value_ranges({"rsi_14": (0, 50)}).run(frame)
    assert not failed.passed and failed.details["violations"] == {"rsi_14": 1}
    nan = spark.sql(
        "SELECT CAST(x AS DOUBLE) AS x FROM VALUES ('1.0'), ('NaN'), ('Infinity'), (NULL) AS t(x)"
    )
    assert v.value_ranges({"x": (None, None)}).run(nan).details["violations"] == {"x": 2}


def test_null_rates_only_judge_warm_rows(frame):
    result = v.null_rates(["rsi_14"], "history_bars >= 600", max_rate=0.01).run(frame)
    assert not result.passed and result.details["above_max"] == {"rsi_14": pytest.approx(1 / 3, rel=1e-4)}
    assert v.null_rates(["rsi_14"], "history_bars >= 600", max_rate=0.5).run(frame).passed


def test_warm_up_refuses_a_value_from_a_partial_window(spark):
    early = spark.createDataFrame(pd.DataFrame({"rsi_14": [50.0, None], "history_bars": [10, 3]}))
    result = v.feature_warm_up({"rsi_14": 374}, "history_bars").run(early)
    assert not result.passed and result.details["early_values"] == {"rsi_14": 1}
    assert v.feature_warm_up({"rsi_14": 5}, "history_bars").run(early).passed


def test_aggregating_validators_judge_the_summary_pass_as_they_judge_alone(spark, frame):
    """publish() folds a validator's aggregations into the frame's one summary pass: the verdict
    and details are those of the validator run on its own, in one Spark job instead of several."""
    from crypto_assets.quality import summarize

    rules = [
        v.value_ranges({"rsi_14": (0, 50), "close": (0, None), "absent": (0, 1)}),
        v.null_rates(["rsi_14", "absent"], "history_bars >= 600", max_rate=0.01),
        v.feature_warm_up({"rsi_14": 601, "absent": 5}, "history_bars"),
    ]
    extra = {f"{i}:{k}": c for i, rule in enumerate(rules) for k, c in rule.aggregates(frame).items()}
    tracker = spark.sparkContext.statusTracker()

    def jobs_of(work: Callable[[], object]) -> int:
        before = len(tracker.getJobIdsForGroup(None))
        work()
        return len(tracker.getJobIdsForGroup(None)) - before

    def summary_with(aggregates: dict) -> object:
        return summarize(frame, keys=("token",), time_column="history_bars", extra_aggregates=aggregates)

    summary = summary_with(extra)
    # The rules add no Spark job to the summary; alone, each costs at least one.
    assert jobs_of(lambda: summary_with(extra)) == jobs_of(lambda: summary_with({}))
    assert all(jobs_of(lambda rule=rule: rule.run(frame)) >= 1 for rule in rules)
    for i, rule in enumerate(rules):
        folded = rule.judge(
            frame, {k.split(":", 1)[1]: val for k, val in summary.extra.items() if k.startswith(f"{i}:")}
        )
        alone = rule.run(frame)
        assert (folded.passed, folded.details) == (alone.passed, alone.details), rule.name
    assert [r.run(frame).passed for r in rules] == [False, False, False]


def _stable_bars(spark, quotes: dict[str, list[tuple[float, float, float]]]):
    """USDT-quoted hourly bars from 2022-05-12 00:00: token -> [(low, high, close), ...]."""
    start = pd.Timestamp("2022-05-12 00:00")
    rows = [
        {
            "token": token,
            "open_time": start + pd.Timedelta(hours=h),
            "low": lo,
            "high": hi,
            "close": c,
            "is_gap": False,
        }
        for token, bars in quotes.items()
        for h, (lo, hi, c) in enumerate(bars)
    ]
    return spark.createDataFrame(pd.DataFrame(rows))


PEG = ["USDT", "USDC", "BUSD", "TUSD", "DAI"]


def test_a_usdt_wide_move_is_reported_as_usdt(spark):
    # 2022-05-12 (UST collapse): USDT fell to ~$0.95, so every USDT-quoted stablecoin rose ~5%
    # at once. That is USDT's de-peg, not USDC's, BUSD's and TUSD's.
    par, up = (0.999, 1.001, 1.0), (1.049, 1.056, 1.053)
    bars = _stable_bars(spark, {c: [par, up, up, par] for c in ("USDC", "BUSD", "TUSD")})
    result = v.stablecoin_peg(PEG, 0.02, 3600).run(bars)
    assert not result.passed
    assert [
        (e["token"], e["start"], e["end"], e["slots"], e["side"]) for e in result.details["episodes"]
    ] == [
        ("USDT", "2022-05-12 01:00:00", "2022-05-12 03:00:00", 2, "below"),
    ]
    assert result.details["episodes"][0]["extreme_usd"] == pytest.approx(1 / 1.053, abs=1e-6)


def test_one_coin_off_its_peg_is_named_with_start_end_and_extreme_on_lows(spark):
    # USDC's March 2023 de-peg: its hourly low went to 0.91 while BUSD and TUSD held.
    par = (0.999, 1.001, 1.0)
    usdc = [par, (0.95, 1.0, 0.97), (0.9128, 0.96, 0.93), (0.97, 0.99, 0.985), par, (0.975, 1.0, 0.99)]
    bars = _stable_bars(spark, {"USDC": usdc, "BUSD": [par] * 6, "TUSD": [par] * 6})
    result = v.stablecoin_peg(PEG, 0.02, 3600).run(bars)
    assert [(e["token"], e["start"], e["end"], e["extreme_usd"]) for e in result.details["episodes"]] == [
        ("USDC", "2022-05-12 01:00:00", "2022-05-12 04:00:00", 0.9128),
        ("USDC", "2022-05-12 05:00:00", "2022-05-12 06:00:00", 0.975),  # a wick below 0.98: on the low
    ]
    assert bars.count() == 18  # flagged, never dropped
    assert v.stablecoin_peg(PEG, 0.10, 3600).run(bars).passed


def test_a_peg_check_with_no_stablecoin_in_range_says_so_and_does_not_pass(spark):
    """On the USDC de-peg day with no stablecoin bars in range it reported SUCCEEDED with
    episode_count 0 and usdt_measured_slots 0."""
    bars = _stable_bars(spark, {"BTC": [(99.0, 101.0, 100.0)] * 3})
    result = v.stablecoin_peg(PEG, 0.02, 3600).run(bars)
    assert not result.passed and result.details["nothing_evaluated"] == "no stablecoin bars in range"
    assert result.details["evaluated_slots"] == 0
    frame = spark.createDataFrame(
        pd.DataFrame({"token": ["BTC"], "hour": [pd.Timestamp("2023-03-11")], "price_usd": [2e4]})
    )
    markets = v.usd_peg("price_usd", "hour", PEG, 0.02).run(frame)
    assert not markets.passed and markets.details["nothing_evaluated"] == "no stablecoin price_usd in range"
    usdc = _stable_bars(spark, {"USDC": [(0.999, 1.001, 1.0)] * 3})
    assert v.stablecoin_peg(PEG, 0.02, 3600).run(usdc).details["evaluated_slots"] == 3


def test_usd_prices_from_coingecko_report_episodes(spark):
    hours = pd.date_range("2023-03-11 00:00", periods=4, freq="h")
    frame = spark.createDataFrame(
        pd.DataFrame({"token": "USDC", "hour": hours, "price_usd": [1.0, 0.95, 0.9, 1.0]})
    )
    result = v.usd_peg("price_usd", "hour", PEG, 0.02).run(frame)
    assert result.details["episodes"] == [
        {"token": "USDC", "start": "2023-03-11 01:00:00", "end": "2023-03-11 03:00:00", "slots": 2,
         "extreme_usd": 0.9, "side": "below"},
    ]  # fmt: skip


def test_blocking_is_declared_where_bad_data_must_stop():
    blocking = {
        x.name: x.blocking
        for x in (
            v.schema([]),
            v.value_ranges({}),
            v.null_rates([], "true", 0.0),
            v.feature_warm_up({}, "h"),
            v.stablecoin_peg([], 0.02, 3600),
        )
    }
    assert blocking == {
        "schema": True,
        "value_ranges": True,
        "null_rates": False,
        "feature_warm_up": True,
        "stablecoin_peg": False,
    }
