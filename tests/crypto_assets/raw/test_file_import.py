import shutil
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance

from crypto_assets.raw.file_import import ImportError_, import_files, read_file
from resources.settings import Settings


def test_generic_ohlcv_keeps_the_file_digits_and_leaves_missing_fields_null(real_data):
    frame = read_file(real_data / "binance_spot_1h_2023" / "PEPEUSDT_1h.csv.gz").rows
    first = frame.iloc[0]
    assert first["symbol"] == "PEPEUSDT" and first["interval"] == "1h"
    assert first["open"] == "0.00000197" and first["volume"] == "18251592538769.00"
    assert first["close_time"] == first["open_time"] + 3_600_000 - 1
    assert first["quote_volume"] is None and pd.isna(first["trade_count"])
    assert first["source"] == "file:PEPEUSDT_1h.csv.gz"
    assert (first["venue"], first["market"]) == ("binance", "spot")


def test_archive_csv_with_header(real_data):
    frame = read_file(real_data / "binance_spot_archive_1h" / "BTCUSDT-1h-2023-02.csv").rows
    assert len(frame) == 28 * 24 and frame["trade_count"].notna().all()
    assert frame["interval"].unique().tolist() == ["1h"]


def test_files_without_what_is_needed_are_refused(tmp_path: Path):
    bad = tmp_path / "prices.csv"
    bad.write_text("when,price\n2023-01-01,1\n")
    with pytest.raises(ImportError_, match="needs a time column"):
        read_file(bad)
    nameless = tmp_path / "prices2.csv"
    nameless.write_text(
        "date,open,high,low,close,volume\n2023-01-01 00:00:00,1,1,1,1,1\n2023-01-01 01:00:00,1,1,1,1,1\n"
    )
    with pytest.raises(ImportError_, match="no symbol"):
        read_file(nameless)
    assert read_file(nameless, symbol="BTCUSDT").rows["symbol"].iloc[0] == "BTCUSDT"


@pytest.mark.integration
def test_import_lands_in_raw_partitions_idempotently(local_env, monkeypatch, tmp_path, spark, real_data):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    settings = Settings.from_env()
    files = [
        real_data / "binance_spot_1h_2023" / "BTCUSDT_1h.csv.gz",
        real_data / "binance_spot_1h_2023" / "PEPEUSDT_1h.csv.gz",
    ]
    copies = []
    for path in files:
        shutil.copy(path, tmp_path / path.name)
        copies.append(tmp_path / path.name)
    report = import_files(copies, settings, say=lambda _: None)
    assert report["partitions"] == 364 and report["first_day"] == "2023-01-01"

    def day(key: str):
        return spark.read.parquet(str(local_env / "raw" / "raw_klines" / f"dt={key}"))

    # The real outage of 2023-03-24 stays a gap: the 13:00 bar is missing, nothing invented.
    outage = day("2023-03-24").where("symbol = 'BTCUSDT'")
    assert outage.count() == 23 and outage.where("open_time = 1679662800000").count() == 0
    assert day("2023-05-04").where("symbol = 'PEPEUSDT'").count() == 0  # before its listing
    assert day("2023-05-05").where("symbol = 'PEPEUSDT'").count() == 6  # listed at 18:00
    before = day("2023-06-01").count()
    again = import_files(copies[:1], settings, say=lambda _: None)  # the same file again: no duplicates
    assert day("2023-06-01").count() == before == 48
    assert again["replaced"] == again["rows"] == 8_731 and again["shadowed"] == 0
    materializations = (
        DagsterInstance.get().fetch_materializations(AssetKey("raw_klines"), limit=1000).records
    )
    assert {m.partition_key for m in materializations} >= {"2023-01-01", "2023-12-30"}


def test_fetch_plan_uses_monthly_files_for_whole_months():
    from datetime import UTC, datetime

    from crypto_assets.raw.fetch import fetch_plan

    start, end = datetime(2024, 1, 30, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC)
    plan = fetch_plan(start, end, use_archive=True)
    assert [(s.date().isoformat(), m) for s, _, m in plan] == [
        ("2024-01-30", False), ("2024-01-31", False), ("2024-02-01", True), ("2024-03-01", False),
    ]  # fmt: skip
    assert plan[2][1] == datetime(2024, 3, 1, tzinfo=UTC)
    assert all(not m for _, _, m in fetch_plan(start, end, use_archive=False))
    assert len(fetch_plan(start, end, use_archive=False)) == 32


def test_fetch_plan_takes_coarse_klines_as_ranges():
    from datetime import UTC, datetime

    from crypto_assets.raw.fetch import fetch_plan

    start, end = datetime(2024, 1, 30, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC)
    # REST: one range (a 1d request covers 1,000 days); archive: monthly files between the edges.
    assert fetch_plan(start, end, use_archive=False, interval="1d") == [(start, end, False)]
    plan = fetch_plan(start, end, use_archive=True, interval="1h")
    assert [(s.date().isoformat(), e.date().isoformat(), m) for s, e, m in plan] == [
        ("2024-01-30", "2024-02-01", False), ("2024-02-01", "2024-03-01", True), ("2024-03-01", "2024-03-02", False),
    ]  # fmt: skip


def test_fetching_one_interval_keeps_the_others(spark):
    from crypto_assets.raw.merge import exchange_rows, merge_raw

    columns = ["venue", "market", "symbol", "interval", "open_time", "close", "source", "ingested_at"]
    old = spark.createDataFrame(
        [
            ("binance", "spot", "BTCUSDT", "1m", 0, "1", "binance_archive", 1),
            ("binance", "spot", "BTCUSDT", "1d", 0, "1", "binance_archive", 1),
            ("binance", "spot", "BTCUSDT", "1d", 0, "9", "file:mine.csv", 1),  # a user's file: kept
        ],
        columns,
    )
    new = spark.createDataFrame([("binance", "spot", "BTCUSDT", "1d", 0, "2", "binance_rest", 2)], columns)
    merged = merge_raw(
        old, new, exchange_rows(["binance_archive", "binance_rest"], {"1d": 0}, "binance", "spot")
    )
    assert sorted((r["interval"], r["close"], r["source"]) for r in merged.collect()) == [
        ("1d", "2", "binance_rest"), ("1d", "9", "file:mine.csv"), ("1m", "1", "binance_archive"),
    ]  # fmt: skip
