"""Fault drill: the default two-day run on a fresh lake with every transient fault armed, against a
clean run of the same days, side by side in one process.

One emulator and one embedded warehouse serve both runs (each run its own lake, Dagster home and
warehouse schema). The clean run goes first; then faults of every kind the emulator has are
armed across REST, the bulk archive and CoinGecko, several of each, and the same command runs
again. Printed: per fault kind how many were armed and fired and what the run did about them,
both wall times and their ratio, and whether every warehouse table equals the clean run's row
for row. Last, a ban (418), which is not transient, is shown stopping a run at once with its
cause on the last line.

Target (issue 27): one run, exit 0, identical warehouse, <= 1.3x the clean run's time.

    .venv/bin/python bench/fault_drill.py [--days 2]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
from _common import emulator

from crypto_assets.ingestion.binance_archive import daily_path
from crypto_assets.services import _warehouse_ready, free_port, start_service

CLI = [sys.executable, "-m", "crypto_assets.cli"]
# What the drill arms, in the order the run meets them: (route, kind, count, options).
REST, COINGECKO = "/api/v3/klines", "/coingecko/api/v3/coins/"


def faults(first_day: str) -> list[tuple[str, str, int, dict]]:
    day = datetime.fromisoformat(first_day).date()
    return [
        # One file whose checksum never matches within the retries: its minutes come from REST.
        # (First: a route's faults are taken in the order they were armed.)
        (daily_path("ADAUSDT", "1m", day) + ".CHECKSUM", "bad_checksum", 6, {}),
        ("/api/v3/exchangeInfo", "truncated", 1, {}),
        (REST, "429", 3, {"retry_after": 1}),
        (REST, "500", 3, {}),
        (REST, "502", 3, {}),
        (REST, "503", 3, {}),
        (REST, "504", 3, {}),
        (REST, "slow", 3, {"delay": 2.0}),
        (REST, "slow", 1, {"delay": 12.0}),  # past the client's 10 s timeout: a timeout, retried
        (REST, "truncated", 3, {}),
        ("/data/spot/daily/klines/", "503", 3, {}),
        ("/data/spot/daily/klines/", "truncated", 3, {}),
        ("/data/spot/daily/klines/", "bad_checksum", 3, {}),
        (COINGECKO, "502", 3, {}),
        (COINGECKO, "429", 2, {"retry_after": 1}),
        (COINGECKO, "truncated", 3, {}),
    ]


WHAT_IT_DOES = {
    "429": "waited Retry-After, every worker paused",
    "500": "backed off with jitter, retried",
    "502": "backed off with jitter, retried",
    "503": "backed off with jitter, retried",
    "504": "backed off with jitter, retried",
    "slow": "waited; past the timeout: retried",
    "truncated": "body unreadable: fetched again",
    "bad_checksum": "file and .CHECKSUM fetched again; 6x: the day from REST",
}


def run(env: dict[str, str], *args: str) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    done = subprocess.run([*CLI, "run", "--no-services", *args], env=env, capture_output=True, text=True)
    return time.monotonic() - started, done


def warehouse_tables(env: dict[str, str]) -> dict[str, pd.DataFrame]:
    import snowflake.connector

    from resources.settings import Settings

    os.environ.update(env)
    with snowflake.connector.connect(**Settings.from_env().connector_args()) as connection:
        cursor = connection.cursor()
        cursor.execute(
            "select table_name from information_schema.tables where table_schema = %s order by 1",
            (env["SNOWFLAKE_SCHEMA"],),
        )
        tables = {}
        for (name,) in cursor.fetchall():
            cursor.execute(f"select * from {name}")
            frame = cursor.fetch_pandas_all()
            tables[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return tables


def compare(clean: dict[str, pd.DataFrame], faulty: dict[str, pd.DataFrame]) -> bool:
    identical = set(clean) == set(faulty)
    print(f"\n  {'warehouse table':<28} {'rows clean':>10} {'rows drill':>10}  equal")
    for name in sorted(set(clean) | set(faulty)):
        a, b = clean.get(name), faulty.get(name)
        same = a is not None and b is not None and a.equals(b)
        identical &= same
        rows = [len(x) if x is not None else "-" for x in (a, b)]
        print(f"  {name:<28} {rows[0]:>10} {rows[1]:>10}  {'yes' if same else 'NO'}")
    return identical


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=2)
    args = parser.parse_args()
    first_day = (datetime.now(UTC).date() - timedelta(days=args.days)).isoformat()
    with tempfile.TemporaryDirectory(prefix="fault-drill-") as tmp, emulator() as url:
        port = free_port()
        warehouse = start_service(
            "warehouse",
            ["warehouse", "--port", str(port), "--data-dir", f"{tmp}/warehouse"],
            lambda: _warehouse_ready("127.0.0.1", port),
            Path(tmp),
        )
        try:

            def env_for(name: str) -> dict[str, str]:
                return {
                    **os.environ,
                    "LAKE_ROOT": f"{tmp}/{name}/lake",
                    "DAGSTER_HOME": f"{tmp}/{name}/dagster",
                    "BINANCE_REST_URL": url,
                    "WAREHOUSE_PORT": str(port),
                    "SNOWFLAKE_SCHEMA": f"DRILL_{name.upper()}",
                }

            clean_env, drill_env = env_for("clean"), env_for("drill")
            clean_seconds, clean = run(clean_env, "--days", str(args.days))
            if clean.returncode != 0:
                sys.exit(f"the clean run failed:\n{clean.stdout[-3000:]}{clean.stderr[-3000:]}")
            armed: dict[str, int] = {}
            for route, kind, count, options in faults(first_day):
                payload = {"route": route, "kind": kind, "count": count, **options}
                httpx.post(f"{url}/_emulator/faults", json=payload).raise_for_status()
                armed[kind] = armed.get(kind, 0) + count
            fired_before = httpx.get(f"{url}/_emulator/stats").json()["faults_fired"]
            drill_seconds, drill = run(drill_env, "--days", str(args.days))
            stats = httpx.get(f"{url}/_emulator/stats").json()
            left = httpx.get(f"{url}/_emulator/faults").json()["armed"]
            httpx.delete(f"{url}/_emulator/faults")

            print(f"fault drill: `crypto-analytics run --days {args.days}` on a fresh lake, whole universe")
            print(f"\n  {'fault':<13} {'armed':>5} {'fired':>5}  what the run did")
            for kind in WHAT_IT_DOES:
                fired = stats["faults_fired"].get(kind, 0) - fired_before.get(kind, 0)
                print(f"  {kind:<13} {armed.get(kind, 0):>5} {fired:>5}  {WHAT_IT_DOES[kind]}")
            if left:
                print(f"  not reached by the run: {[(f['route'], f['kind'], f['count']) for f in left]}")
            for found in sorted(set(re.findall(r"(\w+ \d{4}-\d\d-\d\d): archive failed", drill.stderr))):
                print(f"  REST fallback: {found}")
            print(f"\n  clean run: exit {clean.returncode}, {clean_seconds:.1f} s")
            print(f"  drill run: exit {drill.returncode}, {drill_seconds:.1f} s")
            print(f"  ratio: {drill_seconds / clean_seconds:.2f}x (target <= 1.3x)")
            if drill.returncode != 0:
                print(f"  drill run's last line: {drill.stderr.strip().splitlines()[-1]}")
                sys.exit(1)
            identical = compare(warehouse_tables(clean_env), warehouse_tables(drill_env))
            print(f"  warehouse identical to the clean run's: {'yes' if identical else 'NO'}")

            # Not transient: a ban stops the run at once, and the last line says so.
            httpx.post(
                f"{url}/_emulator/faults", json={"route": REST, "kind": "418", "count": 1}
            ).raise_for_status()
            ban_env = env_for("ban")
            ban_seconds, ban = run(ban_env, "--start", first_day, "--end", first_day, "--no-warm-up",
                                   "--intervals", "1h", "--assets", "raw_klines")  # fmt: skip
            httpx.delete(f"{url}/_emulator/faults")
            print(
                f"\n  418 (a ban, not transient): exit {ban.returncode} after {ban_seconds:.1f} s, last line:"
            )
            print(f"    {ban.stderr.strip().splitlines()[-1]}")
        finally:
            warehouse.stop()


if __name__ == "__main__":
    main()
