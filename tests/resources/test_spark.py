"""The Spark session started ahead of the runs (the runs' own getOrCreate then returns it)."""

import threading
from typing import Any

import pytest

from resources import spark as spark_module
from resources.settings import Settings


@pytest.fixture
def settings(monkeypatch) -> Settings:
    for name in ("SPARK_CONF", "SPARK_MASTER"):
        monkeypatch.delenv(name, raising=False)
    return Settings.from_env()


def test_the_session_starts_in_a_thread_with_the_resources_config(settings, monkeypatch):
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(spark_module, "spark_session_from_config", lambda conf: started.append(conf))
    thread = spark_module.start_session_in_background(settings)
    thread.join(timeout=10)
    assert not thread.is_alive() and thread.daemon
    assert started == [spark_module.build_spark_resource(settings).spark_config]


def test_a_failed_start_is_left_to_the_first_asset(settings, monkeypatch):
    def broken(_conf: dict[str, Any]) -> None:
        raise RuntimeError("Java gateway process exited before sending its port number")

    escaped: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: escaped.append(args.exc_value))
    monkeypatch.setattr(spark_module, "spark_session_from_config", broken)
    thread = spark_module.start_session_in_background(settings)
    thread.join(timeout=10)
    assert not thread.is_alive() and escaped == []  # the asset's own getOrCreate raises it
