"""docker-compose.yml, the Dockerfiles and .env.example, checked without a Docker engine: the
real Compose binary validates the file for the default stack and every profile, hadolint lints
every Dockerfile, and every path a Dockerfile copies or a service starts exists."""

import json
import re
import subprocess
from pathlib import Path

from tests.docker.native import COMPOSE_BIN, IMAGE_BUILDS, VENVS

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILES = sorted((REPO / "docker").glob("*Dockerfile"))
# Image name -> the local virtualenv that stands for its /opt/venv.
IMAGE_VENVS = {image: VENVS[dockerfile] for image, (dockerfile, _) in IMAGE_BUILDS.items()}


def compose(*args: str, env_file: Path | None = None) -> subprocess.CompletedProcess:
    command = [str(COMPOSE_BIN), "--project-directory", str(REPO), "-f", str(COMPOSE)]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, cwd=REPO)


def config(*profiles: str, env_file: Path | None = None) -> dict:
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    done = compose(*flags, "config", "--format", "json", env_file=env_file)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def profiles() -> list[str]:
    done = compose("--profile", "*", "config", "--profiles")
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_file_is_valid_for_compose_alone_and_with_every_profile(tmp_path: Path):
    assert profiles() == ["spark"]
    for chosen in ([], *[[p] for p in profiles()]):
        flags = [arg for p in chosen for arg in ("--profile", p)]
        done = compose(*flags, "config", "--quiet")
        assert done.returncode == 0, (chosen, done.stderr)
    # A broken file is refused: the validation can fail.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("condition: service_healthy", "condition: service_hapy", 1))
    done = subprocess.run(
        [str(COMPOSE_BIN), "-f", str(broken), "config", "--quiet"], capture_output=True, text=True
    )
    assert done.returncode != 0 and "condition value must be one of" in done.stderr


def test_the_default_stack_and_the_spark_profile_hold_every_service():
    default = set(config()["services"])
    assert default == {
        "postgres", "emulator", "warehouse", "code", "webserver", "daemon", "stream", "dashboard",
        "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
    }  # fmt: skip
    assert set(config("spark")["services"]) - default == {"spark-master", "spark-worker"}


def test_services_wait_on_health_and_are_all_checked():
    services = config("spark")["services"]
    for name, service in services.items():
        if name == "airflow-init":  # a one-shot job: the others wait for it to complete
            assert service["restart"] == "no"
            continue
        assert service["healthcheck"]["test"][0] == "CMD", name
        command = " ".join(service.get("command") or [])
        assert "sleep" not in command, name
        for upstream, wait in (service.get("depends_on") or {}).items():
            allowed = {"service_healthy", "service_completed_successfully"}
            assert wait["condition"] in allowed, (name, upstream)
        # Our images are built, never pulled from a registry where someone else may own the name.
        if service["image"].startswith("crypto-analytics/"):
            assert service["pull_policy"] == ("build" if service.get("build") else "never"), name
    published = {
        name: [p["published"] for p in s.get("ports", [])] for name, s in services.items() if s.get("ports")
    }
    assert published == {
        "emulator": ["8765"], "warehouse": ["8766"], "webserver": ["3000"], "dashboard": ["8501"],
        "airflow-apiserver": ["8080"], "spark-master": ["8081"],
    }  # fmt: skip
    assert all(p["host_ip"] == "127.0.0.1" for s in services.values() for p in s.get("ports", []))


def test_no_env_file_runs_the_local_stack_and_env_example_switches_to_the_real_services():
    local = config()["services"]["code"]["environment"]
    assert local["BINANCE_REST_URL"] == "http://emulator:8765"
    assert local["WAREHOUSE_HOST"] == "warehouse" and local["SNOWFLAKE_ACCOUNT"] == ""
    assert local["SPARK_MASTER"] == "local[*]"
    # .env.example with its lines uncommented: the real exchange, Snowflake and the cluster.
    example = (REPO / ".env.example").read_text()
    uncommented = REPO / ".test-artifacts" / "env.uncommented"
    uncommented.parent.mkdir(exist_ok=True)
    uncommented.write_text(
        "\n".join(
            re.sub(r"\s+#.*$", "", line[2:])
            for line in example.splitlines()
            if line.startswith("# ") and "=" in line.split()[1]
        )
    )
    real = config(env_file=uncommented)["services"]["code"]["environment"]
    assert real["BINANCE_REST_URL"] == "https://api.binance.com"
    assert real["SNOWFLAKE_ACCOUNT"] == "myorg-myaccount"
    assert real["SPARK_MASTER"] == "spark://spark-master:7077"
    assert json.loads(real["SPARK_CONF"]) == {"spark.executor.memory": "3g"}


def test_no_secret_is_baked_into_an_image_or_written_in_the_files():
    secret = re.compile(r"(PASSWORD|SECRET|TOKEN|PRIVATE_KEY)", re.I)
    for dockerfile in DOCKERFILES:
        for line in dockerfile.read_text().splitlines():
            if line.strip().startswith(("ENV", "ARG")):
                assert not secret.search(line), (dockerfile.name, line)
    for line in (REPO / ".env.example").read_text().splitlines():
        if "=" in line and secret.search(line.split("=")[0]):
            value = line.split("=", 1)[1].split("#")[0].strip()
            assert value in ("", "change-me"), line
    for line in COMPOSE.read_text().splitlines():
        if not line.strip().startswith("#") and secret.search(line.split(":")[0]):
            assert "${" in line, line  # only ever from the environment, with a local-only default
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".env", ".git", ".venv", ".venv-airflow", "lake/*", ".dagster"} <= set(ignored)


def test_hadolint_passes_every_dockerfile_with_no_rule_ignored():
    assert len(DOCKERFILES) == 2
    for dockerfile in DOCKERFILES:
        assert "hadolint ignore" not in dockerfile.read_text()
        done = subprocess.run(
            [str(BIN / "hadolint"), "--failure-threshold", "info", str(dockerfile)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    # The linter can fail: an unpinned apt package and a root final user are reported.
    bad = REPO / ".test-artifacts" / "bad.Dockerfile"
    bad.parent.mkdir(exist_ok=True)
    bad.write_text("FROM python:3.11.7-slim\nRUN apt-get update && apt-get install -y curl\n")
    done = subprocess.run([str(BIN / "hadolint"), str(bad)], capture_output=True, text=True)
    assert done.returncode != 0 and "DL3008" in done.stdout


def _copies(dockerfile: Path) -> list[tuple[str, list[str], str]]:
    """(stage, sources, destination) of every COPY from the build context."""
    stage, found = "", []
    text = dockerfile.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "FROM":
            stage = words[-1]
        if words[0] == "COPY" and not any(w.startswith("--from") for w in words):
            paths = [w for w in words[1:] if not w.startswith("--")]
            found.append((stage, paths[:-1], paths[-1]))
    return found


def test_every_path_a_dockerfile_copies_exists_and_is_not_ignored():
    ignored = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    for dockerfile in DOCKERFILES:
        copies = _copies(dockerfile)
        assert copies, dockerfile
        for _, sources, _ in copies:
            for source in sources:
                assert (REPO / source).exists(), (dockerfile.name, source)
                assert not any(Path(source).match(p.rstrip("/*")) for p in ignored if not p.startswith("!"))


def _image_files(target: str) -> set[str]:
    """The files the image of ``target`` holds under /app, as repository paths."""
    files: set[str] = set()
    for dockerfile in DOCKERFILES:
        for stage, sources, destination in _copies(dockerfile):
            if stage != target or not destination.startswith(("./", "/app")):
                continue
            for source in sources:
                path = REPO / source
                inside = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
                dest = destination.removeprefix("./").removeprefix("/app/")
                for file in inside:
                    relative = file.relative_to(path) if path.is_dir() else Path(file.name)
                    files.add(str(Path(dest) / relative) if dest.endswith("/") or path.is_dir() else dest)
    return files


def test_every_command_and_file_a_service_starts_exists_in_its_image():
    services = config("spark")["services"]
    for name, service in services.items():
        image = service["image"].split(":")[0]
        if image not in IMAGE_VENVS:
            continue  # postgres: an upstream image
        venv = IMAGE_VENVS[image]
        held = _image_files(IMAGE_BUILDS[image][1])
        if image == "crypto-analytics/code":
            held |= _image_files("app")  # code is built FROM app
        checks = [service["healthcheck"]["test"][1:]] if "healthcheck" in service else []
        for words in (service["command"], *checks):
            program = words[0]
            assert program == "python" or (venv / "bin" / program).exists(), (name, program)
            for word in words:
                if word.startswith("/app/"):
                    assert word.removeprefix("/app/") in held, (name, word)
                    assert (REPO / word.removeprefix("/app/")).is_file(), (name, word)
        for value in (service.get("environment") or {}).values():
            if str(value).startswith("/app/"):
                assert (REPO / str(value).removeprefix("/app/")).exists(), (name, value)
        if "--module-name" in service["command"]:
            module = service["command"][service["command"].index("--module-name") + 1]
            done = subprocess.run(
                [
                    str(venv / "bin" / "python"),
                    "-c",
                    f"import importlib.util as u; assert u.find_spec({module!r})",
                ]
            )
            assert done.returncode == 0, module
    # The volumes the file mounts from the repository.
    for service in services.values():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert Path(volume["source"]).is_file(), volume
    # Every build target exists in its Dockerfile.
    for service in services.values():
        build = service.get("build")
        if build:
            text = (REPO / build["dockerfile"]).read_text()
            assert re.search(rf"^FROM .* AS {build['target']}$", text, re.M), build


def test_the_constraints_pin_the_packages_the_images_install():
    for constraints, venv in (("constraints.txt", ".venv"), ("airflow-constraints.txt", ".venv-airflow")):
        pins = dict(
            line.split("==", 1)
            for line in (REPO / "docker" / constraints).read_text().splitlines()
            if "==" in line
        )
        for package in (
            ["dagster", "pyspark", "dagster-postgres"]
            if venv == ".venv"
            else ["apache-airflow", "psycopg2-binary"]
        ):
            assert package in pins, (constraints, package)
