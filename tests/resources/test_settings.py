import pytest

from resources.environment import build_resources, warehouse_io_manager
from resources.settings import LOCAL, PROD, Settings, SettingsError
from resources.spark import spark_config


@pytest.fixture
def clean_env(monkeypatch):
    for name in (
        "SNOWFLAKE_ACCOUNT", "SNOWFLAKE_PASSWORD", "SPARK_CONF", "SPARK_MASTER", "BINANCE_REST_URL",
        "BINANCE_WS_URL", "WAREHOUSE_PORT", "LAKE_ROOT", "WAREHOUSE_DATA_DIR", "BINANCE_ARCHIVE_URL",
        "COINGECKO_URL", "KLINES_SOURCE",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_are_the_embedded_stack(clean_env):
    settings = Settings.from_env()
    assert settings.environment == LOCAL
    assert settings.emulator_address == ("127.0.0.1", 8765)
    assert settings.lake_root.name == "lake"
    assert settings.warehouse_data_dir == settings.lake_root / "warehouse"
    assert settings.binance_archive_url == "http://127.0.0.1:8765"
    assert settings.coingecko_url == "http://127.0.0.1:8765/coingecko/api/v3"
    assert settings.klines_source == "archive"
    args = settings.connector_args()
    assert args["host"] == "127.0.0.1" and args["port"] == 8766 and args["protocol"] == "http"
    conf = spark_config(settings)
    assert conf["spark.master"] == "local[*]" and conf["spark.driver.bindAddress"] == "127.0.0.1"


def test_real_snowflake_exchange_and_cluster_are_settings(clean_env):
    clean_env.setenv("SNOWFLAKE_ACCOUNT", "acme-xy12345")
    clean_env.setenv("SNOWFLAKE_PASSWORD", "s3cret")
    clean_env.setenv("BINANCE_REST_URL", "https://api.binance.com")
    clean_env.setenv("SPARK_MASTER", "spark://10.1.2.3:7077")
    clean_env.setenv("SPARK_CONF", '{"spark.executor.memory": "8g"}')
    settings = Settings.from_env()
    assert settings.environment == PROD and settings.emulator_address is None
    assert settings.connector_args()["account"] == "acme-xy12345"
    conf = spark_config(settings)
    assert conf["spark.executor.memory"] == "8g" and "spark.driver.bindAddress" not in conf
    manager = warehouse_io_manager(settings)
    # The secret stays an environment reference in the resource's config, never a literal.
    assert "s3cret" not in repr(manager.__dict__.get("_config_dict", manager))
    assert settings.binance_archive_url == "https://data.binance.vision"
    assert settings.coingecko_url == "https://api.coingecko.com/api/v3"
    assert settings.binance_ws_url == "wss://stream.binance.com:9443"
    resources = build_resources(settings)
    assert set(resources) == {
        "pyspark", "lake_io_manager", "lake", "warehouse_io_manager", "warehouse", "binance", "coingecko",
    }  # fmt: skip
    # The model's plain connection reads the same secrets from the environment, never a copy.
    assert type(resources["warehouse"].password).__name__ == "EnvVar"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WAREHOUSE_PORT", "eighty", "WAREHOUSE_PORT must be an integer"),
        ("SPARK_CONF", "spark.x=1", "SPARK_CONF must be a JSON object"),
        ("SPARK_CONF", "[1, 2]", "SPARK_CONF must be a JSON object"),
        ("BINANCE_REST_URL", "ftp://x", "BINANCE_REST_URL must be a http/https URL"),
        ("BINANCE_WS_URL", "http://x", "BINANCE_WS_URL must be a ws/wss URL"),
        ("KLINES_SOURCE", "ftp", "KLINES_SOURCE must be one of"),
        # An object store would otherwise become a local folder named "s3a:" under the cwd.
        ("LAKE_ROOT", "s3a://bucket/lake", r"LAKE_ROOT='s3a://bucket/lake': an object-store lake \(s3a://\)"),
        ("LAKE_ROOT", "gs://bucket/lake", "not supported yet"),
        ("LAKE_ROOT", "abfss://lake@account.dfs.core.windows.net/", "not supported yet"),
        ("LAKE_ROOT", "ftp://host/lake", "a folder path is expected"),
    ],
)
def test_bad_settings_name_the_variable(clean_env, name, value, message):
    clean_env.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        Settings.from_env()


def test_a_file_url_lake_root_is_its_path(clean_env, tmp_path):
    clean_env.setenv("LAKE_ROOT", f"file://{tmp_path}/lake")
    assert Settings.from_env().lake_root == tmp_path / "lake"
