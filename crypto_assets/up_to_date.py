"""Which assets of a run still have work to do: a re-run of days the lake and the warehouse
already hold only checks them.

An asset's day is **up to date** when all of these hold (read from the instance's event log,
the lake and the warehouse; nothing is computed):

- its latest materialization exists and came after the day's end (a day materialized while
  still open is not final);
- no input it reads was materialized again since: the latest materialization of every upstream
  day inside its input window (``days_before`` / ``days_after``), or of an unpartitioned
  upstream (a model), is older than the day's own. So targets that looked ahead to days not
  fetched yet are recomputed once those days arrive, and an open upstream day, itself not up to
  date, takes everything that read it along when it runs again;
- for ``raw_klines``: it fetched every interval the run asks for;
- its data is still there: the lake folder of the day, or for a warehouse table as many rows
  for the days as the materializations recorded (a new warehouse, a dropped table or another
  account is found out, not trusted).

A run then executes the assets with a day that is not up to date, and everything downstream of
them in its selection; unpartitioned assets (models) always run. ``--force`` runs everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance

from crypto_assets.partitions import daily_partitions

LAKE_IO_MANAGER = "lake_io_manager"
WAREHOUSE_IO_MANAGER = "warehouse_io_manager"
RAW_KLINES = "raw_klines"
INPUT_RUNS = "an input runs again"


@dataclass(frozen=True)
class Window:
    """An input read by an asset: the upstream asset, and the days around each day it reads."""

    upstream: AssetKey
    days_before: int
    days_after: int
    partitioned: bool


@dataclass(frozen=True)
class AssetShape:
    """What the check needs to know of one asset of the graph."""

    key: AssetKey
    partitioned: bool
    layer: str | None
    io_manager_key: str
    partition_expr: str | None
    inputs: tuple[Window, ...]
    children: frozenset[AssetKey]


def asset_shapes(graph: Any) -> dict[AssetKey, AssetShape]:
    """The graph's assets as :class:`AssetShape` (inputs with their day windows)."""
    shapes: dict[AssetKey, AssetShape] = {}
    for node in graph.asset_nodes:
        definition = node.assets_def
        windows: list[Window] = []
        by_input = definition.keys_by_input_name
        for name, upstream in by_input.items():
            if not graph.has(upstream):
                continue
            metadata = dict(definition.node_def.input_def_named(name).metadata or {})
            windows.append(
                Window(
                    upstream,
                    int(metadata.get("days_before") or 0),
                    int(metadata.get("days_after") or 0),
                    graph.get(upstream).partitions_def is not None,
                )
            )
        for upstream in node.parent_keys - set(by_input.values()):  # deps=[...]: same day or a model
            if graph.has(upstream):
                windows.append(Window(upstream, 0, 0, graph.get(upstream).partitions_def is not None))
        metadata = {k: getattr(v, "value", v) for k, v in (node.metadata or {}).items()}
        shapes[node.key] = AssetShape(
            key=node.key,
            partitioned=node.partitions_def is not None,
            layer=str(metadata["layer"]) if metadata.get("layer") else None,
            io_manager_key=definition.get_io_manager_key_for_asset_key(node.key),
            partition_expr=str(metadata["partition_expr"]) if metadata.get("partition_expr") else None,
            inputs=tuple(windows),
            children=frozenset(node.child_keys),
        )
    return shapes


def _day_end(day: str) -> datetime:
    """When the daily partition ``day`` closes (the partitions' own time window says it)."""
    return daily_partitions.time_window_for_partition_key(day).end


def _shift(day: str, offset: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=offset)).isoformat()


class UpToDate:
    """Decides, for a run of ``days``, which of its assets have nothing left to do.

    ``lake_root`` holds the lake's ``<layer>/<asset>/dt=<day>`` folders; ``warehouse_rows``
    counts a table's rows whose ``partition_expr`` falls in ``[start, end)`` (None when the
    table does not exist)."""

    def __init__(
        self,
        instance: DagsterInstance,
        shapes: Mapping[AssetKey, AssetShape],
        lake_root: str | Path,
        warehouse_rows: Callable[[str, str, datetime, datetime], int | None],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.instance = instance
        self.shapes = shapes
        self.lake_root = Path(lake_root)
        self.warehouse_rows = warehouse_rows
        self.now = now
        self.reasons: dict[str, str] = {}
        # The first day of the last ``stale`` call's days not up to date: the days before it
        # need nothing, so the run can start there.
        self.first_day: str | None = None
        # Latest storage id per day, per asset, asked once per ``stale`` call: bronze alone is
        # read by four assets.
        self._ids: dict[AssetKey, dict[str, int]] = {}

    def _latest_ids(self, key: AssetKey) -> dict[str, int]:
        if key not in self._ids:
            storage = self.instance.event_log_storage
            self._ids[key] = storage.get_latest_storage_id_by_partition(
                key, DagsterEventType.ASSET_MATERIALIZATION
            )
        return self._ids[key]

    def _latest_unpartitioned(self, key: AssetKey) -> int | None:
        records = self.instance.fetch_materializations(key, limit=1).records
        return records[0].storage_id if records else None

    def _latest_records(self, key: AssetKey, days: Sequence[str]) -> dict[str, Any]:
        """The latest materialization record of each of ``days`` (absent when never)."""
        ids = self._latest_ids(key)
        wanted = [ids[day] for day in days if day in ids]
        if len(wanted) < len(days):
            return {}
        found: dict[str, Any] = {}
        records = self.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, storage_ids=wanted), limit=len(wanted)
        ).records
        for record in records:
            partition = record.partition_key
            if partition is not None:
                found[partition] = record
        return found

    def stale(
        self, selected: Iterable[str], days: Sequence[str], intervals: Sequence[str] | None
    ) -> list[str]:
        """The assets of ``selected`` to run for ``days``: those with a day not up to date, and
        every selected asset downstream of one of them. ``self.reasons`` says why, per asset,
        and ``self.first_day`` from which day on they need to run."""
        chosen = [AssetKey(name) for name in selected]
        self.reasons = {}
        self.first_day = None
        self._ids = {}
        run: set[AssetKey] = set()
        for key in chosen:
            stale = self._why_not_up_to_date(key, days, intervals)
            if stale:
                run.add(key)
                self.reasons[key.to_user_string()] = stale[1]
                self.first_day = min(self.first_day or stale[0], stale[0])
        # Downstream of anything that runs, within the selection.
        frontier = list(run)
        wanted = set(chosen)
        while frontier:
            for child in self.shapes[frontier.pop()].children:
                if child in wanted and child not in run:
                    run.add(child)
                    self.reasons.setdefault(child.to_user_string(), INPUT_RUNS)
                    frontier.append(child)
        return [key.to_user_string() for key in chosen if key in run]

    def _why_not_up_to_date(
        self, key: AssetKey, days: Sequence[str], intervals: Sequence[str] | None
    ) -> tuple[str, str] | None:
        """(the first day of ``days`` that is not up to date, why), or None when all are."""
        shape = self.shapes.get(key)
        if shape is None or not shape.partitioned:
            return days[0], "a model: always trained or refreshed"
        records = self._latest_records(key, days)
        found: list[tuple[str, str]] = []
        missing = [day for day in days if day not in records]
        if missing:
            found.append((missing[0], "not materialized yet"))
        present = [day for day in days if day in records]
        now = self.now()
        for day in present:
            finished = _day_end(day)
            if finished > now or records[day].timestamp < finished.timestamp():
                found.append((day, f"{day} was materialized before its data was final"))
                break
        for window in shape.inputs:
            if not window.partitioned:
                latest = self._latest_unpartitioned(window.upstream)
                changed = [day for day in present if latest is not None and latest > records[day].storage_id]
                if changed:
                    found.append((changed[0], f"{window.upstream.to_user_string()} changed since"))
                continue
            upstream = self._latest_ids(window.upstream)
            for day in present:
                read = [_shift(day, offset) for offset in range(-window.days_before, window.days_after + 1)]
                if any(upstream.get(d, -1) > records[day].storage_id for d in read):
                    found.append((day, f"{window.upstream.to_user_string()} of {day}'s window changed since"))
                    break
        if key.to_user_string() == RAW_KLINES and intervals:
            for day in present:
                fetched = records[day].asset_materialization.metadata.get("intervals_fetched")
                have = set(fetched.value) if fetched is not None else set()
                if not set(intervals) <= have:
                    found.append((day, f"{day} lacks intervals {sorted(set(intervals) - have)}"))
                    break
        if not found:
            gone = self._missing_data(shape, days, records)
            if gone:
                found.append(gone)
        return min(found) if found else None

    def _missing_data(
        self, shape: AssetShape, days: Sequence[str], records: Mapping[str, Any]
    ) -> tuple[str, str] | None:
        name = shape.key.to_user_string()
        if shape.io_manager_key == LAKE_IO_MANAGER:
            folder = self.lake_root / (shape.layer or "") / name
            gone = [day for day in days if not (folder / f"dt={day}").is_dir()]
            return (gone[0], f"{gone[0]} is not in the lake") if gone else None
        if shape.io_manager_key == WAREHOUSE_IO_MANAGER and shape.partition_expr:
            expected = 0
            for day in days:
                count = records[day].asset_materialization.metadata.get("dagster/row_count")
                expected += int(count.value) if count is not None else 0
            start = daily_partitions.time_window_for_partition_key(days[0]).start
            held = self.warehouse_rows(name, shape.partition_expr, start, _day_end(days[-1]))
            if held != expected:
                return days[0], f"the warehouse holds {held} of its {expected} rows"
        return None


def snowflake_rows(connect: Callable[[], Any]) -> Callable[[str, str, datetime, datetime], int | None]:
    """A ``warehouse_rows`` counter over one lazily opened connection (``connect()``)."""
    connection: list[Any] = []

    def count(table: str, column: str, start: datetime, end: datetime) -> int | None:
        if not connection:
            connection.append(connect())
        cursor = connection[0].cursor()
        try:
            cursor.execute(
                f"SELECT COUNT(*) FROM {table.upper()} WHERE {column} >= %s AND {column} < %s",
                (start.replace(tzinfo=None), end.replace(tzinfo=None)),
            )
        except Exception:  # no table (a new warehouse): not up to date
            return None
        row = cursor.fetchone()
        return int(row[0]) if row else 0

    return count
