"""Does a REST backfill use the exchange's weight budget fully, without a single 429?

37 tokens x 30 days x 1m klines from the emulator, which enforces Binance's REQUEST_WEIGHT rate
(6000 per minute = 100 per second). The whole backfill needs ~2,800 weight, less than one real
minute's budget, so the emulator's window is scaled to 6 s at the same rate (600 per 6 s): the
same pressure, measurable over many windows. The client knows only the limit and the window.
Reported: weight used in every complete window as a share of the limit, and the 429 count.

    .venv/bin/python bench/weight_budget.py [--days 30] [--threads 8]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import httpx
from _common import Timer, days, emulator, pairs_for

from crypto_assets.ingestion.binance import BinanceClient
from crypto_assets.raw.fetch import fetch_klines

LIMIT, WINDOW = 600, 6.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--first-day", default="2024-03-01")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    windows = days(args.first_day, args.days)
    pairs = pairs_for(windows[0][0], windows[-1][1])
    with emulator("--weight-limit", str(LIMIT), "--weight-window-seconds", str(WINDOW)) as url:
        klines = 0
        with (
            BinanceClient(url, weight_per_minute=LIMIT, weight_window_seconds=WINDOW) as client,
            Timer() as timer,
        ):
            for start, end in windows:
                frame, _ = fetch_klines(
                    client, None, pairs, start, end, datetime.now(UTC), threads=args.threads
                )
                klines += len(frame)
            rate_limited = client.http.rate_limited
        stats = httpx.get(f"{url}/_emulator/stats").json()
    used = [w["weight"] for w in stats["weight_per_window"]]
    complete = used[1:-1]  # the first and last windows are partial by construction
    shares = [u / LIMIT for u in complete]
    print(
        f"workload: {len(pairs)} listed pairs (of 37 tokens) x {args.days} days x 1m = {klines:,} klines, {sum(used):,} weight"
    )
    print(
        f"elapsed {timer.seconds:.1f} s over {len(used)} windows of {WINDOW:.0f} s (limit {LIMIT} = Binance's 100 weight/s)"
    )
    print(
        f"weight per complete window: min {min(shares):.1%}, mean {sum(shares) / len(shares):.1%}, max {max(shares):.1%}"
    )
    print(f"weight per window (all): {used}")
    print(f"429 answers: server counted {stats['rejected_429']}, client saw {rate_limited}")
    print(
        f"RATIO mean used/allowed weight = {sum(shares) / len(shares):.2f} (target >= 0.90), 429s = {stats['rejected_429']} (target 0)"
    )


if __name__ == "__main__":
    main()
