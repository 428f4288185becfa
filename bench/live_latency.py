"""Candle close -> row in GOLD_LIVE_MARKET: p50 and p95 (issue 24's target: p95 <= 2 min).

Runs what a user runs (`crypto-analytics dev --stream`: the embedded exchange and warehouse,
the Dagster UI and daemon, the stream of the whole universe) in a temporary folder, and polls
the warehouse over Snowflake's protocol every ``--poll`` seconds: a (token, minute) row's
latency is the time it was first seen minus its candle's close. Minutes that closed in the
first ``--warm-up`` minutes (the UI and the first Spark run starting) are left out, and said so.

    .venv/bin/python bench/live_latency.py [--minutes 20] [--poll 2] [--warm-up 2]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crypto_assets.services import free_port

REPO = Path(__file__).resolve().parents[1]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--poll", type=float, default=2.0)
    parser.add_argument("--warm-up", type=float, default=2.0)
    args = parser.parse_args()

    import snowflake.connector

    from resources.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="live-latency-"))
    env = {
        **os.environ,
        "LAKE_ROOT": str(folder / "lake"),
        "DAGSTER_HOME": str(folder / "dagster"),
        "WAREHOUSE_DATA_DIR": str(folder / "warehouse"),
        "EMULATOR_PORT": str(free_port()),
        "WAREHOUSE_PORT": str(free_port()),
    }
    env["BINANCE_REST_URL"] = f"http://127.0.0.1:{env['EMULATOR_PORT']}"
    env["BINANCE_WS_URL"] = f"ws://127.0.0.1:{env['EMULATOR_PORT']}"
    for name in ("LAKE_ROOT", "DAGSTER_HOME", "WAREHOUSE_PORT", "WAREHOUSE_DATA_DIR"):
        os.environ[name] = env[name]
    started = time.time()
    log = (folder / "dev.log").open("w")
    dev = subprocess.Popen(
        [sys.executable, "-m", "crypto_assets.cli", "dev", "--stream", "--port", str(free_port())],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    first_seen: dict[tuple[str, datetime], float] = {}
    tokens: set[str] = set()
    connection = None
    try:
        deadline = started + args.minutes * 60
        while time.time() < deadline:
            if dev.poll() is not None:
                raise SystemExit(f"crypto-analytics dev exited ({dev.returncode}); see {folder / 'dev.log'}")
            try:
                if connection is None:
                    connection = snowflake.connector.connect(**Settings.from_env().connector_args())
                cursor = connection.cursor()
                cursor.execute("SELECT token, bar_time FROM gold_live_market WHERE NOT is_gap")
                now = time.time()
                for token, bar_time in cursor.fetchall():
                    first_seen.setdefault((token, bar_time), now)
                    tokens.add(token)
            except Exception as exc:  # the warehouse or the table not there yet
                if "does not exist" not in str(exc) and "Connection refused" not in str(exc):
                    print(f"  poll: {type(exc).__name__}: {str(exc)[:120]}")
                connection = None
            time.sleep(args.poll)
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)

    cutoff = started + args.warm_up * 60
    latencies = []
    for (_, bar_time), seen in first_seen.items():
        close = bar_time.replace(tzinfo=UTC).timestamp() + 60
        if close >= cutoff:
            latencies.append(seen - close)
    runs = _runs(folder / "dagster")
    print(
        f"live latency over {args.minutes:.0f} min of the stream ({len(tokens)} tokens), polled every {args.poll:.0f} s:"
    )
    if not latencies:
        raise SystemExit(f"no minute reached the warehouse after the warm-up; see {folder / 'dev.log'}")
    print(
        f"  {len(latencies):,} (token, minute) rows after the {args.warm_up:.0f}-minute warm-up:"
        f" p50 {statistics.median(latencies):.1f} s, p95 {_percentile(latencies, 0.95):.1f} s,"
        f" max {max(latencies):.1f} s; over 120 s: {sum(x > 120 for x in latencies)}"
    )
    if runs:
        durations = [d for _, d in runs]
        ok = sum(status == "SUCCESS" for status, _ in runs)
        print(
            f"  live_job runs: {len(runs)} ({ok} succeeded), duration p50 {statistics.median(durations):.1f} s,"
            f" max {max(durations):.1f} s"
        )
    print(f"  (files and logs kept in {folder})")


def _runs(home: Path) -> list[tuple[str, float]]:
    os.environ["DAGSTER_HOME"] = str(home)
    from dagster import DagsterInstance, RunsFilter

    with DagsterInstance.get() as instance:
        return [
            (r.dagster_run.status.value, r.end_time - r.start_time)
            for r in instance.get_run_records(RunsFilter(job_name="live_job"))
            if r.start_time and r.end_time
        ]


if __name__ == "__main__":
    main()
