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
