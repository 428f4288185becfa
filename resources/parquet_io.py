"""The lake: a Parquet IO manager for Spark DataFrames, one directory per asset and day.

Layout: ``<lake_root>/<layer>/<asset>/dt=YYYY-MM-DD/part-*.parquet``.

Writes are atomic: Spark writes into a hidden staging directory next to the partition, and only
a finished write is swapped in by two directory renames. A crash mid-write leaves the previous
partition untouched; a crash between the two renames is repaired on the next access (the retired
copy is put back). Re-running a partition replaces it whole, so it never duplicates rows.

A write of several days (a range run, an import, a removal) is atomic as a whole, through a
journal beside the asset's days (``.range.<id>.journal``, with ``.range.<id>.lock`` held by the
writer while it lives): ``writing`` while the staging folder fills, ``swapping`` once every day is
complete in it, ``done`` when every day is in place. Whoever next touches the asset (a writer, or
a reader through :func:`recover_partitions`) finds a journal whose lock nobody holds and finishes
it: ``swapping`` is rolled forward (every day comes from the staging folder), ``writing`` is rolled
back (nothing was swapped; the staging folder is removed). A kill at any instant thus leaves the
old days or the new ones, never a mix, and nothing behind once the next writer has passed.
"""

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dagster import (
    ConfigurableIOManagerFactory,
    ConfigurableResource,
    InitResourceContext,
    InputContext,
    MetadataValue,
    OutputContext,
    UPathIOManager,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from upath import UPath

from crypto_assets.quality import utc_day

STAGING = "staging"
RETIRED = "retired"


def _siblings(target: Path, kind: str) -> list[Path]:
    return sorted(
        target.parent.glob(f".{target.name}.{kind}-*"), key=lambda p: p.stat().st_mtime, reverse=True
    )


def recover_partition(target: Path) -> None:
    """Finish a swap interrupted between its two renames: put the retired copy back."""
    if target.exists():
        for retired in _siblings(target, RETIRED):
            shutil.rmtree(retired, ignore_errors=True)
        return
    retired = _siblings(target, RETIRED)
    if retired:
        os.replace(retired[0], target)
        for extra in retired[1:]:
            shutil.rmtree(extra, ignore_errors=True)


def recover_partitions(targets: list[Path]) -> None:
    """``recover_partition`` for many partitions, listing each asset's folder once: a look-back
    or a range of hundreds of days would otherwise list the folder once per day (quadratic).
    Range writes that died half-way are finished first (:func:`recover_ranges`)."""
    hidden: dict[Path, list[str]] = {}
    for target in targets:
        if target.parent not in hidden:
            try:
                names = [n for n in os.listdir(target.parent) if n.startswith(".")]
            except FileNotFoundError:
                names = []
            if any(n.endswith(_JOURNAL) for n in names):
                recover_ranges(target.parent)
                names = [n for n in os.listdir(target.parent) if n.startswith(".")]
            hidden[target.parent] = names
        prefix = f".{target.name}."
        if any(name.startswith(prefix) for name in hidden[target.parent]):
            recover_partition(target)


def _held(lock_path: Path) -> bool:
    """Whether a live process holds ``lock_path`` (a writer's lock, see ``_Locked``)."""
    if not lock_path.exists():
        return False
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False


def _staging_lock(staging: Path) -> Path:
    """``.X.staging-<id>`` is locked by its writer through ``.X.<id>.lock``."""
    head, _, write_id = staging.name.rpartition(f".{STAGING}-")
    return staging.parent / f"{head}.{write_id}.lock"


def sweep_dead_staging(folder: Path) -> list[str]:
    """Remove staging folders in ``folder`` whose writer is gone (its lock is free), except those
    a range journal still names (``recover_ranges`` finishes them). Returns what was removed."""
    journaled = {f".range.{STAGING}-{p.name.removeprefix('.range.').removesuffix(_JOURNAL)}"
                 for p in folder.glob(f".range.*{_JOURNAL}")}  # fmt: skip
    removed = []
    for staging in folder.glob(f".*.{STAGING}-*"):
        if staging.name in journaled or _held(_staging_lock(staging)):
            continue
        shutil.rmtree(staging, ignore_errors=True)
        _staging_lock(staging).unlink(missing_ok=True)
        removed.append(staging.name)
    return removed


class _Locked:
    """An exclusive lock on ``path`` for a writer's lifetime (released and removed on exit)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "a")
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)

    def __enter__(self) -> "_Locked":
        return self

    def __exit__(self, *_: object) -> None:
        self.path.unlink(missing_ok=True)
        self._file.close()


def _swap_in(staging: Path, target: Path) -> None:
    """Replace ``target`` by the complete directory ``staging`` with two renames; the caller has
    already repaired an interrupted earlier swap (``recover_partition(s)``)."""
    if target.exists():
        retired = target.parent / f".{target.name}.{RETIRED}-{uuid.uuid4().hex[:12]}"
        os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, target)


def write_partition_atomically(frame: DataFrame, target: Path) -> None:
    """Write ``frame`` as the Parquet directory ``target``, replacing it only once complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_partitions([target])
    sweep_dead_staging(target.parent)
    staging = target.parent / f".{target.name}.{STAGING}-{uuid.uuid4().hex[:12]}"
    with _Locked(_staging_lock(staging)):
        try:
            frame.write.mode("errorifexists").parquet(str(staging))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _swap_in(staging, target)


# A multi-day output is written from the driver with pyarrow, at most this many rows at a time:
# Spark's commit protocol costs ~30 ms per file, for hundreds of small daily files (600 days of
# daily bars are ~20 k rows; a year of hourly klines ~290 k rows in 365 files). Each chunk is one
# scan of the cached frame: a month of the universe's minutes (1.4 M rows) took 15.7 s to write
# in 100 k-row chunks (15 scans). Chunks of a million rows lost task results from the block
# manager under the 2 GiB driver's memory pressure (bronze holds three cached frames); 300 k
# rows (~75 MB of Arrow for bronze) is five scans a month.
LOCAL_WRITE_MAX_ROWS = 300_000


def _day_chunks(rows_per_day: dict[str, int], max_rows: int) -> list[list[str]]:
    """Consecutive days grouped into chunks of at most ``max_rows`` rows (a larger day alone)."""
    chunks: list[list[str]] = [[]]
    rows = 0
    for day in sorted(rows_per_day):
        if chunks[-1] and rows + rows_per_day[day] > max_rows:
            chunks.append([])
            rows = 0
        chunks[-1].append(day)
        rows += rows_per_day[day]
    return chunks


def _write_days_locally(frame: DataFrame, staging: Path, chunks: list[list[str]]) -> None:
    """``frame`` (with a ``_day`` column) as ``staging/_day=<day>/part-00000.parquet`` files,
    the layout Spark's ``partitionBy`` writes, with the same Arrow schema as Spark's files.
    ``chunks``: the days collected to the driver together (one chunk: the whole frame)."""
    staging.mkdir(parents=True, exist_ok=True)
    schema = to_arrow_schema(frame.drop("_day").schema, timezone="UTC")
    for chunk in chunks:
        part = frame if len(chunks) == 1 else frame.where(F.col("_day").isin(chunk))
        table = part.toArrow().sort_by("_day")
        days = table.column("_day")
        data = table.drop_columns(["_day"]).cast(schema)
        # Sorted by day: each day is one slice, not a filter of the whole table.
        offset = 0
        for key, count in zip(*_run_lengths(days), strict=True):
            folder = staging / f"_day={key}"
            folder.mkdir(parents=True)
            pq.write_table(data.slice(offset, count), folder / "part-00000.parquet")
            offset += count


def _run_lengths(values: pa.ChunkedArray) -> tuple[list[str], list[int]]:
    """The distinct values of a sorted column and how many rows each has."""
    if len(values) == 0:
        return [], []
    encoded = pc.run_end_encode(values.combine_chunks())
    ends = encoded.run_ends.to_pylist()
    return encoded.values.to_pylist(), [end - start for start, end in zip([0, *ends[:-1]], ends, strict=True)]


_JOURNAL = ".journal"


class _RangeJournal:
    """The journal of one range write in ``folder`` (see the module's docstring)."""

    def __init__(self, folder: Path, write_id: str) -> None:
        self.folder, self.id = folder, write_id
        self.path = folder / f".range.{write_id}{_JOURNAL}"
        self.lock_path = folder / f".range.{write_id}.lock"
        self.staging = folder / f".range.{STAGING}-{write_id}"

    def retired(self, key: str) -> Path:
        return self.folder / f".dt={key}.{RETIRED}-{self.id}"

    def record(self, state: str, sources: dict[str, str] | None = None) -> None:
        """Replace the journal in one rename: a reader sees the old state or the new."""
        tmp = self.folder / f".range.{self.id}.tmp"
        tmp.write_text(json.dumps({"state": state, "staging": self.staging.name, "sources": sources or {}}))
        os.replace(tmp, self.path)

    def read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {"state": "writing", "sources": {}}  # torn or gone: nothing was swapped

    def swap(self, key: str, source: Path) -> None:
        """Day ``key`` from ``source`` (in the staging folder); its old copy is kept as retired
        until the whole range is in. Re-entrant: a rolled-forward day is left as it is."""
        target = self.folder / f"dt={key}"
        if not source.exists():
            return  # already swapped in
        if target.exists():
            if self.retired(key).exists():
                shutil.rmtree(target)  # a reader put an old copy back meanwhile
            else:
                os.replace(target, self.retired(key))
        os.replace(source, target)

    def finish(self) -> None:
        """The range is in place (or was never swapped): remove what the write left."""
        data = self.read()
        for key in data["sources"]:
            shutil.rmtree(self.retired(key), ignore_errors=True)
        shutil.rmtree(self.staging, ignore_errors=True)
        self.path.unlink(missing_ok=True)
        (self.folder / f".range.{self.id}.tmp").unlink(missing_ok=True)


def recover_ranges(folder: Path) -> list[str]:
    """Finish every range write in ``folder`` whose writer is gone (its lock is free): roll a
    ``swapping`` one forward, a ``writing`` one back. Returns the ids finished."""
    finished = []
    for path in sorted(folder.glob(f".range.*{_JOURNAL}")):
        journal = _RangeJournal(folder, path.name.removeprefix(".range.").removesuffix(_JOURNAL))
        with open(journal.lock_path, "a") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its writer is alive: not ours to touch
            data = journal.read()
            if data["state"] == "swapping":
                for key, source in sorted(data["sources"].items()):
                    journal.swap(key, journal.staging / source)
            journal.finish()
            journal.lock_path.unlink(missing_ok=True)
        finished.append(journal.id)
    return finished


def write_partitions_atomically(
    frame: DataFrame, time_column: str, targets: dict[str, Path]
) -> dict[str, int]:
    """Write a multi-day ``frame`` as one directory per day (``targets``: 'YYYY-MM-DD' -> path).

    Every day is written into a staging folder (partitioned by the day of ``time_column``): from
    the driver with Arrow, up to ``LOCAL_WRITE_MAX_ROWS`` rows at a time, or for an uncached
    frame of more rows, by one Spark job; then each day is swapped in on its own. Rows of a day
    outside ``targets`` fail the write before anything is replaced. Days without rows become empty partitions, so
    a re-run of the range also clears days whose data disappeared. Returns files per day.
    """
    first = next(iter(targets.values()))
    folder = first.parent
    folder.mkdir(parents=True, exist_ok=True)
    recover_ranges(folder)  # what dead writers left: finished before anything else
    sweep_dead_staging(folder)
    journal = _RangeJournal(folder, uuid.uuid4().hex[:12])
    staging = journal.staging
    with _Locked(journal.lock_path):
        journal.record("writing")
        try:
            with_day = frame.withColumn("_day", utc_day(frame, time_column))
            rows_per_day: dict[str, int] = {}
            if len(targets) > 1:
                counted = {r["_day"]: int(r["count"]) for r in with_day.groupBy("_day").count().collect()}
                _refuse_outside(set(counted), targets)  # a null day included, before any write
                rows_per_day = {str(day): rows for day, rows in counted.items()}
            chunks = _day_chunks(rows_per_day, LOCAL_WRITE_MAX_ROWS)
            # More than one chunk reads the frame once per chunk: only when it is cached (publish()
            # hands the IO manager a cached frame).
            if len(targets) > 1 and (len(chunks) == 1 or frame.is_cached):
                _write_days_locally(with_day, staging, chunks)
            else:
                # One task per day: one file per partition instead of one per shuffle partition and day.
                with_day.repartition("_day").write.partitionBy("_day").mode("errorifexists").parquet(
                    str(staging)
                )
            written = {p.name.removeprefix("_day="): p for p in staging.glob("_day=*")}
            _refuse_outside(set(written), targets)
            empty = pa.Table.from_batches([], schema=to_arrow_schema(frame.schema, timezone="UTC"))
            files: dict[str, int] = {}
            sources: dict[str, str] = {}
            for key in targets:
                source = written.get(key)
                if source is None:
                    # An empty day is one empty file with the schema (no Spark job per day).
                    source = staging / f"_empty={key}"
                    source.mkdir()
                    pq.write_table(empty, source / "part-00000-empty.parquet")
                files[key] = len(list(source.glob("*.parquet")))
                sources[key] = source.name
            recover_partitions(list(targets.values()))
            # Every day is complete in staging: from here on the range goes in whole, even if this
            # process dies (the next one to touch the asset rolls it forward).
            journal.record("swapping", sources)
            for key in targets:
                journal.swap(key, staging / sources[key])
            journal.record("done", sources)
            return files
        finally:
            if journal.read()["state"] == "swapping":  # an error while swapping: finish the range
                for key, source in sorted(journal.read()["sources"].items()):
                    journal.swap(key, staging / source)
            journal.finish()


def _refuse_outside(days: set[str | None], targets: dict[str, Path]) -> None:
    outside = sorted(str(day) for day in days if day not in targets)
    if outside:
        raise ValueError(
            f"rows for days {outside} are outside the partitions being written {sorted(targets)}"
        )


def layer_of(context: InputContext | OutputContext) -> str | None:
    """The asset's layer (raw/bronze/silver/gold), from the ``layer`` metadata every asset sets."""
    output = context if isinstance(context, OutputContext) else context.upstream_output
    metadata = (output.definition_metadata if output is not None else None) or {}
    layer = metadata.get("layer")
    return str(layer.value if hasattr(layer, "value") else layer) if layer else None


def _input_flag(context: InputContext, name: str) -> bool:
    """``allow_missing_partitions``: a look-back may lack days; ``optional``: the whole input may be
    absent (a source not ingested for the window), loaded as None."""
    return bool((context.definition_metadata or {}).get(name, False))


class SparkParquetIOManager(UPathIOManager):
    """Stores Spark DataFrames as Parquet directories; loads one or many partitions as one frame."""

    extension = None

    def __init__(self, base_path: UPath, spark: Callable[[], SparkSession]) -> None:
        super().__init__(base_path=base_path)
        if base_path.protocol not in ("", "file", "local"):
            raise ValueError(
                f"LAKE_ROOT={base_path} : only local or mounted filesystems are supported, since"
                " atomic partition swaps rely on directory renames"
            )
        self._spark = spark

    def handle_output(self, context: OutputContext, obj: DataFrame) -> None:
        """One partition: the base class's path logic. A range (a single-run backfill): one
        Spark write split by day, each day swapped in atomically."""
        if not context.has_asset_partitions or len(context.asset_partition_keys) == 1:
            super().handle_output(context, obj)
            return
        metadata = context.definition_metadata or {}
        time_column = metadata.get("partition_time_column")
        if not time_column:
            raise ValueError(
                f"{context.asset_key.to_user_string()}: writing several partitions in one run needs the"
                " asset metadata 'partition_time_column' (the column whose UTC day is the partition)"
            )
        paths = self._get_paths_for_partitions(context)
        files = write_partitions_atomically(
            obj, str(time_column), {k: Path(p.path) for k, p in paths.items()}
        )
        context.add_output_metadata(
            {
                "path": MetadataValue.path(str(next(iter(paths.values())).parent)),
                "partitions_written": MetadataValue.int(len(files)),
            }
        )

    def get_asset_relative_path(self, context: InputContext | OutputContext) -> UPath:
        layer = layer_of(context)
        parts = context.asset_key.path
        return UPath(layer, *parts) if layer else UPath(*parts)

    def get_path_for_partition(
        self, context: InputContext | OutputContext, path: UPath, partition: str
    ) -> UPath:
        return path / f"dt={partition}"

    def dump_to_path(self, context: OutputContext, obj: DataFrame, path: UPath) -> None:
        if not isinstance(obj, DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: the lake stores Spark DataFrames, got {type(obj).__name__}"
            )
        write_partition_atomically(obj, Path(path.path))

    def load_from_path(self, context: InputContext, path: UPath) -> DataFrame:
        local = Path(path.path)
        recover_partition(local)
        if not local.exists() and _input_flag(context, "optional"):
            return None  # type: ignore[return-value]  # an optional source with no data for the window
        if not local.exists():
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()}: no data at {local}; materialize that partition first"
            )
        return self._spark().read.parquet(str(local))

    def _window_paths(self, context: InputContext) -> dict[str, UPath]:
        """The input's days, widened by its window (``days_before`` / ``days_after`` metadata)."""
        paths = self._get_paths_for_partitions(context)
        metadata = context.definition_metadata or {}
        before, after = int(metadata.get("days_before", 0)), int(metadata.get("days_after", 0))
        if not (before or after):
            return paths
        keys = sorted(paths)
        first = date.fromisoformat(keys[0]) - timedelta(days=before)
        last = date.fromisoformat(keys[-1]) + timedelta(days=after)
        asset_path = self._get_path_without_extension(context)
        days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
        return {
            day: self._with_extension(self.get_path_for_partition(context, asset_path, day)) for day in days
        }

    def load_partitions(self, context: InputContext) -> DataFrame:
        """Several upstream partitions (a look-back window) load as one DataFrame, in one read."""
        paths = self._window_paths(context)
        allow_missing = _input_flag(context, "allow_missing_partitions") or _input_flag(context, "optional")
        existing: list[str] = []
        missing: list[str] = []
        recover_partitions([Path(paths[key].path) for key in sorted(paths)])
        for key in sorted(paths):
            local = Path(paths[key].path)
            if local.exists():
                existing.append(str(local))
            else:
                missing.append(key)
        if missing and not allow_missing:
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()}: partitions {missing} are not in the lake;"
                " materialize them first"
            )
        # A window may lack look-back or look-ahead days, not every day being computed: from the
        # look-back alone the output would be an empty day recorded as a success. (In a range, a
        # day without upstream is written empty and fails its coverage check, saying so.)
        core = sorted(self._get_paths_for_partitions(context))
        if set(core) <= set(missing) and not _input_flag(context, "optional"):
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()}: none of partitions {core} (the days being computed)"
                " is in the lake (a canceled or failed run?); materialize them first"
            )
        # Days not closed yet cannot exist (a look-ahead past yesterday): no warning for them.
        today = datetime.now(UTC).date().isoformat()
        first_core = min(self._get_paths_for_partitions(context))
        for missed, effect in (
            ([k for k in missing if k < first_core], "look-back windows start cold"),
            ([k for k in missing if first_core <= k < today], "values that look ahead to them stay null"),
        ):
            if missed:
                shown = missed if len(missed) <= 6 else [*missed[:3], "...", *missed[-3:]]
                context.log.warning(
                    f"{context.asset_key.to_user_string()}: {len(missed)} partition(s) {shown} are not"
                    f" materialized; loading without them ({effect})"
                )
        if not existing and _input_flag(context, "optional"):
            return None  # type: ignore[return-value]
        if not existing:
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()}: none of partitions {sorted(paths)} is in the lake"
            )
        return read_parquet_dirs(self._spark(), existing)


# Hundreds of small daily partitions (a 605-day look-back of daily bars is ~20 k rows) load faster
# through Arrow on the driver than through a Spark scan that opens each tiny file in a task.
LOCAL_READ_MAX_BYTES = 8 * 2**20


def read_parquet_dirs(spark: SparkSession, directories: list[str]) -> DataFrame:
    """The Parquet files of ``directories`` as one DataFrame, the same schema as ``spark.read``
    (every column nullable); small multi-directory loads go through Arrow on the driver."""
    files = [f for d in directories for f in sorted(Path(d).glob("*.parquet"))]
    if len(directories) < 2 or not files or sum(f.stat().st_size for f in files) > LOCAL_READ_MAX_BYTES:
        return spark.read.parquet(*directories)
    # ParquetFile.read skips read_table's dataset discovery per file; Arrow's readers release
    # the GIL, so a few threads overlap the many small reads (605 days: 1.4 s -> 0.5 s).
    with ThreadPoolExecutor(max_workers=4) as pool:
        tables = list(pool.map(lambda f: pq.ParquetFile(f).read(), files))
    # One chunk, empty files left out: PySpark 4.x's createDataFrame stops at the first empty
    # chunk after a non-empty one, silently dropping every row behind it (an empty part file of
    # one day lost the days after it: the last day's look-ahead, so its targets stayed null).
    kept = [t for t in tables if t.num_rows] or tables[:1]
    table = pa.concat_tables(kept, promote_options="permissive").combine_chunks()
    nullable = pa.schema([field.with_nullable(True) for field in table.schema])
    return spark.createDataFrame(table.cast(nullable))


class LakeIOManager(ConfigurableIOManagerFactory):
    """The Parquet lake under ``lake_root`` (LAKE_ROOT), written and read with Spark."""

    lake_root: str
    pyspark: LazyPySparkResource

    def create_io_manager(self, context: InitResourceContext) -> SparkParquetIOManager:
        pyspark = self.pyspark
        return SparkParquetIOManager(UPath(self.lake_root), lambda: pyspark.spark_session)


def existing_partition_keys(root: str | Path, layer: str, asset: str) -> set[str]:
    """Days of ``asset`` with a finished partition in the lake (staging folders excluded)."""
    folder = Path(root) / layer / asset
    if not folder.is_dir():
        return set()
    return {p.name.removeprefix("dt=") for p in folder.glob("dt=*") if p.is_dir() and "." not in p.name}


class LakeResource(ConfigurableResource):
    """Direct, read-only access to the lake's partitions, for assets that merge into their own
    previous output (raw keeps rows of other sources when one source re-delivers a day)."""

    root: str
    pyspark: LazyPySparkResource

    def partition_path(self, layer: str, asset: str, key: str) -> Path:
        return Path(self.root) / layer / asset / f"dt={key}"

    def read_partitions(self, layer: str, asset: str, keys: list[str]) -> DataFrame | None:
        paths = [self.partition_path(layer, asset, k) for k in keys]
        recover_partitions(paths)
        existing = [str(p) for p in paths if p.exists()]
        # Read into memory now: the same directories are about to be replaced.
        return self.pyspark.spark_session.read.parquet(*existing).localCheckpoint() if existing else None
