"""``crypto-analytics stream``: Binance's live streams into the lake, with every gap repaired.

One asyncio loop: the client's readers put frames on a bounded queue; one consumer parses them,
hands closed 1m klines and trades to the durable writer (deduplicated there) and watches for
gaps; one repairer fetches what a gap lost through the REST client and records each gap with how
it was repaired (``stream/gaps``):
- **klines**: a closed minute later than the series' last one plus a minute means minutes were
  lost (a drop, a stall, a restart of this process: the lake says where each series stopped);
  they are fetched from ``/api/v3/klines``;
- **trades**: each closed kline names its minute's first and last trade ids (``f``, ``L``); a
  grace period after it closes, the ids of that range not held are fetched from
  ``/api/v3/historicalTrades``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from crypto_assets.ingestion.binance import INTERVAL_MS, BinanceClient
from crypto_assets.streaming.client import RECONNECTED, ClientConfig, StreamClient
from crypto_assets.streaming.frames import MalformedFrame, StreamKline, StreamTrade, parse_frame, stream_names
from crypto_assets.streaming.sink import StreamSink

log = logging.getLogger(__name__)
MINUTE_MS = INTERVAL_MS["1m"]
# The oldest downtime repaired from REST after a restart: older days are the batch's (archive).
MAX_REPAIR_MINUTES = 2 * 24 * 60
# The most trades one gap is repaired with (BTC trades ~1,000 a minute: a few hours).
MAX_REPAIR_TRADES = 500_000
# After a restart, the trades of the lake's last two hours of minutes are checked id by id.
RESUME_TRADE_CHECK_MS = 2 * 3600 * 1000
CHECKED_MAX = 100_000


@dataclass(frozen=True)
class StreamSettings:
    ws_url: str
    rest_url: str
    lake_root: Path
    pairs: tuple[str, ...]
    flush_seconds: float = 5.0
    flush_rows: int = 20_000
    silence_seconds: float = 30.0
    max_connection_seconds: float | None = None
    trade_grace_seconds: float = 3.0
    streams_per_connection: int = 1024
    # Rewritten every few seconds while the loop runs: the health check of a service without a
    # port (docker-compose.yml's `stream`). None: no heartbeat.
    heartbeat_path: Path | None = None
    heartbeat_seconds: float = 5.0


@dataclass
class StreamReport:
    frames: int = 0
    klines: int = 0
    trades: int = 0
    duplicates: int = 0
    malformed: int = 0
    gaps: int = 0
    repaired_klines: int = 0
    repaired_trades: int = 0
    reconnects: int = 0
    rollovers: int = 0
    files: int = 0
    last_close_ms: int | None = None
    malformed_examples: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"frames {self.frames:,}, klines {self.klines:,}, trades {self.trades:,}, duplicates"
            f" {self.duplicates:,}, malformed {self.malformed}, gaps {self.gaps} (repaired"
            f" {self.repaired_klines} klines, {self.repaired_trades} trades), reconnects"
            f" {self.reconnects}, rollovers {self.rollovers}, files {self.files}"
        )


@dataclass(frozen=True)
class Gap:
    kind: str  # "klines" or "trades"
    symbol: str
    first: int  # klines: first missing open time; trades: first missing id
    last: int  # inclusive
    reason: str
    missing: int | None  # None: not known before the repair (trade ids need not be contiguous)


class Streamer:
    def __init__(self, settings: StreamSettings, rest: BinanceClient | None = None) -> None:
        self.settings = settings
        self.sink = StreamSink(
            settings.lake_root, max_rows=settings.flush_rows, max_seconds=settings.flush_seconds
        )
        extra = (
            {}
            if settings.max_connection_seconds is None
            else {"max_connection_seconds": settings.max_connection_seconds}
        )
        self.client = StreamClient(
            ClientConfig(
                url=settings.ws_url,
                silence_seconds=settings.silence_seconds,
                streams_per_connection=settings.streams_per_connection,
                **extra,
            ),
            stream_names(list(settings.pairs)),
        )
        # pair -> last trade id held when its connection (re)opened: a restart of this process
        # resumes from what the lake holds (bounded: see MAX_REPAIR_TRADES).
        self._resumed: dict[str, tuple[int, str]] = {
            p: (i, "restart") for p, i in self.sink.last_trade.items()
        }
        self.rest = rest or BinanceClient(settings.rest_url)
        self.report = StreamReport()
        self.repairs: asyncio.Queue[Gap] = asyncio.Queue(maxsize=10_000)
        self._trade_checks: list[tuple[float, str, int, int]] = []  # (due, pair, first id, last id)
        self._checked: set[tuple[str, int]] = set()  # (pair, minute) whose trades were scheduled
        # pair -> trade id up to which every id is held or queued for repair: the last id of the
        # newest minute whose trade check ran (or the id before this process's first trade). A
        # reconnect re-checks from here, not from the highest id held: ids skipped in a minute
        # whose kline was then lost in the drop (repaired from REST, which names no trade ids)
        # are below the highest id held and would never be checked.
        self._verified: dict[str, int] = {}
        self._pairs = set(settings.pairs)

    # ------------------------------------------------------------------ main loop
    async def run(
        self, stop: asyncio.Event, on_status: Callable[[StreamReport], None] | None = None
    ) -> StreamReport:
        self._resume_from_lake()
        repairer = asyncio.create_task(self._repair())
        tasks = [
            asyncio.create_task(self.client.run(stop)),
            asyncio.create_task(self._consume(stop)),
            asyncio.create_task(self._tick(stop, on_status)),
        ]
        stopped = asyncio.create_task(stop.wait())
        # Supervised: a part that dies (a full disk, a refused stream) stops the whole stream with
        # its error instead of leaving it connected and silent.
        done, _ = await asyncio.wait({stopped, *tasks, repairer}, return_when=asyncio.FIRST_COMPLETED)
        failure = next(
            (t.exception() for t in done if t is not stopped and not t.cancelled() and t.exception()), None
        )
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(stopped, *tasks, return_exceptions=True)
        if failure is None:
            # A clean stop loses nothing: what arrived is handled, the closed minutes' trade ids
            # are checked without waiting out their grace, and the repairs under way finish.
            while not self.client.frames.empty():
                self._handle(*self.client.frames.get_nowait())
            self._check_trades(float("inf"))
            try:
                await asyncio.wait_for(self.repairs.join(), timeout=120)
            except TimeoutError:
                log.error("stream: repairs still under way at the stop; their gaps are recorded unrepaired")
        repairer.cancel()
        await asyncio.gather(repairer, return_exceptions=True)
        while not self.repairs.empty():
            self._record(self.repairs.get_nowait(), 0, None, "stopped before its repair")
        self.sink.flush()
        self._sync_report()
        if failure is not None:
            raise failure
        return self.report

    def _resume_from_lake(self) -> None:
        """What a predecessor left: holes between the minutes the lake holds for each pair (the
        recent days), and recent minutes whose trades are not all held, are repaired first."""
        by_symbol: dict[str, list[int]] = {}
        for symbol, open_time, _, _ in self.sink.recent_klines:
            if symbol in self._pairs:
                by_symbol.setdefault(symbol, []).append(open_time)
        for symbol, opens in sorted(by_symbol.items()):
            opens.sort()
            for before, after in pairwise(opens):
                if after > before + MINUTE_MS:
                    missing = (after - before) // MINUTE_MS - 1
                    self._queue_repair(
                        Gap("klines", symbol, before + MINUTE_MS, after - MINUTE_MS, "restart", missing)
                    )
        horizon = max((o for _, o, _, _ in self.sink.recent_klines), default=0) - RESUME_TRADE_CHECK_MS
        for symbol, open_time, first, last in self.sink.recent_klines:
            if symbol in self._pairs and first >= 0 and open_time >= horizon:
                self._schedule_trade_check(symbol, open_time, first, last, due=0.0)

    async def _consume(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            shard, text = await self.client.frames.get()
            self._handle(shard, text)
            if self.sink.due():
                self.sink.flush()  # in the loop: while it writes, the readers' queue fills and waits

    def _handle(self, shard: int, text: str) -> None:
        if text == RECONNECTED:
            self._on_reconnect(shard)
            return
        self.report.frames += 1
        try:
            event = parse_frame(text)
        except MalformedFrame as exc:
            self.report.malformed += 1
            if len(self.report.malformed_examples) < 5:
                self.report.malformed_examples.append(str(exc))
            log.warning("stream: malformed frame skipped: %s", exc)
            return
        if isinstance(event, StreamKline):
            self._on_kline(event)
        elif isinstance(event, StreamTrade):
            self._verified.setdefault(event.symbol, event.trade_id - 1)
            resumed = self._resumed.pop(event.symbol, None)
            if resumed is not None and event.trade_id > resumed[0] + 1:
                # The first trade since a (re)connect: every id between the last one held and
                # it was traded while nobody listened.
                self._queue_repair(
                    Gap("trades", event.symbol, resumed[0] + 1, event.trade_id - 1, resumed[1], None)
                )
            self.sink.add_trade(event)

    def _on_reconnect(self, shard: int) -> None:
        """A shard's connection is back: every id from its pairs' verified-through mark (see
        ``_verified``) to their next trade is fetched again; those held already are dropped as
        duplicates."""
        for name in self.client.shards[shard]:
            symbol = name.split("@")[0].upper()
            if symbol in self.sink.last_trade:
                verified = self._verified.get(symbol, self.sink.last_trade[symbol])
                self._resumed[symbol] = (min(verified, self.sink.last_trade[symbol]), "reconnect")

    def _on_kline(self, kline: StreamKline) -> None:
        if kline.interval != "1m":
            return
        last = self.sink.last_kline.get(kline.symbol)
        if last is not None and kline.open_time > last + MINUTE_MS:
            first = max(last + MINUTE_MS, kline.open_time - MAX_REPAIR_MINUTES * MINUTE_MS)
            missing = (kline.open_time - first) // MINUTE_MS
            self._queue_repair(
                Gap("klines", kline.symbol, first, kline.open_time - MINUTE_MS, "missed minutes", missing)
            )
        if self.sink.add_kline(kline):
            self.report.last_close_ms = max(self.report.last_close_ms or 0, kline.close_time)
        # Also for a kline held already (a REST repair that came first): its trades are checked.
        if kline.first_trade_id >= 0 and kline.trade_count > 0:
            due = time.monotonic() + self.settings.trade_grace_seconds
            self._schedule_trade_check(
                kline.symbol, kline.open_time, kline.first_trade_id, kline.last_trade_id, due
            )

    def _schedule_trade_check(self, symbol: str, open_time: int, first: int, last: int, due: float) -> None:
        if (symbol, open_time) in self._checked:
            return
        if len(self._checked) >= CHECKED_MAX:
            # Bounded: minutes older than the restart check's horizon are never scheduled again.
            horizon = open_time - RESUME_TRADE_CHECK_MS
            self._checked = {key for key in self._checked if key[1] >= horizon}
        self._checked.add((symbol, open_time))
        self._trade_checks.append((due, symbol, first, last))

    def _queue_repair(self, gap: Gap) -> None:
        self.report.gaps += 1
        try:
            self.repairs.put_nowait(gap)
        except asyncio.QueueFull:
            log.error(
                "stream: repair queue full; %s %s %s..%s recorded unrepaired",
                gap.kind,
                gap.symbol,
                gap.first,
                gap.last,
            )
            self._record(gap, 0, None, "repair queue full")

    async def _tick(self, stop: asyncio.Event, on_status: Callable[[StreamReport], None] | None) -> None:
        """Every second: the trade-id checks whose grace is over, a flush if one is due, status."""
        last_status = time.monotonic()
        last_beat = 0.0
        while not stop.is_set():
            if (
                self.settings.heartbeat_path is not None
                and time.monotonic() - last_beat >= self.settings.heartbeat_seconds
            ):
                self._beat(self.settings.heartbeat_path)
                last_beat = time.monotonic()
            await asyncio.sleep(1.0)
            now = time.monotonic()
            self._check_trades(now)
            if self.sink.due():
                self.sink.flush()
            if on_status is not None and now - last_status >= 30:
                self._sync_report()
                on_status(self.report)
                last_status = now

    def _beat(self, path: Path) -> None:
        """The heartbeat: when, and the counters so far (written whole, then renamed)."""
        self._sync_report()
        beat = {
            "at": datetime.now(UTC).isoformat(),
            "frames": self.report.frames,
            "klines": self.report.klines,
            "trades": self.report.trades,
            "reconnects": self.report.reconnects,
            "last_close_ms": self.report.last_close_ms,
        }
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_text(json.dumps(beat))
            tmp.replace(path)
        except OSError as exc:  # a full disk must not stop the stream; the health check will see it
            log.warning("stream: heartbeat not written: %s", exc)

    def _check_trades(self, now: float) -> None:
        """The closed minutes whose grace is over: every trade id from the kline's first to its
        last must be held; the others are fetched."""
        due = [c for c in self._trade_checks if c[0] <= now]
        self._trade_checks = [c for c in self._trade_checks if c[0] > now]
        for _, symbol, first, last in due:
            missing = (last - first + 1) - self.sink.held_trade_ids(symbol, first, last)
            if missing > 0:
                self._queue_repair(Gap("trades", symbol, first, last, "skipped trade ids", missing))
            self._verified[symbol] = max(self._verified.get(symbol, last), last)

    async def _repair(self) -> None:
        while True:
            gap = await self.repairs.get()
            try:
                if gap.kind == "klines":
                    rows = await asyncio.to_thread(
                        self.rest.klines, gap.symbol, "1m", gap.first, gap.last + MINUTE_MS
                    )
                    added = sum(
                        self.sink.add_kline(_rest_kline(gap.symbol, k), source="binance_rest") for k in rows
                    )
                    self.report.repaired_klines += added
                    self._record(gap, added, "/api/v3/klines", None)
                else:
                    added = await self._repair_trades(gap)
                    self.report.repaired_trades += added
                    self._record(gap, added, "/api/v3/historicalTrades", None)
            except Exception as exc:  # a failed repair is recorded, never fatal to the stream
                log.warning("stream: repair of %s %s failed: %s", gap.kind, gap.symbol, exc)
                self._record(gap, 0, None, f"{type(exc).__name__}: {exc}")
            finally:
                self.repairs.task_done()

    async def _repair_trades(self, gap: Gap) -> int:
        added, cursor, fetched = 0, gap.first, 0
        while cursor <= gap.last:
            if fetched >= MAX_REPAIR_TRADES:
                raise RuntimeError(f"more than {MAX_REPAIR_TRADES:,} trades to repair: left to the batch")
            page = await asyncio.to_thread(self.rest.historical_trades, gap.symbol, cursor, 1000)
            if not page:
                break
            for t in page:
                if t["id"] > gap.last:
                    break
                trade = StreamTrade(
                    gap.symbol, t["id"], t["price"], t["qty"], t["time"], t["isBuyerMaker"], t["time"]
                )
                added += self.sink.add_trade(trade, source="binance_rest")
            fetched += len(page)
            cursor = page[-1]["id"] + 1
        return added

    def _record(self, gap: Gap, repaired: int, by: str | None, error: str | None) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        self.sink.add_gap(
            {
                "symbol": gap.symbol, "kind": gap.kind, "reason": gap.reason, "first_missing": gap.first,
                "last_missing": gap.last, "missing": repaired if gap.missing is None else gap.missing,
                "repaired": repaired, "repaired_by": by,
                "detected_at": now, "repaired_at": now if by else None, "error": error,
            }
        )  # fmt: skip

    def _sync_report(self) -> None:
        self.report.klines = self.sink.stats.accepted["klines"]
        self.report.trades = self.sink.stats.accepted["trades"]
        self.report.duplicates = sum(self.sink.stats.duplicates.values())
        self.report.files = self.sink.stats.files
        self.report.reconnects = len(self.client.stats.reconnected)
        self.report.rollovers = self.client.stats.rollovers


def _rest_kline(symbol: str, k: Any) -> StreamKline:
    return StreamKline(
        symbol=symbol, interval="1m", open_time=k.open_time, close_time=k.close_time, open=k.open,
        high=k.high, low=k.low, close=k.close, volume=k.volume, quote_volume=k.quote_volume,
        trade_count=k.trade_count, taker_buy_base_volume=k.taker_buy_base_volume,
        taker_buy_quote_volume=k.taker_buy_quote_volume, event_time=k.close_time,
    )  # fmt: skip
