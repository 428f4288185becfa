"""A multi-day run records each day as it is: its own counts and check results on its partition,
and a day without rows says so (for real: the lake, Spark and a Dagster range run of bronze)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from crypto_assets.definitions import build_definitions
from crypto_assets.raw.file_import import import_files
from resources.settings import Settings

pytestmark = pytest.mark.integration
DAYS = ("2023-01-01", "2023-01-02", "2023-01-03")


def test_a_range_run_records_every_day_with_its_own_rows_and_checks(
    local_env: Path, spark, tmp_path, monkeypatch
):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    settings = Settings.from_env()
    mine = tmp_path / "BTCUSDT_1h.csv"
    # Day 1 whole, day 2 until 11:00 (its later hours become flagged gap rows), day 3 nothing.
    hours = [f"{DAYS[0]} {h:02d}:00:00" for h in range(24)] + [f"{DAYS[1]} {h:02d}:00:00" for h in range(12)]
    mine.write_text("date,open,high,low,close,volume\n" + "".join(f"{t},1,2,0.5,1.5,10\n" for t in hours))
    import_files([mine], settings, say=lambda _: None)
    job = build_definitions(settings).resolve_job_def("history_job")
    instance = DagsterInstance.ephemeral()
    result = job.execute_in_process(
        instance=instance,
        asset_selection=[AssetKey("bronze_klines")],
        tags={"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]},
    )
    assert result.success
    metadata = {e.partition: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert {day: metadata[day]["dagster/row_count"].value for day in DAYS} == dict(
        zip(DAYS, (24, 24, 0), strict=True)
    )
    assert metadata[DAYS[1]]["last_time"].value == "2023-01-02 23:00:00 UTC"
    assert metadata[DAYS[2]]["tokens"].value == 0 and metadata[DAYS[2]]["first_time"].value == "no rows"

    by_day = {
        (e.partition, e.check_name): e
        for e in result.get_asset_check_evaluations()
        if e.partition is not None
    }
    assert {p for p, _ in by_day} == set(DAYS)
    assert all(by_day[(day, "no_duplicate_keys")].passed for day in DAYS)
    coverage = {day: by_day[(day, "token_coverage")].metadata["present_tokens"].value for day in DAYS}
    assert coverage == dict(zip(DAYS, (1, 1, 0), strict=True))  # BTC alone was imported; day 3 holds nothing
    assert not by_day[(DAYS[2], "token_coverage")].passed
    # Every check of every day was evaluated, the validators (judged over the range) too: none
    # is left planned for ever, shown as not evaluated in the UI.
    from dagster import AssetCheckKey

    for spec in build_definitions(settings).resolve_assets_def("bronze_klines").check_specs:
        history = instance.event_log_storage.get_asset_check_execution_history(
            AssetCheckKey(AssetKey("bronze_klines"), spec.name), limit=20
        )
        statuses = {record.partition: record.status.value for record in history if record.partition}
        assert set(statuses) == set(DAYS) and "PLANNED" not in statuses.values(), (spec.name, statuses)
