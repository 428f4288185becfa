"""`crypto-analytics stream` for real: the CLI against the emulator's live streams, its clock 30x
fast (a minute every 2 s), with faults armed mid-stream: two dropped connections, a stall the
silence detector must notice, duplicated and reordered frames, skipped trades. The lake must then
hold exactly the emulator's ground truth: every closed minute's kline equal to the REST kline and
every trade of those minutes from the tape, none missing and none twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow.compute as pc
import pytest

from crypto_assets.emulator.market import MINUTE_MS, Market
from crypto_assets.services import _emulator_ready, free_port, start_service
from crypto_assets.streaming.sink import read_table
from crypto_assets.universe import load_universe

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
PAIRS = ("BTCUSDT", "DOGEUSDT")
KLINE_FIELDS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trade_count",
    "taker_buy_base_volume",
)


@pytest.fixture
def fast_emulator(tmp_path: Path):
    port = free_port()
    service = start_service(
        "emulator",
        ["emulator", "--port", str(port), "--clock-speed", "30", "--push-seconds", "0.2"],
        lambda: _emulator_ready("127.0.0.1", port),
        tmp_path,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        service.stop()


def _stream(tmp_path: Path, url: str, seconds: float) -> subprocess.Popen:
    env = {
        **os.environ,
        "LAKE_ROOT": str(tmp_path / "lake"),
        "BINANCE_REST_URL": url,
        "BINANCE_WS_URL": url.replace("http", "ws"),
    }
    args = [
        "--pairs",
        ",".join(PAIRS),
        "--duration",
        str(seconds),
        "--flush-seconds",
        "1",
        "--silence-seconds",
        "2",
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "crypto_assets.cli", "stream", *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _arm(url: str, kind: str, **body: object) -> None:
    httpx.post(f"{url}/_emulator/stream-faults", json={"kind": kind, **body}, timeout=10).raise_for_status()


def test_the_stream_lands_the_ground_truth_through_drops_stalls_duplicates_and_skips(
    tmp_path: Path, fast_emulator: str
):
    stream = _stream(tmp_path, fast_emulator, 30)
    started = time.monotonic()
    for at, kind, body in (
        (5, "drop", {}),
        (8, "duplicate", {"count": 40}),
        (8, "reorder", {"count": 20}),
        (10, "skip_trades", {"count": 200}),
        (13, "stall", {"seconds": 4}),
        (20, "drop", {}),
    ):
        time.sleep(max(0.0, started + at - time.monotonic()))
        _arm(fast_emulator, kind, **body)
    out, _ = stream.communicate(timeout=120)
    assert stream.returncode == 0, out[-3000:]
    fired = httpx.get(f"{fast_emulator}/_emulator/stream-faults", timeout=10).json()["fired"]
    assert fired == {"drop": 2, "duplicate": 40, "reorder": 20, "skip_trades": 200, "stall": 1}, fired
    stopped = out.strip().splitlines()[-1]
    assert "reconnects 0," not in stopped and "duplicates 0," not in stopped, stopped

    lake = tmp_path / "lake"
    klines, trades, gaps = (read_table(lake, t) for t in ("klines", "trades", "gaps"))
    market = Market(load_universe())
    now = int(time.time() * 1000) + 10 * 24 * 3600 * 1000  # past everything the stream saw
    rest = httpx.Client(base_url=fast_emulator, timeout=30)
    for pair in PAIRS:
        mine = klines.filter(pc.equal(klines["symbol"], pair)).sort_by("open_time").to_pylist()
        opens = [k["open_time"] for k in mine]
        assert len(opens) >= 8, (pair, len(opens))  # ~15 emulated minutes in 30 s
        # Every minute from the first closed one to the last: none missing, none twice.
        assert opens == list(range(opens[0], opens[-1] + MINUTE_MS, MINUTE_MS)), pair
        truth = rest.get(
            "/api/v3/klines",
            params={"symbol": pair, "interval": "1m", "startTime": opens[0], "endTime": opens[-1]},
        ).json()
        assert [
            {f: k[f] for f in ("open_time", *KLINE_FIELDS)} for k in mine
        ] == [
            dict(zip(("open_time", "open", "high", "low", "close", "volume", "quote_volume", "trade_count",
                      "taker_buy_base_volume"), [r[0], *r[1:6], r[7], r[8], r[9]], strict=True))
            for r in truth
        ], pair  # fmt: skip
        # Every trade of those minutes, from the tape; none twice.
        expected = [t["id"] for m in opens for t in market.trade_tape(pair, m, now)]
        held = [
            t for t in trades.filter(pc.equal(trades["symbol"], pair)).column("trade_id").to_pylist()
            if opens[0] * 10_000 // MINUTE_MS <= t < (opens[-1] + MINUTE_MS) * 10_000 // MINUTE_MS
        ]  # fmt: skip
        assert len(held) == len(set(held)), pair
        assert sorted(held) == expected, (pair, len(held), len(expected))
    # The skipped trades were noticed and fetched again; each gap says how.
    repaired = gaps.filter(pc.equal(gaps["kind"], "trades")).to_pylist()
    assert repaired and all(
        g["repaired_by"] == "/api/v3/historicalTrades" and g["error"] is None for g in repaired
    )
    assert sum(g["repaired"] for g in repaired) >= 200
