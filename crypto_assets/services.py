"""Start the embedded services (exchange emulator, fakesnow warehouse) when nobody serves them.

Each service runs as its own process group, so stopping it is one signal and never leaves a
stray child. Services that were already running (``make dev`` in another terminal) are reused.

Every process that uses a service holds a lease on it (a file named by its pid, under the
system's temporary folder, per host and port). A service stays up while any live process holds
a lease: whoever leaves last stops it, whether it started the service or not. A second
``crypto-analytics run`` therefore never loses the warehouse under its feet when the first one,
which started it, finishes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from resources.settings import LOOPBACK_HOSTS, Settings


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


LEASES_ROOT = Path(tempfile.gettempdir()) / "crypto-analytics-services"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lease:
    """This process's use of the service on ``host:port``."""

    def __init__(self, name: str, host: str, port: int, root: Path | None = None) -> None:
        self.name = name
        self.folder = (root or LEASES_ROOT) / f"{name}-{host}-{port}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"{os.getpid()}.lease"
        self.path.touch()

    def record_service(self, pid: int) -> None:
        (self.folder / "service.pid").write_text(str(pid))

    def others(self) -> list[int]:
        """Live processes other than this one that still use the service."""
        pids = []
        for path in self.folder.glob("*.lease"):
            pid = int(path.stem)
            if pid == os.getpid():
                continue
            if _alive(pid):
                pids.append(pid)
            else:
                path.unlink(missing_ok=True)  # a crashed user's lease
        return pids

    def release(self) -> tuple[bool, list[int]]:
        """Drop this lease; True when nobody else uses the service (this process stops it)."""
        self.path.unlink(missing_ok=True)
        others = self.others()
        return not others, others

    def service_pid(self) -> int | None:
        """The service's pid, when a process of ours started it and it still runs (a pid the
        system gave to another program since is never signalled)."""
        try:
            pid = int((self.folder / "service.pid").read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        if b"crypto_assets.cli" not in cmdline or self.name.encode() not in cmdline:
            return None
        return pid

    def forget_service(self) -> None:
        (self.folder / "service.pid").unlink(missing_ok=True)


def _stop_pid(pid: int, timeout: float = 15.0) -> None:
    """Stop a service another process started (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


@contextlib.contextmanager
def local_services(
    settings: Settings,
    *,
    emulator: bool = True,
    warehouse: bool = True,
    say: Callable[[str], None] = print,
) -> Iterator[list[Service]]:
    """Ensure the embedded services the settings point at are up, holding a lease on each; on
    the way out, stop those nobody else still uses.

    Services start in parallel; the ones already running (``make dev`` elsewhere) are reused.
    """
    pending: list[tuple[Service, Callable[[], bool]]] = []
    started: list[Service] = []
    leases: dict[str, Lease] = {}
    log_dir = settings.lake_root / "logs"
    try:
        address = settings.emulator_address
        if emulator and address is not None:
            ehost, eport = address
            leases["emulator"] = Lease("emulator", ehost, eport)
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
            leases["warehouse"] = Lease("warehouse", whost, wport)
            if _warehouse_ready(whost, wport):
                say(f"embedded warehouse: reusing http://{whost}:{wport}")
            elif whost not in LOOPBACK_HOSTS:
                # Another machine's (a container's): ours to use, not to start.
                raise ServiceError(
                    f"the embedded warehouse at http://{whost}:{wport} (WAREHOUSE_HOST) does not answer"
                )
            else:
                data_dir = str(settings.warehouse_data_dir)
                say(f"embedded warehouse: starting on http://{whost}:{wport} (data in {data_dir})")
                args = ["warehouse", "--host", whost, "--port", str(wport), "--data-dir", data_dir]
                pending.append(
                    (spawn_service("warehouse", args, log_dir), lambda: _warehouse_ready(whost, wport))
                )
        started = [service for service, _ in pending]
        for service in started:
            leases[service.name].record_service(service.process.pid)
        for service, ready in pending:
            wait_ready(service, ready)
        yield started
    finally:
        mine = {service.name: service for service in started or [service for service, _ in pending]}
        for name, lease in reversed(leases.items()):
            last, others = lease.release()
            if not last:
                if name in mine:
                    say(f"{name}: left running for process(es) {', '.join(map(str, others))} still using it")
                continue
            if name in mine:
                mine[name].stop()
                lease.forget_service()
            elif (pid := lease.service_pid()) is not None:
                # Started by a process that has finished since: the last user stops it.
                say(f"{name}: stopping it (started by an earlier process, now unused)")
                _stop_pid(pid)
                lease.forget_service()
