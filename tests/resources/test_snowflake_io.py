"""The warehouse IO manager against the real embedded warehouse (fakesnow server over HTTP)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import snowflake.connector
from dagster import DailyPartitionsDefinition, TimeWindow, asset, materialize
from dagster._core.storage.db_io_manager import TablePartitionDimension, TableSlice
from pyspark.sql import DataFrame
from pyspark.sql import types as T

import resources.snowflake_io as snowflake_io
from resources.environment import warehouse_io_manager
from resources.settings import Settings
from resources.snowflake_io import WarehouseLoadError, load_frame, read_frame, snowflake_type

pytestmark = pytest.mark.integration
days = DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")
SCHEMA = T.StructType(
    [
        T.StructField("bar_time", T.TimestampType()),
        T.StructField("token", T.StringType()),
        T.StructField("price", T.DecimalType(38, 18)),
        T.StructField("ret", T.DoubleType()),
        T.StructField("n", T.LongType()),
    ]
)


@pytest.fixture
def settings(local_env) -> Settings:
    return Settings.from_env()


@pytest.fixture
def connection(settings: Settings):
    with snowflake.connector.connect(**settings.connector_args()) as conn:
        conn.cursor().execute(f"CREATE SCHEMA IF NOT EXISTS {settings.snowflake_schema}")
        yield conn


def _slice(settings: Settings, day: str, table: str = "PRICES") -> TableSlice:
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return TableSlice(
        table=table,
        schema=settings.snowflake_schema,
        database=settings.snowflake_database,
        partition_dimensions=[
            TablePartitionDimension("BAR_TIME", TimeWindow(start, start + timedelta(days=1)))
        ],
    )


def _frame(spark, day: str, tokens: list[str], price: str = "0.000001234567891234") -> DataFrame:
    start = datetime.fromisoformat(day)
    rows = [
        (start + timedelta(hours=h), token, Decimal(price), 0.5, 10**12)
        for token in tokens
        for h in range(24)
    ]
    return spark.createDataFrame(rows, SCHEMA)


def _count(connection, settings: Settings, where: str = "TRUE") -> int:
    cursor = connection.cursor()
    cursor.execute(
        f"SELECT COUNT(*) FROM {settings.snowflake_database}.{settings.snowflake_schema}.PRICES WHERE {where}"
    )
    return cursor.fetchone()[0]


def test_type_mapping():
    assert snowflake_type(T.DecimalType(38, 18)) == "NUMBER(38,18)"
    assert snowflake_type(T.TimestampType()) == "TIMESTAMP_NTZ"
    assert snowflake_type(T.LongType()) == "NUMBER(38,0)"
    with pytest.raises(TypeError, match="no Snowflake column type"):
        snowflake_type(T.ArrayType(T.StringType()))


def test_partition_replace_is_exact_and_leaves_other_days(spark, connection, settings):
    load_frame(connection, _slice(settings, "2026-01-01"), _frame(spark, "2026-01-01", ["BTC", "ETH"]))
    load_frame(connection, _slice(settings, "2026-01-02"), _frame(spark, "2026-01-02", ["BTC"]))
    metadata = load_frame(connection, _slice(settings, "2026-01-01"), _frame(spark, "2026-01-01", ["BTC"]))
    assert metadata["rows_loaded"].value == 24 and metadata["rows_replaced"].value == 48
    assert _count(connection, settings, "BAR_TIME < '2026-01-02'") == 24
    assert _count(connection, settings) == 48
    cursor = connection.cursor()
    cursor.execute(
        f"SELECT BAR_TIME, PRICE, N FROM {settings.snowflake_schema}.PRICES ORDER BY BAR_TIME LIMIT 1"
    )
    bar_time, price, n = cursor.fetchone()
    assert bar_time == datetime(2026, 1, 1, 0, 0)  # UTC wall-clock, no shift
    assert price == Decimal("0.000001234567891234") and n == 10**12


def test_failed_load_rolls_back_and_keeps_previous_rows(spark, connection, settings, monkeypatch):
    load_frame(connection, _slice(settings, "2026-01-03"), _frame(spark, "2026-01-03", ["BTC", "ETH"]))
    monkeypatch.setattr(snowflake_io, "_rows_loaded", lambda cursor: 1)  # COPY "loses" rows
    with pytest.raises(WarehouseLoadError, match="rolled back"):
        load_frame(connection, _slice(settings, "2026-01-03"), _frame(spark, "2026-01-03", ["BTC"]))
    assert _count(connection, settings, "BAR_TIME >= '2026-01-03' AND BAR_TIME < '2026-01-04'") == 48


def test_rows_outside_the_partition_are_refused(spark, connection, settings):
    with pytest.raises(WarehouseLoadError, match="outside the partition window"):
        load_frame(connection, _slice(settings, "2026-01-05"), _frame(spark, "2026-01-06", ["BTC"]))


def test_new_columns_are_added_and_frames_read_back(spark, connection, settings):
    load_frame(connection, _slice(settings, "2026-01-07"), _frame(spark, "2026-01-07", ["BTC"]))
    wider = _frame(spark, "2026-01-08", ["SOL"]).selectExpr("*", "ret * 2 AS ret_2")
    load_frame(connection, _slice(settings, "2026-01-08"), wider)
    back = read_frame(connection, _slice(settings, "2026-01-08"), spark)
    assert back.count() == 24 and "ret_2" in back.columns
    assert back.first()["ret_2"] == 1.0
    empty = read_frame(connection, _slice(settings, "2026-02-01"), spark)
    assert empty.count() == 0 and "bar_time" in empty.columns


def test_io_manager_through_dagster(spark, settings):
    @asset(partitions_def=days, metadata={"partition_expr": "BAR_TIME"}, io_manager_key="warehouse")
    def hourly_prices(context) -> DataFrame:
        return _frame(spark, context.partition_key, ["BTC", "PEPE"])

    @asset(partitions_def=days, io_manager_key="memory")
    def price_count(hourly_prices: DataFrame) -> int:
        return hourly_prices.count()

    from dagster import InMemoryIOManager

    resources = {"warehouse": warehouse_io_manager(settings), "memory": InMemoryIOManager()}
    for _ in range(2):  # the second run must replace, not duplicate
        result = materialize([hourly_prices, price_count], partition_key="2026-01-10", resources=resources)
        assert result.success
        assert result.output_for_node("price_count") == 48
    with snowflake.connector.connect(**settings.connector_args()) as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT COUNT(*), COUNT(DISTINCT TOKEN) FROM HOURLY_PRICES")
        assert cursor.fetchone() == (48, 2)
