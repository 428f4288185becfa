"""The stream's durable writer: small Parquet files, each written whole or not at all.

Layout: ``<lake>/stream/<table>/dt=YYYY-MM-DD/part-<first time>-<last time>-<writer>-<seq>.parquet`` for
``klines`` (closed 1m klines, the raw klines' columns), ``trades`` and ``gaps`` (every gap the
stream met and how it was repaired). A file is written under a temporary name, fsynced, renamed
into place and its folder fsynced: once :meth:`StreamSink.flush` returns, its rows survive a
crash at any instant, and a killed writer leaves at most a temporary file, swept by the next one.

Rows are deduplicated as they arrive, by (venue, market, symbol, interval, open time) and
(venue, market, symbol, trade id), against what this writer wrote and what the lake already
holds for the recent days (read back when the writer starts): a reconnect's overlap, a duplicate
frame or a REST repair of what the stream did deliver never adds a row. The buffer is bounded:
:meth:`add` tells the caller to flush when it is full, and the caller awaits that before reading on.
"""

from __future__ import annotations

import os
import time
import uuid
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from crypto_assets.streaming.frames import StreamKline, StreamTrade

DAY_MS = 86_400_000
TABLES = ("klines", "trades", "gaps")
KLINE_SCHEMA = pa.schema(
    [
        ("venue", pa.string()), ("market", pa.string()), ("symbol", pa.string()), ("open_time", pa.int64()),
        ("open", pa.string()), ("high", pa.string()), ("low", pa.string()), ("close", pa.string()),
        ("volume", pa.string()), ("close_time", pa.int64()), ("quote_volume", pa.string()),
        ("trade_count", pa.int64()), ("taker_buy_base_volume", pa.string()),
        ("taker_buy_quote_volume", pa.string()), ("interval", pa.string()), ("source", pa.string()),
        ("ingested_at", pa.timestamp("us")), ("event_time", pa.int64()),
        # The minute's first and last trade ids (k.f, k.L; -1 when unknown, as from REST): a
        # restarted writer checks that every trade of a recent minute is held.
        ("first_trade_id", pa.int64()), ("last_trade_id", pa.int64()),
    ]
)  # fmt: skip
TRADE_SCHEMA = pa.schema(
    [
        ("venue", pa.string()), ("market", pa.string()), ("symbol", pa.string()), ("trade_id", pa.int64()),
        ("price", pa.string()), ("quantity", pa.string()), ("trade_time", pa.int64()),
        ("buyer_is_maker", pa.bool_()), ("source", pa.string()), ("ingested_at", pa.timestamp("us")),
        ("event_time", pa.int64()),
    ]
)  # fmt: skip
GAP_SCHEMA = pa.schema(
    [
        ("venue", pa.string()), ("market", pa.string()), ("symbol", pa.string()), ("kind", pa.string()),
        ("reason", pa.string()), ("first_missing", pa.int64()), ("last_missing", pa.int64()),
        ("missing", pa.int64()), ("repaired", pa.int64()), ("repaired_by", pa.string()),
        ("detected_at", pa.timestamp("us")), ("repaired_at", pa.timestamp("us")), ("error", pa.string()),
        ("detected_ms", pa.int64()),
    ]
)  # fmt: skip
SCHEMAS = {"klines": KLINE_SCHEMA, "trades": TRADE_SCHEMA, "gaps": GAP_SCHEMA}
# The time (ms) a row's UTC day partition comes from: a trade gap's first_missing is an id.
TIME_FIELD = {"klines": "open_time", "trades": "trade_time", "gaps": "detected_ms"}


class IdRanges:
    """A set of integers held as sorted, disjoint ``[lo, hi]`` ranges. Trade ids come in runs
    (Binance's are consecutive; the emulator's within a minute), so a day of a pair's trades is
    a handful of ranges, not millions of set entries: the writer's memory stays flat however
    long it streams."""

    def __init__(self) -> None:
        self._lo: list[int] = []
        self._hi: list[int] = []

    def __contains__(self, value: int) -> bool:
        i = bisect_right(self._lo, value) - 1
        return i >= 0 and value <= self._hi[i]

    def __len__(self) -> int:
        return len(self._lo)

    def add(self, value: int) -> bool:
        """Add ``value``; False when it was held already."""
        i = bisect_right(self._lo, value) - 1
        if i >= 0 and value <= self._hi[i]:
            return False
        joins_left = i >= 0 and self._hi[i] == value - 1
        joins_right = i + 1 < len(self._lo) and self._lo[i + 1] == value + 1
        if joins_left and joins_right:
            self._hi[i] = self._hi[i + 1]
            del self._lo[i + 1], self._hi[i + 1]
        elif joins_left:
            self._hi[i] = value
        elif joins_right:
            self._lo[i + 1] = value
        else:
            self._lo.insert(i + 1, value)
            self._hi.insert(i + 1, value)
        return True

    def count_between(self, first: int, last: int) -> int:
        """How many held values lie in ``[first, last]``."""
        held = 0
        for i in range(max(0, bisect_right(self._lo, first) - 1), len(self._lo)):
            if self._lo[i] > last:
                break
            held += max(0, min(last, self._hi[i]) - max(first, self._lo[i]) + 1)
        return held


@dataclass
class SinkStats:
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    duplicates: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    accepted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))  # buffered or written
    files: int = 0
    swept: int = 0


class StreamSink:
    """Buffers stream rows and flushes them as atomic Parquet files (see the module doc)."""

    def __init__(
        self,
        lake_root: Path,
        *,
        venue: str = "binance",
        market: str = "spot",
        max_rows: int = 20_000,
        max_seconds: float = 5.0,
        recent_days: int = 2,
        clock: Any = time.monotonic,
    ) -> None:
        self.root = Path(lake_root) / "stream"
        self.venue, self.market = venue, market
        self.max_rows, self.max_seconds = max_rows, max_seconds
        self._clock = clock
        self._writer = uuid.uuid4().hex[:8]
        self._sequence = 0
        self._buffers: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
        self._oldest: float | None = None
        self._klines: set[tuple[str, str, int]] = set()
        self._trades: dict[str, IdRanges] = {}  # pair -> trade ids held
        self.last_kline: dict[str, int] = {}  # symbol -> newest closed 1m open time held
        self.last_trade: dict[str, int] = {}  # symbol -> highest trade id held
        # (symbol, open time, first trade id, last trade id) of the closed 1m klines the lake held
        # at start: a restarted stream checks them for holes left by its predecessor.
        self.recent_klines: list[tuple[str, int, int, int]] = []
        self.stats = SinkStats()
        self.stats.swept = self._sweep()
        self._load_recent(recent_days)

    # ------------------------------------------------------------------ recovery
    def _sweep(self) -> int:
        """A dead writer's temporary files: never renamed, so never acknowledged. Removed."""
        swept = 0
        for tmp in self.root.glob("*/dt=*/.*.tmp"):
            tmp.unlink(missing_ok=True)
            swept += 1
        return swept

    def _load_recent(self, days: int) -> None:
        """The keys the lake holds for the last ``days`` UTC days (and later), so a restarted
        writer neither duplicates them nor forgets where each series stopped."""
        first = (datetime.now(UTC) - timedelta(days=days)).date().isoformat()
        for table, columns in (
            ("klines", ["symbol", "interval", "open_time", "first_trade_id", "last_trade_id"]),
            ("trades", ["symbol", "trade_id"]),
        ):
            for folder in sorted((self.root / table).glob("dt=*")):
                if folder.name.removeprefix("dt=") < first:
                    continue
                for file in sorted(folder.glob("part-*.parquet")):
                    rows = pq.read_table(file, columns=columns).to_pylist()
                    if table == "klines":
                        for row in rows:
                            self._klines.add((row["symbol"], row["interval"], row["open_time"]))
                            self._note_kline(row["symbol"], row["open_time"])
                            self.recent_klines.append(
                                (row["symbol"], row["open_time"], row["first_trade_id"], row["last_trade_id"])
                            )
                    else:
                        for row in rows:
                            self._trades.setdefault(row["symbol"], IdRanges()).add(row["trade_id"])
                            self._note_trade(row["symbol"], row["trade_id"])

    def _note_kline(self, symbol: str, open_time: int) -> None:
        if open_time > self.last_kline.get(symbol, -1):
            self.last_kline[symbol] = open_time

    def _note_trade(self, symbol: str, trade_id: int) -> None:
        if trade_id > self.last_trade.get(symbol, -1):
            self.last_trade[symbol] = trade_id

    # ------------------------------------------------------------------ rows in
    def add_kline(self, kline: StreamKline, source: str = "binance_ws") -> bool:
        """Buffer a closed kline; False when it is held already (a duplicate)."""
        if kline.key in self._klines:
            self.stats.duplicates["klines"] += 1
            return False
        self._klines.add(kline.key)
        self._note_kline(kline.symbol, kline.open_time)
        self._append(
            "klines",
            {
                "venue": self.venue, "market": self.market, "symbol": kline.symbol,
                "open_time": kline.open_time, "open": kline.open, "high": kline.high, "low": kline.low,
                "close": kline.close, "volume": kline.volume, "close_time": kline.close_time,
                "quote_volume": kline.quote_volume, "trade_count": kline.trade_count,
                "taker_buy_base_volume": kline.taker_buy_base_volume,
                "taker_buy_quote_volume": kline.taker_buy_quote_volume, "interval": kline.interval,
                "source": source, "ingested_at": _now(), "event_time": kline.event_time,
                "first_trade_id": kline.first_trade_id, "last_trade_id": kline.last_trade_id,
            },
        )  # fmt: skip
        return True

    def add_trade(self, trade: StreamTrade, source: str = "binance_ws") -> bool:
        """Buffer a trade; False when it is held already (a duplicate)."""
        if not self._trades.setdefault(trade.symbol, IdRanges()).add(trade.trade_id):
            self.stats.duplicates["trades"] += 1
            return False
        self._note_trade(trade.symbol, trade.trade_id)
        self._append(
            "trades",
            {
                "venue": self.venue, "market": self.market, "symbol": trade.symbol,
                "trade_id": trade.trade_id, "price": trade.price, "quantity": trade.quantity,
                "trade_time": trade.trade_time, "buyer_is_maker": trade.buyer_is_maker,
                "source": source, "ingested_at": _now(), "event_time": trade.event_time,
            },
        )  # fmt: skip
        return True

    def held_trade_ids(self, symbol: str, first: int, last: int) -> int:
        """How many trade ids of ``symbol`` in ``[first, last]`` are held (written or buffered)."""
        held = self._trades.get(symbol)
        return held.count_between(first, last) if held is not None else 0

    def add_gap(self, gap: dict[str, Any]) -> None:
        detected = gap["detected_at"].replace(tzinfo=UTC)
        self._append(
            "gaps",
            {
                "venue": self.venue,
                "market": self.market,
                **gap,
                "detected_ms": int(detected.timestamp() * 1000),
            },
        )

    def _append(self, table: str, row: dict[str, Any]) -> None:
        self.stats.accepted[table] += 1
        if self._oldest is None:
            self._oldest = self._clock()
        self._buffers[table].append(row)

    @property
    def buffered(self) -> int:
        return sum(len(rows) for rows in self._buffers.values())

    def due(self) -> bool:
        """Time to flush: the buffer is full, or its oldest row waited ``max_seconds``."""
        if self._oldest is None:
            return False
        return self.buffered >= self.max_rows or self._clock() - self._oldest >= self.max_seconds

    # ------------------------------------------------------------------ rows out
    def flush(self) -> int:
        """Write every buffered row, a file per table and UTC day; returns the rows written.
        When it returns they are durable (fsynced and renamed into place)."""
        written = 0
        for table, rows in self._buffers.items():
            if not rows:
                continue
            by_day: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                day = datetime.fromtimestamp(row[TIME_FIELD[table]] / 1000, UTC).date().isoformat()
                by_day.setdefault(day, []).append(row)
            for day, day_rows in sorted(by_day.items()):
                self._write(table, day, day_rows)
                # Committed: out of the buffer at once, so a failure on the next day's file
                # (a full disk at midnight) never writes this one twice.
                committed = {id(row) for row in day_rows}
                self._buffers[table] = [row for row in self._buffers[table] if id(row) not in committed]
                written += len(day_rows)
                self.stats.rows[table] += len(day_rows)
        self._oldest = None
        return written

    def _write(self, table: str, day: str, rows: list[dict[str, Any]]) -> None:
        folder = self.root / table / f"dt={day}"
        if not folder.exists():
            folder.mkdir(parents=True, exist_ok=True)
            _fsync(folder.parent)  # the new day's folder survives a power cut too
        self._sequence += 1
        times = [row[TIME_FIELD[table]] for row in rows]
        # The name says which times the file holds: a reader of one hour opens only its files.
        name = f"part-{min(times):013d}-{max(times):013d}-{self._writer}-{self._sequence:06d}.parquet"
        tmp = folder / f".{name}.tmp"
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMAS[table]), tmp)
        _fsync(tmp)
        os.replace(tmp, folder / name)
        _fsync(folder)
        self.stats.files += 1


def files_between(lake_root: Path, table: str, start_ms: int, end_ms: int) -> list[Path]:
    """The files of a stream table that may hold times in ``[start_ms, end_ms)``, from their
    names alone (a day of 5-second flushes is ~17,000 files; an hour reads ~720 of them)."""
    folder = Path(lake_root) / "stream" / table
    files: list[Path] = []
    for day_folder in sorted(folder.glob("dt=*")):
        try:
            day = date.fromisoformat(day_folder.name.removeprefix("dt="))
        except ValueError:
            continue
        # A file's rows are all in its folder's UTC day (a repair's too: see flush).
        if day_start_ms(day) >= end_ms or day_start_ms(day) + DAY_MS <= start_ms:
            continue
        for file in day_folder.glob("part-*.parquet"):
            parts = file.name.split("-")
            try:
                low, high = int(parts[1]), int(parts[2])
            except (IndexError, ValueError):
                continue
            if low < end_ms and high >= start_ms:
                files.append(file)
    return sorted(files)


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def read_table(lake_root: Path, table: str, days: Iterable[str] | None = None) -> pa.Table:
    """Every file of a stream table (or of ``days``), as written (the writer never writes a key
    twice: a test that reads this sees its duplicates, if it ever had any)."""
    folder = Path(lake_root) / "stream" / table
    wanted = None if days is None else {f"dt={d}" for d in days}
    files = [
        f
        for d in sorted(folder.glob("dt=*"))
        if wanted is None or d.name in wanted
        for f in sorted(d.glob("part-*.parquet"))
    ]
    if not files:
        return SCHEMAS[table].empty_table()
    return pa.concat_tables([pq.read_table(f, schema=SCHEMAS[table]) for f in files]).combine_chunks()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
