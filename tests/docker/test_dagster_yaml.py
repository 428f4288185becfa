"""Both Dagster instance files are valid for Dagster's own schema, queue runs one at a time, and
hold no secret."""

from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config_schema

REPO = Path(__file__).resolve().parents[2]
LOCAL = REPO / "crypto_assets" / "config" / "dagster.yaml"
CONTAINERS = REPO / "docker" / "dagster.yaml"


@pytest.mark.parametrize("path", [LOCAL, CONTAINERS], ids=["local", "containers"])
def test_the_instance_config_is_valid_and_queues_one_run_at_a_time(path: Path, monkeypatch):
    for name in ("HOST", "PORT", "DB", "USER", "PASSWORD"):
        monkeypatch.setenv(f"DAGSTER_POSTGRES_{name}", "5432" if name == "PORT" else "x")
    raw = yaml.safe_load(path.read_text())
    result = process_config(dagster_instance_config_schema(), raw)
    assert result.success, result.errors
    assert raw["concurrency"]["runs"]["max_concurrent_runs"] == 1


def test_the_containers_share_postgres_with_credentials_from_the_environment():
    raw = yaml.safe_load(CONTAINERS.read_text())
    database = raw["storage"]["postgres"]["postgres_db"]
    assert all(isinstance(value, dict) and set(value) == {"env"} for value in database.values())
    assert raw["run_coordinator"]["class"] == "QueuedRunCoordinator"
