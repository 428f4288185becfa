"""``crypto-analytics``: run the pipeline, query the warehouse, serve the embedded services.

Heavy imports (Dagster, Spark, the Snowflake connector) happen inside the commands that need
them, so ``crypto-analytics --help`` and the servers start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from resources.settings import Settings, SettingsError

MARKET_CHOICES = ("spot", "usdm_futures", "coinm_futures")

DEFAULT_DAYS = 2
PLANNED_SUBSET_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
COINGECKO = "raw_coingecko_markets"
LAYERS = ("raw", "bronze", "silver", "gold", "ml")


def layer_of_asset(asset: str) -> str:
    """Assets are named after their layer: raw_klines, silver_features_1h, gold_correlations
    (the volatility forecast's vol_* assets are the model's, ml)."""
    prefix = asset.split("_", 1)[0]
    return "ml" if prefix == "vol" else prefix


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _say(message: str) -> None:
    print(message, flush=True)


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date in YYYY-MM-DD form") from None


def partition_keys(start: date | None, end: date | None, days: int, today: date | None = None) -> list[str]:
    """Daily partition keys from ``start`` to ``end`` inclusive; by default the last ``days`` days."""
    from crypto_assets.partitions import FIRST_DAY

    today = today or datetime.now(UTC).date()
    last_complete = today - timedelta(days=1)
    end = end or (last_complete if start is None else min(last_complete, start + timedelta(days=days - 1)))
    start = start or end - timedelta(days=days - 1)
    if start > end:
        raise CliError(f"--start {start} is after --end {end}")
    if end > last_complete:
        raise CliError(f"--end {end} is not a complete UTC day yet; the last complete day is {last_complete}")
    first = date.fromisoformat(FIRST_DAY)
    if start < first:
        raise CliError(
            f"--start {start} is before the first partition {first}"
            " (Binance's first klines, or PARTITIONS_START when it is set)"
        )
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


INSTANCE_CONFIG = Path(__file__).resolve().parent / "config" / "dagster.yaml"
# What earlier versions wrote (the first one, then SHA-256s of later ones): replaced by the
# current instance config; anything else is the user's own and is left alone.
_OLD_INSTANCE_CONFIG = "telemetry:\n  enabled: false\n"
_OLD_INSTANCE_CONFIG_SHA256 = {
    "274d07be669dd315f01cd65ec90188df5586b63f91664e103571d08a93126a88",
    "00b2091b3726d1d93eb8507077eab29346bc5b0a01c8b58431c224e49114989a",  # before python_logs
}


def _shipped_before(text: str) -> bool:
    return (
        text == _OLD_INSTANCE_CONFIG
        or hashlib.sha256(text.encode()).hexdigest() in _OLD_INSTANCE_CONFIG_SHA256
    )


def prepare_dagster_home(settings: Settings) -> None:
    """Runs launched here show up in ``make dev``'s UI: both use the same DAGSTER_HOME, whose
    dagster.yaml (config/dagster.yaml unless the user has their own) queues UI runs one at a time."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or _shipped_before(config.read_text()):
        config.write_text(INSTANCE_CONFIG.read_text())
    os.environ["DAGSTER_HOME"] = str(home)


def _step_seconds(result: Any, instance: Any) -> dict[str, float]:
    """Seconds per step from its start to its success or failure, from the run's event log (a
    model refused by its blocking gate fails its step after the whole training: that time is
    real too)."""
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            seconds[event.step_key] = event.event_specific_data.duration_ms / 1000.0
        elif event.event_type_value == "STEP_FAILURE" and event.step_key in started:
            seconds[event.step_key] = max(0.0, entry.timestamp - started[event.step_key])
    return seconds


def _intervals(value: str) -> list[str]:
    from crypto_assets.ingestion.binance import INTERVAL_MS

    intervals = [i.strip() for i in value.split(",") if i.strip()]
    unknown = [i for i in intervals if i not in INTERVAL_MS]
    if unknown or not intervals:
        raise argparse.ArgumentTypeError(
            f"{value!r}: intervals are a comma-separated list of {', '.join(INTERVAL_MS)}"
        )
    return intervals


class _Runner:
    """Executes a job over a range of days in this process, as a run of the workspace's code
    location (recorded in DAGSTER_HOME, so `make dev` shows it and can re-execute it), printing
    rows and seconds per asset and collecting failed checks."""

    def __init__(self) -> None:
        from dagster import DagsterInstance

        from crypto_assets.launch import CodeLocationRunner

        self.instance = DagsterInstance.get()
        self._location = CodeLocationRunner(self.instance)
        self.rows_per_layer: dict[str, int] = {}
        self.warnings: list[str] = []
        # Set by `run` (not with --force): what the lake and the warehouse already hold is checked,
        # not computed again.
        self.up_to_date: Any = None

    def assets(self, job_name: str) -> list[str]:
        return self._location.assets(job_name)

    def downstream(self, job_name: str, asset: str) -> set[str]:
        return self._location.downstream(job_name, asset)

    def run(
        self,
        job_name: str,
        keys: list[str],
        raw_config: dict[str, Any] | None = None,
        assets: list[str] | None = None,
        tags: dict[str, str] | None = None,
        force: bool = False,
    ) -> None:
        from dagster._core.storage.tags import (
            ASSET_PARTITION_RANGE_END_TAG,
            ASSET_PARTITION_RANGE_START_TAG,
            PARTITION_NAME_TAG,
        )

        t0 = time.monotonic()
        label = "(unpartitioned)" if not keys else keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"
        from crypto_assets.up_to_date import INPUT_RUNS

        if self.up_to_date is not None and keys and not force:
            wanted = assets or self.assets(job_name)
            intervals = (raw_config or {}).get("intervals")
            stale = self.up_to_date.stale(wanted, keys, intervals)
            if not stale:
                _say(
                    f"  {label:<22}  {job_name}: all {len(wanted)} asset(s) up to date in the lake and"
                    f" the warehouse, nothing to do (checked in {time.monotonic() - t0:.1f} s)"
                )
                return
            if len(stale) < len(wanted):
                reasons = self.up_to_date.reasons
                first = next((a for a in stale if reasons.get(a) != INPUT_RUNS), stale[0])
                _say(
                    f"  {label:<22}  {len(wanted) - len(stale)} of {len(wanted)} asset(s) up to date;"
                    f" running {len(stale)} from {first} ({reasons.get(first, '')})"
                )
            assets = stale
            if raw_config is not None and "raw_klines" not in assets:
                raw_config = None
            # The days before the first stale one need nothing: e.g. only a month's last day,
            # whose targets read the next month, materialized since.
            first = self.up_to_date.first_day
            if first is not None and first > keys[0]:
                keys = [day for day in keys if day >= first]
                label = keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"
        # One line per warning on the terminal; a failure's stack stays in the run's event log.
        run_config: dict[str, Any] = {"loggers": {"terminal": {"config": {"log_level": "WARNING"}}}}
        if raw_config is not None:
            run_config["ops"] = {"raw_klines": {"config": raw_config}}
        # A range runs as one Dagster run (the assets' backfill policy): one Spark job per layer.
        run_tags: dict[str, str] = (
            {}
            if not keys
            else {PARTITION_NAME_TAG: keys[0]}
            if len(keys) == 1
            else {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
        )
        from crypto_assets.automation import CLI_PART_ENV, CLI_PART_TAG

        if os.environ.get(CLI_PART_ENV):  # the background part of a parent `run`
            run_tags[CLI_PART_TAG] = os.environ[CLI_PART_ENV]
        from crypto_assets.publishing import PER_DAY_CHECKS_MAX_DAYS

        # Longer than a month (deep history): planned events per asset, as checks are per range.
        planned = _planned_per_asset() if len(keys) > PER_DAY_CHECKS_MAX_DAYS else contextlib.nullcontext()
        with planned:
            result = self._location.execute(job_name, run_config, {**run_tags, **(tags or {})}, assets)
        durations = _step_seconds(result, self.instance)
        # A range run records one materialization per day, each with that day's own counts.
        rows_of: dict[str, int] = {}
        tokens_of: dict[str, int] = {}
        unpartitioned: set[str] = set()
        for event in result.get_asset_materialization_events():
            metadata = event.materialization.metadata
            asset = event.materialization.asset_key.to_user_string()
            if event.materialization.partition is None:
                unpartitioned.add(asset)
            row_count, tokens = metadata.get("dagster/row_count"), metadata.get("tokens")
            rows_of[asset] = rows_of.get(asset, 0) + (int(row_count.value) if row_count is not None else 0)
            tokens_of[asset] = max(tokens_of.get(asset, 0), int(tokens.value) if tokens is not None else 0)
        for asset, rows in rows_of.items():
            layer = layer_of_asset(asset)
            self.rows_per_layer[layer] = self.rows_per_layer.get(layer, 0) + rows
            counts = (
                f"{rows:>10,} rows  {tokens_of[asset]:>3} tokens"
                if asset not in unpartitioned
                else f"{'(a model: no rows)':>22}"
            )
            _say(f"  {label:<22}  {asset:<27} {counts}  {durations.get(asset, 0.0):6.1f} s")
        # A range run records each day's results and the range's: report the range's, naming
        # the days that failed.
        failed_days: dict[tuple[str, str], list[str]] = {}
        for evaluation in result.get_asset_check_evaluations():
            if not evaluation.passed and evaluation.partition is not None and len(keys) > 1:
                name = (evaluation.asset_key.to_user_string(), evaluation.check_name)
                failed_days.setdefault(name, []).append(evaluation.partition)
        for evaluation in result.get_asset_check_evaluations():
            if evaluation.passed or (evaluation.partition is not None and len(keys) > 1):
                continue
            asset, check = evaluation.asset_key.to_user_string(), evaluation.check_name
            days = sorted(failed_days.get((asset, check), []))
            on = f" on {len(days)} day(s) {_day_list(days)}" if days else ""
            line = f"{label} {asset}.{check} FAILED ({evaluation.severity.value}){on}"
            self.warnings.append(line)
            _say(f"  ! {line}")
        if not result.success:
            raise CliError(
                f"partitions {label} failed: {failure_cause(result.all_events)}"
                f" (run id {result.run_id}; its log with the stack trace: `make dev`)"
            )
        _say(f"  {label:<22}  {job_name} done in {time.monotonic() - t0:.1f} s")


def failure_cause(events: Sequence[Any]) -> str:
    """``<step>: <Error>: <what our code said>`` for a failed run's first failure (the innermost
    cause, one line: the URL, file or value the error names), else the run failure's message."""
    from crypto_assets.terminal import error_line

    for event in events:
        if event.event_type_value == "STEP_FAILURE":
            return f"{event.step_key}: {error_line(event.event_specific_data.error)}"
    for event in events:
        if event.event_type_value == "RUN_FAILURE":
            error = getattr(event.event_specific_data, "error", None)
            return error_line(error) if error is not None else event.message or "unknown error"
    return "unknown error"


def _day_list(days: list[str]) -> str:
    return ", ".join(days) if len(days) <= 4 else f"{days[0]}, {days[1]}, ..., {days[-1]}"


def raw_partition_days(settings: Settings) -> set[str]:
    from resources.parquet_io import existing_partition_keys

    return existing_partition_keys(settings.lake_root, "raw", "raw_klines")


def plan_warm_up(settings: Settings, first_day: date) -> Any:
    """The coarse-grain history still missing before ``first_day`` (None when the lake is warm)."""
    from crypto_assets.history import warm_up_plan
    from crypto_assets.partitions import FIRST_DAY
    from resources.parquet_io import existing_partition_keys

    def have(interval: str) -> set[str]:
        return existing_partition_keys(settings.lake_root, "silver", f"silver_bars_{interval}")

    return warm_up_plan(first_day, have, earliest=date.fromisoformat(FIRST_DAY))


class _Background:
    """A ``crypto-analytics run`` of some assets in a child process, beside this one's runs.

    A child process, not a thread: Dagster captures a run's stdout per process, so two runs at
    once in one process would leave the output redirected."""

    def __init__(
        self,
        keys: list[str],
        assets: list[str],
        lake_root: Path,
        intervals: list[str],
        days_per_run: int,
        force: bool = False,
    ) -> None:
        from crypto_assets.automation import CLI_PART_ENV
        from crypto_assets.lake_lock import child_env

        command = [sys.executable, "-m", "crypto_assets.cli", "run", "--start", keys[0], "--end", keys[-1]]
        command += ["--no-services", "--no-warm-up", "--assets", ",".join(assets)]
        # The parent's runs, cut the same way: CoinGecko makes one call per token and run, so a
        # child left to its own defaults (a month per run with 1m) would make 60 x 37 calls for
        # five years instead of 37.
        command += ["--intervals", ",".join(intervals), "--days-per-run", str(days_per_run)]
        command += ["--force"] if force else []
        self._assets = assets
        # Part of this run: it writes under this process's lake lock.
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**child_env(lake_root), CLI_PART_ENV: "coingecko"},
        )

    def wait(self) -> None:
        output, _ = self._process.communicate()
        if self._process.returncode != 0:
            lines = [line for line in output.splitlines() if line.strip()]
            said = next((line for line in reversed(lines) if line.startswith("crypto-analytics: ")), None)
            last = (said or (lines[-1] if lines else "no output")).removeprefix("crypto-analytics: ")
            raise CliError(
                f"the background run of {', '.join(self._assets)} failed (exit {self._process.returncode}): {last}"
            )
        for line in output.splitlines():
            if line.startswith("  ") and (" rows " in line or " done in " in line or "FAILED" in line):
                _say(line)


def _warm(runner: _Runner, warm_up: Any, raw_days: set[str] | None = None) -> None:
    """The warm-up's runs (``WarmUp.runs``): raw -> bronze -> the bars of the intervals wanted on
    every day, then the bars of an interval wanted on the last days only (each with one planned
    event per asset, see ``_planned_per_asset``). With ``raw_days`` (a run that fetches nothing),
    the look-back days raw already holds are refined instead (``WarmUp.refinement_runs``)."""
    from crypto_assets.automation import CLI_PART_TAG

    runs = warm_up.runs() if raw_days is None else warm_up.refinement_runs(raw_days)
    with _planned_per_asset():
        for run in runs:
            ingest = (
                ["raw_klines", "bronze_klines"] if run.intervals else ["bronze_klines"] if raw_days else []
            )
            runner.run(
                "history_job",
                run.keys,
                {"intervals": run.intervals, "interval_starts": run.starts} if run.intervals else None,
                [*ingest, *(f"silver_bars_{i}" for i in run.bars)],
                # Look-back for the range this command runs next: automation leaves these days be.
                tags={CLI_PART_TAG: "warm-up"},
            )


@contextlib.contextmanager
def _planned_per_asset() -> Iterator[None]:
    """Runs launched inside record one planned materialization per asset for their whole range
    instead of one per asset and day: 605 days x 13 assets was ~30 s before a run's first step.
    Dagster's trade-off: a failed run is still a failed run, but its days are not each marked
    failed (they stay unmaterialized)."""
    previous = os.environ.get(PLANNED_SUBSET_ENV)
    os.environ[PLANNED_SUBSET_ENV] = "true"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(PLANNED_SUBSET_ENV, None)
        else:
            os.environ[PLANNED_SUBSET_ENV] = previous


def cmd_run(args: argparse.Namespace) -> int:
    if args.source:
        os.environ["KLINES_SOURCE"] = args.source
    settings = Settings.from_env()
    keys = partition_keys(args.start, args.end, args.days)
    with _lake_writer(settings, "crypto-analytics run", (keys[0], keys[-1]), wait=args.wait):
        return _run(args, settings, keys)


@contextlib.contextmanager
def _lake_writer(
    settings: Settings, command: str, days: tuple[str, str] | None = None, wait: bool = False
) -> Iterator[None]:
    """One writer per lake (crypto_assets/lake_lock.py): a second one waits or gets a clear error."""
    from crypto_assets.lake_lock import LakeBusy, lake_writer

    try:
        with lake_writer(settings.lake_root, command, days, wait=wait, say=_say):
            yield
    except LakeBusy as exc:
        raise CliError(str(exc)) from None


def _run(args: argparse.Namespace, settings: Settings, keys: list[str]) -> int:
    prepare_dagster_home(settings)
    started = time.monotonic()
    from crypto_assets.automation import CLI_PART_ENV
    from resources.spark import start_session_in_background

    # Every run of this command executes here, in one Spark session: start it now, beside the
    # services and the first fetch, instead of inside the first asset. Not in the background
    # part of a parent run (CoinGecko's rate-limited fetch): its JVM would start beside the
    # warm-up's Spark work on the same cores, long before it needs one.
    if not os.environ.get(CLI_PART_ENV):
        start_session_in_background(settings)
    from crypto_assets.pipeline_config import load_pipeline_config

    intervals = args.intervals or list(load_pipeline_config().ingest_intervals)
    _say(
        f"crypto-analytics run: {len(keys)} daily partition(s) {keys[0]} .. {keys[-1]}, environment"
        f" {settings.environment}" + ("" if args.no_ingest else f", klines {','.join(intervals)}")
    )
    warm_up = None if args.no_warm_up else plan_warm_up(settings, date.fromisoformat(keys[0]))
    # Refining what the lake holds (imported files): the look-back days raw already has are
    # refined first, so the range's indicators start warm; nothing is fetched.
    raw_days = raw_partition_days(settings) if args.no_ingest else None
    if warm_up is not None and raw_days is not None and not warm_up.refinement_runs(raw_days):
        warm_up = None
    if warm_up is not None and raw_days is not None:
        _say(f"  warm-up: refining the look-back days raw already holds before {keys[0]} (nothing fetched)")
    elif warm_up is not None:
        fetched = ", ".join(f"{i}: {len(d)} day(s) from {d[0]}" for i, d in sorted(warm_up.missing.items()))
        _say(
            f"  warm-up: {warm_up.days} day(s) of history before {keys[0]} at the exchange's grain ({fetched})"
        )
    from crypto_assets.services import local_services

    job_name = "refinement_job" if args.no_ingest else "market_data_job"
    # Refinement runs a whole range as one Spark job per asset (its backfill policy); ingestion
    # of minutes goes a month at a time (CoinGecko keeps hourly points up to 90 days, and a
    # month of 1m klines is ~1.4 M rows); coarse klines go as one run over the whole range.
    days_per_run = args.days_per_run or (len(keys) if args.no_ingest or "1m" not in intervals else 31)
    with local_services(
        settings, emulator=not (args.no_services or args.no_ingest), warehouse=not args.no_services, say=_say
    ):
        runner = _Runner()
        if not args.force:
            runner.up_to_date = _up_to_date_check(runner, settings)
        chunks = _chunks(keys, days_per_run)
        selected = args.assets or runner.assets(job_name)
        unknown = sorted(set(selected) - set(runner.assets(job_name)))
        if unknown:
            raise CliError(f"--assets: {unknown} are not assets of {job_name}: {runner.assets(job_name)}")
        raw_config = None if args.no_ingest or "raw_klines" not in selected else {"intervals": intervals}
        markets = None
        # A coarse-grain run with no warm-up (a deep history) runs the klines' own layers beside
        # the fetch. A run of a few days with 1m keeps CoinGecko inline: its child's JVM beside
        # the run's own Spark work took the tree's peak from under 4 GiB to 4.25 GiB.
        overlap = warm_up is None and "1m" not in intervals
        # (Not in the background part itself: it runs CoinGecko alone.)
        wanted = warm_up is not None or overlap
        if not args.no_ingest and COINGECKO in selected and len(selected) > 1 and wanted:
            # CoinGecko's free plan allows 30 calls a minute (37 tokens: ~75 s of waiting): fetch
            # the range's USD markets in a child process, beside Spark work that does not read
            # them: the warm-up, or the klines' own layers.
            markets = _Background(keys, [COINGECKO], settings.lake_root, intervals, days_per_run, args.force)
            selected = [a for a in selected if a != COINGECKO]
        if warm_up is not None:
            _warm(runner, warm_up, raw_days)
        selected = run_chunks(runner, job_name, chunks, selected, raw_config, markets, overlap=overlap)
        if raw_days is not None and not args.no_warm_up:
            _fill_targets(runner, keys, raw_days, selected)
        if "ml_predictions" in selected and not args.no_train:
            _train_if_nothing_serves(runner, settings, keys)

    elapsed = time.monotonic() - started
    _say("")
    _say(f"Done: {len(keys)} partition(s) in {elapsed:.1f} s")
    for layer in LAYERS:
        if layer in runner.rows_per_layer:
            _say(f"  {layer:<7} {runner.rows_per_layer[layer]:>10,} rows")
    if runner.warnings:
        _say(f"  {len(runner.warnings)} check warning(s) above")
    _say("Next:")
    _say(f"  lake:       {settings.lake_root}/<layer>/<asset>/dt=YYYY-MM-DD/")
    _say(
        '  warehouse:  crypto-analytics sql "select token, count(rsi_14) from gold_market_features group by 1 order by 1"'
    )
    _say("  lineage:    make dev, then open http://127.0.0.1:3000")
    return 0


def _up_to_date_check(runner: _Runner, settings: Settings) -> Any:
    """The check that lets a run skip what the lake and the warehouse already hold."""
    import snowflake.connector

    from crypto_assets.definitions import defs
    from crypto_assets.up_to_date import UpToDate, asset_shapes, snowflake_rows

    return UpToDate(
        runner.instance,
        asset_shapes(defs.resolve_asset_graph()),
        settings.lake_root,
        snowflake_rows(lambda: snowflake.connector.connect(**settings.connector_args())),
    )


def _fill_targets(runner: Any, keys: list[str], raw_days: set[str], selected: list[str]) -> None:
    """A run that fetches nothing (``--no-ingest``): the days just after the range that raw
    already holds (imported) are refined through silver, then the gold market tables of the
    range's last days again, so their forward targets are known instead of null. Gold of the
    days after the range is not written: they are not part of the range."""
    from crypto_assets.jobs import TARGET_LOOKAHEAD_DAYS
    from crypto_assets.pipeline_config import load_pipeline_config

    gold = [
        a for a in ("gold_market_features", "gold_daily_market_features", "ml_performance") if a in selected
    ]
    if not gold:
        return
    last = date.fromisoformat(keys[-1])
    ahead: list[str] = []
    for offset in range(1, TARGET_LOOKAHEAD_DAYS + 1):
        day = (last + timedelta(days=offset)).isoformat()
        if day not in raw_days:
            break
        ahead.append(day)
    if not ahead:
        return
    config = load_pipeline_config()
    silver = [
        "bronze_klines",
        *(f"silver_bars_{i}" for i in config.bar_intervals),
        *(f"silver_features_{i}" for i in config.features),
    ]
    _say(
        f"  look-ahead: raw holds {ahead[0]}..{ahead[-1]}: refining them through silver, then the last"
        " days' gold again, so their forward targets are known"
    )
    with _planned_per_asset():
        runner.run("refinement_job", ahead, None, silver)
        runner.run("targets_refresh_job", keys[-TARGET_LOOKAHEAD_DAYS:], None, gold)


def run_chunks(
    runner: Any,
    job_name: str,
    chunks: list[list[str]],
    selected: list[str],
    raw_config: dict[str, Any] | None,
    markets: Any,
    overlap: bool,
) -> list[str]:
    """Run ``selected`` over each chunk of days; ``markets`` (a background CoinGecko fetch, or
    None) must be done before the assets that read it. With ``overlap``, the assets that do not
    read it run first, beside the fetch (two runs per chunk instead of one, ~2 s each: worth it
    where the fetch is long, as in a deep history). Returns the assets of the last runs."""

    everything = list(selected)

    def run(assets: list[str]) -> None:
        for chunk in chunks if assets else []:
            runner.run(job_name, chunk, raw_config if "raw_klines" in assets else None, assets)

    if markets is not None and overlap:
        reads_markets = runner.downstream(job_name, COINGECKO)
        run([a for a in selected if a not in reads_markets])
        selected = [a for a in selected if a in reads_markets]
    if markets is not None:
        markets.wait()
    run(selected)
    if len(chunks) > 1 and getattr(runner, "up_to_date", None) is not None:
        # A chunk's last days read the next chunk's first (targets look ahead), materialized after
        # them: those days, found out of date now, run again, so no month ends with null targets.
        run(everything)
    return selected


def _train_if_nothing_serves(runner: _Runner, settings: Settings, keys: list[str]) -> None:
    """While a model (direction or volatility) serves nothing yet, train its candidate on what
    the warehouse and the lake hold now; each that passes its gate predicts the range again. A
    candidate that loses (or too little history) leaves the baseline's predictions in place:
    that is a result, not an error, said in one line with the gate's reasons."""
    from crypto_assets.ml.registry import ModelRegistry
    from crypto_assets.ml.vol_assets import vol_registry

    models = {
        "direction": (ModelRegistry(settings.lake_root / "models"), ["ml_candidate_model", "ml_serving_model"],
                      ["ml_predictions", "ml_performance"]),
        "volatility": (vol_registry(settings.lake_root), ["vol_candidate_model", "vol_serving_model"],
                       ["vol_forecasts"]),
    }  # fmt: skip
    missing = {name: spec for name, spec in models.items() if spec[0].serving() is None}
    if not missing:
        return
    assets = [a for _, train, _ in missing.values() for a in train]
    _say(f"  no {' or '.join(missing)} model serves yet: training (ml_training_job: {', '.join(assets)})")
    before = {name: set(spec[0].versions()) for name, spec in missing.items()}
    try:
        runner.run("ml_training_job", [], None, assets)
    except CliError as exc:
        # A blocking gate that refused fails its run: that verdict is said below. Anything else
        # is an error to show.
        if "blocking asset check" not in str(exc):
            _say(f"  ! the training run failed: {exc}")
    for name, (registry, _, predict) in missing.items():
        serving = registry.serving()
        new = sorted(set(registry.versions()) - before[name])
        if serving is None:
            card = registry.card(new[-1]) if new else None
            reasons = "; ".join(card["gate"]["reasons"]) if card else "not trained (see above)"
            then = (
                f"predicting the range with the best baseline ({card['best_baseline']}) as the candidate fitted it"
                if card
                else "the predictions stay with the best baseline"
            )
            # Predicted again even so: the training materialized the serving asset, which the
            # predictions read, and a later `run` would otherwise find them out of date.
            _say(f"  {name} model not promoted: {reasons}; {then}")
        else:
            _say(f"  {name} model {serving['version']} now serves: predicting the range with it")
        for chunk in _chunks(keys, len(keys)):
            # Forced: a refused candidate changes no materialization upstream, yet its fitted
            # baselines are what the predictions now come from.
            runner.run("ml_prediction_job", chunk, None, predict, force=True)


def _chunks(keys: list[str], size: int) -> list[list[str]]:
    return [keys[i : i + size] for i in range(0, len(keys), max(1, size))]


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[("NULL" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    line = "+".join("-" * (w + 2) for w in widths)
    out = [" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)), line]
    out += [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def cmd_sql(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    from crypto_assets.services import local_services

    with local_services(settings, emulator=False, say=_err):
        import snowflake.connector
        from snowflake.connector.errors import Error as SnowflakeError

        try:
            with snowflake.connector.connect(**settings.connector_args()) as connection:
                cursor = connection.cursor()
                cursor.execute(args.query)
                columns = [d[0] for d in cursor.description or []]
                rows = cursor.fetchmany(args.limit) if columns else []
        except SnowflakeError as exc:
            raise CliError(f"query failed: {exc.msg if hasattr(exc, 'msg') else exc}") from None
    _say(format_table(columns, rows) if columns else "OK")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Validate kline files, then add them to raw_klines' daily partitions (recorded in Dagster)."""
    settings = Settings.from_env()
    prepare_dagster_home(settings)
    from crypto_assets.raw.file_import import ImportError_, find_files, import_files

    try:
        files = find_files(Path(args.path))
        if not files:
            raise CliError(f"{args.path}: no .csv, .csv.gz or .parquet files")
        writer = _lake_writer(settings, "crypto-analytics import", wait=args.wait)
        with contextlib.nullcontext() if args.dry_run else writer:
            report = import_files(
                files,
                settings,
                symbol=args.symbol,
                venue=args.venue,
                market=args.market,
                dry_run=args.dry_run,
                say=_say,
            )
    except ImportError_ as exc:
        raise CliError(str(exc)) from None
    verb = "Would import" if args.dry_run else "Imported"
    _say(
        f"{verb} {report['rows']:,} rows from {len(files)} file(s) into {report['partitions']} raw_klines"
        f" partition(s) ({report['first_day']} .. {report['last_day']}): {report['replaced']:,} earlier rows"
        f" of the same file(s) replaced, {report['shadowed']:,} slots shared with other sources (kept),"
        f" nothing else touched; {report['seconds']:.1f} s"
    )
    _say(
        f"{'After importing, refine' if args.dry_run else 'Refine'} them with: crypto-analytics run"
        f" --start {report['first_day']} --end {report['last_day']} --no-ingest"
    )
    return 0


def cmd_lake_remove(args: argparse.Namespace) -> int:
    """Undo imports: remove every raw row of the given sources."""
    settings = Settings.from_env()
    prepare_dagster_home(settings)
    from crypto_assets.raw.file_import import ImportError_, remove_source

    sources = [s if ":" in s else f"file:{s}" for s in args.source]
    try:
        with (
            contextlib.nullcontext()
            if args.dry_run
            else _lake_writer(settings, "crypto-analytics lake remove", wait=args.wait)
        ):
            report = remove_source(
                sources,
                settings,
                venue=args.venue,
                market=args.market,
                imported_at=args.imported_at,
                every_import=args.all,
                dry_run=args.dry_run,
                say=_say,
            )
    except ImportError_ as exc:
        raise CliError(str(exc)) from None
    verb = "Would remove" if args.dry_run else "Removed"
    _say(
        f"{verb} {report['rows']:,} rows of {', '.join(sources)} from {report['partitions']} raw_klines"
        f" partition(s) ({report['first_day']} .. {report['last_day']}); other sources untouched"
    )
    if not args.dry_run:
        _say(
            f"Refine the days with: crypto-analytics run --start {report['first_day']}"
            f" --end {report['last_day']} --no-ingest"
        )
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    """Write the gold tables' data dictionary (docs/data-dictionary.md)."""
    from crypto_assets.gold.assets import gold_dictionary

    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(gold_dictionary(), encoding="utf-8")
    _say(f"wrote {path}")
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    """Binance's live streams (closed 1m klines and trades) into ``<lake>/stream/``, gaps repaired
    from REST, until Ctrl-C / SIGTERM or ``--duration``."""
    import asyncio
    import fcntl

    from crypto_assets.services import local_services
    from crypto_assets.streaming.stream import Streamer, StreamSettings
    from crypto_assets.universe import load_universe

    settings = Settings.from_env()
    now = datetime.now(UTC)
    listed = sorted(load_universe().active_pairs(now - timedelta(days=1), now))
    pairs = [p.strip().upper() for p in args.pairs.split(",")] if args.pairs else listed
    unknown = sorted(set(pairs) - set(listed))
    if unknown:
        raise CliError(f"--pairs: {unknown} are not listed Binance spot pairs of the universe now")
    folder = settings.lake_root / "stream"
    folder.mkdir(parents=True, exist_ok=True)
    lock = (folder / ".writer.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise CliError(f"another `crypto-analytics stream` writes {folder}: one stream per lake") from None
    config = StreamSettings(
        ws_url=settings.binance_ws_url,
        rest_url=settings.binance_rest_url,
        lake_root=settings.lake_root,
        pairs=tuple(pairs),
        flush_seconds=args.flush_seconds,
        silence_seconds=args.silence_seconds,
        max_connection_seconds=args.max_connection_seconds,
        heartbeat_path=folder / ".heartbeat.json",
    )

    async def stream() -> Any:
        streamer = Streamer(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.duration:
            loop.call_later(args.duration, stop.set)
        return await streamer.run(stop, on_status=lambda r: _say(f"  stream: {r.line()}"))

    with local_services(settings, warehouse=False, say=_say):
        _say(
            f"crypto-analytics stream: {len(pairs)} pair(s), closed 1m klines and trades from"
            f" {settings.binance_ws_url} into {folder} (Ctrl-C to stop)"
        )
        try:
            report = asyncio.run(stream())
        except (OSError, RuntimeError, ValueError) as exc:  # a full disk, a refused stream: one line
            raise CliError(f"the stream stopped: {type(exc).__name__}: {exc}") from exc
    _say(f"Stopped: {report.line()}")
    for example in report.malformed_examples:
        _say(f"  malformed frame: {example}")
    return 0


def cmd_emulator(args: argparse.Namespace) -> int:
    from crypto_assets.emulator.app import EmulatorConfig, accelerated_clock
    from crypto_assets.emulator.server import serve

    config = EmulatorConfig(
        seed=args.seed,
        weight_limit=args.weight_limit,
        weight_window_seconds=args.weight_window_seconds,
        coingecko_calls_per_minute=args.coingecko_calls_per_minute,
        archive_lag_days=args.archive_lag_days,
        **({"archive_cache": Path(args.archive_cache)} if args.archive_cache else {}),
        latency_ms=args.latency_ms,
        clock=accelerated_clock(args.clock_speed),
        connection_lifetime_seconds=args.connection_lifetime,
        **(
            {"kline_push_seconds": args.push_seconds, "trade_push_seconds": args.push_seconds}
            if args.push_seconds
            else {}
        ),
    )
    _err(
        f"exchange emulator on http://{args.host}:{args.port}: Binance spot REST + ws://{args.host}:{args.port}/ws,"
        " bulk archive under /data/spot, CoinGecko under /coingecko/api/v3"
    )
    serve(host=args.host, port=args.port, config=config)
    return 0


def cmd_warehouse(args: argparse.Namespace) -> int:
    from resources.embedded_warehouse import serve

    settings = Settings.from_env()
    data_dir = Path(args.data_dir) if args.data_dir else settings.warehouse_data_dir
    _err(f"embedded warehouse (fakesnow) on http://{args.host}:{args.port}, data in {data_dir}")
    serve(data_dir, host=args.host, port=args.port)
    return 0


def resolve_workspace(given: str) -> Path:
    """The workspace file, absolute: as given, or the repository's own when the default name is
    not in the current folder (so `crypto-analytics dev` works from anywhere)."""
    path = Path(given).expanduser()
    if path.is_file():
        return path.resolve()
    bundled = Path(__file__).resolve().parents[1] / "workspace.yaml"
    if given == DEFAULT_WORKSPACE and bundled.is_file():
        return bundled
    raise CliError(f"workspace file {given!r} not found (from {Path.cwd()})")


def cmd_dev(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    workspace = resolve_workspace(args.workspace)
    prepare_dagster_home(settings)
    from crypto_assets.services import local_services

    with local_services(settings, say=_say):
        command = [
            sys.executable,
            "-m",
            "dagster",
            "dev",
            "-w",
            str(workspace),
            "-h",
            args.host,
            "-p",
            str(args.port),
        ]
        _say(f"Dagster UI on http://{args.host}:{args.port} (Ctrl-C to stop)")
        if not args.stream:
            return _serve(command)
        # The live stream beside it, in its own process group: live_slice_sensor turns what it
        # lands into runs of the live slice; both stop together.
        streamer = subprocess.Popen(
            [sys.executable, "-m", "crypto_assets.cli", "stream"], start_new_session=True
        )
        try:
            return _serve(command)
        finally:
            _stop_group(streamer)


def _stop_group(process: subprocess.Popen, timeout: float = 30) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def cmd_dashboard(args: argparse.Namespace) -> int:
    """The Streamlit dashboard on the configured warehouse (the embedded one is started if needed)."""
    settings = Settings.from_env()
    from crypto_assets.services import local_services

    app = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
    if not app.is_file():
        raise CliError(f"the dashboard is not installed beside the package ({app} is missing)")
    with local_services(settings, emulator=False, say=_say):
        command = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(app),
            "--server.address",
            args.host,
            "--server.port",
            str(args.port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            # A dashboard for readers: no Deploy button or developer menu in the header.
            "--client.toolbarMode",
            "minimal",
        ]
        _say(f"Dashboard on http://{args.host}:{args.port} (Ctrl-C to stop)")
        return _serve(command)


def _serve(command: list[str]) -> int:
    """Run a server in the foreground until it exits or we are stopped; then stop its whole group."""
    # Own session: servers ignore SIGINT when started in the background from a script.
    process = subprocess.Popen(command, start_new_session=True)
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop_group(process)


DEFAULT_WORKSPACE = "workspace.yaml"


WAIT_HELP = "when another run, import or removal is writing the lake, queue behind it instead of stopping"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crypto-analytics", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="materialize a range of daily partitions through every layer")
    run.add_argument("--start", type=_parse_day, help="first day (YYYY-MM-DD, UTC)")
    run.add_argument("--end", type=_parse_day, help="last day, inclusive (default: yesterday)")
    run.add_argument("--wait", action="store_true", help=WAIT_HELP)
    run.add_argument(
        "--days",
        type=int,
        default=DEFAULT_DAYS,
        help=f"window length without --start (default {DEFAULT_DAYS})",
    )
    run.add_argument(
        "--no-services", action="store_true", help="do not start the emulator / embedded warehouse"
    )
    run.add_argument(
        "--days-per-run",
        type=int,
        help="days materialized together in one run (default: 31; the whole range with --no-ingest)",
    )
    run.add_argument(
        "--no-ingest",
        action="store_true",
        help="refine the raw data already in the lake (e.g. imported files): bronze -> silver -> gold only",
    )
    run.add_argument(
        "--source", choices=("archive", "rest"), help="klines source (default: KLINES_SOURCE, archive)"
    )
    run.add_argument(
        "--intervals",
        type=_intervals,
        help="kline intervals fetched for the range, e.g. 1h,1d for years of history at coarse grain"
        " (default: ingestion.intervals of pipeline.yaml, 1m,1h,1d)",
    )
    run.add_argument(
        "--assets",
        type=lambda v: [a.strip() for a in v.split(",") if a.strip()],
        help="materialize only these assets of the job (comma-separated), e.g. raw_coingecko_markets",
    )
    run.add_argument(
        "--no-warm-up",
        action="store_true",
        help="do not fetch the features' look-back history (ingestion.history) before the range",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="materialize every asset of every day again, even those the lake and the warehouse already"
        " hold up to date (default: they are checked and skipped)",
    )
    run.add_argument(
        "--no-train",
        action="store_true",
        help="do not train a model when none serves yet (predictions then come from the best baseline)",
    )
    run.set_defaults(func=cmd_run)

    importer = sub.add_parser(
        "import",
        help="validate kline files (archive CSVs, OHLCV CSV/Parquet), then add them to raw (nothing overwritten)",
    )
    importer.add_argument("path", help="a file or a folder (searched recursively)")
    importer.add_argument("--symbol", help="the pair, when neither the file name nor a column gives it")
    importer.add_argument(
        "--venue", default="binance", help="where the klines traded: binance (default), binance_us"
    )
    importer.add_argument(
        "--market",
        choices=MARKET_CHOICES,
        help="spot (default), usdm_futures or coinm_futures; the archive folders (data/futures/um/...) say it too",
    )
    importer.add_argument(
        "--dry-run", action="store_true", help="validate and show what would change, write nothing"
    )
    importer.add_argument("--wait", action="store_true", help=WAIT_HELP)
    importer.set_defaults(func=cmd_import)

    lake = sub.add_parser("lake", help="manage the lake")
    lake_sub = lake.add_subparsers(dest="lake_command", required=True)
    remove = lake_sub.add_parser("remove", help="undo imports: remove every raw row of a source")
    remove.add_argument(
        "--source", action="append", required=True, help="file:<file name> (or the file name); repeatable"
    )
    remove.add_argument("--venue", help="only the import(s) of this venue (e.g. binance_us)")
    remove.add_argument("--market", choices=MARKET_CHOICES, help="only the import(s) of this market")
    remove.add_argument(
        "--imported-at", help="only the import made at this UTC time (a prefix, as listed: 2026-12-06 03:12)"
    )
    remove.add_argument("--all", action="store_true", help="remove every import that matches, not just one")
    remove.add_argument("--dry-run", action="store_true", help="show what would be removed")
    remove.add_argument("--wait", action="store_true", help=WAIT_HELP)
    remove.set_defaults(func=cmd_lake_remove)

    sql = sub.add_parser("sql", help="run a query on the configured warehouse and print the result")
    sql.add_argument("query")
    sql.add_argument("--limit", type=int, default=1000, help="rows to print at most (default 1000)")
    sql.set_defaults(func=cmd_sql)

    docs = sub.add_parser("docs", help="write the gold tables' data dictionary")
    docs.add_argument("--output", default="docs/data-dictionary.md")
    docs.set_defaults(func=cmd_docs)

    stream = sub.add_parser(
        "stream", help="stream live closed 1m klines and trades into the lake (gaps repaired from REST)"
    )
    stream.add_argument(
        "--pairs", help="comma-separated pairs (default: every listed spot pair of the universe)"
    )
    stream.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    stream.add_argument(
        "--flush-seconds", type=float, default=5.0, help="write buffered rows at least this often"
    )
    stream.add_argument(
        "--silence-seconds", type=float, default=30.0, help="reconnect after this long without a frame"
    )
    stream.add_argument(
        "--max-connection-seconds",
        type=float,
        help="roll each connection over after this long (default: 15 minutes before Binance's 24 h cut)",
    )
    stream.set_defaults(func=cmd_stream)

    emulator = sub.add_parser("emulator", help="serve the local exchange (Binance spot protocol)")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8765)
    emulator.add_argument("--seed", type=int, default=20231)
    emulator.add_argument("--weight-limit", type=int, default=6000, help="request weight per window per IP")
    emulator.add_argument(
        "--weight-window-seconds", type=float, default=60.0, help="weight window (Binance: 60)"
    )
    emulator.add_argument(
        "--coingecko-calls-per-minute", type=int, default=30, help="CoinGecko free plan: 30"
    )
    emulator.add_argument(
        "--archive-lag-days", type=int, default=1, help="days before an archive file appears"
    )
    emulator.add_argument(
        "--archive-cache",
        help="keep built archive files in this folder (default: EMULATOR_ARCHIVE_CACHE; none: in memory)",
    )
    emulator.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every HTTP answer")
    emulator.add_argument(
        "--clock-speed",
        type=float,
        default=1.0,
        help="the exchange's clock runs this many times faster from now on (tests stream minutes in seconds)",
    )
    emulator.add_argument(
        "--connection-lifetime",
        type=float,
        default=86_400.0,
        help="seconds after which the server closes a stream connection (Binance: 24 h; tests shorten it)",
    )
    emulator.add_argument(
        "--push-seconds",
        type=float,
        default=None,
        help="seconds between stream pushes (default 0.5 trades, 2 klines)",
    )
    emulator.set_defaults(func=cmd_emulator)

    warehouse = sub.add_parser("warehouse", help="serve the embedded Snowflake-compatible warehouse")
    warehouse.add_argument("--host", default="127.0.0.1")
    warehouse.add_argument("--port", type=int, default=8766)
    warehouse.add_argument("--data-dir", help="where the DuckDB files live (default: WAREHOUSE_DATA_DIR)")
    warehouse.set_defaults(func=cmd_warehouse)

    dev = sub.add_parser("dev", help="Dagster UI + daemon with the embedded services")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--workspace", default=DEFAULT_WORKSPACE)
    dev.add_argument(
        "--stream",
        action="store_true",
        help="also run `crypto-analytics stream`: live minutes reach GOLD_LIVE_MARKET through live_slice_sensor",
    )
    dev.set_defaults(func=cmd_dev)

    dashboard = sub.add_parser("dashboard", help="the Streamlit dashboard on the configured warehouse")
    dashboard.add_argument("--host", default="127.0.0.1")
    dashboard.add_argument("--port", type=int, default=8501)
    dashboard.set_defaults(func=cmd_dashboard)
    return parser


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # SystemExit unwinds through the `finally` blocks that stop the services we started.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return int(args.func(args) or 0)
    except (CliError, SettingsError) as exc:
        _err(f"crypto-analytics: {exc}")
        return 2
    except Exception as exc:
        from crypto_assets.services import ServiceError

        if isinstance(exc, ServiceError):
            _err(f"crypto-analytics: {exc}")
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
