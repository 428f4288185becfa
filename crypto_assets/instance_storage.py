"""The local Dagster instance's event log: Dagster's SQLite storage, keeping its connections.

Dagster's ``SqliteEventLogStorage`` opens a new SQLAlchemy engine for every event it writes (and
for each of the cross-run index's copies), so every statement is compiled again and every write
pays a connect, a WAL checkpoint on close and a dispose: ~23 ms per materialization on this
machine. A run over a warm-up's 605 daily partitions records ~600 materializations per asset, so
that was ~1 minute of a fresh ``make run``. This subclass keeps one engine per database file
(the last few run shards and the index), so compiled statements and connections are reused, and
writes with ``synchronous=NORMAL``, SQLite's recommended setting in WAL mode (a crash of the
process never corrupts the database; a power cut can lose the last commits). It also records a
range run's planned check executions (a row per check and day) with the event serialized once,
not once per day, and a range run's per-day materializations as one batch: Dagster hands a
storage that implements ``store_event_batch`` the events of one output together when
``DAGSTER_EVENT_BATCH_SIZE`` is set, which this storage sets for its process. Measured side by
side: ``bench/event_log_storage.py``.

Everything else is Dagster's: the same files under ``$DAGSTER_HOME/history/runs``, the same
schema and migrations, so ``dagster dev`` and any Dagster tool read them unchanged. Docker's
instance uses Postgres (docker/dagster.yaml) and does not use this class.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import groupby
from typing import Any

from dagster import Field, StringSource
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluationPlanned
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, EVENT_TYPE_TO_PIPELINE_RUN_STATUS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData, serialize_value
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

# Run shards kept open besides the index: a run writes to its own shard only, the webserver
# reads a few at a time; older engines are closed.
OPEN_RUN_SHARDS = 8

# A range run of more days than this records its check results for the range, not per day
# (crypto_assets/publishing.py): its planned check executions are one row for the range, not a
# row per day left PLANNED (shown as SKIPPED for each of a warm-up's 605 days).
PER_DAY_CHECKS_MAX_DAYS = 31

# Dagster batches the events of one output (a range run's materialization per day) only when
# this is set; up to this many per write.
EVENT_BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 1000


def default_base_dir() -> str:
    """Where Dagster's default SQLite storage keeps the per-run event logs."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise ValueError(
            "PooledSqliteEventLogStorage needs DAGSTER_HOME (or config base_dir) to find its databases"
        )
    return os.path.join(home, "history", "runs")


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event log storage that reuses one engine per database file (see the module doc).

    Config (``event_log_storage`` in dagster.yaml): ``base_dir``, default
    ``$DAGSTER_HOME/history/runs`` (Dagster's default place).
    """

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None) -> None:
        # Set before Dagster's __init__, which already connects to the index shard.
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        super().__init__(base_dir or default_base_dir(), inst_data)
        # The instance reads this on every event: with it set, a range run's per-day
        # materializations reach store_event_batch together (any process using this storage:
        # the CLI, the UI's run workers). A value set by the user wins.
        os.environ.setdefault(EVENT_BATCH_SIZE_ENV, str(EVENT_BATCH_SIZE))

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        """The shard's engine, created (and the database initialized) on first use."""
        if self._engines_pid != os.getpid():
            # A forked child must not share its parent's SQLite connections: start afresh,
            # leaving the parent's connections open for the parent.
            for engine in self._engines.values():
                engine.dispose(close=False)
            self._engines.clear()
            self._engines_pid = os.getpid()
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = create_engine(
            self.conn_string_for_shard(shard),
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        event.listen(engine, "connect", _synchronous_normal)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        runs = [s for s in self._engines if s != INDEX_SHARD_NAME]
        for stale in runs[: max(0, len(runs) - OPEN_RUN_SHARDS)]:
            self._engines.pop(stale).dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # Same contract as Dagster's: one connection at a time per storage (the lock), inside a
        # transaction committed on exit.
        with self._db_lock:
            engine = self._engine(shard)
            with engine.connect() as connection:
                with connection.begin():
                    yield connection
                if shard != INDEX_SHARD_NAME:
                    # Dagster's run log watcher (the UI's live run view) wakes on changes to the
                    # run's .db file; with the connection kept open, the WAL would only be copied
                    # back at 1,000 pages. Copy it now, as closing the connection used to.
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """The same rows as Dagster's (one PLANNED execution per check and partition of the run),
        with the event serialized once instead of once per partition, and inserted as one
        executemany. Dagster's version took ~0.5 s per check of a 605-day warm-up run: ~8 s
        before the run's first step. A range longer than ``PER_DAY_CHECKS_MAX_DAYS`` plans one
        execution for the range."""
        planned = event.get_dagster_event().event_specific_data
        assert isinstance(planned, AssetCheckEvaluationPlanned)
        keys: Sequence[str | None] = (
            planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        )
        if len(keys) > PER_DAY_CHECKS_MAX_DAYS:
            # Judged and recorded for the range (Dagster gives a range's result no partition):
            # one execution the result completes, instead of a PLANNED row per day for ever.
            keys = [None]
        serialized = serialize_value(event)
        timestamp = self._event_insert_timestamp(event)
        rows = [
            {
                "asset_key": planned.asset_key.to_string(),
                "check_name": planned.check_name,
                "partition": key,
                "run_id": event.run_id,
                "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
                "evaluation_event": serialized,
                "evaluation_event_timestamp": timestamp,
                "evaluation_event_storage_id": event_id,
            }
            for key in keys
        ]
        with self.index_connection() as connection:
            connection.execute(AssetCheckExecutionsTable.insert(), rows)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """The same rows as ``store_event`` for each event, in order, with each stretch of plain
        asset events (a range run's planned or done materializations, one per day) in two
        transactions, the run's shard then the index, instead of two per event."""
        for batchable, group in groupby(events, key=_batchable):
            stretch = list(group)
            if batchable and len({e.run_id for e in stretch}) == 1:
                self._store_asset_events(stretch)
            else:
                for entry in stretch:
                    self.store_event(entry)

    def _store_asset_events(self, events: Sequence[EventLogEntry]) -> None:
        statements = [self.prepare_insert_event(entry) for entry in events]
        with self.run_connection(events[0].run_id) as connection:
            for statement in statements:
                connection.execute(statement)
        with self.index_transaction() as connection:
            ids: list[int] = []
            for statement in statements:
                with db_result(connection, statement) as result:
                    ids.append(int(result.inserted_primary_key[0]))
            self._store_asset_event_tags(connection, events, ids)
            for entry, event_id in zip(events, ids, strict=True):
                self._store_asset_event(connection, entry, event_id)

    def dispose(self) -> None:
        super().dispose()
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


def _batchable(entry: EventLogEntry) -> bool:
    """An asset event that ``store_event`` mirrors in the index and nothing else."""
    kind = entry.dagster_event_type
    return (
        entry.is_dagster_event
        and kind in ASSET_EVENTS
        and kind not in ASSET_CHECK_EVENTS
        and kind not in EVENT_TYPE_TO_PIPELINE_RUN_STATUS
        and entry.get_dagster_event().asset_key is not None
    )


def _synchronous_normal(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
