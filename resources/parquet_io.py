"""The lake: a Parquet IO manager for Spark DataFrames, one directory per asset and day.

Layout: ``<lake_root>/<layer>/<asset>/dt=YYYY-MM-DD/part-*.parquet``.

Writes are atomic: Spark writes into a hidden staging directory next to the partition, and only
a finished write is swapped in by two directory renames. A crash mid-write leaves the previous
partition untouched; a crash between the two renames is repaired on the next access (the retired
copy is put back). Re-running a partition replaces it whole, so it never duplicates rows.
"""

import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from dagster import (
    ConfigurableIOManagerFactory,
    InitResourceContext,
    InputContext,
    OutputContext,
    UPathIOManager,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import DataFrame, SparkSession
from upath import UPath

STAGING = "staging"
RETIRED = "retired"
_STALE_STAGING_SECONDS = 6 * 3600


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


def write_partition_atomically(frame: DataFrame, target: Path) -> None:
    """Write ``frame`` as the Parquet directory ``target``, replacing it only once complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_partition(target)
    now = time.time()
    for stale in _siblings(target, STAGING):
        if now - stale.stat().st_mtime > _STALE_STAGING_SECONDS:
            shutil.rmtree(stale, ignore_errors=True)
    token = uuid.uuid4().hex[:12]
    staging = target.parent / f".{target.name}.{STAGING}-{token}"
    try:
        frame.write.mode("errorifexists").parquet(str(staging))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        retired = target.parent / f".{target.name}.{RETIRED}-{token}"
        os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, target)


def layer_of(context: InputContext | OutputContext) -> str | None:
    """The asset's layer (raw/bronze/silver/gold), from the ``layer`` metadata every asset sets."""
    output = context if isinstance(context, OutputContext) else context.upstream_output
    metadata = (output.definition_metadata if output is not None else None) or {}
    layer = metadata.get("layer")
    return str(layer.value if hasattr(layer, "value") else layer) if layer else None


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
        if not local.exists():
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()}: no data at {local}; materialize that partition first"
            )
        return self._spark().read.parquet(str(local))

    def load_partitions(self, context: InputContext) -> DataFrame:
        """Several upstream partitions (a look-back window) load as one DataFrame, in one read."""
        paths = self._get_paths_for_partitions(context)
        allow_missing = bool((context.definition_metadata or {}).get("allow_missing_partitions", False))
        existing: list[str] = []
        missing: list[str] = []
        for key in sorted(paths):
            local = Path(paths[key].path)
            recover_partition(local)
            if local.exists():
                existing.append(str(local))
            else:
                missing.append(key)
        if missing and not allow_missing:
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()}: partitions {missing} are not in the lake;"
                " materialize them first"
            )
        if missing:
            context.log.warning(
                f"{context.asset_key.to_user_string()}: partitions {missing} are not materialized;"
                " loading without them (look-back features start cold)"
            )
        if not existing:
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()}: none of partitions {sorted(paths)} is in the lake"
            )
        return self._spark().read.parquet(*existing)


class LakeIOManager(ConfigurableIOManagerFactory):
    """The Parquet lake under ``lake_root`` (LAKE_ROOT), written and read with Spark."""

    lake_root: str
    pyspark: LazyPySparkResource

    def create_io_manager(self, context: InitResourceContext) -> SparkParquetIOManager:
        pyspark = self.pyspark
        return SparkParquetIOManager(UPath(self.lake_root), lambda: pyspark.spark_session)
