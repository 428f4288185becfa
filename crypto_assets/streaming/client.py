"""Binance combined streams over ``websockets``, within Binance's connection limits.

Spot limits (Binance's WebSocket docs): at most 1,024 streams per connection; at most 5 incoming
messages a second per connection (SUBSCRIBE, ping and pong frames count: the streams go in the
URL and the client never pings, so it sends nothing but the pongs ``websockets`` answers the
server's pings with); 300 connection attempts per 5 minutes per IP; the server pings every 20 s
and drops a client silent for a minute; every connection is closed at 24 hours.

Each shard of at most ``streams_per_connection`` streams keeps one connection:
- a drop (any close or error) reconnects after a jittered exponential backoff;
- silence (no frame for ``silence_seconds``) is a drop;
- **before** ``max_connection_seconds`` the shard opens the next connection and closes the old
  one only once the new one delivers, so the switch loses nothing (the overlap's duplicates are
  dropped by the writer).
Frames go to a bounded queue: when the writer falls behind, ``put`` waits, the reader stops
reading, and TCP pushes back on the server; memory stays bounded at any message rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field

import websockets

log = logging.getLogger(__name__)

MAX_STREAMS_PER_CONNECTION = 1024
CONNECTS_PER_WINDOW = 300
CONNECT_WINDOW_SECONDS = 300.0
MAX_CONNECTION_SECONDS = 24 * 3600.0
# Put on the frames queue after a shard reconnects (never a frame: frames are JSON).
RECONNECTED = "\x00reconnected"


@dataclass(frozen=True)
class ClientConfig:
    url: str  # ws://host:port (the combined endpoint /stream is appended)
    streams_per_connection: int = MAX_STREAMS_PER_CONNECTION
    silence_seconds: float = 30.0
    # Roll over well before Binance's 24-hour cut.
    max_connection_seconds: float = MAX_CONNECTION_SECONDS - 15 * 60
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    queue_size: int = 10_000

    def __post_init__(self) -> None:
        if not 1 <= self.streams_per_connection <= MAX_STREAMS_PER_CONNECTION:
            raise ValueError(f"streams_per_connection must be 1..{MAX_STREAMS_PER_CONNECTION}")


@dataclass
class ClientStats:
    frames: int = 0
    connects: int = 0
    drops: int = 0
    silences: int = 0
    rollovers: int = 0
    # (shard, monotonic time) of each reconnect after a drop: gap repair starts from these.
    reconnected: list[tuple[int, float]] = field(default_factory=list)


class StreamRefused(RuntimeError):
    """The server closed with a policy violation (unknown stream names): not retried."""


class ConnectBudget:
    """Binance's 300 connection attempts per 5 minutes per IP, shared by every shard."""

    def __init__(self, limit: int = CONNECTS_PER_WINDOW, window: float = CONNECT_WINDOW_SECONDS) -> None:
        self.limit, self.window = limit, window
        self._attempts: deque[float] = deque()

    async def acquire(self) -> None:
        while True:
            now = time.monotonic()
            while self._attempts and now - self._attempts[0] >= self.window:
                self._attempts.popleft()
            if len(self._attempts) < self.limit:
                self._attempts.append(now)
                return
            await asyncio.sleep(self.window - (now - self._attempts[0]))


def shards(streams: list[str], per_connection: int) -> list[list[str]]:
    return [streams[i : i + per_connection] for i in range(0, len(streams), per_connection)]


class StreamClient:
    """Every stream of ``streams`` over as few connections as the limits allow; raw frames
    (text) are put on :attr:`frames` as ``(shard, text)``, and ``(shard, RECONNECTED)`` when a
    shard's connection is back after a drop."""

    def __init__(
        self,
        config: ClientConfig,
        streams: list[str],
    ) -> None:
        self.config = config
        self.shards = shards(streams, config.streams_per_connection)
        self.frames: asyncio.Queue[tuple[int, str]] = asyncio.Queue(maxsize=config.queue_size)
        self.stats = ClientStats()
        self.budget = ConnectBudget()
        self._last_frame: dict[int, float] = {}
        self._current: dict[int, websockets.ClientConnection] = {}

    def url_for(self, shard: int) -> str:
        return f"{self.config.url.rstrip('/')}/stream?streams={'/'.join(self.shards[shard])}"

    async def run(self, stop: asyncio.Event) -> None:
        """Keep every shard connected until ``stop`` is set."""
        await asyncio.gather(*(self._keep(shard, stop) for shard in range(len(self.shards))))

    async def _connect(self, shard: int) -> websockets.ClientConnection:
        await self.budget.acquire()
        # The server pings and websockets answers; a client ping would count against the
        # 5 incoming messages a second, so the client sends none.
        connection = await websockets.connect(
            self.url_for(shard), ping_interval=None, max_queue=64, open_timeout=10, close_timeout=2
        )
        self.stats.connects += 1
        return connection

    async def _keep(self, shard: int, stop: asyncio.Event) -> None:
        failures = 0
        first = True
        while not stop.is_set():
            try:
                connection = await self._connect(shard)
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                failures += 1
                log.warning("stream shard %d: connect failed (%s); retrying", shard, exc)
                await self._backoff(failures, stop)
                continue
            self._current[shard] = connection
            if not first:
                self.stats.reconnected.append((shard, time.monotonic()))
                # In the frames' order: whatever the old connection delivered is handled first.
                await self.frames.put((shard, RECONNECTED))
            first = False
            opened = time.monotonic()
            try:
                await self._session(shard, stop)
            except websockets.ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == 1008:
                    # Policy violation: the server refuses these streams. Retrying cannot help.
                    raise StreamRefused(f"the server refused the streams of shard {shard}: {exc}") from exc
                self.stats.drops += 1
                log.warning("stream shard %d: connection dropped (%s); reconnecting", shard, exc)
            except (OSError, websockets.WebSocketException) as exc:  # a failed rollover handshake too
                self.stats.drops += 1
                log.warning("stream shard %d: connection failed (%s); reconnecting", shard, exc)
            except TimeoutError:
                self.stats.silences += 1
                log.warning(
                    "stream shard %d: no frame for %.0f s; reconnecting", shard, self.config.silence_seconds
                )
            finally:
                with contextlib.suppress(Exception):
                    await self._current[shard].close()
            if not stop.is_set():
                # A connection that died young backs off further each time: one the server
                # accepts and closes at once must not spend the shared connect budget in a loop.
                failures = 1 if time.monotonic() - opened >= 30 else failures + 1
                await self._backoff(failures, stop)

    async def _session(self, shard: int, stop: asyncio.Event) -> None:
        """Read until stop, a drop or silence; roll over to a fresh connection before the age limit."""
        opened = time.monotonic()
        self._last_frame[shard] = opened
        while not stop.is_set():
            connection = self._current[shard]
            age = time.monotonic() - opened
            if age >= self.config.max_connection_seconds:
                await self._rollover(shard, connection, stop)
                opened = time.monotonic()
                # As after a reconnect: the trades between the two connections are checked.
                await self.frames.put((shard, RECONNECTED))
                continue
            timeout = min(self.config.silence_seconds, self.config.max_connection_seconds - age, 1.0)
            try:
                text = await asyncio.wait_for(connection.recv(), timeout=timeout)
            except TimeoutError:
                if time.monotonic() - self._last_frame[shard] >= self.config.silence_seconds:
                    raise
                continue
            self._last_frame[shard] = time.monotonic()
            await self._put(shard, text)

    async def _put(self, shard: int, text: str | bytes) -> None:
        self.stats.frames += 1
        # A binary frame that is not UTF-8 reaches the parser as text it will call malformed.
        await self.frames.put((shard, text if isinstance(text, str) else text.decode(errors="replace")))

    async def _rollover(
        self, shard: int, old: websockets.ClientConnection, stop: asyncio.Event
    ) -> websockets.ClientConnection:
        """Open the next connection, keep reading the old one until the new one delivers a
        frame, then close the old: no instant without a reader. (Cancelling ``recv`` loses
        nothing in ``websockets``: an unread frame stays queued.)"""
        new = await self._connect(shard)
        self._current[shard] = new
        self.stats.rollovers += 1
        first_new: asyncio.Future[str | bytes] = asyncio.ensure_future(new.recv())
        old_alive = True
        try:
            while not first_new.done() and not stop.is_set():
                waiting: set[asyncio.Future] = {first_new}
                old_next = asyncio.ensure_future(old.recv()) if old_alive else None
                if old_next is not None:
                    waiting.add(old_next)
                done, _ = await asyncio.wait(
                    waiting, timeout=self.config.silence_seconds, return_when=asyncio.FIRST_COMPLETED
                )
                if old_next is not None and old_next in done:
                    if old_next.exception() is None:
                        await self._put(shard, old_next.result())
                    else:
                        old_alive = False  # the old one closed first: the new one carries on
                elif old_next is not None:
                    old_next.cancel()
                if not done:
                    raise TimeoutError
            if first_new.done():
                self._last_frame[shard] = time.monotonic()
                await self._put(shard, first_new.result())
        except BaseException:
            first_new.cancel()
            raise
        finally:
            with contextlib.suppress(Exception):
                await old.close()
        return new

    async def _backoff(self, failures: int, stop: asyncio.Event) -> None:
        cap = min(self.config.max_backoff_seconds, self.config.backoff_seconds * 2 ** min(failures - 1, 10))
        delay = random.uniform(cap / 2, cap)  # jittered: shards and clients do not reconnect in step
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
