import gzip
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial

import pandas as pd

from crypto_assets.bronze.transforms import BRONZE_COLUMNS
from crypto_assets.bronze.transforms import clean_klines as _clean_klines
from crypto_assets.ingestion.binance import INTERVAL_MS
from crypto_assets.raw.schema import RAW_KLINES_SCHEMA

START = datetime(2023, 5, 6, tzinfo=UTC)
END = datetime(2023, 5, 7, tzinfo=UTC)
PAIRS = {
    "binance/spot/PEPEUSDT": "PEPE",
    "binance/spot/BTCUSDT": "BTC",
    "binance/usdm_futures/BTCUSDT": "BTC",
    "binance/spot/USDCUSDT": "USDC",
    "binance/spot/SHIBUSDT": "SHIB",
}
CATEGORIES = {"PEPE": "Meme", "BTC": "Layer 1", "USDC": "Payment", "SHIB": "Meme"}
LISTINGS = [
    ("binance/spot/BTCUSDT", datetime(2017, 8, 17, tzinfo=UTC), None),
    ("binance/spot/PEPEUSDT", datetime(2023, 5, 5, 18, tzinfo=UTC), None),
    ("binance/spot/SHIBUSDT", datetime(2021, 5, 10, tzinfo=UTC), None),
    # The universe says 00:00; the exchange delivered two more bars (the universe is wrong).
    ("binance/spot/USDCUSDT", datetime(2018, 12, 15, tzinfo=UTC), datetime(2023, 5, 6, tzinfo=UTC)),
]
clean_klines = partial(_clean_klines, listings=LISTINGS, intervals=tuple(INTERVAL_MS))


def _raw_row(
    symbol: str,
    open_time: datetime,
    close: str,
    ingested: datetime,
    interval: str = "1m",
    market: str = "spot",
) -> dict:
    ms = int(open_time.timestamp() * 1000)
    return {
        "venue": "binance", "market": market, "symbol": symbol, "open_time": ms, "open": close, "high": close, "low": close, "close": close,
        "volume": "1", "close_time": ms + INTERVAL_MS[interval] - 1, "quote_volume": None, "trade_count": None,
        "taker_buy_base_volume": None, "taker_buy_quote_volume": None, "interval": interval,
        "source": "test", "ingested_at": ingested.replace(tzinfo=None),
    }  # fmt: skip


def test_latest_ingestion_wins_and_window_is_enforced(spark):
    t = datetime(2023, 5, 6, 12, tzinfo=UTC)
    rows = [
        _raw_row("BTCUSDT", t, "100.0", datetime(2023, 5, 7, 1)),
        _raw_row("BTCUSDT", t, "101.0", datetime(2023, 5, 7, 2)),  # re-fetch corrects the row
        _raw_row("BTCUSDT", datetime(2023, 5, 7, tzinfo=UTC), "102.0", datetime(2023, 5, 7, 2)),  # next day
        _raw_row("XYZUSDT", t, "1.0", datetime(2023, 5, 7, 2)),  # unknown pair keeps a null token
    ]
    raw = spark.createDataFrame(pd.DataFrame(rows), schema=RAW_KLINES_SCHEMA)
    out = clean_klines(raw, PAIRS, CATEGORIES, start=START, end=END).where("NOT is_gap")
    assert tuple(out.columns) == BRONZE_COLUMNS
    result = {(r["symbol"], r["close"]) for r in out.collect()}
    assert result == {
        ("BTCUSDT", Decimal("101.000000000000000000")),
        ("XYZUSDT", Decimal("1.000000000000000000")),
    }
    assert out.where("token is null").count() == 1
    assert out.schema["open_time"].dataType.simpleString() == "timestamp"


def test_real_pepe_prices_and_volumes_keep_every_digit(spark, real_data):
    with gzip.open(real_data / "binance_spot_1h_2023" / "PEPEUSDT_1h.csv.gz", "rt") as handle:
        real = pd.read_csv(handle, dtype=str).head(48)
    rows = []
    for record in real.to_dict("records"):
        opened = datetime.fromisoformat(record["date"]).replace(tzinfo=UTC)
        row = _raw_row("PEPEUSDT", opened, record["close"], datetime(2023, 12, 31))
        row.update({k: record[k] for k in ("open", "high", "low", "close", "volume")})
        rows.append(row)
    raw = spark.createDataFrame(pd.DataFrame(rows), schema=RAW_KLINES_SCHEMA)
    first = datetime.fromisoformat(real["date"].iloc[0]).replace(tzinfo=UTC)
    out = clean_klines(raw, PAIRS, CATEGORIES, start=first, end=first.replace(year=2024))
    out = out.where("NOT is_gap").orderBy("open_time").collect()
    assert len(out) == len(real)
    for bronze, source in zip(out, real.to_dict("records"), strict=True):
        assert bronze["close"] == Decimal(source["close"])  # 1e-6 prices, exactly
        assert bronze["volume"] == Decimal(source["volume"])  # 1e13 volumes, exactly
        assert bronze["category"] == "Meme" and bronze["token"] == "PEPE"


def _hourly(spark, hours: list[int], day: datetime = START, symbol: str = "BTCUSDT", market: str = "spot"):
    rows = [
        _raw_row(symbol, day + timedelta(hours=h), str(100 + h), datetime(2023, 6, 1), "1h", market)
        for h in hours
    ]
    return spark.createDataFrame(pd.DataFrame(rows), schema=RAW_KLINES_SCHEMA)


def test_missing_bars_are_flagged_rows_left_null(spark):
    # An outage from 12:00 to 14:00, as on 2023-03-24: two hourly bars never delivered.
    raw = _hourly(spark, [h for h in range(24) if h not in (12, 13)])
    out = clean_klines(raw, PAIRS, CATEGORIES, start=START, end=END).orderBy("open_time").collect()
    assert len(out) == 24  # one row per slot of the grid
    gaps = [r for r in out if r["is_gap"]]
    assert [r["open_time"].hour for r in gaps] == [12, 13]
    assert all(r["close"] is None and r["volume"] is None and r["source"] is None for r in gaps)
    assert all(r["interval"] == "1h" and r["token"] == "BTC" for r in out)


def test_a_bar_off_the_grid_does_not_count_for_the_slot_it_misses(spark):
    # 24 bars for 24 slots, but one opens at 05:30 instead of 05:00: a complete-looking day whose
    # 05:00 slot is still missing (the grid is listed for it, not skipped as a complete day).
    rows = [
        _raw_row("BTCUSDT", START + timedelta(hours=h), "1", datetime(2023, 6, 1), "1h") for h in range(24)
    ]
    rows[5] = _raw_row("BTCUSDT", START + timedelta(hours=5, minutes=30), "1", datetime(2023, 6, 1), "1h")
    raw = spark.createDataFrame(pd.DataFrame(rows), schema=RAW_KLINES_SCHEMA)
    out = clean_klines(raw, PAIRS, CATEGORIES, start=START, end=END).collect()
    assert [r["open_time"] for r in out if r["is_gap"]] == [datetime(2023, 5, 6, 5)]
    assert len(out) == 25  # the off-grid bar is kept, as before


def test_complete_days_have_no_gap_rows_beside_a_day_with_gaps(spark):
    day_before = START - timedelta(days=1)
    complete = _hourly(spark, list(range(24)), day=day_before).union(_hourly(spark, list(range(24))))
    holed = _hourly(spark, [h for h in range(24) if h != 7], symbol="SHIBUSDT")
    out = clean_klines(complete.union(holed), PAIRS, CATEGORIES, start=START, end=END).collect()
    assert sorted((r["symbol"], r["open_time"].hour) for r in out if r["is_gap"]) == [("SHIBUSDT", 7)]
    assert len(out) == 48


def test_carry_forward_fills_with_the_last_close_within_the_bound(spark):
    raw = _hourly(spark, [h for h in range(24) if h not in (12, 13)])
    out = (
        clean_klines(
            raw, PAIRS, CATEGORIES, start=START, end=END, gap_policy="carry_forward", max_carry_seconds=3600
        )
        .orderBy("open_time")
        .collect()
    )
    by_hour = {r["open_time"].hour: r for r in out}
    # 12:00 carries 11:00's close; 13:00 is more than max_carry (1h) after it: left missing.
    assert by_hour[12]["is_gap"] and by_hour[12]["close"] == by_hour[12]["open"] == Decimal(111)
    assert by_hour[12]["volume"] == 0 and by_hour[12]["trade_count"] == 0
    assert by_hour[13]["is_gap"] and by_hour[13]["close"] is None
    assert not by_hour[14]["is_gap"] and by_hour[14]["close"] == Decimal(114)


def test_carry_forward_reaches_into_the_previous_day(spark):
    yesterday = _hourly(spark, [23], day=START - timedelta(days=1))
    today = _hourly(spark, list(range(1, 24)))
    out = clean_klines(
        yesterday.unionByName(today), PAIRS, CATEGORIES, start=START, end=END, gap_policy="carry_forward"
    )
    first = out.orderBy("open_time").first()
    assert first["open_time"].hour == 0 and first["is_gap"] and first["close"] == Decimal(123)
    assert out.count() == 24  # the look-back day is not part of the output


def test_grid_starts_at_the_listing(spark):
    # PEPE listed 2023-05-05 18:00: its first day has 6 hourly slots, none before the listing.
    listing_day = datetime(2023, 5, 5, tzinfo=UTC)
    raw = _hourly(spark, [18, 20, 21, 22, 23], day=listing_day, symbol="PEPEUSDT")
    out = clean_klines(raw, PAIRS, CATEGORIES, start=listing_day, end=listing_day + timedelta(days=1))
    rows = out.orderBy("open_time").collect()
    assert [r["open_time"].hour for r in rows] == [18, 19, 20, 21, 22, 23]
    assert [r["open_time"].hour for r in rows if r["is_gap"]] == [19]


def test_gap_rows_only_between_the_first_and_last_real_bars(spark):
    # SHIB's data begins at 11:00 (no bar the day before): no gap rows before its first real bar,
    # whatever the universe's (older) listing date says. BTC traded the day before: its 00:00 and
    # 01:00 are gaps (an outage across midnight).
    day = START
    raw = (
        _hourly(spark, [11, 12, 14], symbol="SHIBUSDT")
        .unionByName(_hourly(spark, [23], day=day - timedelta(days=1)))
        .unionByName(_hourly(spark, list(range(2, 24))))
    )
    out = clean_klines(raw, PAIRS, CATEGORIES, start=day, end=day + timedelta(days=1))
    shib = out.where("symbol = 'SHIBUSDT'").orderBy("open_time").collect()
    assert [r["open_time"].hour for r in shib] == list(range(11, 24))
    assert [r["open_time"].hour for r in shib if r["is_gap"]] == [13, *range(15, 24)]
    btc = out.where("symbol = 'BTCUSDT'").orderBy("open_time").collect()
    assert len(btc) == 24 and [r["open_time"].hour for r in btc if r["is_gap"]] == [0, 1]


def test_bars_after_a_listing_end_are_kept_and_named(spark):
    from crypto_assets.bronze.transforms import outside_listing, series_column

    # The universe ends USDC at 2023-05-06 00:00, but the exchange delivered 00:00 and 01:00.
    previous = _hourly(spark, list(range(24)), day=START - timedelta(days=1), symbol="USDCUSDT")
    raw = previous.unionByName(_hourly(spark, [0, 1], symbol="USDCUSDT"))
    out = clean_klines(raw, PAIRS, CATEGORIES, start=START, end=END)
    assert [(r["open_time"].hour, r["is_gap"]) for r in out.orderBy("open_time").collect()] == [
        (0, False), (1, False),
    ]  # fmt: skip
    named = out.where(outside_listing(LISTINGS)).select(series_column().alias("_series"), "open_time")
    assert [(r["_series"], r["open_time"].hour) for r in named.orderBy("open_time").collect()] == [
        ("binance/spot/USDCUSDT", 0), ("binance/spot/USDCUSDT", 1),
    ]  # fmt: skip


def test_the_listing_check_names_bars_outside_the_universe_listings(spark, monkeypatch):
    from crypto_assets.bronze import assets

    monkeypatch.setattr(assets, "universe_listings", lambda: LISTINGS)
    previous = _hourly(spark, list(range(24)), day=START - timedelta(days=1), symbol="USDCUSDT")
    outside = clean_klines(
        previous.unionByName(_hourly(spark, [0, 1], symbol="USDCUSDT")),
        PAIRS,
        CATEGORIES,
        start=START,
        end=END,
    )
    inside = clean_klines(_hourly(spark, list(range(24))), PAIRS, CATEGORIES, start=START, end=END)
    check = assets.bars_within_listing()
    found = check.run(outside)
    assert not found.passed and found.details["bars_outside_listing"] == 2
    assert [b["open_time"] for b in found.details["bars"]] == ["2023-05-06 00:00:00", "2023-05-06 01:00:00"]
    assert check.run(inside).passed and check.run(inside).details == {"bars_outside_listing": 0, "bars": []}


def test_venues_and_markets_are_separate_series(spark):
    # The same pair and hour on spot and on USDT-M futures: two rows, neither replaces the other.
    spot = _hourly(spark, list(range(24)))
    futures = _hourly(spark, list(range(24)), market="usdm_futures")
    out = clean_klines(spot.unionByName(futures), PAIRS, CATEGORIES, start=START, end=END)
    counts = {r["market"]: r["count"] for r in out.groupBy("market").count().collect()}
    assert counts == {"spot": 24, "usdm_futures": 24}
    assert out.where("token = 'BTC' AND NOT is_gap").count() == 48


def test_a_row_that_cannot_be_a_bar_is_quarantined_and_the_day_kept(spark):
    """`high = inf` in one source's row failed the whole day for every venue and token with a
    CAST_INVALID_INPUT naming nothing; a zero price was accepted."""
    from crypto_assets.bronze.transforms import quarantined_klines

    t = datetime(2023, 5, 6, 12, 1, tzinfo=UTC)
    bad = {**_raw_row("BTCUSDT", t, "100.0", datetime(2023, 5, 7, 1)), "high": "inf", "source": "file:x.csv"}
    zero = {**_raw_row("PEPEUSDT", t, "0", datetime(2023, 5, 7, 1)), "source": "file:y.csv"}
    good = [_raw_row("BTCUSDT", t + timedelta(minutes=m), "101.0", datetime(2023, 5, 7, 1)) for m in (-1, 1)]
    raw = spark.createDataFrame(pd.DataFrame([bad, zero, *good]), schema=RAW_KLINES_SCHEMA)
    out = clean_klines(raw, PAIRS, CATEGORIES, start=START, end=END)
    btc = {r["open_time"]: r for r in out.where("symbol = 'BTCUSDT' AND interval = '1m'").collect()}
    naive = t.replace(tzinfo=None)
    assert btc[naive]["is_gap"] and btc[naive]["close"] is None  # the bad row's slot: a gap
    assert btc[naive + timedelta(minutes=1)]["close"] == Decimal("101.0")  # the day is kept
    reasons = {(r["source"], r["symbol"]): r["reason"] for r in quarantined_klines(raw, START, END).collect()}
    assert reasons == {
        ("file:x.csv", "BTCUSDT"): "high = inf is not a positive price",
        ("file:y.csv", "PEPEUSDT"): "open = 0 is not a positive price",
    }
