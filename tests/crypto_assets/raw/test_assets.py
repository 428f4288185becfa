from datetime import UTC, datetime

import pytest

from crypto_assets.raw.assets import RawKlinesConfig

START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)


def test_each_interval_starts_at_the_window_or_its_own_later_day():
    config = RawKlinesConfig(intervals=["1h", "1d"], interval_starts={"1h": "2026-02-10"})
    assert config.starts(START, END) == {"1h": datetime(2026, 2, 10, tzinfo=UTC), "1d": START}
    # A start before the window is the window's; one at or after its end fetches nothing.
    assert RawKlinesConfig(intervals=["1h"], interval_starts={"1h": "2025-06-01"}).starts(START, END) == {
        "1h": START
    }
    assert RawKlinesConfig(intervals=["1h", "1d"], interval_starts={"1h": "2026-03-01"}).starts(
        START, END
    ) == {"1d": START}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (RawKlinesConfig(intervals=["1h", "7x"]), "not Binance kline intervals"),
        (RawKlinesConfig(intervals=["1d"], interval_starts={"1h": "2026-02-01"}), "not among intervals"),
        (RawKlinesConfig(intervals=["1h"], interval_starts={"1h": "02/10/2026"}), "is not a day"),
    ],
)
def test_bad_intervals_and_starts_are_refused_by_name(config: RawKlinesConfig, message: str):
    with pytest.raises(ValueError, match=message):
        config.starts(START, END)
