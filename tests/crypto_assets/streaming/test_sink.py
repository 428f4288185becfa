"""The stream's writer: atomic files, deduplication across restarts, a kill at any instant."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from crypto_assets.streaming.frames import StreamKline, StreamTrade
from crypto_assets.streaming.sink import StreamSink, read_table

T0 = 1_796_500_800_000  # 2026-12-06 00:00 UTC


def kline(minute: int, symbol: str = "BTCUSDT") -> StreamKline:
    t = T0 + minute * 60_000
    return StreamKline(
        symbol, "1m", t, t + 59_999, "1", "2", "0.5", "1.5", "10", "15", 3, "5", "7", t + 60_000
    )


def trade(trade_id: int, symbol: str = "BTCUSDT") -> StreamTrade:
    return StreamTrade(symbol, trade_id, "1.5", "0.1", T0 + trade_id, bool(trade_id % 2), T0 + trade_id)


def test_duplicates_are_dropped_and_a_restart_remembers_what_the_lake_holds(tmp_path: Path):
    sink = StreamSink(tmp_path)
    assert sink.add_kline(kline(0)) and not sink.add_kline(kline(0))
    assert sink.add_trade(trade(1)) and sink.add_trade(trade(2)) and not sink.add_trade(trade(1))
    assert sink.flush() == 3
    restarted = StreamSink(tmp_path)
    assert not restarted.add_kline(kline(0)) and not restarted.add_trade(trade(2))
    assert restarted.last_kline == {"BTCUSDT": T0} and restarted.last_trade == {"BTCUSDT": 2}
    assert restarted.add_kline(kline(1))
    restarted.flush()
    klines = read_table(tmp_path, "klines").to_pylist()
    assert [k["open_time"] for k in klines] == [T0, T0 + 60_000]
    assert {k["source"] for k in klines} == {"binance_ws"}


def test_a_flush_is_due_by_size_or_age(tmp_path: Path):
    now = [0.0]
    sink = StreamSink(tmp_path, max_rows=3, max_seconds=5.0, clock=lambda: now[0])
    assert not sink.due()
    sink.add_trade(trade(1))
    now[0] = 4.9
    assert not sink.due()
    now[0] = 5.0
    assert sink.due()
    sink.flush()
    for i in range(2, 5):
        sink.add_trade(trade(i))
    assert sink.due()  # 3 rows: full


def test_a_dead_writers_temporary_file_is_swept_and_never_read(tmp_path: Path):
    sink = StreamSink(tmp_path)
    sink.add_kline(kline(0))
    sink.flush()
    folder = next((tmp_path / "stream" / "klines").glob("dt=*"))
    (folder / ".part-x.parquet.tmp").write_bytes(b"half a file")
    assert len(read_table(tmp_path, "klines")) == 1  # readers never see it
    restarted = StreamSink(tmp_path)
    assert restarted.stats.swept == 1 and not list(folder.glob(".*.tmp"))


WRITER = textwrap.dedent(
    """
    import sys, time
    from crypto_assets.streaming.sink import StreamSink
    from tests.crypto_assets.streaming.test_sink import trade
    sink = StreamSink(sys.argv[1], max_rows=500)
    i = 0
    while True:
        for _ in range(500):
            i += 1
            sink.add_trade(trade(i))
        sink.flush()
        print(i, flush=True)  # acknowledged: every id up to i is durable
    """
)


def test_kill_9_mid_flush_loses_nothing_acknowledged_and_a_rerun_duplicates_nothing(tmp_path: Path):
    repo = Path(__file__).resolve().parents[3]
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], cwd=repo, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )  # fmt: skip
    acknowledged = 0
    assert writer.stdout is not None
    deadline = time.monotonic() + 60
    while acknowledged < 20_000 and time.monotonic() < deadline:
        acknowledged = int(writer.stdout.readline())
    os.kill(writer.pid, signal.SIGKILL)  # at any instant: mid-write, mid-rename or between flushes
    writer.wait()
    held = read_table(tmp_path, "trades").column("trade_id").to_pylist()
    assert set(range(1, acknowledged + 1)) <= set(held)
    assert len(held) == len(set(held))  # every file is whole: no half-written one is read
    # The next writer sweeps, remembers, and re-delivery of the same ids adds nothing.
    sink = StreamSink(tmp_path)
    assert not any(sink.add_trade(trade(i)) for i in range(1, max(held) + 1))
    sink.add_trade(trade(max(held) + 1))
    sink.flush()
    after = read_table(tmp_path, "trades").column("trade_id").to_pylist()
    assert sorted(after) == list(range(1, max(held) + 2))


def test_trade_ids_are_held_as_ranges_that_behave_as_a_set():
    import random

    from crypto_assets.streaming.sink import IdRanges

    rng = random.Random(7)
    ranges, plain = IdRanges(), set()
    for value in [rng.randrange(0, 3_000) for _ in range(5_000)] + list(range(10_000, 20_000)):
        assert ranges.add(value) == (value not in plain)
        plain.add(value)
    assert all((v in ranges) == (v in plain) for v in range(-5, 21_000))
    for first, last in [(0, 2_999), (100, 150), (9_990, 10_010), (19_999, 25_000), (-10, -1)]:
        assert ranges.count_between(first, last) == sum(first <= v <= last for v in plain)
    # 10,000 consecutive ids are one range, not 10,000 entries.
    assert len(ranges) < 1_000


def test_a_reconnect_rechecks_from_the_last_verified_minute_not_the_highest_id(tmp_path: Path):
    """Trade 105 was skipped, then the connection dropped before its minute's kline came (that
    minute is then repaired from REST, whose klines name no trade ids): the reconnect's repair
    must reach back to it, not start after 109, the highest id held."""
    import asyncio
    import json

    from crypto_assets.streaming.client import RECONNECTED
    from crypto_assets.streaming.stream import Streamer, StreamSettings

    class Rest:
        def historical_trades(self, symbol: str, from_id: int, limit: int) -> list[dict]:
            return [
                {"id": i, "price": "1.5", "qty": "0.1", "time": T0 + i, "isBuyerMaker": False}
                for i in range(from_id, min(from_id + limit, 121))
            ]

    settings = StreamSettings(ws_url="ws://127.0.0.1:9", rest_url="http://127.0.0.1:9", lake_root=tmp_path,
                              pairs=("BTCUSDT",))  # fmt: skip
    streamer = Streamer(settings, rest=Rest())  # type: ignore[arg-type]

    def frame(i: int) -> str:
        return json.dumps({"stream": "btcusdt@trade", "data": {"e": "trade", "E": T0 + i, "s": "BTCUSDT",
                           "t": i, "p": "1.5", "q": "0.1", "T": T0 + i, "m": False}})  # fmt: skip

    for i in [*range(100, 105), *range(106, 110)]:
        streamer._handle(0, frame(i))
    streamer._handle(0, RECONNECTED)
    streamer._handle(0, frame(120))
    gaps = [streamer.repairs.get_nowait() for _ in range(streamer.repairs.qsize())]
    assert [(g.first, g.last, g.reason) for g in gaps] == [(100, 119, "reconnect")]
    assert asyncio.run(streamer._repair_trades(gaps[0])) == 11  # 105 and 110..119; the rest held
    assert streamer.sink.held_trade_ids("BTCUSDT", 100, 120) == 21
