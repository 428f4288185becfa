"""Start the embedded services (exchange emulator, fakesnow warehouse) when nobody serves them.

Each service runs as its own process group, so stopping it is one signal and never leaves a
stray child. Services that were already running (``make dev`` in another terminal) are reused
and left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from resources.settings import Settings


class ServiceError(RuntimeError):
    pass


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _emulator_ready(host: str, port: int) -> bool:
    try:
        return httpx.get(f"http://{host}:{port}/api/v3/ping", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _warehouse_ready(host: str, port: int) -> bool:
    # fakesnow's server answers any unknown route with 404: that is enough to know it is up.
    try:
        return httpx.get(f"http://{host}:{port}/", timeout=1.0).status_code in (200, 404, 405)
    except httpx.HTTPError:
        return False


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log_path: Path

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def spawn_service(name: str, args: list[str], log_dir: Path, env: Mapping[str, str] | None = None) -> Service:
    """Run ``crypto-analytics <args>`` in its own session, logging to ``log_dir/<name>.log``
    (with ``env`` instead of this process's environment when given)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "crypto_assets.cli", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=None if env is None else dict(env),
        )
    return Service(name, process, log_path)


def wait_ready(service: Service, ready: Callable[[], bool], timeout: float = 60.0) -> Service:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            tail = service.log_path.read_text(errors="replace")[-2000:]
            raise ServiceError(
                f"{service.name} exited with code {service.process.returncode} while starting:\n{tail}"
            )
        if ready():
            return service
        time.sleep(0.1)
    service.stop()
    raise ServiceError(
        f"{service.name} did not become ready within {timeout:.0f} s (log: {service.log_path})"
    )


def start_service(
    name: str,
    args: list[str],
    ready: Callable[[], bool],
    log_dir: Path,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
) -> Service:
    """Start a service and wait until ``ready()``."""
    return wait_ready(spawn_service(name, args, log_dir, env), ready, timeout)


@contextlib.contextmanager
def local_services(
    settings: Settings,
    *,
    emulator: bool = True,
    warehouse: bool = True,
    say: Callable[[str], None] = print,
) -> Iterator[list[Service]]:
    """Ensure the embedded services the settings point at are up; stop the ones started here.

    Services start in parallel; the ones already running (``make dev`` elsewhere) are reused.
    """
    pending: list[tuple[Service, Callable[[], bool]]] = []
    started: list[Service] = []
    log_dir = settings.lake_root / "logs"
    try:
        address = settings.emulator_address
        if emulator and address is not None:
            ehost, eport = address
            if _emulator_ready(ehost, eport):
                say(f"exchange emulator: reusing http://{ehost}:{eport}")
            elif port_open(ehost, eport):
                raise ServiceError(f"port {eport} is taken by something that is not the exchange emulator")
            else:
                say(f"exchange emulator: starting on http://{ehost}:{eport}")
                service = spawn_service(
                    "emulator", ["emulator", "--host", ehost, "--port", str(eport)], log_dir
                )
                pending.append((service, lambda: _emulator_ready(ehost, eport)))
        if warehouse and settings.uses_embedded_warehouse:
            whost, wport = settings.warehouse_host, settings.warehouse_port
            if _warehouse_ready(whost, wport):
                say(f"embedded warehouse: reusing http://{whost}:{wport}")
            else:
                data_dir = str(settings.warehouse_data_dir)
                say(f"embedded warehouse: starting on http://{whost}:{wport} (data in {data_dir})")
                args = ["warehouse", "--host", whost, "--port", str(wport), "--data-dir", data_dir]
                pending.append(
                    (spawn_service("warehouse", args, log_dir), lambda: _warehouse_ready(whost, wport))
                )
        started = [service for service, _ in pending]
        for service, ready in pending:
            wait_ready(service, ready)
        yield started
    finally:
        for service in reversed(started or [service for service, _ in pending]):
            service.stop()
