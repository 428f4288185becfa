"""Fault run (issue 24): the whole universe streamed while the emulator drops every connection
ten times, stalls, duplicates, reorders and skips trades and sends malformed frames; then the
lake is compared with the emulator's ground truth (crypto_assets/emulator/ground_truth.py):
missing and duplicate candles and trades must all be zero.

    .venv/bin/python bench/stream_faults.py [--seconds 240] [--clock-speed 5] [--drops 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import emulator
from crypto_assets.emulator.ground_truth import compare_lake
from crypto_assets.universe import load_universe

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--clock-speed", type=float, default=5.0)
    parser.add_argument("--drops", type=int, default=10)
    args = parser.parse_args()
    now = datetime.now(UTC)
    pairs = sorted(load_universe().active_pairs(now - timedelta(days=1), now))
    # The drops spread over the run, the other faults in between them.
    spacing = args.seconds / (args.drops + 2)
    plan = [(spacing * (i + 1), "drop", {}) for i in range(args.drops)]
    plan += [
        (spacing * 1.5, "duplicate", {"count": 300}),
        (spacing * 2.5, "reorder", {"count": 200}),
        (spacing * 3.5, "skip_trades", {"count": 1000}),
        (spacing * 4.5, "malformed", {"count": 5}),
        (spacing * 5.5, "stall", {"seconds": 8}),
    ]
    plan.sort(key=lambda item: item[0])
    with (
        emulator("--clock-speed", str(args.clock_speed), "--push-seconds", "0.2") as url,
        tempfile.TemporaryDirectory() as folder,
    ):
        lake = Path(folder) / "lake"
        env = {
            **os.environ,
            "LAKE_ROOT": str(lake),
            "BINANCE_REST_URL": url,
            "BINANCE_WS_URL": url.replace("http", "ws"),
        }
        command = [sys.executable, "-m", "crypto_assets.cli", "stream", "--duration", str(args.seconds),
                   "--flush-seconds", "2", "--silence-seconds", "4"]  # fmt: skip
        stream = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        started = time.monotonic()
        for at, kind, body in plan:
            time.sleep(max(0.0, started + at - time.monotonic()))
            httpx.post(
                f"{url}/_emulator/stream-faults", json={"kind": kind, **body}, timeout=10
            ).raise_for_status()
        out, _ = stream.communicate(timeout=args.seconds + 600)
        fired = httpx.get(f"{url}/_emulator/stream-faults", timeout=10).json()["fired"]
        stopped = next((line for line in out.splitlines() if line.startswith("Stopped: ")), out[-500:])
        print(
            f"fault run: {len(pairs)} pairs, {args.seconds:.0f} s at {args.clock_speed:g}x the exchange's clock"
        )
        print(f"  faults fired: {fired}")
        print(f"  {stopped}")
        events = [line.strip() for line in out.splitlines() if "reconnecting" in line or "silent" in line]
        print(f"  the stream's log: {len(events)} connection events")
        for line in events:
            print(f"    {line[:160]}")
        truth = compare_lake(lake, url, pairs)
    total = {
        field: sum(getattr(t, field) for t in truth)
        for field in ("minutes", "missing_minutes", "duplicate_minutes", "differing_minutes",
                      "trades_expected", "missing_trades", "duplicate_trades", "extra_trades")
    }  # fmt: skip
    print(
        f"  against the ground truth: {total['minutes']:,} candles (missing {total['missing_minutes']},"
        f" duplicate {total['duplicate_minutes']}, differing {total['differing_minutes']}),"
        f" {total['trades_expected']:,} trades (missing {total['missing_trades']},"
        f" duplicate {total['duplicate_trades']}, extra {total['extra_trades']})"
    )
    bad = [t for t in truth if not t.exact]
    print(
        "  exact"
        if not bad and stream.returncode == 0
        else f"  NOT EXACT (exit {stream.returncode}): {bad[:5]}"
    )


if __name__ == "__main__":
    main()
