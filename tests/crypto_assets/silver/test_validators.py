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


def test_stablecoin_peg_flags_and_keeps(frame):
    validator = v.stablecoin_peg("close", ["USDC", "DAI"], 0.02)
    result = validator.run(frame)
    assert not validator.blocking and not result.passed
    assert result.details["depegged"]["USDC"]["rows"] == 1
    assert frame.count() == 4  # flagged, never dropped
    assert v.stablecoin_peg("close", ["USDC"], 0.05).run(frame).passed


def test_blocking_is_declared_where_bad_data_must_stop():
    blocking = {
        x.name: x.blocking
        for x in (
            v.schema([]),
            v.value_ranges({}),
            v.null_rates([], "true", 0.0),
            v.feature_warm_up({}, "h"),
            v.stablecoin_peg("p", [], 0.02),
        )
    }
    assert blocking == {
        "schema": True,
        "value_ranges": True,
        "null_rates": False,
        "feature_warm_up": True,
        "stablecoin_peg": False,
    }
