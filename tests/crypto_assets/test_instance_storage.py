"""The local instance's event log storage: Dagster's SQLite files, connections kept open."""

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    DailyPartitionsDefinition,
    InMemoryIOManager,
    Output,
    asset,
    materialize,
)
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from dagster._serdes import deserialize_value

from crypto_assets.cli import INSTANCE_CONFIG
from crypto_assets.instance_storage import EVENT_BATCH_SIZE_ENV, PooledSqliteEventLogStorage

DAYS = DailyPartitionsDefinition(start_date="2024-01-01")


@asset(
    partitions_def=DAYS,
    check_specs=[AssetCheckSpec("rows_positive", asset="daily_thing", partitions_def=DAYS)],
)
def daily_thing(context: AssetExecutionContext) -> Iterator[Output[int] | AssetCheckResult]:
    for day in context.partition_keys:
        context.add_asset_metadata({"rows": int(day[-2:])}, partition_key=day)
    yield Output(1)
    yield AssetCheckResult(check_name="rows_positive", passed=True)


def _instance(home: Path, config: str | None = None) -> DagsterInstance:
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(config or INSTANCE_CONFIG.read_text())
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


@pytest.fixture(autouse=True)
def _batch_size_restored(monkeypatch) -> None:
    # The storage turns Dagster's event batches on for its process: undone after each test.
    monkeypatch.delenv(EVENT_BATCH_SIZE_ENV, raising=False)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    return tmp_path / "dagster"


def _run_range(instance: DagsterInstance, first: str, last: str) -> str:
    result = materialize(
        [daily_thing],
        instance=instance,
        resources={"io_manager": InMemoryIOManager()},
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
    )
    assert result.success
    return result.run_id


def test_a_range_run_is_recorded_per_day_in_dagsters_own_files(home):
    instance = _instance(home)
    assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
    run_id = _run_range(instance, "2024-01-01", "2024-01-31")
    instance.dispose()

    # Dagster's default storage, opened on the same directory, reads every day back.
    plain = SqliteEventLogStorage(str(home / "history" / "runs"))
    try:
        records = plain.fetch_materializations(AssetKey("daily_thing"), limit=100).records
        days = sorted(r.partition_key for r in records)
        assert days == [f"2024-01-{d:02d}" for d in range(1, 32)]
        rows = {r.partition_key: r.asset_materialization.metadata["rows"].value for r in records}
        assert rows["2024-01-07"] == 7 and rows["2024-01-31"] == 31
        assert len(plain.get_records_for_run(run_id, limit=1000).records) > 31
    finally:
        plain.dispose()


def _check_rows(home: Path, config: str | None, first: str, last: str, monkeypatch) -> list[tuple]:
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = _instance(home, config)
    _run_range(instance, first, last)
    instance.dispose()
    with sqlite3.connect(home / "history" / "runs" / "index.db") as db:
        found = db.execute(
            "SELECT asset_key, check_name, partition, execution_status, evaluation_event"
            " FROM asset_check_executions ORDER BY partition"
        ).fetchall()
    return [(*r[:4], deserialize_value(r[4]).dagster_event_type) for r in found]


def test_planned_check_rows_are_dagsters_own(tmp_path, monkeypatch):
    """A range run's planned check executions (one row per check and day) are the rows Dagster's
    storage writes, although the event is serialized once for all days."""
    days = ("2024-03-01", "2024-03-31")
    pooled = _check_rows(tmp_path / "pooled", None, *days, monkeypatch)
    plain = _check_rows(tmp_path / "plain", "telemetry:\n  enabled: false\n", *days, monkeypatch)
    planned = [r for r in pooled if r[3] == "PLANNED"]
    assert len(planned) == 31 and len({r[2] for r in planned}) == 31  # a row per day
    assert pooled == plain  # and the range's own result, as Dagster records it


def test_a_range_longer_than_a_month_plans_its_checks_once_for_the_range(tmp_path, monkeypatch):
    """A warm-up's 605 days: Dagster would leave a PLANNED row per day and check that no result
    ever completes (shown as SKIPPED on every day); the range is judged and recorded as one."""
    days = ("2024-03-01", "2024-04-29")
    plain = _check_rows(tmp_path / "plain", "telemetry:\n  enabled: false\n", *days, monkeypatch)
    assert sum(r[3] == "PLANNED" for r in plain) == 60  # Dagster's own: 60 days left planned
    pooled = _check_rows(tmp_path / "pooled", None, *days, monkeypatch)
    assert pooled == [('["daily_thing"]', "rows_positive", None, "SUCCEEDED", "ASSET_CHECK_EVALUATION")]


def test_a_range_runs_materializations_are_one_batch_with_dagsters_rows(tmp_path, monkeypatch):
    """The per-day materializations of a range run reach the storage as one batch, and leave the
    rows Dagster's own storage writes one event at a time (run shard and index)."""
    batches: list[int] = []
    original = PooledSqliteEventLogStorage.store_event_batch

    def spy(self, events):  # type: ignore[no-untyped-def]
        batches.append(len(events))
        original(self, events)

    monkeypatch.setattr(PooledSqliteEventLogStorage, "store_event_batch", spy)

    def rows(home: Path, config: str | None) -> dict[str, list[tuple]]:
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        instance = _instance(home, config)
        run_id = _run_range(instance, "2024-05-01", "2024-06-09")
        instance.dispose()
        found: dict[str, list[tuple]] = {}
        for db in ("index", run_id):
            with sqlite3.connect(home / "history" / "runs" / f"{db}.db") as connection:
                found[f"{(db == 'index' and 'index') or 'run'} events"] = connection.execute(
                    "SELECT dagster_event_type, asset_key, partition, step_key FROM event_logs"
                    " WHERE dagster_event_type IS NOT NULL ORDER BY id"
                ).fetchall()
        with sqlite3.connect(home / "history" / "runs" / "index.db") as connection:
            found["tags"] = connection.execute(
                # A data version is a hash of the run's own code version and time.
                "SELECT t.asset_key, t.key, IIF(t.key = 'dagster/data_version', '', t.value), e.partition"
                " FROM asset_event_tags t"
                " JOIN event_logs e ON e.id = t.event_id ORDER BY t.id"
            ).fetchall()
            found["asset_keys"] = connection.execute(
                "SELECT asset_key, last_materialization_timestamp IS NOT NULL FROM asset_keys"
            ).fetchall()
        return found

    monkeypatch.setenv(EVENT_BATCH_SIZE_ENV, "25")
    pooled = rows(tmp_path / "pooled", None)
    # 40 days: the planned materializations (25, then 15 and the check's planned event), then
    # the materializations (25, then 15).
    assert batches == [25, 16, 25, 15]
    monkeypatch.delenv(EVENT_BATCH_SIZE_ENV)
    plain = rows(tmp_path / "plain", "telemetry:\n  enabled: false\n")
    materialized = [r for r in pooled["index events"] if r[0] == "ASSET_MATERIALIZATION"]
    assert [r[2] for r in materialized] == [f"2024-05-{d:02d}" for d in range(1, 32)] + [
        f"2024-06-{d:02d}" for d in range(1, 10)
    ]
    assert pooled == plain


def test_the_run_log_watcher_sees_each_event_as_it_is_written(home):
    """The UI's live run view: a watcher on a run's .db file is called for new events although
    the connection stays open (the WAL is copied back on each write)."""
    instance = _instance(home)
    storage = instance.event_log_storage
    run_id = _run_range(instance, "2024-02-01", "2024-02-02")
    seen: list[str] = []
    storage.watch(run_id, None, lambda entry, cursor: seen.append(cursor))
    try:
        time.sleep(0.5)  # the observer is running
        from dagster._core.events.log import EventLogEntry

        for i in range(3):
            storage.store_event(
                EventLogEntry(
                    error_info=None, level="INFO", user_message=f"note {i}", run_id=run_id,
                    timestamp=time.time(), step_key=None, job_name=None, dagster_event=None,
                )
            )  # fmt: skip
        deadline = time.monotonic() + 15
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(seen) >= 3, f"the watcher saw {len(seen)} of 3 events"
    finally:
        instance.dispose()


def test_two_writers_share_the_index_without_losing_an_event(home):
    """Two storages (as the CLI's run and `dagster dev`'s daemon are) writing at once."""
    first, second = _instance(home), _instance(home)
    errors: list[BaseException] = []

    def report(instance: DagsterInstance, month: str) -> None:
        try:
            for day in range(1, 26):
                instance.report_runless_asset_event(
                    AssetMaterialization(AssetKey("shared"), partition=f"2024-{month}-{day:02d}")
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=report, args=pair) for pair in ((first, "03"), (second, "04"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    records = first.fetch_materializations(AssetKey("shared"), limit=100).records
    assert len(records) == 50 and len({r.partition_key for r in records}) == 50
    first.dispose()
    second.dispose()


def test_a_forked_child_opens_its_own_connections(home):
    instance = _instance(home)
    storage = instance.event_log_storage
    _run_range(instance, "2024-05-01", "2024-05-01")
    assert storage._engines  # the pool itself is under test
    storage._engines_pid = -1
    before = dict(storage._engines)
    _run_range(instance, "2024-05-02", "2024-05-02")
    assert all(storage._engines[k] is not before.get(k) for k in storage._engines)
    days = {
        r.partition_key for r in instance.fetch_materializations(AssetKey("daily_thing"), limit=9).records
    }
    assert days == {"2024-05-01", "2024-05-02"}
    instance.dispose()


def test_run_shards_beyond_the_limit_are_closed(home, monkeypatch):
    monkeypatch.setattr("crypto_assets.instance_storage.OPEN_RUN_SHARDS", 2)
    instance = _instance(home)
    for day in range(1, 5):
        _run_range(instance, f"2024-06-0{day}", f"2024-06-0{day}")
    shards = list(instance.event_log_storage._engines)
    assert "index" in shards and len(shards) == 3
    instance.dispose()


def test_without_dagster_home_or_base_dir_the_error_says_what_is_missing(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(ValueError, match="needs DAGSTER_HOME"):
        PooledSqliteEventLogStorage()
