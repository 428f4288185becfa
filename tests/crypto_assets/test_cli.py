import subprocess
import sys
from datetime import date

import pytest

from crypto_assets import cli
from crypto_assets.cli import CliError, format_table, partition_keys

TODAY = date(2026, 11, 24)


def test_default_window_is_the_last_complete_days():
    assert partition_keys(None, None, 2, TODAY) == ["2026-11-22", "2026-11-23"]
    assert partition_keys(date(2026, 11, 1), date(2026, 11, 3), 2, TODAY) == [
        "2026-11-01",
        "2026-11-02",
        "2026-11-03",
    ]
    assert partition_keys(date(2026, 11, 1), None, 2, TODAY) == ["2026-11-01", "2026-11-02"]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (date(2026, 11, 5), date(2026, 11, 1), "is after"),
        (None, date(2026, 11, 24), "not a complete UTC day"),
        (date(2015, 1, 1), date(2015, 1, 2), "before the first partition"),
    ],
)
def test_wrong_partition_ranges_are_refused(start, end, message):
    with pytest.raises(CliError, match=message):
        partition_keys(start, end, 2, TODAY)


def test_format_table():
    text = format_table(["TOKEN", "N"], [("BTC", 24), ("PEPE", None)])
    assert text.splitlines()[0].split() == ["TOKEN", "|", "N"]
    assert "NULL" in text and text.endswith("(2 rows)")


def test_cli_reports_bad_input_with_exit_code_2():
    bad_date = subprocess.run(
        [sys.executable, "-m", "crypto_assets.cli", "run", "--start", "2026-13-01"],
        capture_output=True,
        text=True,
    )
    assert bad_date.returncode == 2 and "not a date in YYYY-MM-DD form" in bad_date.stderr
    future = subprocess.run(
        [sys.executable, "-m", "crypto_assets.cli", "run", "--start", "2099-01-01", "--end", "2099-01-02"],
        capture_output=True,
        text=True,
    )
    assert future.returncode == 2 and "not a complete UTC day" in future.stderr


def test_dev_finds_the_repositorys_workspace_from_any_folder(tmp_path, monkeypatch):
    from crypto_assets.cli import resolve_workspace

    monkeypatch.chdir(tmp_path)
    found = resolve_workspace("workspace.yaml")
    assert (
        found.is_absolute()
        and found.name == "workspace.yaml"
        and found.parent.joinpath("crypto_assets").is_dir()
    )
    (tmp_path / "mine.yaml").write_text("load_from: []\n")
    assert resolve_workspace("mine.yaml") == tmp_path / "mine.yaml"
    with pytest.raises(CliError, match=r"'missing\.yaml' not found"):
        resolve_workspace("missing.yaml")


PREVIOUS_INSTANCE_CONFIG = """\
# The local Dagster instance (DAGSTER_HOME, .dagster/ by default): `crypto-analytics` copies this
# file there when DAGSTER_HOME has none. Storage is Dagster's default, SQLite under DAGSTER_HOME.
telemetry:
  enabled: false

concurrency:
  runs:
    # Runs launched from the UI, the schedules, sensors and backfills wait in the daemon's queue:
    # each run starts a Spark session on local[*], and two at once only fight over the cores.
    max_concurrent_runs: 1
"""


def test_the_local_instance_queues_runs_one_at_a_time(tmp_path, monkeypatch):
    from dagster import DagsterInstance

    from crypto_assets.cli import INSTANCE_CONFIG, prepare_dagster_home
    from resources.settings import Settings

    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # what older versions wrote
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    prepare_dagster_home(Settings.from_env())
    instance = DagsterInstance.get()
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
    assert type(instance.event_log_storage).__name__ == "PooledSqliteEventLogStorage"
    instance.dispose()
    # The previous shipped config (the queue without this event log storage) is replaced too.
    (home / "dagster.yaml").write_text(PREVIOUS_INSTANCE_CONFIG)
    prepare_dagster_home(Settings.from_env())
    assert (home / "dagster.yaml").read_text() == INSTANCE_CONFIG.read_text()
    # And the one before our loggers were captured into the event log (python_logs).
    shipped = INSTANCE_CONFIG.read_text()
    (home / "dagster.yaml").write_text(shipped[: shipped.index("\n# Warnings of our own")])
    prepare_dagster_home(Settings.from_env())
    assert (home / "dagster.yaml").read_text() == shipped
    mine = "telemetry:\n  enabled: true\n"
    (home / "dagster.yaml").write_text(mine)
    prepare_dagster_home(Settings.from_env())
    assert (home / "dagster.yaml").read_text() == mine  # a user's own config is left alone


class _Recorder:
    """A runner and a background fetch that record what ran, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def run(self, job_name: str, keys: list[str], raw_config: dict | None, assets: list[str]) -> None:
        self.events.append(("run", keys[0], raw_config is not None, *assets))

    def downstream(self, job_name: str, asset: str) -> set[str]:
        assert asset == "raw_coingecko_markets"
        return {"silver_token_markets", "gold_market_features"}

    def wait(self) -> None:
        self.events.append(("wait",))


SELECTED = ["raw_klines", "bronze_klines", "silver_token_markets", "gold_market_features"]


def test_a_deep_history_runs_what_does_not_read_coingecko_beside_its_fetch():
    recorder = _Recorder()
    last = cli.run_chunks(
        recorder,
        "market_data_job",
        [["d1", "d2"], ["d3"]],
        SELECTED,
        {"intervals": ["1h"]},
        recorder,
        overlap=True,
    )
    assert recorder.events == [
        ("run", "d1", True, "raw_klines", "bronze_klines"),
        ("run", "d3", True, "raw_klines", "bronze_klines"),
        ("wait",),
        # The readers of the markets: after the fetch, and without the raw klines' config.
        ("run", "d1", False, "silver_token_markets", "gold_market_features"),
        ("run", "d3", False, "silver_token_markets", "gold_market_features"),
    ]
    assert last == ["silver_token_markets", "gold_market_features"]


def test_without_overlap_the_fetch_is_awaited_before_one_run_per_chunk():
    recorder = _Recorder()
    cli.run_chunks(
        recorder, "market_data_job", [["d1"]], SELECTED, {"intervals": ["1h"]}, recorder, overlap=False
    )
    assert recorder.events == [("wait",), ("run", "d1", True, *SELECTED)]
    recorder.events.clear()
    cli.run_chunks(recorder, "market_data_job", [["d1"]], SELECTED, None, None, overlap=True)
    assert recorder.events == [("run", "d1", False, *SELECTED)]


def test_the_assets_downstream_of_coingecko_come_from_the_job_graph():
    from dagster import DagsterInstance

    from crypto_assets.launch import CodeLocationRunner

    runner = CodeLocationRunner(DagsterInstance.ephemeral())
    readers = runner.downstream("market_data_job", "raw_coingecko_markets")
    assert {"silver_token_markets", "gold_market_features", "ml_predictions"} <= readers
    assert not readers & {"raw_coingecko_markets", "raw_klines", "bronze_klines", "silver_bars_1h"}
    assert readers < set(runner.assets("market_data_job"))
