"""Stream throughput: frames received -> parsed -> durable Parquet (``Streamer``), against a bare
``websockets`` receive loop on the same emulator stream, side by side in one run (issue 24).

The emulator runs its clock fast (``--clock-speed``) so its trade tape is as dense as it can
send; both sides subscribe to the same pairs' kline and trade streams for the same time,
alternating, a fresh emulator connection each. Printed: frames/s of each, the ratio (target
>= 0.7), and the streamer's RSS at each minute of a longer run (flat: within 10 % from minute 1
to the last).

    .venv/bin/python bench/stream_throughput.py [--seconds 60] [--rounds 2] [--rss-minutes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crypto_assets.services import _emulator_ready, free_port, start_service
from crypto_assets.streaming.frames import stream_names
from crypto_assets.streaming.stream import Streamer, StreamSettings

PAIRS = ("BTCUSDT", "ETHUSDT", "DOGEUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT")


async def bare(url: str, seconds: float) -> int:
    frames = 0
    stream = f"{url}/stream?streams={'/'.join(stream_names(list(PAIRS)))}"
    async with websockets.connect(stream, ping_interval=None, max_queue=64) as ws:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                await asyncio.wait_for(ws.recv(), timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            frames += 1
    return frames


async def pipeline(url: str, rest: str, lake: Path, seconds: float, rss: list[float] | None = None) -> int:
    streamer = Streamer(
        StreamSettings(ws_url=url, rest_url=rest, lake_root=lake, pairs=PAIRS, flush_seconds=2.0)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.call_later(seconds, stop.set)
    if rss is not None:

        async def sample() -> None:
            while not stop.is_set():
                await asyncio.sleep(60)
                rss.append(_rss_mib())

        sampler = asyncio.ensure_future(sample())
    report = await streamer.run(stop)
    if rss is not None:
        sampler.cancel()
    return report.frames


def _rss_mib() -> float:
    """This process's resident set now (not its peak: earlier rounds ran in it too)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rss-minutes", type=int, default=5)
    parser.add_argument("--clock-speed", type=float, default=20.0)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        service = start_service(
            "emulator",
            [
                "emulator",
                "--port",
                str(port),
                "--clock-speed",
                str(args.clock_speed),
                "--push-seconds",
                "0.1",
            ],
            lambda: _emulator_ready("127.0.0.1", port),
            Path(tmp),
        )
        rest, url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
        try:
            rates: dict[str, list[float]] = {"bare": [], "pipeline": []}
            for round_ in range(args.rounds):
                for side in ("bare", "pipeline"):
                    started = time.monotonic()
                    if side == "bare":
                        frames = asyncio.run(bare(url, args.seconds))
                    else:
                        frames = asyncio.run(pipeline(url, rest, Path(tmp) / f"lake{round_}", args.seconds))
                    rate = frames / (time.monotonic() - started)
                    rates[side].append(rate)
                    print(f"round {round_ + 1} {side:<8} {frames:>9,} frames  {rate:>9,.0f} frames/s")
            bare_rate = sum(rates["bare"]) / len(rates["bare"])
            pipe_rate = sum(rates["pipeline"]) / len(rates["pipeline"])
            print(
                f"bare websockets loop: {bare_rate:,.0f} frames/s; streamer (parse + dedup + durable Parquet): {pipe_rate:,.0f} frames/s"
            )
            print(f"streamer / bare: {pipe_rate / bare_rate:.2f} (target >= 0.7)")
            if args.rss_minutes:
                rss: list[float] = []
                asyncio.run(pipeline(url, rest, Path(tmp) / "lake-rss", args.rss_minutes * 60 + 1, rss))
                print("streamer RSS at each minute (MiB): " + ", ".join(f"{r:.0f}" for r in rss))
                if len(rss) >= 2:
                    print(f"minute {len(rss)} / minute 1: {rss[-1] / rss[0]:.3f} (flat: within 1.10)")
        finally:
            service.stop()


if __name__ == "__main__":
    main()
