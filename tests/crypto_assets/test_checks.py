"""The metadata every materialization carries."""

from datetime import datetime

import pandas as pd

from crypto_assets.checks import summary_metadata
from crypto_assets.quality import QualitySummary


def _summary(first: object, last: object) -> QualitySummary:
    fields = QualitySummary.__dataclass_fields__
    values = {name: None for name in fields}
    values.update(rows=2, tokens=["BTC"], first_time=first, last_time=last)
    return QualitySummary(**{k: v for k, v in values.items() if k in fields})


def test_epoch_milliseconds_are_shown_as_utc_times():
    meta = summary_metadata(_summary(1_709_251_200_000, 1_709_337_540_000), pd.DataFrame())
    assert meta["first_time"].value == "2024-03-01 00:00:00 UTC"
    assert meta["last_time"].value == "2024-03-01 23:59:00 UTC"


def test_timestamps_are_shown_as_utc_times_and_no_rows_says_so():
    meta = summary_metadata(_summary(datetime(2024, 3, 1), datetime(2024, 3, 1, 23)), pd.DataFrame())
    assert meta["first_time"].value == "2024-03-01 00:00:00 UTC"
    assert summary_metadata(_summary(None, None), pd.DataFrame())["last_time"].value == "no rows"


def test_a_range_run_records_each_days_own_rows_and_tokens():
    from types import SimpleNamespace

    from crypto_assets.checks import add_day_rows

    recorded: dict[str, dict] = {}
    context = SimpleNamespace(
        has_partition_key_range=True,
        partition_keys=["2024-03-01", "2024-03-02", "2024-03-03"],
        add_asset_metadata=lambda metadata, partition_key: recorded.update({partition_key: metadata}),
    )
    frame = pd.DataFrame(
        {
            "bar_time": pd.to_datetime(["2024-03-01 00:00", "2024-03-01 05:00", "2024-03-03 23:00"]),
            "token": ["BTC", "ETH", "BTC"],
        }
    )
    add_day_rows(context, frame, "bar_time")
    counts = {day: (m["dagster/row_count"].value, m["tokens"].value) for day, m in recorded.items()}
    assert counts == {"2024-03-01": (2, 2), "2024-03-02": (0, 0), "2024-03-03": (1, 1)}
    add_day_rows(context, frame.head(0), "bar_time")  # no rows: every day says 0
    assert {m["dagster/row_count"].value for m in recorded.values()} == {0}
