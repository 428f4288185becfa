import pytest

from crypto_assets.pipeline_config import (
    PipelineConfigError,
    bars_in,
    load_pipeline_config,
    parse_duration,
    parse_pipeline_config,
)


def test_durations():
    assert parse_duration("15m") == 900 and parse_duration("4h") == 14_400 and parse_duration("7d") == 604_800
    assert bars_in("7d", "1h", "x") == 168
    for bad in ("0h", "1w", "h", "1.5h"):
        with pytest.raises(PipelineConfigError):
            parse_duration(bad)


def test_the_shipped_config_is_valid():
    config = load_pipeline_config()
    assert config.gap_policy == "leave_missing" and set(config.features) == {"1h", "1d"}
    assert config.targets["1h"] == ("1h", "4h", "24h")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"bronze": {"gap_policy": "interpolate"}}, "bronze.gap_policy"),
        ({"bronze": {"max_carry": "2d"}}, "at most 1d"),
        ({"silver": {"bar_intervals": ["7m"]}}, "does not divide a day"),
        (
            {"silver": {"bar_intervals": ["1h"], "feature_intervals": {"1d": []}}},
            "not one of silver.bar_intervals",
        ),
        (
            {"silver": {"bar_intervals": ["1h"], "feature_intervals": {"1h": [{"window": 3}]}}},
            "needs a 'feature' key",
        ),
        ({"silver": {"min_fraction": 2}}, "between 0 and 1"),
        ({"gold": {"targets": {"1h": ["1h"]}}}, "no features are computed at 1h"),
        ({"gold": {"correlation_window": "36h"}}, "whole number of days"),
    ],
)
def test_bad_values_are_named(raw, message):
    with pytest.raises(PipelineConfigError, match=message):
        parse_pipeline_config(raw)
