"""Resources chosen per environment, in one place: :func:`build_resources`.

LOCAL (no ``SNOWFLAKE_ACCOUNT``): the lake on disk, Spark ``local[*]``, the embedded fakesnow
warehouse on 127.0.0.1 and the exchange emulator. PROD: the same code against a real Snowflake
account; the exchange and Spark master are independent settings (``BINANCE_REST_URL``,
``SPARK_MASTER``). Nothing here knows about the assets that use these resources.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import EnvVar
from dagster_snowflake import SnowflakeResource

from resources.exchange import BinanceResource, CoinGeckoResource
from resources.parquet_io import LakeIOManager, LakeResource
from resources.settings import LOCAL, Settings
from resources.snowflake_io import SparkSnowflakeIOManager
from resources.spark import build_spark_resource


def _snowflake_fields(settings: Settings) -> dict[str, Any]:
    """Connection fields of the configured warehouse, shared by the IO manager and the resource."""
    if settings.environment == LOCAL:
        # The same connection the CLI and the dashboard use; the embedded server takes no secret.
        args = dict(settings.connector_args())
        return {
            "account": str(args.pop("account")),
            "user": str(args.pop("user")),
            "password": str(args.pop("password")),
            "database": str(args.pop("database")),
            "schema": str(args.pop("schema")),
            "additional_snowflake_connection_args": args,
        }
    return {
        "account": EnvVar("SNOWFLAKE_ACCOUNT"),
        "user": EnvVar("SNOWFLAKE_USER"),
        "password": EnvVar("SNOWFLAKE_PASSWORD"),
        "database": settings.snowflake_database,
        "schema": settings.snowflake_schema,
        "warehouse": settings.snowflake_warehouse,
        "role": settings.snowflake_role,
    }


def warehouse_io_manager(settings: Settings) -> SparkSnowflakeIOManager:
    return SparkSnowflakeIOManager(**_snowflake_fields(settings))


def warehouse_resource(settings: Settings) -> SnowflakeResource:
    """A plain connection to the same warehouse (the model reads its training set with it)."""
    return SnowflakeResource(**_snowflake_fields(settings))


def build_resources(settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or Settings.from_env()
    pyspark = build_spark_resource(settings)
    return {
        "pyspark": pyspark,
        "lake_io_manager": LakeIOManager(lake_root=str(settings.lake_root), pyspark=pyspark),
        "lake": LakeResource(root=str(settings.lake_root), pyspark=pyspark),
        "warehouse_io_manager": warehouse_io_manager(settings),
        "warehouse": warehouse_resource(settings),
        "binance": BinanceResource(
            rest_url=settings.binance_rest_url,
            ws_url=settings.binance_ws_url,
            archive_url=settings.binance_archive_url,
            klines_source=settings.klines_source,
            weight_per_minute=settings.binance_weight_per_minute,
        ),
        "coingecko": CoinGeckoResource(
            url=settings.coingecko_url,
            # A secret: referenced, never copied into config, logs or the run storage.
            api_key=EnvVar("COINGECKO_API_KEY") if os.getenv("COINGECKO_API_KEY") else None,
            calls_per_minute=settings.coingecko_calls_per_minute,
        ),
    }
