"""Every setting of the platform, read from the environment in one place.

Pure Python and fast to import: the CLI's ``sql`` command and the dashboard use it without
loading Dagster or Spark. Secrets (``SNOWFLAKE_PASSWORD``, ``SNOWFLAKE_PRIVATE_KEY``) are not
read here: Dagster resources take them through ``dagster.EnvVar`` so they never enter config,
logs or the run storage.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

LOCAL = "local"
PROD = "prod"

DEFAULT_EMULATOR_PORT = 8765
DEFAULT_WAREHOUSE_PORT = 8766
# archive: the bulk archive first, REST for the days it does not have yet; rest: REST only.
KLINES_SOURCES = ("archive", "rest")


class SettingsError(ValueError):
    """A bad setting, reported with the variable's name before anything runs."""


def _int(name: str, default: int) -> int:
    raw = os.getenv(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


# Hosts that are this machine: an embedded service there is ours to start.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def _is_loopback(url: str) -> bool:
    return urlparse(url).hostname in LOOPBACK_HOSTS


def _spark_conf() -> dict[str, str]:
    raw = os.getenv("SPARK_CONF", "").strip()
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise SettingsError(
            'SPARK_CONF must be a JSON object, e.g. {"spark.executor.memory": "4g"}'
        ) from None
    if not isinstance(parsed, dict):
        raise SettingsError("SPARK_CONF must be a JSON object of Spark properties")
    return {str(k): str(v) for k, v in parsed.items()}


# Object stores Spark can address; the lake cannot live on them yet (docs/deploy.md).
OBJECT_STORE_SCHEMES = ("s3", "s3a", "s3n", "gs", "gcs", "abfs", "abfss", "wasb", "wasbs", "az", "hdfs")


def _lake_root(raw: str) -> Path:
    """The lake's root folder: a local or mounted path (``file://`` allowed). An object-store URL
    is refused by name: the lake's atomic partition swap is a directory rename, which S3 and GCS
    do not have, and its lock is a local file lock."""
    url = urlparse(raw)
    if url.scheme == "file":
        return Path(url.path).expanduser().resolve()
    if url.scheme in OBJECT_STORE_SCHEMES:
        raise SettingsError(
            f"LAKE_ROOT={raw!r}: an object-store lake ({url.scheme}://) is not supported yet; the lake's"
            " atomic partition swaps are directory renames and its lock a local file lock. Use a local"
            " or shared POSIX path (an NFS or CSI file share on a cluster); docs/deploy.md says what an"
            " object store would need"
        )
    if url.scheme and len(url.scheme) > 1:  # not a Windows drive letter
        raise SettingsError(f"LAKE_ROOT={raw!r}: a folder path is expected, not a {url.scheme}:// URL")
    return Path(raw).expanduser().resolve()


@dataclass(frozen=True)
class Settings:
    lake_root: Path
    spark_master: str
    spark_conf: dict[str, str]
    binance_rest_url: str
    binance_ws_url: str
    binance_archive_url: str
    binance_weight_per_minute: int
    klines_source: str
    coingecko_url: str
    coingecko_calls_per_minute: int
    snowflake_account: str | None
    snowflake_user: str
    snowflake_database: str
    snowflake_schema: str
    snowflake_warehouse: str | None
    snowflake_role: str | None
    warehouse_host: str
    warehouse_port: int
    warehouse_data_dir: Path
    dagster_home: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def environment(self) -> str:
        """LOCAL runs on the embedded warehouse; PROD on a real Snowflake account."""
        return PROD if self.snowflake_account else LOCAL

    @property
    def uses_embedded_warehouse(self) -> bool:
        return self.environment == LOCAL

    @property
    def run_failures_path(self) -> Path:
        """Where the run-failure sensor records failed runs and the dashboard reads them."""
        return self.lake_root / "ops" / "run_failures.jsonl"

    @property
    def emulator_address(self) -> tuple[str, int] | None:
        """(host, port) when the exchange is the local emulator, else None (a real exchange)."""
        url = urlparse(self.binance_rest_url)
        if _is_loopback(self.binance_rest_url) and url.hostname and url.port:
            return url.hostname, url.port
        return None

    @classmethod
    def from_env(cls) -> Settings:
        lake_root = _lake_root(os.getenv("LAKE_ROOT") or "lake")
        rest = os.getenv("BINANCE_REST_URL", f"http://127.0.0.1:{DEFAULT_EMULATOR_PORT}")
        ws = os.getenv(
            "BINANCE_WS_URL",
            rest.replace("http", "ws", 1) if _is_loopback(rest) else "wss://stream.binance.com:9443",
        )
        for name, url, schemes in (
            ("BINANCE_REST_URL", rest, ("http", "https")),
            ("BINANCE_WS_URL", ws, ("ws", "wss")),
        ):
            if urlparse(url).scheme not in schemes or not urlparse(url).hostname:
                raise SettingsError(f"{name} must be a {'/'.join(schemes)} URL, got {url!r}")
        source = os.getenv("KLINES_SOURCE", "archive")
        if source not in KLINES_SOURCES:
            raise SettingsError(f"KLINES_SOURCE must be one of {KLINES_SOURCES}, got {source!r}")
        warehouse_dir = os.getenv("WAREHOUSE_DATA_DIR")
        return cls(
            lake_root=lake_root,
            spark_master=os.getenv("SPARK_MASTER", "local[*]"),
            spark_conf=_spark_conf(),
            binance_rest_url=rest.rstrip("/"),
            binance_ws_url=ws.rstrip("/"),
            # The emulator serves every source on one port: pointing BINANCE_REST_URL at it moves
            # the streams, the archive and CoinGecko along; a real exchange defaults to the real services.
            binance_archive_url=os.getenv(
                "BINANCE_ARCHIVE_URL", rest if _is_loopback(rest) else "https://data.binance.vision"
            ).rstrip("/"),
            binance_weight_per_minute=_int("BINANCE_WEIGHT_PER_MINUTE", 6000),
            klines_source=source,
            coingecko_url=os.getenv(
                "COINGECKO_URL",
                f"{rest.rstrip('/')}/coingecko/api/v3"
                if _is_loopback(rest)
                else "https://api.coingecko.com/api/v3",
            ).rstrip("/"),
            coingecko_calls_per_minute=_int("COINGECKO_CALLS_PER_MINUTE", 30),
            snowflake_account=os.getenv("SNOWFLAKE_ACCOUNT") or None,
            snowflake_user=os.getenv("SNOWFLAKE_USER", "crypto"),
            snowflake_database=os.getenv("SNOWFLAKE_DATABASE", "CRYPTO"),
            snowflake_schema=os.getenv("SNOWFLAKE_SCHEMA", "ANALYTICS"),
            snowflake_warehouse=os.getenv("SNOWFLAKE_WAREHOUSE") or None,
            snowflake_role=os.getenv("SNOWFLAKE_ROLE") or None,
            warehouse_host=os.getenv("WAREHOUSE_HOST", "127.0.0.1"),
            warehouse_port=_int("WAREHOUSE_PORT", DEFAULT_WAREHOUSE_PORT),
            warehouse_data_dir=Path(warehouse_dir).resolve() if warehouse_dir else lake_root / "warehouse",
            dagster_home=Path(os.getenv("DAGSTER_HOME", ".dagster")).expanduser().resolve(),
        )

    def connector_args(self) -> dict[str, object]:
        """Keyword arguments for ``snowflake.connector.connect`` (secrets read at call time)."""
        if self.uses_embedded_warehouse:
            return {
                "account": "embedded",
                "user": "crypto",
                "password": "embedded",  # fakesnow accepts any; not a secret
                "host": self.warehouse_host,
                "port": self.warehouse_port,
                "protocol": "http",
                "database": self.snowflake_database,
                "schema": self.snowflake_schema,
                "network_timeout": 120,  # a COPY of a month of bars takes a while on 2 cores
                "login_timeout": 30,
            }
        args: dict[str, object] = {
            "account": self.snowflake_account,
            "user": self.snowflake_user,
            "database": self.snowflake_database,
            "schema": self.snowflake_schema,
        }
        if os.getenv("SNOWFLAKE_PASSWORD"):
            args["password"] = os.environ["SNOWFLAKE_PASSWORD"]
        if self.snowflake_warehouse:
            args["warehouse"] = self.snowflake_warehouse
        if self.snowflake_role:
            args["role"] = self.snowflake_role
        return args
