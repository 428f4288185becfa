"""docker-compose.yml's services run natively, as the file writes them, without a Docker engine.

What stands in for Docker, and nothing else:
- **the network**: one private network namespace (``unshare --net``) with only loopback, and a
  private ``/etc/hosts`` (``unshare --mount`` + a bind mount) that resolves every service name
  and hostname of the file to 127.0.0.1. Services reach each other by the names and ports the
  file gives, and nothing on the host (a developer's own ``make dev`` on port 3000) is in the way;
- **the images**: the local virtualenvs stand for ``/opt/venv`` (Airflow's for its image), the
  repository for ``/app``, and the environment is the Dockerfile's ``ENV`` for the service's build
  target, overridden by the file's ``environment`` after Compose's own interpolation;
- **the volumes**: each named volume is a folder, the same one for every service that mounts it;
- **Postgres**, an upstream image: its entrypoint's work (``initdb`` with ``POSTGRES_USER`` /
  ``POSTGRES_PASSWORD``, ``POSTGRES_DB``, then ``/docker-entrypoint-initdb.d``) is done with the
  machine's Postgres binaries, as an unprivileged user as the image does.

Each service's command, and its health check, then run unchanged (paths mapped as above).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from crypto_assets.services import Service

REPO = Path(__file__).resolve().parents[2]
# The Compose binary itself: the PyPI package's `docker-compose` script wraps it and loses its
# exit status (an invalid file "passes").
COMPOSE_BIN = next((REPO / ".venv" / "lib").glob("python3*/site-packages/compose/docker-compose"))
VENVS = {"docker/Dockerfile": REPO / ".venv", "docker/airflow.Dockerfile": REPO / ".venv-airflow"}
# Every service's image, by name, when the file uses it without a build section of its own.
IMAGE_BUILDS = {
    "crypto-analytics/app": ("docker/Dockerfile", "app"),
    "crypto-analytics/code": ("docker/Dockerfile", "code"),
    "crypto-analytics/dagster": ("docker/Dockerfile", "dagster"),
    "crypto-analytics/airflow": ("docker/airflow.Dockerfile", "airflow"),
}
NAMESPACE = """
import subprocess, sys
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["mount", "--bind", sys.argv[1], "/etc/hosts"], check=True)
print("ready", flush=True)
sys.stdin.read()
"""


def compose_config(*profiles: str, env: dict[str, str] | None = None) -> dict:
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    done = subprocess.run(
        [str(COMPOSE_BIN), "--project-directory", str(REPO), *flags, "config", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        # Compose interpolates from this environment: none of the .env variables are set.
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **(env or {})},
    )
    if done.returncode != 0:
        raise AssertionError(done.stderr)
    return json.loads(done.stdout)


def image_env(dockerfile: str, target: str) -> dict[str, str]:
    """The ``ENV`` of ``target`` in ``dockerfile``, through its ``FROM`` chain."""
    text = (REPO / dockerfile).read_text().replace("\\\n", " ")
    stages: dict[str, tuple[str, dict[str, str]]] = {}
    current = ""
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "FROM":
            current = words[-1]
            stages[current] = (words[1], {})
        elif words[0] == "ENV":
            for pair in words[1:]:
                key, _, value = pair.partition("=")
                stages[current][1][key] = value
    env: dict[str, str] = {}
    chain = []
    stage = target
    while stage in stages:
        chain.append(stages[stage][1])
        stage = stages[stage][0]
    for layer in reversed(chain):
        env.update(layer)
    return env


@dataclass
class NativeStack:
    """The file's services, natively, in one private network namespace."""

    root: Path
    profiles: tuple[str, ...] = ()
    config: dict = field(default_factory=dict)
    running: dict[str, Service] = field(default_factory=dict)
    namespace: subprocess.Popen | None = None
    postgres_dir: Path | None = None

    def __post_init__(self) -> None:
        self.config = compose_config(*self.profiles)
        self.services: dict[str, dict] = self.config["services"]
        names = {"localhost", *self.services}
        names |= {s["hostname"] for s in self.services.values() if s.get("hostname")}
        hosts = self.root / "hosts"
        self.root.mkdir(parents=True, exist_ok=True)
        hosts.write_text(f"127.0.0.1 {' '.join(sorted(names))}\n::1 localhost\n")
        self.namespace = subprocess.Popen(
            ["unshare", "--mount", "--net", "--fork", sys.executable, "-c", NAMESPACE, str(hosts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.namespace.stdout is not None
        if self.namespace.stdout.readline().strip() != "ready":
            raise AssertionError("the private network namespace did not start (needs root: unshare)")

    # --- what stands in for the image -------------------------------------------------------
    def build(self, name: str) -> tuple[str, str] | None:
        """(Dockerfile, target) of the service's image; None for an upstream image (Postgres)."""
        service = self.services[name]
        if service.get("build"):
            return service["build"]["dockerfile"], service["build"]["target"]
        return IMAGE_BUILDS.get(service["image"].split(":")[0])

    def volume(self, source: str) -> Path:
        path = self.root / "volumes" / source
        path.mkdir(parents=True, exist_ok=True)
        return path

    def native(self, name: str, value: str) -> str:
        """``value`` with the container's paths replaced by the local ones."""
        build = self.build(name)
        mapping = {"/opt/venv": str(VENVS[build[0]]), "/app": str(REPO)} if build else {}
        for volume in self.services[name].get("volumes", []):
            if volume["type"] == "volume":
                mapping[volume["target"]] = str(self.volume(volume["source"]))
        for prefix in sorted(mapping, key=len, reverse=True):
            value = re.sub(rf"(?<![\w.-]){re.escape(prefix)}(?=/|$|[^\w.-])", mapping[prefix], value)
        return value

    def env(self, name: str, **overrides: str) -> dict[str, str]:
        build = self.build(name)
        if build is None:  # Postgres: its client tools are the machine's
            return {**os.environ, **overrides}
        dockerfile, target = build
        env = {k: v for k, v in image_env(dockerfile, target).items() if k != "PATH"}
        env.update({k: v for k, v in (self.services[name].get("environment") or {}).items() if v is not None})
        env.update(overrides)
        env = {k: self.native(name, v) for k, v in env.items()}
        home = self.root / "home" / name
        home.mkdir(parents=True, exist_ok=True)
        env["HOME"] = str(home)
        env["PATH"] = f"{VENVS[dockerfile]}/bin:{os.environ['PATH']}"
        return env

    def _inside(self, argv: list[str], cwd: Path | None = None) -> list[str]:
        assert self.namespace is not None
        return [
            "nsenter",
            f"--target={self.namespace.pid}",
            "--mount",
            "--net",
            f"--wd={cwd or REPO}",
            "--",
            *argv,
        ]

    # --- services ---------------------------------------------------------------------------
    def start(self, name: str) -> Service:
        service = self.services[name]
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        if service["image"].startswith("postgres:"):
            return self._start_postgres(name, log)
        argv = [self.native(name, word) for word in service["command"]]
        with open(log, "ab") as out:
            process = subprocess.Popen(
                self._inside(argv),
                env=self.env(name),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.running[name] = Service(name, process, log)
        return self.running[name]

    def exec(
        self, name: str, argv: list[str], timeout: float = 600, **env: str
    ) -> subprocess.CompletedProcess:
        """``docker compose exec <name> <argv>``: the service's environment, to completion."""
        return subprocess.run(
            self._inside([self.native(name, word) for word in argv]),
            env=self.env(name, **env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def exec_start(self, name: str, argv: list[str], **env: str) -> subprocess.Popen:
        """``exec``, started: its output (stdout and stderr together) read with ``communicate``."""
        return subprocess.Popen(
            self._inside([self.native(name, word) for word in argv]),
            env=self.env(name, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
        )

    def healthy(self, name: str) -> bool:
        test = self.services[name]["healthcheck"]["test"]
        assert test[0] == "CMD"
        done = subprocess.run(
            self._inside([self.native(name, word) for word in test[1:]]),
            env=self.env(name),
            capture_output=True,
            timeout=60,
        )
        return done.returncode == 0

    def wait_healthy(self, name: str, timeout: float = 180) -> float:
        """Seconds until the service's own health check passes; fails when it exits first."""
        started = time.monotonic()
        running = self.running[name]
        while time.monotonic() - started < timeout:
            if running.process.poll() is not None:
                raise AssertionError(f"{name} exited with {running.process.returncode}:\n{self.tail(name)}")
            if self.healthy(name):
                return time.monotonic() - started
            time.sleep(1.0)
        raise AssertionError(f"{name} not healthy within {timeout:.0f} s:\n{self.tail(name)}")

    def wait_completed(self, name: str, timeout: float = 300) -> None:
        try:
            code = self.running[name].process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{name} did not complete within {timeout:.0f} s:\n{self.tail(name)}"
            ) from None
        if code != 0:
            raise AssertionError(f"{name} exited with {code}:\n{self.tail(name)}")

    def tail(self, name: str, chars: int = 3000) -> str:
        return self.running[name].log_path.read_text(errors="replace")[-chars:]

    def stop(self, name: str, timeout: float = 30) -> None:
        running = self.running.pop(name, None)
        if running is not None:
            running.stop(timeout)  # its whole process group

    def close(self) -> None:
        for name in reversed(list(self.running)):
            self.stop(name)
        if self.namespace is not None:
            with contextlib.suppress(Exception):
                assert self.namespace.stdin is not None
                self.namespace.stdin.close()
            try:
                self.namespace.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.namespace.kill()
        if self.postgres_dir is not None:
            subprocess.run(["rm", "-rf", str(self.postgres_dir)], check=False)

    # --- Postgres: the official image's entrypoint, done by hand ----------------------------
    def _start_postgres(self, name: str, log: Path) -> Service:
        service = self.services[name]
        env = service["environment"]
        port = service["expose"][0]
        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not binaries:
            raise AssertionError(
                "Postgres is not installed here (`make test` installs it: apt-get install postgresql)"
            )
        pg = binaries[-1]
        # Postgres refuses to run as root; the image runs it as its own unprivileged user. Its
        # data lives outside pytest's private temporary folder, which that user cannot enter.
        self.postgres_dir = Path(tempfile.mkdtemp(prefix="crypto-analytics-pg-"))
        data, password = self.postgres_dir / "data", self.postgres_dir / "password"
        password.write_text(env["POSTGRES_PASSWORD"])
        as_user: list[str] = []
        if os.geteuid() == 0:
            as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
            os.chown(self.postgres_dir, 65534, 65534)
            os.chown(password, 65534, 65534)
        subprocess.run(
            [
                *as_user,
                str(pg / "initdb"),
                "-D",
                str(data),
                "--username",
                env["POSTGRES_USER"],
                "--pwfile",
                str(password),
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write("host all all all scram-sha-256\n")  # as the image: any address, a password
        with open(log, "ab") as out:
            process = subprocess.Popen(
                self._inside(
                    [
                        *as_user,
                        str(pg / "postgres"),
                        "-D",
                        str(data),
                        "-p",
                        port,
                        "-c",
                        "listen_addresses=*",
                        "-k",
                        str(self.postgres_dir),
                    ]
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.running[name] = Service(name, process, log)
        psql_env = {**os.environ, "PGPASSWORD": env["POSTGRES_PASSWORD"]}
        psql = [
            str(pg / "psql"),
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--username",
            env["POSTGRES_USER"],
            "--set",
            "ON_ERROR_STOP=1",
            "--quiet",
        ]
        deadline = time.monotonic() + 60
        while (
            subprocess.run(
                self._inside([*psql, "--dbname", "postgres", "-c", "SELECT 1"]),
                env=psql_env,
                capture_output=True,
            ).returncode
            != 0
        ):
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError(f"postgres did not start:\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.3)
        subprocess.run(
            self._inside([*psql, "--dbname", "postgres", "-c", f'CREATE DATABASE "{env["POSTGRES_DB"]}"']),
            env=psql_env,
            check=True,
            capture_output=True,
        )
        for volume in service.get("volumes", []):
            if volume["type"] == "bind" and volume["target"].startswith("/docker-entrypoint-initdb.d/"):
                subprocess.run(
                    self._inside([*psql, "--dbname", env["POSTGRES_DB"], "-f", volume["source"]]),
                    env=psql_env,
                    check=True,
                    capture_output=True,
                )
        return self.running[name]

    # --- order ------------------------------------------------------------------------------
    def waves(self, names: list[str] | None = None) -> list[list[str]]:
        """The services in the order their ``depends_on`` allows, those of one wave together."""
        todo = set(names or self.services)
        waves = []
        while todo:
            # What a service depends on outside ``names`` is already up.
            ready = sorted(n for n in todo if not set(self.services[n].get("depends_on") or {}) & todo)
            if not ready:
                raise AssertionError(f"a cycle in depends_on among {sorted(todo)}")
            waves.append(ready)
            todo -= set(ready)
        return waves

    def up(self, names: list[str] | None = None, timeout: float = 240) -> dict[str, float]:
        """Start the services wave by wave, each once what it depends on is healthy (or
        completed); the seconds each took to be healthy."""
        seconds: dict[str, float] = {}
        for wave in self.waves(names):
            started = time.monotonic()
            for name in wave:
                self.start(name)
            for name in wave:
                if self.services[name].get("restart") == "no":
                    self.wait_completed(name, timeout)
                    seconds[name] = time.monotonic() - started
                elif name not in seconds:
                    self.wait_healthy(name, timeout)
                    seconds[name] = time.monotonic() - started
        return seconds
