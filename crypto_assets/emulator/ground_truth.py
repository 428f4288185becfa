"""What the stream should have landed, from the emulator itself: for each pair, every closed
minute from the first one the lake holds to its last, equal to the emulator's REST kline, and
every trade of those minutes from the emulator's tape, each once. The tests and
bench/stream_faults.py compare the lake with it."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow.compute as pc

from crypto_assets.emulator.market import MINUTE_MS, TRADE_IDS_PER_MINUTE, Market
from crypto_assets.raw.schema import KLINE_VALUES
from crypto_assets.streaming.sink import read_table
from crypto_assets.universe import load_universe

# Positions of the kline's values (KLINE_VALUES) in a REST kline row.
REST_POSITIONS = (1, 2, 3, 4, 5, 7, 8, 9, 10)


@dataclass(frozen=True)
class PairTruth:
    pair: str
    minutes: int  # closed minutes from the lake's first to its last
    missing_minutes: int
    duplicate_minutes: int
    differing_minutes: int  # held, but not equal to the exchange's kline
    trades_expected: int
    missing_trades: int
    duplicate_trades: int
    extra_trades: int  # held ids the tape does not have

    @property
    def exact(self) -> bool:
        return not (
            self.missing_minutes
            or self.duplicate_minutes
            or self.differing_minutes
            or self.missing_trades
            or self.duplicate_trades
            or self.extra_trades
        )


def compare_lake(lake: Path, url: str, pairs: list[str] | tuple[str, ...]) -> list[PairTruth]:
    """Each pair's lake rows (``lake/stream``) against the emulator at ``url``."""
    klines, trades = read_table(lake, "klines"), read_table(lake, "trades")
    market = Market(load_universe())
    now = int(time.time() * 1000) + 10 * 24 * 3600 * 1000  # past everything a fast clock streamed
    out = []
    with httpx.Client(base_url=url, timeout=60) as rest:
        for pair in pairs:
            mine = klines.filter(pc.equal(klines["symbol"], pair)).sort_by("open_time").to_pylist()
            opens = [k["open_time"] for k in mine]
            if not opens:
                out.append(PairTruth(pair, 0, 0, 0, 0, 0, 0, 0, 0))
                continue
            wanted = range(opens[0], opens[-1] + MINUTE_MS, MINUTE_MS)
            counts = Counter(opens)
            truth: dict[int, tuple] = {}
            cursor = opens[0]
            while cursor <= opens[-1]:
                page = rest.get(
                    "/api/v3/klines",
                    params={
                        "symbol": pair,
                        "interval": "1m",
                        "startTime": cursor,
                        "endTime": opens[-1],
                        "limit": 1000,
                    },
                ).json()
                if not page:
                    break
                truth.update({r[0]: tuple(r[i] for i in REST_POSITIONS) for r in page})
                cursor = page[-1][0] + MINUTE_MS
            differing = sum(1 for k in mine if tuple(k[f] for f in KLINE_VALUES) != truth.get(k["open_time"]))
            expected = {t["id"] for m in wanted for t in market.trade_tape(pair, m, now)}
            low, high = (
                opens[0] // MINUTE_MS * TRADE_IDS_PER_MINUTE,
                (opens[-1] // MINUTE_MS + 1) * TRADE_IDS_PER_MINUTE,
            )
            held = [
                t
                for t in trades.filter(pc.equal(trades["symbol"], pair)).column("trade_id").to_pylist()
                if low <= t < high
            ]
            held_set = set(held)
            out.append(
                PairTruth(
                    pair=pair,
                    minutes=len(wanted),
                    missing_minutes=sum(1 for m in wanted if m not in counts),
                    duplicate_minutes=sum(n - 1 for n in counts.values()),
                    differing_minutes=differing,
                    trades_expected=len(expected),
                    missing_trades=len(expected - held_set),
                    duplicate_trades=len(held) - len(held_set),
                    extra_trades=len(held_set - expected),
                )
            )
    return out
