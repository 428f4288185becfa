"""Embedded services stay up while any process still uses them, whoever started them (for real:
two processes and the fakesnow warehouse server)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crypto_assets.services import Lease, free_port, port_open

pytestmark = pytest.mark.integration

USER = """
import pathlib, sys, time
from crypto_assets.services import local_services
from resources.settings import Settings
with local_services(Settings.from_env(), emulator=False, say=lambda m: print(m, flush=True)):
    print("up", flush=True)
    release = pathlib.Path(sys.argv[1])
    while not release.exists():
        time.sleep(0.05)
"""


def _user(tmp_path: Path, name: str, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    release = tmp_path / f"release-{name}"
    process = subprocess.Popen(
        [sys.executable, "-c", USER, str(release)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip() == "up":
            return process, release
    raise AssertionError(f"{name} never got the warehouse: exit {process.wait()}")


def _finish(process: subprocess.Popen, release: Path) -> str:
    release.touch()
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    return output


def test_the_warehouse_outlives_its_starter_while_another_process_uses_it(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("SNOWFLAKE_ACCOUNT", "WAREHOUSE_DATA_DIR")}
    env.update(LAKE_ROOT=str(tmp_path / "lake"), WAREHOUSE_PORT=str(port))
    first, first_release = _user(tmp_path, "first", env)  # starts the warehouse
    second, second_release = _user(tmp_path, "second", env)  # reuses it
    assert "left running for process" in _finish(first, first_release)
    assert port_open("127.0.0.1", port)  # the second run keeps its warehouse
    assert "stopping it (started by an earlier process, now unused)" in _finish(second, second_release)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and port_open("127.0.0.1", port):
        time.sleep(0.2)
    assert not port_open("127.0.0.1", port)


def test_a_dead_users_lease_does_not_keep_a_service(tmp_path: Path):
    lease = Lease("warehouse", "127.0.0.1", 1, root=tmp_path)
    (lease.folder / "999999999.lease").touch()  # a process that crashed without releasing
    assert lease.release() == (True, [])
    assert not (lease.folder / "999999999.lease").exists()
    # A recorded pid that is not one of our services is never signalled.
    lease.record_service(os.getpid())
    assert lease.service_pid() is None


def test_a_warehouse_on_another_host_is_used_never_started(tmp_path: Path, monkeypatch):
    # In the containers WAREHOUSE_HOST names the warehouse's own service: when it does not
    # answer, the error says so instead of starting a server that cannot bind that name.
    from crypto_assets.services import ServiceError, local_services
    from resources.settings import Settings

    monkeypatch.setenv("LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("WAREHOUSE_HOST", "warehouse.invalid")
    monkeypatch.setenv("WAREHOUSE_PORT", str(free_port()))
    with pytest.raises(ServiceError, match=r"warehouse\.invalid.*does not answer"):
        with local_services(Settings.from_env(), emulator=False, say=lambda _: None):
            pass
    assert not (tmp_path / "lake" / "logs" / "warehouse.log").exists()
