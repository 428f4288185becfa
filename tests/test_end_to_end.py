"""Every layer for real: emulator (HTTP) -> lake (Spark) -> embedded warehouse (Snowflake protocol)."""

from pathlib import Path

import pytest
import snowflake.connector
from dagster import DagsterInstance

from crypto_assets.definitions import build_definitions
from crypto_assets.raw.file_import import import_files
from crypto_assets.universe import load_universe
from resources.settings import Settings

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
    # A user's own hourly file for day 1, imported first: the exchange run must keep its rows.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    mine = tmp_path / "BTCUSDT_1h.csv"
    mine.write_text(
        "date,open,high,low,close,volume\n"
        + "".join(f"{DAYS[0]} {h:02d}:00:00,1,2,0.5,1.5,10\n" for h in range(3))
    )
    import_files([mine], settings, say=lambda _: None)
    job = build_definitions(settings).resolve_job_def("market_data_job")
    instance = DagsterInstance.ephemeral()
    for day in DAYS:
        result = job.execute_in_process(partition_key=day, instance=instance)
        assert result.success
        failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
        assert failed == []

    # 37 tokens minus USDT (quote asset), DAI (no pair), BUSD (delisted 2023-12) and TAO (listed 2024-04).
    expected = 33
    assert len(load_universe().active_pairs(*_window(DAYS[0]))) == expected
    assert _gold_counts(settings) == [
        (DAYS[0], expected * 24, expected, expected * 24),
        (DAYS[1], expected * 24, expected, expected * 24),
    ]

    for layer, asset in (("raw", "raw_klines"), ("bronze", "bronze_klines"), ("silver", "silver_features")):
        for day in DAYS:
            frame = spark.read.parquet(str(local_env / layer / asset / f"dt={day}"))
            imported = 3 if (layer, day) == ("raw", DAYS[0]) else 0  # 1h file rows stay in raw only
            assert frame.count() == expected * 1440 + imported, (layer, day)
    # CoinGecko: all 37 tokens (USDT and DAI included), 5-minute points for a one-day run.
    coingecko = spark.read.parquet(str(local_env / "raw" / "raw_coingecko_markets" / f"dt={DAYS[0]}"))
    assert coingecko.select("token").distinct().count() == 37 and coingecko.count() == 37 * 288
    # Day 2 had day 1 as look-back: its first hour has a full 60-minute volatility.
    day2 = spark.read.parquet(str(local_env / "silver" / "silver_features" / f"dt={DAYS[1]}"))
    assert day2.where("volatility_60m IS NULL").count() == 0

    before = _gold_counts(settings)
    rerun = job.execute_in_process(partition_key=DAYS[1], instance=instance)
    assert rerun.success
    assert _gold_counts(settings) == before  # same rows, no duplicates
    bronze = spark.read.parquet(str(local_env / "bronze" / "bronze_klines" / f"dt={DAYS[1]}"))
    assert bronze.count() == expected * 1440

    # Both days again as ONE run (the backfill policy's range): same partitions, same rows.
    ranged = job.execute_in_process(
        instance=instance,
        tags={"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[1]},
    )
    assert ranged.success
    assert _gold_counts(settings) == before
    for day in DAYS:
        raw = spark.read.parquet(str(local_env / "raw" / "raw_klines" / f"dt={day}"))
        sources = {r["source"] for r in raw.select("source").distinct().collect()}
        assert sources == (
            {"binance_archive", "file:BTCUSDT_1h.csv"} if day == DAYS[0] else {"binance_archive"}
        )
        assert raw.count() == expected * 1440 + (3 if day == DAYS[0] else 0)


def _window(day: str):
    from datetime import UTC, datetime, timedelta

    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return start, start + timedelta(days=1)
