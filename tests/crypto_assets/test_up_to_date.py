"""What a re-run skips: assets whose days the lake and the warehouse hold up to date."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance, MetadataValue

from crypto_assets.up_to_date import (
    INPUT_RUNS,
    LAKE_IO_MANAGER,
    WAREHOUSE_IO_MANAGER,
    AssetShape,
    UpToDate,
    Window,
    asset_shapes,
)

DAYS = ["2026-11-01", "2026-11-02"]
RAW, BRONZE, GOLD, MODEL, FORECASTS = (
    AssetKey(n) for n in ("raw_klines", "bronze_klines", "gold_market", "vol_model", "vol_forecasts")
)


def _shape(
    key: AssetKey,
    layer: str | None,
    inputs: tuple[Window, ...] = (),
    children: tuple[AssetKey, ...] = (),
    warehouse: bool = False,
    partitioned: bool = True,
) -> AssetShape:
    return AssetShape(
        key=key,
        partitioned=partitioned,
        layer=layer,
        io_manager_key=WAREHOUSE_IO_MANAGER if warehouse else LAKE_IO_MANAGER,
        partition_expr="BAR_TIME" if warehouse else None,
        inputs=inputs,
        children=frozenset(children),
    )


SHAPES = {
    RAW: _shape(RAW, "raw", children=(BRONZE,)),
    BRONZE: _shape(BRONZE, "bronze", (Window(RAW, 1, 0, True),), (GOLD,)),
    GOLD: _shape(GOLD, "gold", (Window(BRONZE, 0, 1, True),), warehouse=True),
    MODEL: _shape(MODEL, None, children=(FORECASTS,), partitioned=False),
    FORECASTS: _shape(FORECASTS, "ml", (Window(MODEL, 0, 0, False),), warehouse=True),
}
SELECTED = ["raw_klines", "bronze_klines", "gold_market"]


class Lake:
    """A lake on disk, an instance, and a warehouse that holds what it was told."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.instance = DagsterInstance.ephemeral()
        self.tables: dict[str, dict[str, int]] = {}  # table -> day -> rows

    def materialize(self, key: AssetKey, days: list[str] = DAYS, rows: int = 24, **metadata: object) -> None:
        shape = SHAPES[key]
        for day in days if shape.partitioned else [None]:
            if day is not None and shape.io_manager_key == LAKE_IO_MANAGER:
                (self.root / str(shape.layer) / key.path[-1] / f"dt={day}").mkdir(parents=True, exist_ok=True)
            self.instance.report_runless_asset_event(
                AssetMaterialization(
                    asset_key=key,
                    partition=day,
                    metadata={"dagster/row_count": MetadataValue.int(rows), **metadata},  # type: ignore[dict-item]
                )
            )
        if shape.io_manager_key == WAREHOUSE_IO_MANAGER and shape.partitioned:
            self.tables.setdefault(key.path[-1], {}).update(dict.fromkeys(days, rows))

    def rows(self, table: str, start: datetime, end: datetime) -> int | None:
        if table not in self.tables:
            return None
        inside = [
            day
            for day in self.tables[table]
            if start <= datetime.fromisoformat(day).replace(tzinfo=UTC) < end
        ]
        return sum(self.tables[table][day] for day in inside)

    def check(self, now: datetime | None = None) -> UpToDate:
        return UpToDate(
            self.instance,
            SHAPES,
            self.root,
            lambda table, column, start, end: self.rows(table, start, end),
            now=(lambda: now) if now else (lambda: datetime.now(UTC)),
        )

    def everything(self) -> None:
        self.materialize(RAW, intervals_fetched=MetadataValue.json({"1m": DAYS[0], "1h": DAYS[0]}))
        self.materialize(BRONZE)
        self.materialize(GOLD)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path)


def test_nothing_materialized_runs_everything(lake: Lake) -> None:
    check = lake.check()
    assert check.stale(SELECTED, DAYS, ["1m"]) == SELECTED
    assert check.reasons["raw_klines"] == "not materialized yet"


def test_a_lake_and_warehouse_holding_every_day_run_nothing(lake: Lake) -> None:
    lake.everything()
    assert lake.check().stale(SELECTED, DAYS, ["1m", "1h"]) == []


def test_an_input_materialized_again_takes_its_readers_along(lake: Lake) -> None:
    lake.everything()
    lake.materialize(BRONZE, ["2026-11-02"])  # gold of 11-01 reads 11-02 (days_after=1)
    check = lake.check()
    assert check.stale(SELECTED, DAYS, ["1m"]) == ["gold_market"]
    assert "bronze_klines of 2026-11-01's window changed since" in check.reasons["gold_market"]


def test_a_day_missing_from_the_lake_runs_with_everything_downstream(lake: Lake) -> None:
    lake.everything()
    (lake.root / "bronze" / "bronze_klines" / "dt=2026-11-02").rmdir()
    check = lake.check()
    assert check.stale(SELECTED, DAYS, ["1m"]) == ["bronze_klines", "gold_market"]
    assert check.reasons == {"bronze_klines": "2026-11-02 is not in the lake", "gold_market": INPUT_RUNS}
    assert check.first_day == "2026-11-02"  # the run starts there: 11-01 needs nothing


def test_the_run_starts_at_the_first_day_out_of_date(lake: Lake) -> None:
    """A month's last day read the next month's first, materialized since: only it runs."""
    lake.everything()
    lake.materialize(BRONZE, ["2026-11-03"])  # the next chunk's first day
    check = lake.check()
    assert check.stale(SELECTED, DAYS, ["1m"]) == ["gold_market"]
    assert check.first_day == "2026-11-02"
    assert check.stale(SELECTED, ["2026-11-01"], ["1m"]) == [] and check.first_day is None


def test_a_warehouse_missing_rows_is_not_trusted(lake: Lake) -> None:
    lake.everything()
    lake.tables["gold_market"] = {DAYS[0]: 24}  # one day's rows of two: another warehouse, a dropped table
    check = lake.check()
    assert check.stale(SELECTED, DAYS, ["1m"]) == ["gold_market"]
    assert check.reasons["gold_market"] == "the warehouse holds 24 of its 48 rows"
    del lake.tables["gold_market"]
    assert lake.check().stale(SELECTED, DAYS, ["1m"]) == ["gold_market"]


def test_a_day_materialized_while_open_is_not_final(lake: Lake) -> None:
    lake.everything()
    during = datetime(2026, 11, 2, 12, tzinfo=UTC)
    check = lake.check(now=during)
    assert check.stale(SELECTED, DAYS, ["1m"]) == SELECTED
    assert check.reasons["raw_klines"] == "2026-11-02 was materialized before its data was final"


def test_raw_runs_again_for_an_interval_it_did_not_fetch(lake: Lake) -> None:
    lake.everything()
    check = lake.check()
    assert check.stale(SELECTED, DAYS, ["1m", "1d"]) == SELECTED
    assert check.reasons["raw_klines"] == "2026-11-01 lacks intervals ['1d']"


def test_a_new_model_makes_its_forecasts_stale_and_models_always_run(lake: Lake) -> None:
    lake.materialize(MODEL)
    lake.materialize(FORECASTS)
    assert lake.check().stale(["vol_model", "vol_forecasts"], DAYS, None) == ["vol_model", "vol_forecasts"]
    assert lake.check().stale(["vol_forecasts"], DAYS, None) == []
    lake.materialize(MODEL)
    assert lake.check().stale(["vol_forecasts"], DAYS, None) == ["vol_forecasts"]


def test_the_definitions_graph_gives_each_asset_its_windows_and_storage() -> None:
    from crypto_assets.definitions import defs

    shapes = asset_shapes(defs.resolve_asset_graph())
    bronze = shapes[AssetKey("bronze_klines")]
    assert (bronze.layer, bronze.io_manager_key) == ("bronze", LAKE_IO_MANAGER)
    assert Window(AssetKey("raw_klines"), 1, 0, True) in bronze.inputs
    forecasts = shapes[AssetKey("vol_forecasts")]
    assert forecasts.io_manager_key == WAREHOUSE_IO_MANAGER and forecasts.partition_expr == "BAR_TIME"
    assert Window(AssetKey("silver_bars_1h"), 30, 1, True) in forecasts.inputs
    assert Window(AssetKey("vol_serving_model"), 0, 0, False) in forecasts.inputs
