"""The warehouse: a Snowflake IO manager for Spark DataFrames, built on dagster-snowflake.

The Spark connector's jars are not reachable from here, and it hard-codes
``<account>.snowflakecomputing.com``; so this loads the way Snowflake bulk-loads anywhere:
the frame is written as Parquet, ``PUT`` to a temporary stage and ``COPY``'d in. That path works
alike on a real account and on the embedded fakesnow server.

Each load is one transaction: delete the partition's time window, copy the new rows, check the
count, commit. A re-run replaces the partition exactly; a failure leaves the previous rows.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dagster import InputContext, MetadataValue, OutputContext
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_snowflake import SnowflakeIOManager
from dagster_snowflake.snowflake_io_manager import SnowflakeDbClient, partition_where_clause
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

ROWS_PER_FILE = 500_000


class WarehouseLoadError(RuntimeError):
    """A load that would lose or duplicate rows; the transaction was rolled back."""


def snowflake_type(data_type: T.DataType) -> str:
    """Snowflake column type for a Spark type. Timestamps are stored as UTC wall-clock NTZ."""
    if isinstance(data_type, T.StringType):
        return "VARCHAR"
    if isinstance(data_type, T.BooleanType):
        return "BOOLEAN"
    if isinstance(data_type, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return "NUMBER(38,0)"
    if isinstance(data_type, T.DecimalType):
        return f"NUMBER({data_type.precision},{data_type.scale})"
    if isinstance(data_type, (T.FloatType, T.DoubleType)):
        return "FLOAT"
    if isinstance(data_type, T.DateType):
        return "DATE"
    if isinstance(data_type, (T.TimestampType, T.TimestampNTZType)):
        return "TIMESTAMP_NTZ"
    raise TypeError(f"no Snowflake column type for Spark type {data_type.simpleString()}")


def _spark_type(type_name: str, precision: int | None, scale: int | None) -> T.DataType:
    if type_name == "FIXED":
        return T.LongType() if not scale else T.DecimalType(precision or 38, scale)
    return {
        "REAL": T.DoubleType(),
        "TEXT": T.StringType(),
        "BOOLEAN": T.BooleanType(),
        "DATE": T.DateType(),
        "TIMESTAMP_NTZ": T.TimestampNTZType(),
        "TIMESTAMP_LTZ": T.TimestampType(),
        "TIMESTAMP_TZ": T.TimestampType(),
    }.get(type_name, T.StringType())


def qualified_name(table_slice: TableSlice) -> str:
    return f"{table_slice.database}.{table_slice.schema}.{table_slice.table}"


def _to_arrow(frame: DataFrame) -> pa.Table:
    # Snowflake reads Parquet timestamps adjusted to UTC as TIMESTAMP_LTZ: hand it NTZ instead so
    # the stored value is the UTC wall-clock time whatever the session's time zone.
    columns = [
        F.col(f.name).cast(T.TimestampNTZType()).alias(f.name)
        if isinstance(f.dataType, T.TimestampType)
        else F.col(f.name)
        for f in frame.schema.fields
    ]
    return frame.select(*columns).toArrow()


def _check_inside_window(table: pa.Table, table_slice: TableSlice) -> None:
    """Rows outside the partition's window would survive the next re-run's DELETE: refuse them."""
    for dimension in table_slice.partition_dimensions:
        window = dimension.partitions
        column = dimension.partition_expr.lower()
        if not hasattr(window, "start") or column not in table.column_names or table.num_rows == 0:
            continue
        values = table.column(column)
        start = pa.scalar(window.start.replace(tzinfo=None), type=pa.timestamp("us"))
        end = pa.scalar(window.end.replace(tzinfo=None), type=pa.timestamp("us"))
        values = pc.cast(values, pa.timestamp("us"))
        outside = pc.sum(pc.or_(pc.less(values, start), pc.greater_equal(values, end))).as_py() or 0
        if outside:
            raise WarehouseLoadError(
                f"{outside} rows have {column} outside the partition window "
                f"[{window.start:%Y-%m-%d %H:%M}, {window.end:%Y-%m-%d %H:%M}); nothing loaded"
            )


def _sql_text(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def document_columns(cursor: Any, table_slice: TableSlice, comments: Mapping[str, str]) -> int:
    """Set each column's comment where it differs from ``comments`` (one query when up to date)."""
    if not comments:
        return 0
    cursor.execute(
        "SELECT COLUMN_NAME, COMMENT FROM INFORMATION_SCHEMA.COLUMNS"
        f" WHERE TABLE_SCHEMA = {_sql_text(table_slice.schema.upper())}"
        f" AND TABLE_NAME = {_sql_text(table_slice.table.upper())}"
    )
    current = {str(name).upper(): comment for name, comment in cursor.fetchall()}
    changed = 0
    for column, text in comments.items():
        if column.upper() in current and current[column.upper()] != text:
            cursor.execute(
                f"COMMENT ON COLUMN {qualified_name(table_slice)}.{column.upper()} IS {_sql_text(text)}"
            )
            changed += 1
    return changed


def load_frame(
    connection: Any,
    table_slice: TableSlice,
    frame: DataFrame,
    *,
    cluster_by: str | None = None,
    comments: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Replace ``table_slice``'s rows with ``frame``'s, in one transaction. Returns metadata.

    A new table is created with types mapped from the Spark schema and ``CLUSTER BY
    (cluster_by)``; ``comments`` (column -> text) are kept in step on every load."""
    table = qualified_name(table_slice)
    fields = frame.schema.fields
    arrow = _to_arrow(frame)
    _check_inside_window(arrow, table_slice)
    cursor = connection.cursor()
    column_sql = ", ".join(f"{f.name.upper()} {snowflake_type(f.dataType)}" for f in fields)
    clustering = f" CLUSTER BY ({cluster_by})" if cluster_by else ""
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {table} ({column_sql}){clustering}")
    cursor.execute(f"DESCRIBE TABLE {table}")
    existing = {str(row[0]).upper() for row in cursor.fetchall()}
    for f in fields:
        # New features arrive as new columns: add them instead of silently dropping them.
        if f.name.upper() not in existing:
            cursor.execute(f"ALTER TABLE {table} ADD COLUMN {f.name.upper()} {snowflake_type(f.dataType)}")

    where = (
        partition_where_clause(table_slice.partition_dimensions)
        if table_slice.partition_dimensions
        else "TRUE"
    )
    stage = f"CA_LOAD_{uuid.uuid4().hex[:16].upper()}"
    loaded = 0
    with tempfile.TemporaryDirectory(prefix="ca-load-") as tmp:
        files: list[Path] = []
        for index, offset in enumerate(range(0, max(arrow.num_rows, 1), ROWS_PER_FILE)):
            if arrow.num_rows == 0:
                break
            path = Path(tmp) / f"part-{index:05d}.parquet"
            pq.write_table(arrow.slice(offset, ROWS_PER_FILE), path)
            files.append(path)
        cursor.execute(f"CREATE TEMPORARY STAGE {stage}")
        for path in files:
            cursor.execute(f"PUT 'file://{path}' @{stage} AUTO_COMPRESS=FALSE OVERWRITE=TRUE")
        cursor.execute("BEGIN")
        try:
            cursor.execute(f"DELETE FROM {table} WHERE {where}")
            deleted = cursor.rowcount or 0
            if files:
                cursor.execute(
                    f"COPY INTO {table} FROM @{stage} FILE_FORMAT=(TYPE=PARQUET)"
                    " MATCH_BY_COLUMN_NAME=CASE_INSENSITIVE PURGE=TRUE"
                )
                loaded = _rows_loaded(cursor)
            if loaded != arrow.num_rows:
                raise WarehouseLoadError(
                    f"COPY INTO {table} loaded {loaded} rows, expected {arrow.num_rows}; rolled back"
                )
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
    documented = document_columns(cursor, table_slice, comments or {})
    return {
        "table": MetadataValue.text(table),
        "rows_loaded": MetadataValue.int(loaded),
        "rows_replaced": MetadataValue.int(deleted),
        "column_comments_updated": MetadataValue.int(documented),
    }


def _rows_loaded(cursor: Any) -> int:
    """Sum ``rows_loaded`` over COPY's per-file result rows."""
    names = [d[0].lower() for d in cursor.description]
    rows = cursor.fetchall()
    if "rows_loaded" not in names:
        return cursor.rowcount or 0
    index = names.index("rows_loaded")
    return sum(int(r[index] or 0) for r in rows)


def read_frame(connection: Any, table_slice: TableSlice, spark: SparkSession) -> DataFrame:
    cursor = connection.cursor()
    cursor.execute(SnowflakeDbClient.get_select_statement(table_slice))
    frame = cursor.fetch_pandas_all()
    frame.columns = [c.lower() for c in frame.columns]
    if len(frame):
        return spark.createDataFrame(frame)
    from snowflake.connector.constants import FIELD_ID_TO_NAME

    schema = T.StructType(
        [
            T.StructField(d.name.lower(), _spark_type(FIELD_ID_TO_NAME[d.type_code], d.precision, d.scale))
            for d in cursor.description
        ]
    )
    return spark.createDataFrame([], schema)


class SparkDataFrameTypeHandler(DbTypeHandler[DataFrame]):
    """Stores and loads ``pyspark.sql.DataFrame`` through Parquet, PUT and COPY INTO."""

    def handle_output(
        self, context: OutputContext, table_slice: TableSlice, obj: DataFrame, connection: Any
    ) -> Mapping[str, Any]:
        metadata = context.definition_metadata or {}
        schema = metadata.get("dagster/column_schema")
        comments = {c.name: c.description for c in schema.columns if c.description} if schema else {}
        cluster_by = metadata.get("cluster_by")
        return load_frame(
            connection,
            table_slice,
            obj,
            cluster_by=str(cluster_by) if cluster_by else None,
            comments=comments,
        )

    def load_input(self, context: InputContext, table_slice: TableSlice, connection: Any) -> DataFrame:
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        return read_frame(connection, table_slice, spark)

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return [DataFrame]


class _TransactionalSnowflakeDbClient(SnowflakeDbClient):
    @staticmethod
    def delete_table_slice(context: OutputContext, table_slice: TableSlice, connection: Any) -> None:
        # Deliberately empty: the type handler deletes inside the load's own transaction, so a
        # failed load never leaves the partition empty.
        return None


class SparkSnowflakeIOManager(SnowflakeIOManager):
    """Snowflake (or the embedded fakesnow server) as the ML-ready store for Spark DataFrames."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [SparkDataFrameTypeHandler()]

    @staticmethod
    def default_load_type() -> type | None:
        return DataFrame

    def create_io_manager(self, context: Any) -> DbIOManager:
        return DbIOManager(
            db_client=_TransactionalSnowflakeDbClient(),
            io_manager_name="SparkSnowflakeIOManager",
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
        )
