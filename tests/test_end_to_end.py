"""Every layer for real: emulator (HTTP) -> lake (Spark) -> embedded warehouse (Snowflake protocol).

Day 1 alone, then days 1..2 as one run: a re-run of day 1 and a first run of day 2."""

from pathlib import Path

import pytest
import snowflake.connector
from dagster import DagsterInstance

from crypto_assets.definitions import build_definitions
from crypto_assets.raw.file_import import import_files
from crypto_assets.universe import load_universe
from resources.settings import Settings
from tests.conftest import warehouse_query

pytestmark = pytest.mark.integration
DAYS = ["2024-03-01", "2024-03-02"]


def _gold_counts(settings: Settings) -> list[tuple]:
    with snowflake.connector.connect(**settings.connector_args()) as conn:
        cursor = conn.cursor()
        cursor.execute(
            "SELECT DT, COUNT(*), COUNT(DISTINCT TOKEN), COUNT(DISTINCT TOKEN || BAR_TIME::VARCHAR)"
            " FROM GOLD_MARKET_FEATURES GROUP BY DT ORDER BY DT"
        )
        return [tuple(str(v) if i == 0 else v for i, v in enumerate(row)) for row in cursor.fetchall()]


def test_two_days_through_every_layer_and_a_rerun(local_env: Path, spark, tmp_path, monkeypatch):
    settings = Settings.from_env()
    # A user's own 4-hourly file for day 1, imported first: the exchange run (1m, 1h and 1d
    # klines) must keep its rows.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    mine = tmp_path / "BTCUSDT_4h.csv"
    mine.write_text(
        "date,open,high,low,close,volume\n"
        + "".join(f"{DAYS[0]} {h:02d}:00:00,1,2,0.5,1.5,10\n" for h in range(0, 12, 4))
    )
    import_files([mine], settings, say=lambda _: None)
    job = build_definitions(settings).resolve_job_def("market_data_job")
    instance = DagsterInstance.ephemeral()
    # Day 1 alone, as the daily schedule runs it.
    first = job.execute_in_process(partition_key=DAYS[0], instance=instance)
    assert first.success
    assert [e.check_name for e in first.get_asset_check_evaluations() if not e.passed] == []

    # 37 tokens minus USDT (quote asset), DAI (no pair), BUSD (delisted 2023-12) and TAO (listed 2024-04).
    expected = 33
    assert len(load_universe().active_pairs(*_window(DAYS[0]))) == expected
    assert _gold_counts(settings) == [(DAYS[0], expected * 24, expected, expected * 24)]
    # Day 1 ran before day 2 existed: its last hour has no 1h target, no hour a 24h one (yet).
    assert warehouse_query(settings, TARGETS) == [(expected * 23, 0)]
    # CoinGecko: 5-minute points for a one-day window.
    coingecko = spark.read.parquet(str(local_env / "raw" / "raw_coingecko_markets" / f"dt={DAYS[0]}"))
    assert coingecko.count() == 37 * 288

    # Both days as ONE run (the backfill policy's range): day 1 again, its rows replaced and
    # none duplicated, the import's kept; day 2 new, with day 1 as its look-back. Every check of
    # the range and of each day passes.
    ranged = job.execute_in_process(
        instance=instance,
        tags={"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[1]},
    )
    assert ranged.success
    assert [(e.check_name, e.partition) for e in ranged.get_asset_check_evaluations() if not e.passed] == []
    assert _gold_counts(settings) == [
        (DAYS[0], expected * 24, expected, expected * 24),
        (DAYS[1], expected * 24, expected, expected * 24),
    ]

    for day in DAYS:
        raw = spark.read.parquet(str(local_env / "raw" / "raw_klines" / f"dt={day}"))
        # Per pair and day: 1,440 1m klines, 24 of 1h and one of 1d, each at its own interval.
        assert raw.count() == expected * 1465 + (3 if day == DAYS[0] else 0)
        assert sorted(r["interval"] for r in raw.select("interval").distinct().collect()) == (
            ["1d", "1h", "1m", "4h"] if day == DAYS[0] else ["1d", "1h", "1m"]
        )
        sources = {r["source"] for r in raw.select("source").distinct().collect()}
        assert sources == (
            {"binance_archive", "binance_rest", "file:BTCUSDT_4h.csv"}
            if day == DAYS[0]
            else {"binance_archive", "binance_rest"}
        )
        bronze = spark.read.parquet(str(local_env / "bronze" / "bronze_klines" / f"dt={day}"))
        # Day 1 also has the user's 3 BTC bars on a 4-hourly grid: 3 flagged gap rows.
        assert bronze.count() == expected * 1465 + (6 if day == DAYS[0] else 0), day
        assert bronze.where("is_gap").count() == (3 if day == DAYS[0] else 0)
        hourly = spark.read.parquet(str(local_env / "silver" / "silver_features_1h" / f"dt={day}"))
        assert hourly.count() == expected * 24 and hourly.where("is_gap").count() == 0
        fives = spark.read.parquet(str(local_env / "silver" / "silver_bars_5m" / f"dt={day}"))
        assert fives.count() == expected * 288
    # CoinGecko: all 37 tokens (USDT and DAI included); as its API does, hourly points for a
    # window of more than a day (the one-day run had 5-minute points).
    for day in DAYS:
        coingecko = spark.read.parquet(str(local_env / "raw" / "raw_coingecko_markets" / f"dt={day}"))
        assert coingecko.select("token").distinct().count() == 37 and coingecko.count() == 37 * 24
    # Day 2 had day 1 as look-back: its first hour has a 1h return.
    day2 = spark.read.parquet(str(local_env / "silver" / "silver_features_1h" / f"dt={DAYS[1]}"))
    assert day2.where("return_1h IS NULL").count() == 0
    # No model serves on a fresh lake: every bar gets the base rate's prediction, and says so.
    predictions = warehouse_query(
        settings,
        "SELECT DT, MODEL_VERSION, COUNT(*), COUNT(P_UP) FROM ML_PREDICTIONS GROUP BY 1, 2 ORDER BY 1",
    )
    assert [(str(d), v, n, m) for d, v, n, m in predictions] == [
        (day, "baseline:base_rate", expected * 24, expected * 24) for day in DAYS
    ]
    _assert_other_gold_tables(settings, expected)


def _window(day: str):
    from datetime import UTC, datetime, timedelta

    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return start, start + timedelta(days=1)


TARGETS = "SELECT COUNT(TARGET_RETURN_1H), COUNT(TARGET_RETURN_24H) FROM GOLD_MARKET_FEATURES GROUP BY DT ORDER BY DT"


def _assert_other_gold_tables(settings: Settings, expected: int) -> None:
    daily = warehouse_query(
        settings, "SELECT DT, COUNT(*) FROM GOLD_DAILY_MARKET_FEATURES GROUP BY DT ORDER BY DT"
    )
    assert [n for _, n in daily] == [expected, expected]
    # Run together, day 1's targets reach into day 2; day 2's last ones wait for day 3.
    assert warehouse_query(settings, TARGETS) == [(expected * 24, expected * 24), (expected * 23, 0)]
    index = warehouse_query(
        settings,
        "SELECT INTERVAL, COUNT(DISTINCT CATEGORY), COUNT(*) FROM GOLD_CATEGORY_INDEX GROUP BY 1 ORDER BY 1",
    )
    # No return before the first bar: day 1 has no 1d index value, and its 00:00 no 1h one.
    assert index == [("1d", 6, 6), ("1h", 6, 6 * 48 - 6)]
    pairs = warehouse_query(settings, "SELECT DT, COUNT(*) FROM GOLD_CORRELATIONS GROUP BY DT ORDER BY DT")
    assert [n for _, n in pairs] == [expected * expected] * 2
    comments = dict(
        warehouse_query(
            settings,
            # This test's schema only: the suite's other tests share the warehouse server.
            "SELECT COLUMN_NAME, COMMENT FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = 'GOLD_MARKET_FEATURES'"
            f" AND TABLE_SCHEMA = '{settings.snowflake_schema}'",
        )
    )
    assert comments["RSI_14"].startswith("RSI(14)") and comments["TARGET_RETURN_4H"].startswith("TARGET")
