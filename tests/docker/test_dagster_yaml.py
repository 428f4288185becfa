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
    assert database.pop("scheme") == "postgresql+psycopg2"  # dagster-postgres ships psycopg2
    assert all(isinstance(value, dict) and set(value) == {"env"} for value in database.values())
    assert raw["run_coordinator"]["class"] == "QueuedRunCoordinator"


@pytest.mark.parametrize("launcher", ["docker", "k8s"])
def test_each_run_launcher_makes_a_valid_instance_with_the_containers_config(launcher: str, monkeypatch):
    """docker/launchers/<launcher>.yaml appended to the containers' dagster.yaml, as docs/deploy.md
    says: valid for the instance schema and for the launcher class's own config schema."""
    for name in ("HOST", "PORT", "DB", "USER", "PASSWORD"):
        monkeypatch.setenv(f"DAGSTER_POSTGRES_{name}", "5432" if name == "PORT" else "x")
    monkeypatch.setenv("DAGSTER_STORAGE_DIR", "/data/dagster")
    text = CONTAINERS.read_text() + "\n" + (REPO / "docker" / "launchers" / f"{launcher}.yaml").read_text()
    raw = yaml.safe_load(text)
    assert process_config(dagster_instance_config_schema(), raw).success
    section = raw["run_launcher"]
    module = __import__(section["module"], fromlist=[section["class"]])
    launcher_class = getattr(module, section["class"])
    checked = process_config(launcher_class.config_type(), section["config"])
    assert checked.success, checked.errors
    # A typo in the launcher's config is caught by the same check.
    broken = {**section["config"], "imagee": "x"}
    assert not process_config(launcher_class.config_type(), broken).success

    # No secret is written in the file: only names of variables, ConfigMaps or Secrets.
    def keys(value: object) -> list[str]:
        if isinstance(value, dict):
            return [str(k) for k in value] + [k for v in value.values() for k in keys(v)]
        return [k for v in value for k in keys(v)] if isinstance(value, list) else []

    assert not [k for k in keys(section) if any(w in k.lower() for w in ("password", "token", "key"))]
