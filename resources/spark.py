"""The Spark session resource: ``local[*]`` on loopback by default, any cluster by setting."""

from __future__ import annotations

import contextlib
import os
import sys
import threading

from dagster_pyspark import LazyPySparkResource
from dagster_pyspark.resources import spark_session_from_config

from resources.settings import Settings

# Defaults tuned for small daily partitions on a laptop; every key can be overridden by SPARK_CONF.
BASE_SPARK_CONF: dict[str, str] = {
    "spark.app.name": "crypto-analytics",
    "spark.sql.session.timeZone": "UTC",
    # Small partitions: 200 shuffle tasks would cost more than the work itself.
    "spark.sql.shuffle.partitions": "8",
    # dt=2024-01-01 folders must stay strings, not be guessed into DATE columns.
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    # INT96 timestamps are deprecated and read ambiguously by other engines (DuckDB, Snowflake).
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
    "spark.driver.memory": "2g",
    # A year of daily partitions is ~365 folders: list them in the driver, not in a Spark job
    # of one task per folder.
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "4096",
    "spark.log.level": "ERROR",
    # Tasks commit their files straight into the output folder (one rename, not two): the lake's
    # own staging + swap makes the write atomic, and a long backfill writes thousands of files.
    "spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version": "2",
    "spark.hadoop.parquet.summary.metadata.level": "NONE",
}

LOOPBACK_CONF: dict[str, str] = {
    # The hostname resolves to a non-loopback address on many machines; local mode needs none.
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}


def spark_config(settings: Settings) -> dict[str, str]:
    conf = {**BASE_SPARK_CONF, "spark.master": settings.spark_master}
    if settings.spark_master.startswith("local") or "127.0.0.1" in settings.spark_master:
        conf.update(LOOPBACK_CONF)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Python workers (the per-token recursions) must run this interpreter, with its packages;
        # a cluster sets its own through SPARK_CONF.
        conf["spark.pyspark.python"] = sys.executable
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf.update(settings.spark_conf)
    return conf


def build_spark_resource(settings: Settings) -> LazyPySparkResource:
    return LazyPySparkResource(spark_config=spark_config(settings))


def start_session_in_background(settings: Settings) -> threading.Thread:
    """Start the session the runs of this process will use, in a thread, so that the JVM starts
    (~15 s on a 2-core machine) while the services start and the first run fetches.
    ``getOrCreate`` then hands the runs this session: the same configuration as
    ``build_spark_resource``. A failure here is left for the first asset to raise with its own
    message."""

    def start() -> None:
        with contextlib.suppress(Exception):
            spark_session_from_config(spark_config(settings))

    thread = threading.Thread(target=start, name="spark-session-start", daemon=True)
    thread.start()
    return thread
