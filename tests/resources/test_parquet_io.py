import os
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import (
    DailyPartitionsDefinition,
    asset,
    materialize,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crypto_assets.partitions import window_input
from resources.parquet_io import LakeIOManager, recover_partition, write_partition_atomically

days = DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")


def test_atomic_write_replaces_whole_partition(spark, tmp_path: Path):
    target = tmp_path / "bronze" / "x" / "dt=2026-01-01"
    write_partition_atomically(spark.range(5), target)
    write_partition_atomically(spark.range(3), target)  # a re-run replaces, never appends
    assert spark.read.parquet(str(target)).count() == 3
    assert [p.name for p in target.parent.iterdir()] == ["dt=2026-01-01"]  # no staging left behind


def test_crash_mid_write_keeps_previous_partition(spark, tmp_path: Path):
    target = tmp_path / "dt=2026-01-01"
    write_partition_atomically(spark.range(5), target)
    failing = spark.range(1000).select(F.when(F.col("id") == 999, F.raise_error(F.lit("boom"))).alias("id"))
    with pytest.raises(Exception, match="boom"):
        write_partition_atomically(failing, target)
    assert spark.read.parquet(str(target)).count() == 5
    assert [p.name for p in tmp_path.iterdir()] == ["dt=2026-01-01"]


def test_crash_between_renames_is_repaired(spark, tmp_path: Path):
    target = tmp_path / "dt=2026-01-01"
    write_partition_atomically(spark.range(4), target)
    os.replace(target, tmp_path / ".dt=2026-01-01.retired-abc")  # the process died right here
    recover_partition(target)
    assert spark.read.parquet(str(target)).count() == 4


def test_many_partitions_are_repaired_with_one_listing(spark, tmp_path: Path):
    """A range write and a look-back load list the asset's folder once, and still repair the
    days whose swap was interrupted (and only those)."""
    from datetime import datetime

    from resources.parquet_io import read_parquet_dirs, recover_partitions, write_partitions_atomically

    targets = {f"2026-01-0{d}": tmp_path / f"dt=2026-01-0{d}" for d in range(1, 6)}
    rows = [(datetime(2026, 1, d, 1), d) for d in range(1, 6)]
    write_partitions_atomically(spark.createDataFrame(rows, "t timestamp, day int"), "t", targets)
    os.replace(targets["2026-01-02"], tmp_path / ".dt=2026-01-02.retired-abc")  # died mid-swap
    (tmp_path / ".dt=2026-01-04.retired-def").mkdir()  # swapped in, its old copy not yet deleted
    listings: list[str] = []
    real_listdir = os.listdir

    def listdir(path):  # type: ignore[no-untyped-def]
        listings.append(str(path))
        return real_listdir(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "listdir", listdir)
        recover_partitions(list(targets.values()))
    assert listings == [str(tmp_path)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in targets.values())
    loaded = read_parquet_dirs(spark, [str(t) for t in targets.values()])
    assert sorted(r.day for r in loaded.collect()) == [1, 2, 3, 4, 5]


def test_a_range_is_split_into_days_each_swapped_in(spark, tmp_path: Path):
    from datetime import datetime

    from resources.parquet_io import write_partitions_atomically

    rows = [(datetime(2026, 1, d, h), d) for d in (1, 2) for h in range(3)]
    frame = spark.createDataFrame(rows, "t timestamp, day int")
    targets = {f"2026-01-0{d}": tmp_path / f"dt=2026-01-0{d}" for d in (1, 2, 3)}
    write_partition_atomically(spark.range(99), targets["2026-01-03"])  # stale data for day 3
    write_partitions_atomically(frame, "t", targets)
    assert spark.read.parquet(str(targets["2026-01-01"])).count() == 3
    assert set(spark.read.parquet(str(targets["2026-01-02"])).columns) == {"t", "day"}
    assert spark.read.parquet(str(targets["2026-01-03"])).count() == 0  # the range re-run cleared it
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in targets.values())
    with pytest.raises(ValueError, match="outside the partitions"):
        write_partitions_atomically(frame, "t", {"2026-01-01": targets["2026-01-01"]})
    assert spark.read.parquet(str(targets["2026-01-01"])).count() == 3  # untouched by the failed write


def _lake(tmp_path: Path) -> LakeIOManager:
    return LakeIOManager(lake_root=str(tmp_path), pyspark=LazyPySparkResource(spark_config={}))


@asset(partitions_def=days, io_manager_key="lake", metadata={"layer": "bronze"})
def numbers(context) -> DataFrame:
    day = int(context.partition_key[-2:])
    return LazyPySparkResource(spark_config={}).spark_session.range(day * 10, day * 10 + day)


@asset(
    partitions_def=days,
    io_manager_key="lake",
    metadata={"layer": "silver"},
    # The platform's window input: Dagster sees a same-day dependency, the IO manager reads D-1 too.
    ins={"numbers": window_input("numbers", days_before=1)},
)
def windowed(numbers: DataFrame) -> DataFrame:
    return numbers.select(F.count("*").alias("rows"), F.sum("id").alias("total"))


def test_layout_and_multi_partition_loads_through_dagster(spark, tmp_path: Path):
    resources = {"lake": _lake(tmp_path)}
    assert materialize([numbers], partition_key="2026-01-02", resources=resources).success
    # Day 3 needs days 2 and 3: loaded as one DataFrame in one read.
    assert materialize([numbers, windowed], partition_key="2026-01-03", resources=resources).success
    assert (tmp_path / "bronze" / "numbers" / "dt=2026-01-03").is_dir()
    row = spark.read.parquet(str(tmp_path / "silver" / "windowed" / "dt=2026-01-03")).first()
    assert row["rows"] == 2 + 3 and row["total"] == (20 + 21) + (30 + 31 + 32)
    # Day 2's D-1 was never materialized: allowed, loads what exists.
    assert materialize(
        [numbers.to_source_asset(), windowed], partition_key="2026-01-02", resources=resources
    ).success
    # Re-running a partition replaces it.
    assert materialize([numbers], partition_key="2026-01-03", resources=resources).success
    assert spark.read.parquet(str(tmp_path / "bronze" / "numbers" / "dt=2026-01-03")).count() == 3


def test_missing_upstream_partition_is_a_clear_error(spark, tmp_path: Path):
    @asset(partitions_def=days, io_manager_key="lake", metadata={"layer": "gold"})
    def strict(numbers: DataFrame) -> DataFrame:
        return numbers

    result = materialize(
        [numbers.to_source_asset(), strict],
        partition_key="2026-01-05",
        resources={"lake": _lake(tmp_path)},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "materialize them first" in str(failure.event_specific_data.error)


def test_a_window_without_the_day_being_computed_fails_instead_of_writing_an_empty_day(spark, tmp_path: Path):
    """A canceled run left day 5's upstream absent: gold for day 5 was recorded materialized with
    0 rows. The day itself is required; only its look-back may be missing."""
    resources = {"lake": _lake(tmp_path)}
    assert materialize([numbers], partition_key="2026-01-04", resources=resources).success
    result = materialize(
        [numbers.to_source_asset(), windowed],
        partition_key="2026-01-05",
        resources=resources,
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "numbers: none of partitions ['2026-01-05'] (the days being computed) is in the lake" in str(
        failure.event_specific_data.error
    )
    assert not (tmp_path / "silver" / "windowed" / "dt=2026-01-05").exists()


def test_days_that_cannot_exist_yet_are_not_warned_about(spark, tmp_path: Path):
    """Every `make run` warned that 7 future partitions were 'not materialized ... look-back
    windows start cold'. A look-ahead past yesterday is not missing data; a past one is, and says
    what it affects."""
    from datetime import UTC, datetime, timedelta

    from dagster import DagsterInstance

    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    before = (datetime.now(UTC).date() - timedelta(days=5)).isoformat()

    @asset(
        partitions_def=days,
        io_manager_key="lake",
        metadata={"layer": "gold"},
        ins={"numbers": window_input("numbers", days_before=1, days_after=3)},
    )
    def ahead(numbers: DataFrame) -> DataFrame:
        return numbers

    resources, instance = {"lake": _lake(tmp_path)}, DagsterInstance.ephemeral()
    warnings = []
    for day in (yesterday, before):
        assert materialize([numbers], partition_key=day, resources=resources, instance=instance).success
        run = materialize(
            [numbers.to_source_asset(), ahead], partition_key=day, resources=resources, instance=instance
        )
        warnings.append([e.user_message for e in instance.all_logs(run.run_id) if e.level == 30])
    # Yesterday: D-1 missing (look-back), D+1..D+3 not closed yet (no warning about them).
    assert warnings[0] == [
        f"numbers: 1 partition(s) {[_shift(yesterday, -1)]} are not materialized; loading without them (look-back windows start cold)"
    ]
    assert warnings[1][-1] == (
        f"numbers: 3 partition(s) {[_shift(before, d) for d in (1, 2, 3)]} are not materialized; loading"
        " without them (values that look ahead to them stay null)"
    )


def _shift(day: str, days: int) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def test_only_local_lakes_are_accepted():
    from upath import UPath

    from resources.parquet_io import SparkParquetIOManager

    with pytest.raises(ValueError, match="only local"):
        SparkParquetIOManager(UPath("memory://lake"), lambda: None)


@pytest.mark.parametrize(
    ("local_limit", "cached"),
    [(0, False), (10**6, False), (2, True)],
    ids=["spark-write", "arrow-write", "arrow-write-in-chunks"],
)
def test_small_ranges_write_and_read_through_arrow_with_spark_s_types(
    spark, tmp_path: Path, monkeypatch, local_limit, cached
):
    """The driver-side Arrow paths for multi-day outputs (at once, or a few days at a time for a
    cached frame) and loads give the exact frame (types, decimals, UTC timestamps, nullability)
    that Spark's own write and read give."""
    from datetime import datetime
    from decimal import Decimal

    import resources.parquet_io as lake

    monkeypatch.setattr(lake, "LOCAL_WRITE_MAX_ROWS", local_limit)
    rows = [
        (datetime(2026, 1, d, h), "PEPE", Decimal("0.000001234567890123"), None, True)
        for d in (1, 2)
        for h in (0, 23)
    ]
    frame = spark.createDataFrame(
        rows, "t timestamp, token string, close decimal(38,18), n bigint, ok boolean"
    )
    if cached:
        frame = frame.cache()
    targets = {f"2026-01-0{d}": tmp_path / f"dt=2026-01-0{d}" for d in (1, 2, 3)}
    lake.write_partitions_atomically(frame, "t", targets)
    folders = [str(p) for p in targets.values()]
    assert all(len(list(Path(f).glob("*.parquet"))) == 1 for f in folders)  # a file per day
    by_spark = spark.read.parquet(*folders)
    by_arrow = lake.read_parquet_dirs(spark, folders)
    assert by_arrow.schema == by_spark.schema
    assert sorted(by_arrow.collect()) == sorted(by_spark.collect()) == sorted(frame.collect())
    monkeypatch.setattr(lake, "LOCAL_READ_MAX_BYTES", 0)
    assert lake.read_parquet_dirs(spark, folders).schema == by_spark.schema
    # A range with no rows at all: every day an empty partition with the schema.
    lake.write_partitions_atomically(frame.limit(0), "t", targets)
    assert (
        spark.read.parquet(*folders).count() == 0 and spark.read.parquet(*folders).schema == by_spark.schema
    )


KILLED_WRITER = """
import os, signal, sys
from datetime import datetime, timedelta
from pathlib import Path

from pyspark.sql import SparkSession

import resources.parquet_io as lake

folder, phase = Path(sys.argv[1]), sys.argv[2]
spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
days = [datetime(2026, 1, 1) + timedelta(days=i) for i in range(30)]
targets = {d.date().isoformat(): folder / f"dt={d.date().isoformat()}" for d in days}


def frame(label):
    return spark.createDataFrame([(d + timedelta(hours=h), label) for d in days for h in range(2)], "t timestamp, v string")


lake.write_partitions_atomically(frame("old"), "t", targets)
if phase == "swapping":  # SIGKILL after the 10th of 30 days is swapped in
    swap, done = lake._RangeJournal.swap, []
    def swap_then_die(self, key, source):
        swap(self, key, source)
        done.append(key)
        if len(done) == 10:
            os.kill(os.getpid(), signal.SIGKILL)
    lake._RangeJournal.swap = swap_then_die
else:  # SIGKILL once the staging folder holds some of the new days
    write = lake._write_days_locally
    def write_then_die(frame, staging, chunks):
        write(frame, staging, chunks)
        os.kill(os.getpid(), signal.SIGKILL)
    lake._write_days_locally = write_then_die
print("old written", flush=True)
lake.write_partitions_atomically(frame("new"), "t", targets)
"""


def _values(folder: Path) -> dict[str, set[str]]:
    import pyarrow.parquet as pq

    return {p.name: set(pq.read_table(p).column("v").to_pylist()) for p in sorted(folder.glob("dt=*"))}


@pytest.mark.parametrize(("phase", "after"), [("swapping", "new"), ("writing", "old")])
def test_a_range_write_killed_at_any_phase_leaves_the_old_days_or_the_new_never_a_mix(
    tmp_path: Path, phase: str, after: str
):
    """kill -9 mid-swap (10 of 30 days in) or mid-staging: whoever touches the asset next finds the
    journal of a dead writer and rolls it forward or back; nothing is left behind."""
    import subprocess
    import sys

    from resources.parquet_io import recover_partitions

    folder = tmp_path / "raw" / "raw_klines"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(folder), phase],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9 and "old written" in killed.stdout, killed.stderr[-2000:]
    left = {p.name for p in folder.iterdir() if p.name.startswith(".")}
    assert any(n.endswith(".journal") for n in left) and any(".staging-" in n for n in left)
    if phase == "swapping":  # the kill left a mix on disk...
        assert {frozenset(v) for v in _values(folder).values()} == {frozenset({"old"}), frozenset({"new"})}
    # ...which the next reader (or writer) finishes before reading anything.
    recover_partitions([folder / "dt=2026-01-01"])
    values = _values(folder)
    assert len(values) == 30 and all(v == {after} for v in values.values()), values
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # nothing behind


def test_a_live_writers_journal_and_staging_are_left_alone(tmp_path: Path):
    from resources.parquet_io import _Locked, recover_ranges, sweep_dead_staging

    (tmp_path / ".range.abc.journal").write_text('{"state": "writing", "sources": {}}')
    (tmp_path / ".range.staging-abc").mkdir()
    (tmp_path / ".dt=2026-01-01.staging-def").mkdir()
    with _Locked(tmp_path / ".range.abc.lock"), _Locked(tmp_path / ".dt=2026-01-01.def.lock"):
        assert recover_ranges(tmp_path) == [] and sweep_dead_staging(tmp_path) == []
        assert (tmp_path / ".range.staging-abc").is_dir() and (
            tmp_path / ".dt=2026-01-01.staging-def"
        ).is_dir()
    # Their writers gone (locks released): finished and swept.
    assert recover_ranges(tmp_path) == ["abc"] and sweep_dead_staging(tmp_path) == [
        ".dt=2026-01-01.staging-def"
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_window_read_keeps_every_day_behind_an_empty_part_file(spark, tmp_path):
    """Spark writes a day as several part files, some empty. PySpark 4.x's createDataFrame from
    an Arrow table stops at an empty chunk: the days after it were silently dropped."""
    from resources import parquet_io as lake

    folders = []
    for day in (14, 15, 16):
        folder = tmp_path / f"dt=2023-02-{day}"
        frame = spark.createDataFrame(
            [(datetime(2023, 2, day, h), float(h)) for h in range(24)], "open_time timestamp, close double"
        )
        # A day as two part files, one of them empty (as a write with an idle task leaves it).
        frame.coalesce(1).write.parquet(str(folder))
        spark.createDataFrame([], "open_time timestamp, close double").write.mode("append").parquet(
            str(folder)
        )
        folders.append(str(folder))
    assert any(pq.ParquetFile(f).metadata.num_rows == 0 for d in folders for f in Path(d).glob("*.parquet"))
    loaded = lake.read_parquet_dirs(spark, folders)
    assert loaded.count() == 72
    days = sorted(r["open_time"].day for r in loaded.select("open_time").collect())
    assert days == [14] * 24 + [15] * 24 + [16] * 24
